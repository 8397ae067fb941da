"""rsgt-fast warmup: every path for the given dtypes lands in numba's cache."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rsgt_fast.cli import main
from rsgt_fast.warmup import warmup

#: Counts the compilations of rsgt_fast's functions in a fresh process that runs
#: warmup() for the dtypes in argv[1], then every route of the transform, the
#: facade and the normalisations on int16 and float32 input.
COUNT_COMPILES = r"""
import json, sys
from numba.core import event
compiled = []

class Listener(event.Listener):
    def on_start(self, ev):
        pass

    def on_end(self, ev):
        fn = ev.data["dispatcher"].py_func
        if fn.__module__.startswith("rsgt_fast"):
            compiled.append(fn.__qualname__)

event.register("numba:compile", Listener())
import numpy as np
import rsgt_fast
from rsgt_fast.warmup import warmup
done = warmup(sys.argv[1].split(","))
x = (np.arange(300000) % 97).astype(sys.argv[1].split(",")[0]).reshape(3, -1)
rsgt_fast.transform_batch(x, rng=5)
rsgt_fast.transform_batch(x[:, :100], rng=5, min_max_val=(3, 90))
rsgt_fast.transform_batch(x[:, :100], rng=5)
with rsgt_fast.thread_limit(1):  # on the calling thread alone
    rsgt_fast.transform_batch(x, rng=5)
if x.dtype.itemsize == 2:  # large tables: elements spanning the dtype
    wide = np.arange(2 * 70000).reshape(2, -1) % 65536 + int(np.iinfo(x.dtype).min)
    rsgt_fast.transform_batch(wide.astype(x.dtype), rng=5)
    rsgt_fast.transform_batch(wide.astype(x.dtype), rng=5, min_max_val=(-5, 70000.5))
rsgt_fast.transform_batch(x, rng=5, min_max_val=(0.5, 90.5))
np.random.seed(1)
from rsgt_fast.augmentation import random_smooth_grayvalue_transform
random_smooth_grayvalue_transform(x[0])
random_smooth_grayvalue_transform(x[0, :100], min_max_val=(0, 10**6))
random_smooth_grayvalue_transform(x[0].astype(np.float32))
rsgt_fast.normalize_mr_scan(x[0])
rsgt_fast.normalize_ct_scan(x[0])
rsgt_fast.normalize_mr_scan(x[0].astype(np.float32))
rsgt_fast.normalize_ct_scan(x[0].astype(np.float32))
print(json.dumps({"compiled": compiled, "cache": done.cache, "kernels": done.kernels}))
"""


def _run(code_or_args, cache_dir, *argv):
    # The library's default policy for parallel kernels, not the test session's.
    env = {k: v for k, v in os.environ.items() if k != "RSGT_FAST_COMPILE_AFTER"}
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    return subprocess.run([sys.executable, *code_or_args, *argv], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.needs_jit
@pytest.mark.timeout(900, method="thread")
def test_after_warmup_a_fresh_process_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    first = _run(["-m", "rsgt_fast.cli", "warmup", "--dtypes", "int16,float32"], cache)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    assert lines[0].startswith("int16: ") and lines[-1].startswith(f"numba cache: {cache}")
    second = _run(["-c", COUNT_COMPILES], cache, "int16,float32")
    assert second.returncode == 0, second.stderr[-3000:]
    report = json.loads(second.stdout.splitlines()[-1])
    assert report["compiled"] == [] and report["kernels"] > 10
    assert report["cache"].startswith(str(cache))
    # Without the warmup the same process compiles.
    third = _run(["-c", COUNT_COMPILES], tmp_path / "empty", "int16,float32")
    assert third.returncode == 0, third.stderr[-3000:]
    assert json.loads(third.stdout.splitlines()[-1])["compiled"]


def test_warmup_keeps_the_global_random_state():
    np.random.seed(3)
    expected = np.random.random_sample(4)
    np.random.seed(3)
    done = warmup("uint8")
    assert list(done.seconds) == ["uint8"]
    np.testing.assert_array_equal(np.random.random_sample(4), expected)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dtypes": ["complex64"]}, TypeError, "dtypes"),
    ({"dtypes": ["int16"], "out_dtypes": ["int16"]}, ValueError, "out_dtypes"),
    ({"dtypes": []}, ValueError, "at least one"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        warmup(**kwargs)


@pytest.mark.parametrize("argv, message", [
    (["--dtypes", "complex64"], "complex64"),
    (["--dtypes", ","], "--dtypes needs at least one dtype"),
    (["--out-dtypes", "int8"], "out_dtypes"),
])
def test_cli_usage_errors_are_one_line(capsys, argv, message):
    assert main(["warmup", *argv]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("rsgt-fast warmup")
