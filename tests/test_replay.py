"""Replaying curves: ``transform_batch(x, curves=...)`` on whole batches and on blocks.

The reference is the earlier call itself: a replay must give the same numbers
bit for bit, and so must every block of it, whatever the dtypes and ranges.
"""

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from rsgt_fast import Curves, transform_batch

INPUT_DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                "uint64", "float16", "float32", "float64"]
OUT_DTYPES = ["float16", "float32", "float64"]


def batch(dtype, shape=(3, 6, 5, 4), seed=0):
    """Values spread over a CT-like range (0/1 for bool, clipped to small dtypes)."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    values = rng.normal(300.0, 500.0, shape)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        values = np.clip(np.round(values), int(info.min), int(info.max))
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", INPUT_DTYPES)
@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
@pytest.mark.parametrize("min_max_val", [None, (-200, 900), (-150.5, 700.25)])
def test_replay_equals_the_original_call(dtype, out_dtype, min_max_val):
    x = batch(dtype)
    out, curves = transform_batch(x, rng=3, dtype=out_dtype, min_max_val=min_max_val,
                                  return_curves=True)
    replayed, again = transform_batch(x, curves=curves, dtype=out_dtype, return_curves=True)
    assert replayed.dtype == out.dtype
    np.testing.assert_array_equal(replayed, out)
    assert again == curves


@pytest.mark.parametrize("dtype", INPUT_DTYPES)
@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
def test_blocks_of_a_replay_equal_blocks_of_the_call(dtype, out_dtype):
    x = batch(dtype, shape=(4, 9, 8, 7))
    out, curves = transform_batch(x, rng=5, dtype=out_dtype, return_curves=True)
    for rows, a, b, c in [(slice(1, 3), slice(2, 7), slice(0, 3), slice(4, 7)),
                          (slice(0, 1), slice(None), slice(5, 6), slice(None)),
                          (slice(3, 4), slice(8, 9), slice(7, 8), slice(6, 7))]:
        block = transform_batch(x[rows, a, b, c], curves=curves[rows], dtype=out_dtype)
        np.testing.assert_array_equal(block, out[rows, a, b, c])


def test_a_small_block_of_a_large_16_bit_batch_takes_another_table_with_the_same_values():
    # The whole batch is large enough for a full 65536-entry table per element;
    # a small block uses one entry per integer of the range instead.
    x = batch("int16", shape=(2, 1 << 20), seed=9)
    out, curves = transform_batch(x, rng=1, return_curves=True)
    block = transform_batch(x[:, 1000:1100], curves=curves)
    np.testing.assert_array_equal(block, out[:, 1000:1100])


def test_elements_needing_different_kernels_replay_alone_as_in_the_batch():
    # int32 rows: one range small enough for one grid point per integer, one
    # too wide, one non-integral; float32 rows: one float32-exact range, one not.
    ints = np.stack([np.arange(-50, 350), np.arange(400) * 1000, np.arange(400)]).astype(np.int32)
    floats = np.stack([np.linspace(0, 1, 400), np.linspace(-3, 3, 400)]).astype(np.float32)
    for x, ranges in [(ints, [(-50, 349), (0, 399_000), (0.5, 380.25)]),
                      (floats, [(0.0, 1.0), (-2.9, 3.0000001)])]:
        parts = [transform_batch(x[b:b + 1], rng=b, min_max_val=r, return_curves=True)
                 for b, r in enumerate(ranges)]
        curves = Curves.concatenate([c for _, c in parts])
        together = transform_batch(x, curves=curves)
        for b, (alone, _) in enumerate(parts):
            np.testing.assert_array_equal(together[b], alone[0])


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from(INPUT_DTYPES), out_dtype=st.sampled_from(OUT_DTYPES),
       n=st.integers(1, 5), size=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_any_rows_and_columns_replay_exactly(dtype, out_dtype, n, size, seed, data):
    x = batch(dtype, shape=(n, size), seed=seed)
    out, curves = transform_batch(x, rng=seed, dtype=out_dtype, return_curves=True)
    rows = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n))
    start = data.draw(st.integers(0, size - 1))
    stop = data.draw(st.integers(start + 1, size))
    block = transform_batch(x[rows, start:stop], curves=curves[rows], dtype=out_dtype)
    np.testing.assert_array_equal(block, out[rows, start:stop])


def test_replay_draws_nothing_and_reads_no_range():
    x = batch("int16")
    _, curves = transform_batch(x, rng=0, return_curves=True)
    # Values far outside the stored ranges are clipped to them, not rescanned.
    wide = x.astype(np.int32) * 10
    out = transform_batch(wide, curves=curves)
    lo, hi = np.array(curves.bounds).T
    clipped = np.clip(wide, lo[:, None, None, None], hi[:, None, None, None]).astype(np.int16)
    np.testing.assert_array_equal(out, transform_batch(clipped, curves=curves))


def test_replay_matches_the_reference_for_hand_made_curves():
    rng = np.random.default_rng(4)
    f, a, o = naive.uniform_draws(rng, 2)
    curves = Curves(f, a, o, [(0, 1000), (-5.5, 20.0)])
    x = np.stack([np.arange(0, 1100, 11), np.linspace(-8, 25, 100)]).astype(np.float64)
    out, applied = transform_batch(x, curves=curves, dtype="float64", return_curves=True)
    expected = [naive.real_reference(x[b], float(lo), float(hi), f[b], a[b], o[b])
                for b, (lo, hi) in enumerate(curves.bounds)]
    np.testing.assert_allclose(out, np.stack(expected), rtol=0, atol=1e-4)
    assert applied.extrema is not None and curves.extrema is None


# ---------------------------------------------------------------- conflicts


@pytest.mark.parametrize("kwargs,named", [
    ({"rng": 1}, "rng"), ({"keys": [0, 1, 2]}, "keys"), ({"min_max_val": (0, 1)}, "min_max_val"),
    ({"n_sinusoids": 4}, "n_sinusoids"), ({"min_frequency": 0.2}, "min_frequency"),
    ({"max_frequency": 1.6}, "max_frequency"),
])
def test_curves_with_another_source_of_curves_is_refused(kwargs, named):
    x = batch("int16")
    _, curves = transform_batch(x, rng=0, return_curves=True)
    with pytest.raises(ValueError, match=f"cannot be combined with {named}"):
        transform_batch(x, curves=curves, **kwargs)


def test_curves_of_another_length_or_type_are_refused():
    x = batch("int16")
    _, curves = transform_batch(x, rng=0, return_curves=True)
    with pytest.raises(ValueError, match="holds 2 curves but x has 3 elements"):
        transform_batch(x, curves=curves[:2])
    with pytest.raises(TypeError, match="curves must be a rsgt_fast.Curves"):
        transform_batch(x, curves=curves.to_dict())


# ---------------------------------------------------------------- the record


@pytest.fixture
def curves():
    x = np.stack([np.arange(-1024, 3072), np.arange(4096) * 1.5]).astype(np.int64)
    x = np.concatenate([x, [np.arange(4096) - 2**62]])
    return transform_batch(x, rng=11, return_curves=True)[1]


def test_length_indexing_and_concatenation(curves):
    assert len(curves) == 3 and curves.n_sinusoids == 4
    assert curves[1:] == Curves.concatenate([curves[1], curves[2]])
    assert curves[[0, 2]] == Curves.concatenate([curves[0], curves[-1]])
    assert curves[np.array([True, False, True])] == curves[[0, 2]]
    assert Curves.concatenate([curves[:1], curves[1:]]) == curves
    assert curves[0] != curves[1]
    np.testing.assert_array_equal(curves[[2, 0]].frequencies, curves.frequencies[[2, 0]])
    with pytest.raises(IndexError):
        curves[3]
    with pytest.raises(TypeError):
        curves[1.5]
    assert len(curves[[]]) == len(curves[3:]) == 0 and curves[[]] == curves[3:]
    assert curves[[-1]] == curves[2:]
    for bad in ([3], [0, -4]):
        with pytest.raises(IndexError, match="out of range for 3 curves"):
            curves[bad]
    with pytest.raises(ValueError, match="different n_sinusoids"):
        Curves.concatenate([curves, transform_batch(np.ones((1, 3)), rng=0, n_sinusoids=2,
                                                    return_curves=True)[1]])


def test_curves_are_immutable(curves):
    with pytest.raises(AttributeError):
        curves.frequencies = None
    with pytest.raises(ValueError):
        curves.frequencies[0, 0] = 1.0


def test_equality_tells_integer_from_float_ranges(curves):
    f, a, o = curves.frequencies, curves.amplitudes, curves.offsets
    as_ints = Curves(f[:1], a[:1], o[:1], [(0, 10)])
    as_floats = Curves(f[:1], a[:1], o[:1], [(0.0, 10.0)])
    assert as_ints != as_floats  # integer data is sampled at the integers of an int range


def test_pickle_round_trip(curves):
    again = pickle.loads(pickle.dumps(curves))
    assert again == curves and again.bounds == curves.bounds
    assert not again.frequencies.flags.writeable


def test_dict_is_json_and_round_trips_exactly(curves):
    data = curves.to_dict()
    text = json.dumps(data)
    again = Curves.from_dict(json.loads(text))
    assert again == curves
    assert again.bounds[2] == curves.bounds[2] == (-(2**62), 4095 - 2**62)  # ints beyond 2**53
    for name in ("frequencies", "amplitudes", "offsets", "extrema"):
        assert np.array_equal(getattr(again, name), getattr(curves, name))


@pytest.mark.parametrize("change,field", [
    (lambda d: d.pop("ranges"), "ranges"),
    (lambda d: d.update(colour=1), "colour"),
    (lambda d: d.update(frequencies="fast"), "frequencies"),
    (lambda d: d["amplitudes"][0].__setitem__(0, "x"), "amplitudes"),
    (lambda d: d["offsets"][1].__setitem__(0, True), "offsets"),
    (lambda d: d["offsets"][1].__setitem__(0, float("nan")), "offsets"),
    (lambda d: d["frequencies"][0].__setitem__(0, -1.0), "frequencies"),
    (lambda d: d["frequencies"].pop(), "frequencies"),
    (lambda d: d["ranges"].__setitem__(0, [5, 1]), "ranges"),
    (lambda d: d["ranges"].__setitem__(0, [5]), "ranges"),
    (lambda d: d["ranges"].__setitem__(0, [0, 10**400]), "ranges must lie within the float64"),
    (lambda d: d["ranges"].__setitem__(0, [-1e308, 1e308]), "ranges must lie within"),
    (lambda d: d.update(extrema=[[0.0, 1.0]]), "extrema"),
])
def test_malformed_dicts_name_the_field(curves, change, field):
    data = json.loads(json.dumps(curves.to_dict()))
    change(data)
    with pytest.raises(ValueError, match=field):
        Curves.from_dict(data)


def test_curves_that_would_overflow_are_refused():
    f = np.ones((1, 2))
    with pytest.raises(ValueError, match="amplitudes are too large"):
        Curves(f, np.full((1, 2), 1e308), np.zeros((1, 2)), [(0, 10)])


def test_from_dict_needs_a_mapping():
    with pytest.raises(ValueError, match="mapping"):
        Curves.from_dict([1, 2])


@pytest.mark.parametrize("dtype", INPUT_DTYPES)
@pytest.mark.parametrize("min_max_val", [None, (-200, 900), (-150.5, 700.25)])
def test_returned_curves_pass_the_public_constructor_unchanged(dtype, min_max_val):
    """The engine builds its record without checks; the checked constructor must agree."""
    _, curves = transform_batch(batch(dtype), rng=5, min_max_val=min_max_val,
                                return_curves=True)
    rebuilt = Curves(curves.frequencies, curves.amplitudes, curves.offsets, curves.bounds,
                     curves.extrema)
    assert rebuilt == curves
    assert [tuple(map(type, pair)) for pair in rebuilt.bounds] == \
        [tuple(map(type, pair)) for pair in curves.bounds]
    np.testing.assert_array_equal(rebuilt.extrema, curves.extrema)
    assert not curves.frequencies.flags.writeable and not curves.extrema.flags.writeable
    with pytest.raises(AttributeError):
        curves.bounds = ()
