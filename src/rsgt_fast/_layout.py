"""The packed arrays and structures that pass between the planner and the kernels.

Both sides import the names defined here, so a column is never a bare number:
``curve[b, FREQUENCY, k]``, ``place[b, SCALE]``, ``grid.extrema[b, YMAX]``.

Curve parameters, ``curve``: float64 ``(B, 3, K)``
    ``curve[b, FREQUENCY]``, ``curve[b, AMPLITUDE]`` and ``curve[b, PHASE]``
    hold element ``b``'s K sinusoids ``a * sin(f * (t + o))``.

Placement, ``place``: ``(B, N_PLACE)`` in the working float type
    How an input value becomes a grid position: it is clamped to
    ``[LO, HI]`` and placed at ``(UNIT * v - UNIT_LO) * SCALE``; ``UNIT`` is a
    power of two that keeps the arithmetic finite (0.5 unless the span is
    tiny), ``LAST`` the last grid position, and ``BASE`` the grid position of
    ``clip[b, CLIP_LO]`` for integer input measured in integer arithmetic.

Integer clamping, ``clip``: ``(B, 2)`` in the input's dtype
    ``CLIP_LO`` and ``CLIP_HI``: the range's ends clamped to the dtype.

Grid state, :class:`Grid`
    ``points[b]`` samples of curve ``b`` at ``t_j = j * 2*pi / (points[b] - 1)``
    in ``values[b, :points[b]]``; ``dense[b]`` marks grids whose extrema are
    refined to those of the continuous curve (float input and integer ranges
    too wide for one point per integer); ``extrema[b, YMIN]`` and
    ``extrema[b, YMAX]`` scale the curve onto [0, 1].

Call settings, :class:`Job`
    ``chunk`` voxels per parallel task, ``offset`` added to an 8/16-bit value
    to index its lookup table, ``half_in`` for float16 input passed as its
    bit patterns, ``integer`` for integer input placed in integer arithmetic.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# curve parameters, axis 1 of ``curve``
FREQUENCY, AMPLITUDE, PHASE = 0, 1, 2

# extrema, axis 1 of ``Grid.extrema``
YMIN, YMAX = 0, 1

# integer clamping bounds, axis 1 of ``clip``
CLIP_LO, CLIP_HI = 0, 1

# placement, axis 1 of ``place``
LO, HI, UNIT_LO, SCALE, UNIT, LAST, BASE = range(7)
N_PLACE = 7

#: Bound on the error of a sampled grid value (``_kernels.sample_block``), per
#: unit of ``sum(|a| * (2 + f))`` over the curve's sinusoids.  Each value is two
#: products of table entries at most 63 rotations from an exact ``sin``/``cos``
#: (about 6e-14 at worst); the largest error seen is about 1.6e-15.
SAMPLE_ERROR = 2.0**-40


class Grid(NamedTuple):
    """Per-element grid samples, their count, kind and extrema (see module notes)."""

    points: np.ndarray
    dense: np.ndarray
    values: np.ndarray
    extrema: np.ndarray


class Job(NamedTuple):
    """Settings of one kernel call (see module notes)."""

    chunk: int
    offset: int
    half_in: bool
    integer: bool
