#!/usr/bin/env bash
# The toy-world quality benchmark (npm run eval): builds the TypeScript side (dist/tools/toyworld/edit-batch.js),
# then runs tools/toyworld/eval.py in the reference venv (tools/reference/.venv, made by `npm run fixtures`).
# Options go to eval.py: --quick (5 scenes per task), --n 50, --steps 20, --scene-seed BASE, --model DIR, --captioner DIR|none,
# --retrain (the classifier), --reuse (re-score the images of the last run), --only ours|diffusers.
# Everything runs niced, one thread per process (ours and diffusers side by side).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/tools/reference/.venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import diffusers, transformers, torch" 2>/dev/null; then
  echo "eval: the reference venv $venv is missing or incomplete: run 'npm run fixtures' first (it creates it)" >&2
  exit 1
fi
cd "$root"
if ! npm run --silent build; then
  if [ -f dist/tools/toyworld/edit-batch.js ]; then
    echo "eval: the TypeScript build failed; using the existing dist/ (it may be stale)" >&2
  else
    echo "eval: the TypeScript build failed and dist/tools/toyworld/edit-batch.js does not exist" >&2
    exit 1
  fi
fi
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec nice -n 10 "$venv/bin/python" "$root/tools/toyworld/eval.py" "$@"
