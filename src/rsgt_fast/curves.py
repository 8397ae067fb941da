"""The curve model: parameter sampling, the :class:`Curves` record, exact evaluation.

A transfer function is a sum of sinusoids ``y(t) = sum_k a_k sin(f_k (t + o_k))``
on ``t`` in [0, 2*pi], where ``t = 0`` stands for the low end of the input
range and ``t = 2*pi`` for the high end, rescaled by the curve's extrema over
that interval so that it spans [0, 1].
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._formulas import TWO_PI, curve_value, normalized, place, place_integer, position_unit
from ._jit import python
from ._layout import AMPLITUDE, FREQUENCY, PHASE
from ._validate import AMPLITUDE_LIMIT, check_span

__all__ = ["Curves", "sample_parameters", "keyed_parameters", "legacy_parameters",
           "engine_curves"]


# ---------------------------------------------------------------- sampling


#: Batches with at most this many sinusoids in all are drawn with Python floats,
#: which cost less than numpy calls on tiny arrays (the arithmetic is the same).
SMALL_DRAW = 32


def _from_uniforms(u, n_elements, n_sinusoids, min_frequency, max_frequency):
    """Curve parameters ``(n, 3, K)`` from ``3 * n * K`` uniforms on [0, 1).

    The first third gives the frequencies, the second the amplitudes, the
    last the offsets, each in C order, with the arithmetic of
    ``Generator.uniform(low, high)`` (``low + (high - low) * u``), so the values
    equal three ``uniform`` calls on the same stream.
    """
    m = n_elements * n_sinusoids
    width = max_frequency - min_frequency
    if m <= SMALL_DRAW:
        u = u.tolist()
        flat = [0.0] * (3 * m)
        for i in range(m):
            b, k = divmod(i, n_sinusoids)
            f = min_frequency + width * u[i]
            low = -1.0 / f
            flat[(3 * b + FREQUENCY) * n_sinusoids + k] = f
            flat[(3 * b + AMPLITUDE) * n_sinusoids + k] = low + (1.0 / f - low) * u[m + i]
            flat[(3 * b + PHASE) * n_sinusoids + k] = TWO_PI * u[2 * m + i]
        return np.array(flat).reshape(n_elements, 3, n_sinusoids)
    u = u.reshape(3, n_elements, n_sinusoids)
    curve = np.empty((n_elements, 3, n_sinusoids))
    f = min_frequency + width * u[0]
    low = -1.0 / f
    curve[:, FREQUENCY] = f
    curve[:, AMPLITUDE] = low + (1.0 / f - low) * u[1]
    curve[:, PHASE] = TWO_PI * u[2]
    return curve


def sample_parameters(rng, n_elements, n_sinusoids, min_frequency, max_frequency):
    """Independent curve parameters for ``n_elements`` curves, drawn from ``rng``.

    Frequencies are uniform on [min_frequency, max_frequency), each amplitude
    uniform on [-1/f, 1/f) for its frequency f, offsets uniform on [0, 2*pi):
    the distribution of rsgt 1.1.0.  One ``rng.random`` call draws them all.

    Returns
    -------
    ndarray
        float64 ``(n_elements, 3, n_sinusoids)``, packed as described in
        :mod:`rsgt_fast._layout`.
    """
    u = rng.random(3 * n_elements * n_sinusoids)
    return _from_uniforms(u, n_elements, n_sinusoids, min_frequency, max_frequency)


def key_stream(root, key):
    """The generator of sample ``key`` under ``root``: numpy's own spawn scheme.

    ``SeedSequence(root.entropy, spawn_key=root.spawn_key + (key,))`` is what
    ``root.spawn`` hands to its child number ``key``, so ``keys=range(B)``
    gives the curves of ``root.spawn(B)``.
    """
    tail = tuple(key) if isinstance(key, tuple) else (key,)  # (key, channel) pairs too
    child = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + tail,
                                   pool_size=root.pool_size)
    return np.random.Generator(np.random.PCG64(child))


def keyed_parameters(root, keys, n_sinusoids, min_frequency, max_frequency):
    """Curve parameters for samples named by ``keys``, each from its own stream.

    Sample ``keys[i]`` gets the curve that a batch of one drawn from
    :func:`key_stream` ``(root, keys[i])`` gets: it depends on the root and the
    key only, not on the position, the batch or the process.
    """
    curve = np.empty((len(keys), 3, n_sinusoids))
    for i, key in enumerate(keys):
        curve[i] = sample_parameters(key_stream(root, key), 1, n_sinusoids, min_frequency,
                                     max_frequency)[0]
    return curve


def legacy_parameters(n_sinusoids, min_frequency, max_frequency):
    """One curve's parameters from the global ``np.random`` state, as rsgt 1.1.0 draws them.

    rsgt calls ``np.random.uniform`` for each sinusoid's frequency, amplitude
    and offset in turn; one ``np.random.random_sample`` call yields the same
    numbers (``uniform(low, high)`` is ``low + (high - low) * random_sample()``)
    and leaves the state where rsgt leaves it.

    Returns
    -------
    ndarray
        float64 ``(1, 3, n_sinusoids)``.
    """
    u = np.random.random_sample(3 * n_sinusoids).tolist()
    curve = [0.0] * (3 * n_sinusoids)
    for k in range(n_sinusoids):  # Python floats: the same IEEE arithmetic as numpy's
        f = min_frequency + (max_frequency - min_frequency) * u[3 * k]
        low = -1.0 / f
        curve[FREQUENCY * n_sinusoids + k] = f
        curve[AMPLITUDE * n_sinusoids + k] = low + (1.0 / f - low) * u[3 * k + 1]
        curve[PHASE * n_sinusoids + k] = 2 * np.pi * u[3 * k + 2]
    return np.array(curve).reshape(1, 3, n_sinusoids)


# ---------------------------------------------------------------- the record


def _exact_number(value, where):
    """A Python int or float from a JSON-style or numpy number (bools refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where} must hold numbers, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {value!r}")
    return value


def _frozen(array):
    array = np.array(array, dtype=np.float64)  # a copy the caller cannot reach
    array.flags.writeable = False
    return array


class Curves:
    """The transfer functions of a batch, one curve per element, replayable anywhere.

    A ``Curves`` holds everything that defines a transformation: each
    element's sinusoids and the input range mapped onto them.  Passing it back
    (``transform_batch(x, curves=curves)``) redoes the transformation without
    drawing a random number or scanning a range, on the whole batch or on any
    block of it (``curves[i:j]`` for ``x[i:j, ...]``).

    Parameters
    ----------
    frequencies, amplitudes, offsets : array_like
        ``(B, n_sinusoids)``: element ``b``'s curve is
        ``sum_k amplitudes[b, k] * sin(frequencies[b, k] * (t + offsets[b, k]))``.
    ranges : sequence of (lo, hi)
        The input value mapped to ``t = 0`` and the one mapped to ``t = 2*pi``
        for each element; values outside are clipped.  Integers are kept
        exactly: an integer range on integer data is sampled at every integer,
        as rsgt does.
    extrema : array_like, optional
        ``(B, 2)``: the raw curve minimum and maximum that scale each curve to
        [0, 1], as found when the curves were applied (``None`` before).

    Attributes
    ----------
    frequencies, amplitudes, offsets : ndarray
        float64, read-only, shape ``(B, n_sinusoids)``.
    ranges : ndarray
        float64 ``(B, 2)`` copy of the ranges (:attr:`bounds` keeps them exact).
    bounds : tuple of (lo, hi)
        The ranges as given, integers exact.
    extrema : ndarray or None
        float64 ``(B, 2)``.  For integer data whose range holds at most 65536
        values they are taken over the integers of the range (as rsgt does),
        otherwise over the continuous interval.

    Examples
    --------
    >>> import json
    >>> import numpy as np, rsgt_fast
    >>> x = np.random.default_rng(0).integers(-1024, 3072, size=(2, 16, 16))
    >>> out, curves = rsgt_fast.transform_batch(x, rng=1, return_curves=True)
    >>> np.allclose(curves.evaluate(x), out, atol=1e-6)
    True
    >>> np.array_equal(rsgt_fast.transform_batch(x[1:, :8], curves=curves[1:]), out[1:, :8])
    True
    >>> rsgt_fast.Curves.from_dict(json.loads(json.dumps(curves.to_dict()))) == curves
    True
    >>> values, outputs = curves.sample(256)   # what to plot
    >>> outputs.shape
    (2, 256)
    """

    __slots__ = ("frequencies", "amplitudes", "offsets", "bounds", "extrema")
    frequencies: np.ndarray
    amplitudes: np.ndarray
    offsets: np.ndarray
    bounds: tuple[tuple[int | float, int | float], ...]
    extrema: np.ndarray | None

    def __init__(self, frequencies: npt.ArrayLike, amplitudes: npt.ArrayLike,
                 offsets: npt.ArrayLike, ranges: Sequence[tuple[float, float]],
                 extrema: npt.ArrayLike | None = None) -> None:
        params = [_frozen(p) for p in (frequencies, amplitudes, offsets)]
        names = ("frequencies", "amplitudes", "offsets")
        for name, p in zip(names, params):
            if p.ndim != 2 or p.shape != params[0].shape or p.shape[1] < 1:
                raise ValueError(f"{name} must have shape (B, n_sinusoids) like frequencies, "
                                 f"got {p.shape}")
            if not np.isfinite(p).all():
                raise ValueError(f"{name} must be finite")
        if not (params[0] > 0).all():
            raise ValueError("frequencies must be > 0")
        with np.errstate(over="ignore"):  # an overflowing sum is refused just below
            summed = np.abs(params[1]).sum(axis=1)
        if not (summed < AMPLITUDE_LIMIT).all():
            raise ValueError(f"amplitudes are too large: each curve's |amplitudes| must sum "
                             f"to less than {AMPLITUDE_LIMIT:.3g}, so that it stays finite")
        n = params[0].shape[0]
        if isinstance(ranges, np.ndarray):
            ranges = ranges.tolist()
        if not isinstance(ranges, Sequence) or len(ranges) != n:
            raise ValueError(f"ranges must hold one (lo, hi) pair per curve ({n}), got {ranges!r}")
        bounds = []
        for pair in ranges:
            if not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(f"ranges must hold (lo, hi) pairs, got {pair!r}")
            lo, hi = (_exact_number(v, "ranges") for v in pair)
            if not lo <= hi:
                raise ValueError(f"ranges must have lo <= hi, got {pair!r}")
            check_span(lo, hi, "ranges")
            bounds.append((lo, hi))
        scale = None
        if extrema is not None:
            scale = _frozen(extrema)
            if scale.shape != (n, 2) or not np.isfinite(scale).all():
                raise ValueError(f"extrema must be None or finite of shape ({n}, 2), "
                                 f"got {scale.shape}")
            if not (scale[:, 0] <= scale[:, 1]).all():
                raise ValueError("extrema must have minimum <= maximum")
        for name, value in zip(names, params):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "bounds", tuple(bounds))
        object.__setattr__(self, "extrema", scale)

    def __setattr__(self, name, value):
        raise AttributeError("Curves are immutable")

    # ---------------------------------------------------------------- container

    def __len__(self) -> int:
        return self.frequencies.shape[0]

    @property
    def n_sinusoids(self) -> int:
        """Number of sinusoids per curve."""
        return self.frequencies.shape[1]

    @property
    def ranges(self) -> np.ndarray:
        """float64 ``(B, 2)``: each element's (lo, hi)."""
        return np.array(self.bounds, dtype=np.float64).reshape(len(self), 2)

    def packed(self):
        """The parameters as one float64 ``(B, 3, n_sinusoids)`` array (see ``_layout``)."""
        curve = np.empty((len(self), 3, self.n_sinusoids))
        curve[:, FREQUENCY] = self.frequencies
        curve[:, AMPLITUDE] = self.amplitudes
        curve[:, PHASE] = self.offsets
        return curve

    @classmethod
    def from_packed(cls, curve, ranges, extrema=None):
        """Curves from packed parameters ``(B, 3, K)``, ranges and optional extrema."""
        return cls(curve[:, FREQUENCY], curve[:, AMPLITUDE], curve[:, PHASE], ranges, extrema)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Curves:
        """The curves of some elements: an int, a slice or a sequence of ints (or bools)."""
        if isinstance(index, (bool, np.bool_)):
            raise TypeError("Curves indices must be ints, slices or sequences of ints")
        if isinstance(index, numbers.Integral):
            n = len(self)
            position = int(index)
            if not -n <= position < n:
                raise IndexError(f"index {index} is out of range for {n} curves")
            index = [position % n]
        elif not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype == np.bool_:
                if index.shape != (len(self),):
                    raise IndexError(f"a boolean index must have length {len(self)}")
                index = np.flatnonzero(index)
            elif index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
                raise TypeError("Curves indices must be ints, slices or sequences of ints")
            else:
                index = index.astype(np.intp)  # an empty list comes as floats
                n = len(self)
                outside = index[(index < -n) | (index >= n)]
                if outside.size:
                    raise IndexError(f"index {outside[0]} is out of range for {n} curves")
        rows = np.arange(len(self))[index]
        return Curves(self.frequencies[rows], self.amplitudes[rows], self.offsets[rows],
                      [self.bounds[r] for r in rows.tolist()],
                      None if self.extrema is None else self.extrema[rows])

    @classmethod
    def concatenate(cls, curves: Iterable[Curves]) -> Curves:
        """One ``Curves`` of the elements of several, in order (all with one ``n_sinusoids``)."""
        curves = list(curves)
        if not curves or not all(isinstance(c, Curves) for c in curves):
            raise TypeError("concatenate needs a non-empty sequence of Curves")
        counts = {c.n_sinusoids for c in curves}
        if len(counts) > 1:
            raise ValueError(
                f"curves with different n_sinusoids cannot be joined: {sorted(counts)}")
        extrema = None
        if all(c.extrema is not None for c in curves):
            extrema = np.concatenate([c.extrema for c in curves])
        frequencies, amplitudes, offsets = (
            np.concatenate([getattr(c, name) for c in curves])
            for name in ("frequencies", "amplitudes", "offsets"))
        return cls(frequencies, amplitudes, offsets,
                   [pair for c in curves for pair in c.bounds], extrema)

    def __eq__(self, other):
        if not isinstance(other, Curves):
            return NotImplemented
        same_extrema = (self.extrema is None and other.extrema is None) or (
            self.extrema is not None and other.extrema is not None
            and np.array_equal(self.extrema, other.extrema))
        return (same_extrema
                and [(type(v), v) for pair in self.bounds for v in pair]
                == [(type(v), v) for pair in other.bounds for v in pair]
                and all(np.array_equal(getattr(self, name), getattr(other, name))
                        for name in ("frequencies", "amplitudes", "offsets")))

    __hash__ = None  # type: ignore[assignment]  # mutable-looking values: unhashable

    def __reduce__(self):
        return (Curves, (self.frequencies, self.amplitudes, self.offsets, self.bounds,
                         self.extrema))

    def __repr__(self):
        return f"Curves({len(self)} curves of {self.n_sinusoids} sinusoids)"

    # ---------------------------------------------------------------- serialisation

    FIELDS = ("frequencies", "amplitudes", "offsets", "ranges", "extrema")

    def to_dict(self) -> dict:
        """Plain lists and numbers (JSON-serialisable) that :meth:`from_dict` turns back exactly."""
        return {
            "frequencies": self.frequencies.tolist(),
            "amplitudes": self.amplitudes.tolist(),
            "offsets": self.offsets.tolist(),
            "ranges": [list(pair) for pair in self.bounds],
            "extrema": None if self.extrema is None else self.extrema.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Curves:
        """The ``Curves`` :meth:`to_dict` described; a malformed field raises ``ValueError``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"curves data must be a mapping, got {type(data).__name__}")
        unknown = set(data) - set(cls.FIELDS)
        missing = set(cls.FIELDS[:4]) - set(data)
        if unknown or missing:
            raise ValueError(f"curves data: missing fields {sorted(missing)}, "
                             f"unknown fields {sorted(unknown)}")
        tables: dict[str, Any] = {}
        for name in cls.FIELDS:
            value = data.get(name)
            if name == "extrema" and value is None:
                tables[name] = None
                continue
            if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or not all(
                    isinstance(row, Sequence) and not isinstance(row, (str, bytes))
                    for row in value):
                raise ValueError(f"curves field {name!r} must be a list of lists of numbers")
            tables[name] = [[_exact_number(v, f"curves field {name!r}") for v in row]
                            for row in value]
        try:
            return cls(**tables)
        except ValueError as exc:
            raise ValueError(f"curves data: {exc}") from None

    # ---------------------------------------------------------------- evaluation

    def evaluate(self, values: npt.ArrayLike) -> np.ndarray:
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
        if self.extrema is None:
            raise ValueError("these curves have not been applied yet, so their extrema are "
                             "unknown: use transform_batch(x, curves=..., return_curves=True)")
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
        curve = self.packed()
        for b in range(len(self)):
            t = self._positions(b, v[b if v.shape[0] > 1 else 0].reshape(-1))
            y = python(curve_value)(t, curve, b)
            result[b] = python(normalized)(y, self.extrema[b, 0],
                                           self.extrema[b, 1]).reshape(v.shape[1:])
        return result

    def _positions(self, b, v):
        """``t`` of values ``v`` on element ``b``'s range (:func:`._formulas.place`)."""
        lo, hi = self.bounds[b]
        if not hi > lo:
            return np.zeros(v.shape)
        if isinstance(lo, int) and isinstance(hi, int) and v.dtype.kind in "iu":
            # Integers over an integral range: their distance from the range's low
            # end (clamped to the dtype) in integer arithmetic.
            info = np.iinfo(v.dtype)
            low = min(max(lo, int(info.min)), int(info.max))
            high = min(max(hi, int(info.min)), int(info.max))
            scale = TWO_PI / (0.5 * float(hi - lo))
            return python(place_integer)(v, v.dtype.type(low), v.dtype.type(high),
                                         float(low - lo) * 0.5 * scale, 0.5, scale, TWO_PI)
        lo_f, hi_f = float(lo), float(hi)
        unit = position_unit(lo_f, hi_f)
        return python(place)(v.astype(np.float64), lo_f, hi_f, unit, unit * lo_f,
                             TWO_PI / (unit * hi_f - unit * lo_f))

    def sample(self, num: int = 256) -> tuple[np.ndarray, np.ndarray]:
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


def engine_curves(curve, bounds, extrema=None):
    """:meth:`Curves.from_packed` for what the engine itself drew, scanned and found.

    ``bounds`` are ``(lo, hi)`` pairs of Python ints or floats with
    ``lo <= hi``, the parameters are finite and the extrema ordered, so nothing
    is checked again: on a small image, checking the record of a call with
    ``return_curves=True`` would otherwise cost more than the transform.
    """
    record = object.__new__(Curves)
    for name, column in (("frequencies", FREQUENCY), ("amplitudes", AMPLITUDE),
                         ("offsets", PHASE)):
        object.__setattr__(record, name, _frozen(curve[:, column]))
    object.__setattr__(record, "bounds", tuple((lo, hi) for lo, hi in bounds))
    object.__setattr__(record, "extrema", None if extrema is None else _frozen(extrema))
    return record
