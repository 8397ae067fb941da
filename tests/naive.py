"""Slow, obviously correct references for the transforms.

Everything here is written for clarity, one element and one value at a time
where that helps, and is only used on small arrays.
"""

import math

import numpy as np

TWO_PI = 2 * math.pi


def curve(t, frequencies, amplitudes, offsets):
    """The raw sum of sinusoids at ``t`` (scalar or array), in float64."""
    t = np.asarray(t, dtype=np.float64)
    y = np.zeros_like(t)
    for f, a, o in zip(frequencies, amplitudes, offsets):
        y = y + a * np.sin(f * (t + o))
    return y


def continuous_extrema(frequencies, amplitudes, offsets, points=(1 << 20) + 1):
    """Minimum and maximum of the curve on [0, 2*pi], from a very dense sampling.

    The sampling step is 6e-6, so the extrema are off by less than
    ``max|y''| * step**2 / 8`` (about 3e-11).
    """
    y = curve(np.linspace(0, TWO_PI, points), frequencies, amplitudes, offsets)
    return float(y.min()), float(y.max())


def rsgt_element(values, frequencies, amplitudes, offsets, lo, hi):
    """rsgt 1.1.0's algorithm for one integer image, written out step by step."""
    n = hi - lo + 1
    grid = [TWO_PI * j / (n - 1) for j in range(n)] if n > 1 else [0.0]
    table = [float(curve(t, frequencies, amplitudes, offsets)) for t in grid]
    ymin, ymax = min(table), max(table)
    out = np.empty(values.shape)
    for index, v in np.ndenumerate(values):
        v = min(max(int(v), lo), hi)
        out[index] = 0.5 if ymax == ymin else (table[v - lo] - ymin) / (ymax - ymin)
    return out


def continuous_element(values, frequencies, amplitudes, offsets, lo, hi):
    """Each value placed at its exact position in [lo, hi] on [0, 2*pi]."""
    out = np.empty(values.shape)
    if hi == lo:
        out[...] = 0.5
        return out
    ymin, ymax = continuous_extrema(frequencies, amplitudes, offsets)
    for index, v in np.ndenumerate(values):
        v = min(max(float(v), lo), hi)
        t = TWO_PI * (v - lo) / (hi - lo)
        y = float(curve(t, frequencies, amplitudes, offsets))
        out[index] = min(max((y - ymin) / (ymax - ymin), 0.0), 1.0)
    return out


def transform_batch(x, frequencies, amplitudes, offsets, min_max_val=None, grid_max=1 << 16):
    """The batch transform with given curve parameters, element by element.

    Integer input with an integral range of at most ``grid_max`` values follows
    rsgt's algorithm; everything else the continuous definition.
    """
    x = np.asarray(x)
    out = np.empty(x.shape)
    for b in range(x.shape[0]):
        element = x[b]
        if min_max_val is None:
            lo, hi = element.min().item(), element.max().item()
        else:
            lo, hi = min_max_val
        params = (frequencies[b], amplitudes[b], offsets[b])
        integral = all(float(v).is_integer() for v in (lo, hi))
        if x.dtype.kind in "biu" and integral and int(hi) - int(lo) < grid_max:
            out[b] = rsgt_element(element, *params, int(lo), int(hi))
        else:
            out[b] = continuous_element(element, *params, float(lo), float(hi))
    return out
