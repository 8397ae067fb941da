"""The curve model: parameter sampling, exact evaluation and plotting data.

A transfer function is a sum of sinusoids ``y(t) = sum_k a_k sin(f_k (t + o_k))``
on ``t`` in [0, 2*pi], where ``t = 0`` stands for the low end of the input
range and ``t = 2*pi`` for the high end, rescaled by the curve's extrema over
that interval so that it spans [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Curves", "sample_parameters", "legacy_parameters", "grid_values"]

TWO_PI = 2.0 * np.pi


def sample_parameters(rng, n_elements, n_sinusoids, min_frequency, max_frequency):
    """Draw independent curve parameters for ``n_elements`` curves.

    Frequencies are uniform on [min_frequency, max_frequency), each amplitude
    uniform on [-1/f, 1/f) for its frequency f, offsets uniform on [0, 2*pi):
    the distribution of rsgt 1.1.0.

    Returns
    -------
    frequencies, amplitudes, offsets : ndarray
        float64 arrays of shape ``(n_elements, n_sinusoids)``.
    """
    shape = (n_elements, n_sinusoids)
    frequencies = rng.uniform(min_frequency, max_frequency, size=shape)
    amplitudes = rng.uniform(-1.0 / frequencies, 1.0 / frequencies)
    offsets = rng.uniform(0.0, TWO_PI, size=shape)
    return frequencies, amplitudes, offsets


def legacy_parameters(n_sinusoids, min_frequency, max_frequency):
    """Draw one curve's parameters from the global ``np.random`` state.

    The draws, their order and their arithmetic are those of rsgt 1.1.0, so
    the same global state yields the same curve and leaves the state where
    rsgt would leave it.

    Returns
    -------
    frequencies, amplitudes, offsets : ndarray
        float64 arrays of shape ``(1, n_sinusoids)``.
    """
    params = np.empty((3, 1, n_sinusoids))
    for k in range(n_sinusoids):
        frequency = np.random.uniform(min_frequency, max_frequency)
        params[0, 0, k] = frequency
        params[1, 0, k] = np.random.uniform(-1 / frequency, 1 / frequency)
        params[2, 0, k] = np.random.uniform(0, 2 * np.pi)
    return params[0], params[1], params[2]


def grid_values(frequencies, amplitudes, offsets, n_points):
    """Raw values of one curve on ``numpy.linspace(0, 2*pi, n_points)``.

    Computed with numpy in exactly the operations and order of rsgt 1.1.0, so
    the values agree with it bit for bit.  ``frequencies`` etc. are 1-D.
    """
    t = np.linspace(0, 2 * np.pi, n_points)
    # Every sinusoid in one call (the same elementwise operations), then
    # summed in rsgt's order.
    terms = amplitudes[:, None] * np.sin(frequencies[:, None] * (t + offsets[:, None]))
    y = np.zeros_like(t)
    for term in terms:
        y += term
    return y


def dense_grid_points(frequencies, amplitudes, offsets, tolerance, smallest=1025, largest=65537):
    """Grid points per curve for linear interpolation within ``tolerance``.

    Interpolating a curve between grid points ``h`` apart errs by at most
    ``h**2 / 8 * max|y''|``, and ``max|y''| <= sum(|a| f**2)``; relative to the
    curve's range ``R`` (bounded from below by a coarse sampling) that gives
    the spacing needed.  Returns ``2**k + 1`` points, between ``smallest`` and
    ``largest``.
    """
    t = np.linspace(0.0, TWO_PI, 257)
    y = np.zeros((frequencies.shape[0], t.size))
    for k in range(frequencies.shape[1]):
        y += amplitudes[:, k, None] * np.sin(frequencies[:, k, None] * (t + offsets[:, k, None]))
    span = np.maximum(y.max(axis=1) - y.min(axis=1), 1e-300)
    bend = (np.abs(amplitudes) * frequencies**2).sum(axis=1)
    needed = TWO_PI * np.sqrt(bend / (8.0 * span * tolerance))
    steps = 2.0 ** np.ceil(np.log2(np.maximum(needed, 1.0)))
    return np.clip(steps + 1, smallest, largest).astype(np.int64)


def position_unit(lo, hi):
    """Power of two ``u`` that keeps ``(u*v - u*lo) / (u*hi - u*lo)`` finite.

    Halves (``u = 0.5``) keep ``hi - lo`` from overflowing for ranges as wide as
    the float64 line; for spans below 1e-30 (subnormal data) ``u`` grows so that
    the inverse span stays finite, even in float32.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    half_span = np.where(hi > lo, 0.5 * hi - 0.5 * lo, 1.0)
    exponent = np.frexp(half_span)[1]
    return np.where(half_span < 1e-30, np.ldexp(1.0, np.minimum(1000, -exponent)), 0.5)


def _normalize(y, ymin, ymax):
    span = ymax - ymin
    if not span > 0:
        return np.full_like(y, 0.5)
    return np.clip((y - ymin) / span, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class Curves:
    """The transfer functions of one batch, one curve per element.

    Attributes
    ----------
    frequencies, amplitudes, offsets : ndarray
        float64, shape ``(B, n_sinusoids)``.
    ranges : ndarray
        float64, shape ``(B, 2)``: the input value mapped to ``t = 0`` and the
        one mapped to ``t = 2*pi`` for each element.  Values outside are clipped.
    extrema : ndarray
        float64, shape ``(B, 2)``: the raw curve minimum and maximum used to
        scale each curve to [0, 1].  For integer input whose range holds at most
        65536 values they are taken over the integer grid (as rsgt does), else
        over the continuous interval.

    Examples
    --------
    >>> import numpy as np, rsgt_fast
    >>> x = np.random.default_rng(0).integers(-1024, 3072, size=(2, 16, 16))
    >>> out, curves = rsgt_fast.transform_batch(x, rng=1, return_curves=True)
    >>> np.allclose(curves.evaluate(x), out, atol=1e-6)
    True
    >>> values, outputs = curves.sample(256)   # what to plot
    >>> outputs.shape
    (2, 256)
    """

    frequencies: np.ndarray
    amplitudes: np.ndarray
    offsets: np.ndarray
    ranges: np.ndarray
    extrema: np.ndarray
    _bounds: tuple = field(repr=False, default=())

    def __len__(self):
        return self.frequencies.shape[0]

    @property
    def n_sinusoids(self):
        """Number of sinusoids per curve."""
        return self.frequencies.shape[1]

    def evaluate(self, values):
        """Each element's transfer function at the given input values.

        Parameters
        ----------
        values : array_like
            Real values with the batch on axis 0: shape ``(B, ...)`` evaluates
            row ``b`` with curve ``b``; shape ``(1, ...)`` evaluates the same
            values with every curve.

        Returns
        -------
        ndarray
            float64 of shape ``(B, ...)``, in [0, 1], computed exactly in
            float64 (no tables).
        """
        v = np.asarray(values)
        if v.dtype.kind not in "biuf":
            raise TypeError(f"values must be real numbers, got dtype {v.dtype}")
        if v.ndim == 0 or v.shape[0] not in (1, len(self)):
            raise ValueError(
                f"values must have the batch on axis 0 (length {len(self)} or 1), "
                f"got shape {v.shape}"
            )
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise ValueError("values must be finite")
        if v.dtype == np.bool_:
            v = v.view(np.uint8)
        result = np.empty((len(self),) + v.shape[1:])
        for b in range(len(self)):
            t = self._positions(b, v[b if v.shape[0] > 1 else 0].reshape(-1))
            y = np.zeros(t.shape)
            for f, a, o in zip(self.frequencies[b], self.amplitudes[b], self.offsets[b]):
                y += a * np.sin(f * (t + o))
            result[b] = _normalize(y, self.extrema[b, 0], self.extrema[b, 1]).reshape(v.shape[1:])
        return result

    def _positions(self, b, v):
        lo, hi = self._bounds[b] if self._bounds else tuple(self.ranges[b])
        if not hi > lo:
            return np.zeros(v.shape)
        exact = isinstance(lo, int) and isinstance(hi, int) and v.dtype.kind in "iu"
        if exact:
            info = np.iinfo(v.dtype)
            lo_c = min(max(lo, info.min), info.max)
            hi_c = min(max(hi, info.min), info.max)
            clipped = np.clip(v, lo_c, hi_c)
            if v.dtype.itemsize < 8:
                d = clipped.astype(np.int64) - lo_c
            else:
                # 0 <= clipped - lo_c < 2**64: exact in uint64 (modular) arithmetic.
                d = (clipped - v.dtype.type(lo_c)).astype(np.uint64)
            # Values can only reach [lo, hi] from inside the dtype's range.
            d = np.clip(d.astype(np.float64) + float(lo_c - lo), 0.0, float(hi - lo))
            t = d * (TWO_PI / float(hi - lo))
            t[clipped == hi] = TWO_PI  # linspace ends exactly at 2*pi
            return t
        lo_f, hi_f = float(lo), float(hi)
        unit = float(position_unit(lo_f, hi_f))
        w = np.clip(v.astype(np.float64), lo_f, hi_f)
        return (unit * w - unit * lo_f) * (TWO_PI / (unit * hi_f - unit * lo_f))

    def sample(self, num=256):
        """Evenly spaced input values over each range and the outputs there.

        Parameters
        ----------
        num : int
            Points per curve.

        Returns
        -------
        values, outputs : ndarray
            float64 arrays of shape ``(B, num)``: plot ``outputs[b]`` against
            ``values[b]`` to see element ``b``'s transfer function.
        """
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 2:
            raise ValueError(f"num must be an int >= 2, got {num!r}")
        values = np.linspace(self.ranges[:, 0], self.ranges[:, 1], int(num), axis=1)
        return values, self.evaluate(values)
