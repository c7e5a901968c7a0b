"""_errors.py — mtgrad_status values as Python exceptions that carry the library's message.

The status values are the C enum's (append-only, never reused, so mirroring them is safe); the
text of each status comes from mtgrad_status_str. A solver that stopped early (MAXITER,
NOPROGRESS) still returns valid, finite outputs, so those two become a warning, not an error.
"""
import enum
import os
import sys
import warnings

from ._lib import lib


class Status(enum.IntEnum):
    """mtgrad_status (include/mtgrad.h)."""
    OK = 0
    E_NOMEM = -1
    E_INVAL = -2
    E_SHAPE = -3
    E_NONFINITE = -4
    E_MAXITER = -5
    E_NOPROGRESS = -6
    E_UNSUPPORTED = -7
    E_IO = -8
    E_STATE = -9


def status_str(status):
    """The library's text for a status ("invalid argument", ...)."""
    return lib.mtgrad_status_str(int(status)).decode()


class MtgradError(Exception):
    """A failed call. `status` is the Status, `message` the library's message (or the binding's
    own, for checks C cannot do, such as the length of a losses array)."""

    def __init__(self, status, message):
        self.status = Status(status) if status in Status._value2member_map_ else status
        self.message = message or status_str(status)
        super().__init__("%s (%s)" % (self.message, status_str(status)))


class OutOfMemoryError(MtgradError, MemoryError):
    pass


class InvalidArgumentError(MtgradError, ValueError):
    pass


class ShapeError(MtgradError, ValueError):
    pass


class NonFiniteError(MtgradError, ValueError):
    pass


class UnsupportedError(MtgradError):
    pass


class StateError(MtgradError, ValueError):
    pass


class SolverWarning(UserWarning):
    """The solver hit its iteration cap or stalled; its best iterate was used (still valid)."""


_CLASSES = {
    Status.E_NOMEM: OutOfMemoryError,
    Status.E_INVAL: InvalidArgumentError,
    Status.E_SHAPE: ShapeError,
    Status.E_NONFINITE: NonFiniteError,
    Status.E_UNSUPPORTED: UnsupportedError,
    Status.E_STATE: StateError,
}

_SOLVER_STOPS = (Status.E_MAXITER, Status.E_NOPROGRESS)


def error(status, message):
    """The exception for a failed status."""
    return _CLASSES.get(status, MtgradError)(status, message)


def _caller_stacklevel():
    """The stacklevel of the first frame outside this package (where the warning belongs)."""
    here = os.path.dirname(os.path.abspath(__file__))
    level, f = 1, sys._getframe(1)
    while f is not None and os.path.dirname(os.path.abspath(f.f_code.co_filename)) == here:
        level, f = level + 1, f.f_back
    return level


def check(status, message_fn):
    """Raise for a failed status; warn for a solver that stopped early. message_fn() reads the
    message only when needed (it must be called before the handle's next call)."""
    if status == 0:
        return
    if status in _SOLVER_STOPS:
        warnings.warn("%s (%s)" % (message_fn(), status_str(status)), SolverWarning,
                      stacklevel=_caller_stacklevel())
        return
    raise error(status, message_fn())
