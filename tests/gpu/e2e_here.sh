#!/bin/bash
# e2e_here.sh: proves on a machine WITHOUT a GPU that .gpubundle is self-contained:
# runs tests/gpu/e2e.sh in a clean environment (env -i, PATH=/usr/bin:/bin) inside a
# private mount namespace (unshare -m, needs root) where the system's own copy of
# every library the bundle carries (Lua, lua-cjson, nifti, zlib, oneDNN, libgomp,
# cairo and its chain, cudart, OpenCL loader, libstdc++, libgcc_s) is masked by
# /dev/null, with FONTCONFIG_FILE pointing nowhere and the font folders and font
# caches hidden under empty tmpfs mounts (no font at all, as on a bare machine),
# and with LD_DEBUG=libs written per process to $OUT/lddebug/ld.PID. Then lists
# every library the nnunet processes initialised that is not in the bundle's
# unpacked folder (expected: only libc, libm, libdl, libpthread, librt, ld-linux and
# the machine's cuBLAS/cuDNN).
#   bash tests/gpu/e2e_here.sh [DEVICE=auto] [BUDGET_S=900] [EPOCHS=1] [ITERATIONS=5]
set -u
DEVICE=${1:-auto}; BUDGET=${2:-900}; EPOCHS=${3:-1}; ITERS=${4:-5}
OUT=${OUT:-/tmp/nnu_out_here}; rm -rf "$OUT"; mkdir -p "$OUT/lddebug"
NNU_LIB=${NNU_LIB:-/tmp/nnu_lib_here}; rm -rf "$NNU_LIB"
B=.gpubundle
# the system paths of the carried libraries, as the build resolved them
MASK=$(for f in $B/lib/lib* $B/lib/fallback/lib*; do n=$(basename "${f%.xz}")
  ldconfig -p | awk -v n="$n" '$1 == n && /x86-64/ {print $NF}'
  for d in /usr/local/lib /usr/local/cuda*/lib*; do [ -e "$d/$n" ] && echo "$d/$n"; done
done | xargs -r readlink -f | sort -u | grep -v '/liblzma\.so')
# liblzma (carried for libtiff) stays visible: the system's xz, which unpacks the
# bundle's .xz libraries, needs it itself; the device has its own xz and liblzma
echo "masking $(echo "$MASK" | wc -l) system libraries"
unshare -m bash -c '
  for f in '"$(echo $MASK)"'; do mount --bind /dev/null "$f" || exit 1; done
  for d in /usr/share/fonts /usr/local/share/fonts /var/cache/fontconfig "$HOME/.cache/fontconfig"; do
    [ -d "$d" ] && { mount -t tmpfs none "$d" || exit 1; }
  done
  exec env -i PATH=/usr/bin:/bin HOME="$HOME" OUT="$0" NNU_LIB="$1" FONTCONFIG_FILE=/nonexistent \
    LD_DEBUG=libs LD_DEBUG_OUTPUT="$0/lddebug/ld" bash tests/gpu/e2e.sh "$2" "$3" "$4" "$5"' \
  "$OUT" "$NNU_LIB" "$DEVICE" "$BUDGET" "$EPOCHS" "$ITERS"
rc=$?
# the processes of bin/nnunet: those whose loader looked for Lua
P=$(grep -l "find library=liblua5.4.so.0" "$OUT"/lddebug/ld.*)
echo "== nnunet processes: $(echo "$P" | wc -l); libraries they initialised from the bundle ($NNU_LIB): $(
  cat $P | grep "calling init:" | awk '{print $NF}' | grep "^$NNU_LIB/" | sort -u | wc -l)"
echo "== libraries they initialised from elsewhere (count of processes):"
cat $P | grep "calling init:" | awk '{print $NF}' | grep -v "^$NNU_LIB/" | sort | uniq -c
echo "== libraries they looked for but did not load (expected: libcuda.so.1, no driver here; libJitPI.so, oneDNN's optional VTune hook):"
cat $P | awk '/find library=/ {sub(/.*find library=/, ""); sub(/ .*/, ""); want[$0] = 1}
  /calling init:/ {n = $NF; sub(/.*\//, "", n); got[n] = 1}
  END {for (w in want) if (!(w in got)) printf "  %s\n", w}' | sort
exit $rc
