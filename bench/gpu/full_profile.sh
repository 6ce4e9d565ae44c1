#!/usr/bin/env bash
# Issue 16, target 4: the full profile through the `work-pool` backend, every config of the grid
# at once on one GPU; wall time, accuracy and GPU memory. bench/gpu/README.md has the calls.
#
#   bash bench/gpu/full_profile.sh --stack-only   # start the stack and leave it running
#   bash bench/gpu/full_profile.sh                # the run (reuses a running stack)
#   bash bench/gpu/full_profile.sh --dry [--stack-only]
#                     # here, on the CPU: PY (default .venv/bin/python), 200 training rows,
#                     # bench/gpu/dry/nvidia-smi standing in for the GPU sampler's queries
#
# The stack is what `make stack` starts, through scripts/prefect_stack.py: a Prefect server
# (SQLite in $W/prefect, 127.0.0.1:$PORT, default 4391), the `cpu` and `gpu` process pools (the
# gpu pool's limit set to the grid's size: every config trains at once), every deployment and
# one worker per pool; its processes run in their own sessions, so a stack started by one
# device call serves the next. The run is `flows/full.py --profile full --backend work-pool
# --device cuda` under a hard limit that ends this script DEADLINE_S (default 540) seconds after
# its start, while bench/gpu/sample_gpu.sh samples the GPU; then everything is stopped. Writes
# to $OUT (else $W/out): summary.md, summary.json, fine_tuning_results.json and report.pdf (when
# the flow finished), gpu.csv, flow.log, logs.tar.gz (stack logs, per-process GPU samples, each
# child run's result).
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
MODE=gpu
STACK_ONLY=0
for arg in "$@"; do
  case $arg in
    --dry) MODE=dry ;;
    --stack-only) STACK_ONLY=1 ;;
    *) echo "usage: full_profile.sh [--dry] [--stack-only]" >&2 && exit 2 ;;
  esac
done
PORT=${PORT:-4391}
export SENTIMENT_LORA_REPORT_PORT=${SENTIMENT_LORA_REPORT_PORT:-8791}
if [ "$MODE" = gpu ]; then
  # shellcheck disable=SC1091
  source /tmp/gpu/env.sh || { echo "error: run bench/gpu/stage.sh 1 first" >&2; exit 3; }
  PY=${PY:-python3}
  DEVICE=cuda
  W=${W:-/tmp/gpu/run}
  DATA=$SST2_DIR
  CAPS=()
  DEADLINE_S=${DEADLINE_S:-540}
else
  PY=${PY:-.venv/bin/python}
  export PYTHONPATH=${DRY_SITE:+$DRY_SITE:}$PWD/src:$PWD
  export PATH=$PWD/bench/gpu/dry:$PATH  # a stand-in nvidia-smi: the sampler runs too
  DEVICE=cpu
  W=${W:-/tmp/sentiment-lora-gpu-dry}
  DATA=$(readlink -f data/sst2)
  CAPS=(--max-train-samples 200 --max-validation-samples 100 --max-test-samples 200)
  DEADLINE_S=${DEADLINE_S:-1500}
fi
OUTDIR=${OUT:-$W/out}
export PREFECT_HOME=$W/prefect PREFECT_API_URL=http://127.0.0.1:$PORT/api
export PREFECT_UI_ENABLED=false PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1  # the device reaches no hub: never wait on one
unset SENTIMENT_LORA_ALERT_WEBHOOK  # never alert a real webhook from a benchmark
STACK=("$PY" scripts/prefect_stack.py --home "$PREFECT_HOME" --port "$PORT")

log() { echo "[$(($(date +%s) - T0)) s] $*"; }

if "${STACK[@]}" status 2> /dev/null | grep -q "server up"; then
  log "reusing the stack at $PREFECT_API_URL ($(cat "$PREFECT_HOME/stack/up.txt" 2> /dev/null))"
  rm -rf "$W"/{reports,artifacts,registry,gpu.csv,apps.csv,sampler.log,flow.log}
else
  rm -rf "$W" && mkdir -p "$W"
  GRID_SIZE=$("$PY" -c 'from sentiment_lora.config import GRIDS, PROFILE_GRID
print(len(GRIDS[PROFILE_GRID["full"]]))') || { echo "error: $PY cannot import the project" >&2; exit 2; }
  export SENTIMENT_LORA_GPU_LIMIT=$GRID_SIZE  # every config of the grid at once on `gpu`
  log "stack: server on 127.0.0.1:$PORT, pools (gpu limit $GRID_SIZE), deployments, workers"
  for step in server deploy workers; do
    if ! "${STACK[@]}" "$step" >> "$W/stack.log" 2>&1; then
      log "error: prefect_stack.py $step failed"
      tail -40 "$W/stack.log" "$PREFECT_HOME"/stack/*.log
      "${STACK[@]}" down > /dev/null 2>&1
      exit 1
    fi
  done
  echo "started in $(($(date +%s) - T0)) s" > "$PREFECT_HOME/stack/up.txt"
  log "stack up"
fi
mkdir -p "$OUTDIR"
STACK_UP=$(cat "$PREFECT_HOME/stack/up.txt")
[ "$STACK_ONLY" = 1 ] && exit 0

stop_all() {
  [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2> /dev/null && wait "$SAMPLER"
  "${STACK[@]}" down >> "$W/stack.log" 2>&1
  if [ "$MODE" = gpu ] && [ "${KILL_GPU_LEFTOVERS:-1}" = 1 ] && command -v nvidia-smi > /dev/null; then  # a child run left over
    nvidia-smi --query-compute-apps=pid --format=csv,noheader | xargs -r kill 2> /dev/null
  fi
}
trap stop_all EXIT
bash bench/gpu/sample_gpu.sh "$W" &
SAMPLER=$!

LIMIT=$((DEADLINE_S - ($(date +%s) - T0) - 30))  # 30 s left to stop the stack and copy
log "flow: --profile full --backend work-pool --device $DEVICE, hard limit $LIMIT s"
FLOW_T0=$(date +%s.%N)
timeout -k 10 "$LIMIT" "$PY" flows/full.py --profile full --backend work-pool --device "$DEVICE" \
  --data-dir "$DATA" --reports-dir "$W/reports" --artifacts-dir "$W/artifacts" \
  --registry-dir "$W/registry" --report-base-url "http://127.0.0.1:$SENTIMENT_LORA_REPORT_PORT" \
  "${CAPS[@]}" > "$W/flow.log" 2>&1
FLOW_RC=$?
FLOW_S=$(echo "$FLOW_T0 $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}')
log "flow ended: exit $FLOW_RC after $FLOW_S s$([ "$FLOW_RC" = 124 ] && echo ' (time limit)')"
stop_all
trap - EXIT
log "stack stopped"

"$PY" bench/gpu/summarize.py --work "$W" --flow-seconds "$FLOW_S" --flow-rc "$FLOW_RC" \
  --mode "$MODE; stack $STACK_UP" --out "$OUTDIR"
latest=$W/reports/latest
cp "$latest/fine_tuning_results.json" "$latest/report.pdf" "$OUTDIR/" 2> /dev/null
cp "$W/flow.log" "$OUTDIR/"
[ -s "$W/gpu.csv" ] && cp "$W/gpu.csv" "$OUTDIR/"
(cd "$W" && tar -czf "$OUTDIR/logs.tar.gz" --ignore-failed-read \
  stack.log prefect/stack apps.csv sampler.log artifacts/results 2> /dev/null)
if [ "$FLOW_RC" != 0 ]; then
  echo "---- flow.log (last 60 lines)"
  tail -60 "$W/flow.log"
fi
log "done; in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
exit "$FLOW_RC"
