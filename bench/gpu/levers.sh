#!/usr/bin/env bash
# Issue 16's accuracy levers on the lent GPU: bench/levers.py (each lever config in its own
# process, PARALLEL at once on the one GPU) under a hard limit that ends this script DEADLINE_S
# (default 540) seconds after its start, the GPU sampled as in full_profile.sh. Needs the
# staging of stage.sh 1 and 2 on the same (still warm) machine; no Prefect stack.
#
#   bash bench/gpu/levers.sh [levers.py options]   # default --parallel $PARALLEL (9), seed 42
#   bash bench/gpu/levers.sh --dry [options]       # here, on the CPU: PY (default
#                                                  # .venv/bin/python), 400 rows, 1 epoch
#
# To $OUT (else $W/out): levers.jsonl, levers.md, test_evaluation.json (what levers.py wrote),
# levers.log, gpu.csv, gpu-summary.json, logs.tar.gz (per-process GPU samples).
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
MODE=gpu
if [ "${1:-}" = "--dry" ]; then MODE=dry && shift; fi
[ -f bench/levers.py ] || { echo "error: bench/levers.py is not in this checkout" >&2; exit 2; }
if [ "$MODE" = gpu ]; then
  # shellcheck disable=SC1091
  source /tmp/gpu/env.sh || { echo "error: run bench/gpu/stage.sh 1 and 2 first" >&2; exit 3; }
  PY=${PY:-python3}
  W=${W:-/tmp/gpu/levers}
  ARGS=(--device cuda --parallel "${PARALLEL:-9}" --data-dir "$SST2_DIR")
  DEADLINE_S=${DEADLINE_S:-540}
else
  PY=${PY:-.venv/bin/python}
  export PYTHONPATH=${DRY_SITE:+$DRY_SITE:}$PWD/src:$PWD
  export PATH=$PWD/bench/gpu/dry:$PATH  # a stand-in nvidia-smi: the sampler runs too
  W=${W:-/tmp/sentiment-lora-levers-dry}
  ARGS=(--device cpu --parallel "${PARALLEL:-2}" --max-train-samples 400
    --max-validation-samples 100 --max-test-samples 200 --epochs 1)
  DEADLINE_S=${DEADLINE_S:-1500}
fi
OUTDIR=${OUT:-$W/out}
rm -rf "$W" && mkdir -p "$W" "$OUTDIR"
export PYTHONUNBUFFERED=1

bash bench/gpu/sample_gpu.sh "$W" &
SAMPLER=$!
trap 'kill $SAMPLER 2> /dev/null' EXIT
LIMIT=$((DEADLINE_S - ($(date +%s) - T0) - 20))
echo "[$(($(date +%s) - T0)) s] levers.py ${ARGS[*]} $*, hard limit $LIMIT s"
timeout -k 10 "$LIMIT" "$PY" bench/levers.py "${ARGS[@]}" --out "$W/levers" "$@" \
  > "$W/levers.log" 2>&1
RC=$?
kill "$SAMPLER" 2> /dev/null
wait "$SAMPLER"
if [ "$MODE" = gpu ] && [ "${KILL_GPU_LEFTOVERS:-1}" = 1 ] && command -v nvidia-smi > /dev/null; then  # a run left over
  nvidia-smi --query-compute-apps=pid --format=csv,noheader | xargs -r kill 2> /dev/null
fi
echo "[$(($(date +%s) - T0)) s] levers.py ended: exit $RC$([ "$RC" = 124 ] && echo ' (time limit)')"

for f in levers.jsonl levers.md test_evaluation.json; do
  [ -f "$W/levers/$f" ] && cp "$W/levers/$f" "$OUTDIR/"
done
cp "$W/levers.log" "$OUTDIR/"
[ -s "$W/gpu.csv" ] && cp "$W/gpu.csv" "$OUTDIR/"
"$PY" - "$W" "$OUTDIR/gpu-summary.json" <<'EOF'
import json, sys
from pathlib import Path

sys.path.insert(0, "bench/gpu")
from summarize import gpu_summary, read_gpu_samples, read_process_peaks

work = Path(sys.argv[1])
summary = {
    "gpu": gpu_summary(read_gpu_samples(work / "gpu.csv")),
    "process_peak_mib": read_process_peaks(work / "apps.csv", {}, by_pid=True),
}
Path(sys.argv[2]).write_text(json.dumps(summary, indent=2) + "\n")
print("GPU:", json.dumps(summary["gpu"]) if summary["gpu"] else "not sampled (no nvidia-smi)")
EOF
(cd "$W" && tar -czf "$OUTDIR/logs.tar.gz" --ignore-failed-read apps.csv sampler.log 2> /dev/null)
[ -f "$OUTDIR/levers.md" ] && cat "$OUTDIR/levers.md"
[ "$RC" != 0 ] && tail -40 "$W/levers.log"
echo "[$(($(date +%s) - T0)) s] done; in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
exit "$RC"
