"""A torch DataLoader with worker processes, started after the parent used parallel kernels.

Usage: ``python loader_scenario.py CONTEXT N_ITEMS OUT.npz``

The parent first runs rsgt_fast on large inputs (so numba's threading layer
is initialised), computes every item itself, then iterates a DataLoader with
three workers started with the multiprocessing CONTEXT ("fork" or "spawn").
The items the workers produce and the parent's own are written to OUT.npz.
Exit status 0 means every batch arrived and matched; anything else is a
failure (a worker killed by OpenMP shows up as a DataLoader error or a
non-zero status).
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rsgt_workloads  # noqa: E402


def main():
    context, n_items, out_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    layer = rsgt_workloads.warm_up_parallel()
    expected = [rsgt_workloads.item(i) for i in range(n_items)]

    import torch.utils.data as data

    loader = data.DataLoader(
        rsgt_workloads.AugmentDataset(n_items),
        batch_size=2,
        num_workers=3,
        multiprocessing_context=context,
        timeout=120,
    )
    received = {}
    pids = set()
    for batch in loader:
        for k, index in enumerate(batch["index"].tolist()):
            received[index] = (batch["batch"][k].numpy(), batch["facade"][k].numpy())
            pids.add(int(batch["pid"][k]))

    mismatches = [
        i for i in range(n_items)
        if i not in received
        or not np.array_equal(received[i][0], expected[i][0])
        or not np.array_equal(received[i][1], expected[i][1])
    ]
    np.savez(
        out_path,
        worker_batch=np.stack([received[i][0] for i in sorted(received)]),
        worker_facade=np.stack([received[i][1] for i in sorted(received)]),
        parent_batch=np.stack([e[0] for e in expected]),
        parent_facade=np.stack([e[1] for e in expected]),
        indices=np.array(sorted(received)),
    )
    report = {
        "threading_layer": layer,
        "received": sorted(received),
        "worker_pids": sorted(pids),
        "parent_pid": os.getpid(),
        "mismatches": mismatches,
    }
    print(json.dumps(report))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
