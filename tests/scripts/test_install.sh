#!/bin/sh
# Installs the build into a temporary prefix with the Makefile's install target, then builds a
# small program against it through pkg-config and runs it. Usage: test_install.sh BUILD
# Ends with "N passed, N failed"; exit status 1 on any failure.
build=${1:-build}
passed=0; failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL test_install: $*"; }
finish() { rm -rf "$tmp"; echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtgrad-install.XXXXXX") || { echo "0 passed, 1 failed"; exit 1; }
prefix=$tmp/prefix
cd "$(dirname "$0")/../.." || exit 1

if make -s install PREFIX="$prefix" BUILD="$build" >"$tmp/install.log" 2>&1; then ok; else
    bad "make install PREFIX=$prefix BUILD=$build failed:"; tail -n 20 "$tmp/install.log"; finish
fi
for f in include/mtgrad.h lib/libmtgrad.a lib/libmtgrad.so lib/pkgconfig/mtgrad.pc bin/mtgrad; do
    if [ -e "$prefix/$f" ]; then ok; else bad "$f not installed"; fi
done

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
if flags=$(pkg-config --cflags --libs mtgrad 2>"$tmp/pc.err"); then ok; else
    bad "pkg-config --cflags --libs mtgrad: $(cat "$tmp/pc.err")"; finish
fi
version=$(pkg-config --modversion mtgrad)
hdr=$(sed -n 's/^#define MTGRAD_VERSION_STRING "\(.*\)"/\1/p' include/mtgrad.h)
if [ "$version" = "$hdr" ]; then ok; else bad "pkg-config version '$version' vs header '$hdr'"; fi

cat >"$tmp/use.c" <<'PROG'
#include <mtgrad.h>
#include <stdio.h>
int main(void)
{
    const float G[6] = {1, 2, 3, 5, 6, 7};
    float d[3];
    mtgrad_aggregator *a = NULL;
    if (mtgrad_aggregator_new(&a, "mean", 2, NULL, NULL, 0) != MTGRAD_OK) return 2;
    mtgrad_status s = mtgrad_aggregate_f32(a, G, 2, 3, 3, NULL, d, NULL);
    mtgrad_aggregator_free(a);
    return !(s == MTGRAD_OK && d[0] == 3 && d[1] == 4 && d[2] == 5 && mtgrad_version_number() == MTGRAD_VERSION_NUMBER);
}
PROG
# shellcheck disable=SC2086 # flags are words on purpose
if ${CC:-cc} -std=c11 $MTGRAD_TEST_LDFLAGS -o "$tmp/use" "$tmp/use.c" $flags -lm 2>"$tmp/cc.err"; then ok; else
    bad "compiling against the installed library: $(cat "$tmp/cc.err")"; finish
fi
if LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/use"; then ok; else
    bad "the installed library gave a wrong mean of a 2x3 matrix (exit $?)"
fi
# the program really linked the installed shared library
if LD_LIBRARY_PATH="$prefix/lib" ldd "$tmp/use" 2>/dev/null | grep -q "$prefix/lib/libmtgrad.so"; then ok; else
    bad "the program is not linked against $prefix/lib/libmtgrad.so"
fi
if "$prefix/bin/mtgrad" methods 2>/dev/null | grep -q mean; then ok; else bad "installed CLI: mtgrad methods"; fi
finish
