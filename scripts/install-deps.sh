#!/bin/sh
# Installs the Debian 12 packages nnunet needs when run as root, or prints the
# exact apt-get line otherwise. Called by every Makefile target before building.
set -e
PKGS="build-essential cmake pkg-config liblua5.4-dev lua5.4 lua-cjson lua-cjson-dev \
libnifti2-dev libniftiio-dev zlib1g-dev libdnnl-dev libcairo2-dev libomp-dev libzip-dev libcurl4-openssl-dev libpng-dev libtiff-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $missing
else
  echo "nnunet needs these Debian packages:$missing" >&2
  echo "run:  sudo apt-get install -y$missing" >&2
  exit 1
fi
