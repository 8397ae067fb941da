"""rsgt_fast.dask on a real dask.distributed cluster of worker processes, in and out of core."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")
pytest.importorskip("psutil")

import rsgt_fast  # noqa: E402
import rsgt_fast.dask as rdask  # noqa: E402
import worker_memory  # noqa: E402

#: Per worker; the out-of-core test moves several times this through each worker.
MEMORY_LIMIT = 512 << 20


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, each limited to MEMORY_LIMIT bytes."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=MEMORY_LIMIT, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            yield client


def test_distributed_equals_in_memory(client):
    x = np.random.default_rng(0).integers(-1024, 3072, size=(6, 20, 16, 12), dtype=np.int16)
    x[2] = x[2] // 8
    lazy, lazy_curves = rdask.transform_batch(da.from_array(x, chunks=(2, 7, 16, 5)), rng=4,
                                              return_curves=True)
    out, curves = client.compute([lazy, lazy_curves], sync=True)
    expected, expected_curves = rsgt_fast.transform_batch(x, rng=4, return_curves=True)
    np.testing.assert_array_equal(out, expected)
    assert curves == expected_curves
    # Both workers took part.
    assert len(client.scheduler_info()["workers"]) == 2


def test_distributed_float_input_with_keys(client):
    x = np.random.default_rng(1).standard_normal((4, 9, 30)).astype(np.float32)
    lazy = rdask.transform_batch(da.from_array(x, chunks=(1, 5, 7)), rng=8, keys=[3, 1, 4, 1])
    np.testing.assert_array_equal(client.compute(lazy, sync=True),
                                  rsgt_fast.transform_batch(x, rng=8, keys=[3, 1, 4, 1]))


@pytest.mark.slow
def test_out_of_core_zarr_stays_within_each_workers_memory_limit(client, tmp_path):
    # 768 MiB of int16 on disk in, 1.5 GiB of float32 out: 1.5 and 3 times each
    # worker's whole memory limit (a worker's own baseline with freshly compiled
    # kernels is about 320 MiB, and dask pauses a worker at 80% of its limit).
    shape, chunks = (24, 256, 256, 256), (1, 64, 256, 256)
    source = da.random.default_rng(0).integers(-1024, 3072, size=shape, dtype=np.int16,
                                               chunks=chunks)
    source.to_zarr(str(tmp_path / "in.zarr"))
    x = da.from_zarr(str(tmp_path / "in.zarr"))
    assert x.nbytes >= 1.5 * MEMORY_LIMIT
    workers = set(client.scheduler_info()["workers"])
    client.run(worker_memory.start_sampler)
    lazy, lazy_curves = rdask.transform_batch(x, rng=6, return_curves=True)
    lazy.to_zarr(str(tmp_path / "out.zarr"))
    peaks = client.run(worker_memory.stop_sampler)
    assert set(client.scheduler_info()["workers"]) == workers  # none was restarted
    assert max(peaks.values()) < MEMORY_LIMIT
    # Spot checks against the in-memory engine with the same curves.
    curves = client.compute(lazy_curves, sync=True)
    written = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    stored = zarr.open_array(str(tmp_path / "in.zarr"), mode="r")
    for b in (0, 13, 23):
        np.testing.assert_array_equal(
            written[b], rsgt_fast.transform_batch(stored[b:b + 1], curves=curves[b:b + 1])[0])


# ---------------------------------------------------------------- the command line

pytest.importorskip("tqdm")
from rsgt_fast.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def npy_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(5)
    paths = []
    for i in range(6):
        path = folder / f"scan{i}.npy"
        np.save(path, rng.integers(-1024, 3072, size=(8, 9, 7 + i), dtype=np.int16))
        paths.append(path)
    return paths


def outputs(folder):
    return {p.name: np.load(p) for p in sorted(folder.iterdir())}


def test_augment_on_a_cluster_equals_the_serial_run(capsys, tmp_path, client, npy_inputs):
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not an array")
    files = [str(p) for p in npy_inputs[:3]] + [str(broken)] + [str(p) for p in npy_inputs[3:]]
    common = ["--n", "2", "--seed", "17"]
    assert main(["augment", *map(str, npy_inputs), "-o", str(tmp_path / "serial"), *common]) == 0
    capsys.readouterr()
    status = main(["augment", *files, "-o", str(tmp_path / "cluster"), *common, "--key", "name",
                   "--scheduler", client.scheduler.address])
    err = capsys.readouterr().err.splitlines()
    assert status == 1
    assert [line for line in err if "broken.npy" in line and "augment:" in line][:1] == [
        line for line in err if "broken.npy" in line]
    assert err[-1].endswith("6 of 7 files augmented, 12 images written to "
                            f"{tmp_path / 'cluster'}; 1 failed")
    # --key name is independent of the position: compare with a serial run by name.
    assert main(["augment", *map(str, npy_inputs), "-o", str(tmp_path / "by_name"), *common,
                 "--key", "name"]) == 0
    by_name, cluster = outputs(tmp_path / "by_name"), outputs(tmp_path / "cluster")
    assert by_name.keys() == cluster.keys() and len(by_name) == 12
    for name in by_name:
        np.testing.assert_array_equal(cluster[name], by_name[name])


def test_augment_with_relative_paths_on_workers_elsewhere(capsys, tmp_path, client, npy_inputs,
                                                          monkeypatch):
    # The workers were started in another folder: relative paths must not reach them.
    monkeypatch.chdir(npy_inputs[0].parent)
    names = [p.name for p in npy_inputs[:2]]
    assert main(["augment", *names, "-o", "out_rel", "--seed", "1",
                 "--scheduler", client.scheduler.address]) == 0
    assert sorted(p.name for p in (npy_inputs[0].parent / "out_rel").iterdir()) == [
        "scan0_rsgt0.npy", "scan1_rsgt0.npy"]


def test_augment_with_local_workers_equals_the_serial_run(capsys, tmp_path, npy_inputs):
    common = ["--n", "1", "--seed", "3"]
    assert main(["augment", *map(str, npy_inputs), "-o", str(tmp_path / "serial"), *common]) == 0
    assert main(["augment", *map(str, npy_inputs), "-o", str(tmp_path / "workers"), *common,
                 "--workers", "2"]) == 0
    serial, workers = outputs(tmp_path / "serial"), outputs(tmp_path / "workers")
    assert serial.keys() == workers.keys() and len(serial) == 6
    for name in serial:
        np.testing.assert_array_equal(workers[name], serial[name])


def test_augment_zarr_batch(capsys, tmp_path, client):
    x = np.random.default_rng(6).integers(0, 4096, size=(5, 16, 12, 10), dtype=np.uint16)
    da.from_array(x, chunks=(2, 8, 12, 5)).to_zarr(str(tmp_path / "vol.zarr"))
    status = main(["augment", str(tmp_path / "vol.zarr"), "-o", str(tmp_path / "out"),
                   "--n", "2", "--seed", "9"])
    assert status == 0, capsys.readouterr().err
    seed = np.random.SeedSequence(9).spawn(1)[0]
    for k, child in enumerate(seed.spawn(2)):
        written = zarr.open_array(str(tmp_path / "out" / f"vol_rsgt{k}.zarr"), mode="r")
        assert written.chunks == (2, 8, 12, 5)
        np.testing.assert_array_equal(
            written[...], rsgt_fast.transform_batch(x, rng=np.random.default_rng(child)))


def test_warm_workers_runs_once_on_every_worker():
    # Compiling many kernels takes more memory than the module cluster's limit.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            done = rdask.warm_workers(client, ["uint8"])
            assert set(done) == set(client.scheduler_info()["workers"])
            assert all(seconds >= 0 for seconds in done.values())
