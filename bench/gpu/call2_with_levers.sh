#!/usr/bin/env bash
# Call 2 of bench/gpu/README.md with issue 16's lever sweep beside the flow, on the same GPU, so
# that one lease measures both (a third call does not fit in 15 minutes of device time):
#   - full_profile.sh: the full profile through the work-pool backend (target 4);
#   - levers.sh: every lever config at seed 42 (bench/levers.py, PARALLEL at once);
#   - levers.sh: the baseline config at seeds 43 and 44 (the spread over seeds).
# The flow's wall time is therefore measured with the GPU and the 16 CPU cores shared; the
# per-process GPU samples tell the flow's children from the sweep's processes.
#
#   carry [".gpu/part2"], timeout_s 600:  bash bench/gpu/call2_with_levers.sh
#
# Returns 8 files: stage2.txt, summary.md, summary.json, fine_tuning_results.json, report.pdf,
# levers.md, levers.jsonl (seed 42 and the two extra seeds), more.tar.gz (every log and sample).
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
FINAL=${OUT:?OUT must be set}
bash bench/gpu/stage.sh 2 || exit $?
DEADLINE=${DEADLINE_S:-540}
LEFT=$((DEADLINE - ($(date +%s) - T0)))
G=/tmp/gpu
mkdir -p "$G/out-flow" "$G/out-levers" "$G/out-seeds"
export KILL_GPU_LEFTOVERS=0  # three scripts share the GPU: none may kill the others' processes
OUT=$G/out-levers W=$G/levers PARALLEL=${PARALLEL:-9} DEADLINE_S=$((LEFT - 10)) \
  bash bench/gpu/levers.sh > "$G/levers-run.txt" 2>&1 &
L1=$!
OUT=$G/out-seeds W=$G/seeds PARALLEL=2 DEADLINE_S=$((LEFT - 10)) \
  bash bench/gpu/levers.sh --configs all-r16-lr1e-3-e4 --seeds 43,44 > "$G/seeds-run.txt" 2>&1 &
L2=$!
OUT=$G/out-flow DEADLINE_S=$((LEFT - 15)) bash bench/gpu/full_profile.sh
wait "$L1" "$L2"
nvidia-smi --query-compute-apps=pid --format=csv,noheader 2> /dev/null | xargs -r kill 2> /dev/null

for f in summary.md summary.json fine_tuning_results.json report.pdf; do
  [ -f "$G/out-flow/$f" ] && cp "$G/out-flow/$f" "$FINAL/"
done
cat "$G"/out-levers/levers.md "$G"/out-seeds/levers.md > "$FINAL/levers.md" 2> /dev/null
cat "$G"/out-levers/levers.jsonl "$G"/out-seeds/levers.jsonl > "$FINAL/levers.jsonl" 2> /dev/null
(cd "$G" && tar -czf "$FINAL/more.tar.gz" --ignore-failed-read out-flow out-levers out-seeds \
  levers-run.txt seeds-run.txt 2> /dev/null)
cat "$FINAL/levers.md" 2> /dev/null
tail -5 "$G/levers-run.txt" "$G/seeds-run.txt"
echo "[$(($(date +%s) - T0)) s] done; in $FINAL: $(ls "$FINAL" | tr '\n' ' ')"
