"""PyTorch tensors: :func:`transform_batch` on a tensor, the result on the tensor's device.

Curves are drawn on the host exactly as :func:`rsgt_fast.transform_batch`
draws them, so for the same ``rng`` and ``keys`` (or ``curves``) the result is
the numpy engine's.  A CPU tensor shares its memory with numpy and goes
straight to the compiled engine, without a copy.  A CUDA tensor stays on its
GPU where Triton is installed (it comes with PyTorch's CUDA builds): one
fused Triton kernel maps every voxel, equal to the numpy engine's result
within float rounding (1e-6 for float32 output).  8/16-bit integer input with
its own ranges (or integral ranges inside its dtype's) has its ranges and
tables built on the device, so nothing comes back to the host; other input
gets its tables from the host, and its own ranges from one ``aminmax`` on the
device (see :mod:`rsgt_fast._gpu`).  Selections (``mask``, ``nan_policy``)
and ``channel_axis`` stay on the device too, bit for bit the numpy engine's.
A tensor on any other device (MPS, or
CUDA without Triton) is copied to the host, transformed there and copied
back, in one transfer each way.

Requires PyTorch (any of the ``torch``, ``monai``, ``torchio`` or ``nnunet``
extras).

Examples
--------
>>> import torch
>>> import rsgt_fast.torch
>>> x = torch.randint(-1024, 3072, (2, 16, 16), dtype=torch.int16)
>>> out = rsgt_fast.torch.transform_batch(x, rng=0)
>>> out.dtype, out.device.type, bool(out.min() >= 0 and out.max() <= 1)
(torch.float32, 'cpu', True)
"""

from __future__ import annotations

import functools

import numpy as np

from . import _validate, plan
from ._optional import require
from ._validate import output_dtype
from .batch import (
    MAX_FREQUENCY, MIN_FREQUENCY, N_SINUSOIDS, by_channel, check_options, curve_draw,
    curve_source,
)
from .batch import transform_batch as _transform_batch

torch = require("torch", "torch", "rsgt_fast.torch")

__all__ = ["transform_batch", "transform_on_device", "device_resident", "tensor_dtype",
           "numpy_output", "checked_dtype", "output_for"]

_OUTPUTS = {torch.float16: "float16", torch.float32: "float32", torch.float64: "float64"}


_DEVICE_DTYPES = {torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                  torch.float16, torch.float32, torch.float64}


@functools.cache
def _gpu():
    """The Triton backend module, or ``None`` where Triton cannot be imported."""
    try:
        from . import _gpu as backend
    except ImportError:
        return None
    return backend


def tensor_dtype(dtype):
    """The torch dtype of an output dtype: ``'float32'``, ``np.float16``, ``torch.float64``..."""
    name = output_dtype(numpy_output(dtype)).name
    return next(t for t, n in _OUTPUTS.items() if n == name)


def checked_dtype(dtype):
    """An integration's ``dtype`` option, checked: ``None``, ``torch.bfloat16`` or a float dtype.

    ``None`` (the input's float dtype) and ``torch.bfloat16`` come back as
    they are, any other dtype as numpy's.
    """
    if dtype is None or dtype == torch.bfloat16:
        return dtype
    return output_dtype(numpy_output(dtype))


def output_for(dtype, x):
    """The dtype of :func:`transform_batch`'s result for tensor ``x`` and option ``dtype``.

    ``None`` is ``x``'s float dtype (bfloat16 included), or float32 where
    ``x`` holds integers or bools.
    """
    if dtype is None:
        return x.dtype if x.dtype in _OUTPUTS or x.dtype == torch.bfloat16 else torch.float32
    return dtype if dtype == torch.bfloat16 else tensor_dtype(dtype)


def device_resident(value):
    """Whether the integrations transform ``value`` where it lies rather than through numpy.

    True for tensors on a CUDA device: MONAI, TorchIO and batchgeneratorsv2
    transforms hand those to :func:`transform_batch`, which keeps them there.
    """
    return isinstance(value, torch.Tensor) and value.device.type == "cuda"


def numpy_output(dtype):
    """An output dtype given the torch way (``torch.float16``) or the numpy way, as numpy's.

    Non-float torch dtypes raise ``ValueError``; anything else is left to
    the usual check.
    """
    if isinstance(dtype, torch.dtype):
        if dtype not in _OUTPUTS:
            raise ValueError(f"dtype must be torch.float16, float32 or float64, got {dtype}")
        return _OUTPUTS[dtype]
    return dtype  # a numpy-style name or dtype


def transform_batch(x, *, n_sinusoids=N_SINUSOIDS, min_frequency=MIN_FREQUENCY,
                    max_frequency=MAX_FREQUENCY, min_max_val=None, dtype=torch.float32,
                    rng=None, keys=None, curves=None, out=None, nan_policy="raise", mask=None,
                    fill=0.0, channel_axis=None, return_curves=False):
    """Random smooth gray value transformation of a tensor batch, one curve per element.

    Parameters
    ----------
    x : torch.Tensor
        Batch on axis 0, any device; integer, bool, float16, bfloat16,
        float32 or float64 (bfloat16 is transformed as the float32 it
        converts to exactly).  Never modified; gradients do not flow through
        the transform.
    n_sinusoids, min_frequency, max_frequency, min_max_val, rng, keys, curves, return_curves
        As for :func:`rsgt_fast.transform_batch`.
    dtype : torch.dtype, str or None
        ``torch.float32`` (default), ``torch.float16``, ``torch.float64`` or
        ``torch.bfloat16`` (the float32 result rounded to it).  ``None``: the
        input's float dtype, float32 for integer and bool input.
    out : torch.Tensor, optional
        Tensor of ``x``'s shape, dtype ``dtype`` and device to write into.
    nan_policy, fill, channel_axis
        As for :func:`rsgt_fast.transform_batch`.
    mask : torch.Tensor or array_like of bool, optional
        As for :func:`rsgt_fast.transform_batch`, on any device (a CUDA
        tensor's mask goes to its device).

    Returns
    -------
    out : torch.Tensor
        On ``x.device``, values in [0, 1].
    curves : Curves
        Only with ``return_curves=True``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__} "
                        "(use rsgt_fast.transform_batch for numpy arrays)")
    if x.device.type == "meta":
        raise ValueError("x is on the meta device and holds no values")
    if x.is_complex():
        raise TypeError(f"x must hold integers or float16/32/64 values, got {x.dtype}")
    dtype = output_for(dtype, x)
    if x.dtype == torch.bfloat16 or dtype == torch.bfloat16:
        return _through_float32(x, dtype, out, dict(
            n_sinusoids=n_sinusoids, min_frequency=min_frequency, max_frequency=max_frequency,
            min_max_val=min_max_val, rng=rng, keys=keys, curves=curves, nan_policy=nan_policy,
            mask=mask, fill=fill, channel_axis=channel_axis, return_curves=return_curves))
    out_name = output_dtype(numpy_output(dtype))
    if out is not None:
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"out must be a torch.Tensor, got {type(out).__name__}")
        if out.device != x.device:
            raise ValueError(f"out is on {out.device} but x is on {x.device}")
        if out.shape != x.shape:
            raise ValueError(f"out must have shape {tuple(x.shape)}, got {tuple(out.shape)}")
        if _OUTPUTS.get(out.dtype) != out_name.name:
            raise ValueError(f"out has dtype {out.dtype} but dtype={dtype} was requested")
    if x.device.type == "cuda" and _gpu() is not None and x.dtype in _DEVICE_DTYPES:
        return transform_on_device(
            x, out_name, n_sinusoids=n_sinusoids, min_frequency=min_frequency,
            max_frequency=max_frequency, min_max_val=min_max_val, rng=rng, keys=keys,
            curves=curves, out=out, return_curves=return_curves, nan_policy=nan_policy,
            mask=mask, fill=fill, channel_axis=channel_axis)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().to("cpu").numpy()
    options = dict(n_sinusoids=n_sinusoids, min_frequency=min_frequency,
                   max_frequency=max_frequency, min_max_val=min_max_val, dtype=out_name,
                   rng=rng, keys=keys, curves=curves, nan_policy=nan_policy, mask=mask,
                   fill=fill, channel_axis=channel_axis, return_curves=True)
    on_host = x.device.type == "cpu"
    source = x.detach().resolve_conj().resolve_neg()
    if not on_host:
        source = source.to("cpu")
    direct = on_host and out is not None
    result, applied = _transform_batch(source.numpy(),
                                       out=out.detach().numpy() if direct else None, **options)
    if direct:
        tensor = out
    else:
        tensor = torch.from_numpy(result)
        if not on_host:
            tensor = tensor.to(x.device)
        if out is not None:
            out.copy_(tensor)
            tensor = out
    return (tensor, applied) if return_curves else tensor


def _through_float32(x, dtype, out, options):
    """:func:`transform_batch` of bfloat16 input or to a bfloat16 output, by way of float32.

    bfloat16 converts to float32 exactly; a bfloat16 result is the float32
    one rounded by torch.
    """
    if out is not None and dtype == torch.bfloat16:
        if not isinstance(out, torch.Tensor) or out.dtype != torch.bfloat16:
            raise ValueError(f"out must be a bfloat16 tensor for dtype={dtype}, got "
                             f"{getattr(out, 'dtype', type(out).__name__)}")
        if out.shape != x.shape or out.device != x.device:
            raise ValueError(f"out must have shape {tuple(x.shape)} on {x.device}, got "
                             f"{tuple(out.shape)} on {out.device}")
    source = x.detach().float() if x.dtype == torch.bfloat16 else x
    if dtype != torch.bfloat16:
        return transform_batch(source, dtype=dtype, out=out, **options)
    result = transform_batch(source, dtype=torch.float32, **options)
    values, curves = result if options["return_curves"] else (result, None)
    rounded = values.to(torch.bfloat16) if out is None else out.copy_(values)
    return (rounded, curves) if options["return_curves"] else rounded


def _device_selection(x, axis, nan_policy, mask, fill, out_dtype):
    """The :class:`plan.Selection` of tensor ``x`` (rows folded by ``axis``).

    Its mask is on ``x``'s device, as uint8 rows; ``None``: every value counts.
    """
    omit = _validate.nan_policy(nan_policy) == "omit"
    fill = _validate.fill_value(fill, out_dtype)
    if mask is None:  # integers have no NaN: the plain route (device tables where it has them)
        return plan.Selection(None, True, fill) if omit and x.is_floating_point() else None
    if not isinstance(mask, torch.Tensor):
        mask = torch.from_numpy(np.array(mask, copy=True))
    dtype = np.dtype(bool) if mask.dtype == torch.bool else mask.dtype
    each = _validate.mask_layout(dtype, tuple(mask.shape), tuple(x.shape))
    mask = mask.detach().to(x.device)
    if axis is not None:
        mask = by_channel(mask.expand(x.shape), axis)
        each = True
    rows = mask.reshape(mask.shape[0] if each else 1, -1).contiguous().view(torch.uint8)
    return plan.Selection(rows, omit, fill)


def transform_on_device(x, out_name, *, n_sinusoids, min_frequency, max_frequency, min_max_val,
                        rng, keys, curves, out, return_curves, nan_policy="raise", mask=None,
                        fill=0.0, channel_axis=None):
    """:func:`transform_batch` on the GPU backend (``_gpu``), for a tensor of one of its dtypes.

    The tensor stays where it is; the planner routes it as the numpy engine's
    (:func:`rsgt_fast.plan.transform`).  A contiguous ``out`` is written
    directly, any other through a temporary.  Run on CPU tensors only in
    Triton's interpreter, as the tests do.
    """
    backend = _gpu()
    opts, return_curves = check_options(n_sinusoids, min_frequency, max_frequency, min_max_val,
                                        out_name, rng, keys, curves, return_curves)
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension, got a 0-d tensor")
    if x.numel() == 0:
        raise ValueError(f"x must not be empty, got shape {tuple(x.shape)}")
    axis = _validate.channel_axis(channel_axis, x.ndim)
    channels = 1 if axis is None else x.shape[axis]
    select = _device_selection(x, axis, nan_policy, mask, fill, opts.dtype)
    work = x if axis is None else by_channel(x, axis)
    n_rows = work.shape[0]
    source, keys = curve_source(n_rows, rng, keys, curves, channels)
    x2, kind = backend.rows(work)
    # Written straight into a contiguous out (in place too: the planner keeps what it
    # must read), unless the rows are moved channels.
    direct = out is not None and out.is_contiguous() and axis in (None, 1)
    result = out if direct else torch.empty(work.shape, dtype=tensor_dtype(opts.dtype),
                                            device=x.device)
    bounds, draw = curve_draw(curves, opts, source, keys, n_rows)
    with backend.on_device(x.device):
        done = plan.transform(x2, kind, backend.DTYPES[x.dtype], draw, bounds,
                              result.view(x2.shape), opts.dtype, backend=backend, select=select,
                              channels=channels)
    if not direct:
        if axis is not None:
            moved = x.movedim(axis, 1).shape
            result = result.reshape(moved).movedim(1, axis)
        if out is not None:
            out.copy_(result)
            result = out
        else:
            result = result.reshape(x.shape).contiguous()
    return (result, plan.applied(done)) if return_curves else result
