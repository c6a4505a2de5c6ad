#!/bin/sh
# make_bundle.sh: builds the GPU test and benchmark binaries and the nnunet program
# HERE (where the CUDA toolkit, cuDNN headers, oneDNN, Lua, nifticlib, cairo and the
# compilers are) and packs what the device machine lacks into .gpubundle/ (ignored
# by git; name it in the device tool's `carry`). The device has the NVIDIA driver,
# python3 and PyTorch's cuDNN/cuBLAS but no oneDNN, Lua, nifticlib, cairo or
# lua-cjson, and no package registry.
#   .gpubundle/bin/            test_gpu_ops test_gpu_block test_gpu_net test_gpu_profile test_backend_ops
#                              unet_bench nnunet (stripped)
#   .gpubundle/share/nnunet/   lua/nnunet, rules, recipes, data (cmake --install), so
#                              bin/nnunet finds its home in <exe>/../share/nnunet and the
#                              Lua code always matches the binary
#   .gpubundle/lib/            every shared library the binaries need beyond the basic
#                              system ones, found with ldd: oneDNN, libgomp, OpenCL
#                              loader, cudart 13, Lua 5.4, lua-cjson, nifti2/znz, zlib,
#                              cairo and its chain (pixman, fontconfig, freetype, png,
#                              expat, brotli, X11/xcb...), libzip, libcurl and its chain
#                              (ssl, gnutls, krb5, ...), libtiff and its chain (jpeg,
#                              webp, jbig, Lerc, deflate, lzma); those over 256 KiB as NAME.xz
#   .gpubundle/lib/fallback/   libstdc++ and libgcc_s: used only where the device's own
#                              are missing or too old (tests/gpu/bundle_env.sh decides)
# Not carried: libc, libm, libdl, libpthread, librt, ld-linux (every Linux has them)
# and cuBLAS/cuBLASLt/cuDNN (too big): bundle_env.sh takes the device's PyTorch ones.
# Usage (repo root): sh tests/gpu/make_bundle.sh
#   SRC=dir    source tree to build (default .; e.g. a `git worktree add` of HEAD when
#              the working tree holds someone's unfinished changes); the bundle is
#              always written to ./.gpubundle, the folder the device tool carries
#   BUILD=dir  build folder (default SRC/build-bundle)
set -eu
S=${SRC:-.}
B=${BUILD:-$S/build-bundle}
G=.gpubundle
export PATH=/usr/local/cuda/bin:$PATH
cmake -S "$S" -B "$B" -DCMAKE_CUDA_ARCHITECTURES=90 -DNNUNET_BENCH=ON >/dev/null
cmake --build "$B" -j2 --target nnunet test_gpu_ops test_gpu_block test_gpu_net test_gpu_profile test_backend_ops unet_bench
grep -qx '/.gpubundle/' .git/info/exclude 2>/dev/null || echo '/.gpubundle/' >> .git/info/exclude
rm -rf $G && mkdir -p $G/bin $G/lib/fallback
for t in test_gpu_ops test_gpu_block test_gpu_net test_gpu_profile test_backend_ops; do cp "$B/tests/$t" $G/bin/; done
cp "$B/unet_bench" $G/bin/
# bin/nnunet + share/nnunet/{lua/nnunet,rules,recipes,data}
cmake --install "$B" --prefix "$(pwd)/$G" >/dev/null
strip $G/bin/*
[ -f $G/share/nnunet/lua/nnunet/host.lua ] || { echo "make_bundle: install did not give share/nnunet" >&2; exit 1; }
# every library any binary resolves here, minus the basic system ones and the CUDA
# libraries the device brings (its PyTorch wheels) or that cudart loads (libcuda)
for f in $G/bin/*; do ldd "$f"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
while read -r name path; do
  case $name in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libresolv.so.*) continue ;;
    libcublas*|libcudnn*|libcuda.so.*) continue ;;
    libstdc++.so.*|libgcc_s.so.*) cp -L "$path" $G/lib/fallback/"$name"; continue ;;
  esac
  if [ "$(stat -L -c %s "$path")" -gt 262144 ]; then
    xz -T2 -6 -c "$(readlink -f "$path")" > $G/lib/"$name".xz
  else
    cp -L "$path" $G/lib/"$name"
  fi
done
ls $G/lib $G/lib/fallback
du -sh $G
