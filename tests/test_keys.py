"""Per-sample keys: a sample's curve depends on the root seed and its key, nothing else."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import naive
import rsgt_fast
from rsgt_fast import transform_batch


@pytest.fixture
def x():
    return np.random.default_rng(0).integers(-1024, 3072, size=(5, 7, 6), dtype=np.int16)


def test_parameters_are_three_uniform_draws():
    # The documented stream: what three Generator.uniform calls give.
    for n, k in [(1, 4), (5, 3), (8, 4), (8, 6), (40, 4)]:  # Python floats, then numpy
        _, curves = transform_batch(np.zeros((n, 2)), rng=np.random.default_rng(n), n_sinusoids=k,
                                    min_frequency=0.3, max_frequency=2.0, return_curves=True)
        f, a, o = naive.uniform_draws(np.random.default_rng(n), n, k, 0.3, 2.0)
        np.testing.assert_array_equal(curves.frequencies, f)
        np.testing.assert_array_equal(curves.amplitudes, a)
        np.testing.assert_array_equal(curves.offsets, o)


def test_a_curve_follows_its_key_not_its_position(x):
    keys = [40, 3, 17, 8, 99]
    out = transform_batch(x, rng=123, keys=keys)
    order = [3, 0, 4, 1, 2]
    shuffled = transform_batch(x[order], rng=123, keys=[keys[i] for i in order])
    np.testing.assert_array_equal(shuffled, out[order])
    alone = [transform_batch(x[i:i + 1], rng=123, keys=[keys[i]])[0] for i in range(len(x))]
    np.testing.assert_array_equal(np.stack(alone), out)


def test_key_k_is_numpys_k_th_child(x):
    root = np.random.SeedSequence(77)
    out = transform_batch(x, rng=77, keys=range(len(x)))
    for i, child in enumerate(root.spawn(len(x))):
        np.testing.assert_array_equal(out[i], transform_batch(x[i:i + 1], rng=child)[0])


def test_a_seed_sequence_root_extends_its_own_spawn_key(x):
    root = np.random.SeedSequence(5).spawn(3)[2]
    out = transform_batch(x[:2], rng=root, keys=[0, 1])
    for i, child in enumerate(root.spawn(2)):
        np.testing.assert_array_equal(out[i], transform_batch(x[i:i + 1], rng=child)[0])
    assert not np.array_equal(out, transform_batch(x[:2], rng=5, keys=[0, 1]))


def test_keys_give_distinct_curves(x):
    _, curves = transform_batch(x, rng=1, keys=[0, 1, 2, 3, 4], return_curves=True)
    assert len({tuple(row) for row in curves.frequencies}) == 5


def test_keys_do_not_depend_on_threads_or_process(x):
    expected = transform_batch(x, rng=2024, keys=[5, 6, 7, 8, 9])
    with rsgt_fast.thread_limit(1):
        np.testing.assert_array_equal(transform_batch(x, rng=2024, keys=[5, 6, 7, 8, 9]), expected)
    script = textwrap.dedent("""
        import sys, numpy as np
        from rsgt_fast import transform_batch
        x = np.random.default_rng(0).integers(-1024, 3072, size=(5, 7, 6), dtype=np.int16)
        out = transform_batch(x[2:], rng=2024, keys=[7, 8, 9])
        sys.stdout.write(out.tobytes().hex())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=300)
    other = np.frombuffer(bytes.fromhex(proc.stdout), np.float32).reshape(3, 7, 6)
    np.testing.assert_array_equal(other, expected[2:])


@pytest.mark.parametrize("rng,error,match", [
    (np.random.default_rng(0), TypeError, "Generator has no reproducible root"),
    (None, TypeError, "keys need rng to be an int or a numpy.random.SeedSequence"),
    (1.5, TypeError, "keys need rng"),
    (-1, ValueError, "non-negative"),
])
def test_keys_need_a_reproducible_root(x, rng, error, match):
    with pytest.raises(error, match=match):
        transform_batch(x, rng=rng, keys=range(5))


@pytest.mark.parametrize("keys,error,match", [
    ([0, 1, 2], ValueError, "one key per batch element"),
    ([[0, 1, 2, 3, 4]], ValueError, "1-D"),
    ([0, 1, -2, 3, 4], ValueError, "non-negative"),
    ([0, 1, 2.5, 3, 4], TypeError, "integers"),
    ([0, 1, True, 3, 4], TypeError, "integers"),
    ("01234", TypeError, "sequence of non-negative integers"),
    (7, TypeError, "sequence of non-negative integers"),
])
def test_bad_keys_are_refused(x, keys, error, match):
    with pytest.raises(error, match=match):
        transform_batch(x, rng=0, keys=keys)


def test_numpy_integer_keys_and_huge_keys_work(x):
    a = transform_batch(x[:2], rng=0, keys=np.array([2**40, 3], dtype=np.uint64))
    b = transform_batch(x[:2], rng=0, keys=[2**40, 3])
    np.testing.assert_array_equal(a, b)
