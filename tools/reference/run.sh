#!/usr/bin/env bash
# Rebuilds the reference fixtures with diffusers/transformers (npm run fixtures). Creates tools/reference/.venv
# on first use. Pass module names to rebuild only those (e.g. `npm run fixtures -- clip_outputs`); the committed
# fixtures are those of a full run (a module run alone can differ in the last bit of a float, PyTorch kernels
# picking other code paths). `--check` rebuilds into a scratch copy and compares with the committed files
# (floats within 1e-4: on another CPU, MKL/oneDNN kernels change the last bits).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import diffusers, transformers, open_clip" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
  "$venv/bin/pip" install -q --no-deps open_clip_torch==3.3.0
fi
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 CUBLAS_WORKSPACE_CONFIG=:4096:8 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
exec "$venv/bin/python" "$here/make_fixtures.py" "$@"
