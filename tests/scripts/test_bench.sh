#!/bin/sh
# test_bench.sh BUILD_DIR — `mtgrad bench` (the kernel and method timings): what does not depend on
# timing. Usage errors exit 2; the JSON parses and has every row asked for; the matrix timed is
# the one the peer script rebuilds (bench/peer_torch.py's NumPy copy of the generator: the trace of
# G Gᵀ computed there independently must equal the bench's gram_trace); the floors follow their
# stated rule (bandwidth floor = 4kd bytes / read rate, floor = max(bandwidth, compute),
# xfloor = ms / floor, a Gram method's floor never below the compute floor, a method without
# a Gram held to the read alone); a G of 32 MiB or more gets floors re-measured between the
# calls (floor_interleaved, a floor per method) and a small one does not; the table names its floors. Ends with "N passed, N failed"; exits 1 on failure.
build=${1:-build}
CLI_TEST=mtgrad_bench
. "$(dirname "$0")/cli_lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)

# ---------------------------------------------------------------- usage errors
run "$M" bench --help;               want_rc 0 "--help"
want_in out "usage: mtgrad bench" "usage text"
run "$M" bench -r 2;                 want_rc 2 "-r below 5"
run "$M" bench -k 0;                 want_rc 2 "-k 0"
run "$M" bench -d 0;                 want_rc 2 "-d 0"
run "$M" bench -t 0;                 want_rc 2 "-t 0"
run "$M" bench -m nope -k 2 -d 1e4;  want_rc 2 "unknown method"
want_in err "nope" "unknown method named"
run "$M" bench extra;                want_rc 2 "extra argument"

# ---------------------------------------------------------------- small G: one floor per run
run "$M" bench --json -k 2,5 -d 3001 -t 1,2 -m mgda,mean,graddrop -r 5 --no-blas
want_rc 0 "bench --json (small G)"
cp "$tmp/out" "$tmp/small.json"
py "every (k, d, threads) row, with the methods asked for" "
rows = {(r['k'], r['d'], r['threads']) for r in d['results']}
assert rows == {(k, 3001, t) for k in (2, 5) for t in (1, 2)}, rows
for r in d['results']:
    assert set(r['methods']) == {'mgda', 'mean', 'graddrop'}, r['methods'].keys()
    assert all(m['status'] == 'ok' for m in r['methods'].values())
" "$tmp/small.json"
py "floors follow their rule; small G is not interleaved" "
bw = {f['threads']: f['read_gbs'] for f in d['floors']}
assert all(v > 1 for v in bw.values()), bw
for r in d['results']:
    k, n, t = r['k'], r['d'], r['threads']
    assert r['floor_interleaved'] is False
    want = 1e3 * 4.0 * k * n / (bw[t] * 1e9)
    assert abs(r['bandwidth_floor_ms'] - want) <= 1e-9 * want, (r['bandwidth_floor_ms'], want)
    assert r['compute_floor_ms'] == 0  # --no-blas: no dgemm peak, so no compute floor
    assert r['floor_ms'] == max(r['bandwidth_floor_ms'], r['compute_floor_ms'])
    assert abs(r['gram_xfloor'] - r['gram_ms'] / r['floor_ms']) <= 1e-12 * r['gram_xfloor']
    for m in r['methods'].values():
        assert m['e2e_ms'] > 0 and m['floor_ms'] == r['bandwidth_floor_ms'], m
        assert abs(m['xfloor'] - m['e2e_ms'] / m['floor_ms']) <= 1e-12 * m['xfloor'], m
" "$tmp/small.json"
if command -v "$PY" >/dev/null 2>&1 && "$PY" -c "import numpy" 2>/dev/null; then
    py "the timed G is the peer script's G (trace of G Gᵀ, computed in NumPy)" "
sys.path.insert(0, '$root/bench')
import numpy as np
import peer_torch
for r in d['results']:
    G = peer_torch.make_G(r['k'], r['d'], 12345 + r['k']).astype(np.float64)
    tr = float((G * G).sum())
    assert abs(tr - r['gram_trace']) <= 1e-12 * tr, (tr, r['gram_trace'])
" "$tmp/small.json"
fi

# ---------------------------------------------------------------- the peers time the same methods
# bench/peer_torch.py's TorchJD formulations must compute what the mtgrad method they are timed
# against computes (else the ratio compares different things): the same direction on a small G,
# through the Python binding. Needs torch and a library python can load (no sanitizer).
lib="$root/$build/libmtgrad.so"
[ "${build#/}" != "$build" ] && lib="$build/libmtgrad.so"
if "$PY" -c "import torch, numpy" 2>/dev/null && [ -e "$lib" ] &&
    ! grep -qaE '__(asan|tsan|msan)_init|__ubsan_handle' "$lib"; then
    echo '{}' > "$tmp/none.json"
    MTGRAD_LIB="$lib" PYTHONPATH="$root/python" py "TorchJD formulations = mtgrad's methods" "
sys.path.insert(0, '$root/bench')
import numpy as np, torch
import mtgrad, peer_torch
torch.manual_seed(0)
def same(a, b, what):
    err = np.abs(a - b).max() / np.abs(b).max()
    assert err < 1e-4, (what, err)
for k in (2, 3, 6):
    G = torch.from_numpy(peer_torch.make_G(k, 500, 7 + k))
    for peer, ours in (('imtl_g_torchjd', 'imtl_g'), ('aligned_mtl_torchjd', 'aligned_mtl'),
                       ('pcgrad_torchjd', 'pcgrad')):
        if ours == 'pcgrad' and k > 2:
            continue  # random projection order: the same only when there is one other task
        got = peer_torch.torchjd_gramian_weighted(torch, G, peer_torch.TORCHJD_WEIGHTINGS[peer])
        want, _ = mtgrad.aggregate(G.numpy(), ours)
        same(got.numpy().astype(np.float64), want.astype(np.float64), (peer, k))
" "$tmp/none.json"
fi

# ---------------------------------------------------------------- large G: floors between calls
# k = 16, d = 1.2e6: 77 MB of G, above the 32 MiB line; at k = 16 one thread's f64 arithmetic
# (17 FMA-flops per 4 bytes) outlasts its read, so the compute floor is the larger term
run "$M" bench --json -k 16 -d 1.2e6 -t 1 -m mean,mgda -r 5
want_rc 0 "bench --json (large G)"
cp "$tmp/out" "$tmp/large.json"
py "large G: floors re-measured per method; the compute floor only for Gram methods" "
(r,) = d['results']
assert r['floor_interleaved'] is True
if d['floors'][0]['dgemm_gflops'] is not None:  # built with OpenBLAS: the dgemm peak
    assert r['compute_floor_ms'] > 0
assert r['floor_ms'] == max(r['bandwidth_floor_ms'], r['compute_floor_ms'])
ms = r['methods']
assert ms['mgda']['gram'] is True and ms['mean']['gram'] is False, ms
for m in ms.values():
    assert m['bandwidth_floor_ms'] > 0, m
    if m['gram']:  # a Gram's arithmetic: never below the compute floor
        assert m['floor_ms'] == max(m['bandwidth_floor_ms'], r['compute_floor_ms']), m
    else:          # no Gram, no k(k+1)d flops: the read alone
        assert m['floor_ms'] == m['bandwidth_floor_ms'], m
    assert abs(m['xfloor'] - m['e2e_ms'] / m['floor_ms']) <= 1e-12 * m['xfloor'], m
" "$tmp/large.json"

# ---------------------------------------------------------------- the table
run "$M" bench -k 2 -d 3001 -t 1 -m mean -r 5 --no-blas
want_rc 0 "bench table"
want_in out "read bandwidth" "table names the read bandwidth"
want_in out "xfloor" "table has xfloor"
want_in out "mean" "table has the method row"
cli_test_end
