#!/usr/bin/env bash
# Full-size exports (random seeded weights unless CHECKPOINT / GEN_CHECKPOINT are set),
# one process per model so that one failure does not stop the others.
#   examples/export/export_full.sh [OUTROOT]    (default /work/full)
# writes OUTROOT/torchscript/ and OUTROOT/dynamo/, a log per model, and the
# wall time / peak memory of each run in OUTROOT/<exporter>/<model>.time
# Environment: EXPORTERS, MODELS (subsets), PYTHON, CHECKPOINT, GEN_CHECKPOINT, EXPORT_ARGS
# (extra export.py options, e.g. --state-dict).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-/work/full}"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x /work/venv/bin/python ]; then py=/work/venv/bin/python; else py=python3; fi
fi
ck=(); gck=()
[ -n "${CHECKPOINT:-}" ] && ck=(--checkpoint "$CHECKPOINT")
[ -n "${GEN_CHECKPOINT:-}" ] && gck=(--generator-checkpoint "$GEN_CHECKPOINT")
for exporter in ${EXPORTERS:-torchscript dynamo}; do
  flag=(); [ "$exporter" = dynamo ] && flag=(--dynamo)
  mkdir -p "$out/$exporter"
  for what in ${MODELS:-encoder ftm injection lcr generator}; do
    case "$what" in
      encoder) args=(--encoder "${ck[@]}") ;;
      generator) args=(--generator "${gck[@]}") ;;
      *) args=(--swapper "$what" "${ck[@]}") ;;
    esac
    echo "== $exporter $what $(date -u +%H:%M:%S)"
    /usr/bin/time -f "wall %e s, peak RSS %M kB" -o "$out/$exporter/$what.time" \
      "$py" "$here/export.py" "${flag[@]}" "${args[@]}" ${EXPORT_ARGS:-} -o "$out/$exporter" \
      >"$out/$exporter/$what.log" 2>&1
    echo "   rc $? $(cat "$out/$exporter/$what.time" | tail -1)"
    grep '^\[' "$out/$exporter/$what.log" | grep -v 'activation stats' | sed 's/^/   /'
  done
done
