#!/bin/sh
# Installs the Debian packages the build and tests need, if they are missing.
# Called by `make` (through a stamp file) and by .ci/run. A fresh Debian machine has gcc and make only.
#   libcjson-dev, pkg-config      the CLI's JSON and the install test
#   libopenblas-dev, zlib1g-dev   the training engine (GEMM, gzip'd IDX files)
#   dataset-fashion-mnist         the multifashion and fashion-k benchmarks
#   python3-numpy, python3-pytest, python3-torch   the Python binding's tests
# With --ci (from .ci/run) also the tools of the CI-only checks, which a plain build does not need:
#   valgrind                      `make memcheck` (the CLI under memcheck)
#   clang, libomp-dev, libclang-rt-dev   `make tsan`: TSan with LLVM's OpenMP runtime and its
#                                 Archer tool (libarcher.so); clang's TSan runtime is only a
#                                 Recommends of clang, hence libclang-rt-dev
set -e
need=""
[ -f /usr/include/cjson/cJSON.h ] || need="$need libcjson-dev"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
[ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ] || need="$need libopenblas-dev"
[ -f /usr/include/zlib.h ] || need="$need zlib1g-dev"
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need="$need dataset-fashion-mnist"
[ -x /usr/bin/python3 ] || need="$need python3"
/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || need="$need python3-numpy"
/usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || need="$need python3-pytest"
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || need="$need python3-torch"
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need="$need python3-pip"
/usr/bin/python3 -c "import setuptools, wheel" >/dev/null 2>&1 || need="$need python3-setuptools python3-wheel"
if [ "${1:-}" = --ci ]; then
    command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
    command -v clang >/dev/null 2>&1 || need="$need clang"
    ls /usr/lib/llvm-*/lib/libarcher.so >/dev/null 2>&1 || need="$need libomp-dev"
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.tsan-x86_64.a >/dev/null 2>&1 ||
        need="$need libclang-rt-dev"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "mtgrad needs the Debian packages:$need"
    echo "---> HINT: sudo apt-get install$need   (or run make as root)"
    exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq --no-install-recommends $need >/dev/null
