"""rsgt_fast where numba cannot write its on-disk cache.

Each set-up runs in a fresh interpreter (``scripts/cache_scenario.py``),
because numba decides where (and whether) to cache when a function is
decorated, at import time.  Unwritable locations are made so that they stay
unwritable for root too: a path below a regular file (``mkdir`` fails with
ENOTDIR), or a path inside ``/proc``.
"""

import hashlib
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rsgt_fast

#: These scenarios exercise numba's cache: compiled kernels only.
pytestmark = pytest.mark.needs_jit

SCRIPTS = Path(__file__).resolve().parent / "scripts"
PACKAGE_DIR = Path(rsgt_fast.__file__).resolve().parent
#: Compiling every kernel used from scratch takes a while on two cores.
TIMEOUT = 300


def _load_scenario():
    spec = importlib.util.spec_from_file_location("cache_scenario_for_tests",
                                                  SCRIPTS / "cache_scenario.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scenario = _load_scenario()


def blocked_path(tmp_path, name):
    """A path that no one, root included, can create: its parent is a regular file."""
    blocker = tmp_path / f"{name}_is_a_file"
    blocker.write_text("not a directory\n")
    return blocker / "cache"


def assert_one_cache_warning(report):
    """Exactly one warning: that kernels are compiled in memory, naming the fix."""
    assert len(report["warnings"]) == 1, report["warnings"]
    assert report["warnings"][0].startswith("RuntimeWarning: rsgt_fast: numba cannot write")
    assert "NUMBA_CACHE_DIR" in report["warnings"][0]


def run_scenario(tmp_path, env_changes, package_dir, which):
    """Run the scenario with ``env_changes``; return its report and its results."""
    env = dict(os.environ)
    for key in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH"):
        env.pop(key, None)
    env.update(env_changes)
    out = tmp_path / "results.npz"
    command = [sys.executable, str(SCRIPTS / "cache_scenario.py"), str(out), str(package_dir),
               which]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env,
                              cwd=str(tmp_path))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"cache scenario ran past {TIMEOUT} s\n{exc.stderr}")
    assert proc.returncode == 0, (
        f"cache scenario with {env_changes} exited with status {proc.returncode}\n"
        f"{proc.stderr[-4000:]}"
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    with np.load(out) as data:
        results = {key: data[key] for key in data.files}
    return report, results


def assert_same_as_here(results, which):
    expected = scenario.run(which)
    assert sorted(results) == sorted(expected)
    for key, value in expected.items():
        assert results[key].dtype == value.dtype, key
        np.testing.assert_array_equal(results[key], value, err_msg=key)


def _tree_digest(root):
    """Every path below ``root`` with its type and, for files, a hash of its bytes."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            entries[os.path.relpath(os.path.join(dirpath, name), root)] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                entries[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return entries


def _make_read_only(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            os.chmod(path, os.stat(path).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    os.chmod(root, os.stat(root).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(root):
    os.chmod(root, os.stat(root).st_mode | stat.S_IWUSR)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)


def _copy_package(destination):
    """A copy of the package sources, without any compiled or cached files."""
    shutil.copytree(PACKAGE_DIR, destination,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    return destination


@pytest.mark.timeout(TIMEOUT + 60, method="thread")
@pytest.mark.parametrize("where", ["below_a_file", "proc"])
def test_unwritable_numba_cache_dir(where, tmp_path):
    """An unusable NUMBA_CACHE_DIR neither breaks the import nor changes any result."""
    cache_dir = blocked_path(tmp_path, "numba") if where == "below_a_file" else Path(
        "/proc/rsgt_fast_no_such_cache")
    report, results = run_scenario(tmp_path, {"NUMBA_CACHE_DIR": str(cache_dir)}, PACKAGE_DIR,
                                   "full")
    assert report["package_dir"] == str(PACKAGE_DIR)
    assert report["warnings"] == []  # numba falls back to a writable location
    assert_same_as_here(results, "full")
    assert not cache_dir.exists()


@pytest.mark.timeout(TIMEOUT + 60, method="thread")
def test_read_only_package_copy_compiles_in_memory(tmp_path):
    """A read-only install with no writable cache anywhere still imports and runs.

    The copy's ``__pycache__`` is a regular file and NUMBA_CACHE_DIR and the
    user cache directory lie below regular files, so numba finds no cache
    locator at all; every kernel must then be compiled without a cache.
    """
    site = tmp_path / "site"
    site.mkdir()
    package = _copy_package(site / "rsgt_fast")
    (package / "__pycache__").write_text("a file where numba would put its cache\n")
    _make_read_only(site)
    before = _tree_digest(site)
    try:
        env = {
            "PYTHONPATH": str(site),
            "NUMBA_CACHE_DIR": str(blocked_path(tmp_path, "numba")),
            "XDG_CACHE_HOME": str(blocked_path(tmp_path, "xdg")),
        }
        report, results = run_scenario(tmp_path, env, package, "int16")
        assert _tree_digest(site) == before, "the read-only install was modified"
    finally:
        _make_writable(site)

    assert report["package_dir"] == str(package)
    assert_one_cache_warning(report)
    # Proof that the no-locator branch ran: nothing is cached, for every kernel.
    assert report["caches"], "no kernels found"
    assert set(report["caches"].values()) == {None}, report["caches"]
    assert_same_as_here(results, "int16")


@pytest.mark.timeout(TIMEOUT + 60, method="thread")
def test_zip_archive_import_without_writable_cache(tmp_path):
    """The package imported from a zip archive (zipimport), no writable cache anywhere.

    A zip archive is a read-only install too: the import and the calls must
    work and give the usual results.
    """
    source = _copy_package(tmp_path / "src" / "rsgt_fast")
    archive = tmp_path / "rsgt_fast.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*.py")):
            zf.write(path, path.relative_to(source.parent).as_posix())
    shutil.rmtree(tmp_path / "src")
    env = {
        "PYTHONPATH": str(archive),
        "NUMBA_CACHE_DIR": str(blocked_path(tmp_path, "numba")),
        "XDG_CACHE_HOME": str(blocked_path(tmp_path, "xdg")),
    }
    report, results = run_scenario(tmp_path, env, archive / "rsgt_fast", "int16")
    assert report["package_dir"] == str(archive / "rsgt_fast")
    assert_one_cache_warning(report)
    assert_same_as_here(results, "int16")


def test_kernels_run_as_python_say_nothing_about_the_cache(tmp_path):
    """With ``NUMBA_DISABLE_JIT=1`` (the coverage run) nothing is compiled, so there is no
    cache to warn about, and ``warmup`` reports no cache folder."""
    code = ("import numpy as np, rsgt_fast; from rsgt_fast import _jit; "
            "x = (np.arange(200) % 50).astype(np.int16).reshape(2, -1); "
            "print(rsgt_fast.transform_batch(x, rng=1).dtype, _jit.cache_location())")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, env=env, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["float32", "None"]
