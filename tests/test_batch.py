"""The batch engine against the naive element-by-element reference."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import naive
import rsgt_fast
from rsgt_fast import transform_batch

ALL_INTS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


def run(x, **kwargs):
    out, curves = transform_batch(x, return_curves=True, **kwargs)
    params = curves.frequencies, curves.amplitudes, curves.offsets
    return out, curves, params


def tolerance(out_dtype, base):
    """``base`` plus half an ulp at 1 of the output dtype (its rounding)."""
    return base + float(np.finfo(out_dtype).eps) / 2


@pytest.mark.parametrize("dtype", ALL_INTS)
@pytest.mark.parametrize("min_max_val", [None, (-1024, 3071), (10, 200), (-70000, 70000)])
@pytest.mark.parametrize("out_dtype", [np.float16, np.float32, np.float64])
def test_integer_input_matches_rsgt_formula(dtype, min_max_val, out_dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(int(np.dtype(dtype).itemsize))
    x = rng.integers(max(int(info.min), -2000), min(int(info.max), 4000), size=(3, 5, 4),
                     endpoint=True).astype(dtype)
    out, _, params = run(x, min_max_val=min_max_val, dtype=out_dtype, rng=17)
    expected = naive.transform_batch(x, *params, min_max_val=min_max_val)
    assert out.dtype == out_dtype and out.shape == x.shape
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=0,
                               atol=tolerance(out_dtype, 1e-6))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("min_max_val", [None, (0, 800), (100.5, 600.25)])
@pytest.mark.parametrize("out_dtype", [np.float16, np.float32, np.float64])
def test_float_input_is_exact_not_truncated(mr_batch, dtype, min_max_val, out_dtype):
    x = mr_batch.astype(dtype)
    out, _, params = run(x, min_max_val=min_max_val, dtype=out_dtype, rng=5)
    expected = naive.transform_batch(x, *params, min_max_val=min_max_val)
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=0,
                               atol=tolerance(out_dtype, 1e-4))


def test_float_values_between_integers_get_their_own_output():
    x = np.array([[0.0, 0.25, 0.5, 0.75, 1.0, 100.0]])
    out = transform_batch(x, rng=0, dtype="float64")
    assert len(np.unique(out[0, :5])) == 5  # truncation would make them equal


@pytest.mark.parametrize("span", [65535, 65536, 65537, 2**20, 2**31 - 1])
def test_wide_integer_ranges_are_within_1e_6(span):
    rng = np.random.default_rng(span)
    x = rng.integers(0, span, size=(2, 400), endpoint=True).astype(np.int64)
    x[:, 0], x[:, 1] = 0, span
    out, _, params = run(x, rng=3, dtype="float64")
    expected = naive.transform_batch(x, *params)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_each_element_has_its_own_curve(ct_batch):
    same = np.repeat(ct_batch[:1], 4, axis=0)
    out, curves, _ = run(same, rng=1, min_max_val=(-1024, 3071))
    assert len({tuple(f) for f in curves.frequencies}) == 4
    for b in range(1, 4):
        assert not np.array_equal(out[0], out[b])


def test_element_uses_its_own_range():
    x = np.stack([np.arange(10), np.arange(10) * 100])
    out, curves, _ = run(x, rng=0)
    np.testing.assert_array_equal(curves.ranges, [[0, 9], [0, 900]])
    assert out.min() >= 0 and out.max() <= 1


def test_parameters_follow_rsgt_distribution():
    x = np.zeros((4000, 2), np.int16)
    _, curves, (f, a, o) = run(x, rng=0, n_sinusoids=3, min_frequency=0.5, max_frequency=2.0)
    assert f.shape == a.shape == o.shape == (4000, 3)
    assert f.min() >= 0.5 and f.max() < 2.0
    assert np.all(np.abs(a) <= 1 / f)
    assert o.min() >= 0 and o.max() < 2 * np.pi
    # Uniform frequencies and offsets, amplitudes uniform in [-1/f, 1/f).
    assert abs(f.mean() - 1.25) < 0.02
    assert abs((a * f).mean()) < 0.02 and abs((a * f).std() - 1 / np.sqrt(3)) < 0.02
    assert abs(o.mean() - np.pi) < 0.05


def test_rng_int_equals_default_rng_and_global_state_untouched(ct_batch):
    state = np.random.get_state()
    a = transform_batch(ct_batch, rng=99)
    b = transform_batch(ct_batch, rng=np.random.default_rng(99))
    c = transform_batch(ct_batch, rng=np.random.SeedSequence(99))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2] == after[2]
    assert not np.array_equal(a, transform_batch(ct_batch, rng=100))


def test_int_seeds_from_many_threads_match_their_generators():
    """Int seeds reuse a per-thread generator: threads must not see each other's state."""
    x = np.random.default_rng(1).integers(-1024, 3072, size=(2, 24, 24), dtype=np.int16)
    seeds = [0, 1, 2**40, np.int64(7), np.uint64(2**63 + 5)]
    expected = [transform_batch(x, rng=np.random.default_rng(int(s))) for s in seeds]

    def repeat(seed):
        return [transform_batch(x, rng=seed) for _ in range(30)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(repeat, seeds * 3))
    for seed, runs in zip(seeds * 3, results):
        for result in runs:
            np.testing.assert_array_equal(result, expected[seeds.index(seed)])


def test_generator_advances_between_calls(ct_batch):
    gen = np.random.default_rng(0)
    first = transform_batch(ct_batch, rng=gen)
    second = transform_batch(ct_batch, rng=gen)
    assert not np.array_equal(first, second)


def test_same_rng_same_output_whatever_the_thread_count():
    x = np.random.default_rng(0).integers(-1024, 3072, size=(3, 40, 40, 40), dtype=np.int16)
    xf = x.astype(np.float32) + 0.5
    for data in (x, xf):
        default = transform_batch(data, rng=8)
        with rsgt_fast.thread_limit(1):
            serial = transform_batch(data, rng=8)
        np.testing.assert_array_equal(default, serial)


@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64"])
def test_out_is_filled_and_returned(ct_batch, out_dtype):
    out = np.full(ct_batch.shape, -1, out_dtype)
    result = transform_batch(ct_batch, rng=2, out=out, dtype=out_dtype)
    assert result is out
    np.testing.assert_array_equal(out, transform_batch(ct_batch, rng=2, dtype=out_dtype))


def test_out_may_be_non_contiguous(ct_batch):
    buffer = np.zeros(ct_batch.shape[::-1], np.float32).T  # Fortran-ordered view
    result = transform_batch(ct_batch, rng=2, out=buffer)
    assert result is buffer
    np.testing.assert_array_equal(buffer, transform_batch(ct_batch, rng=2))


def test_in_place_float_transform(mr_batch):
    expected = transform_batch(mr_batch, rng=4)
    data = mr_batch.copy()
    assert transform_batch(data, rng=4, out=data) is data
    np.testing.assert_array_equal(data, expected)


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.float16, np.uint8, np.int64])
def test_curves_evaluate_reproduces_output(dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 120, size=(3, 7, 6)).astype(dtype)
    out, curves, _ = run(x, rng=11, dtype="float64")
    np.testing.assert_allclose(curves.evaluate(x), out, rtol=0, atol=1e-6)
    values, outputs = curves.sample(64)
    assert values.shape == outputs.shape == (3, 64)
    np.testing.assert_allclose(values[:, 0], curves.ranges[:, 0])
    np.testing.assert_allclose(values[:, -1], curves.ranges[:, 1])
    shared = curves.evaluate(np.arange(5)[None, :])
    assert shared.shape == (3, 5)


def test_curve_extrema_are_reached():
    x = np.random.default_rng(0).normal(size=(5, 3000))
    out, curves, _ = run(x, rng=0, dtype="float64")
    _, dense = curves.sample(20001)
    assert np.all(dense.min(axis=1) < 1e-6) and np.all(dense.max(axis=1) > 1 - 1e-6)


def test_single_valued_elements_map_to_half():
    x = np.array([[3, 3, 3], [1, 2, 3]], np.int32)
    out = transform_batch(x, rng=0)
    np.testing.assert_array_equal(out[0], 0.5)
    assert np.all(transform_batch(np.full((2, 4), 2.5), rng=0) == 0.5)
    assert np.all(transform_batch(np.arange(4), rng=0, min_max_val=(7, 7)) == 0.5)


def test_one_dimensional_input_is_a_batch_of_scalars():
    out = transform_batch(np.arange(6, dtype=np.int16), rng=0)
    assert out.shape == (6,) and np.all(out == 0.5)


def test_bool_input():
    x = np.random.default_rng(0).random((2, 10)) > 0.5
    x[:, 0], x[:, 1] = False, True
    out, _, params = run(x, rng=0)
    np.testing.assert_allclose(out, naive.transform_batch(x.astype(np.uint8), *params), atol=1e-6)


def test_small_batch_writes_into_out_of_any_layout():
    x = np.random.default_rng(2).integers(-1000, 3000, (2, 40, 30)).astype(np.int16)
    expected = transform_batch(x, rng=9)
    direct = np.empty(x.shape, np.float32)
    assert transform_batch(x, rng=9, out=direct) is direct
    strided = np.empty((2, 40, 60), np.float32)[:, :, ::2]
    assert transform_batch(x, rng=9, out=strided) is strided
    np.testing.assert_array_equal(direct, expected)
    np.testing.assert_array_equal(strided, expected)


@pytest.mark.parametrize("min_max_val", [(0, 1e300), (-1e300, 0.5)])
def test_float32_input_over_ranges_beyond_float32(min_max_val):
    # Ranges that float32 cannot hold are placed in float64, without overflow warnings.
    x = np.linspace(-5, 5, 24, dtype=np.float32).reshape(2, 12)
    out, curves = transform_batch(x, rng=2, min_max_val=min_max_val, return_curves=True)
    expected = naive.transform_batch(x, curves.frequencies, curves.amplitudes, curves.offsets,
                                     min_max_val=min_max_val)
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=0,
                               atol=tolerance(np.float32, 1e-4))


def test_out_of_the_other_byte_order():
    x = np.random.default_rng(6).integers(-1024, 3072, (2, 300, 300)).astype(np.int16)
    for shape in (x.shape, (2, 12, 10)):
        part = x[:, :shape[1], :shape[2]]
        out = np.empty(part.shape, ">f4")
        assert transform_batch(part, rng=4, dtype=">f4", out=out) is out
        np.testing.assert_array_equal(out, transform_batch(part, rng=4))


@pytest.mark.parametrize("hi", [5e-324, 1e-323, 2.5e-308])
def test_a_range_of_a_few_subnormals_is_placed_finitely(hi):
    x = np.array([[0, 1, 0], [1, 1, 0]], np.int8)
    out, curves = transform_batch(x, min_max_val=(0, hi), rng=0, return_curves=True)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, curves.evaluate(x), rtol=0, atol=1e-6)
