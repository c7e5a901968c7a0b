#!/bin/sh
# test_python.sh BUILD_DIR — the Python binding's tests (python/tests, pytest) against
# BUILD_DIR/libmtgrad.so: the NumPy API on the golden files, the torch helper, errors, lifetimes
# and the pip-installed package. Ends with "N passed, N failed" (pytest's counts; errors count
# as failures). Skips (0 passed, 0 failed) when the library was built with a sanitizer, which
# cannot be loaded into an uninstrumented python, or when no python3 with numpy and pytest exists.
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
lib="$build/libmtgrad.so"
if [ ! -e "$lib" ]; then echo "FAIL: $lib not built"; echo "0 passed, 1 failed"; exit 1; fi
# the sanitizer runtimes' symbols are in the library's dynamic string table
if grep -qaE '__(asan|tsan|msan)_init|__ubsan_handle' "$lib"; then
    echo "skip: $lib is built with a sanitizer; python cannot load it"
    echo "0 passed, 0 failed"; exit 0
fi
if ! py=$(sh python/pick_python.sh); then
    echo "skip: no python3 with numpy and pytest (Debian: python3-numpy python3-pytest)"
    echo "0 passed, 0 failed"; exit 0
fi
"$py" -c 'import torch' >/dev/null 2>&1 ||
    echo "note: $py has no torch (Debian python3-torch); the torch tests are skipped"
out=$(MTGRAD_LIB="$(cd "$build" && pwd)/libmtgrad.so" PYTHONPATH=python PYTHONDONTWRITEBYTECODE=1 \
    "$py" -m pytest -q -p no:cacheprovider python/tests 2>&1); rc=$?
printf '%s\n' "$out" | grep -vE '^[.sFEx]+ *(\[ *[0-9]+%\])?$' | tail -n 60
summary=$(printf '%s\n' "$out" | tail -n 1)
count() { printf '%s\n' "$summary" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
# "N error" also matches "N errors"
passed=$(count passed); failed=$(( $(count failed) + $(count error) ))
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1  # pytest itself failed (collection, usage)
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
