#!/usr/bin/env bash
# Sample the GPU into DIR until stopped (SIGTERM): DIR/gpu.csv (nvidia-smi --query-gpu every
# 0.5 s: memory used and total, utilisation) and DIR/apps.csv (every 1 s, one line per GPU
# process: time,pid,MiB,flow run id; the id is empty for a process that is no Prefect flow run,
# such as the pipeline's own). Exits at once where there is no nvidia-smi.
#
#   bash bench/gpu/sample_gpu.sh DIR & sampler=$!; ...; kill $sampler; wait $sampler
DIR=${1:?usage: sample_gpu.sh DIR}
command -v nvidia-smi > /dev/null || exit 0
nvidia-smi --query-gpu=timestamp,memory.used,memory.total,utilization.gpu \
  --format=csv,nounits -lms 500 > "$DIR/gpu.csv" 2>> "$DIR/sampler.log" &
smi=$!
trap 'kill $smi 2> /dev/null; exit 0' TERM INT
while :; do
  ts=$(date +%s.%N)
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2> /dev/null |
    while IFS=', ' read -r pid mib; do
      run=$(tr '\0' '\n' < "/proc/$pid/environ" 2> /dev/null | sed -n 's/^PREFECT__FLOW_RUN_ID=//p')
      echo "$ts,$pid,$mib,$run"
    done
  sleep 1
done >> "$DIR/apps.csv" 2>> "$DIR/sampler.log"
