#!/usr/bin/env bash
# One background benchmark job across consecutive device calls (the machine stays up 30 s after a call;
# a process in its own session outlives the call that started it). In the repository root there:
#   bash benchmarks/gpu_session.sh part             copy this call's carried wheel parts to /tmp/parts, /tmp/x
#   bash benchmarks/gpu_session.sh start S ARGS...  part, unpack and install into /tmp/site, then start
#                                                   `benchmarks/vllm_gpu.py --out /tmp/vb ARGS` detached, wait S s
#   bash benchmarks/gpu_session.sh wait S           wait up to S s for the job; its summary and log to $OUT
# Carried: .wheels/pK (bundle parts of ../shared/tools/gpu-wheels/pack), .wheels/xK (extra wheels), and
# .gpu/unpack (a copy of ../shared/tools/gpu-wheels/unpack) with the last part.
set -uo pipefail
cmd=$1; shift
part() {
  mkdir -p /tmp/parts /tmp/x
  cp .wheels/p*/bundle.part-* /tmp/parts/ 2>/dev/null
  cp .wheels/x*/*.whl /tmp/x/ 2>/dev/null
  echo "parts: $(ls /tmp/parts | wc -l) bundle, $(ls /tmp/x | wc -l) extra wheels"
}
wait_job() {
  local until=$((SECONDS + $1))
  while [ $SECONDS -lt $until ] && [ ! -f /tmp/vb/done ]; do sleep 2; done
  [ -f /tmp/vb/done ] && echo "job: done" || echo "job: running"
  cp /tmp/vb/summary.json "$OUT/" 2>/dev/null
  tail -c 400000 /tmp/vb.log > "$OUT/job.log" 2>/dev/null
  grep -v '^\s*$' /tmp/vb.log | grep -E '^\{|ready|random|\$ ' | tail -c 9000
}
case $cmd in
  part) part ;;
  start)
    s=$1; shift
    part
    bash .gpu/unpack /tmp/parts /tmp/site | tail -1 || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site /tmp/x/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 \
      PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    mkdir -p /tmp/vb
    setsid nohup python3 benchmarks/vllm_gpu.py --out /tmp/vb "$@" > /tmp/vb.log 2>&1 < /dev/null &
    wait_job "$s" ;;
  wait) wait_job "$1" ;;
esac
