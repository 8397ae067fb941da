"""rsgt_fast in worker processes started after the parent used the parallel kernels.

GNU OpenMP terminates a forked child that enters a parallel region once its
parent has used one, so every scenario runs in a fresh Python subprocess
whose history is known (it initialises the threading layer first, then
forks or spawns).  A killed worker, a hang or a wrong array fails the test
instead of taking the test session down with it.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

#: These scenarios exercise numba's threading layer and cache: compiled kernels only.
pytestmark = pytest.mark.needs_jit

SCRIPTS = Path(__file__).resolve().parent / "scripts"
N_ITEMS = 12
#: Seconds a scenario may take; generous because a cold numba cache means
#: every worker may compile the serial kernels itself.
SCENARIO_TIMEOUT = 300


def _load_workloads():
    spec = importlib.util.spec_from_file_location(
        "rsgt_workloads_for_tests", SCRIPTS / "rsgt_workloads.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


workloads = _load_workloads()


@pytest.fixture(scope="module")
def expected_items():
    """Every work item computed in this (the test) process."""
    return [workloads.item(i) for i in range(N_ITEMS)]


def run_scenario(script, *args):
    """Run ``tests/scripts/<script>`` in a fresh interpreter; return its JSON report.

    Fails the test, with the scenario's output, on a non-zero exit status
    (including death by a signal) or when it runs past ``SCENARIO_TIMEOUT``.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SCRIPTS), env.get("PYTHONPATH")) if p
    )
    command = [sys.executable, str(SCRIPTS / script), *map(str, args)]
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT, env=env
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{script} {args} hung for more than {SCENARIO_TIMEOUT} s\n"
            f"stdout:\n{exc.stdout}\nstderr:\n{exc.stderr}"
        )
    if proc.returncode != 0:
        pytest.fail(
            f"{script} {args} exited with status {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_items_equal(batches, facades, expected, where):
    assert len(batches) == len(facades) == len(expected)
    for index, (batch, facade) in enumerate(zip(batches, facades)):
        np.testing.assert_array_equal(
            batch, expected[index][0], err_msg=f"transform_batch, item {index}, {where}"
        )
        np.testing.assert_array_equal(
            facade, expected[index][1], err_msg=f"facade, item {index}, {where}"
        )


def test_work_items_are_deterministic_and_valid(expected_items):
    """The reference itself: repeatable, in [0, 1], and different per seed."""
    again = workloads.item(3)
    np.testing.assert_array_equal(again[0], expected_items[3][0])
    np.testing.assert_array_equal(again[1], expected_items[3][1])
    for batch, facade in expected_items:
        assert batch.shape == workloads.ITEM_SHAPE and batch.dtype == np.float32
        assert facade.shape == workloads.ITEM_SHAPE and facade.dtype == np.float32
        assert 0.0 <= batch.min() and batch.max() <= 1.0
        assert 0.0 <= facade.min() and facade.max() <= 1.0
    assert not np.array_equal(expected_items[0][0], expected_items[1][0])
    assert not np.array_equal(expected_items[0][1], expected_items[1][1])


@pytest.mark.timeout(SCENARIO_TIMEOUT + 60, method="thread")
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_after_parallel_use(context, expected_items, tmp_path):
    """Three DataLoader workers deliver every batch, equal to the parent's arrays."""
    out = tmp_path / "loader.npz"
    report = run_scenario("loader_scenario.py", context, N_ITEMS, out)

    assert report["received"] == list(range(N_ITEMS))
    assert report["mismatches"] == []
    assert report["parent_pid"] not in report["worker_pids"]
    assert len(report["worker_pids"]) == 3
    with np.load(out) as data:
        assert data["indices"].tolist() == list(range(N_ITEMS))
        # The scenario's parent and this process agree ...
        assert_items_equal(data["parent_batch"], data["parent_facade"], expected_items,
                           "scenario parent vs test process")
        # ... and so do the workers.
        assert_items_equal(data["worker_batch"], data["worker_facade"], expected_items,
                           f"{context} DataLoader worker vs test process")


@pytest.mark.timeout(SCENARIO_TIMEOUT + 60, method="thread")
def test_fork_pool_and_nested_fork_after_parallel_use(expected_items, tmp_path):
    """A fork Pool, a bare fork child and its own fork child all match the parent."""
    out = tmp_path / "fork.npz"
    report = run_scenario("fork_scenario.py", N_ITEMS, out)

    assert report["pool_indices"] == list(range(N_ITEMS))
    assert report["pool_mismatches"] == []
    assert report["parent_pid"] not in report["pool_pids"]
    assert report["child_status"] == 0
    assert report["forked_received"] == ["child", "grandchild"]
    assert report["fork_mismatches"] == []
    with np.load(out) as data:
        assert_items_equal(data["parent_batch"], data["parent_facade"], expected_items,
                           "scenario parent vs test process")
        assert_items_equal(data["pool_batch"], data["pool_facade"], expected_items,
                           "fork Pool worker vs test process")


def test_every_entry_point_survives_a_fork_after_parallel_use():
    """Facade, transform_batch (plain, keys, replay) and both normalisations, int, float and
    float16 input, every output dtype: a forked child runs them all serially, bit for bit."""
    report = run_scenario("entry_points_fork.py")
    assert report["child_exit"] == 0, f"child killed while running {report['last_started']!r}"
    assert report["finished"] == report["cases"] == 54
    assert report["mismatches"] == []
