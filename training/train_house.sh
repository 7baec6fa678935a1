#!/usr/bin/env bash
# Trains (or resumes training) the embedded "house" transfer network by distillation from the
# published fp16 one in ../shared, then exports it into models/data/house. See training/README.md.
#   training/train_house.sh            resume to the end of the schedule, in the foreground
#   training/train_house.sh --until N  stop after step N (a session's share), resume later
# Needs .venv with TensorFlow: the building extra (.venv/bin/pip install -c constraints.txt
# -e '.[building]') or the test extras ./run_tests.sh installs.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${STYLIZE_SHARED:-$ROOT/../shared}"
M="$SHARED/models/magenta"
C="$SHARED/images/content"
S="$SHARED/images/style"
cd "$ROOT"
.venv/bin/python -m model_building.distill --workdir training/house \
  --teacher "$M/magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite" \
  --predictor "$M/magenta_arbitrary-image-stylization-v1-256_int8_prediction_1.tflite" \
  --content "$C/*" --content skimage --content "$S/*" --styles "$S/*" \
  --holdout-content "$C/grace_hopper.jpg" --holdout-content "$C/tubingen_neckarfront.png" \
  --holdout-content "$C/golden_gate_sq.jpg" \
  --holdout-styles "$S/picabia_edtaonisl.jpg" --holdout-styles "$S/van_gogh_night_cafe.jpg" \
  --holdout-styles "$S/wpa_poster_zion.png" \
  --pairs 4096 --steps 28600 --batch 4 --width 0.3 --learning-rate 2e-3 --checkpoint-every 100 \
  --average-last 1000 --seed 0 "$@"
.venv/bin/python -m model_building.distill --workdir training/house --width 0.3 --export models/data/house
