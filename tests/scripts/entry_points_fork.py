"""Every public entry point on every input-kind path, in a child forked after parallel use.

Usage: ``python entry_points_fork.py``

The parent runs every case twice, with the parallel kernels (inputs well
above the serial threshold) and under ``thread_limit(1)``, so that both
variants are compiled before the fork.  A bare ``os.fork()`` child then runs
every case again, noting each case's name in a progress file before it
starts.  GNU OpenMP kills such a child if any path enters a parallel region;
the progress file then names the case that did.  Prints a JSON report; exit
status 0 means the child survived and matched the parent bit for bit.
"""

import json
import os
import sys
import tempfile
import time

import numpy as np

import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform
from rsgt_fast.normalization import normalize_ct_scan, normalize_mr_scan

SHAPE = (2, 40, 40, 20)  # 64000 elements, far above the serial threshold
TIMEOUT = 300


def inputs():
    rng = np.random.default_rng(3)
    ct = rng.integers(-1024, 3072, size=SHAPE).astype(np.int16)
    mr = np.abs(rng.normal(400, 150, size=SHAPE)).astype(np.float32)
    return {"int": ct, "float": mr, "float16": mr.astype(np.float16)}


def cases():
    """``{name: zero-argument function}`` for every entry point, input kind and output."""
    table = {}
    for kind, x in inputs().items():
        for out in ("float16", "float32", "float64"):
            def facade(x=x, out=out):
                np.random.seed(1)
                return random_smooth_grayvalue_transform(x, dtype=out)

            def replay(x=x, out=out):
                _, curves = rsgt_fast.transform_batch(x, rng=2, dtype=out, return_curves=True)
                return rsgt_fast.transform_batch(x[:, 5:30], curves=curves, dtype=out)

            table[f"facade {kind} -> {out}"] = facade
            table[f"transform_batch {kind} -> {out}"] = (
                lambda x=x, out=out: rsgt_fast.transform_batch(x, rng=2, dtype=out))
            table[f"transform_batch keys {kind} -> {out}"] = (
                lambda x=x, out=out: rsgt_fast.transform_batch(x, rng=2, keys=[4, 9], dtype=out))
            table[f"transform_batch replay {kind} -> {out}"] = replay
            table[f"normalize_ct_scan {kind} -> {out}"] = (
                lambda x=x, out=out: normalize_ct_scan(x, dtype=out))
            table[f"normalize_mr_scan {kind} -> {out}"] = (
                lambda x=x, out=out: normalize_mr_scan(x, dtype=out))
    return table


def main():
    table = cases()
    expected = {}
    for name, fn in table.items():
        expected[name] = fn()  # parallel
        with rsgt_fast.thread_limit(1):
            serial = fn()
        assert np.array_equal(serial, expected[name], equal_nan=True), name

    with tempfile.TemporaryDirectory() as tmp:
        progress = os.path.join(tmp, "progress")
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                with open(progress, "w", buffering=1) as log:
                    for index, (name, fn) in enumerate(table.items()):
                        log.write(name + "\n")
                        np.save(os.path.join(tmp, f"{index}.npy"), fn())
                status = 0
            finally:
                os._exit(status)
        deadline = time.monotonic() + TIMEOUT
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                code = None
                break
            time.sleep(0.05)
        with open(progress) as log:
            started = log.read().split("\n")[:-1]
        results = [np.load(os.path.join(tmp, f"{i}.npy")) for i in range(len(started))
                   if os.path.exists(os.path.join(tmp, f"{i}.npy"))]
    mismatches = [name for name, got in zip(started, results)
                  if not np.array_equal(got, expected[name], equal_nan=True)]
    report = {"child_exit": code, "cases": len(table), "finished": len(results),
              "last_started": started[-1] if started else None, "mismatches": mismatches}
    print(json.dumps(report))
    return 0 if code == 0 and len(results) == len(table) and not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
