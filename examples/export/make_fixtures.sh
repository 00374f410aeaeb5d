#!/usr/bin/env bash
# Regenerate fixtures/ (deterministic). Uses $PYTHON, else /work/venv/bin/python if present, else python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x /work/venv/bin/python ]; then py=/work/venv/bin/python; else py=python3; fi
fi
"$py" "$here/make_samples.py" -o "$here/../samples"
exec "$py" "$here/make_fixtures.py" -o "$here/../../fixtures" "$@"
