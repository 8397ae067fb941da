"""A short demonstration: augment a synthetic CT batch and report what happened.

Run it with ``python -m rsgt_fast.demo`` (or the ``rsgt-fast-demo`` command).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import __version__, transform_batch
from .augmentation import random_smooth_grayvalue_transform


def synthetic_ct(n, size, seed):
    """A batch of int16 'CT' volumes: air, soft tissue, a bony ring and noise, in HU."""
    rng = np.random.default_rng(seed)
    grid = np.indices((size, size, size)).astype(np.float32) / size - 0.5
    radius = np.sqrt((grid ** 2).sum(axis=0))
    body = np.where(radius < 0.45, 40.0, -1000.0)
    body = np.where((radius > 0.30) & (radius < 0.36), 700.0, body)
    noise = rng.normal(0.0, 20.0, size=(n,) + body.shape)
    return np.clip(body + noise, -1024, 3071).astype(np.int16)


def main(argv=None):
    """Entry point of the demo; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="volumes in the batch (default 8)")
    parser.add_argument("--size", type=int, default=96,
                        help="edge length of each volume (default 96)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and curves (default 0)")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.size < 2:
        parser.error("--batch must be >= 1 and --size >= 2")

    batch = synthetic_ct(args.batch, args.size, args.seed)
    print(f"rsgt_fast {__version__}: batch of {args.batch} int16 CT volumes of "
          f"{args.size}^3 voxels")
    def timed(fn, repeats=3):
        fn()  # the first call compiles or loads the kernels
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return result, sorted(times)[len(times) // 2]

    (out, curves), batch_s = timed(lambda: transform_batch(
        batch, min_max_val=(-1024, 3071), rng=args.seed, return_curves=True))
    np.random.seed(args.seed)
    _, loop_s = timed(lambda: [random_smooth_grayvalue_transform(v, min_max_val=(-1024, 3071))
                               for v in batch])

    probe = np.array([[-1000, 40, 700]])  # air, soft tissue, bone
    mapped = curves.evaluate(probe)
    print(f"transform_batch: {out.shape} {out.dtype} in {batch_s * 1e3:.1f} ms "
          f"({batch.size / batch_s / 1e6:.0f} Mvoxel/s); one curve per call in a loop "
          f"(the drop-in facade): {loop_s * 1e3:.1f} ms")
    print("element  frequencies              air -> tissue -> bone   output range")
    for b in range(len(curves)):
        freqs = " ".join(f"{f:.2f}" for f in curves.frequencies[b])
        air, tissue, bone = mapped[b]
        print(f"{b:7d}  {freqs:23s}  {air:.2f} -> {tissue:.2f} -> {bone:.2f}      "
              f"[{out[b].min():.2f}, {out[b].max():.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
