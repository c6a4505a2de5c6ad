#!/bin/bash
# run_on_device.sh: the one prepared device run (issue 9): environment, GPU tests
# (ops, block, whole network), nnu_net training/inference timing, then the
# side-by-side benchmark (ours vs PyTorch eager, same card, same precision). Builds
# nothing: runs the binaries of .gpubundle/ (tests/gpu/make_bundle.sh) with the
# carried oneDNN/libgomp/cudart and the device's own driver and PyTorch's cuDNN/cuBLAS.
# The device tool returns at most 8 files from $OUT: the logs are written to
# /tmp/nnu_logs (env.log, tests.log, net_bench.log, bench.log, profile.log; e2e: e2e.log,
# e2e_summary.txt) and packed into $OUT/logs.tgz after every phase; $OUT also gets
# summary.txt (written as it goes, so a run killed at its limit still returns it) and
# e2e_progress.png. Every test prints one PASS/FAIL/SKIP line.
#   bash tests/gpu/run_on_device.sh [next|confirm|full|quick|net|e2e] [BUDGET_S]
#     next  the run prepared for the next GPU session (2026-11-28), by priority, each
#           step skipped when the budget is short: op/net/profiler tests (legacy cuDNN
#           API), nnu_net timing of bf16 vs bf16-act16/fp16-act16 and PyTorch, the
#           end-to-end nnunet run (4 x 50), the tests on the graph API, graph-API
#           timing of fp32/tf32/bf16-act16 and a per-op profile, the large plan
#     confirm  after the defaults flip: op and net tests with the defaults, their
#           timing (hippo), the large plan through nnu_net (act16 and fp32 storage)
#           with PyTorch, the end-to-end run at the default precision
#     full  tests, nnu_net timing, unet_bench + PyTorch for hippo and large,
#                     then the end-to-end run (tests/gpu/e2e.sh) if 150 s are left
#     quick           the same with hippo only, no end-to-end run
#     net             nnu_net tests and timing first, then the op tests, then hippo
#                     unet_bench/PyTorch (bf16, fp32) while the budget lasts
#     e2e             only tests/gpu/e2e.sh: the nnunet program on -device cuda
#                     (plan, train 12x50 bf16, predict, evaluate, CPU comparison);
#                     E2E_EPOCHS / E2E_ITERS change its schedule
#   BUDGET_S (default 400): steps that would not fit in what is left are skipped
#   (and listed as SKIP in the summary), so the summary is always written.
set -u
MODE=${1:-full}; BUDGET=${2:-400}
FINAL=${OUT:-/tmp/nnu_out}; mkdir -p "$FINAL"
OUT=/tmp/nnu_logs; rm -rf "$OUT"; mkdir -p "$OUT"; export OUT
# logs.tgz + the plot into the returned folder (called after every phase)
pack() {
  tar czf "$FINAL/logs.tgz.tmp" -C "$OUT" . 2>/dev/null && mv "$FINAL/logs.tgz.tmp" "$FINAL/logs.tgz"
  [ -f "$OUT/e2e_progress.png" ] && cp "$OUT/e2e_progress.png" "$FINAL/"
  return 0
}
# the bundle's libraries unpacked to /tmp/nnu_lib, cuBLAS/cuDNN from PyTorch's wheels
. tests/gpu/bundle_env.sh
{
  echo "== env"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; nproc
  ldd $BUNDLE/bin/test_gpu_net | grep -E "cud|dnnl|blas|not found"
} > "$OUT/env.log" 2>&1
cat "$OUT/env.log"
SUMMARY="$FINAL/summary.txt"; : > "$SUMMARY"
left() { echo $((BUDGET - SECONDS)); }
# fits SECONDS_NEEDED: 0 when at least that much budget is left (else a SKIP line)
fits() { [ "$(left)" -ge "$1" ] && return 0; echo "SKIP $2 (budget: $(left) s left)" | tee -a "$SUMMARY"; return 1; }
runtest() {   # name, timeout, [args...]
  local name=$1 to=$2; shift 2
  fits 10 "$name $*" || return 0
  [ "$to" -gt "$(( $(left) - 5 ))" ] && to=$(( $(left) - 5 ))
  local t0=$SECONDS
  echo "### $name $*" >> "$OUT/tests.log"
  timeout "$to" "$BUNDLE/bin/$name" "$@" >> "$OUT/tests.log" 2>&1; local rc=$?
  local r=FAIL; [ $rc -eq 0 ] && r=PASS; [ $rc -eq 77 ] && r=SKIP
  echo "$r $name $* (rc=$rc, $((SECONDS - t0)) s)" | tee -a "$SUMMARY"
}
netbench() {  # prec, iters, timeout [api [plan]]: the api (legacy|graph|auto) goes into
              # NNU_CUDNN_API; plan hippo (default) or large
  local api=${4:-legacy} plan=${5:-hippo}
  fits 20 "nnu_net bench $plan $1 ($api)" || return 0
  local to=$3; [ "$to" -gt "$(( $(left) - 5 ))" ] && to=$(( $(left) - 5 ))
  echo "### test_gpu_net --bench $1 $2 $plan (NNU_CUDNN_API=$api)" >> "$OUT/net_bench.log"
  NNU_CUDNN_API=$api timeout "$to" "$BUNDLE/bin/test_gpu_net" --bench "$1" "$2" "$plan" > "$OUT/b.tmp" 2>&1
  local rc=$?
  cat "$OUT/b.tmp" >> "$OUT/net_bench.log"
  if [ $rc -eq 0 ]; then grep '^bench' "$OUT/b.tmp" | sed "s/\$/ api=$api/" >> "$SUMMARY"
  else echo "FAIL nnu_net bench $1 $api (rc=$rc): $(tail -2 "$OUT/b.tmp" | tr '\n' ' ')" | tee -a "$SUMMARY"; fi
}
# per-op profile of the nnu_net bench (profiling adds host time: not a timing run)
profile() {   # prec, api
  fits 25 "profile $1 ($2)" || return 0
  echo "### NNU_CUDA_PROFILE=1 NNU_CUDNN_API=$2 test_gpu_net --bench $1 5" >> "$OUT/profile.log"
  NNU_CUDA_PROFILE=1 NNU_CUDNN_API=$2 timeout $(( $(left) - 5 )) "$BUNDLE/bin/test_gpu_net" --bench "$1" 5 \
    >> "$OUT/profile.log" 2>&1
  echo "profile $1 $2: rc=$? (profile.log)" | tee -a "$SUMMARY"
  grep -E "^profile op " "$OUT/profile.log" | tail -24 >> "$SUMMARY"
}
bench() {     # plan, precs, iters, timeout per unet_bench, timeout torch
  for p in ${2//,/ }; do
    fits 20 "unet_bench $1 $p" || continue
    timeout "$4" "$BUNDLE/bin/unet_bench" "$1" "$p" "$3" > "$OUT/b.tmp" 2>&1
    rc=$?; cat "$OUT/b.tmp" >> "$OUT/bench.log"
    if [ $rc -eq 0 ]; then grep '^bench' "$OUT/b.tmp" >> "$SUMMARY"
    else echo "FAIL unet_bench $1 $p (rc=$rc): $(tail -2 "$OUT/b.tmp" | tr '\n' ' ')" >> "$SUMMARY"; fi
  done
  rm -f "$OUT/b.tmp"
  fits 45 "torch bench $1 $2" || return 0
  local to=$5; [ "$to" -gt "$(( $(left) - 5 ))" ] && to=$(( $(left) - 5 ))
  PYTHONUNBUFFERED=1 timeout "$to" python3 tests/gpu/bench_torch.py "$1" "$2" "$3" 2>&1 | tee -a "$OUT/bench.log" | grep -E '^(bench|torch)' >> "$SUMMARY"
}
e2e() {       # min_s [max_s]: the nnunet program end to end with what is left (at most max_s)
  fits "$1" "e2e (nnunet plan/train/predict on cuda)" || return 0
  local b=$(( $(left) - 5 ))
  [ -n "${2:-}" ] && [ "$b" -gt "$2" ] && b=$2
  echo "== e2e (tests/gpu/e2e.sh cuda, $b s)" | tee -a "$SUMMARY"
  bash tests/gpu/e2e.sh cuda "$b" "${E2E_EPOCHS:-12}" "${E2E_ITERS:-50}"
  cat "$OUT/e2e_summary.txt" >> "$SUMMARY"
}
if [ "$MODE" = next ]; then
  # ordered so that each answer arrives as early as possible: the new modes' correctness
  # and their timing against the baseline and PyTorch first, then the whole program,
  # then the graph API (its autotuning costs time), then the rest
  echo "== A1. correctness, legacy cuDNN API (six tables incl. -act16, region loss)" | tee -a "$SUMMARY"
  runtest test_gpu_ops 90
  runtest test_gpu_net 60
  runtest test_gpu_profile 20
  grep -E "^(RESULT|PASS|FAIL|device)|FAIL:" "$OUT/tests.log" | head -40 >> "$SUMMARY"
  pack
  echo "== B1. nnu_net timing, hippo 3d_fullres batch 9: bf16 vs 16-bit activations; PyTorch" | tee -a "$SUMMARY"
  netbench bf16 15 40 legacy
  netbench bf16-act16 15 40 legacy
  netbench fp16-act16 15 40 legacy
  fits 60 "torch bench hippo" && PYTHONUNBUFFERED=1 timeout 100 python3 tests/gpu/bench_torch.py \
    hippo bf16,fp16,fp32,tf32 15 2>&1 | tee -a "$OUT/bench.log" | grep -E '^(bench|torch)' >> "$SUMMARY"
  pack
  echo "== D. the nnunet program end to end on cuda (4 x 50)" | tee -a "$SUMMARY"
  E2E_EPOCHS=${E2E_EPOCHS:-4} e2e 100 170
  pack
  echo "== A2. correctness on the cuDNN graph API" | tee -a "$SUMMARY"
  export NNU_CUDNN_LOG=1 NNU_CUDNN_GRAPH_CANDIDATES=${NNU_CUDNN_GRAPH_CANDIDATES:-2}
  runtest test_gpu_ops 120 --api graph
  runtest test_gpu_net 60 --api graph
  unset NNU_CUDNN_LOG
  grep -E "^(PASS|FAIL|conv api)|FAIL:" "$OUT/tests.log" | tail -20 >> "$SUMMARY"
  grep -E "cuDNN graph API: no plan" "$OUT/tests.log" | sort | uniq -c | head -20 >> "$SUMMARY"
  pack
  echo "== B2. graph API timing (autotuned, up to 4 plans per primitive)" | tee -a "$SUMMARY"
  export NNU_CUDNN_GRAPH_CANDIDATES=4
  netbench fp32 10 60 graph
  netbench fp32 10 50 legacy
  netbench tf32 10 60 graph
  netbench bf16-act16 15 60 graph
  profile bf16-act16 graph
  # per shape: cudnnFind's best legacy algorithm vs the autotuned graph plan (fp32)
  if fits 40 "cudnn compare fp32"; then
    NNU_CUDNN_LOG=2 NNU_CUDNN_API=graph timeout $(( $(left) - 5 )) "$BUNDLE/bin/test_gpu_net" --bench fp32 3 \
      > "$OUT/cudnn_compare.log" 2>&1
    grep "^cudnn compare" "$OUT/cudnn_compare.log" | head -40 >> "$SUMMARY"
  fi
  pack
  echo "== E. large plan (unet_bench, fp32 activations) and PyTorch" | tee -a "$SUMMARY"
  NNU_CUDNN_API=graph bench large bf16 6 90 120
elif [ "$MODE" = confirm ]; then
  # after the first H200 run (2026-11-28) flipped the defaults (bf16-act16, cuDNN API
  # auto = graph for tf32/16-bit, legacy for fp32): the op test with its fix, the
  # network tests, the defaults' timing, the large plan through nnu_net, the program
  export NNU_CUDNN_GRAPH_CANDIDATES=${NNU_CUDNN_GRAPH_CANDIDATES:-2}
  echo "== A. correctness with the defaults (API auto)" | tee -a "$SUMMARY"
  runtest test_gpu_ops 120
  runtest test_gpu_net 60
  grep -E "^(RESULT|PASS|FAIL|device|conv api)|FAIL:" "$OUT/tests.log" | head -40 >> "$SUMMARY"
  pack
  export NNU_CUDNN_GRAPH_CANDIDATES=4
  echo "== B. nnu_net timing, hippo 3d_fullres batch 9, API auto" | tee -a "$SUMMARY"
  netbench bf16-act16 15 60 auto
  netbench tf32 10 60 auto
  netbench fp32 10 60 auto
  pack
  echo "== C. large plan (128^3, batch 2, F 32..320) through nnu_net, and PyTorch" | tee -a "$SUMMARY"
  netbench bf16-act16 6 120 auto large
  netbench bf16 6 120 auto large
  fits 60 "torch bench large" && PYTHONUNBUFFERED=1 timeout 120 python3 tests/gpu/bench_torch.py \
    large bf16 6 2>&1 | tee -a "$OUT/bench.log" | grep -E '^(bench|torch)' >> "$SUMMARY"
  pack
  echo "== D. the nnunet program end to end on cuda, default precision (4 x 50)" | tee -a "$SUMMARY"
  E2E_PRECISION=bf16-act16 E2E_EPOCHS=4 e2e 60 120
elif [ "$MODE" = e2e ]; then
  e2e 60
elif [ "$MODE" = net ]; then
  echo "== net tests" | tee -a "$SUMMARY"
  runtest test_gpu_net 100
  grep -E "^(RESULT|PASS|FAIL|device)|FAIL:" "$OUT/tests.log" | tee -a "$SUMMARY"
  echo "== nnu_net timing (hippo 3d_fullres, batch 9)" | tee -a "$SUMMARY"
  netbench bf16 15 60
  netbench fp32 10 60
  echo "== op tests" | tee -a "$SUMMARY"
  runtest test_gpu_block 30
  runtest test_gpu_ops 120
  grep -E "^(PASS|FAIL)|FAIL:" "$OUT/tests.log" | grep -v "^PASS net\|^FAIL net" | head -20 >> "$SUMMARY"
  echo "== bench (unet_bench / PyTorch)" | tee -a "$SUMMARY"
  bench hippo bf16,fp32 15 40 90
else
  echo "== tests" | tee -a "$SUMMARY"
  runtest test_gpu_ops 150
  runtest test_gpu_block 60
  runtest test_gpu_net 100
  grep -E "^(PASS|FAIL|RESULT|device)|FAIL:" "$OUT/tests.log" | head -40
  echo "== nnu_net timing" | tee -a "$SUMMARY"
  netbench bf16 15 60
  netbench fp32 10 60
  echo "== bench" | tee -a "$SUMMARY"
  bench hippo fp32,tf32,bf16,fp16 15 60 150
  [ "$MODE" = quick ] || bench large tf32,bf16 6 90 150
  [ "$MODE" = quick ] || bench large fp16,fp32 6 90 150
  [ "$MODE" = quick ] || e2e 150
fi
rm -f "$OUT/b.tmp"
pack
echo "== summary (${SECONDS} s)"; cat "$SUMMARY"
