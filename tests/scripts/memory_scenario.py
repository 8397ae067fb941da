"""Peak memory of transforming one 600 x 512 x 512 int16 CT volume.

Usage: ``python memory_scenario.py``

Prints one JSON object: for each call, the increase of the peak resident set
size (VmHWM) over the resident size just before the call, the output's size
in bytes, the seconds it took and whether a sample of the output matched a
reference.  If the peak counter cannot be reset (``/proc/self/clear_refs``
not writable) it prints ``{"skip": reason}`` instead.

The input is allocated first; every kernel variant the calls need is then
compiled on an input of the same dtype that is still large enough for the
parallel kernels, so that neither allocation nor compilation is measured.
"""

import json
import sys
import time

import numpy as np

import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform

SHAPE = (600, 512, 512)
SEED = 12


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(call):
    """``call()``, the peak RSS increase it caused, and the seconds it took."""
    _reset_peak()
    before = _status("VmRSS")
    if _status("VmHWM") > before + (1 << 20):
        raise RuntimeError("VmHWM was not reset by /proc/self/clear_refs")
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    return result, _status("VmHWM") - before, seconds


def legacy_sample_reference(volume, seed, rows):
    """rsgt's output at ``volume[rows]`` for the curve drawn after ``np.random.seed(seed)``."""
    state = np.random.RandomState(seed)
    params = []
    for _ in range(4):
        f = state.uniform(0.2, 1.6)
        params.append((f, state.uniform(-1 / f, 1 / f), state.uniform(0, 2 * np.pi)))
    lo, hi = int(volume.min()), int(volume.max())
    t = np.linspace(0, 2 * np.pi, hi - lo + 1)
    y = np.zeros_like(t)
    for f, a, o in params:
        y += a * np.sin(f * (t + o))
    y = (y - y.min()) / (y.max() - y.min())
    return y[volume[rows].astype(np.int64) - lo]


def main():
    try:
        _reset_peak()
    except OSError as exc:
        print(json.dumps({"skip": f"/proc/self/clear_refs is not writable: {exc}"}))
        return 0

    volume = np.random.default_rng(SEED).integers(-1024, 3072, size=SHAPE, dtype=np.int16)

    # Compile (or load) every variant used below, on a small but parallel-sized input.
    small = volume[:2, :64, :512].copy()
    rsgt_fast.transform_batch(small, rng=0)
    rsgt_fast.transform_batch(small.reshape(2, 1, 64, 512), rng=0)
    np.random.seed(0)
    random_smooth_grayvalue_transform(small)
    del small

    report = {"input_bytes": int(volume.nbytes)}

    def facade():
        np.random.seed(SEED)
        return random_smooth_grayvalue_transform(volume)

    out, peak, seconds = measure(facade)
    rows = (slice(0, 600, 97), slice(None), slice(0, 512, 31))
    err = float(np.abs(out[rows] - legacy_sample_reference(volume, SEED, rows)).max())
    report["facade"] = {"peak_increase": peak, "output_bytes": int(out.nbytes), "seconds": seconds,
                        "shape": list(out.shape), "max_error": err}
    del out

    for name, shape in (("batch_1", (1, 600, 512, 512)), ("batch_4", (4, 150, 512, 512))):
        x = volume.reshape(shape)

        def call(x=x):
            return rsgt_fast.transform_batch(x, rng=SEED, return_curves=True)

        (out, curves), peak, seconds = measure(call)
        sample = x[:, ::37, ::41, ::7]
        err = float(np.abs(out[:, ::37, ::41, ::7] - curves.evaluate(sample)).max())
        report[name] = {"peak_increase": peak, "output_bytes": int(out.nbytes),
                        "seconds": seconds, "shape": list(out.shape), "max_error": err}
        del out, curves

    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
