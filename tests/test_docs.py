"""The documentation runs: every docstring example and every python block of the README."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import rsgt_fast
from rsgt_fast._optional import MissingExtra

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["rsgt_fast"] + sorted(
    m.name for m in pkgutil.iter_modules(rsgt_fast.__path__, "rsgt_fast."))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(name):
    try:
        module = importlib.import_module(name)
    except MissingExtra as exc:  # an optional extra is not installed
        pytest.skip(str(exc))
    return [t for t in doctest.DocTestFinder().find(module, name) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in _examples(name):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_the_public_api_has_examples():
    documented = {t.name for name in ("rsgt_fast.batch", "rsgt_fast.curves",
                                      "rsgt_fast.augmentation", "rsgt_fast.normalization")
                  for t in _examples(name)}
    for name in ("transform_batch", "Curves", "random_smooth_grayvalue_transform",
                 "normalize_ct_scan", "normalize_mr_scan"):
        assert any(t.endswith("." + name) for t in documented), name


def readme_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


# MONAI's LoadImage warns when NVIDIA's optional image codec is not installed.
@pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader:UserWarning")
def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch):
    blocks = readme_blocks()
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    for number, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except (MissingExtra, ModuleNotFoundError) as exc:  # an optional extra is missing
            pytest.skip(f"block {number}: {exc}")
