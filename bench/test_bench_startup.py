"""Start-up per path: compilation on an empty numba cache against loading from a warm one.

Each row is a fresh process that imports rsgt_fast and makes one call of one
path; the first call's time is reported, once with a new empty
``NUMBA_CACHE_DIR`` (compilation) and once with the cache that run filled
(loading).  *small* calls are 2 x 4096 values on one thread (8/16-bit input
takes the one-call route of small elements there); *large* calls 2**19 values
and more, on every core; *curves compiled at once* makes the large calls with
``RSGT_FAST_COMPILE_AFTER=0``, so the curve sampler is compiled on the first
call rather than once the host has sampled curves for a second.  With
benchmarking disabled only the first path runs, as a smoke test.
"""

import json
import subprocess
import sys

import pytest

#: The path name that runs every path, one after the other, in one process.
ALL = "every path, one process"

PROBE = f"ALL = {ALL!r}\n" + """
import json, sys, time
import numpy as np
import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform
path, variant = sys.argv[1], sys.argv[2]
n = 1 << 12 if variant == "small" else 1 << 19
ramp = np.arange(2 * n) % 4000
calls = {
    "int16, full table": lambda: rsgt_fast.transform_batch(  # one element: a full table
        (ramp - 1024).astype(np.int16).reshape(2 if variant == "small" else 1, -1), rng=0),
    "int16, clamped table": lambda: rsgt_fast.transform_batch(
        (ramp - 1024).astype(np.int16).reshape(2, -1)[:, :n // 3], rng=0, min_max_val=(0, 900)),
    "int32, wide range (interpolated)": lambda: rsgt_fast.transform_batch(
        (ramp * 70000).astype(np.int32).reshape(2, -1), rng=0),
    "float32": lambda: rsgt_fast.transform_batch(
        ramp.astype(np.float32).reshape(2, -1), rng=0),
    "float16": lambda: rsgt_fast.transform_batch(
        ramp.astype(np.float16).reshape(2, -1), rng=0),
    "facade, int16": lambda: random_smooth_grayvalue_transform((ramp - 1024).astype(np.int16)),
    "normalize_ct_scan, int16": lambda: rsgt_fast.normalize_ct_scan(
        (ramp - 1024).astype(np.int16)),
    "normalize_mr_scan, float32": lambda: rsgt_fast.normalize_mr_scan(ramp.astype(np.float32)),
}
chosen = list(calls.values()) if path == ALL else [calls[path]]
start = time.perf_counter()
for call in chosen:
    if variant == "small":
        with rsgt_fast.thread_limit(1):
            call()
    else:
        call()
print(json.dumps(time.perf_counter() - start))
"""

PATHS = ["int16, full table", "int16, clamped table", "int32, wide range (interpolated)",
         "float32", "float16", "facade, int16", "normalize_ct_scan, int16",
         "normalize_mr_scan, float32"]


#: Variants: the name the probe gets, and the environment they run in.
VARIANTS = {"small": {}, "large": {},
            "curves compiled at once": {"RSGT_FAST_COMPILE_AFTER": "0"}}


def first_call(path, variant, cache, env):
    env = env(NUMBA_CACHE_DIR=str(cache), **VARIANTS[variant])
    done = subprocess.run([sys.executable, "-c", PROBE, path, variant], env=env,
                          capture_output=True, text=True, check=True, timeout=600)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.needs_jit
def test_startup_per_path(benchmark, full_size, tmp_path, library_env):
    cases = [(p, v) for p in PATHS + [ALL] for v in VARIANTS] if full_size else [
        (PATHS[0], "small")]

    def measure():
        rows = []
        for i, (path, variant) in enumerate(cases):
            cache = tmp_path / f"cache{i}"
            cold = first_call(path, variant, cache, library_env)
            warm = first_call(path, variant, cache, library_env)
            rows.append({"path": path, "variant": variant, "cold_s": cold, "warm_s": warm})
        return rows

    benchmark.group = "14 start-up per path"
    rows = benchmark.pedantic(measure)
    benchmark.extra_info.update(kind="startup_paths", rows=rows)
    for row in rows:  # compiling costs more than loading
        if row["variant"] == "curves compiled at once":
            assert row["cold_s"] > row["warm_s"]
