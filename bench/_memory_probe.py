"""Peak resident memory of one call, measured in a fresh process.

Run as a script; prints one JSON object on stdout::

    python bench/_memory_probe.py facade --shape 256 256 256 --range own

The input is uniform random int16 in [-1024, 3071] (the peak does not depend
on the values).  Before the measured call the same function runs once on the
same input (its result freed), so that compilation, cache loading and the
start of the thread pool are not counted.  Then the kernel's peak resident set
counter is reset (writing ``5`` to ``/proc/self/clear_refs``) and the increase
of ``VmHWM`` over the resident set at that moment is the call's peak.  Where
the counter cannot be reset the result says so, and the increase is taken over
the resident set before the call, which can only overstate the peak.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys

import numpy as np

CT_RANGE = (-1024, 3071)


def _status_kib(field):
    """A ``/proc/self/status`` memory field in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _reset_peak():
    """Reset the peak resident set counter; ``True`` on success."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _contender(name):
    """The function to measure: ``fn(x, min_max_val)``."""
    if name == "facade":
        from rsgt_fast.augmentation import random_smooth_grayvalue_transform as fn
    elif name == "rsgt":
        from rsgt.augmentation import random_smooth_grayvalue_transform as fn
    elif name == "batch":
        from rsgt_fast import transform_batch

        def fn(x, min_max_val):
            return transform_batch(x, min_max_val=min_max_val, rng=0)

        return fn
    else:
        raise ValueError(f"unknown contender {name!r}")
    return lambda x, min_max_val: fn(x, min_max_val=min_max_val)


def measure(name, shape, known_range):
    """Peak resident memory increase of one call of contender ``name``.

    Parameters
    ----------
    name : {'facade', 'rsgt', 'batch'}
        The rsgt_fast facade, rsgt 1.1.0, or ``rsgt_fast.transform_batch``.
    shape : tuple of int
        Input shape (for ``batch`` axis 0 is the batch).
    known_range : bool
        Pass ``min_max_val=(-1024, 3071)`` instead of ``None``.

    Returns
    -------
    dict
        ``peak_bytes``, ``input_bytes``, ``output_bytes`` and ``reset`` (whether
        the peak counter could be reset).
    """
    fn = _contender(name)
    min_max_val = CT_RANGE if known_range else None
    x = np.random.default_rng(0).integers(*CT_RANGE, size=tuple(shape), endpoint=True,
                                          dtype=np.int16)
    # Warm up on the same input, so that the same kernels are compiled or loaded
    # (the code path depends on the input's size) before the measured call.
    fn(x, min_max_val)
    np.random.seed(0)
    gc.collect()
    reset = _reset_peak()
    base = _status_kib("VmRSS")
    out = fn(x, min_max_val)
    peak = _status_kib("VmHWM") - base
    return {
        "peak_bytes": peak * 1024,
        "input_bytes": int(x.nbytes),
        "output_bytes": int(out.nbytes),
        "reset": reset,
    }


def main(argv=None):
    """Command line entry point; prints the result of :func:`measure` as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contender", choices=["facade", "rsgt", "batch"])
    parser.add_argument("--shape", type=int, nargs="+", required=True)
    parser.add_argument("--range", choices=["known", "own"], default="own")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.contender, args.shape, args.range == "known")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
