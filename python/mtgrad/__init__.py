"""mtgrad — multi-task gradient balancing (Python binding of libmtgrad).

    import numpy as np, mtgrad
    G = np.random.randn(3, 1000).astype(np.float32)      # k task gradients of d parameters
    direction, weights = mtgrad.aggregate(G, "upgrad")
    agg = mtgrad.Aggregator("cagrad", 3, c=0.4)           # keeps state across steps
    direction, weights = agg(G)
    mtgrad.methods()["cagrad"].params["c"].default        # 0.5, read from the C registry

The PyTorch helper is the submodule mtgrad.torch (imported on demand: `import mtgrad.torch`).
Errors raise MtgradError subclasses carrying the library's message; a solver that stopped at
its iteration cap warns (SolverWarning) and returns its best iterate.
"""
from ._lib import HEADER_VERSION, path as library_path, version_number, version_string
from ._errors import (InvalidArgumentError, MtgradError, NonFiniteError, OutOfMemoryError,
                      ShapeError, SolverWarning, StateError, Status, UnsupportedError,
                      status_str)
from ._registry import Flag, MethodInfo, ParamInfo, methods
from ._aggregator import Aggregator, aggregate, combine, gram, simplex_project

__version__ = version_string

__all__ = [
    "Aggregator", "aggregate", "methods", "gram", "combine", "simplex_project",
    "Flag", "MethodInfo", "ParamInfo", "Status", "status_str",
    "MtgradError", "InvalidArgumentError", "ShapeError", "NonFiniteError", "UnsupportedError",
    "StateError", "OutOfMemoryError", "SolverWarning",
    "HEADER_VERSION", "library_path", "version_number", "version_string", "__version__",
]
