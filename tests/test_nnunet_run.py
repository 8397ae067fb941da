"""Real nnU-Net v2 runs on the CPU: plan, preprocess and train with both RSGT trainers.

A synthetic dataset of four 48³ volumes (a body with a labelled sphere, zero
around it, so nnU-Net chooses ``use_mask_for_norm``) is planned and
preprocessed by nnU-Net's own command, then each trainer trains one short
epoch through ``nnUNetv2_train -device cpu`` with nnU-Net's multi-process data
loading, validates and writes ``checkpoint_final.pth``.  Short runs need
trainer subclasses (nnU-Net has no option for the number of iterations); they
live in a module written to the test's folder, which ``nnUNet_extTrainer``
lists before :data:`rsgt_fast.nnunet.TRAINER_FOLDER`.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("nnunetv2")
nib = pytest.importorskip("nibabel")

from rsgt_fast import nnunet  # noqa: E402

# About a minute on two cores with compiled kernels; run as Python (the coverage
# run) the commands would take far longer.
pytestmark = pytest.mark.needs_jit

DATASET_ID = 987
DATASET = f"Dataset{DATASET_ID:03d}_RSGTTrial"
CASES = [f"case_{i}" for i in range(4)]
#: Training iterations of each run (RSGT_TRIAL_ITERATIONS overrides it, for timing).
ITERATIONS = int(os.environ.get("RSGT_TRIAL_ITERATIONS", "3"))

#: nnU-Net looks for a trainer by importing every module of its own trainer tree
#: that comes before the one holding the class; its Primus trainers import timm,
#: and timm imports torchvision.  A torchvision built for another torch (as a
#: CUDA build beside torch's CPU build) fails to load with this exact error, and
#: then any ``-tr`` outside nnUNetTrainer.py stops.  This module, imported by
#: each command before nnU-Net, leaves out that one module in that one case only
#: (its trainers cannot run there anyway) and says so on stderr; any other
#: failure, of torchvision or of any module, shows as it would.
SHIM = '''
import importlib.abc
import importlib.util
import sys

PRIMUS = "nnunetv2.training.nnUNetTrainer.primus.primus_trainers"
BROKEN = "operator torchvision::nms does not exist"


class _LeaveOutPrimus(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name != PRIMUS:
            return None
        try:
            import torchvision  # noqa: F401
        except RuntimeError as error:
            if BROKEN not in str(error):
                raise
            print(f"test shim: torchvision cannot load ({BROKEN}); {PRIMUS} left out",
                  file=sys.stderr)
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__doc__ = "Left out: torchvision cannot load beside this torch."


sys.meta_path.insert(0, _LeaveOutPrimus())
'''

#: Short trainers.  nnU-Net reads the trainer's __init__ signature to rebuild it,
#: so each spells out nnUNetTrainer's parameters.  Both transform every training
#: sample (rsgt_probability = 1.0) so that a short run shows it: the worker-side
#: trainer's transform appends a line per sample to $RSGT_TRIAL_MARKER (with the
#: worker's pid and whether the image changed); the on-device trainer logs its
#: own count each epoch.
TRIAL_TRAINERS = '''
import os

import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.utils.random import RandomTransform

from rsgt_fast.batchgenerators import SmoothGrayValueTransform
from rsgt_fast.nnunet import nnUNetTrainerRSGT, nnUNetTrainerRSGTOnDevice


def _shorten(trainer):
    trainer.num_epochs = int(os.environ.get("RSGT_TRIAL_EPOCHS", "1"))
    trainer.num_iterations_per_epoch = int(os.environ["RSGT_TRIAL_ITERATIONS"])
    trainer.num_val_iterations_per_epoch = 1


class _Recorded(BasicTransform):
    def __init__(self, transform):
        super().__init__()
        self.transform = transform

    def __call__(self, **data):
        before = data["image"].clone()
        out = self.transform(**data)
        changed = not torch.equal(out["image"], before)
        with open(os.environ["RSGT_TRIAL_MARKER"], "a") as marker:
            marker.write(f"{os.getpid()} {'changed' if changed else 'same'}\\n")
        return out


class nnUNetTrainerRSGT_Trial(nnUNetTrainerRSGT):
    rsgt_probability = 1.0

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _shorten(self)

    @classmethod
    def get_training_transforms(cls, *args, **kwargs):
        composed = super().get_training_transforms(*args, **kwargs)
        for step in composed.transforms:
            if (isinstance(step, RandomTransform)
                    and isinstance(step.transform, SmoothGrayValueTransform)):
                step.transform = _Recorded(step.transform)
        return composed


class nnUNetTrainerRSGTOnDevice_Trial(nnUNetTrainerRSGTOnDevice):
    rsgt_probability = 1.0

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _shorten(self)
'''


def write_dataset(raw):
    """Four 48³ cases: a noisy body (radius 19, zero around it) with a brighter sphere."""
    folder = raw / DATASET
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    grid = np.indices((48, 48, 48)).astype(np.float32)
    body = ((grid - 23.5) ** 2).sum(0) <= 19 ** 2
    for case in CASES:
        centre = rng.uniform(17, 30, size=3).reshape(3, 1, 1, 1)
        sphere = ((grid - centre) ** 2).sum(0) <= rng.uniform(5, 8) ** 2
        image = np.where(body, rng.normal(100, 10, body.shape), 0.0)
        image[sphere] += 60
        affine = np.eye(4)
        nib.save(nib.Nifti1Image(image.astype(np.float32), affine),
                 folder / "imagesTr" / f"{case}_0000.nii.gz")
        nib.save(nib.Nifti1Image(sphere.astype(np.uint8), affine),
                 folder / "labelsTr" / f"{case}.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "MRI"}, "labels": {"background": 0, "sphere": 1},
        "numTraining": len(CASES), "file_ending": ".nii.gz"}))


def nnunet_command(entry, *args, env, timeout):
    """Run one of nnU-Net's console entry points in a fresh interpreter (with the shim)."""
    module, function = entry.rsplit(".", 1)
    code = (f"import sys; import torchvision_shim; from {module} import {function}; "
            f"sys.exit({function}())")
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"{entry} {' '.join(map(str, args))} hung for {timeout} s:\n{output[-6000:]}")
    assert proc.returncode == 0, f"{entry} failed ({proc.returncode}):\n{output[-6000:]}"
    return proc.pid, output


@pytest.fixture(scope="module")
def nnunet_env(tmp_path_factory):
    """Folders and environment for nnU-Net, with the dataset planned and preprocessed."""
    root = tmp_path_factory.mktemp("nnunet")
    for name in ("raw", "preprocessed", "results", "shim", "trainers"):
        (root / name).mkdir()
    write_dataset(root / "raw")
    (root / "shim" / "torchvision_shim.py").write_text(textwrap.dedent(SHIM))
    (root / "trainers" / "rsgt_trial_trainers.py").write_text(textwrap.dedent(TRIAL_TRAINERS))
    env = dict(os.environ)
    env.update({
        "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "preprocessed"),
        "nnUNet_results": str(root / "results"),
        "nnUNet_extTrainer": os.pathsep.join([str(root / "trainers"), nnunet.TRAINER_FOLDER]),
        "nnUNet_n_proc_DA": "2", "nnUNet_def_n_proc": "1", "nnUNet_compile": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "shim"),
                                                    env.get("PYTHONPATH")])),
        "RSGT_TRIAL_ITERATIONS": str(ITERATIONS),
    })
    nnunet_command("nnunetv2.experiment_planning.plan_and_preprocess_entrypoints"
                   ".plan_and_preprocess_entry", "-d", DATASET_ID, "-c", "3d_fullres",
                   "-npfp", 1, "-np", 1, "--verify_dataset_integrity", env=env, timeout=240)
    # Four cases are too few for nnU-Net's five folds: fold 0 is given.
    (root / "preprocessed" / DATASET / "splits_final.json").write_text(
        json.dumps([{"train": CASES[:3], "val": CASES[3:]}]))
    return root, env


def train(nnunet_env, trainer):
    root, env = nnunet_env
    env = dict(env, RSGT_TRIAL_MARKER=str(root / f"{trainer}.marker"))
    pid, output = nnunet_command("nnunetv2.run.run_training.run_training_entry",
                                 DATASET_ID, "3d_fullres", 0, "-tr", trainer, "-device", "cpu",
                                 env=env, timeout=300)
    fold = root / "results" / DATASET / f"{trainer}__nnUNetPlans__3d_fullres" / "fold_0"
    assert (fold / "checkpoint_final.pth").is_file(), output[-6000:]
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert "foreground_mean" in summary
    losses = [float(v) for v in re.findall(r"train_loss (\S+)", output)]
    assert losses and np.isfinite(losses).all(), output[-6000:]
    marker = root / f"{trainer}.marker"
    return pid, output, marker.read_text().split("\n")[:-1] if marker.exists() else []


def test_nnunet_chose_use_mask_for_norm(nnunet_env):
    root, _ = nnunet_env
    plans = json.loads((root / "preprocessed" / DATASET / "nnUNetPlans.json").read_text())
    configuration = plans["configurations"]["3d_fullres"]
    assert configuration["use_mask_for_norm"] == [True]  # the marked path is exercised
    assert configuration["batch_size"] >= 2


@pytest.mark.timeout(600, method="thread")
def test_worker_side_trainer_trains_with_rsgt_in_the_workers(nnunet_env):
    pid, output, lines = train(nnunet_env, "nnUNetTrainerRSGT_Trial")
    root, _ = nnunet_env
    plans = json.loads((root / "preprocessed" / DATASET / "nnUNetPlans.json").read_text())
    batch_size = plans["configurations"]["3d_fullres"]["batch_size"]
    # the loader workers prepare batches ahead: at least those trained on
    assert len(lines) >= ITERATIONS * batch_size, output[-6000:]
    assert all(line.split()[1] == "changed" for line in lines), lines
    assert str(pid) not in {line.split()[0] for line in lines}  # in the workers, not the trainer


@pytest.mark.timeout(600, method="thread")
def test_on_device_trainer_trains_with_rsgt_on_each_batch(nnunet_env):
    _, output, _ = train(nnunet_env, "nnUNetTrainerRSGTOnDevice_Trial")
    root, _ = nnunet_env
    plans = json.loads((root / "preprocessed" / DATASET / "nnUNetPlans.json").read_text())
    samples = ITERATIONS * plans["configurations"]["3d_fullres"]["batch_size"]
    assert f"RSGT (cpu): {samples} of {samples} training samples transformed" in output, \
        output[-6000:]
