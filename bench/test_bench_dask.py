"""Dask: the cost of the graph, the command line on a cluster, and an out-of-core run.

* Case 10: ``rsgt_fast.dask.transform_batch(...).compute()`` on the threaded
  scheduler against the in-memory call on the same 8 x 128^3 int16 batch,
  each element's own range (one chunk per element), and against the same
  graph's bare cost: a Dask ``astype(float32)`` of that array.
* Case 11: ``rsgt-fast augment`` of 16 ``.npy`` volumes, serial against a
  running ``LocalCluster`` of 2 single-threaded worker processes
  (``--scheduler``; the cluster's start-up is not timed).
* Case 12: an int16 zarr array on disk transformed to a float32 zarr array by
  two worker processes with a memory limit each; throughput and the peak RSS
  of each worker, sampled every 10 ms, go to ``extra_info``.
"""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")
pytest.importorskip("psutil")
pytest.importorskip("tqdm")

import rsgt_fast  # noqa: E402
import rsgt_fast.dask as rdask  # noqa: E402
import worker_memory  # noqa: E402
from rsgt_fast.cli import main  # noqa: E402

WORKER_MEMORY = 512 << 20


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=WORKER_MEMORY,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.mark.parametrize("contender", ["dask", "in-memory", "dask-astype"])
def test_dask_graph_overhead(benchmark, timed, ct_batch, contender):
    benchmark.group = "10 rsgt_fast.dask vs in-memory, int16 CT batch, own min/max"
    expected = rsgt_fast.transform_batch(ct_batch, rng=1)
    if contender == "dask-astype":
        x = da.from_array(ct_batch, chunks=(1,) + ct_batch.shape[1:])
        result = timed(lambda: x.astype(np.float32).compute(scheduler="threads"), role="other",
                       contender="Dask's own cost: x.astype(float32).compute(), threads")
        np.testing.assert_array_equal(result, ct_batch)
        return
    if contender == "dask":
        x = da.from_array(ct_batch, chunks=(1,) + ct_batch.shape[1:])

        def run():
            return rdask.transform_batch(x, rng=1).compute(scheduler="threads")

        result = timed(run, role="other",
                       contender="rsgt_fast.dask.transform_batch(...).compute(), threads")
    else:
        result = timed(lambda: rsgt_fast.transform_batch(ct_batch, rng=1), role="other",
                       contender="rsgt_fast.transform_batch")
    np.testing.assert_array_equal(result, expected)


@pytest.fixture(scope="module")
def volumes(tmp_path_factory, full_size):
    folder = tmp_path_factory.mktemp("volumes")
    edge = 96 if full_size else 16
    rng = np.random.default_rng(3)
    paths = []
    for i in range(16):
        path = folder / f"v{i:02d}.npy"
        np.save(path, rng.integers(-1024, 3072, size=(edge,) * 3, dtype=np.int16))
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("contender", ["serial", "cluster"])
def test_augment_on_a_cluster(benchmark, timed, client, volumes, tmp_path, contender):
    benchmark.group = "11 rsgt-fast augment, 16 int16 volumes, --n 2"
    extra = [] if contender == "serial" else ["--scheduler", client.scheduler.address]
    name = "serial" if contender == "serial" else "2 worker processes (--scheduler)"

    def run():
        return main(["augment", *volumes, "-o", str(tmp_path), "--n", "2", "--seed", "0",
                     "--overwrite", *extra])

    assert timed(run, role="other", contender=f"augment, {name}") == 0
    assert len(list(tmp_path.iterdir())) == 32


def test_out_of_core_zarr(benchmark, client, tmp_path, full_size):
    benchmark.group = "12 out of core: zarr int16 -> zarr float32, 2 workers"
    shape = (24, 256, 256, 256) if full_size else (4, 32, 32, 32)
    chunks = (1, 64, 256, 256) if full_size else (1, 16, 32, 32)
    da.random.default_rng(0).integers(-1024, 3072, size=shape, dtype=np.int16,
                                      chunks=chunks).to_zarr(str(tmp_path / "in.zarr"))
    x = da.from_zarr(str(tmp_path / "in.zarr"))
    peaks = []

    def run():
        client.run(worker_memory.start_sampler)
        rdask.transform_batch(x, rng=2).to_zarr(str(tmp_path / "out.zarr"), overwrite=True)
        peaks.append(max(client.run(worker_memory.stop_sampler).values()))

    benchmark.pedantic(run, rounds=1 if not full_size else 3, iterations=1)
    median = benchmark.stats.stats.median if benchmark.stats else None
    benchmark.extra_info.update(
        contender="rsgt_fast.dask.transform_batch(...).to_zarr(...)", role="other",
        input_mib=x.nbytes / 2**20, worker_limit_mib=WORKER_MEMORY / 2**20,
        peak_worker_rss_mib=max(peaks) / 2**20,
        throughput_mib_s=None if not median else x.nbytes / 2**20 / median)
    assert max(peaks) < WORKER_MEMORY
    written = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    assert written.shape == shape and written.dtype == np.float32
