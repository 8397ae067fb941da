"""``plan.py``: the routes every entry point takes, and the registry of kernels."""

import inspect

import numpy as np
import pytest

import naive
from rsgt_fast import _cpu, _jit, plan, transform_batch
from rsgt_fast._formulas import curve_value, normalized, stored
from rsgt_fast._jit import python
from rsgt_fast.curves import sample_parameters

SMALL_INTS = [np.bool_, np.int8, np.uint8, np.int16, np.uint16]


def tolerance(out_dtype, base):
    """``base`` plus half an ulp at 1 of the output dtype (its rounding)."""
    return base + float(np.finfo(out_dtype).eps) / 2


def general_route(x, out_dtype, seed, min_max_val=None):
    """The scan, draw and plan route every batch takes when it is not small."""
    x2, kind = plan.rows(np.asarray(x))
    bounds = plan.ranges(x2, kind, None if min_max_val is None else [min_max_val] * len(x2),
                         "x")
    curve = sample_parameters(np.random.default_rng(seed), x2.shape[0], 4, 0.2, 1.6)
    result, out2 = plan.output(x2.shape[0], x.shape, np.dtype(out_dtype))
    extrema = plan.apply(x2, kind, x2.dtype, curve, bounds, out2, np.dtype(out_dtype))
    return result, bounds, extrema


def takes_the_small_route(x, min_max_val=None, monkeypatch=None):
    calls = []
    small = _cpu.small_rows
    monkeypatch.setattr(_cpu, "small_rows", lambda *a: calls.append(1) or small(*a))
    transform_batch(x, rng=0, min_max_val=min_max_val)
    monkeypatch.setattr(_cpu, "small_rows", small)
    return bool(calls)


@pytest.mark.parametrize("dtype", SMALL_INTS)
@pytest.mark.parametrize("out_dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 64, 64), (3, 7), (2, 1), (5, 300)])
@pytest.mark.parametrize("min_max_val", [None, (-1024, 3071), (1, 1), (-70000, -5000),
                                         (200, 260), (-2**63, -2**63 + 100)])
def test_small_batches_take_one_call_with_the_general_routes_bits(dtype, out_dtype, shape,
                                                                 min_max_val, monkeypatch):
    rng = np.random.default_rng(sum(shape))
    if dtype is np.bool_:
        x = rng.integers(0, 2, shape).astype(bool)
    else:
        info = np.iinfo(dtype)
        x = rng.integers(int(info.min), int(info.max), shape, endpoint=True).astype(dtype)
        x[0].flat[0], x[-1].flat[-1] = info.min, info.max  # full-width ranges
        if shape[0] > 2:
            x[1] = x[1].flat[0]  # a single-valued element
    assert takes_the_small_route(x, min_max_val, monkeypatch)
    out, curves = transform_batch(x, dtype=out_dtype, rng=3, min_max_val=min_max_val,
                                  return_curves=True)
    expected, bounds, extrema = general_route(x, out_dtype, 3, min_max_val)
    assert out.dtype == out_dtype
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))
    assert curves.bounds == tuple(bounds)
    assert all(type(v) is int for pair in curves.bounds for v in pair)
    np.testing.assert_array_equal(curves.extrema, extrema)
    if min_max_val is not None:
        np.testing.assert_allclose(
            out.astype(np.float64),
            naive.transform_batch(x, curves.frequencies, curves.amplitudes, curves.offsets,
                                  min_max_val=min_max_val),
            rtol=0, atol=tolerance(out_dtype, 1e-6))
    np.testing.assert_array_equal(transform_batch(x, curves=curves, dtype=out_dtype), out)


@pytest.mark.parametrize("n_rows", [2, 40])
def test_batches_at_the_small_limit_agree_on_both_sides(n_rows, monkeypatch):
    base = np.random.default_rng(4).integers(-1024, 3072, (n_rows, plan.CHUNK + 1)).astype(
        np.int16)
    below, above = base[:, :plan.CHUNK], base
    assert takes_the_small_route(below, monkeypatch=monkeypatch)
    assert not takes_the_small_route(above, monkeypatch=monkeypatch)
    for x in (below, above):
        np.testing.assert_array_equal(transform_batch(x, rng=5), general_route(x, "float32", 5)[0])


@pytest.mark.parametrize("min_max_val", [(0, 65536), (0.5, 100), (-2**63 - 1, -2**63 + 5)])
def test_ranges_off_integer_grids_are_not_small(min_max_val, monkeypatch):
    x = np.arange(12, dtype=np.int16).reshape(2, 6)
    assert not takes_the_small_route(x, min_max_val, monkeypatch)
    out, curves = transform_batch(x, rng=1, min_max_val=min_max_val, return_curves=True)
    expected = naive.transform_batch(x, curves.frequencies, curves.amplitudes, curves.offsets,
                                     min_max_val=min_max_val)
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=0,
                               atol=tolerance(np.float32, 1e-4))


def test_small_elements_take_the_general_route_while_curves_are_sampled_on_the_host(
        monkeypatch):
    x = np.random.default_rng(3).integers(-1024, 3072, (3, 30, 30)).astype(np.int16)
    expected = transform_batch(x, rng=2)
    monkeypatch.setattr(_cpu, "_host_curves", {"seconds": 0.0, "cached": False})
    monkeypatch.setattr(_cpu, "curves_compiled", lambda: False)
    assert not takes_the_small_route(x, monkeypatch=monkeypatch)
    np.testing.assert_array_equal(transform_batch(x, rng=2), expected)


@pytest.mark.parametrize("dtype, bounds, table", [
    (np.int16, [(-40000, 3071)], "lookup"),  # reaching past the dtype: a full table
    (np.float16, None, "lookup"),
    (np.int32, [(-1024, 3071)], "index"),
    (np.int32, [(-10**6, 10**6)], "interp"),
    (np.float32, None, "interp"),
])
def test_each_kind_of_table(dtype, bounds, table):
    x = np.random.default_rng(1).integers(-1024, 3072, (1, 1 << 20)).astype(dtype)
    x2, kind = plan.rows(x)
    bounds = plan.ranges(x2, kind, bounds, "x")
    plans = plan.make_plans(x2.dtype, x2.size, kind, np.zeros((1, 3, 4)), bounds,
                            np.dtype(np.float32))
    assert [p.table for _, p in plans] == [table]


def test_elements_needing_different_tables_go_in_groups():
    x = np.stack([np.arange(600, dtype=np.int32) % 900,
                  np.arange(600, dtype=np.int32) * 9000 - 10**6])
    x2, kind = plan.rows(x)
    bounds = plan.ranges(x2, kind, None, "x")
    plans = plan.make_plans(x2.dtype, x2.size, kind, np.zeros((2, 3, 4)), bounds,
                            np.dtype(np.float32))
    assert [(list(rows), p.table) for rows, p in plans] == [([0], "index"), ([1], "interp")]
    out, curves = transform_batch(x, rng=3, return_curves=True)
    for b in range(2):
        np.testing.assert_array_equal(transform_batch(x[b:b + 1], curves=curves[b:b + 1]),
                                      out[b:b + 1])


# ---------------------------------------------------------------- rsgt's table


@pytest.mark.parametrize("out_dtype", ["float32", "float16"])
@pytest.mark.parametrize("compiled", [True, False])
def test_rsgt_table_equals_numpys_for_many_curves(monkeypatch, out_dtype, compiled):
    """Unsafe entries redone in compiled code (where its sines are numpy's) or by numpy."""
    if compiled and not plan._numpy_curves("compiled"):
        pytest.skip("the compiled sines differ from numpy's on this machine")
    monkeypatch.setitem(plan._checks, "compiled", compiled)
    for n in (1, 2, 5, 4096, 65536, 300001):
        for curve in naive.random_curves(n + 1, 30 if n <= 65536 else 3):
            curve = curve[None]
            y = python(curve_value)(np.linspace(0, 2 * np.pi, n), curve, 0)
            expected = stored((y - y.min()) / (y.max() - y.min()) if n > 1 else
                              python(normalized)(y, y.min(), y.max()), out_dtype)
            np.testing.assert_array_equal(plan.rsgt_table(curve, n, np.dtype(out_dtype)),
                                          expected)


# ---------------------------------------------------------------- the registry


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int16", "uint16", "int32", "uint64",
                                   "float16", "float32", "float64"])
@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64"])
def test_registry_entries_fit_their_kernels(dtype, out_dtype):
    entries = plan.signatures(dtype, out_dtype) + plan.signatures_of_normalizations(
        dtype, out_dtype)
    names = {name for name, _, _ in plan.signatures(dtype, out_dtype)}
    assert "sample_grids" in names and len({"scan", "scan_keys"} & names) == 1
    for name, kernel, types in entries:
        fn = getattr(kernel, "py_func", kernel)
        assert len(inspect.signature(fn).parameters) == len(types), name


@pytest.mark.parametrize("dtype", ["bool", "int16", "uint16", "float16", "float32", "float64"])
@pytest.mark.parametrize("out_dtype", ["float16", "float32"])
def test_registry_lists_what_a_selection_compiles(dtype, out_dtype):
    x = (np.arange(40) % 7).astype(dtype).reshape(2, 20)
    entries = plan.signatures_of_selections(dtype, out_dtype)
    listed = {(name, tuple(types)) for name, _, types in entries}
    kernels = {name: kernel for name, kernel, _ in entries}
    before = {name: set(getattr(k, "signatures", ())) for name, k in kernels.items()}
    for bounds in (None, (0, 6), (-0.5, 6.5)):
        transform_batch(x, mask=x != 1, nan_policy="omit", dtype=out_dtype, rng=0,
                        min_max_val=bounds)
    if not _jit.compiling():
        return
    compiled = {(name, tuple(s)) for name, k in kernels.items() for s in k.signatures}
    new = {(name, s) for name, s in compiled if s not in before[name]}
    assert new <= listed  # what these calls compiled is in the registry
    ran = {name for name, _ in compiled & listed}
    assert "scan_selected" in ran and any(name.endswith("_restoring") for name in ran)
