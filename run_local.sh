#!/usr/bin/env bash
# Sets up .venv from this repo's own files and runs the job on Beam's DirectRunner into ./out.
#   ./run_local.sh                 a demo: sample photos in built-in styles with the project's own
#                                  model (no input, no internet needed once installed)
#   ./run_local.sh --content 'photos/*.jpg' --styles 'paintings/*' [--output DIR] [Beam options]
# Relative paths are taken from the folder you run it in.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
SHARED="${STYLIZE_SHARED:-$(cd "$ROOT/.." && pwd)/shared}"  # published models, if present
PYTHON="$ROOT/.venv/bin/python"

if [ ! -x "$PYTHON" ]; then
  echo "Setting up .venv (first run only; needs PyPI)..."
  python3 -m venv "$ROOT/.venv"
fi
# Install (again) only when the venv is new or setup.py or the pinned versions changed, so later
# runs work offline. constraints.txt pins the versions the tests run against.
stamp="$ROOT/.venv/.installed"
if [ ! -f "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ] || [ "$ROOT/constraints.txt" -nt "$stamp" ]; then
  "$PYTHON" -m pip install --quiet --disable-pip-version-check -c "$ROOT/constraints.txt" -e "$ROOT[demo,building]"
  touch "$stamp"
fi

args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  # Sample photos that ship inside the scikit-image wheel; styles from the built-in bank; the
  # project's own distilled transfer network, embedded in the package: nothing to download.
  photos="$("$PYTHON" -c 'import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), "data"))')"
  args=(--content "$photos/astronaut.png" --content "$photos/chelsea.png"
        --content "$photos/coffee.png" --content "$photos/rocket.jpg"
        --styles builtin:starry_night --styles builtin:great_wave --styles builtin:the_scream
        --model house)
  echo "Demo: 4 sample photos x 3 built-in styles with the embedded 'house' model, into ./out"
  echo "(to use the published Magenta models instead, see README.md, \"Models\")."
fi
case " ${args[*]} " in *" --output"*) ;; *) args+=(--output "$PWD/out") ;; esac
case " ${args[*]} " in
  *" --model-dir"* | *" --model_dir"*) ;;
  *) if [ -z "${STYLIZE_MODEL_DIR:-}" ] && [ -d "$SHARED/models/magenta" ]; then
       args+=(--model-dir "$SHARED/models/magenta")
     fi ;;
esac
exec "$PYTHON" -m pipeline.run --runner DirectRunner "${args[@]}"
