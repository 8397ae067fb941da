"""Speed that does not depend on the age of the process, in a process and in fresh workers.

Case 15 runs 60 calls in each of three fresh processes on a warm numba
cache, under the library's default settings, and compares the median of
calls 2-11 with that of calls 41-60 (over the three): the batch (8 x 128^3
int16 CT into ``out=``) and the facade (one 128^3 int16 CT volume).  Case 16
times epochs of a MONAI pipeline of 8 small float32 samples in a
``DataLoader`` with 2 worker processes, which are made anew each epoch as the
loader does by default: ``RandSmoothGrayValued`` against MONAI's own
``RandHistogramShiftd``.  In the smoke run each runs once on small inputs.
"""

import json
import statistics
import subprocess
import sys

import pytest

AGE_PROBE = """
import json, sys, time
import numpy as np
import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform as facade
path, n_calls, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
shape = (8, size, size, size) if path == "batch" else (size, size, size)
x = rng.integers(-1024, 3072, shape).astype(np.int16)
out = np.empty(x.shape, np.float32)
call = {"batch": lambda: rsgt_fast.transform_batch(x, out=out), "facade": lambda: facade(x)}[path]
times = []
for _ in range(n_calls):
    start = time.perf_counter()
    result = call()
    times.append(time.perf_counter() - start)
assert 0 <= result.min() and result.max() <= 1
print(json.dumps(times))
"""

LOADER_PROBE = """
import json, sys, time
import numpy as np
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, RandHistogramShiftd
from rsgt_fast.monai import RandSmoothGrayValued
which, n_epochs, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
data = [{"image": rng.normal(0, 1, (1, size, size, size)).astype(np.float32)} for _ in range(8)]
start = time.perf_counter()
transform = Compose([RandSmoothGrayValued("image", prob=1.0) if which == "rsgt_fast"
                     else RandHistogramShiftd("image", prob=1.0)])
built = time.perf_counter() - start
loader = DataLoader(Dataset(data, transform), batch_size=2, num_workers=2)
epochs = []
for _ in range(n_epochs):
    start = time.perf_counter()
    for batch in loader:
        assert batch["image"].shape[0] == 2 and float(batch["image"].std()) > 0
    epochs.append(time.perf_counter() - start)
print(json.dumps({"built_s": built, "epochs_s": epochs}))
"""


#: Fresh processes per path in case 15; the medians are over all their calls.
PROCESSES = 3


def _run(code, env, *argv):
    done = subprocess.run([sys.executable, "-c", code, *map(str, argv)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.needs_jit
def test_calls_early_and_late_in_a_fresh_process(benchmark, full_size, tmp_path, library_env):
    size, n_calls = (128, 60) if full_size else (16, 12)
    env = library_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def measure():
        rows = []
        for path in ("batch", "facade"):
            _run(AGE_PROBE, env, path, 2, size)  # fills the cache
            runs = [_run(AGE_PROBE, env, path, n_calls, size) for _ in range(PROCESSES)]
            rows.append({"path": path,
                         "first_s": statistics.median(t[0] for t in runs),
                         "early_s": statistics.median(v for t in runs for v in t[1:11]),
                         "late_s": statistics.median(
                             v for t in runs for v in (t[40:60] if n_calls >= 60 else t[-5:]))})
        return rows

    benchmark.group = "15 calls 2-11 against calls 41-60 of a fresh process"
    rows = benchmark.pedantic(measure)
    benchmark.extra_info.update(kind="age", size=size, rows=rows)
    assert all(row["early_s"] > 0 and row["late_s"] > 0 for row in rows)


@pytest.mark.slow
@pytest.mark.needs_jit
def test_dataloader_epochs_with_fresh_workers(benchmark, full_size, tmp_path, library_env):
    pytest.importorskip("monai")
    size, n_epochs = (48, 5) if full_size else (8, 2)
    env = library_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def measure():
        _run(LOADER_PROBE, env, "rsgt_fast", 1, size)  # fills the cache
        rows = []
        for which in ("rsgt_fast", "monai"):
            result = _run(LOADER_PROBE, env, which, n_epochs, size)
            rows.append({"transform": which, "built_s": result["built_s"],
                         "epoch_s": statistics.median(result["epochs_s"]),
                         "epochs_s": result["epochs_s"]})
        return rows

    benchmark.group = "16 MONAI DataLoader epochs, 2 fresh workers each"
    rows = benchmark.pedantic(measure)
    benchmark.extra_info.update(kind="loader", size=size, rows=rows)
    assert [row["transform"] for row in rows] == ["rsgt_fast", "monai"]
