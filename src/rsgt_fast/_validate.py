"""Argument checks shared by every entry point (facade, batch engine, integrations).

Every check raises before any work, with a message that names the argument
and the offending value.
"""

from __future__ import annotations

import decimal
import functools
import math
import numbers
import operator
import sys
import threading
from collections.abc import Mapping, Set
from typing import NamedTuple

import numpy as np

FLOAT_OUTPUTS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

#: The smallest frequency whose amplitude range ``[-1/f, 1/f)`` is finite.
SMALLEST_FREQUENCY = 2.0 / float(np.finfo(np.float64).max)
#: Bound on a curve's summed ``|amplitude|``: the curve, its extrema and the
#: differences between them then stay finite in float64.
AMPLITUDE_LIMIT = float(np.finfo(np.float64).max) / 4


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------- defaults


class DefaultInt(int):
    """An int default that can be told apart from the same value passed explicitly."""

    __slots__ = ()


class DefaultFloat(float):
    """A float default that can be told apart from the same value passed explicitly."""

    __slots__ = ()


def given(value):
    """Whether ``value`` was passed by the caller (not None and not a marked default)."""
    return value is not None and not isinstance(value, (DefaultInt, DefaultFloat))


# ---------------------------------------------------------------- scalars


def real_scalar(value, name):
    """A finite real number (bools are refused)."""
    if type(value) is int or (type(value) is float and math.isfinite(value)):  # quickly
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_short(value)}")
    if not isinstance(value, numbers.Integral) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {_short(value)}")
    return value


def positive_int(value, name):
    """An integer >= 1."""
    if type(value) is int and value >= 1:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_short(value)}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {_short(value)}")
    return int(value)


def frequencies(low, high, low_name="min_frequency", high_name="max_frequency"):
    """Two finite frequencies with ``0 < low < high`` and a finite amplitude range."""
    low = float(real_scalar(low, low_name))
    high = float(real_scalar(high, high_name))
    if low <= 0:
        raise ValueError(f"{low_name} must be > 0, got {low!r}")
    if low < SMALLEST_FREQUENCY:
        raise ValueError(f"{low_name} must be >= {SMALLEST_FREQUENCY:.3g} (amplitudes are drawn "
                         f"from [-1/f, 1/f)), got {low!r}")
    if high <= low:
        raise ValueError(f"{high_name} must be greater than {low_name}, got {high!r} <= {low!r}")
    return low, high


def value_range(value, name="min_max_val"):
    """``None`` or ``(lo, hi)`` with finite ``lo <= hi``; integral values come back as ints."""
    if value is None:
        return None
    if (isinstance(value, (str, bytes, Set, Mapping)) or not hasattr(value, "__len__")
            or len(value) != 2):  # sets and mappings have no order to read (lo, hi) from
        raise ValueError(f"{name} must be None or a pair (lo, hi), got {_short(value)}")
    lo, hi = (real_scalar(v, name) for v in value)
    if hi < lo:
        raise ValueError(f"{name} must have lo <= hi, got {_short(value)}")
    check_span(lo, hi, name)
    return tuple(int(v) if float(v).is_integer() else float(v) for v in (lo, hi))


#: The largest float64.
FLOAT_MAX = sys.float_info.max


def check_span(lo, hi, name):
    """Raise ``ValueError`` unless ``lo``, ``hi`` and ``hi - lo`` are within the float64 range.

    Ranges are placed in float64 arithmetic: wider ones would overflow.
    """
    if not (-FLOAT_MAX <= lo and hi <= FLOAT_MAX and hi - lo <= FLOAT_MAX):
        raise ValueError(f"{name} must lie within the float64 range and span at most "
                         f"{FLOAT_MAX:.4g}, got ({_short(lo)}, {_short(hi)})")


@functools.lru_cache(maxsize=64)
def _float_output(value):
    dtype = np.dtype(value)
    return dtype if dtype in FLOAT_OUTPUTS else None


def output_dtype(value, name="dtype"):
    """float16, float32 or float64."""
    if isinstance(value, (str, type, np.dtype)):
        try:
            known = _float_output(value)
        except TypeError:
            known = None
        if known is not None:
            return known
    try:
        dtype = np.dtype(value)
    except TypeError as exc:
        raise TypeError(f"{name} must be a float dtype, got {_short(value)}") from exc
    if dtype.kind == "f":
        dtype = dtype.newbyteorder("=")  # results are written in native byte order
    if dtype not in FLOAT_OUTPUTS:
        raise ValueError(
            f"{name} must be float16, float32 or float64 (outputs lie in [0, 1]), got {dtype}"
        )
    return dtype


def like_input(dtype, input_dtype):
    """``dtype``, where ``None`` means the input's: its float dtype, or float32 for other input.

    Outputs lie in [0, 1], so integer and bool input (which could not hold
    them) get float32, and float16/32/64 input keeps its dtype, as MONAI's
    ``dtype=None`` keeps it.
    """
    if dtype is not None:
        return dtype
    found = _float_output(np.dtype(input_dtype).newbyteorder("="))
    return np.dtype(np.float32) if found is None else found


def image_values(dtype, name):
    """Refuse a boolean image (a mask passed by mistake) in an integration: ``TypeError``."""
    if str(dtype) in ("bool", "torch.bool"):
        raise TypeError(f"{name} is boolean, a mask rather than an image: pass the gray-value "
                        "image (a mask goes to the transform's mask option)")


def flag(value, name):
    """A bool (numpy bools too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_short(value)}")
    return bool(value)


# ---------------------------------------------------------------- curve options


class CurveOptions(NamedTuple):
    """The curve options every transform takes, checked (see :func:`curve_options`)."""

    n_sinusoids: int
    min_frequency: float
    max_frequency: float
    min_max_val: tuple | None
    dtype: np.dtype

    def as_kwargs(self):
        """The options as ``transform_batch`` keyword arguments."""
        return {"n_sinusoids": self.n_sinusoids, "min_frequency": self.min_frequency,
                "max_frequency": self.max_frequency, "min_max_val": self.min_max_val,
                "dtype": self.dtype}


def curve_options(n_sinusoids, min_frequency, max_frequency, min_max_val, dtype,
                  max_name="max_frequency"):
    """Check the curve options; ``max_name`` is the caller's spelling of the maximum."""
    args = (n_sinusoids, min_frequency, max_frequency, min_max_val, dtype, max_name)
    if _plain(args):
        return _checked_options(*args)
    return _check_options(*args)


#: Types whose values the option cache may hold: equal values of these types
#: (``typed`` keeps 1 and 1.0 apart) always give the same checked options.
_PLAIN_TYPES = frozenset({int, float, str, DefaultInt, DefaultFloat, type(None), type})


def _plain(args):
    for value in args:
        if type(value) is tuple:  # min_max_val: checked element by element
            if not all(type(v) is int or type(v) is float for v in value):
                return False
        elif type(value) not in _PLAIN_TYPES and not isinstance(value, np.dtype):
            return False
    return True


def _check_options(n_sinusoids, min_frequency, max_frequency, min_max_val, dtype, max_name):
    low, high = frequencies(min_frequency, max_frequency, high_name=max_name)
    n_sinusoids = positive_int(n_sinusoids, "n_sinusoids")
    # Amplitudes reach 1/f each: n_sinusoids / min_frequency must stay below the
    # limit.  The bound is shown rounded up and applied as shown.
    try:
        smallest = _round_up(n_sinusoids / AMPLITUDE_LIMIT)
    except OverflowError:
        raise ValueError(f"n_sinusoids is too large, got {_short(n_sinusoids)}") from None
    if low < smallest:
        raise ValueError(f"min_frequency must be >= {smallest:.3g} for n_sinusoids="
                         f"{n_sinusoids} (amplitudes up to 1/f each must keep the curve "
                         f"finite), got {low!r}")
    return CurveOptions(n_sinusoids, low, high, value_range(min_max_val), output_dtype(dtype))


def _round_up(value, digits=3):
    """``value`` > 0 rounded up to ``digits`` significant digits.

    That is the float a user typing the shown digits gets, never below ``value``.
    """
    exact = decimal.Decimal(value)
    step = decimal.Decimal(1).scaleb(exact.adjusted() - digits + 1)
    return float(exact.quantize(step, rounding=decimal.ROUND_CEILING))


#: Calls in a training loop repeat the same options: check them once.
_checked_options = functools.lru_cache(maxsize=128, typed=True)(_check_options)


# ---------------------------------------------------------------- arrays


def input_dtype(value, name="x"):
    """An integer, bool, float16, float32 or float64 dtype: what the transforms take."""
    try:
        dtype = np.dtype(value)
    except TypeError as exc:
        raise TypeError(f"{name}: {_short(value)} is not a numpy dtype") from exc
    kind = dtype.kind
    if kind not in "biuf" or (kind == "f" and dtype.itemsize not in (2, 4, 8)):
        raise TypeError(f"{name} must hold integers or float16/32/64 values, got dtype {dtype}")
    return dtype


def input_array(value, name="x"):
    """A non-empty array of at least one dimension with an integer, bool or float dtype."""
    array = np.asanyarray(value)
    input_dtype(array.dtype, name)
    if array.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d array")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    return array


def out_array(out, shape, dtype, source, name="out"):
    """A writeable float array of ``shape`` and ``dtype`` that does not overlap ``source``."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    if out.dtype != dtype and out.dtype.newbyteorder("=") != dtype:  # either byte order
        raise ValueError(f"{name} has dtype {out.dtype} but dtype={dtype} was requested")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if np.may_share_memory(out, source) and not (
        out.__array_interface__["data"][0] == source.__array_interface__["data"][0]
        and out.strides == source.strides
        and out.dtype.itemsize == source.dtype.itemsize
    ):
        raise ValueError(f"{name} overlaps the input; pass a separate array or the input itself")
    return out


# ---------------------------------------------------------------- selection


NAN_POLICIES = ("raise", "omit")


def nan_policy(value, name="nan_policy"):
    """``'raise'`` or ``'omit'``."""
    if not isinstance(value, str) or value not in NAN_POLICIES:
        raise ValueError(f"{name} must be 'raise' or 'omit', got {_short(value)}")
    return value


def fill_value(value, dtype, name="fill"):
    """A real number (NaN allowed) that the output dtype ``dtype`` holds as a number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_short(value)}")
    value = float(value)
    if math.isinf(value) or (math.isfinite(value) and abs(value) > float(np.finfo(dtype).max)):
        raise ValueError(f"{name} must be a finite number or NaN that {np.dtype(dtype).name} "
                         f"holds, got {_short(value)}")
    return value


def channel_axis(value, ndim, name="channel_axis"):
    """``None``, or the channel axis as a positive index (never the batch axis 0)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or None, got {_short(value)}")
    axis = int(value) + (ndim if value < 0 else 0)
    if not 0 <= axis < ndim:
        raise ValueError(f"{name} {value} is out of range for x of {ndim} dimensions")
    if axis == 0:
        raise ValueError(f"{name} must not be the batch axis 0")
    return axis


def mask_layout(dtype, mask_shape, shape, name="mask"):
    """Whether a mask of ``dtype`` and ``mask_shape`` is one per element (else one for all).

    It must be boolean, of the batch's ``shape`` or of one element's ``shape[1:]``.
    """
    if dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {dtype}")
    if tuple(mask_shape) not in (tuple(shape), tuple(shape[1:])):
        raise ValueError(f"{name} must have the batch's shape {tuple(shape)} or one element's "
                         f"shape {tuple(shape[1:])}, got {tuple(mask_shape)}")
    return tuple(mask_shape) == tuple(shape)


def mask_array(value, shape, name="mask"):
    """``value`` as a boolean array of the batch's ``shape`` (one element's shape broadcast)."""
    array = np.asarray(value)
    mask_layout(array.dtype, array.shape, shape, name)
    return np.broadcast_to(array, shape)


def mask_rows(value, shape, name="mask"):
    """``value`` as uint8 rows for a batch of ``shape``: one per element, or one for all.

    ``value`` is a boolean array of ``shape`` or of one element's shape ``shape[1:]``.
    """
    if value is None:
        return None
    array = np.asarray(value)
    each = mask_layout(array.dtype, array.shape, shape, name)
    flat = array.reshape(shape[0] if each else 1, -1)
    return np.ascontiguousarray(flat).view(np.uint8)


def in_users_terms(error, name, mask_option):
    """The engine's ``ValueError`` about the values of ``name``, in a transform's own terms.

    ``mask_option`` names the transform's option that selects the voxels
    (``nonzero=True``, ``masking_method``...).  Other errors come back as they are.
    """
    text = str(error)
    if "must be finite" in text:
        return ValueError(f"{name} holds NaN or Inf values; pass nan_policy='omit' to transform "
                          "the finite voxels only")
    if "holds no finite value" in text:
        return ValueError(f"{name} holds no finite value to transform")
    if "mask selects no" in text:
        finite = "finite " if "finite" in text else ""
        return ValueError(f"{name} holds no {finite}voxel inside {mask_option} to transform")
    return error


# ---------------------------------------------------------------- randomness


def rng(value, name="rng", *, once=False):
    """A ``numpy.random.Generator`` from None, an int, a SeedSequence or a Generator.

    With ``once``, the caller draws from the generator right away and keeps no
    reference to it: an int seed then reuses this thread's scratch generator,
    set to the seed's initial state (a few microseconds instead of the tens
    that seeding a new one costs; the numbers are the same).
    """
    if isinstance(value, np.random.Generator):
        return value
    if isinstance(value, (bool, np.bool_, float)):
        raise TypeError(f"{name} must be None, an int, a SeedSequence or a "
                        f"numpy.random.Generator, got {_short(value)}")
    if once and isinstance(value, (int, np.integer)) and value >= 0:
        seed = int(value)
        state = _seed_states.get(seed)
        if state is None:  # a new seed: seeding costs the same either way, remember it
            generator = np.random.default_rng(seed)
            if len(_seed_states) >= _SEED_STATES:
                _seed_states.clear()
            _seed_states[seed] = generator.bit_generator.state
            return generator
        generator = getattr(_scratch, "generator", None)
        if generator is None:
            generator = _scratch.generator = np.random.Generator(np.random.PCG64(0))
        generator.bit_generator.state = state
        return generator
    try:
        return np.random.default_rng(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name} must be None, an int, a SeedSequence or a "
                        f"numpy.random.Generator, got {_short(value)}") from exc


#: Per-thread generator reused by ``rng(seed, once=True)``.
_scratch = threading.local()
#: Initial bit-generator states of the seeds seen lately (at most ``_SEED_STATES``).
_seed_states = {}
_SEED_STATES = 256


def root_seed(value, name="rng"):
    """The ``SeedSequence`` that per-sample keys extend, from an int or a SeedSequence."""
    if isinstance(value, np.random.SeedSequence):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        why = ("a Generator has no reproducible root" if isinstance(value, np.random.Generator)
               else f"got {_short(value)}")
        raise TypeError(f"keys need {name} to be an int or a numpy.random.SeedSequence: {why}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return np.random.SeedSequence(int(value))


def keys(value, n_elements, name="keys"):
    """``n_elements`` non-negative Python ints from a 1-D sequence."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a 1-D sequence of non-negative integers, "
                        f"got {_short(value)}")
    shape = np.shape(value)
    if len(shape) != 1:
        raise ValueError(f"{name} must be 1-D, got shape {shape}")
    if shape[0] != n_elements:
        raise ValueError(f"{name} must hold one key per batch element ({n_elements}), "
                         f"got {shape[0]}")
    result = []
    for key in value:
        if isinstance(key, (bool, np.bool_)) or getattr(key, "dtype", None) == np.bool_:
            raise TypeError(f"{name} must hold integers, got {_short(key)}")
        try:
            number = operator.index(key)  # Python and numpy integers, integer tensors
        except TypeError:
            raise TypeError(f"{name} must hold integers, got {_short(key)}") from None
        if number < 0:
            raise ValueError(f"{name} must hold non-negative integers, got {_short(key)}")
        result.append(number)
    return result
