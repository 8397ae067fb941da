"""The engine on a GPU tensor: tables, then one Triton kernel for every voxel.

Only the voxels stay on the device.  The curves are drawn on the host as
:func:`rsgt_fast.transform_batch` draws them.  One fused Triton kernel then
reads each voxel, finds its table entry (clamping and interpolating in
registers, with 32-bit positions, no index tensor) and writes the output.

The tables of 8/16-bit integer input are built on the device when its
ranges are its own (a per-element ``aminmax`` there) or integral ranges
inside the dtype's (given or replayed): an entry per value the dtype holds,
from the uploaded curve parameters, so nothing comes back to the host.  The
device's sines agree with the host's to float rounding (within 1e-6), and
replaying such a call on the device gives the same bits.  Every other input
gets its tables from the host, built by the same compiled code as the CPU
engine and uploaded once per plan (table lookups then equal the CPU engine's
bit for bit); its own ranges come from the same ``aminmax``, the one
download, which also shows NaN and Inf.  With given ranges or replayed
curves, float input still sends that ``aminmax`` back, for the NaN/Inf check.

Used by :mod:`rsgt_fast.torch` for CUDA tensors where Triton is installed.
With ``TRITON_INTERPRET=1`` set before this module is imported, the same
kernel runs on CPU tensors in Triton's interpreter, which is how it is tested
without a GPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import triton
import triton.language as tl

from ._jit import engine
from ._layout import (
    AMPLITUDE, BASE, CLIP_HI, CLIP_LO, FREQUENCY, HI, LAST, LO, N_PLACE, PHASE, SCALE, UNIT,
    UNIT_LO,
)
from .batch import check_options, curve_source, draw_parameters
from .curves import engine_curves
from .plan import build_tables, int_limits, integral_range, make_plans
from .torch import tensor_dtype

__all__ = ["transform", "DTYPES"]

#: Tensor dtypes this path takes, and the numpy dtype of the rows the planner sees
#: (bool as uint8, float16 as its uint16 bit patterns).
DTYPES = {
    torch.bool: np.dtype(np.uint8), torch.uint8: np.dtype(np.uint8),
    torch.int8: np.dtype(np.int8), torch.int16: np.dtype(np.int16),
    torch.int32: np.dtype(np.int32), torch.int64: np.dtype(np.int64),
    torch.float16: np.dtype(np.uint16), torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
}

#: Voxels per Triton program.
BLOCK = 1024

#: Compile options of every launch.  No fused multiply-adds: each product and
#: sum is rounded as the CPU engine rounds it (Triton 3.9 otherwise fuses them
#: and warns that its default is about to change).
LAUNCH_OPTIONS = {"enable_fp_fusion": False}

# The packed columns of ``place`` and ``clip`` (see ``_layout``) as the kernel sees
# them: a compiled Triton kernel reads module globals only when they are constexpr.
_N_PLACE, _LO, _HI, _UNIT_LO, _SCALE, _UNIT, _LAST, _BASE, _CLIP_LO, _CLIP_HI = (
    tl.constexpr(v) for v in (N_PLACE, LO, HI, UNIT_LO, SCALE, UNIT, LAST, BASE, CLIP_LO,
                              CLIP_HI))

# Table kinds, as the kernel's MODE.
_MODES = {"lookup": 0, "index": 1, "interp": 2}
_INTERP_INTEGERS = 3


@triton.jit
def _map_voxels(x_ptr, out_ptr, table_ptr, place_ptr, clip_ptr, n, width, offset,
                MODE: tl.constexpr, HALF_IN: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    """Map ``BLOCK_SIZE`` voxels of row ``program_id(1)`` through that row's table.

    ``x`` and ``out`` are ``(B, n)``; ``table`` holds ``width`` entries per
    row (for interpolation: (value, step) pairs, so ``2 * grid`` numbers);
    ``place`` and ``clip`` are the planner's, see ``_layout``.  MODE 0: an
    entry per 8/16-bit value (``offset`` added, or the float16 bit pattern);
    1: an entry per integer of the range, after clamping; 2: interpolation
    in ``place``'s float type; 3: interpolation of integers measured in
    integer arithmetic.  The arithmetic follows ``_kernels`` step by step.
    """
    b = tl.program_id(1).to(tl.int64)
    offs = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    x = tl.load(x_ptr + b * n + offs, mask=mask, other=0)
    row = table_ptr + b * width
    if MODE == 0:
        if HALF_IN:
            idx = x.to(tl.int32) & 0xFFFF
        else:
            idx = x.to(tl.int32) + offset
        value = tl.load(row + idx, mask=mask, other=0)
    elif MODE == 1:
        lo = tl.load(clip_ptr + 2 * b + _CLIP_LO)
        hi = tl.load(clip_ptr + 2 * b + _CLIP_HI)
        base = tl.load(place_ptr + _N_PLACE * b + _BASE).to(tl.int64)
        idx = base + (tl.minimum(tl.maximum(x, lo), hi).to(tl.int64) - lo.to(tl.int64))
        value = tl.load(row + idx, mask=mask, other=0)
    else:
        scale = tl.load(place_ptr + _N_PLACE * b + _SCALE)
        unit = tl.load(place_ptr + _N_PLACE * b + _UNIT)
        last = tl.load(place_ptr + _N_PLACE * b + _LAST)
        if MODE == 2:
            lo = tl.load(place_ptr + _N_PLACE * b + _LO)
            hi = tl.load(place_ptr + _N_PLACE * b + _HI)
            unit_lo = tl.load(place_ptr + _N_PLACE * b + _UNIT_LO)
            v = tl.minimum(tl.maximum(x.to(lo.dtype), lo), hi)
            pos = tl.minimum((unit * v - unit_lo) * scale, last)
        else:
            low = tl.load(clip_ptr + 2 * b + _CLIP_LO)
            high = tl.load(clip_ptr + 2 * b + _CLIP_HI)
            base = tl.load(place_ptr + _N_PLACE * b + _BASE)
            # Modulo 2**64 the difference is exact for every integer dtype.
            d = (tl.minimum(tl.maximum(x, low), high).to(tl.int64)
                 - low.to(tl.int64)).to(tl.uint64, bitcast=True)
            pos = tl.minimum(tl.maximum(base + (unit * d.to(tl.float64)) * scale, 0.0), last)
        j = pos.to(tl.int32)
        frac = pos - j.to(pos.dtype)
        start = tl.load(row + 2 * j, mask=mask, other=0)
        step = tl.load(row + 2 * j + 1, mask=mask, other=0)
        value = start + frac * step
    tl.store(out_ptr + b * n + offs, value.to(out_ptr.dtype.element_ty), mask=mask)


def _rows(x):
    """``x`` as a contiguous ``(B, N)`` tensor the kernel reads, and the planner's kind."""
    x2 = x.detach().reshape(x.shape[0], -1).contiguous()
    if x2.dtype == torch.bool:
        return x2.view(torch.uint8), "int"
    if x2.dtype == torch.float16:
        return x2.view(torch.int16), "half"
    return x2, ("float" if x2.dtype.is_floating_point else "int")


def _finite_or_raise(x2, kind):
    """Raise ``ValueError`` if a float element holds NaN or Inf (one small download)."""
    if kind != "int":
        _device_ranges(x2, kind)


def _device_ranges(x2, kind):
    """Per-element ``(lo, hi)`` from one ``aminmax`` on the device, as Python numbers.

    One download brings both ends back; ``aminmax`` propagates NaN and an
    infinity is an end, so the same numbers say whether a float element is
    finite (no second pass over the tensor).
    """
    values = x2.view(torch.float16) if kind == "half" else x2
    lo, hi = torch.aminmax(values, dim=1)
    pairs = torch.stack([lo, hi], dim=1).cpu().tolist()
    if kind == "int":
        return [(int(a), int(b)) for a, b in pairs]
    for where, (a, b) in enumerate(pairs):
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"x must be finite, but element {where} holds NaN or Inf")
    return [(float(a), float(b)) for a, b in pairs]


#: Table entries (rows times width) built and used together on the device: each
#: group of rows gets its tables, then its voxels are mapped, so the tables and
#: the float64 temporaries never hold more than this many entries.
DEVICE_TABLE_CHUNK = 1 << 21
TWO_PI = 2.0 * math.pi


def _half(q):
    """float64 values in [0, 1] rounded once to float16, as numpy (and the host) rounds.

    PyTorch converts float64 to float16 through float32, which can round
    twice.  Rounding to float32 *to odd* (toward zero, the last bit set when
    anything was dropped) first makes the second rounding the correct one.
    """
    q32 = q.to(torch.float32)
    back = q32.to(torch.float64)
    inexact = back != q
    bits = q32.view(torch.int32) - (inexact & (back > q)).to(torch.int32)  # toward zero
    return (bits | inexact.to(torch.int32)).view(torch.float32).to(torch.float16)


def _device_transform(x2, dtype, curve, torch_out, bounds, out2):
    """Map 8/16-bit rows ``x2`` into ``out2`` through full tables built on the device.

    Entry ``v`` of row ``b``'s table is curve ``b`` at ``t = 2*pi * (clamp(v) -
    lo) / (hi - lo)``, normalised by the extrema of the curve over the integers
    of ``[lo, hi]``, a flat curve giving 0.5: the host's definition, with the
    device's sines, so values agree with the host's to float rounding.  The
    ranges are the rows' own (from ``aminmax`` on the device) or ``bounds``
    (integral and inside the dtype, uploaded with the parameters).  Rows go
    in groups (tables built, then voxels mapped), so each row's result depends
    on that row alone.  Returns ``lo, hi, extrema`` on the device; nothing is
    downloaded.
    """
    device = x2.device
    low, high = int_limits(dtype)
    values = torch.arange(low, high + 1, device=device, dtype=torch.int64)
    if bounds is None:
        lo, hi = (end.to(torch.int64) for end in torch.aminmax(x2, dim=1))
    else:
        lo, hi = torch.tensor(bounds, dtype=torch.int64, device=device).unbind(dim=1)
    params = torch.from_numpy(curve).to(device)  # the parameter upload
    n_rows = x2.shape[0]
    extrema = torch.empty((n_rows, 2), dtype=torch.float64, device=device)
    group = max(1, DEVICE_TABLE_CHUNK // values.numel())
    for first in range(0, n_rows, group):
        rows = slice(first, first + group)
        lo_g, hi_g = lo[rows, None], hi[rows, None]
        steps = torch.clamp(values, lo_g, hi_g) - lo_g
        span = hi_g - lo_g
        t = steps.to(torch.float64) * (TWO_PI / span.clamp(min=1).to(torch.float64))
        # The last point is 2*pi exactly; a single-valued range is sampled at 0.
        t = torch.where((steps == span) & (span > 0), TWO_PI, t)
        y = torch.zeros_like(t)
        p = params[rows]
        for k in range(p.shape[2]):  # summed in the sinusoids' order, as rsgt sums them
            y = y + p[:, AMPLITUDE, k, None] * torch.sin(
                p[:, FREQUENCY, k, None] * (t + p[:, PHASE, k, None]))
        ymin, ymax = (v[:, None] for v in torch.aminmax(y, dim=1))
        y_span = ymax - ymin
        scaled = torch.where(y_span > 0, torch.clamp((y - ymin) / y_span, 0.0, 1.0), 0.5)
        tables = _half(scaled) if torch_out == torch.float16 else scaled.to(torch_out)
        extrema[rows] = torch.cat([ymin, ymax], dim=1)
        # The full-table mode reads neither place nor clip: the tables stand in for them.
        _map(x2[rows], out2[rows], tables, tables, tables, -low, _MODES["lookup"])
    return lo, hi, extrema


def _device_table_bounds(kind, dtype, bounds):
    """Whether 8/16-bit rows get device-built tables, and their ranges if known on the host.

    Returns ``(True, None)`` for the rows' own ranges (``bounds`` is
    ``None``), ``(True, bounds)`` for given or replayed integral ranges inside
    the dtype's, and ``(False, None)`` otherwise (ranges reaching past the
    dtype or fractional, or other dtypes).  The choice depends on the dtype
    and the ranges only, never on the batch, so an element gets the same bits
    in any batch.
    """
    if kind != "int" or dtype.itemsize > 2:
        return False, None
    if bounds is None:
        return True, None
    # The extrema are taken over the table's entries, so the range must lie inside
    # the dtype (an own range always does).
    low, high = int_limits(dtype)
    if all(integral_range(pair) and low <= pair[0] and pair[1] <= high for pair in bounds):
        return True, [list(pair) for pair in bounds]
    return False, None


def _launch(plan, x2, table, out2):
    """One kernel launch mapping rows ``x2`` into ``out2`` through ``table`` (host arrays)."""
    mode = _MODES[plan.table]
    if plan.table == "interp":
        table = table.view(table.real.dtype)  # (value, step) pairs side by side
        if plan.job.integer:
            mode = _INTERP_INTEGERS
    elif table.dtype == np.uint16:
        table = table.view(np.int16)  # float16 bit patterns
    device = x2.device
    table = torch.from_numpy(table).to(device)
    place = torch.from_numpy(plan.place).to(device)
    clip = torch.from_numpy(plan.clip).to(device)
    _map(x2, out2, table, place, clip, plan.job.offset, mode, plan.job.half_in)


def _map(x2, out2, table, place, clip, offset, mode, half_in=False):
    """Launch :func:`_map_voxels` over rows ``x2`` (device tensors throughout)."""
    n_rows, n = x2.shape
    grid = (triton.cdiv(n, BLOCK), n_rows)
    _map_voxels[grid](x2, out2, table, place, clip, n, table.shape[1], offset,
                      MODE=mode, HALF_IN=half_in, BLOCK_SIZE=BLOCK, **LAUNCH_OPTIONS)


def transform(x, out_name, **options):
    """:func:`rsgt_fast.torch.transform_batch` for a tensor whose dtype is in :data:`DTYPES`.

    Kernels launch on the current CUDA device, so the tensor's device is made
    current for the call (a tensor on a second GPU would fail otherwise).
    """
    if x.device.type == "cuda":
        with torch.cuda.device(x.device):
            return _transform(x, out_name, **options)
    return _transform(x, out_name, **options)


def _transform(x, out_name, *, n_sinusoids, min_frequency, max_frequency, min_max_val, rng,
               keys, curves, out, return_curves):
    opts, return_curves = check_options(n_sinusoids, min_frequency, max_frequency, min_max_val,
                                        out_name, rng, keys, curves, return_curves)
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension, got a 0-d tensor")
    if x.numel() == 0:
        raise ValueError(f"x must not be empty, got shape {tuple(x.shape)}")
    n_rows = x.shape[0]
    source, keys = curve_source(n_rows, rng, keys, curves)

    x2, kind = _rows(x)
    dtype = DTYPES[x.dtype]
    torch_out = tensor_dtype(opts.dtype)
    given = (list(curves.bounds) if curves is not None
             else None if opts.min_max_val is None else [opts.min_max_val] * n_rows)
    on_device, device_bounds = _device_table_bounds(kind, dtype, given)
    if on_device:
        curve = curves.packed() if curves is not None else draw_parameters(source, keys,
                                                                           n_rows, opts)
        result = torch.empty(x2.shape, dtype=torch_out, device=x.device)
        lo, hi, extrema = _device_transform(x2, dtype, curve, torch_out, device_bounds, result)
        result = _finish(result.reshape(x.shape), out)
        if not return_curves:
            return result
        # The record lives on the host: one download, and only when it is asked for
        # (8/16-bit ends are exact in float64).
        record = torch.cat([lo[:, None].double(), hi[:, None].double(), extrema], 1).cpu()
        if given is None:
            given = [(int(a), int(b)) for a, b in record[:, :2].tolist()]
        return result, engine_curves(curve, given, record[:, 2:].numpy())
    if curves is not None:
        _finite_or_raise(x2, kind)
        bounds = given
        curve = curves.packed()
    else:
        if given is None:
            bounds = _device_ranges(x2, kind)
        else:
            _finite_or_raise(x2, kind)
            bounds = given
        curve = draw_parameters(source, keys, n_rows, opts)

    out_dtype = opts.dtype
    result = torch.empty(x2.shape, dtype=torch_out, device=x.device)
    # float16 tables hold bit patterns: gathered as int16, interpolated into float16.
    bits = out_dtype == np.float16
    table_dtype = np.dtype(np.uint16) if bits else out_dtype
    extrema = np.empty((n_rows, 2))
    size = x2.numel()
    for members, plan in make_plans(dtype, size, kind, curve, bounds, out_dtype):
        part_curve = curve if members is None else curve[members]
        with engine(size):
            table = build_tables(plan, dtype, part_curve, table_dtype)
        if members is None:
            rows, target = x2, result
        else:
            index = torch.as_tensor(members, device=x.device)
            rows = x2[index]
            target = torch.empty(rows.shape, dtype=torch_out, device=x.device)
        written = target.view(torch.int16) if bits and plan.table != "interp" else target
        _launch(plan, rows, table, written)
        if members is None:
            extrema[:] = plan.grid.extrema
        else:
            result[index] = target
            extrema[members] = plan.grid.extrema
    result = _finish(result.reshape(x.shape), out)
    if return_curves:
        return result, engine_curves(curve, bounds, extrema)
    return result


def _finish(result, out):
    """``result``, copied into ``out`` when one was given."""
    if out is None:
        return result
    out.copy_(result)
    return out
