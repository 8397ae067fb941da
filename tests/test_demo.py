"""The demo prints one line per batch element with values read off its curve."""

import re

import numpy as np
import pytest

from rsgt_fast import demo


def test_demo_reports_each_element(capsys):
    assert demo.main(["--batch", "3", "--size", "10", "--seed", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if re.match(r"\s+\d+\s", line)]
    assert len(rows) == 3
    for row in rows:
        numbers = [float(v) for v in re.findall(r"\d+\.\d+", row)]
        assert all(0.0 <= v <= 1.6 for v in numbers)  # frequencies <= 1.6, outputs <= 1


def test_synthetic_ct_is_int16_hounsfield():
    volume = demo.synthetic_ct(2, 12, seed=0)
    assert volume.dtype == np.int16 and volume.shape == (2, 12, 12, 12)
    assert volume.min() >= -1024 and volume.max() <= 3071


def test_demo_rejects_bad_sizes():
    with pytest.raises(SystemExit) as info:
        demo.main(["--batch", "0"])
    assert info.value.code == 2
