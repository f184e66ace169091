#!/usr/bin/env bash
# jpcurate installs and passes its tests alone: a fresh venv with `pip install ./src/jpcurate`, no torch.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q ./src/jpcurate pytest pytest-timeout hypothesis
if "$tmp/venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "isolation check: installing jpcurate pulled in torch" >&2
    exit 1
fi
"$tmp/venv/bin/python" -c "import sys, jpcurate; assert 'torch' not in sys.modules; print('jpcurate', jpcurate.__version__, 'imports without torch')"
# Run from a copy of tests/ so that the installed wheel, not src/, is what gets imported.
cp -r tests/conftest.py tests/curate "$tmp/"
export JPLLM_DATA="$PWD/data"
cd "$tmp"
"$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider -o addopts="" --rootdir "$tmp" curate
