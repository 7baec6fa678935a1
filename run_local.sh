#!/usr/bin/env bash
# Sets up .venv from this repo's own files and runs the job on Beam's DirectRunner into ./out.
#   ./run_local.sh                 a demo on sample photos and paintings (no input needed)
#   ./run_local.sh --content 'photos/*.jpg' --styles 'paintings/*' [--output DIR] [Beam options]
# Relative paths are taken from the folder you run it in.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
SHARED="$(cd "$ROOT/.." && pwd)/shared"
PYTHON="$ROOT/.venv/bin/python"

if [ ! -x "$PYTHON" ]; then
  echo "Setting up .venv (first run only; needs PyPI)..."
  python3 -m venv "$ROOT/.venv"
fi
# Install (again) only when the venv is new or setup.py changed, so later runs work offline.
if [ ! -f "$ROOT/.venv/.installed" ] || [ "$ROOT/setup.py" -nt "$ROOT/.venv/.installed" ]; then
  "$PYTHON" -m pip install --quiet --disable-pip-version-check -e "$ROOT"
  touch "$ROOT/.venv/.installed"
fi

args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  if [ ! -d "$SHARED/images" ] || [ ! -d "$SHARED/models/magenta" ]; then
    cat >&2 <<MSG
The demo needs sample pictures and the published Magenta models, looked for in $SHARED (absent):
images/content/, images/style/ and models/magenta/*.tflite.
Run the job on your own pictures instead:
  ./run_local.sh --content 'photos/*.jpg' --styles 'paintings/*.jpg' --model-dir MODELS
  ./run_local.sh --content 'photos/*.jpg' --styles builtin:all --model-dir MODELS
where MODELS is a folder holding the published files (see README.md, "Models"); with internet
access, leave out --model-dir and they are downloaded and verified on first use.
MSG
    exit 2
  fi
  content="$SHARED/images/content"
  style="$SHARED/images/style"
  args=(--content "$content/coffee.png" --content "$content/grace_hopper.jpg"
        --content "$content/tubingen_neckarfront.png" --content "$content/dog_on_lava_field.jpg"
        --styles "$style/van_gogh_starry_night.jpg" --styles "$style/hokusai_great_wave_crop.jpg"
        --styles "$style/munch_the_scream.jpg"
        --direct_running_mode=multi_processing --direct_num_workers=2)
fi
case " ${args[*]} " in *" --output"*) ;; *) args+=(--output "$PWD/out") ;; esac
case " ${args[*]} " in
  *" --model-dir"* | *" --model_dir"*) ;;
  *) if [ -z "${STYLIZE_MODEL_DIR:-}" ] && [ -d "$SHARED/models/magenta" ]; then
       args+=(--model-dir "$SHARED/models/magenta")
     fi ;;
esac
exec "$PYTHON" -m pipeline.run --runner DirectRunner "${args[@]}"
