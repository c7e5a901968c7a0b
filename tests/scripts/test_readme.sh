#!/bin/sh
# Checks README.md against the build: the ```c example compiles against the library and runs,
# the methods table between the markers equals `mtgrad methods --markdown`, and the quick start
# and CLI verbs it names exist. Usage: test_readme.sh BUILD. Ends with "N passed, N failed".
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
passed=0; failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL test_readme: $*"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtgrad-readme.XXXXXX") || { echo "0 passed, 1 failed"; exit 1; }
trap 'rm -rf "$tmp"' EXIT

# 1. the C example: the first ```c block, a complete program
awk '/^```c$/ {inblk = 1; next} inblk && /^```$/ {exit} inblk {print}' README.md >"$tmp/example.c"
if [ -s "$tmp/example.c" ]; then ok; else bad "README.md has no \`\`\`c block"; fi
if ${CC:-cc} -std=c11 $MTGRAD_TEST_LDFLAGS -Wall -Wextra -Werror -Iinclude -o "$tmp/example" "$tmp/example.c" \
    "$build/libmtgrad.a" -lm -fopenmp 2>"$tmp/cc.err"; then
    ok
    if "$tmp/example" >"$tmp/example.out" 2>&1; then ok; else
        bad "the README example exits with $?: $(cat "$tmp/example.out")"
    fi
else
    bad "the README example does not compile: $(head -n 20 "$tmp/cc.err")"
fi

# 2. the methods table is what the CLI prints
sed -n '/^<!-- methods:begin -->$/,/^<!-- methods:end -->$/p' README.md | sed '1d;$d' >"$tmp/table.md"
if "$build/mtgrad" methods --markdown >"$tmp/cli.md" 2>"$tmp/cli.err"; then
    ok
    if [ -s "$tmp/cli.md" ] && cmp -s "$tmp/table.md" "$tmp/cli.md"; then ok; else
        bad "the README methods table differs from '$build/mtgrad methods --markdown' (regenerate it):"
        diff "$tmp/table.md" "$tmp/cli.md" | head -n 20
    fi
else
    bad "'$build/mtgrad methods --markdown' failed: $(cat "$tmp/cli.err")"
fi
# every registered method appears in the table
for m in $("$build/mtgrad" methods 2>/dev/null | awk '/^[^ \t]/ {print $1}'); do
    if grep -qw -- "$m" "$tmp/table.md"; then ok; else bad "method $m missing from the README table"; fi
done

# 3. quick start and CLI verbs
for s in 'make run' 'make test' 'make install PREFIX=' 'pkg-config'; do
    if grep -q "$s" README.md; then ok; else bad "README.md does not mention '$s'"; fi
done
for verb in methods aggregate check-golden; do
    if grep -q "mtgrad $verb" README.md && "$build/mtgrad" help "$verb" >/dev/null 2>&1; then ok; else
        bad "CLI verb '$verb' is not documented in README.md or unknown to '$build/mtgrad help'"
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
