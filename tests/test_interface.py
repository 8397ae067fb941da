"""The engine's internal contracts: each formula once, short signatures, no private imports."""

import ast
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rsgt_fast
from rsgt_fast import _cpu, _formulas, _jit, _layout

SOURCE = Path(rsgt_fast.__file__).resolve().parent


def _functions_calling(names):
    """``module:function`` of every function under ``src`` that calls one of ``names``
    (``math.sin``, ``np.sin``, ``torch.sin``, ``tl.sin``... alike; nested functions count
    with the function they are in)."""
    found = set()
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for call in ast.walk(node):
                    fn = getattr(call, "func", None)
                    if isinstance(call, ast.Call) and (
                            getattr(fn, "attr", None) or getattr(fn, "id", None)) in names:
                        found.add(f"{path.stem}:{node.name}")
                        break
    return found


def test_sinusoids_are_evaluated_in_few_places():
    """The curve and its sweep (``_formulas``), and the device's copy (``_gpu``)."""
    found = _functions_calling({"sin", "cos"})
    assert len(found) <= 5, sorted(found)
    assert {"_formulas:curve_value", "_formulas:sweep"} <= found
    assert {name.split(":")[0] for name in found} <= {"_formulas", "_gpu"}


def test_float16_rounding_is_written_once_per_target():
    """The compiled rounding (``half_bits``); the host's is numpy's own cast; the device's."""
    found = _functions_calling({"frexp"})
    assert {name.split(":")[0] for name in found} == {"_formulas"}, sorted(found)


def test_no_module_reads_private_numba_attributes():
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and node.attr in {"_cache", "_impl", "_cache_file", "_index_path",
                                      "_locator", "_cache_path", "overloads"}):
                offenders.append(f"{path.name}: .{node.attr}")
    assert offenders == []


def _compiled_functions():
    for module in (_formulas, _cpu):
        for name, value in vars(module).items():
            if hasattr(value, "py_func"):
                yield f"{module.__name__}.{name}", value.py_func


@pytest.mark.needs_jit
def test_no_compiled_function_takes_more_than_eight_arguments():
    functions = dict(_compiled_functions())
    assert len(functions) > 20  # the scan found the kernels and formulas
    wide = {name: len(inspect.signature(fn).parameters) for name, fn in functions.items()
            if len(inspect.signature(fn).parameters) > 8}
    assert wide == {}


def test_every_kernel_takes_a_range_of_tasks_last():
    for name, kernel in _cpu.KERNELS.items():
        if name == "round_table":  # one table, always on the calling thread
            continue
        parameters = list(inspect.signature(getattr(kernel, "py_func", kernel)).parameters)
        assert parameters[-2:] == ["t0", "t1"], name


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


def test_packed_columns_are_named_once():
    place = [_layout.LO, _layout.HI, _layout.UNIT_LO, _layout.SCALE, _layout.UNIT, _layout.LAST,
             _layout.BASE]
    assert sorted(place) == list(range(_layout.N_PLACE))
    assert sorted([_layout.FREQUENCY, _layout.AMPLITUDE, _layout.PHASE]) == [0, 1, 2]
    assert sorted([_layout.POINTS, _layout.DENSE]) == [0, 1]


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
from rsgt_fast import _cpu, _formulas
from rsgt_fast.augmentation import random_smooth_grayvalue_transform

ramp = np.arange(2 * 300) % 200
rsgt_fast.transform_batch(ramp.astype(np.int16).reshape(2, -1), rng=0, dtype="float16")
rsgt_fast.transform_batch((ramp * 70000).astype(np.int32).reshape(2, -1), rng=0)
rsgt_fast.transform_batch(ramp.astype(np.float32).reshape(2, -1), rng=0)
random_smooth_grayvalue_transform(np.arange(5000).astype(np.int16))
found = {}
for module in (_cpu, _formulas):
    for name, value in vars(module).items():
        if hasattr(value, "signatures"):
            found.setdefault(name, set()).update(map(str, value.signatures))
print(json.dumps({name: sorted(sigs) for name, sigs in found.items()}))
"""


@pytest.mark.needs_jit
def test_no_helper_is_compiled_again_for_a_literal_argument(tmp_path):
    # numba compiles a helper once more for each literal argument it is called
    # with; on an empty cache every such copy costs compile time on first use.
    done = subprocess.run([sys.executable, "-c", LITERAL_PROBE], capture_output=True, text=True,
                          env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path),
                                   RSGT_FAST_COMPILE_AFTER="0"), timeout=600)
    assert done.returncode == 0, done.stderr
    signatures = json.loads(done.stdout.splitlines()[-1])
    assert len(signatures["sample_grid"]) == 1  # the probe reached the curve code
    literal = {name: sigs for name, sigs in signatures.items()
               if any("Literal" in sig or "omitted" in sig for sig in sigs)}
    assert literal == {}


def test_thread_count_is_decided_in_one_place():
    """Only ``_jit`` reads numba's thread settings; the kernels hold no ``prange``."""
    offenders = [path.name for path in SOURCE.rglob("*.py")
                 if path.name != "_jit.py" and ("NUMBA_NUM_THREADS" in path.read_text()
                                                or "prange" in path.read_text())]
    assert offenders == []
    assert _jit.threads(1) == 1
