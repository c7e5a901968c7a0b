"""_aggregator.py — the NumPy API: Aggregator (one native mtgrad_aggregator), aggregate() and the
public kernels (gram, combine, simplex_project).

Arrays go to C without a copy when they already have the layout C reads: float32 or float64,
rows of contiguous elements, a non-negative row stride that is a whole number of elements (so a
row slice of a bigger buffer is read in place through ldg). Anything else is copied once,
explicitly, to C-contiguous float64 (float32 stays float32). Outputs have the dtype of G.

ctypes releases the GIL during a call, and an aggregator is not thread-safe in C, so every
aggregator call (and the read of its error message, valid only until the next call) runs under
the aggregator's own lock.
"""
import ctypes
import operator
import threading
import weakref

import numpy as np

from ._errors import MtgradError, ShapeError, Status, check, error
from ._lib import lib
from ._registry import Flag, method_info, value_from_text, value_to_text

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_ERRLEN = 512


def _numpy(x):
    """x as a NumPy array without copying; CPU torch tensors are viewed through NumPy."""
    if type(x).__module__.startswith("torch"):
        if x.device.type != "cpu":
            raise TypeError("mtgrad works on CPU tensors; this one is on %s" % x.device)
        x = x.detach().numpy()
    return np.asarray(x)


def _float_array(x, what):
    a = _numpy(x)
    if a.dtype in (_F32, _F64):
        return a
    if a.dtype.kind not in "biuf":
        raise TypeError("%s must hold real numbers, not %s" % (what, a.dtype))
    return a.astype(np.float64)  # explicit copy: C reads float32 or float64 only


def as_matrix(G):
    """(array, k, d, ldg) for G: the array itself when C can read it in place, else a copy."""
    a = _float_array(G, "G")
    if a.ndim != 2:
        raise ShapeError(Status.E_SHAPE, "G must be a 2-D array (k x d), got shape %s" % (a.shape,))
    k, d = a.shape
    size = a.itemsize
    s0, s1 = a.strides
    inner = d <= 1 or s1 == size
    rows = k <= 1 or (s0 > 0 and s0 % size == 0 and s0 // size >= d)
    if not (a.flags.aligned and inner and rows):
        a = np.ascontiguousarray(a)
        s0 = d * size
    ldg = s0 // size if k > 1 else max(d, 1)
    return a, k, d, ldg


def as_vector(x, n, what, dtype=_F64):
    """x as a contiguous 1-D array of n values of dtype (zero-copy when it already is one)."""
    a = np.ascontiguousarray(_float_array(x, what), dtype=dtype)
    if a.ndim != 1 or a.shape[0] != n:
        raise ShapeError(Status.E_SHAPE, "%s must have shape (%d,), got %s" % (what, n, a.shape))
    return a


def _ptr(a):
    return a.ctypes.data if a is not None else None


def _encode(s, what):
    if not isinstance(s, str):
        raise TypeError("%s must be a str, not %s" % (what, type(s).__name__))
    if "\0" in s:
        raise error(Status.E_INVAL, "%s contains a NUL character" % what)
    return s.encode()


class Aggregator:
    """One balancing method with its state for k tasks, e.g. Aggregator("cagrad", 3, c=0.4).

    Parameters are the method's (see methods()[name].params); values may be numbers, bools,
    strings or sequences of numbers (for list parameters). The native aggregator is freed when
    this object is garbage-collected, or by close().
    """

    def __init__(self, method, k, **params):
        self._h = None  # the native handle (an int); None once closed
        self._lock = threading.Lock()
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERRLEN)
        st = lib.mtgrad_aggregator_new(ctypes.byref(handle), _encode(method, "method"),
                                       operator.index(k), None, ctypes.addressof(err), _ERRLEN)
        if st != Status.OK:
            raise error(st, err.value.decode(errors="replace"))
        self._h = handle.value
        self._free = weakref.finalize(self, lib.mtgrad_aggregator_free, self._h)
        self._info = method_info(lib.mtgrad_method_name(lib.mtgrad_aggregator_method(self._h))
                                 .decode())
        self._k = int(k)
        self._flags = int(self._info.flags)
        self.scratch = {}  # buffers that helpers (mtgrad.torch) reuse across calls
        for name, value in params.items():
            self.set_param(name, value)

    # ------------------------------------------------------------ plumbing

    def _handle(self):
        if self._h is None:
            raise ValueError("this mtgrad aggregator is closed")
        return self._h

    def _run(self, fn, *args):
        """Call fn(handle, *args) under the lock; raise with the library's message on failure.
        Returns the status (OK or a solver-stopped status, which only warns)."""
        with self._lock:  # the handle is read under the lock: close() may run in another thread
            h = self._handle()
            st = fn(h, *args)
            if st != Status.OK:
                check(st, lambda: lib.mtgrad_aggregator_error(h).decode(errors="replace"))
        return st

    def close(self):
        """Free the native aggregator now (later calls raise ValueError). Idempotent."""
        with self._lock:
            if self._h is not None:
                self._free()
                self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._h is None else "k=%d" % self._k
        return "<mtgrad.Aggregator %s %s>" % (self._info.name, state)

    # ------------------------------------------------------------ description

    @property
    def method(self):
        """The MethodInfo of this aggregator's method."""
        return self._info

    @property
    def name(self):
        return self._info.name

    @property
    def k(self):
        return self._k

    @property
    def flags(self):
        return Flag(self._flags)

    def has(self, flag):
        """True if the method has every bit of `flag` (a Flag)."""
        return (self._flags & int(flag)) == int(flag)

    # ------------------------------------------------------------ parameters

    def set_param(self, name, value):
        """Set one parameter (takes effect from the next call; state is kept)."""
        self._run(lib.mtgrad_aggregator_set_param, _encode(name, "parameter name"),
                  _encode(value_to_text(value), "parameter value"))

    def get_param_text(self, name):
        """The current value of a parameter as the library writes it."""
        key = _encode(name, "parameter name")
        with self._lock:
            h = self._handle()
            n = lib.mtgrad_aggregator_get_param(h, key, None, 0)
            if n < 0:
                raise error(Status.E_INVAL, "%s: unknown parameter '%s'" % (self.name, name))
            buf = ctypes.create_string_buffer(n + 1)
            lib.mtgrad_aggregator_get_param(h, key, ctypes.addressof(buf), n + 1)
        return buf.value.decode()

    def get_param(self, name):
        """The current value of a parameter as a Python value."""
        text = self.get_param_text(name)
        return value_from_text(self._info.params[name].type, text)

    @property
    def params(self):
        """Every parameter's current value: {name: value}."""
        return {n: self.get_param(n) for n in self._info.params}

    # ------------------------------------------------------------ aggregation

    def _losses(self, losses, what="losses"):
        if losses is None:
            return None
        return as_vector(losses, self._k, what)

    def aggregate_into(self, G, k, d, ldg, f32, losses, direction, weights):
        """Low level: pointers (ints) to G, losses (or None), direction (d values, f32 like G)
        and weights (k doubles, or None). The caller keeps the buffers alive and sized."""
        fn = lib.mtgrad_aggregate_f32 if f32 else lib.mtgrad_aggregate_f64
        return self._run(fn, G, k, d, ldg, losses, direction, weights)

    def __call__(self, G, losses=None, *, out=None):
        """(direction, weights) for the k x d matrix G of task gradients. `losses` (k values) is
        needed by methods with "losses" in needs. `weights` is None for methods without task
        weights. `out`: an optional preallocated direction (d values, dtype of G)."""
        a, k, d, ldg = as_matrix(G)
        lo = self._losses(losses)
        if out is None:
            out = np.empty(d, dtype=a.dtype)
        elif not (isinstance(out, np.ndarray) and out.dtype == a.dtype and out.shape == (d,)
                  and out.flags.c_contiguous and out.flags.writeable):
            raise ShapeError(Status.E_SHAPE, "out must be a writeable contiguous %s array of "
                             "shape (%d,)" % (a.dtype, d))
        w = np.empty(self._k, dtype=np.float64) if self._flags & Flag.HAS_WEIGHTS else None
        self.aggregate_into(_ptr(a), k, d, ldg, a.dtype == _F32, _ptr(lo), _ptr(out), _ptr(w))
        return out, w

    def _kk(self, M, what):
        if M is None:
            return None
        m = np.ascontiguousarray(_float_array(M, what), dtype=np.float64)
        if m.shape != (self._k, self._k):
            raise ShapeError(Status.E_SHAPE, "%s must have shape (%d, %d), got %s"
                             % (what, self._k, self._k, m.shape))
        return m

    def weights_from_gram(self, M, losses=None):
        """Task weights from the k x k Gram matrix M = G Gᵀ (M may be None for methods that do
        not need it; marigold takes a given M as its exact oracle h = M w)."""
        m = self._kk(M, "M")
        lo = self._losses(losses)
        w = np.empty(self._k, dtype=np.float64)
        self._run(lib.mtgrad_weights_from_gram, _ptr(m), self._k, _ptr(lo), _ptr(w))
        return w

    def weights_from_cross_gram(self, C, losses=None):
        """Task weights from the cross Gram C = G(a) G(b)ᵀ of two independent batches (k x k,
        not symmetric) for methods with Flag.CROSS_GRAM (sdmgrad sampling=double)."""
        c = self._kk(C, "C")  # None reaches the library, which refuses it (E_INVAL)
        lo = self._losses(losses)
        w = np.empty(self._k, dtype=np.float64)
        self._run(lib.mtgrad_weights_from_cross_gram, _ptr(c), self._k, _ptr(lo), _ptr(w))
        return w

    def feedback(self, h):
        """Methods with Flag.NEEDS_FEEDBACK (marigold): h[i] = <g_i, d>, the derivative of task
        i's loss along the direction of the last call (one feedback per call)."""
        hv = as_vector(h, self._k, "h")
        self._run(lib.mtgrad_aggregator_feedback, _ptr(hv), self._k)

    def update(self, losses_after):
        """The k losses re-evaluated after the optimizer step (methods with "losses_after")."""
        lo = as_vector(losses_after, self._k, "losses_after")
        self._run(lib.mtgrad_aggregator_update, _ptr(lo), self._k)

    def set_draws(self, draws):
        """Replace the next call's random draws (layout per method: see mtgrad.h)."""
        a = np.ascontiguousarray(_float_array(draws, "draws"), dtype=np.float64).reshape(-1)
        self._run(lib.mtgrad_aggregator_set_draws, _ptr(a), a.size)

    def times(self):
        """Seconds of the last call by phase: (Gram, method, combination)."""
        t = np.zeros(3, dtype=np.float64)
        self._run(lib.mtgrad_aggregator_times, _ptr(t))
        return tuple(float(x) for x in t)

    def clip_scale(self):
        """The factor (<= 1) by which the last call clipped the direction and weights (max_norm);
        1.0 when it did not clip. The references give heads the unclipped weights / scale."""
        t = np.zeros(1, dtype=np.float64)
        self._run(lib.mtgrad_aggregator_clip_scale, _ptr(t))
        return float(t[0])

    # ------------------------------------------------------------ state

    def reset(self):
        """Back to the state right after creation (parameters are kept)."""
        self._run(lib.mtgrad_aggregator_reset)

    def save(self):
        """The state as the library's self-describing bytes."""
        n = ctypes.c_size_t(0)
        with self._lock:
            h = self._handle()
            st = lib.mtgrad_aggregator_save(h, None, ctypes.byref(n))
            if st == Status.OK:
                buf = ctypes.create_string_buffer(max(n.value, 1))
                st = lib.mtgrad_aggregator_save(h, ctypes.addressof(buf), ctypes.byref(n))
            if st != Status.OK:
                raise error(st, lib.mtgrad_aggregator_error(h).decode(errors="replace"))
        return buf.raw[:n.value]

    def load(self, data):
        """Restore a state from save(); StateError if it is not this method's with this k."""
        data = bytes(data)
        buf = ctypes.create_string_buffer(data, len(data))
        self._run(lib.mtgrad_aggregator_load, ctypes.addressof(buf), len(data))

    def state_dict(self):
        """{"method", "k", "params" (text values), "state" (bytes)}: everything needed to
        continue later, in the style of torch's state_dict."""
        return {"method": self.name, "k": self._k,
                "params": {n: self.get_param_text(n) for n in self._info.params},
                "state": self.save()}

    def load_state_dict(self, sd):
        """Restore parameters and state from state_dict(); on any failure the aggregator is
        left as it was."""
        if sd.get("method") != self.name or sd.get("k") != self._k:
            raise error(Status.E_STATE, "state_dict of method %r with k = %r does not fit this "
                        "%s aggregator with k = %d" % (sd.get("method"), sd.get("k"),
                                                       self.name, self._k))
        old_state = self.save()
        old_params = {n: self.get_param_text(n) for n in self._info.params}
        try:
            for n, v in sd.get("params", {}).items():
                self.set_param(n, v)
            self.load(sd["state"])
        except (MtgradError, KeyError, TypeError):
            for n, v in old_params.items():
                self.set_param(n, v)
            self.load(old_state)
            raise

    def __reduce__(self):
        return (_from_state_dict, (self.state_dict(),))


def _from_state_dict(sd):
    a = Aggregator(sd["method"], sd["k"])
    a.load_state_dict(sd)
    return a


def aggregate(G, method, *, losses=None, **params):
    """(direction, weights) of one k x d matrix G with a fresh aggregator of `method`."""
    a, k, _, _ = as_matrix(G)
    with Aggregator(method, k, **params) as agg:
        return agg(a, losses)


# ---------------------------------------------------------------- kernels


def _kernel_check(st, name):
    if st != Status.OK:
        raise error(st, "%s failed" % name)


def gram(G):
    """M = G Gᵀ (k x k float64), accumulated in double."""
    a, k, d, ldg = as_matrix(G)
    M = np.empty((k, k), dtype=np.float64)
    f32 = a.dtype == _F32
    fn = lib.mtgrad_gram_f32 if f32 else lib.mtgrad_gram_f64
    _kernel_check(fn(_ptr(a), k, d, ldg, _ptr(M)), fn.__name__)
    return M


def combine(G, w):
    """Σ_i w[i]·G[i] (d values, dtype of G), accumulated in double."""
    a, k, d, ldg = as_matrix(G)
    wv = as_vector(w, k, "w")
    out = np.empty(d, dtype=a.dtype)
    fn = lib.mtgrad_combine_f32 if a.dtype == _F32 else lib.mtgrad_combine_f64
    _kernel_check(fn(_ptr(a), k, d, ldg, _ptr(wv), _ptr(out)), fn.__name__)
    return out


def simplex_project(y):
    """Euclidean projection of y onto the probability simplex (float64)."""
    a = np.ascontiguousarray(_float_array(y, "y"), dtype=np.float64)
    if a.ndim != 1:
        raise ShapeError(Status.E_SHAPE, "y must be 1-D, got shape %s" % (a.shape,))
    out = np.empty_like(a)
    _kernel_check(lib.mtgrad_simplex_project(_ptr(a), a.shape[0], _ptr(out)),
                  "mtgrad_simplex_project")
    return out


__all__ = ["Aggregator", "aggregate", "gram", "combine", "simplex_project"]
