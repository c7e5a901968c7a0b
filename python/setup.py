"""setup.py — packages python/mtgrad together with a copy of the shared library it binds.

The library is not built here: `make` builds it (build/libmtgrad.so, or $MTGRAD_BUILD for
another build directory) and this script copies it into the package at build time, after
checking that the header, the library and the binding's prototypes (mtgrad/_lib.py
HEADER_VERSION) agree on the version. Offline, with the environment's setuptools:
    make python        or        pip install --no-build-isolation ./python
"""
import ctypes
import os
import re
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("MTGRAD_BUILD") or os.path.join(HERE, "..", "build")
HEADER = os.environ.get("MTGRAD_HEADER") or os.path.join(HERE, "..", "include", "mtgrad.h")


def binding_version():
    with open(os.path.join(HERE, "mtgrad", "_lib.py"), encoding="utf-8") as f:
        m = re.search(r"^HEADER_VERSION = \((\d+), (\d+), (\d+)\)", f.read(), re.M)
    return tuple(int(x) for x in m.groups())


def header_version():
    with open(HEADER, encoding="utf-8") as f:
        text = f.read()
    return tuple(int(re.search(r"#define MTGRAD_VERSION_%s (\d+)" % part, text).group(1))
                 for part in ("MAJOR", "MINOR", "PATCH"))


def library():
    src = os.path.realpath(os.path.join(BUILD, "libmtgrad.so"))
    if not os.path.isfile(src):
        raise SystemExit("setup.py: %s not found: build the library first (make, or set "
                         "MTGRAD_BUILD to the build directory)" % src)
    return src


class BuildPyWithLibrary(build_py):
    """build_py, plus the shared library copied next to the package's modules."""

    def run(self):
        super().run()
        src = library()
        lib = ctypes.CDLL(src)
        lib.mtgrad_version_number.restype = ctypes.c_int
        have, want = lib.mtgrad_version_number(), binding_version()
        if have // 100 != want[0] * 100 + want[1]:
            raise SystemExit("setup.py: %s is version %d; the binding mirrors %d.%d.%d"
                             % (src, have, *want))
        dst = os.path.join(self.build_lib, "mtgrad", "libmtgrad.so")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o755)


class BinaryDistribution(Distribution):
    """The wheel carries a native library, so it is platform-specific."""

    def has_ext_modules(self):
        return True


def version():
    b = binding_version()
    if os.path.isfile(HEADER) and header_version()[:2] != b[:2]:
        raise SystemExit("setup.py: mtgrad/_lib.py HEADER_VERSION %s does not match %s %s: "
                         "update the binding's prototypes" % (b, HEADER, header_version()))
    return "%d.%d.%d" % b


setup(
    name="mtgrad",
    version=version(),
    description="Multi-task learning gradient balancing (ctypes binding of libmtgrad)",
    packages=["mtgrad"],
    python_requires=">=3.8",
    install_requires=["numpy"],
    cmdclass={"build_py": BuildPyWithLibrary},
    distclass=BinaryDistribution,
    zip_safe=False,
)
