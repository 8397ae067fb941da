"""The packed arrays that pass between the planner and the backends, and the :class:`Plan`.

Both sides import the names defined here, so a column is never a bare number:
``curve[b, FREQUENCY, k]``, ``place[b, SCALE]``, ``extrema[b, YMAX]``.

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

Grid shape, ``grid``: int64 ``(B, 2)``
    ``grid[b, POINTS]`` samples of curve ``b`` at ``t_j = j * 2*pi / (points - 1)``
    (held in ``values[b, :points]``, float64 ``(B, width)``); ``grid[b, DENSE]``
    is 1 for grids whose extrema are refined to those of the continuous curve
    (float input and integer ranges too wide for one point per integer).

Extrema, ``extrema``: float64 ``(B, 2)``
    ``extrema[b, YMIN]`` and ``extrema[b, YMAX]`` scale curve ``b`` onto [0, 1].
"""

from __future__ import annotations

from typing import Any, NamedTuple

# curve parameters, axis 1 of ``curve``
FREQUENCY, AMPLITUDE, PHASE = 0, 1, 2

# extrema, axis 1 of ``extrema``
YMIN, YMAX = 0, 1

# integer clamping bounds, axis 1 of ``clip``
CLIP_LO, CLIP_HI = 0, 1

# placement, axis 1 of ``place``
LO, HI, UNIT_LO, SCALE, UNIT, LAST, BASE = range(7)
N_PLACE = 7

# grid shape, axis 1 of ``grid``
POINTS, DENSE = 0, 1


class Plan(NamedTuple):
    """How a backend maps a group of elements: the planner's decision, immutable.

    Attributes
    ----------
    table : {'lookup', 'index', 'interp'}
        ``lookup``: an entry per value an 8/16-bit dtype holds (or per float16
        pattern), indexed by the value plus ``offset``; ``index``: an entry per
        integer of the range, indexed after clamping to ``clip`` from
        ``place[b, BASE]`` on; ``interp``: (value, step) pairs of a grid,
        interpolated at each value's position (``place``; ``integer``: integer
        input measured in integer arithmetic from ``clip``).
    width : int
        Table entries per element.
    grid, values, extrema : ndarray
        Each element's grid shape, room for its samples and its extrema (see
        the module notes); ``values`` is ``None`` where the tables are given.
    place, clip : ndarray
        Per-element placement and integer clamping.
    entries : ndarray or None
        The input value of each lookup-table entry (float64), for dense grids.
    offset : int
        Added to an 8/16-bit integer to index a lookup table.
    half_in : bool
        float16 input, passed as its uint16 bit patterns.
    integer : bool
        See ``table``.
    """

    table: str
    width: int
    grid: Any
    values: Any
    extrema: Any
    place: Any
    clip: Any
    entries: Any = None
    offset: int = 0
    half_in: bool = False
    integer: bool = False
