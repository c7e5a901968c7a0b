#!/bin/sh
# Runs every test program and the golden suite; prints each one's result and one total line
# "N passed, N failed". Exit status 1 if anything failed or a program crashed.
build=$1; golden=$2; shift 2
passed=0; failed=0; status=0
run_one() { # name, command...
    name=$1; shift
    out=$("$@" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        printf '%s\n' "$out" | tail -n 20
        echo "$name: no result line (exit $rc)"; failed=$((failed + 1)); status=1; return
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" | grep -v '^ok ' | tail -n 40; status=1
        [ "$f" -eq 0 ] && f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
    printf '%-40s %s\n' "$name" "$line"
}
for t in "$@"; do
    case "$t" in
    *.sh) run_one "$t" sh "$t" "$build" "$golden" ;;   # script tests get the build and golden dirs
    *) run_one "${t#$build/}" "$t" ;;
    esac
done
if [ -d "$golden" ]; then
    run_one "golden ($golden)" "$build/mtgrad" check-golden "$golden"
else
    echo "golden directory $golden not found (set GOLDEN=...)"; failed=$((failed + 1)); status=1
fi
echo "$passed passed, $failed failed"
exit $status
