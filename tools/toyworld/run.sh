#!/usr/bin/env bash
# Trains the toy-world model family on the CPU and writes converted_models/toyworld (npm run toyworld).
# Uses tools/reference/.venv, creating it as tools/reference/run.sh does if it is missing. Arguments go to
# train.py (e.g. `npm run toyworld -- --stages blip,export --force`, `--quick` for a few-minute try-out).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ref="$here/../reference"
venv="$ref/.venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import diffusers, transformers, open_clip" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$ref/requirements.txt"
  "$venv/bin/pip" install -q --no-deps open_clip_torch==3.3.0
fi
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error \
  TQDM_DISABLE=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY=PASSIVE
exec nice -n 5 "$venv/bin/python" "$here/train.py" "$@"
