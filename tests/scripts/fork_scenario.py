"""Forked processes after the parent used parallel kernels.

Usage: ``python fork_scenario.py N_ITEMS OUT.npz``

1. The parent initialises numba's threading layer with large inputs and
   computes every item itself.
2. A ``multiprocessing`` pool of three processes made with the "fork"
   context maps :func:`rsgt_workloads.item_with_pid` over the indices.
3. A child made with a bare ``os.fork()`` computes one item, then forks a
   grandchild that computes another; both send their arrays back through
   files.

Everything computed elsewhere is compared with the parent's arrays; the
arrays are also written to OUT.npz.  Exit status 0 means all matched.
"""

import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rsgt_workloads  # noqa: E402

CHILD_TIMEOUT = 120


def _wait(pid):
    """Exit code of child ``pid`` (negative: killed by that signal), or None after the timeout."""
    import time

    deadline = time.monotonic() + CHILD_TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


def _fork_item(index, path, after=None):
    """Fork a child that saves ``item(index)`` to ``path``, then runs ``after()``.

    The child's exit status is 0, or ``after()``'s status when that is given.
    """
    pid = os.fork()
    if pid == 0:  # child
        status = 1
        try:
            batch, facade = rsgt_workloads.item(index)
            np.savez(path, batch=batch, facade=facade)
            status = 0 if after is None else after()
        finally:
            os._exit(status)
    return pid


def main():
    import multiprocessing

    n_items, out_path = int(sys.argv[1]), sys.argv[2]
    layer = rsgt_workloads.warm_up_parallel()
    expected = [rsgt_workloads.item(i) for i in range(n_items)]

    with multiprocessing.get_context("fork").Pool(3) as pool:
        results = pool.map_async(rsgt_workloads.item_with_pid, range(n_items)).get(CHILD_TIMEOUT)
    pool_pids = sorted({pid for _, pid, _, _ in results})
    pool_mismatches = [
        index for index, _, batch, facade in results
        if not (np.array_equal(batch, expected[index][0])
                and np.array_equal(facade, expected[index][1]))
    ]

    with tempfile.TemporaryDirectory() as tmp:
        child_file = os.path.join(tmp, "child.npz")
        grandchild_file = os.path.join(tmp, "grandchild.npz")

        def fork_grandchild():
            # Runs in the child, after it computed its own item.
            return 0 if _wait(_fork_item(1, grandchild_file)) == 0 else 3

        child_status = _wait(_fork_item(0, child_file, after=fork_grandchild))
        forked = {}
        for name, path, index in (("child", child_file, 0), ("grandchild", grandchild_file, 1)):
            if os.path.exists(path):
                with np.load(path) as data:
                    forked[name] = (index, data["batch"], data["facade"])
    fork_mismatches = [
        name for name, (index, batch, facade) in forked.items()
        if not (np.array_equal(batch, expected[index][0])
                and np.array_equal(facade, expected[index][1]))
    ]

    np.savez(
        out_path,
        pool_batch=np.stack([r[2] for r in sorted(results, key=lambda r: r[0])]),
        pool_facade=np.stack([r[3] for r in sorted(results, key=lambda r: r[0])]),
        parent_batch=np.stack([e[0] for e in expected]),
        parent_facade=np.stack([e[1] for e in expected]),
    )
    report = {
        "threading_layer": layer,
        "parent_pid": os.getpid(),
        "pool_pids": pool_pids,
        "pool_indices": sorted(r[0] for r in results),
        "pool_mismatches": pool_mismatches,
        "child_status": child_status,
        "forked_received": sorted(forked),
        "fork_mismatches": fork_mismatches,
    }
    print(json.dumps(report))
    ok = (not pool_mismatches and not fork_mismatches and child_status == 0
          and sorted(forked) == ["child", "grandchild"]
          and report["pool_indices"] == list(range(n_items)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
