#!/bin/sh
# pick_python.sh — prints the first Python 3 that can run the binding's tests (imports numpy and
# pytest), preferring one that also has torch. $PYTHON, if set, is used as is. Exit 1 if none.
# Needed because the python3 first on PATH (pyenv, a venv) may lack Debian's python3-numpy,
# python3-pytest and python3-torch, which /usr/bin/python3 has.
if [ -n "$PYTHON" ]; then echo "$PYTHON"; exit 0; fi
best=""
for p in python3 /usr/bin/python3 /usr/local/bin/python3; do
    command -v "$p" >/dev/null 2>&1 || continue
    "$p" -c 'import numpy, pytest' >/dev/null 2>&1 || continue
    if "$p" -c 'import torch' >/dev/null 2>&1; then echo "$p"; exit 0; fi
    [ -z "$best" ] && best=$p
done
[ -n "$best" ] && { echo "$best"; exit 0; }
exit 1
