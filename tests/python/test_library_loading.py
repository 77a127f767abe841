"""How the package finds libconfcast.so: $CONFCAST_LIBRARY, beside the package, the loader.
Each case runs in a fresh interpreter, since a process loads the library once."""

from __future__ import annotations

import os
import shutil
import subprocess
import ctypes.util

import pytest

from cc_helpers import PYTHON_PACKAGE_DIR

PYTHON = "/usr/bin/python3"


def run_python(code: str, env_changes: dict[str, str | None], pythonpath: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CONFCAST_LIBRARY", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = pythonpath
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=30)


def test_import_never_needs_the_library():
    result = run_python("import confcast, confcast.asgi; print('ok')", {"CONFCAST_LIBRARY": "/nonexistent/lib.so"},
                        str(PYTHON_PACKAGE_DIR))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_wrong_confcast_library_is_a_clear_error():
    code = ("import confcast\n"
            "try:\n    confcast.Subscriber('x')\n"
            "except confcast.LibraryNotFound as e:\n    print(type(e).__name__, e)\n")
    result = run_python(code, {"CONFCAST_LIBRARY": "/nonexistent/libconfcast.so"}, str(PYTHON_PACKAGE_DIR))
    assert result.returncode == 0, result.stderr
    assert "LibraryNotFound" in result.stdout
    assert "$CONFCAST_LIBRARY='/nonexistent/libconfcast.so'" in result.stdout


def test_no_library_anywhere_is_a_clear_error(tmp_path):
    if ctypes.util.find_library("confcast"):
        pytest.skip("a libconfcast is installed where the loader finds it")
    package_copy = tmp_path / "site"
    shutil.copytree(PYTHON_PACKAGE_DIR / "confcast", package_copy / "confcast",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    code = ("import confcast\n"
            "try:\n    confcast.ConfigManager(segment='x').get_llm_model()\n"
            "except confcast.LibraryNotFound as e:\n    print(e)\n")
    result = run_python(code, {}, str(package_copy))
    assert result.returncode == 0, result.stderr
    assert "cannot find the confcast C library" in result.stdout
    assert "CONFCAST_LIBRARY" in result.stdout


def test_library_beside_the_package_is_found(tmp_path, library_path, publisher):
    package_copy = tmp_path / "site"
    shutil.copytree(PYTHON_PACKAGE_DIR / "confcast", package_copy / "confcast",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy(library_path, package_copy / "confcast" / "libconfcast.so")
    code = ("import confcast, confcast._native as n\n"
            f"s = confcast.Subscriber({publisher.segment!r})\n"
            "print(n.library().path)\nprint(s.get('llm.model'))\ns.close()\n")
    result = run_python(code, {}, str(package_copy))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == str(package_copy / "confcast" / "libconfcast.so")
    assert lines[1] == "gpt-4o"
