# shellcheck shell=bash
# bundle_env.sh: sourced (bash) by run_on_device.sh and e2e.sh, from the repo root.
# Unpacks .gpubundle/lib (tests/gpu/make_bundle.sh) into $NNU_LIB: NAME.xz are
# decompressed (xz, else python3's lzma), the rest copied; finds cuBLAS/cuBLASLt and
# cuDNN 9 on the machine (PyTorch's wheels first, then a CUDA toolkit) and exports
# LD_LIBRARY_PATH. The carried libstdc++/libgcc_s (lib/fallback) are added only
# when the machine's own leave a library of bin/nnunet unresolved (a missing library
# or a too old GLIBCXX version), so a newer system libstdc++ is never shadowed.
# Exports: BUNDLE NNU_LIB LD_LIBRARY_PATH NNU_FALLBACK (1 when the fallback is used)
# and NNU_ENV_DONE, so a script started from one that sourced this (run_on_device.sh
# -> e2e.sh) skips the work.
if [ "${NNU_ENV_DONE:-}" = 1 ] && [ -n "${BUNDLE:-}" ] && [ -n "${NNU_LIB:-}" ]; then return 0; fi
ROOT=${ROOT:-$(pwd)}
BUNDLE=${BUNDLE:-$ROOT/.gpubundle}
NNU_LIB=${NNU_LIB:-/tmp/nnu_lib}
mkdir -p "$NNU_LIB/fallback"
if [ ! -d "$BUNDLE/lib" ]; then
  echo "bundle_env: no $BUNDLE/lib (run sh tests/gpu/make_bundle.sh where the toolchain is)" >&2
fi
nnu_unxz() {   # src.xz dst
  if command -v xz >/dev/null 2>&1; then xz -dc "$1" > "$2.tmp"
  else python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$1" "$2.tmp"
  fi && mv "$2.tmp" "$2"
}
for f in "$BUNDLE"/lib/* "$BUNDLE"/lib/fallback/*; do
  [ -f "$f" ] || continue
  case $f in */fallback/*) d=$NNU_LIB/fallback ;; *) d=$NNU_LIB ;; esac
  n=$(basename "$f")
  case $n in
    *.xz) t=$d/${n%.xz}; [ "$t" -nt "$f" ] || nnu_unxz "$f" "$t" ;;
    *)    t=$d/$n;       [ "$t" -nt "$f" ] || cp "$f" "$t" ;;
  esac
done
# cuBLAS + cuBLASLt (one folder: their versions must match) and cuDNN 9 from the
# machine: PyTorch's wheels first, then the toolkit
NNU_SITE=$(python3 -c "import torch,os;print(os.path.dirname(os.path.dirname(torch.__file__)))" 2>/dev/null)
nnu_pick() { find ${NNU_SITE:+$NNU_SITE/nvidia} /usr/local/cuda*/lib* /opt /usr/lib -name "$1" 2>/dev/null | head -1; }
NNU_LIBDIRS=
# (libnvrtc: cuDNN's runtime-compiled engines load it; without it they fail to finalize)
for n in libcublas.so.13 libcudnn.so.9 libnvrtc.so.13; do
  f=$(nnu_pick $n); [ -n "$f" ] || continue
  case "$NNU_LIBDIRS:" in *":$(dirname "$f"):"*) ;; *) NNU_LIBDIRS="$NNU_LIBDIRS:$(dirname "$f")" ;; esac
done
export LD_LIBRARY_PATH="$NNU_LIB$NNU_LIBDIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
NNU_FALLBACK=0
if [ -x "$BUNDLE/bin/nnunet" ] && ! "$BUNDLE/bin/nnunet" --version >/dev/null 2>&1; then
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$NNU_LIB/fallback"; NNU_FALLBACK=1
fi
export BUNDLE NNU_LIB NNU_FALLBACK NNU_ENV_DONE=1
