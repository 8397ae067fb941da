"""When a kernel's parallel variant takes over from its serial one.

By default the serial variant runs first, also in calls large enough for the
parallel one, until it has spent ``PARALLEL_AFTER`` seconds on them (the
parallel compile then pays) or came from the cache.  The root ``conftest.py``
sets that to 0 for the rest of the suite.
"""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from rsgt_fast import _jit, _kernels, _layout
from test_interface import Spy


def _lookup_args():
    x = (np.arange(2 << 16) % 256).astype(np.uint8).reshape(2, -1)
    table = np.linspace(0, 1, 2 * 256, dtype=np.float32).reshape(2, 256)
    out = np.empty(x.shape, np.float32)
    job = _layout.Job(chunk=1 << 14, offset=0, half_in=False, integer=False)
    return x, table, out, job


@pytest.fixture
def parallel_allowed():
    if _jit.serial_reason(1 << 17) is not None:
        pytest.skip(f"parallel kernels cannot run here: {_jit.serial_reason(1 << 17)}")


def test_the_serial_variant_stands_in_until_its_work_would_pay_for_the_parallel_one(
        monkeypatch, parallel_allowed):
    args = _lookup_args()
    _kernels.lookup(*args)  # compiled or loaded outside an engine block: not counted
    expected = args[2].copy()
    clock = iter(np.arange(100) * 0.125)  # every serial call "takes" 0.125 s
    monkeypatch.setattr(_jit, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    monkeypatch.setattr(_jit, "PARALLEL_AFTER", 0.3)
    monkeypatch.setattr(_kernels.lookup, "serial_seconds", {})
    spy = Spy(_kernels.lookup, monkeypatch)
    for _ in range(5):
        args[2][:] = 0
        with _jit.engine(args[0].size):
            _kernels.lookup(*args)
        np.testing.assert_array_equal(args[2], expected)
    # 0.125, 0.25, 0.375 s of serial work: the fourth call compiles the parallel variant.
    assert spy.calls == ["serial"] * 3 + ["parallel"] * 2
    assert list(_kernels.lookup.serial_seconds.values()) == [None]


def test_each_argument_type_waits_on_its_own(monkeypatch, parallel_allowed):
    args = _lookup_args()
    wide = (args[0].astype(np.uint16), np.zeros((2, 65536), np.float32), *args[2:])
    _kernels.lookup(*args)
    _kernels.lookup(*wide)
    monkeypatch.setattr(_jit, "PARALLEL_AFTER", 1e9)
    monkeypatch.setattr(_kernels.lookup, "serial_seconds", {_jit._type_key(args): None})
    spy = Spy(_kernels.lookup, monkeypatch)
    with _jit.engine(args[0].size):
        _kernels.lookup(*args)
        _kernels.lookup(*wide)
    assert spy.calls == ["parallel", "serial"]
    assert _kernels.lookup.serial_seconds[_jit._type_key(wide)] > 0


def test_small_calls_and_serial_blocks_never_count(monkeypatch):
    args = _lookup_args()
    monkeypatch.setattr(_jit, "PARALLEL_AFTER", 1e9)
    monkeypatch.setattr(_kernels.lookup, "serial_seconds", {})
    with _jit.thread_limit(1), _jit.engine(args[0].size):
        _kernels.lookup(*args)
    _kernels.lookup(*args)
    assert _kernels.lookup.serial_seconds == {}


def test_warmup_and_parallel_at_once_skip_the_wait(monkeypatch, parallel_allowed):
    args = _lookup_args()
    monkeypatch.setattr(_jit, "PARALLEL_AFTER", 1e9)
    monkeypatch.setattr(_kernels.lookup, "serial_seconds", {})
    spy = Spy(_kernels.lookup, monkeypatch)
    with _jit.parallel_at_once(), _jit.engine(args[0].size):
        _kernels.lookup(*args)
    with _jit.engine(args[0].size):  # and it stays
        _kernels.lookup(*args)
    assert spy.calls == ["parallel", "parallel"]


@pytest.mark.parametrize("value, expected, warns", [
    ("", 0.3, False), ("0", 0.0, False), (" 2.5 ", 2.5, False),
    ("soon", 0.3, True), ("-1", 0.3, True), ("nan", 0.3, True), ("inf", float("inf"), False),
])
def test_the_environment_variable_is_read_or_refused_with_a_warning(monkeypatch, value,
                                                                     expected, warns):
    monkeypatch.setenv("RSGT_FAST_PARALLEL_AFTER", value)
    if warns:
        with pytest.warns(RuntimeWarning, match="RSGT_FAST_PARALLEL_AFTER"):
            got = _jit._seconds_from_env("RSGT_FAST_PARALLEL_AFTER", 0.3)
    else:
        got = _jit._seconds_from_env("RSGT_FAST_PARALLEL_AFTER", 0.3)
    assert got == expected


#: Three large int16 calls in a fresh process; prints which kernels have
#: parallel machine code after each, and checks the bits against the serial kernels'.
FRESH = r"""
import json
import numpy as np
import rsgt_fast
from rsgt_fast import _jit, _kernels
x = (np.arange(1 << 18) % 3000 - 1000).astype(np.int16).reshape(2, -1)
with rsgt_fast.thread_limit(1):
    expected = rsgt_fast.transform_batch(x, rng=1)
def parallel_code():
    return sorted(name for name, k in vars(_kernels).items()
                  if isinstance(k, _jit.Kernel) and k.parallel.overloads)
found = []
for _ in range(3):
    assert (rsgt_fast.transform_batch(x, rng=1) == expected).all()
    found.append(parallel_code())
print(json.dumps(found))
"""


@pytest.mark.needs_jit
@pytest.mark.timeout(600, method="thread")
def test_a_fresh_process_compiles_parallel_kernels_only_when_they_pay(tmp_path):
    if _jit.serial_reason(1 << 18) is not None:
        pytest.skip("parallel kernels cannot run here")

    def run(**env):
        env = {k: v for k, v in os.environ.items() if k != "RSGT_FAST_PARALLEL_AFTER"} | env
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
        done = subprocess.run([sys.executable, "-c", FRESH], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.splitlines()[-1])

    # Calls of a few milliseconds never pay for a parallel compile, cold cache or warm.
    assert run() == [[], [], []]
    assert run() == [[], [], []]
    # After a microsecond of serial work they would: the second call goes parallel.
    parallel = ["chunk_minmax", "lookup_index"]
    assert run(RSGT_FAST_PARALLEL_AFTER="1e-6") == [[], parallel, parallel]
    assert run(RSGT_FAST_PARALLEL_AFTER="0") == [parallel] * 3
