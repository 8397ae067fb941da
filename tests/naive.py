"""The references every test and benchmark compares with: slow, obvious, in float64.

* :func:`curve`, :func:`continuous_extrema`: the sum of sinusoids and its
  extrema over [0, 2*pi];
* :func:`integer_reference`, :func:`real_reference`, :func:`transform_batch`:
  what the transforms must return, one value at a time where that helps,
  with Python integers where float64 is not exact;
* :func:`rsgt_draws`, :func:`uniform_draws`: the random numbers rsgt and
  ``transform_batch`` draw, with the calls those draws are documented as;
* :func:`rsgt_with_parameters`: the real rsgt 1.1.0 run with given curves.

Only used on small arrays.
"""

import math
from unittest import mock

import numpy as np

TWO_PI = 2 * math.pi
#: Integer ranges holding at most this many values are sampled on the integer grid.
GRID_VALUES = 1 << 16

_DENSE = np.linspace(0.0, TWO_PI, (1 << 20) + 1)


def curve(t, frequencies, amplitudes, offsets):
    """The raw sum of sinusoids at ``t`` (scalar or array), in float64."""
    y = np.zeros(np.shape(t))
    for f, a, o in zip(frequencies, amplitudes, offsets):
        y = y + a * np.sin(f * (np.asarray(t, np.float64) + o))
    return y


def continuous_extrema(frequencies, amplitudes, offsets):
    """Minimum and maximum of the curve on [0, 2*pi], from a very dense sampling.

    The sampling step is 6e-6, so the extrema are off by less than
    ``max|y''| * step**2 / 8`` (about 3e-11).
    """
    y = curve(_DENSE, frequencies, amplitudes, offsets)
    return float(y.min()), float(y.max())


def _normalized(y, ymin, ymax):
    return np.clip((y - ymin) / (ymax - ymin), 0.0, 1.0)


def integer_reference(values, lo, hi, f, a, o):
    """rsgt's transform of integer ``values`` over the integer range [lo, hi], exactly.

    The curve is sampled at ``linspace(0, 2*pi, hi - lo + 1)``; ranges of at
    most 65536 values are normalised by the extrema of those samples, wider
    ones by those of the continuous curve, as documented (for such fine grids
    the two differ by well under 1e-6).  Offsets from ``lo`` are Python
    integers, so no dtype can wrap around.
    """
    values = np.asarray(values)
    if hi == lo:
        return np.full(values.shape, 0.5)
    d = [min(max(int(v), lo), hi) - lo for v in values.ravel().tolist()]
    if hi - lo < GRID_VALUES:
        y = curve(np.linspace(0.0, TWO_PI, hi - lo + 1), f, a, o)
        return _normalized(y[np.array(d, np.int64)], y.min(), y.max()).reshape(values.shape)
    t = np.array([float(k) for k in d]) * (TWO_PI / float(hi - lo))
    return _normalized(curve(t, f, a, o), *continuous_extrema(f, a, o)).reshape(values.shape)


def position_fraction(w, lo, hi):
    """``(clip(w, lo, hi) - lo) / (hi - lo)`` in float64, for any finite lo < hi.

    A span that overflows is halved first; subnormal differences are exact.
    """
    w = np.clip(np.asarray(w, np.float64), lo, hi)
    if math.isfinite(hi - lo):
        return (w - lo) / (hi - lo)
    return (0.5 * w - 0.5 * lo) / (0.5 * hi - 0.5 * lo)


def real_reference(values, lo, hi, f, a, o):
    """The transform of real ``values`` over [lo, hi] with the continuous curve's extrema."""
    values = np.asarray(values)
    if not hi > lo:
        return np.full(values.shape, 0.5)
    t = position_fraction(values, lo, hi) * TWO_PI
    return _normalized(curve(t, f, a, o), *continuous_extrema(f, a, o))


def _bound(v):
    return int(v) if float(v).is_integer() else float(v)


def transform_batch(x, frequencies, amplitudes, offsets, min_max_val=None):
    """What ``transform_batch(x, min_max_val=...)`` must return, given its curve parameters.

    Integer input with an integral range follows rsgt's algorithm
    (:func:`integer_reference`); everything else the continuous definition.
    """
    x = np.asarray(x)
    if x.dtype == np.bool_:
        x = x.astype(np.uint8)
    ref = np.empty(x.shape)
    integral = x.dtype.kind in "iu"
    for b in range(x.shape[0]):
        v = x[b]
        if min_max_val is None:
            lo, hi = (int(v.min()), int(v.max())) if integral else (float(v.min()), float(v.max()))
        else:
            lo, hi = (_bound(m) for m in min_max_val)
        params = frequencies[b], amplitudes[b], offsets[b]
        if integral and isinstance(lo, int) and isinstance(hi, int):
            ref[b] = integer_reference(v, lo, hi, *params)
        else:
            ref[b] = real_reference(v.astype(np.float64), float(lo), float(hi), *params)
    return ref


def transform_selected(x, frequencies, amplitudes, offsets, mask=None, fill=0.0,
                       min_max_val=None):
    """What ``transform_batch(x, nan_policy="omit", mask=mask, fill=fill)`` must return.

    Each element's range comes from its finite values where ``mask`` is true,
    computed one element at a time with the values outside dropped; NaN stays
    NaN, ±Inf are clipped to the range, values outside the mask get ``fill``.
    """
    x = np.asarray(x)
    if x.dtype == np.bool_:
        x = x.astype(np.uint8)
    mask = np.ones(x.shape, bool) if mask is None else np.broadcast_to(mask, x.shape)
    ref = np.full(x.shape, float(fill))
    for b in range(x.shape[0]):
        v, m = x[b], mask[b]
        finite = m & np.isfinite(v) if x.dtype.kind == "f" else m
        kept = v[finite]
        if min_max_val is None:
            integral = x.dtype.kind in "iu"
            lo, hi = ((int(kept.min()), int(kept.max())) if integral
                      else (float(kept.min()), float(kept.max())))
        else:
            lo, hi = (_bound(e) for e in min_max_val)
        params = frequencies[b], amplitudes[b], offsets[b]
        chosen = v[m]
        if isinstance(lo, int) and isinstance(hi, int) and x.dtype.kind in "iu":
            out = integer_reference(chosen, lo, hi, *params)
        else:
            with np.errstate(invalid="ignore"):
                out = real_reference(chosen.astype(np.float64), float(lo), float(hi), *params)
            out[np.isnan(chosen)] = np.nan
        ref[b][m] = out
    return ref


def rsgt_draws(seed, n_sinusoids=4, low=0.2, high=1.6):
    """The frequencies, amplitudes and offsets rsgt draws after ``np.random.seed(seed)``.

    Drawn, as rsgt draws them, from a ``RandomState(seed)`` of their own (the
    global state is left alone).
    """
    state = np.random.RandomState(seed)
    f, a, o = [], [], []
    for _ in range(n_sinusoids):
        frequency = state.uniform(low, high)
        f.append(frequency)
        a.append(state.uniform(-1 / frequency, 1 / frequency))
        o.append(state.uniform(0, 2 * np.pi))
    return np.array(f), np.array(a), np.array(o)


def uniform_draws(rng, n_elements, n_sinusoids=4, low=0.2, high=1.6):
    """The curve parameters of a batch as three ``Generator.uniform`` calls.

    Frequencies first, then amplitudes on ``[-1/f, 1/f)``, then offsets on
    ``[0, 2*pi)``: what ``transform_batch`` is documented to draw.
    """
    shape = (n_elements, n_sinusoids)
    f = rng.uniform(low, high, size=shape)
    a = rng.uniform(-1.0 / f, 1.0 / f)
    o = rng.uniform(0.0, TWO_PI, size=shape)
    return f, a, o


def rsgt_with_parameters(image, frequencies, amplitudes, offsets, **kwargs):
    """rsgt 1.1.0's transform of ``image`` with the given curve parameters.

    rsgt draws every parameter from ``np.random.uniform``; here those draws are
    replaced by the given values (in rsgt's order), so rsgt computes the curve
    of one :class:`rsgt_fast.Curves` element.
    """
    from rsgt.augmentation import random_smooth_grayvalue_transform

    draws = iter(np.stack([frequencies, amplitudes, offsets], axis=-1).ravel().tolist())
    with mock.patch.object(np.random, "uniform", lambda *args, **kw: next(draws)):
        return random_smooth_grayvalue_transform(image, n_sinusoids=len(frequencies), **kwargs)


def random_curves(seed, count, n_sinusoids=4):
    """Packed curve parameters ``(count, 3, n_sinusoids)`` over a wider spread than the
    defaults draw (frequencies up to 6, amplitudes on ``[-1/f, 1/f)``)."""
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.05, 6.0, (count, n_sinusoids))
    a = rng.uniform(-1.0, 1.0, (count, n_sinusoids)) / f
    o = rng.uniform(0, 2 * np.pi, (count, n_sinusoids))
    return np.stack([f, a, o], axis=1)
