"""rsgt_fast: random smooth gray value transformations, batched and compiled.

The public API:

* :func:`transform_batch` -- a batch with its own random curve per element;
* :func:`rsgt_fast.augmentation.random_smooth_grayvalue_transform` -- drop-in
  for rsgt 1.1.0;
* :func:`rsgt_fast.normalization.normalize_ct_scan` and
  :func:`~rsgt_fast.normalization.normalize_mr_scan`;
* :class:`Curves` -- the applied transfer functions, for inspection and plots;
* :func:`thread_limit` -- cap the threads of the calls in a block.
"""

from ._jit import thread_limit
from .augmentation import random_smooth_grayvalue_transform
from .batch import transform_batch
from .curves import Curves
from .normalization import normalize_ct_scan, normalize_mr_scan

__version__ = "0.1.0"

__all__ = [
    "Curves",
    "__version__",
    "normalize_ct_scan",
    "normalize_mr_scan",
    "random_smooth_grayvalue_transform",
    "thread_limit",
    "transform_batch",
]
