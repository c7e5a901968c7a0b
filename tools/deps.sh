#!/bin/sh
# Installs the Debian packages the build and tests need, if they are missing.
# Called by `make` (through a stamp file) and by .ci/run. A fresh Debian machine has gcc and make only.
set -e
need=""
[ -f /usr/include/cjson/cJSON.h ] || need="$need libcjson-dev"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "mtgrad needs the Debian packages:$need"
    echo "---> HINT: sudo apt-get install$need   (or run make as root)"
    exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq $need >/dev/null
