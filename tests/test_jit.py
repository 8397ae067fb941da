"""``_jit.py``: how many threads a call gets, the pool that runs them, and the host versions."""

import logging
import os
import subprocess
import sys
import threading
import time
import warnings

import numba
import numpy as np
import pytest

from rsgt_fast import _jit, thread_limit


@numba.njit(nogil=True)
def record_tasks(out, delay, t0, t1):
    """Writes each task's own index, after ``delay`` units of busy work."""
    for t in range(t0, t1):
        s = 0.0
        for i in range(delay):
            s += np.sqrt(s + i)
        out[t] = t + 0.0 * s


@numba.njit(nogil=True)
def fail_on(out, bad, t0, t1):
    for t in range(t0, t1):
        if t == bad:
            raise ValueError("task failed")
        out[t] = t


needs_threads = pytest.mark.skipif(
    _jit.serial_reason(1 << 30) is not None,
    reason=f"calls run on one thread here: {_jit.serial_reason(1 << 30)}")


@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n_tasks", [1, 2, 7, 100])
def test_every_task_runs_once_whatever_the_threads(n_threads, n_tasks):
    out = np.full(n_tasks, -1.0)
    _jit.spread(record_tasks, (out, 100), n_tasks, n_threads)
    np.testing.assert_array_equal(out, np.arange(n_tasks))


@pytest.mark.needs_jit
@pytest.mark.parametrize("bad", [0, 99])  # the caller's part, a helper's part
def test_an_error_in_any_part_reaches_the_caller_and_the_pool_goes_on(bad):
    out = np.zeros(100)
    with pytest.raises(ValueError, match="task failed"):
        _jit.spread(fail_on, (out, bad), 100, 2)
    _jit.spread(record_tasks, (out, 10), 100, 2)
    np.testing.assert_array_equal(out, np.arange(100))


@pytest.mark.needs_jit
def test_calls_from_many_threads_share_the_pool_and_each_gets_its_result():
    outs = [np.zeros(64) for _ in range(8)]
    errors = []

    def call(out):
        try:
            for _ in range(20):
                out[:] = -1
                _jit.spread(record_tasks, (out, 2000), 64, 2)
                assert (out == np.arange(64)).all()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(out,)) for out in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@needs_threads
def test_helpers_that_slept_wake_for_the_next_call():
    out = np.zeros(16)
    _jit.spread(record_tasks, (out, 10), 16, 2)
    threading.Event().wait(0.05)  # long enough for the helper to stop spinning and sleep
    out[:] = -1
    _jit.spread(record_tasks, (out, 10), 16, 2)
    np.testing.assert_array_equal(out, np.arange(16))


def test_small_work_runs_on_the_calling_thread():
    assert _jit.threads(_jit.PARALLEL_WORK - 1) == 1
    assert _jit.serial_reason(10) == "small input"


@needs_threads
def test_large_work_gets_the_cores_and_thread_limit_caps_them():
    cores = min(numba.config.NUMBA_NUM_THREADS, len(os.sched_getaffinity(0)))
    assert _jit.threads(1 << 30) == cores
    with thread_limit(1):
        assert _jit.threads(1 << 30) == 1
    with thread_limit(2):
        assert _jit.threads(1 << 30) == min(2, cores)


def test_dataloader_workers_run_on_one_thread(monkeypatch, caplog):
    monkeypatch.setattr(_jit, "_in_torch_worker", lambda: True)
    with caplog.at_level(logging.DEBUG, logger="rsgt_fast"):
        assert _jit.threads(1 << 30) == 1
    assert any("PyTorch DataLoader worker" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("value, expected", [("", 0.3), ("0", 0.0), ("2.5", 2.5)])
def test_seconds_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("RSGT_FAST_TEST_SECONDS", value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _jit.seconds_from_env("RSGT_FAST_TEST_SECONDS", 0.3) == expected


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_bad_seconds_in_the_environment_warn_and_keep_the_default(monkeypatch, value):
    monkeypatch.setenv("RSGT_FAST_TEST_SECONDS", value)
    with pytest.warns(RuntimeWarning, match="ignoring RSGT_FAST_TEST_SECONDS"):
        assert _jit.seconds_from_env("RSGT_FAST_TEST_SECONDS", 0.3) == 0.3


FORK_PROBE = """
import os, sys
import numpy as np
import rsgt_fast
x = np.random.default_rng(0).integers(-1024, 3072, (4, 1 << 18)).astype(np.int16)
parent = rsgt_fast.transform_batch(x, rng=1)  # the pool runs here first
pid = os.fork()
if pid == 0:
    child = rsgt_fast.transform_batch(x, rng=1)  # a new pool in the child
    os._exit(0 if np.array_equal(child, parent) else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@needs_threads
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_gets_a_pool_of_its_own():
    done = subprocess.run([sys.executable, "-c", FORK_PROBE], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "0"


def test_in_cache_is_false_for_code_compiled_in_memory():
    assert not _jit.in_cache(numba.njit(lambda x: x))


@needs_threads
def test_the_pool_keeps_no_reference_to_a_calls_arrays():
    import weakref

    out = np.zeros(64)
    ref = weakref.ref(out)
    _jit.spread(record_tasks, (out, 10), 64, 2)
    del out
    assert ref() is None  # freed as soon as the caller lets go of it


@needs_threads
def test_the_calling_thread_runs_a_share_no_helper_took(monkeypatch):
    """A helper that starts late (another program holds its core) holds nothing up."""
    share = _jit._share
    caller = threading.current_thread()

    def late(*job):
        if threading.current_thread() is not caller:
            threading.Event().wait(0.5)
        share(*job)

    monkeypatch.setattr(_jit, "_share", late)
    out = np.full(64, -1.0)
    start = time.perf_counter()
    _jit.spread(record_tasks, (out, 10), 64, 2)
    assert time.perf_counter() - start < 0.25
    np.testing.assert_array_equal(out, np.arange(64))
