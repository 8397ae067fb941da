"""The GPU backend: one Triton kernel maps every value of a CUDA tensor through its table.

The backend interface of ``_cpu.py`` (``row_extremes``, ``tables``,
``map_voxels`` and, for selections, ``selected_extremes``, ``restore_args``,
``restore_outside``: masked reductions and masked fills on the device), for
``(B, N)`` tensors on a CUDA device, used by
:func:`rsgt_fast.plan.transform` for :mod:`rsgt_fast.torch`:

* ``row_extremes``: one ``aminmax`` on the device, one small download (which
  also shows NaN and Inf);
* ``tables``: built on the host by the CPU backend (the same compiled code)
  and uploaded in one non-blocking copy from page-locked memory; with no
  fused multiply-adds on the device every result equals the CPU engine's
  bit for bit;
* ``map_voxels``: the fused Triton kernel :func:`_map_voxels` reads each
  value, finds its table entry (clamping and interpolating in registers,
  with 32-bit positions, no index tensor) and writes the output;
* ``device_lookup``: 8/16-bit integers over their own ranges (or integral
  ranges inside their dtype's) get their tables built on the device from
  the uploaded curve parameters, an entry per integer of each row's range,
  so nothing comes back to the host: two Triton launches per group of rows
  (:func:`_partial_extrema`, :func:`_fill_tables`) and the mapping.  This
  is the device's copy of the curve and of its normalisation
  (:mod:`._formulas` holds the host's), with the device's sines: values
  agree with the CPU engine's to float rounding (within 1e-6), and a replay
  on the device gives the same bits.

Every launch is one-dimensional (:func:`launch_grid`): CUDA allows 2**31 - 1
programs on grid axis 0 but only 65535 on axes 1 and 2.  Triton 3.1 or newer
is required (:data:`MIN_TRITON`); with an older one this module does not
import, and CUDA tensors go through the host.

With ``TRITON_INTERPRET=1`` set before this module is imported, the same
kernels run on CPU tensors in Triton's interpreter, which is how they are
tested without a GPU.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import re

import numpy as np
import torch
import triton

#: The oldest Triton this backend runs on: ``enable_fp_fusion`` (see
#: :data:`LAUNCH_OPTIONS`) is a launch option from 3.1 on; PyTorch 2.5 ships it.
MIN_TRITON = (3, 1)


def _check_triton(version):
    """Raise ``ImportError`` (and log one line) if Triton ``version`` is older than 3.1.

    A version string that does not start with two numbers is let through.
    """
    found = re.match(r"(\d+)\.(\d+)", str(version))
    if found and tuple(map(int, found.groups())) < MIN_TRITON:
        message = (f"rsgt_fast: Triton {version} is older than "
                   f"{'.'.join(map(str, MIN_TRITON))}; CUDA tensors are transformed on the "
                   "host (pip install 'triton>=3.1' for the GPU path)")
        logging.getLogger("rsgt_fast").warning(message)
        raise ImportError(message)


_check_triton(triton.__version__)

import triton.language as tl  # noqa: E402

from . import _cpu  # noqa: E402
from ._formulas import TWO_PI  # noqa: E402
from ._layout import (  # noqa: E402
    AMPLITUDE, BASE, CLIP_HI, CLIP_LO, FREQUENCY, HI, LAST, LO, N_PLACE, PHASE, SCALE, UNIT,
    UNIT_LO, YMAX, YMIN,
)

__all__ = ["DTYPES", "MIN_TRITON", "rows", "row_extremes", "selected_extremes", "restore_args",
           "restore_outside", "overlaps", "tables", "map_voxels", "device_lookup", "on_device",
           "launch_grid"]

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

#: The most programs a launch may have: CUDA's limit on grid axis 0 (axes 1
#: and 2 stop at 65535, which a batch of more rows would pass).
MAX_PROGRAMS = 2**31 - 1

#: Compile options of every launch.  No fused multiply-adds: each product and
#: sum is rounded as the CPU engine rounds it (Triton 3.9 otherwise fuses them
#: and warns that its default is about to change).
LAUNCH_OPTIONS = {"enable_fp_fusion": False}

# The packed columns of ``place``, ``clip``, ``curve`` and ``extrema`` (see ``_layout``)
# as the kernels see them: a compiled Triton kernel reads module globals only when they
# are constexpr.
(_N_PLACE, _LO, _HI, _UNIT_LO, _SCALE, _UNIT, _LAST, _BASE, _CLIP_LO, _CLIP_HI, _FREQUENCY,
 _AMPLITUDE, _PHASE, _YMIN, _YMAX, _TWO_PI) = (
    tl.constexpr(v) for v in (N_PLACE, LO, HI, UNIT_LO, SCALE, UNIT, LAST, BASE, CLIP_LO,
                              CLIP_HI, FREQUENCY, AMPLITUDE, PHASE, YMIN, YMAX, TWO_PI))

# Table kinds, as the kernel's MODE; "range" is the device-built one.
_MODES = {"lookup": 0, "index": 1, "interp": 2, "range": 4}
_INTERP_INTEGERS = 3


def launch_grid(n_rows, n, block=BLOCK):
    """The grid of a launch over ``n_rows`` rows of ``n`` values, and the blocks per row.

    One program per ``block`` values of a row, row after row, all on grid
    axis 0 (``program_id = row * blocks + block``), so any number of rows
    fits; ``ValueError`` past :data:`MAX_PROGRAMS` programs.
    """
    blocks = triton.cdiv(n, block)
    programs = n_rows * blocks
    if programs > MAX_PROGRAMS:
        raise ValueError(f"{n_rows} rows of {n} values need {programs} programs of {block} "
                         f"values, more than a CUDA launch takes ({MAX_PROGRAMS})")
    return (programs,), blocks


@triton.jit
def _to_odd_float32(q):
    """float64 ``q`` rounded to float32 *to odd*, so that a float16 cast of it rounds once.

    Toward zero, the last bit set when anything was dropped: converting the
    result to float16 gives ``q`` correctly rounded, as numpy rounds it
    (float64 to float32 to float16 would round twice).
    """
    q32 = q.to(tl.float32)
    back = q32.to(tl.float64)
    inexact = back != q
    bits = q32.to(tl.int32, bitcast=True) - (inexact & (tl.abs(back) > tl.abs(q))).to(tl.int32)
    return (bits | inexact.to(tl.int32)).to(tl.float32, bitcast=True)


@triton.jit
def _map_voxels(x_ptr, out_ptr, table_ptr, place_ptr, clip_ptr, n, blocks, width, offset,
                MODE: tl.constexpr, HALF_IN: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    """Map ``BLOCK_SIZE`` voxels of one row through that row's table.

    ``x`` and ``out`` are ``(B, n)``, ``blocks`` programs per row (see
    :func:`launch_grid`); ``table`` holds ``width`` entries per row (for
    interpolation: (value, step) pairs, so ``2 * grid`` numbers); ``place``
    and ``clip`` are the planner's, see ``_layout``.  MODE 0: an entry per
    8/16-bit value (``offset`` added, or the float16 bit pattern); 1: an
    entry per integer of the range, after clamping; 2: interpolation in
    ``place``'s float type; 3: interpolation of integers measured in integer
    arithmetic; 4: an entry per integer of ``clip``'s range from 0 (built on
    the device, ``place`` unused).  The arithmetic follows ``_kernels`` step
    by step.
    """
    pid = tl.program_id(0)
    b = (pid // blocks).to(tl.int64)
    offs = (pid % blocks).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    x = tl.load(x_ptr + b * n + offs, mask=mask, other=0)
    row = table_ptr + b * width
    if MODE == 0:
        if HALF_IN:
            idx = x.to(tl.int32) & 0xFFFF
        else:
            idx = x.to(tl.int32) + offset
        value = tl.load(row + idx, mask=mask, other=0)
    elif MODE == 4:
        lo = tl.load(clip_ptr + 2 * b + _CLIP_LO)
        hi = tl.load(clip_ptr + 2 * b + _CLIP_HI)
        idx = tl.minimum(tl.maximum(x, lo), hi).to(tl.int32) - lo.to(tl.int32)
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
            v = x.to(lo.dtype)
            # NaN (left out by nan_policy='omit', restored after) reads the low end, as the
            # host's clamp sends it, on any hardware's max
            v = tl.minimum(tl.maximum(tl.where(v == v, v, lo), lo), hi)
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
        if out_ptr.dtype.element_ty == tl.float16:
            if value.dtype == tl.float64:
                value = _to_odd_float32(value)  # one rounding to float16, as the host's
    tl.store(out_ptr + b * n + offs, value.to(out_ptr.dtype.element_ty), mask=mask)


# ------------------------------------------------------------ tables built on the device

#: Table entries per program of the device's table builders (at most): a CT range
#: (4096 values) spreads over four programs a row.  In Triton's interpreter, where
#: each program costs milliseconds, a whole table is one program; the results do not
#: depend on the block.
TABLE_BLOCK = 1024
INTERPRETED_TABLE_BLOCK = 1 << 16


@triton.jit
def _curve_at(j, span, params, K: tl.constexpr):
    """Raw curve ``params`` (its ``(3, K)`` block of ``curve``) at grid point ``j`` of ``span + 1``.

    The device's copy of ``_formulas.grid_point`` and ``curve_value``: ``t =
    j * (2*pi / span)``, the last point ``2*pi`` exactly (a single-valued
    range is sampled at 0), then ``y = 0; y += a_k * sin(f_k * (t + o_k))``
    in the sinusoids' order.
    """
    t = j.to(tl.float64) * (_TWO_PI / tl.maximum(span, 1).to(tl.float64))
    t = tl.where((j == span) & (span > 0), _TWO_PI, t)
    y = tl.full(t.shape, 0.0, tl.float64)
    for k in tl.static_range(K):
        amplitude = tl.load(params + _AMPLITUDE * K + k)
        frequency = tl.load(params + _FREQUENCY * K + k)
        phase = tl.load(params + _PHASE * K + k)
        y = y + amplitude * tl.sin(frequency * (t + phase))
    return y


@triton.jit
def _partial_extrema(lo_ptr, hi_ptr, ends_stride, curve_ptr, partial_ptr, K: tl.constexpr,
                     CHUNKS: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    """Smallest and largest raw value of each curve over one block of its range's integers.

    Program ``b * CHUNKS + c`` samples curve ``b`` at grid points ``c *
    BLOCK_SIZE`` on, up to the row's span ``hi - lo`` (read at ``b *
    ends_stride``), and writes the pair to ``partial[b * CHUNKS + c]``;
    blocks past the span write ``(inf, -inf)`` without computing a sine.
    """
    pid = tl.program_id(0)
    b = (pid // CHUNKS).to(tl.int64)
    start = (pid % CHUNKS) * BLOCK_SIZE
    span = (tl.load(hi_ptr + b * ends_stride).to(tl.int32)
            - tl.load(lo_ptr + b * ends_stride).to(tl.int32))
    smallest = tl.full([BLOCK_SIZE], float("inf"), tl.float64)
    largest = tl.full([BLOCK_SIZE], float("-inf"), tl.float64)
    if start <= span:
        j = start + tl.arange(0, BLOCK_SIZE)
        y = _curve_at(j, span, curve_ptr + 3 * K * b, K)
        inside = j <= span
        smallest = tl.where(inside, y, smallest)
        largest = tl.where(inside, y, largest)
    tl.store(partial_ptr + 2 * pid.to(tl.int64) + _YMIN, tl.min(smallest, axis=0))
    tl.store(partial_ptr + 2 * pid.to(tl.int64) + _YMAX, tl.max(largest, axis=0))


@triton.jit
def _fill_tables(lo_ptr, hi_ptr, ends_stride, curve_ptr, partial_ptr, table_ptr, clip_ptr,
                 extrema_ptr, width, K: tl.constexpr, CHUNKS: tl.constexpr,
                 BLOCK_SIZE: tl.constexpr):
    """Entries ``c * BLOCK_SIZE`` on of row ``b``'s table: the curve normalised onto [0, 1].

    Same programs as :func:`_partial_extrema`, whose pairs give each row's
    extrema (``_formulas.normalized``: a flat curve gives 0.5); entry ``j``
    is the curve at grid point ``j`` of the span, stored in the table's
    dtype (float16 rounded once).  The first program of a row also writes
    its extrema and its ``(lo, hi)`` to ``clip`` for the mapping.
    """
    pid = tl.program_id(0)
    b = (pid // CHUNKS).to(tl.int64)
    chunk = pid % CHUNKS
    start = chunk * BLOCK_SIZE
    lo = tl.load(lo_ptr + b * ends_stride)
    hi = tl.load(hi_ptr + b * ends_stride)
    span = hi.to(tl.int32) - lo.to(tl.int32)
    pairs = partial_ptr + 2 * CHUNKS * b + 2 * tl.arange(0, CHUNKS)
    low = tl.min(tl.load(pairs + _YMIN), axis=0)
    high = tl.max(tl.load(pairs + _YMAX), axis=0)
    if chunk == 0:
        tl.store(extrema_ptr + 2 * b + _YMIN, low)
        tl.store(extrema_ptr + 2 * b + _YMAX, high)
        tl.store(clip_ptr + 2 * b + _CLIP_LO, lo)
        tl.store(clip_ptr + 2 * b + _CLIP_HI, hi)
    if start <= span:
        j = start + tl.arange(0, BLOCK_SIZE)
        y = _curve_at(j, span, curve_ptr + 3 * K * b, K)
        y_span = high - low
        scaled = (y - low) / tl.where(y_span > 0, y_span, 1.0)
        q = tl.where(y_span > 0, tl.minimum(tl.maximum(scaled, 0.0), 1.0), 0.5)
        if table_ptr.dtype.element_ty == tl.float16:
            q = _to_odd_float32(q)
        tl.store(table_ptr + b * width + j, q.to(table_ptr.dtype.element_ty), mask=j <= span)


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
    lo, hi = torch.aminmax(_values(x2, kind), dim=1)
    both = torch.stack([lo, hi], dim=1).cpu().numpy()
    if kind == "int":
        return both[:, 0], both[:, 1], None
    return both[:, 0], both[:, 1], ~np.isfinite(both).all(axis=1)


#: Table entries (rows times width) built and used together on the device: each
#: group of rows gets its tables, then its voxels are mapped, so the tables
#: never hold more than this many entries (64 int16 rows, 16384 8-bit rows).
DEVICE_TABLE_CHUNK = 1 << 22

#: Byte alignment of each array in an upload (so kernels see aligned pointers, as
#: from the device's allocator).
_ALIGN = 128


def _staging(nbytes, device):
    """Host memory for an upload of ``nbytes`` to ``device``.

    Page-locked for any device but the host itself: a copy from pageable
    memory makes the host wait for the work queued on the device, one from
    page-locked memory is queued like a kernel.
    """
    return torch.empty(nbytes, dtype=torch.uint8, pin_memory=device.type != "cpu")


def _upload(arrays, device):
    """Numpy ``arrays`` as tensors on ``device``: one non-blocking copy of them all.

    They are packed into one :func:`_staging` buffer, each at a multiple of
    ``_ALIGN`` bytes, copied with ``non_blocking=True`` and viewed back in
    their dtypes and shapes.
    """
    arrays = [np.require(a, requirements=["C", "W"]) for a in arrays]
    starts = [0]
    for a in arrays:
        starts.append(starts[-1] + -(-a.nbytes // _ALIGN) * _ALIGN)
    staging = _staging(starts[-1], device)
    for a, start in zip(arrays, starts):
        staging[start:start + a.nbytes].copy_(torch.from_numpy(a.reshape(-1).view(np.uint8)))
    moved = staging.to(device, non_blocking=True)
    return tuple(moved[start:start + a.nbytes].view(_torch_dtype(a.dtype)).view(a.shape)
                 for a, start in zip(arrays, starts))


@functools.cache
def _torch_dtype(dtype):
    """The torch dtype of numpy ``dtype``."""
    return torch.from_numpy(np.empty(0, dtype)).dtype


def device_lookup(x2, dtype, curve, bounds, out2, out_dtype):
    """Map 8/16-bit rows ``x2`` into ``out2`` through tables built on the device.

    Entry ``j`` of row ``b``'s table is curve ``b`` at ``t = 2*pi * j / (hi -
    lo)`` for the integers ``j`` of ``[0, hi - lo]``, normalised by the curve's
    extrema over them, a flat curve giving 0.5: the host's definition, with
    the device's sines, so values agree with the host's to float rounding;
    the mapping clamps each value to ``[lo, hi]`` and reads entry ``value -
    lo``.  The ranges are the rows' own (from ``aminmax`` on the device) or
    ``bounds`` (integral and inside the dtype, uploaded with the
    parameters).  Rows go in groups of at most ``DEVICE_TABLE_CHUNK`` table
    entries, three launches a group, so each row's result depends on that row
    alone.  Returns ``lo, hi, extrema`` on the device; nothing is downloaded.
    """
    device = x2.device
    n_rows, n_sinusoids = curve.shape[0], curve.shape[2]
    width = 1 << (8 * dtype.itemsize)  # every value the dtype holds
    block = min(TABLE_BLOCK if device.type == "cuda" else INTERPRETED_TABLE_BLOCK, width)
    chunks = width // block
    if bounds is None:
        lo, hi = torch.aminmax(x2, dim=1)
        (params,) = _upload([curve], device)
        stride = 1
    else:
        params, ends = _upload([curve, np.asarray(bounds, dtype=dtype)], device)
        lo, hi, stride = ends[:, 0], ends[:, 1], 2
    group = max(1, DEVICE_TABLE_CHUNK // width)
    clip = torch.empty((n_rows, 2), dtype=x2.dtype, device=device)
    extrema = torch.empty((n_rows, 2), dtype=torch.float64, device=device)
    table = torch.empty((min(group, n_rows), width), dtype=out2.dtype, device=device)
    partial = torch.empty((min(group, n_rows) * chunks, 2), dtype=torch.float64, device=device)
    for first in range(0, n_rows, group):
        rows = slice(first, first + group)
        count = min(group, n_rows - first)
        curves = (lo[rows], hi[rows], stride, params[rows])
        grid = (count * chunks,)
        _partial_extrema[grid](*curves, partial, K=n_sinusoids, CHUNKS=chunks,
                               BLOCK_SIZE=block, **LAUNCH_OPTIONS)
        _fill_tables[grid](*curves, partial, table, clip[rows], extrema[rows], width,
                           K=n_sinusoids, CHUNKS=chunks, BLOCK_SIZE=block, **LAUNCH_OPTIONS)
        # The range mode reads no place: the table stands in for it.
        _map(x2[rows], out2[rows], table, table, clip[rows], 0, _MODES["range"])
    return clip[:, 0], clip[:, 1], extrema


def tables(plan, curve, table_dtype):
    """Each element's table for ``plan``, built on the host and uploaded.

    Built by ``_cpu.tables``; returns device tensors ``(table, place, clip)``,
    uploaded together in one non-blocking copy (:func:`_upload`).
    """
    table = _cpu.tables(plan, curve, table_dtype)
    if plan.table == "interp":
        table = table.view(table.real.dtype)  # (value, step) pairs side by side
    elif table.dtype == np.uint16:
        table = table.view(np.int16)  # float16 bit patterns
    return _upload([table, plan.place, plan.clip], _DEVICE.get())


def _values(x2, kind):
    """Rows ``x2`` as the values they hold (float16 from its bit patterns)."""
    return x2.view(torch.float16) if kind == "half" else x2


def selected_extremes(x2, kind, mask2, omit):
    """Each row's smallest and largest selected value and how many are selected.

    As the CPU backend's: ``mask2`` is ``None`` or uint8 rows on the device (one
    per row, or one for all); ``omit`` leaves NaN and Inf out.  Two masked
    reductions on the device and one small download.
    """
    values = _values(x2, kind)
    keep = torch.ones((1, 1), dtype=torch.bool, device=x2.device) if mask2 is None \
        else mask2.view(torch.bool)
    if omit and kind != "int":
        keep = keep & torch.isfinite(values)
    keep = keep.expand(values.shape)
    if kind == "int":
        info = torch.iinfo(values.dtype)
        top, bottom = info.max, info.min
    else:
        top, bottom = float("inf"), float("-inf")
    lo = torch.where(keep, values, top).amin(dim=1)
    hi = torch.where(keep, values, bottom).amax(dim=1)
    counts = keep.sum(dim=1)
    if kind == "int":
        found = torch.stack([lo.to(torch.int64), hi.to(torch.int64), counts]).cpu().numpy()
        return found[0], found[1], found[2]
    found = torch.stack([lo.double(), hi.double(), counts.double()]).cpu().numpy()
    return found[0], found[1], found[2].astype(np.int64)


def restore_args(x2, kind, mask2, omit, fills):
    """What :func:`map_voxels` needs to restore a selection: rows, mask, NaN check, fills."""
    return x2, kind, mask2, omit, [float(v) for v in fills.astype(np.float64)]


def restore_outside(selection, out2):
    """``fills[0]`` where the mask is zero and ``fills[1]`` over NaN input, in ``out2``."""
    x2, kind, mask2, omit, (fill, nan) = selection
    if omit:
        out2.masked_fill_(torch.isnan(_values(x2, kind)), nan)
    if mask2 is not None:
        out2.masked_fill_(~mask2.view(torch.bool), fill)


def overlaps(x2, out2):
    """Whether rows ``x2`` and output ``out2`` share memory (an in-place transform)."""
    return x2.untyped_storage().data_ptr() == out2.untyped_storage().data_ptr()


def map_voxels(plan, x2, table, out2, selection=None):
    """Every value of rows ``x2`` through its row's table into ``out2``: one launch.

    ``table`` is what :func:`tables` returned; ``out2`` is the output tensor,
    written as int16 bit patterns where a float16 table is looked up.  With
    ``selection`` (:func:`restore_args`) the values outside it are restored
    after the launch: two masked fills.
    """
    if selection is not None:
        map_voxels(plan, x2, table, out2)
        restore_outside(selection, out2)
        return
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
    grid, blocks = launch_grid(n_rows, n)
    _map_voxels[grid](x2, out2, table, place, clip, n, blocks, table.shape[1], offset,
                      MODE=mode, HALF_IN=half_in, BLOCK_SIZE=BLOCK, **LAUNCH_OPTIONS)
