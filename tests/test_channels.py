"""``transform_batch(channel_axis=...)``: a curve per channel, against per-channel calls."""

import numpy as np
import pytest

import naive
from rsgt_fast import transform_batch


def multimodal(shape=(3, 4, 6, 5), seed=0):
    """A batch of 4-channel images (T1, T2, FLAIR, ... as channels on axis 1)."""
    rng = np.random.default_rng(seed)
    return (rng.gamma(2.0, 150.0, shape) * (1 + np.arange(shape[1]))[:, None, None]).astype(
        np.float32)


@pytest.mark.parametrize("axis", [1, 3, -1])
def test_each_channel_has_its_own_curve_and_range(axis):
    x = multimodal()
    out, curves = transform_batch(x, channel_axis=axis, rng=3, return_curves=True)
    channels = x.shape[axis]
    assert out.shape == x.shape and len(curves) == x.shape[0] * channels
    moved = np.moveaxis(x, axis, 1)
    rows = moved.reshape((-1,) + moved.shape[2:])
    expected = naive.transform_batch(rows, curves.frequencies, curves.amplitudes,
                                     curves.offsets).reshape(moved.shape)
    np.testing.assert_allclose(np.moveaxis(out, axis, 1), expected, rtol=0, atol=1e-4)
    # the same as one call on the channels folded into the batch, drawn in (i, c) order
    folded = transform_batch(rows, rng=3)
    np.testing.assert_array_equal(np.moveaxis(out, axis, 1), folded.reshape(moved.shape))


def test_keys_give_a_channel_its_curve_whatever_the_batch():
    x = multimodal()
    whole = transform_batch(x, channel_axis=1, rng=9, keys=[10, 11, 12])
    part = transform_batch(x[1:2], channel_axis=1, rng=9, keys=[11])
    np.testing.assert_array_equal(whole[1:2], part)
    root = np.random.SeedSequence(9)
    for c in range(x.shape[1]):
        child = np.random.SeedSequence(root.entropy, spawn_key=(11, c))
        alone = transform_batch(x[1:2, c], rng=np.random.default_rng(child))
        np.testing.assert_array_equal(whole[1, c], alone[0])


def test_replay_out_and_mask_per_channel():
    x = multimodal()
    mask = x > 200
    out, curves = transform_batch(x, channel_axis=3, rng=1, mask=mask, return_curves=True)
    np.testing.assert_array_equal(
        transform_batch(x, channel_axis=3, mask=mask, curves=curves), out)
    target = np.empty(x.shape, np.float32)
    assert transform_batch(x, channel_axis=3, rng=1, mask=mask, out=target) is target
    np.testing.assert_array_equal(target, out)
    inline = np.empty(x.shape, np.float32)
    assert transform_batch(x, channel_axis=1, rng=1, out=inline) is inline
    np.testing.assert_array_equal(inline, transform_batch(x, channel_axis=1, rng=1))
    shared = transform_batch(x, channel_axis=1, rng=1, mask=mask[0])
    assert np.all(shared[:, ~mask[0]] == 0.0)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"channel_axis": 0}, ValueError, "must not be the batch axis"),
    ({"channel_axis": 4}, ValueError, "out of range"),
    ({"channel_axis": 1.0}, TypeError, "channel_axis must be an int"),
    ({"channel_axis": 1, "keys": [1, 2]}, ValueError, "one key per batch element"),
])
def test_bad_channel_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        transform_batch(multimodal(), rng=0, **kwargs)


def test_replay_with_another_channel_layout_is_refused():
    x = multimodal()
    _, curves = transform_batch(x, rng=0, return_curves=True)
    with pytest.raises(ValueError, match="of 4 channels"):
        transform_batch(x, channel_axis=1, curves=curves)


def test_messages_name_the_element_and_the_channel():
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"element 1, channel 2 holds no finite value"):
        transform_batch(x, channel_axis=1, nan_policy="omit", rng=0)
    with pytest.raises(ValueError, match=r"must be finite, but element 1, channel 2 holds"):
        transform_batch(x, channel_axis=1, rng=0)
