"""_registry.py — the methods and their parameters, read from the C registry.

Nothing here lists a method, a parameter, a default or a range: all of it comes from
mtgrad_method_at / mtgrad_method_param_at / mtgrad_param_default_str, so the binding follows
the library without edits. What this file does own is the conversion between Python values and
the parameters' text form ("name=value"), which is how the C API takes and returns values.
"""
import ctypes
import enum
import functools
import math
import numbers
import types
from collections import namedtuple

from ._lib import lib


class Flag(enum.IntFlag):
    """mtgrad_method_flags bits (include/mtgrad.h)."""
    NEEDS_GRAM = 1 << 0
    NEEDS_JACOBIAN = 1 << 1
    NEEDS_LOSSES = 1 << 2
    NEEDS_RANDOM = 1 << 3
    STATEFUL = 1 << 4
    NEEDS_LOSSES_AFTER = 1 << 5
    HAS_WEIGHTS = 1 << 6
    PROMISE_NONCONFLICT = 1 << 7
    PROMISE_PERMUTATION = 1 << 8
    HEADS_WEIGHTED = 1 << 9
    NEEDS_FEEDBACK = 1 << 10
    CROSS_GRAM = 1 << 11


_PARAM_TYPES = ("real", "int", "bool", "choice", "reals")  # mtgrad_param_type values 0..4
_LO_OPEN, _HI_OPEN, _COMMON = 1, 2, 4

_NEEDS = ((Flag.NEEDS_GRAM, "gram"), (Flag.NEEDS_JACOBIAN, "jacobian"),
          (Flag.NEEDS_LOSSES, "losses"), (Flag.NEEDS_RANDOM, "random"),
          (Flag.NEEDS_LOSSES_AFTER, "losses_after"))

MethodInfo = namedtuple("MethodInfo", "name summary citation flags needs params")
MethodInfo.__doc__ = """A balancing method: `flags` (Flag), `needs` (what its inputs are:
"gram", "jacobian", "losses", "random", "losses_after"), `params` (name -> ParamInfo, the
method's own first, then the common ones)."""

ParamInfo = namedtuple("ParamInfo",
                       "name type default default_text lo hi lo_open hi_open choices common doc")
ParamInfo.__doc__ = """A method parameter: `type` is "real", "int", "bool", "choice" or "reals";
`default` the Python value (float, int, bool, str, tuple of floats), `default_text` the form the
library prints; `lo`/`hi` (+ open flags) the range of numeric types; `choices` the names of a
choice."""


def _text(p):
    return p.decode() if p is not None else ""


def parse_reals(text):
    """A REALS value ("0.9:0.999", "1 2") as a tuple of floats; "" is the empty list."""
    return tuple(float(t) for t in text.replace(":", " ").split())


def value_from_text(ptype, text):
    """A parameter's text (as mtgrad_aggregator_get_param writes it) as a Python value."""
    if ptype == "real":
        return float(text)
    if ptype == "int":
        return int(float(text))
    if ptype == "bool":
        return text in ("1", "true", "yes", "on")
    if ptype == "reals":
        return parse_reals(text)
    return text


def _number_text(x):
    if isinstance(x, numbers.Integral):
        return str(int(x))
    x = float(x)
    # repr is the shortest text that reads back to the same double; the library rejects
    # non-finite values itself, with its own message.
    return repr(x) if math.isfinite(x) else str(x)


def value_to_text(value):
    """A Python value as the text the library parses: bools as 1/0, numbers exactly, sequences
    as "a:b:c", strings unchanged."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "1" if value else "0"
    if isinstance(value, numbers.Number):
        return _number_text(value)
    try:
        items = list(value)
    except TypeError:
        raise TypeError("parameter value %r is not a number, bool, string or sequence of numbers"
                        % (value,)) from None
    return ":".join(_number_text(x) for x in items)


def _param_info(desc):
    d = desc.contents
    n = lib.mtgrad_param_default_str(desc, None, 0)
    buf = ctypes.create_string_buffer(n + 1)
    lib.mtgrad_param_default_str(desc, ctypes.addressof(buf), n + 1)
    ptype = _PARAM_TYPES[d.type]
    default_text = buf.value.decode()
    choices = tuple(_text(d.choices).split("|")) if ptype == "choice" else ()
    numeric = ptype in ("real", "int", "reals")
    return ParamInfo(
        name=_text(d.name), type=ptype, default=value_from_text(ptype, default_text),
        default_text=default_text, lo=d.lo if numeric else None, hi=d.hi if numeric else None,
        lo_open=bool(d.flags & _LO_OPEN), hi_open=bool(d.flags & _HI_OPEN), choices=choices,
        common=bool(d.flags & _COMMON), doc=_text(d.doc))


def _method_info(m):
    flags = Flag(lib.mtgrad_method_flags(m))
    params = {}
    for i in range(lib.mtgrad_method_param_count(m)):
        p = _param_info(lib.mtgrad_method_param_at(m, i))
        params[p.name] = p
    return MethodInfo(
        name=_text(lib.mtgrad_method_name(m)), summary=_text(lib.mtgrad_method_summary(m)),
        citation=_text(lib.mtgrad_method_citation(m)), flags=flags,
        needs=tuple(word for bit, word in _NEEDS if flags & bit),
        params=types.MappingProxyType(params))


@functools.lru_cache(maxsize=None)
def _all_methods():
    out = {}
    for i in range(lib.mtgrad_method_count()):
        info = _method_info(lib.mtgrad_method_at(i))
        out[info.name] = info
    return out


def methods():
    """The library's methods in registry order: {name: MethodInfo}."""
    return dict(_all_methods())


def method_info(name):
    """The MethodInfo of `name`, or None if the library has no such method."""
    return _all_methods().get(name)
