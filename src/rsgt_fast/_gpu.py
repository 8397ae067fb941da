"""The GPU backend: one Triton kernel maps every value of a CUDA tensor through its table.

The backend interface of ``_cpu.py`` (``row_extremes``, ``tables``,
``map_voxels``), for ``(B, N)`` tensors on a CUDA device, used by
:func:`rsgt_fast.plan.transform` for :mod:`rsgt_fast.torch`:

* ``row_extremes``: one ``aminmax`` on the device, one small download (which
  also shows NaN and Inf);
* ``tables``: built on the host by the CPU backend (the same compiled code,
  so table lookups equal the CPU engine's bit for bit) and uploaded;
* ``map_voxels``: the fused Triton kernel :func:`_map_voxels` reads each
  value, finds its table entry (clamping and interpolating in registers,
  with 32-bit positions, no index tensor) and writes the output;
* ``device_lookup``: 8/16-bit integers over their own ranges (or integral
  ranges inside their dtype's) get their tables built on the device, an
  entry per value the dtype holds, from the uploaded curve parameters, so
  nothing comes back to the host.  This is the device's copy of the curve
  and of its normalisation (:mod:`._formulas` holds the host's), with the
  device's sines: values agree with the CPU engine's to float rounding
  (within 1e-6), and a replay on the device gives the same bits.

With ``TRITON_INTERPRET=1`` set before this module is imported, the same
kernel runs on CPU tensors in Triton's interpreter, which is how it is tested
without a GPU.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np
import torch
import triton
import triton.language as tl

from . import _cpu
from ._formulas import TWO_PI
from ._layout import (
    AMPLITUDE, BASE, CLIP_HI, CLIP_LO, FREQUENCY, HI, LAST, LO, N_PLACE, PHASE, SCALE, UNIT,
    UNIT_LO,
)

__all__ = ["DTYPES", "rows", "row_extremes", "tables", "map_voxels", "device_lookup",
           "on_device"]

#: The device of the call in progress (where ``tables`` uploads to).
_DEVICE: contextvars.ContextVar = contextvars.ContextVar("rsgt_fast_device")


@contextlib.contextmanager
def on_device(device):
    """Run the calls inside the block on ``device``.

    Uploads go there, and kernels launch on it (a CUDA device is made current,
    or a tensor on a second GPU would fail).
    """
    token = _DEVICE.set(device)
    try:
        if device.type == "cuda":
            with torch.cuda.device(device):
                yield
        else:
            yield
    finally:
        _DEVICE.reset(token)

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


def rows(x):
    """``x`` as a contiguous ``(B, N)`` tensor the kernel reads, and the planner's kind."""
    x2 = x.detach().reshape(x.shape[0], -1).contiguous()
    if x2.dtype == torch.bool:
        return x2.view(torch.uint8), "int"
    if x2.dtype == torch.float16:
        return x2.view(torch.int16), "half"
    return x2, ("float" if x2.dtype.is_floating_point else "int")


def row_extremes(x2, kind):
    """Each row's smallest and largest value, and which rows hold NaN or Inf.

    One ``aminmax`` on the device and one small download: ``aminmax``
    propagates NaN and an infinity is an end, so the same numbers say whether a
    float row is finite.
    """
    values = x2.view(torch.float16) if kind == "half" else x2
    lo, hi = torch.aminmax(values, dim=1)
    both = torch.stack([lo, hi], dim=1).cpu().numpy()
    if kind == "int":
        return both[:, 0], both[:, 1], None
    return both[:, 0], both[:, 1], ~np.isfinite(both).all(axis=1)


#: Table entries (rows times width) built and used together on the device: each
#: group of rows gets its tables, then its voxels are mapped, so the tables and
#: the float64 temporaries never hold more than this many entries.
DEVICE_TABLE_CHUNK = 1 << 21


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


def device_lookup(x2, dtype, curve, bounds, out2, out_dtype):
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
    torch_out = out2.dtype
    info = np.iinfo(dtype)
    low, high = int(info.min), int(info.max)
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


def tables(plan, curve, table_dtype):
    """Each element's table for ``plan``, built on the host and uploaded.

    Built by ``_cpu.tables``; returns device tensors ``(table, place, clip)``.
    """
    table = _cpu.tables(plan, curve, table_dtype)
    if plan.table == "interp":
        table = table.view(table.real.dtype)  # (value, step) pairs side by side
    elif table.dtype == np.uint16:
        table = table.view(np.int16)  # float16 bit patterns
    device = _DEVICE.get()
    return tuple(torch.from_numpy(a).to(device) for a in (table, plan.place, plan.clip))


def map_voxels(plan, x2, table, out2):
    """Every value of rows ``x2`` through its row's table into ``out2``: one launch.

    ``table`` is what :func:`tables` returned; ``out2`` is the output tensor,
    written as int16 bit patterns where a float16 table is looked up.
    """
    table, place, clip = table
    mode = _MODES[plan.table]
    if plan.table == "interp":
        mode = _INTERP_INTEGERS if plan.integer else mode
    elif out2.dtype == torch.float16:
        out2 = out2.view(torch.int16)
    _map(x2, out2, table, place, clip, plan.offset, mode, plan.half_in)


def _map(x2, out2, table, place, clip, offset, mode, half_in=False):
    """Launch :func:`_map_voxels` over rows ``x2`` (device tensors throughout)."""
    n_rows, n = x2.shape
    grid = (triton.cdiv(n, BLOCK), n_rows)
    _map_voxels[grid](x2, out2, table, place, clip, n, table.shape[1], offset,
                      MODE=mode, HALF_IN=half_in, BLOCK_SIZE=BLOCK, **LAUNCH_OPTIONS)
