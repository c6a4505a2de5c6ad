#!/bin/bash
# run_on_device.sh: the one prepared device run (issue 9): environment, GPU op
# tests, then the side-by-side benchmark (ours vs PyTorch eager, same card, same
# precision). Builds nothing: runs the binaries of .gpubundle/ (tests/gpu/make_bundle.sh)
# with the carried oneDNN/libgomp/cudart and the device's own driver and PyTorch's
# cuDNN/cuBLAS. Logs go to $OUT (tests.log, bench.log, env.log, summary.txt).
#   bash tests/gpu/run_on_device.sh [quick]      (quick: hippo only)
set -u
OUT=${OUT:-/tmp/nnu_out}; mkdir -p "$OUT"
ROOT=$(pwd); BUNDLE=$ROOT/.gpubundle; LIB=/tmp/nnu_lib
mkdir -p $LIB
python3 -c "import lzma,sys; open('$LIB/libdnnl.so.2','wb').write(lzma.open('$BUNDLE/lib/libdnnl.so.2.xz').read())"
cp $BUNDLE/lib/lib*.so.1 $BUNDLE/lib/libcudart.so.13 $LIB/
# cuBLAS + cuBLASLt (one folder: their versions must match) and cuDNN 9 from the
# device: PyTorch's wheels first, then the toolkit
SITE=$(python3 -c "import torch,os;print(os.path.dirname(os.path.dirname(torch.__file__)))" 2>/dev/null)
pick() { find $SITE/nvidia /usr/local/cuda*/lib* /opt /usr/lib -name "$1" 2>/dev/null | head -1; }
for n in libcublas.so.13 libcudnn.so.9; do
  f=$(pick $n); [ -n "$f" ] && LIBDIRS="${LIBDIRS:-}:$(dirname "$f")"
done
export LD_LIBRARY_PATH="$LIB${LIBDIRS:-}:${LD_LIBRARY_PATH:-}"
{
  echo "== env"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  python3 -c "import torch;print('torch', torch.__version__, torch.version.cuda, torch.backends.cudnn.version())"
  ldd $BUNDLE/bin/test_gpu_ops | grep -E "cud|dnnl|blas|not found"
} > "$OUT/env.log" 2>&1
cat "$OUT/env.log"
SUMMARY="$OUT/summary.txt"; : > "$SUMMARY"
runtest() {   # name, timeout
  local t0=$(date +%s.%N)
  timeout "$2" "$BUNDLE/bin/$1" >> "$OUT/tests.log" 2>&1; local rc=$?
  local dt=$(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')")
  local r=FAIL; [ $rc -eq 0 ] && r=PASS; [ $rc -eq 77 ] && r=SKIP
  echo "$r $1 (rc=$rc, ${dt}s)" | tee -a "$SUMMARY"
}
echo "== tests" | tee -a "$SUMMARY"
runtest test_gpu_ops 150
runtest test_gpu_block 60
grep -E "^(PASS|FAIL|device)|FAIL:" "$OUT/tests.log" | head -40
echo "== bench" | tee -a "$SUMMARY"
bench() {     # plan, precs, iters, timeout
  for p in ${2//,/ }; do
    timeout "$4" "$BUNDLE/bin/unet_bench" "$1" "$p" "$3" > "$OUT/b.tmp" 2>&1
    rc=$?; cat "$OUT/b.tmp" >> "$OUT/bench.log"
    if [ $rc -eq 0 ]; then grep '^bench' "$OUT/b.tmp" >> "$SUMMARY"
    else echo "FAIL unet_bench $1 $p (rc=$rc): $(tail -2 "$OUT/b.tmp" | tr '\n' ' ')" >> "$SUMMARY"; fi
  done
  rm -f "$OUT/b.tmp"
  PYTHONUNBUFFERED=1 timeout "$5" python3 tests/gpu/bench_torch.py "$1" "$2" "$3" 2>&1 | tee -a "$OUT/bench.log" | grep -E '^(bench|torch)' >> "$SUMMARY"
}
T0=$SECONDS
bench hippo fp32,tf32,bf16,fp16 15 60 150
[ "${1:-}" = quick ] || bench large tf32,bf16 6 90 150
# the rest only while the lease allows (the device run is capped at 420 s)
[ "${1:-}" = quick ] || [ $((SECONDS - T0)) -gt 240 ] || bench large fp16,fp32 6 90 150
echo "== summary"; cat "$SUMMARY"
