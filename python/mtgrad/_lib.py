"""_lib.py — finds and loads libmtgrad with ctypes and declares the prototypes of include/mtgrad.h.

Everything else in the package talks to C through the `lib` object defined here. The prototypes
below mirror one version of the header (HEADER_VERSION); a library whose major.minor differs is
refused at import, because ctypes cannot check signatures and a mismatch would crash instead of
failing. tests/test_api.py checks HEADER_VERSION and the ParamDesc layout against the header.

Where the library comes from, first match wins:
  1. $MTGRAD_LIB: the library file, or a directory that holds libmtgrad.so (no fallback if set:
     asking for a library and silently getting another one hides mistakes);
  2. the package directory (a pip-installed package carries its own copy);
  3. the repository's build directory (python/../build), for working from a checkout;
  4. the system's libmtgrad.so.0 (`make install`), through the dynamic loader.
"""
import ctypes
import ctypes.util
import os

# The header version these prototypes were written against (MTGRAD_VERSION_* in mtgrad.h).
HEADER_VERSION = (0, 1, 0)
HEADER_VERSION_NUMBER = HEADER_VERSION[0] * 10000 + HEADER_VERSION[1] * 100 + HEADER_VERSION[2]

_HERE = os.path.dirname(os.path.abspath(__file__))
_NAMES = ("libmtgrad.so", "libmtgrad.so.0")


class ParamDesc(ctypes.Structure):
    """mtgrad_param_desc, the one struct of the API that Python reads field by field."""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("type", ctypes.c_int),  # mtgrad_param_type (a C enum: int on every ABI we build for)
        ("default", ctypes.c_double),
        ("lo", ctypes.c_double),
        ("hi", ctypes.c_double),
        ("choices", ctypes.c_char_p),
        ("flags", ctypes.c_uint),
        ("doc", ctypes.c_char_p),
    ]


def _in_dir(d):
    for n in _NAMES:
        p = os.path.join(d, n)
        if os.path.exists(p):
            return p
    return None


def _candidates():
    """(description, path) pairs in search order; path None means "not there"."""
    env = os.environ.get("MTGRAD_LIB")
    if env:
        path = _in_dir(env) if os.path.isdir(env) else env
        return [("$MTGRAD_LIB=" + env, path or os.path.join(env, _NAMES[0]))], True
    build = os.path.normpath(os.path.join(_HERE, "..", "..", "build"))
    return [("package directory " + _HERE, _in_dir(_HERE)),
            ("build directory " + build, _in_dir(build)),
            ("system library path", ctypes.util.find_library("mtgrad"))], False


def _load():
    tried = []
    candidates, explicit = _candidates()
    for what, path in candidates:
        if not path:
            tried.append(what + ": not found")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s: %s" % (what, e))
            if explicit:
                break
    raise ImportError("mtgrad: cannot load libmtgrad (build it with `make`, or set MTGRAD_LIB "
                      "to the library file). Tried:\n  " + "\n  ".join(tried))


lib, path = _load()

_P = ctypes.c_void_p       # opaque handles and array pointers (passed as plain addresses)
_I64 = ctypes.c_int64
_SZ = ctypes.c_size_t
_ST = ctypes.c_int         # mtgrad_status
_STR = ctypes.c_char_p

_PROTOTYPES = {
    # name: (restype, argtypes)
    "mtgrad_version_number": (ctypes.c_int, []),
    "mtgrad_version_string": (_STR, []),
    "mtgrad_status_str": (_STR, [_ST]),
    "mtgrad_method_count": (_SZ, []),
    "mtgrad_method_at": (_P, [_SZ]),
    "mtgrad_method_by_name": (_P, [_STR]),
    "mtgrad_method_name": (_STR, [_P]),
    "mtgrad_method_summary": (_STR, [_P]),
    "mtgrad_method_citation": (_STR, [_P]),
    "mtgrad_method_flags": (ctypes.c_uint, [_P]),
    "mtgrad_method_param_count": (_SZ, [_P]),
    "mtgrad_method_param_at": (ctypes.POINTER(ParamDesc), [_P, _SZ]),
    "mtgrad_param_default_str": (ctypes.c_int, [ctypes.POINTER(ParamDesc), _P, _SZ]),
    "mtgrad_aggregator_new": (_ST, [ctypes.POINTER(_P), _STR, _I64, _STR, _P, _SZ]),
    "mtgrad_aggregator_free": (None, [_P]),
    "mtgrad_aggregator_set_param": (_ST, [_P, _STR, _STR]),
    "mtgrad_aggregator_get_param": (ctypes.c_int, [_P, _STR, _P, _SZ]),
    "mtgrad_aggregator_method": (_P, [_P]),
    "mtgrad_aggregator_k": (_I64, [_P]),
    "mtgrad_aggregator_error": (_STR, [_P]),
    "mtgrad_aggregate_f32": (_ST, [_P, _P, _I64, _I64, _I64, _P, _P, _P]),
    "mtgrad_aggregate_f64": (_ST, [_P, _P, _I64, _I64, _I64, _P, _P, _P]),
    "mtgrad_weights_from_gram": (_ST, [_P, _P, _I64, _P, _P]),
    "mtgrad_aggregator_update": (_ST, [_P, _P, _I64]),
    "mtgrad_weights_from_cross_gram": (_ST, [_P, _P, _I64, _P, _P]),
    "mtgrad_aggregator_feedback": (_ST, [_P, _P, _I64]),
    "mtgrad_aggregator_set_draws": (_ST, [_P, _P, _SZ]),
    "mtgrad_aggregator_times": (_ST, [_P, _P]),
    "mtgrad_aggregator_clip_scale": (_ST, [_P, _P]),
    "mtgrad_aggregator_reset": (_ST, [_P]),
    "mtgrad_aggregator_save": (_ST, [_P, _P, ctypes.POINTER(_SZ)]),
    "mtgrad_aggregator_load": (_ST, [_P, _P, _SZ]),
    "mtgrad_gram_f32": (_ST, [_P, _I64, _I64, _I64, _P]),
    "mtgrad_gram_f64": (_ST, [_P, _I64, _I64, _I64, _P]),
    "mtgrad_combine_f32": (_ST, [_P, _I64, _I64, _I64, _P, _P]),
    "mtgrad_combine_f64": (_ST, [_P, _I64, _I64, _I64, _P, _P]),
    "mtgrad_simplex_project": (_ST, [_P, _I64, _P]),
}


def _declare(name):
    f = getattr(lib, name)
    f.restype, f.argtypes = _PROTOTYPES[name]


# The version first: a library of another version may lack the other symbols, and its version
# is the informative error then.
try:
    _declare("mtgrad_version_number")
    _declare("mtgrad_version_string")
except AttributeError:
    raise ImportError("mtgrad: %s is not libmtgrad (no mtgrad_version_number)" % path) from None
version_number = lib.mtgrad_version_number()
version_string = lib.mtgrad_version_string().decode()

if version_number // 100 != HEADER_VERSION_NUMBER // 100:
    raise ImportError(
        "mtgrad: library %s is version %s (%d) but this binding mirrors mtgrad.h %d.%d.%d; "
        "major.minor must match (rebuild the library, or point MTGRAD_LIB at a matching one)"
        % (path, version_string, version_number, *HEADER_VERSION))

for _name in _PROTOTYPES:
    try:
        _declare(_name)
    except AttributeError:
        raise ImportError("mtgrad: library %s (version %s) lacks %s" % (path, version_string,
                                                                         _name)) from None
