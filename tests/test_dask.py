"""rsgt_fast.dask: lazy, and equal bit for bit to the in-memory engine for any chunking."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import rsgt_fast  # noqa: E402
import rsgt_fast.dask as rdask  # noqa: E402

SHAPE = (5, 12, 10, 9)
CHUNKINGS = [-1, (1, -1, -1, -1), (3, 4, 5, 4), (2, 12, 3, 9), "auto"]


def make(dtype, seed=0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = (-1024, 3072) if dtype.itemsize >= 2 and info.min < 0 else (0, min(info.max, 4000))
        x = rng.integers(lo, hi, size=shape).astype(dtype)
        if dtype == np.int32:  # wider than a table: interpolated
            x[1, 0, 0, 0], x[1, 0, 0, 1] = -(1 << 30), 1 << 30
        return x
    x = (rng.standard_normal(shape) * 300 + 40).astype(dtype)
    return x


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
@pytest.mark.parametrize("dtype", ["int16", "uint8", "int32", "bool", "float32", "float16",
                                   "float64"])
def test_equals_the_in_memory_call_for_every_chunking(dtype, chunks):
    x = make(dtype)
    lazy = rdask.transform_batch(da.from_array(x, chunks=chunks), rng=5)
    assert isinstance(lazy, da.Array) and lazy.dtype == np.float32 and lazy.shape == x.shape
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"),
                                  rsgt_fast.transform_batch(x, rng=5))


@pytest.mark.parametrize("out_dtype", ["float16", "float64"])
@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_given_range_keys_and_output_dtype(dtype, out_dtype):
    x = make(dtype, seed=1)
    options = dict(min_max_val=(-500, 2000), dtype=out_dtype, rng=9, keys=[4, 8, 15, 16, 23])
    lazy = rdask.transform_batch(da.from_array(x, chunks=(2, 5, 10, 3)), **options)
    assert lazy.dtype == np.dtype(out_dtype)
    np.testing.assert_array_equal(lazy.compute(), rsgt_fast.transform_batch(x, **options))


@pytest.mark.parametrize("dtype", ["int16", "float16", "float32"])
def test_returned_curves_equal_the_in_memory_ones_and_replay(dtype):
    x = make(dtype, seed=2)
    lazy, lazy_curves = rdask.transform_batch(da.from_array(x, chunks=(2, 6, 5, 9)), rng=3,
                                              return_curves=True)
    out, curves = dask.compute(lazy, lazy_curves)
    expected, expected_curves = rsgt_fast.transform_batch(x, rng=3, return_curves=True)
    np.testing.assert_array_equal(out, expected)
    assert curves == expected_curves
    # Replay of a part, on a Dask block layout of its own.
    part = x[1:4, 2:9]
    replayed = rdask.transform_batch(da.from_array(part, chunks=(1, 3, 4, 4)),
                                     curves=curves[1:4])
    np.testing.assert_array_equal(replayed.compute(), expected[1:4, 2:9])


def test_replay_with_a_range_per_curve():
    x = make("int16", seed=3)
    _, curves = rsgt_fast.transform_batch(x, rng=1, return_curves=True)
    assert len(set(curves.bounds)) > 1
    lazy, lazy_curves = rdask.transform_batch(da.from_array(x, chunks=(2, 4, 4, 4)),
                                              curves=curves, return_curves=True)
    np.testing.assert_array_equal(lazy.compute(), rsgt_fast.transform_batch(x, curves=curves))
    assert lazy_curves.compute() == curves


def test_replay_with_int_and_float_ranges_of_the_same_values():
    # For integer input an int range and a float range place values differently.
    x = make("int16", seed=5)
    _, drawn = rsgt_fast.transform_batch(x[:2], rng=2, return_curves=True)
    curves = rsgt_fast.Curves(drawn.frequencies, drawn.amplitudes, drawn.offsets,
                              [(0, 999), (0.0, 999.0)])
    lazy = rdask.transform_batch(da.from_array(x[:2], chunks=(1, 6, 5, 9)), curves=curves)
    np.testing.assert_array_equal(lazy.compute(), rsgt_fast.transform_batch(x[:2], curves=curves))


def test_one_dimensional_batch():
    x = np.arange(7, dtype=np.int16)
    lazy = rdask.transform_batch(da.from_array(x, chunks=3), rng=0)
    np.testing.assert_array_equal(lazy.compute(), rsgt_fast.transform_batch(x, rng=0))


def test_building_the_graph_computes_nothing():
    calls = []

    def source(block):
        calls.append(block.shape)
        return block

    x = da.from_array(make("float32"), chunks=(1, 6, 5, 9)).map_blocks(source, meta=np.empty(
        (0, 0, 0, 0), np.float32))
    lazy, lazy_curves = rdask.transform_batch(x, rng=0, return_curves=True)
    assert calls == []
    assert lazy.chunks == x.chunks
    assert isinstance(lazy._meta, np.ndarray) and lazy._meta.dtype == np.float32


def test_every_block_is_one_task_on_its_own_block():
    x = da.from_array(make("int16"), chunks=(1, 6, 5, 9))
    lazy = rdask.transform_batch(x, min_max_val=(-1024, 3071), rng=0)
    # With a known range each output block depends on its input block only.
    graph = dict(lazy.__dask_graph__())
    assert sum(1 for key in graph if isinstance(key, tuple) and key[0] == lazy.name) \
        == lazy.npartitions


def test_nan_raises_when_computed():
    x = make("float32")
    x[3, 1, 2, 3] = np.nan
    lazy = rdask.transform_batch(da.from_array(x, chunks=(2, 6, 5, 9)), rng=0)
    with pytest.raises(ValueError, match="finite"):
        lazy.compute()


def test_generator_rng_matches_in_memory():
    x = make("int16")
    lazy = rdask.transform_batch(da.from_array(x, chunks=(2, 6, 5, 9)),
                                 rng=np.random.default_rng(12))
    np.testing.assert_array_equal(lazy.compute(),
                                  rsgt_fast.transform_batch(x, rng=np.random.default_rng(12)))


@pytest.mark.parametrize("call, error, match", [
    (lambda x: rdask.transform_batch(np.zeros((2, 3))), TypeError, "dask.array.Array"),
    (lambda x: rdask.transform_batch(x.astype(np.complex64)), TypeError, "x must hold"),
    (lambda x: rdask.transform_batch(x, n_sinusoids=0), ValueError, "n_sinusoids"),
    (lambda x: rdask.transform_batch(x, dtype="int8"), (TypeError, ValueError), "dtype"),
    (lambda x: rdask.transform_batch(x, keys=[1, 2]), (TypeError, ValueError), "keys"),
    (lambda x: rdask.transform_batch(x, rng=np.random.default_rng(0), keys=[0, 1, 2, 3, 4]),
     TypeError, "rng"),
    (lambda x: rdask.transform_batch(x, rng=0, curves=rsgt_fast.transform_batch(
        np.zeros((5, 2)), rng=0, return_curves=True)[1]), ValueError, "rng"),
    (lambda x: rdask.transform_batch(x, curves=rsgt_fast.transform_batch(
        np.zeros((2, 2)), rng=0, return_curves=True)[1]), ValueError, "2 curves"),
    (lambda x: rdask.transform_batch(x[x[:, 0, 0, 0] > 0]), ValueError, "chunk sizes"),
    (lambda x: rdask.transform_batch(x[:0]), ValueError, "empty"),
])
def test_bad_arguments_raise_before_any_work(call, error, match):
    x = da.from_array(make("int16"), chunks=(2, 6, 5, 9))
    with pytest.raises(error, match=match):
        call(x)


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_local_schedulers_give_the_same_result(scheduler):
    x = make("int16", seed=4)
    lazy = rdask.transform_batch(da.from_array(x, chunks=(1, 6, 10, 9)), rng=21, keys=range(5))
    np.testing.assert_array_equal(lazy.compute(scheduler=scheduler, num_workers=2),
                                  rsgt_fast.transform_batch(x, rng=21, keys=range(5)))


def test_missing_extra_is_one_line(monkeypatch):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.delitem(sys.modules, "rsgt_fast.dask")
    from rsgt_fast._optional import MissingExtra
    with pytest.raises(MissingExtra, match=r'pip install "rsgt-fast\[dask\]"'):
        importlib.import_module("rsgt_fast.dask")


@pytest.mark.parametrize("chunks", [(1, 5, 4), (2, 3, 7), (3, 10, 11)])
@pytest.mark.parametrize("dtype", [np.int16, np.int64, np.float32, np.float16])
def test_mask_and_nan_policy_bit_for_bit(chunks, dtype):
    rng = np.random.default_rng(11)
    x = rng.integers(-500, 2000, (3, 10, 11)).astype(dtype)
    if np.dtype(dtype).kind == "f":
        x[:, 0, :4] = np.nan
        x[1, 3, 3] = np.inf
    mask = rng.random(x.shape) > 0.3
    expected, curves = rsgt_fast.transform_batch(x, nan_policy="omit", mask=mask, fill=-1.0,
                                                 rng=5, return_curves=True)
    lazy, lazy_curves = rsgt_fast.dask.transform_batch(
        da.from_array(x, chunks=chunks), nan_policy="omit", mask=da.from_array(mask, chunks=3),
        fill=-1.0, rng=5, return_curves=True)
    out, got = dask.compute(lazy, lazy_curves)
    np.testing.assert_array_equal(out, expected)
    assert got == curves


def test_shared_numpy_mask_and_omit_without_mask():
    x = np.random.default_rng(2).normal(300, 50, (4, 6, 6)).astype(np.float32)
    x[:, :, 0] = np.nan
    shared = np.ones((6, 6), bool)
    shared[2:4] = False
    for kwargs in ({"mask": shared}, {}):
        expected = rsgt_fast.transform_batch(x, nan_policy="omit", rng=1, **kwargs)
        lazy = rsgt_fast.dask.transform_batch(da.from_array(x, chunks=(2, 3, 6)),
                                              nan_policy="omit", rng=1, **kwargs)
        np.testing.assert_array_equal(lazy.compute(), expected)


def test_an_element_with_nothing_selected_raises_when_computed():
    x = da.zeros((2, 4, 4), chunks=(1, 2, 4), dtype=np.int16)
    mask = np.ones((2, 4, 4), bool)
    mask[1] = False
    lazy = rsgt_fast.dask.transform_batch(x, mask=mask, rng=0)
    with pytest.raises(ValueError, match="element 1"):
        lazy.compute()


@pytest.mark.parametrize("axis", [1, 2, -1])
@pytest.mark.parametrize("keys", [None, [5, 6, 7]])
def test_channel_axis_bit_for_bit(axis, keys):
    rng = np.random.default_rng(1)
    x = rng.integers(-100, 300, (3, 4, 5, 6)).astype(np.int16)
    mask = rng.random(x.shape) > 0.3
    lazy = da.from_array(x, chunks=(2, 3, 2, 4))
    for m, lazy_m in ((None, None), (mask, da.from_array(mask, chunks=2)), (mask[0], mask[0])):
        expected, curves = rsgt_fast.transform_batch(x, rng=3, keys=keys, channel_axis=axis,
                                                     mask=m, return_curves=True)
        out, lazy_curves = rdask.transform_batch(lazy, rng=3, keys=keys, channel_axis=axis,
                                                 mask=lazy_m, return_curves=True)
        out, got = dask.compute(out, lazy_curves)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(got.packed(), curves.packed())


def test_dtype_none_keeps_a_float_input_dtype():
    x = make(np.float16)
    assert rdask.transform_batch(da.from_array(x), dtype=None, rng=0).dtype == np.float16
    assert rdask.transform_batch(da.from_array(make(np.int16)), dtype=None).dtype == np.float32
