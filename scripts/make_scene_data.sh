#!/usr/bin/env bash
# Scene-family data (see stereospike_ros/checkpoints/MODEL_CARD.md): training families
# room/open/clutter/closeup (seeds 1-80 but 51, 1 s each: many scenes), validation (seeds 51
# and 90, 2 s), held-out families corridor/boards/poles (seeds 101-102, 3 s) and unseen seeds of the
# training families (seed 101, 3 s). A file is made once per name: no seed is in two roles.
# Usage: scripts/make_scene_data.sh OUT_DIR [JOBS]  (JOBS parallel sequences)
set -euo pipefail
out="${1:?usage: make_scene_data.sh OUT_DIR [JOBS]}"
jobs="${2:-1}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out/raw" "$out/tensors"
one() {  # family seed seconds
  local name="$1$2"
  if [ ! -f "$out/raw/${name}_gt.hdf5" ]; then
    "$py" train/synthesize.py --out "$out/raw" --family "$1" --seed "$2" --seconds "$3" --quiet
  fi
  if [ ! -f "$out/tensors/${name}.h5" ]; then
    "$py" train/convert.py --data "$out/raw/${name}_data.hdf5" --gt "$out/raw/${name}_gt.hdf5" \
        --calib "$out/raw/${name}_calib" --out "$out/tensors/${name}.h5" \
        --window-mode depth-aligned --no-hole-filling --quiet
  fi
}
export -f one
export out py
{
  for f in room open clutter closeup; do echo "$f 51 2"; echo "$f 90 2"; done
  for f in room open clutter closeup; do for s in $(seq 1 50) $(seq 52 80); do echo "$f $s 1"; done; done
  for f in corridor boards poles; do for s in 101 102; do echo "$f $s 3"; done; done
  for f in room open clutter closeup; do echo "$f 101 3"; done
} | xargs -P "$jobs" -L 1 bash -c 'one "$@"' _
