"""Import rsgt_fast under a given cache set-up, run it, and describe what happened.

Usage: ``python cache_scenario.py OUT.npz EXPECTED_PACKAGE_DIR SET``

SET is ``full`` (every entry point, several dtypes) or ``int16`` (the int16
entry points only, for set-ups that compile everything from scratch).  The
results go to OUT.npz; stdout gets one JSON object with the directory the
package was imported from and the cache folder of every kernel (``None``:
compiled in memory).  The process fails if rsgt_fast was not imported from
EXPECTED_PACKAGE_DIR (so a test cannot pass by running the wrong copy).
"""

import json
import os
import sys
import warnings

import numpy as np


def inputs():
    rng = np.random.default_rng(99)
    ct = rng.integers(-1024, 3072, size=(3, 10, 12), dtype=np.int16)
    return ct, (ct + rng.uniform(-0.5, 0.5, size=ct.shape)).astype(np.float32)


def run(which):
    import rsgt_fast
    from rsgt_fast.augmentation import random_smooth_grayvalue_transform

    ct, mr = inputs()
    results = {
        "batch_int16": rsgt_fast.transform_batch(ct, rng=5),
        "ct_int16": rsgt_fast.normalize_ct_scan(ct),
    }
    np.random.seed(6)
    results["facade_int16"] = random_smooth_grayvalue_transform(ct)
    if which == "full":
        results["batch_float32"] = rsgt_fast.transform_batch(mr, rng=7, dtype="float16")
        results["mr_float32"] = rsgt_fast.normalize_mr_scan(mr)
        results["batch_int16_bounds"] = rsgt_fast.transform_batch(
            ct, rng=8, min_max_val=(-1000, 2000), dtype="float64")
    return results


def main():
    out_path, expected_dir, which = sys.argv[1], sys.argv[2], sys.argv[3]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import rsgt_fast
        from rsgt_fast import _cpu

        package_dir = os.path.dirname(os.path.realpath(rsgt_fast.__file__))
        if package_dir != os.path.realpath(expected_dir):
            print(f"rsgt_fast imported from {package_dir}, expected {expected_dir}",
                  file=sys.stderr)
            return 2
        results = run(which)

    # Where each kernel is cached: None for one compiled in memory.
    caches = {name: kernel.stats.cache_path for name, kernel in _cpu.KERNELS.items()}
    np.savez(out_path, **results)
    print(json.dumps({
        "package_dir": package_dir,
        "caches": caches,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
