"""Eight Python threads calling rsgt_fast at the same time.

Usage: ``python threads_scenario.py N_THREADS N_CALLS``

Every thread works on its own input (int16, int32, float32 or float16, large
enough for the parallel kernels) and makes N_CALLS rounds of:

* ``transform_batch(x, rng=seed)``, alternately with no thread limit,
  ``thread_limit(2)`` and ``thread_limit(1)``;
* the facade on ``x`` right after ``np.random.seed(seed)``, both under one
  lock shared by all threads (the facade draws from the global ``np.random``
  state, so only seeding and drawing together are reproducible);
* ``normalize_ct_scan(x)`` and ``normalize_mr_scan(x)``.

Then, once every thread is done with that, N_CALLS rounds of the facade on
``x`` without any lock, so that facade calls overlap each other too.  Their
curves are not reproducible (the threads share the global state), so they
are only checked to be finite, in [0, 1] and of the right shape and dtype.

Every reproducible result is compared, by a SHA-256 digest of its bytes, with
the same call made beforehand in the main thread alone.  The JSON report on
stdout lists the mismatches and errors; exit status 0 means there were none.
A crash of the threading layer shows up as a signal exit status.
"""

import hashlib
import json
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform
from rsgt_fast.normalization import normalize_ct_scan, normalize_mr_scan

SHAPE = (2, 48, 48, 48)
DTYPES = (np.int16, np.int32, np.float32, np.float16)
LIMITS = (None, 2, 1)


def thread_input(t):
    rng = np.random.default_rng(500 + t)
    x = rng.integers(-1024, 3072, size=SHAPE)
    dtype = DTYPES[t % len(DTYPES)]
    if np.dtype(dtype).kind == "f":
        x = x + rng.uniform(-0.5, 0.5, size=SHAPE)
    return x.astype(dtype)


def digest(array):
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def calls(t, j, x, lock):
    """The reproducible results of round ``j`` of thread ``t``, as digests."""
    seed = 1000 * t + j
    with rsgt_fast.thread_limit(LIMITS[j % len(LIMITS)]):
        batch = rsgt_fast.transform_batch(x, rng=seed)
    with lock:
        np.random.seed(seed)
        facade = random_smooth_grayvalue_transform(x)
    return {
        "batch": digest(batch),
        "facade": digest(facade),
        "ct": digest(normalize_ct_scan(x)),
        "mr": digest(normalize_mr_scan(x)),
    }


def main():
    n_threads, n_calls = int(sys.argv[1]), int(sys.argv[2])
    inputs = [thread_input(t) for t in range(n_threads)]
    lock = threading.Lock()

    # Sequential reference, in the main thread with nothing else running
    # (this also compiles every kernel variant the threads will need).
    expected = {
        (t, j): calls(t, j, inputs[t], lock) for t in range(n_threads) for j in range(n_calls)
    }

    barrier = threading.Barrier(n_threads, timeout=120)
    mismatches = []
    invalid = []
    errors = []

    def worker(t):
        x = inputs[t]
        try:
            barrier.wait()
            for j in range(n_calls):
                got = calls(t, j, x, lock)
                for key, value in got.items():
                    if value != expected[t, j][key]:
                        mismatches.append([t, j, key])
            barrier.wait()  # no seeded facade call may run from here on
            for j in range(n_calls):
                free = random_smooth_grayvalue_transform(x)
                if not (free.shape == x.shape and free.dtype == np.float32
                        and np.isfinite(free).all() and free.min() >= 0 and free.max() <= 1):
                    invalid.append([t, j])
        except Exception:
            errors.append(traceback.format_exc())

    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        list(pool.map(worker, range(n_threads)))

    report = {
        "calls": n_threads * n_calls,
        "mismatches": mismatches,
        "invalid": invalid,
        "errors": errors,
    }
    print(json.dumps(report))
    return 1 if mismatches or invalid or errors else 0


if __name__ == "__main__":
    sys.exit(main())
