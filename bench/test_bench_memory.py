"""Peak memory (case 7) and start-up time (case 8), each measured in fresh processes.

These are not timing loops: each test runs its subprocesses once through
``benchmark.pedantic`` and stores the measurements in ``extra_info``, where
``bench/report.py`` reads them.
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("_memory_probe.py")

#: Shapes (benchmark, smoke) of the memory probes.
FACADE_SHAPE = ((256, 256, 256), (128, 128, 128))
BATCH_SHAPE = ((8, 128, 128, 128), (4, 64, 64, 64))


def probe(contender, shape, range_name):
    """Run ``_memory_probe.py`` in a fresh interpreter and return its result."""
    command = [sys.executable, str(PROBE), contender, "--shape", *map(str, shape),
               "--range", range_name]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("range_name", ["own", "known"])
def test_facade_peak_memory(benchmark, full_size, range_name):
    """The facade's peak stays near its output size and far below rsgt's."""
    shape = FACADE_SHAPE[0 if full_size else 1]
    benchmark.group = "7 peak memory"
    results = benchmark.pedantic(
        lambda: {name: probe(name, shape, range_name) for name in ("facade", "rsgt")})
    ours, rsgt = results["facade"], results["rsgt"]
    benchmark.extra_info.update(
        kind="memory", call=f"facade, int16 {'x'.join(map(str, shape))}, {range_name} range",
        peak_bytes=ours["peak_bytes"], rsgt_peak_bytes=rsgt["peak_bytes"],
        output_bytes=ours["output_bytes"], input_bytes=ours["input_bytes"],
        counter_reset=ours["reset"] and rsgt["reset"],
    )
    assert ours["peak_bytes"] < rsgt["peak_bytes"]
    assert ours["peak_bytes"] < 2 * ours["output_bytes"]


@pytest.mark.parametrize("range_name", ["own", "known"])
def test_batch_peak_memory(benchmark, full_size, range_name):
    """``transform_batch``'s peak stays near its output size."""
    shape = BATCH_SHAPE[0 if full_size else 1]
    benchmark.group = "7 peak memory"
    ours = benchmark.pedantic(lambda: probe("batch", shape, range_name))
    benchmark.extra_info.update(
        kind="memory",
        call=f"transform_batch, int16 {'x'.join(map(str, shape))}, {range_name} range",
        peak_bytes=ours["peak_bytes"], rsgt_peak_bytes=None,
        output_bytes=ours["output_bytes"], input_bytes=ours["input_bytes"],
        counter_reset=ours["reset"],
    )
    assert ours["peak_bytes"] < 2 * ours["output_bytes"]


STARTUP = """\
import time
start = time.perf_counter()
import rsgt_fast
imported = time.perf_counter()
import numpy as np
x = np.zeros({shape}, np.int16)
begin = time.perf_counter()
out = rsgt_fast.transform_batch(x, min_max_val=(-1024, 3071), rng=0)
end = time.perf_counter()
assert out.shape == x.shape and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1
print(imported - start, end - begin)
"""


def start_once(code, env):
    """Run ``python -c code``; return wall seconds and the floats it printed."""
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)
    wall = time.perf_counter() - begin
    return [wall, *map(float, done.stdout.split())]


def start_median(code, runs, env_for_run):
    """Per-column medians of :func:`start_once` over ``runs`` runs."""
    rows = [start_once(code, env_for_run(i)) for i in range(runs)]
    return [statistics.median(column) for column in zip(*rows)]


@pytest.mark.slow
def test_startup(benchmark, full_size, tmp_path, library_env):
    """Import and first call in a fresh process, with a warm and with a cold numba cache."""
    shape = (8, 128, 128, 128) if full_size else (2, 32, 32, 32)
    code = STARTUP.format(shape=shape)
    runs = 5 if full_size else 1

    def cold_env(i):
        return library_env(NUMBA_CACHE_DIR=str(tmp_path / f"cache{i}"))

    def warm_env(i):
        return library_env()

    def measure():
        start_once(code, library_env())  # fills the default cache if it is empty
        return {
            "numpy": start_median("import numpy", runs, warm_env),
            "warm": start_median(code, runs, warm_env),
            "cold": start_median(code, max(1, runs // 2), cold_env),
        }

    benchmark.group = "8 start-up"
    result = benchmark.pedantic(measure)
    benchmark.extra_info.update(kind="startup", shape=list(shape), runs=runs,
                                python_numpy_s=result["numpy"][0])
    for cache in ("warm", "cold"):
        wall, imported, first = result[cache]
        benchmark.extra_info.update({f"{cache}_wall_s": wall, f"{cache}_import_s": imported,
                                     f"{cache}_first_call_s": first})
    # At full size a cold cache compiles, a warm one only loads machine code.
    # (The smoke run's small batch runs numpy stand-ins on a cold cache:
    # nothing is compiled there, so it can start sooner than loading.)
    if full_size:
        assert result["cold"][2] > result["warm"][2]
