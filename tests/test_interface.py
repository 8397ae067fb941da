"""The engine's internal contracts: short signatures, no private imports, serial by default."""

import ast
import inspect
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rsgt_fast
from rsgt_fast import _jit, _kernels, _layout

SOURCE = Path(rsgt_fast.__file__).resolve().parent


def _compiled_functions():
    for name, value in vars(_kernels).items():
        if isinstance(value, _jit.Kernel):
            yield name, value.serial.py_func
        elif hasattr(value, "py_func"):
            yield name, value.py_func


@pytest.mark.needs_jit
def test_no_compiled_function_takes_more_than_eight_arguments():
    functions = dict(_compiled_functions())
    assert len(functions) > 20  # the scan found the kernels and helpers
    wide = {name: len(inspect.signature(fn).parameters) for name, fn in functions.items()
            if len(inspect.signature(fn).parameters) > 8}
    assert wide == {}


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for path in sorted(SOURCE.glob("*.py")):
        tree = ast.parse(path.read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        if node.module is None:  # ``from . import _validate``: a module
                            modules.add(alias.asname or alias.name)
                        else:
                            offenders.append(f"{path.name}: from .{node.module} "
                                             f"import {alias.name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in modules and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                offenders.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert offenders == []


class Spy:
    """Records which variant of a kernel ran."""

    def __init__(self, kernel, monkeypatch):
        self.calls = []
        for variant in ("serial", "parallel"):
            original = getattr(kernel, variant)

            def record(*args, _variant=variant, _original=original):
                self.calls.append(_variant)
                return _original(*args)

            monkeypatch.setattr(kernel, variant, record)


def test_a_kernel_outside_an_engine_block_runs_serially(monkeypatch):
    spy = Spy(_kernels.lookup, monkeypatch)
    x = np.zeros((2, 1 << 20), np.uint8)
    table = np.zeros((2, 256), np.float32)
    out = np.empty(x.shape, np.float32)
    job = _layout.Job(chunk=1 << 16, offset=0, half_in=False, integer=False)
    _kernels.lookup(x, table, out, job)
    with _jit.engine(x.size):
        _kernels.lookup(x, table, out, job)
    expected = "serial" if _jit.serial_reason(x.size) else "parallel"
    assert spy.calls == ["serial", expected]


def test_engine_says_why_it_runs_serially(caplog):
    with caplog.at_level(logging.DEBUG, logger="rsgt_fast"):
        with _jit.engine(10) as variant:
            pass
    assert variant == "serial"
    assert "small input" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="rsgt_fast"), rsgt_fast.thread_limit(1):
        with _jit.engine(1 << 24):
            pass
    assert "thread limit of 1" in caplog.text or "forked" in caplog.text


def test_packed_columns_are_named_once():
    from rsgt_fast import _layout

    place = [_layout.LO, _layout.HI, _layout.UNIT_LO, _layout.SCALE, _layout.UNIT, _layout.LAST,
             _layout.BASE]
    assert sorted(place) == list(range(_layout.N_PLACE))
    assert sorted([_layout.FREQUENCY, _layout.AMPLITUDE, _layout.PHASE]) == [0, 1, 2]


def test_order_key_is_its_own_inverse_and_sorts_like_the_values():
    from rsgt_fast.scan import key_code

    rng = np.random.default_rng(0)
    cases = {
        "float16": rng.normal(0, 100, 500).astype(np.float16),
        "float32": np.concatenate([rng.normal(0, 1e20, 500), [0.0, -0.0, 1e-45, -1e-45]]),
        "float64": np.concatenate([rng.normal(0, 1e200, 500), [5e-324, -5e-324]]),
        "int8": rng.integers(-128, 128, 300), "uint8": rng.integers(0, 256, 300),
        "uint64": rng.integers(0, 2**64, 300, dtype=np.uint64, endpoint=False),
        "int64": rng.integers(-(2**63), 2**63 - 1, 300),
    }
    for name, values in cases.items():
        values = np.asarray(values).astype(name)
        view, (kind, magnitude, _) = key_code(values.dtype)
        width = view.itemsize * 8
        keys = _kernels.order_key_of(values.view(view).astype(np.int64), kind,
                                   np.int64(magnitude), width - 1)
        order = np.argsort(keys, kind="stable")
        sorted_values = values[order].astype(np.float64)
        assert (np.diff(sorted_values) >= 0).all(), name
        np.testing.assert_array_equal(_kernels.decode_keys(keys, kind, values.dtype).view(view),
                                      values.view(view))


@pytest.mark.parametrize("module", ["monai", "torchio"])
def test_integrations_check_options_like_the_engine(module):
    pytest.importorskip(module)
    import importlib

    mod = importlib.import_module(f"rsgt_fast.{module}")
    cls = mod.RandSmoothGrayValue if module == "monai" else mod.RandomSmoothGrayValue
    with pytest.raises(ValueError, match="max_frequency must be greater than min_frequency"):
        cls(min_frequency=2.0, max_frequency=1.0)
    with pytest.raises(TypeError, match="n_sinusoids must be an integer"):
        cls(n_sinusoids=2.5)


LITERAL_PROBE = """
import json
import numpy as np
import rsgt_fast
from rsgt_fast import _kernels
from rsgt_fast.augmentation import random_smooth_grayvalue_transform

ramp = np.arange(2 * 300) % 200
rsgt_fast.transform_batch(ramp.astype(np.int16).reshape(2, -1), rng=0, dtype="float16")
rsgt_fast.transform_batch((ramp * 70000).astype(np.int32).reshape(2, -1), rng=0)
rsgt_fast.transform_batch(ramp.astype(np.float32).reshape(2, -1), rng=0)
random_smooth_grayvalue_transform(ramp.astype(np.int16))
found = {}
for name, value in vars(_kernels).items():
    for dispatcher in (getattr(value, v, None) for v in ("serial", "parallel", "compiled")):
        if dispatcher is None and hasattr(value, "signatures"):
            dispatcher = value
        if dispatcher is not None:
            found.setdefault(name, set()).update(map(str, dispatcher.signatures))
print(json.dumps({name: sorted(sigs) for name, sigs in found.items()}))
"""


@pytest.mark.needs_jit
def test_no_helper_is_compiled_again_for_a_literal_argument(tmp_path):
    # numba compiles a helper once more for each integer literal it is called
    # with; on an empty cache every such copy costs compile time on first use.
    done = subprocess.run([sys.executable, "-c", LITERAL_PROBE], capture_output=True, text=True,
                          env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path)), timeout=600)
    assert done.returncode == 0, done.stderr
    signatures = json.loads(done.stdout.splitlines()[-1])
    assert len(signatures["sample_block"]) == 1  # the probe reached the curve code
    literal = {name: sigs for name, sigs in signatures.items()
               if any("Literal" in sig for sig in sigs)}
    assert literal == {}
