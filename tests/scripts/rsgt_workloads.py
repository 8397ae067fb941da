"""Deterministic work items shared by the subprocess scenarios of the test suite.

Every item is a pure function of its index: the input batch is drawn from a
seeded generator, ``transform_batch`` gets the index as its ``rng`` and the
facade runs right after ``np.random.seed(index)``.  Whichever process computes
an item (the parent, a fork, a spawned worker, a thread) must therefore get
the same arrays.

This module must stay importable without torch, so that spawned DataLoader
workers and ``multiprocessing`` pools can unpickle :class:`AugmentDataset` by
reference.
"""

from __future__ import annotations

import os

import numpy as np

import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform

#: Shape of one item's batch: 2 x 40**3 = 128000 elements, far above the
#: size under which rsgt_fast runs serially anyway, so that without the
#: fork/worker guards the parallel kernels would be entered.
ITEM_SHAPE = (2, 40, 40, 40)

#: Shape of the warm-up batch the parent transforms before it forks.
WARMUP_SHAPE = (4, 64, 64, 64)


def ct_batch(seed, shape=ITEM_SHAPE, dtype=np.int16):
    """A reproducible CT-like batch in Hounsfield units.

    Parameters
    ----------
    seed : int
        Seed of the generator that draws the values.
    shape : tuple of int
        Shape of the batch.
    dtype : numpy dtype
        dtype of the returned array.

    Returns
    -------
    ndarray
        Values in [-1024, 3071] of the requested dtype.
    """
    rng = np.random.default_rng(10_000 + seed)
    return rng.integers(-1024, 3072, size=shape).astype(dtype)


def item(index):
    """The two augmentations of work item ``index``.

    Returns
    -------
    batch : ndarray
        ``transform_batch(ct_batch(index), rng=index)``, float32.
    facade : ndarray
        The facade applied to the first element after ``np.random.seed(index)``.
    """
    x = ct_batch(index)
    batch = rsgt_fast.transform_batch(x, rng=index)
    np.random.seed(index)
    facade = random_smooth_grayvalue_transform(x, dtype="float32")
    return batch, facade


def item_with_pid(index):
    """:func:`item` plus the id of the process that computed it."""
    batch, facade = item(index)
    return index, os.getpid(), batch, facade


def warm_up_parallel():
    """Run the kernels on inputs large enough for their parallel variants.

    Returns
    -------
    str or None
        The numba threading layer that the parallel region initialised, or
        None where no parallel region ran (a single-core machine, where
        rsgt_fast always runs serially).
    """
    import numba

    x = ct_batch(-1, WARMUP_SHAPE)
    rsgt_fast.transform_batch(x, rng=0)
    rsgt_fast.transform_batch(x.astype(np.float32), rng=0)
    np.random.seed(0)
    random_smooth_grayvalue_transform(x[0])
    rsgt_fast.normalize_ct_scan(x)
    rsgt_fast.normalize_mr_scan(x)
    try:
        return numba.threading_layer()
    except ValueError:  # raised while no parallel region has run
        return None


class AugmentDataset:
    """A map-style dataset whose item ``i`` is ``item(i)`` as a dict.

    It needs no base class: ``torch.utils.data.DataLoader`` accepts any object
    with ``__len__`` and ``__getitem__``.
    """

    def __init__(self, n_items):
        self.n_items = n_items

    def __len__(self):
        return self.n_items

    def __getitem__(self, index):
        batch, facade = item(index)
        return {
            "index": index,
            "pid": os.getpid(),
            "batch": batch,
            "facade": facade,
        }
