#!/bin/sh
# make_bundle.sh: builds the GPU test and benchmark binaries HERE (where the CUDA
# toolkit, cuDNN headers, oneDNN and the compilers are) and packs what the device
# machine lacks into .gpubundle/ (ignored by git; name it in the device tool's
# `carry`). The device has the NVIDIA driver and PyTorch's cuDNN/cuBLAS but no
# oneDNN, Lua or nifticlib, and no package registry.
#   .gpubundle/bin/  test_gpu_ops test_gpu_block test_gpu_net test_backend_ops unet_bench (stripped)
#   .gpubundle/lib/  libdnnl.so.2.xz (39 MB -> 7 MB), libgomp.so.1, libOpenCL.so.1,
#                    libcudart.so.13 (13.0, matching nvcc)
# cuBLAS/cuBLASLt/cuDNN are too big to carry: run_on_device.sh takes PyTorch's.
# Usage (repo root): sh tests/gpu/make_bundle.sh
set -eu
B=${BUILD:-build-cuda}
export PATH=/usr/local/cuda/bin:$PATH
cmake -S . -B "$B" -DCMAKE_CUDA_ARCHITECTURES=90 -DNNUNET_BENCH=ON >/dev/null
cmake --build "$B" -j2 --target test_gpu_ops test_gpu_block test_gpu_net test_backend_ops unet_bench
grep -qx '/.gpubundle/' .git/info/exclude 2>/dev/null || echo '/.gpubundle/' >> .git/info/exclude
rm -rf .gpubundle && mkdir -p .gpubundle/bin .gpubundle/lib
for t in test_gpu_ops test_gpu_block test_gpu_net test_backend_ops; do cp "$B/tests/$t" .gpubundle/bin/; done
cp "$B/unet_bench" .gpubundle/bin/
strip .gpubundle/bin/*
lib() { ldd "$B/tests/test_gpu_ops" | awk -v n="$1" '$1 == n {print $3}'; }
xz -T2 -6 -c "$(readlink -f "$(lib libdnnl.so.2)")" > .gpubundle/lib/libdnnl.so.2.xz
for n in libgomp.so.1 libOpenCL.so.1 libcudart.so.13; do cp -L "$(lib $n)" .gpubundle/lib/$n; done
du -sh .gpubundle
