"""Benchmark data, sizes and reference checks shared by the benchmark modules.

With benchmarking disabled (the default test run) every benchmark runs once
on small arrays as a smoke test; with ``--benchmark-enable`` the arrays have
their real sizes.

Data
----
* CT: a synthetic body phantom per volume (an ellipsoid of soft tissue with
  two lungs, a bony shell and a few brighter organs, Gaussian noise of 20 HU,
  air outside), int16 in Hounsfield units clipped to [-1024, 3071], with a
  small metal implant at 3071 and air at -1024 so that each volume's own range
  is the full CT range.
* MR: float32 ~ N(500, 150) clipped at 0, independent voxels.
* uint16: uniform random over 0..65535, each volume holding both ends.
"""

from __future__ import annotations

import os
import time
import types

import numpy as np
import pytest

from naive import rsgt_with_parameters

CT_RANGE = (-1024, 3071)

#: Shapes used when benchmarking (full) and in the smoke run.
SHAPES = {
    "batch": ((8, 128, 128, 128), (2, 32, 32, 32)),
    "volume": ((128, 128, 128), (32, 32, 32)),
    "slice": ((512, 512), (64, 64)),
    "large": ((256, 256, 256), (48, 48, 48)),
}


def _library_env(**overrides):
    env = {k: v for k, v in os.environ.items() if k != "RSGT_FAST_COMPILE_AFTER"}
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def library_env():
    """``library_env(**overrides)``: the environment of a fresh process started as a user's.

    The session runs the parallel kernels from the first call (see the root
    ``conftest.py``); a start-up benchmark measures the library's default.
    """
    return _library_env


def ct_phantom(shape, rng):
    """One synthetic int16 CT volume (or slice) of ``shape`` in HU.

    Parameters
    ----------
    shape : tuple of int
        2-D or 3-D shape.
    rng : numpy.random.Generator
        Source of the random geometry and noise.

    Returns
    -------
    ndarray
        int16 values in [-1024, 3071], both ends present.
    """
    axes = np.ogrid[tuple(slice(-1.0, 1.0, complex(0, n)) for n in shape)]
    axes = [a.astype(np.float32) for a in axes]

    def ellipsoid(center, radii):
        return sum(((a - c) / r) ** 2 for a, c, r in zip(axes, center, radii)) <= 1.0

    radii = rng.uniform(0.75, 0.95, size=len(shape))
    hu = np.full(shape, -1000.0, np.float32)
    hu[ellipsoid([0.0] * len(shape), radii)] = 700.0  # bony shell
    hu[ellipsoid([0.0] * len(shape), radii * 0.9)] = 40.0  # soft tissue
    lung = radii * np.array([0.3] + [0.6] * (len(shape) - 1))
    for side in (-0.35, 0.35):
        hu[ellipsoid([side] + [0.0] * (len(shape) - 1), lung)] = -850.0
    for _ in range(3):  # organs
        center = rng.uniform(-0.3, 0.3, size=len(shape))
        hu[ellipsoid(center, rng.uniform(0.05, 0.15, size=len(shape)))] = rng.uniform(60, 300)
    hu += rng.standard_normal(shape, dtype=np.float32) * 20.0
    implant = tuple(slice(n // 2, n // 2 + max(1, n // 32)) for n in shape)
    hu[implant] = CT_RANGE[1]
    hu.flat[0] = CT_RANGE[0]
    return np.clip(hu, *CT_RANGE).astype(np.int16)


def _shape(full, name):
    return SHAPES[name][0 if full else 1]


def _mr_like(shape, rng):
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= 150.0
    x += 500.0
    return np.maximum(x, 0.0, out=x)


@pytest.fixture(scope="session")
def full_size(request):
    """Whether benchmarks are enabled, and so the data has its real size."""
    config = request.config
    return bool(config.getoption("benchmark_enable")) or not config.getoption("benchmark_disable")


@pytest.fixture(scope="session")
def ct_batch(full_size):
    """A batch of int16 CT phantoms (8 x 128^3)."""
    rng = np.random.default_rng(1)
    n, *shape = _shape(full_size, "batch")
    return np.stack([ct_phantom(tuple(shape), rng) for _ in range(n)])


@pytest.fixture(scope="session")
def ct_volume(full_size):
    """One int16 CT phantom volume (128^3)."""
    return ct_phantom(_shape(full_size, "volume"), np.random.default_rng(2))


@pytest.fixture(scope="session")
def ct_slice(full_size):
    """One int16 CT phantom slice (512^2)."""
    return ct_phantom(_shape(full_size, "slice"), np.random.default_rng(3))


@pytest.fixture(scope="session")
def ct_large(full_size):
    """One large int16 CT phantom volume (256^3), for the normalisations."""
    return ct_phantom(_shape(full_size, "large"), np.random.default_rng(4))


@pytest.fixture(scope="session")
def mr_batch(full_size):
    """A batch of float32 MR-like volumes (8 x 128^3)."""
    return _mr_like(_shape(full_size, "batch"), np.random.default_rng(5))


@pytest.fixture(scope="session")
def mr_large(full_size):
    """One large float32 MR-like volume (256^3), for the normalisations."""
    return _mr_like(_shape(full_size, "large"), np.random.default_rng(6))


@pytest.fixture(scope="session")
def uint16_batch(full_size):
    """A batch of uint16 volumes spanning 0..65535 (8 x 128^3)."""
    x = np.random.default_rng(7).integers(0, 1 << 16, size=_shape(full_size, "batch"),
                                          dtype=np.uint16)
    flat = x.reshape(len(x), -1)
    flat[:, 0], flat[:, 1] = 0, 65535
    return x


@pytest.fixture(scope="session")
def make_ct():
    """The phantom generator, ``make_ct(shape, rng)``, for modules that need their own sizes."""
    return ct_phantom


@pytest.fixture
def timed(benchmark):
    """``timed(fn, **info)``: benchmark ``fn`` and return its result.

    When benchmarking is enabled ``fn`` is called first, untimed, so that
    numba's compilation or cache loading is not part of the timing, and then
    again, up to ten calls in all, for about a second: the first calls of a
    process that allocate a large output meet the operating system's warm-up
    too (calls of 100-300 ms instead of 5 ms were seen for a 64 MiB output,
    with this code and with the code before it), which would otherwise set
    pytest-benchmark's calibration to a few rounds around them; ``info``
    goes to the benchmark's ``extra_info``: ``contender``, the label shown in
    the report, and ``role``, one of ``'ours'``, ``'ours_out'``, ``'rsgt'``,
    ``'floor'`` and ``'floor_fresh'`` (the report compares ``ours`` rows with
    the others), or none for a row shown without ratios.
    """

    def run(fn, **info):
        benchmark.extra_info.update(info)
        if not benchmark.disabled:
            start = time.perf_counter()
            for _ in range(10):
                fn()
                if time.perf_counter() - start > 1.0:
                    break
        return benchmark(fn)

    return run


def assert_matches_rsgt(x, out, curves, min_max_val, dtype="float32"):
    """Check a ``transform_batch`` result on integer input against rsgt, element by element.

    Each element must equal rsgt's result for the same curve to within 1e-6
    plus half an ulp of ``dtype`` at 1.
    """
    atol = 1e-6 + float(np.finfo(dtype).eps) / 2
    assert out.shape == x.shape and out.dtype == np.dtype(dtype)
    for b in range(len(x)):
        expected = rsgt_with_parameters(
            x[b], curves.frequencies[b], curves.amplitudes[b], curves.offsets[b],
            min_max_val=min_max_val, dtype="float64",
        )
        np.testing.assert_allclose(out[b].astype(np.float64), expected, rtol=0, atol=atol)


def assert_unit_interval(out, shape, dtype="float32"):
    """Check shape, dtype and that every value is in [0, 1]."""
    out = np.asarray(out)
    assert out.shape == tuple(shape) and out.dtype == np.dtype(dtype)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.fixture(scope="session")
def checks():
    """The reference checks, as a namespace for the benchmark modules."""
    return types.SimpleNamespace(
        rsgt_with_parameters=rsgt_with_parameters,
        matches_rsgt=assert_matches_rsgt,
        unit_interval=assert_unit_interval,
    )
