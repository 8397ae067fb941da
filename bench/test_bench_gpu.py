"""GPU: a CT batch transformed where it lies, against copies and peers on the same GPU.

A ``(16, 128, 128, 128)`` int16 CT batch on the GPU becomes float32:

* ours: ``rsgt_fast.torch.transform_batch``, one Triton kernel for every
  voxel, each case on the path it names: with their own ranges
  (``ours_own``) or a given integral range (``ours_given``) the elements get
  their tables on the GPU (nothing is downloaded); with a range that is not
  integral (``ours_host``) the tables come from the host, one upload;
* the floor: an int16 to float32 copy into the same output, which moves
  exactly the bytes a transform must (2 read, 4 written per voxel), so its
  throughput is the one to reach; and a plain device-to-device copy of the
  input for scale;
* MONAI's ``RandHistogramShift`` on the same tensor (float32, as it needs);
* the CPU engine with the transfers a GPU pipeline would add (download,
  transform, upload).

CUDA time is taken with ``torch.cuda.synchronize`` after every call.  Without
a CUDA device every case is skipped.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device here", allow_module_level=True)

import rsgt_fast  # noqa: E402
import rsgt_fast.torch as rtorch  # noqa: E402

SHAPES = ((16, 128, 128, 128), (2, 16, 16, 16))
CONTENDERS = ["ours_own", "ours_given", "ours_host", "copy", "float", "monai", "cpu"]
#: The range each of our cases passes, and where its tables are built.
RANGES = {"ours_own": (None, "device"), "ours_given": ((-1024, 3071), "device"),
          "ours_host": ((-1024.5, 3071.5), "host")}


@pytest.fixture(scope="module")
def batch(full_size):
    shape = SHAPES[0 if full_size else 1]
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-1024, 3072, shape, generator=g, dtype=torch.int16)
    x.reshape(shape[0], -1)[:, :2] = torch.tensor([-1024, 3071], dtype=torch.int16)
    return x.cuda()


def tables_built_on(x, bounds, monkeypatch):
    """Where a call on ``x`` with range ``bounds`` builds its tables: ``device`` or ``host``."""
    backend = rtorch._gpu()
    calls = []
    build = backend.device_lookup

    def watched(*args, **kwargs):
        calls.append(args)
        return build(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(backend, "device_lookup", watched)
        rtorch.transform_batch(x[:1], rng=0, min_max_val=bounds)
    return "device" if calls else "host"


def synced(fn):
    def run():
        result = fn()
        torch.cuda.synchronize()
        return result
    return run


@pytest.mark.parametrize("contender", CONTENDERS)
def test_ct_batch_on_the_gpu(benchmark, timed, batch, contender, monkeypatch):
    benchmark.group = (f"15 GPU int16 {'x'.join(map(str, batch.shape))} -> float32 "
                       f"({torch.cuda.get_device_name()})")
    out = torch.empty(batch.shape, dtype=torch.float32, device=batch.device)
    if contender in RANGES:
        bounds, tables = RANGES[contender]
        assert tables_built_on(batch, bounds, monkeypatch) == tables
        rng = np.random.default_rng(0)
        info = {"role": "ours"} if bounds is None else {}
        name = {"ours_own": "own ranges", "ours_given": "given range",
                "ours_host": "non-integral range"}[contender]
        result = timed(synced(lambda: rtorch.transform_batch(batch, rng=rng, out=out,
                                                             min_max_val=bounds)),
                       contender=f"rsgt_fast.torch ({name}: tables on the {tables})", **info)
        assert result is out and out.device == batch.device
        expected = rsgt_fast.transform_batch(batch[:1].cpu().numpy(), rng=1, min_max_val=bounds)
        got = rtorch.transform_batch(batch[:1], rng=1, min_max_val=bounds).cpu().numpy()
        if tables == "device":
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, expected)
    elif contender == "copy":
        target = torch.empty_like(batch)
        timed(synced(lambda: target.copy_(batch)),
              contender="device-to-device copy of the input (4 bytes per voxel)")
    elif contender == "float":
        timed(synced(lambda: out.copy_(batch)), role="floor",
              contender="floor: int16 to float32 copy into out (6 bytes per voxel, as ours)")
    elif contender == "monai":
        transforms = pytest.importorskip("monai.transforms")
        shift = transforms.RandHistogramShift(prob=1.0).set_random_state(0)
        as_float = batch.float()
        timed(synced(lambda: shift(as_float)), contender="MONAI RandHistogramShift (float32)")
    else:
        rng = np.random.default_rng(0)

        def through_host():
            host = rsgt_fast.transform_batch(batch.cpu().numpy(), rng=rng)
            return torch.from_numpy(host).to(batch.device)

        timed(synced(through_host), contender="CPU engine + download and upload")
