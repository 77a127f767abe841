"""Builds the confcast Python package with its own copy of libconfcast.so.

With it goes confcast._pin (_pin.abi3.so, pin()'s C fast path), when the
interpreter's headers are installed (Debian: python3-dev); without them the
package's pin() is pure Python.

The C library comes from this repository's top-level CMake project, built
reader-only (no publisher, tests or benchmarks: a C++17 compiler, CMake and
Boost's headers are all it needs), and is copied into the package directory,
where ``confcast._native`` looks first. So the installed package needs no
environment variable and no other install step.

The build is in-tree (pip builds a local directory in place): the CMake
build directory and setuptools' own files go under the repository's
``build/python``, which git ignores. The package's version is the project's
(``project(confcast VERSION ...)``), the same number the library and the
Debian package carry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD_BASE = REPO / "build" / "python"


def project_version() -> str:
    cmakelists = REPO / "CMakeLists.txt"
    try:
        text = cmakelists.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(
            f"confcast: {cmakelists} is missing ({exc.strerror}): the Python package is built "
            "from a confcast source tree, as subscriber/python inside it"
        ) from exc
    match = re.search(r"project\(\s*confcast\s+VERSION\s+([0-9]+(?:\.[0-9]+)*)", text)
    if not match:
        raise SystemExit(f"confcast: no 'project(confcast VERSION x.y.z' in {cmakelists}")
    return match.group(1)


class BuildWithLibrary(build_py):
    """build_py, then the reader-only libconfcast.so into the package."""

    def run(self) -> None:
        super().run()
        cmake_dir = BUILD_BASE / "cmake"
        configure = [
            "cmake", "-S", str(REPO), "-B", str(cmake_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DCONFCAST_BUILD_PUBLISHER=OFF",
            "-DCONFCAST_BUILD_TESTS=OFF",
            "-DCONFCAST_BUILD_BENCH=OFF",
            "-DCONFCAST_INSTALL=OFF",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ]
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(min(os.cpu_count() or 1, 4))
        build = ["cmake", "--build", str(cmake_dir), "--target", "confcast", "confcast_python_pin",
                 "--parallel", jobs]
        # A module from an earlier build must not pass for this one's (headers since removed).
        (cmake_dir / "subscriber" / "_pin.abi3.so").unlink(missing_ok=True)
        for command in (configure, build):
            try:
                subprocess.run(command, check=True)
            except FileNotFoundError as exc:
                raise SystemExit("confcast: building libconfcast.so needs cmake on PATH "
                                 "(Debian: apt-get install cmake g++ libboost-dev)") from exc
        # The real file, not the soname symlinks beside it; ctypes loads it by path.
        built = (cmake_dir / "subscriber" / "libconfcast.so").resolve()
        target = Path(self.build_lib) / "confcast" / "libconfcast.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)
        os.chmod(target, 0o755)
        pin = cmake_dir / "subscriber" / "_pin.abi3.so"
        if pin.is_file():  # else no Python headers: the target only said so
            shutil.copyfile(pin, target.parent / pin.name)
            os.chmod(target.parent / pin.name, 0o755)


class BinaryDistribution(Distribution):
    """A platform wheel (it carries a shared library), not a pure-Python one."""

    def has_ext_modules(self) -> bool:
        return True


BUILD_BASE.mkdir(parents=True, exist_ok=True)
setup(
    version=project_version(),
    cmdclass={"build_py": BuildWithLibrary},
    distclass=BinaryDistribution,
    options={
        "build": {"build_base": str(BUILD_BASE / "setuptools")},
        "egg_info": {"egg_base": str(BUILD_BASE)},
    },
)
