# cli_lib.sh — what the CLI test scripts share (test_bench_train.sh, test_train_cli.sh,
# test_train_options.sh). Source it after setting `build`, with the temp directory's name:
#   build=${1:-build}; CLI_TEST=mtgrad_train_cli; . "$(dirname "$0")/cli_lib.sh"
# It sets M (the CLI), tmp (removed at exit), the counters, and the checks below; it exits with
# "0 passed, 1 failed" when the CLI is not built. End the script with cli_test_end.
M="$build/mtgrad"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$CLI_TEST.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0
failed=0
# Debian's python3 has everything the checks need; any python3 reads JSON
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
pass() { passed=$((passed + 1)); }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
want_rc() { # WANT DESCRIPTION: the exit status of the last run
    if [ "$rc" -eq "$1" ]; then pass; else fail "$2: exit $rc, want $1 ($(head -c 400 "$tmp/err"))"; fi
}
want_in() { # out|err FIXED-STRING DESCRIPTION
    if grep -qF -- "$2" "$tmp/$1"; then pass; else
        fail "$3: '$2' not in std$1: $(head -c 400 "$tmp/$1")"; fi
}
want_file() { if [ -s "$1" ]; then pass; else fail "$2: $1 missing or empty"; fi; }
# py DESCRIPTION SCRIPT FILE: a Python check of a JSON file d (skipped without python)
py() {
    command -v "$PY" >/dev/null 2>&1 || return 0
    if "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$3" 2>"$tmp/pyerr"; then
        pass; else fail "$1: $(tail -n 2 "$tmp/pyerr")"; fi
}
cli_test_end() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

if [ ! -x "$M" ]; then
    echo "FAIL: $M not built"; echo "0 passed, 1 failed"; exit 1
fi
