"""Import optional dependencies on first use, with a one-line fix when one is missing."""

from __future__ import annotations

import importlib

__all__ = ["MissingExtra", "require"]

#: The distribution to name in the message where it differs from the module.
DISTRIBUTIONS = {"SimpleITK": "SimpleITK", "PIL": "pillow"}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the fix."""


def require(module_name, extra, feature=None):
    """Import ``module_name`` or raise :class:`MissingExtra` naming the fix.

    Parameters
    ----------
    module_name : str
        Module to import, e.g. ``"matplotlib"`` or ``"monai.transforms"``.
    extra : str
        The ``rsgt-fast`` extra that installs it, e.g. ``"plot"``.
    feature : str, optional
        What needs it, for the message (``"preview"``); defaults to the
        extra's name.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingExtra
        An ``ImportError`` whose message is one line, e.g.
        ``rsgt-fast preview needs matplotlib: pip install "rsgt-fast[plot]"``.

    Examples
    --------
    >>> from rsgt_fast._optional import require
    >>> require("numpy", "core").__name__
    'numpy'
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        top = module_name.partition(".")[0]
        message = (f"rsgt-fast {feature or extra} needs {DISTRIBUTIONS.get(top, top)}: "
                   f'pip install "rsgt-fast[{extra}]"')
        raise MissingExtra(message, name=top) from exc
