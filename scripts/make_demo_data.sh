#!/usr/bin/env bash
# Synthetic training and held-out data for the shipped demo checkpoint (see
# stereospike_ros/checkpoints/MODEL_CARD.md). Usage: scripts/make_demo_data.sh OUT_DIR
# Windows end at each depth timestamp (--window-mode depth-aligned), which is what the node does.
set -euo pipefail
out="${1:?usage: make_demo_data.sh OUT_DIR}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out/raw" "$out/tensors"
# seeds 1-10: training; seed 51: validation (model selection); seeds 101-102: held-out test.
for seed in 1 2 3 4 5 6 7 8 9 10 51 101 102; do
  case "$seed" in 51) seconds=3 ;; 10?) seconds=4 ;; *) seconds=6 ;; esac
  name="synth$seed"
  if [ ! -f "$out/raw/${name}_gt.hdf5" ]; then
    "$py" train/synthesize.py --out "$out/raw" --seconds "$seconds" --seed "$seed" --name "$name" \
        --threshold 0.35 --quiet
  fi
  "$py" train/convert.py --data "$out/raw/${name}_data.hdf5" --gt "$out/raw/${name}_gt.hdf5" \
      --calib "$out/raw/${name}_calib" --out "$out/tensors/${name}.h5" \
      --window-mode depth-aligned --quiet --overwrite
done
