"""One check of the GPU path on a machine with CUDA; the figures go to a markdown file.

Run it through ``bench/gpu_check.sh`` (which puts ``src`` on the path and bounds
the time).  Sections, each recorded even when another fails:

1. the machine: card, driver, versions;
2. every mode of the Triton path against the numpy engine, with the README's
   tolerances (host-built tables bit for bit; tables built on the GPU within
   1e-6, float16 within one float16 step), replay bit for bit, and a batch of
   more rows than a CUDA grid axis holds;
3. a 16 x 128^3 int16 CT batch -> float32 on each path against an int16 ->
   float32 copy into the same output (the target: at least 70% of the copy's
   throughput), a device-to-device copy, MONAI's ``RandHistogramShift`` (if
   installed) and the CPU engine with its transfers;
4. a 256 x 64^2 batch (many small elements), and random against CT-like data;
5. a stream-sync probe: how long a call keeps the host while GPU work is queued;
6. what one call queues on the GPU: kernels and copies (PyTorch's profiler);
7. RSGT's cost per nnU-Net iteration: the on-device trainer's batch step on
   the GPU against the worker trainer's per-sample transforms on the CPU (if
   nnU-Net v2 is installed);
8. ``tests/test_gpu.py`` and ``tests/test_device_routing.py`` under pytest, if
   pytest is installed.

``--dry-run`` (or no CUDA) runs the same code on tiny CPU tensors in Triton's
interpreter: the figures mean nothing, but every section is exercised, so
the script does not fail on first contact with a GPU.  Exit status 1 if a
result is wrong or a section failed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "gpu_latest.md"),
                        help="markdown file to write (default: bench/gpu_latest.md)")
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny CPU tensors in Triton's interpreter (no GPU needed)")
    parser.add_argument("--no-pytest", action="store_true", help="skip the pytest section")
    parser.add_argument("--budget", type=float, default=270.0,
                        help="seconds for all sections together (default 270)")
    return parser.parse_args(argv)


ARGS = parse_args()

import torch  # noqa: E402

CUDA = torch.cuda.is_available() and not ARGS.dry_run
if not CUDA:
    os.environ["TRITON_INTERPRET"] = "1"  # before Triton's first import

import numpy as np  # noqa: E402
import triton  # noqa: E402

import rsgt_fast  # noqa: E402
import rsgt_fast.torch as rtorch  # noqa: E402
from rsgt_fast import _gpu  # noqa: E402
from rsgt_fast.batch import MAX_FREQUENCY, MIN_FREQUENCY, N_SINUSOIDS  # noqa: E402

if not CUDA:
    triton.runtime.jit.mangle_type(0)  # what Triton imports at its first launch, interpreted

DEVICE = torch.device("cuda" if CUDA else "cpu")
SIZES = {  # (CUDA, dry run)
    "ct": ((16, 128, 128, 128), (2, 8, 8, 8)),
    "small": ((256, 64, 64), (4, 8, 8)),
    "rows": ((70000, 16), None),
}
REPS = {"fast": (50, 2), "slow": (3, 1)}
#: Tolerances of the README's GPU table, for tables built on the GPU.
DEVICE_TOLERANCE = {"float32": 1e-6, "float64": 1e-6, "float16": 2.0 ** -11}
TARGET = 0.70
START = time.perf_counter()


def size(name):
    return SIZES[name][0 if CUDA else 1]


def reps(kind):
    return REPS[kind][0 if CUDA else 1]


# ------------------------------------------------------------------ calls and watching


def call(x, dtype="float32", **options):
    """``rsgt_fast.torch.transform_batch`` on ``x`` (in the interpreter: its GPU route)."""
    if CUDA:
        return rtorch.transform_batch(x, dtype=dtype, **options)
    defaults = dict(n_sinusoids=N_SINUSOIDS, min_frequency=MIN_FREQUENCY,
                    max_frequency=MAX_FREQUENCY, min_max_val=None, rng=None, keys=None,
                    curves=None, out=None, return_curves=False)
    return rtorch.transform_on_device(x, np.dtype(dtype), **{**defaults, **options})


class Watch:
    """Records, while active, where tables are built, the mapping modes, Triton launches
    and uploads (by wrapping ``_gpu``'s functions)."""

    KERNELS = ("_map_voxels", "_partial_extrema", "_fill_tables")

    def __enter__(self):
        self.device_tables = 0
        self.modes = []
        self.launches = []
        self.uploads = []
        self.saved = {name: getattr(_gpu, name)
                      for name in ("device_lookup", "_map", "_upload") + self.KERNELS}
        saved = self.saved

        def device_lookup(*args, **kwargs):
            self.device_tables += 1
            return saved["device_lookup"](*args, **kwargs)

        def map_(x2, out2, table, place, clip, offset, mode, half_in=False):
            self.modes.append(mode)
            return saved["_map"](x2, out2, table, place, clip, offset, mode, half_in)

        def upload(arrays, device):
            self.uploads.append(sum(a.nbytes for a in arrays))
            return saved["_upload"](arrays, device)

        _gpu.device_lookup, _gpu._map, _gpu._upload = device_lookup, map_, upload
        for name in self.KERNELS:
            setattr(_gpu, name, _Counted(saved[name], name, self.launches))
        return self

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            setattr(_gpu, name, value)

    @property
    def tables(self):
        return "GPU" if self.device_tables else "host"


class _Counted:
    def __init__(self, kernel, name, launches):
        self.kernel, self.name, self.launches = kernel, name, launches

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def counted(*args, **kwargs):
            self.launches.append(self.name)
            return launch(*args, **kwargs)

        return counted


def sync():
    if CUDA:
        torch.cuda.synchronize()


def timed(fn, n):
    """``(synced, pipelined)`` milliseconds a call: each call waited for, then ``n`` calls
    back to back (CUDA events around them)."""
    fn()
    sync()
    fn()
    sync()
    one = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        sync()
        one.append(time.perf_counter() - t0)
    if CUDA:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        pipelined = start.elapsed_time(end) / n
    else:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        pipelined = (time.perf_counter() - t0) * 1e3 / n
    return statistics.median(one) * 1e3, pipelined


def ct_like(shape, seed=0):
    """int16 CT-like volumes in HU on the device: a body of soft tissue with lungs, a bony
    shell and a brighter organ, noise of 20 HU, air outside; both ends of [-1024, 3071]."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    axes = torch.meshgrid(*[torch.linspace(-1, 1, n, device=DEVICE) for n in shape[1:]],
                          indexing="ij")

    def inside(center, radii):
        return sum(((a - c) / r) ** 2 for a, c, r in zip(axes, center, radii)) <= 1.0

    d = len(axes)
    hu = torch.full(shape[1:], -1000.0, device=DEVICE)
    hu[inside([0.0] * d, [0.9] * d)] = 700.0
    hu[inside([0.0] * d, [0.8] * d)] = 40.0
    for side in (-0.35, 0.35):
        hu[inside([side] + [0.0] * (d - 1), [0.3] + [0.5] * (d - 1))] = -850.0
    hu[inside([0.0] * (d - 1) + [0.3], [0.2] * d)] = 180.0
    volumes = hu.expand(shape).clone()
    volumes += 20.0 * torch.randn(shape, generator=g, device=DEVICE)
    x = volumes.clamp(-1024, 3071).round().to(torch.int16)
    x.reshape(shape[0], -1)[:, :2] = torch.tensor([-1024, 3071], dtype=torch.int16)
    return x


def uniform_ct(shape, seed=0):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    x = torch.randint(-1024, 3072, shape, generator=g, device=DEVICE, dtype=torch.int16)
    x.reshape(shape[0], -1)[:, :2] = torch.tensor([-1024, 3071], dtype=torch.int16)
    return x


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def ms(value):
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


# ------------------------------------------------------------------ sections


def machine():
    lines = []
    if CUDA:
        p = torch.cuda.get_device_properties(0)
        lines.append(f"- card: **{torch.cuda.get_device_name()}** (sm_{p.major}{p.minor}, "
                     f"{p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB)")
        lines.append(f"- CUDA (PyTorch's): {torch.version.cuda}")
    else:
        lines.append("- **dry run**: CPU tensors in Triton's interpreter; no figure below "
                     "says anything about a GPU")
    import numba
    lines += [f"- torch {torch.__version__}, triton {triton.__version__}, "
              f"numpy {np.__version__}, numba {numba.__version__}, "
              f"rsgt_fast {rsgt_fast.__version__}, Python {platform.python_version()}",
              f"- host: {platform.machine()}, {os.cpu_count()} CPUs"]
    return "\n".join(lines), True


def batch(dtype, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        x = torch.randint(0, 2, shape, generator=g).to(torch.bool)
    elif dtype.is_floating_point:
        x = (torch.randn(shape, generator=g, dtype=torch.float64) * 300 + 40).to(dtype)
    else:
        low, high = {torch.uint8: (0, 200), torch.int8: (-100, 100),
                     torch.int16: (-1024, 3072), torch.int32: (-10**6, 10**6),
                     torch.int64: (-10**12, 10**12)}[dtype]
        x = torch.randint(low, high, shape, generator=g, dtype=torch.int64).to(dtype)
    return x.to(DEVICE)


DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
          torch.float16, torch.float32, torch.float64]
MODES = {0: "lookup", 1: "index", 2: "interp", 3: "interp (integers)", 4: "range (GPU)"}


def compare(got, expected, tables, out_dtype):
    got = got.cpu().numpy()
    diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
    if tables == "host":
        return diff, "bit for bit", bool(np.array_equal(got, expected))
    tolerance = DEVICE_TOLERANCE[out_dtype]
    return diff, f"{tolerance:.3g}", diff <= tolerance


def correctness():
    rows, ok = [], True
    for dtype in DTYPES:
        for out_dtype in ("float32", "float16", "float64"):
            for bounds in (None, (-50, 120), (-50.5, 120.25)):
                x = batch(dtype, (3, 20, 30))
                expected = rsgt_fast.transform_batch(x.cpu().numpy(), rng=5, dtype=out_dtype,
                                                     min_max_val=bounds)
                with Watch() as watch:
                    got, curves = call(x, out_dtype, rng=5, min_max_val=bounds,
                                       return_curves=True)
                diff, tolerance, good = compare(got, expected, watch.tables, out_dtype)
                again = call(x, out_dtype, curves=curves)
                replay = bool(torch.equal(again, got))
                ok &= good and replay
                rows.append([str(dtype).removeprefix("torch."), out_dtype, bounds or "own",
                             watch.tables, ", ".join(MODES[m] for m in sorted(set(watch.modes))),
                             f"{diff:.2e}", tolerance, "yes" if replay else "**NO**",
                             "ok" if good else "**FAIL**"])
    text = table(["input", "output", "range", "tables", "mapping", "max abs diff",
                  "allowed", "replay same bits", "result"], rows)
    failed = [r for r in rows if r[-1] != "ok" or r[-2] != "yes"]
    summary = (f"{len(rows) - len(failed)} of {len(rows)} cases within the README's "
               "tolerances, replays bit for bit")
    shape = size("rows")
    if shape is not None:  # more rows than CUDA allows on grid axes 1 and 2
        extra = []
        for dtype, bounds in ((torch.int16, None), (torch.int32, (-1024, 3071))):
            x = batch(dtype, shape)
            expected = rsgt_fast.transform_batch(x.cpu().numpy(), rng=2, min_max_val=bounds)
            with Watch() as watch:
                got = call(x, rng=2, min_max_val=bounds)
            diff, tolerance, good = compare(got, expected, watch.tables, "float32")
            ok &= good
            extra.append(f"- {shape[0]} rows of {shape[1]} {str(dtype)[6:]} values "
                         f"({watch.tables} tables, {len(watch.launches)} launches): max abs "
                         f"diff {diff:.2e} (allowed: {tolerance}) "
                         f"{'ok' if good else '**FAIL**'}")
        summary += "\n" + "\n".join(extra)
    return f"{summary}\n\n{text}", ok


def throughput():
    shape = size("ct")
    x = uniform_ct(shape)
    voxels = x.numel()
    out = torch.empty(shape, dtype=torch.float32, device=DEVICE)
    rng = np.random.default_rng(0)
    cases = []
    copy = timed(lambda: out.copy_(x), reps("fast"))
    for name, bounds in (("own ranges", None), ("given range (-1024, 3071)", (-1024, 3071)),
                         ("non-integral range (-1024.5, 3071.5)", (-1024.5, 3071.5))):
        with Watch() as watch:
            call(x[:1], min_max_val=bounds)
        times = timed(lambda: call(x, rng=rng, out=out, min_max_val=bounds), reps("fast"))
        cases.append((f"rsgt_fast.torch, {name}: tables on the {watch.tables}", times))
    cases.append(("floor: int16 -> float32 copy into out", copy))
    target = torch.empty_like(x)
    cases.append(("device-to-device copy of the input (4 B/voxel)",
                  timed(lambda: target.copy_(x), reps("fast"))))
    try:
        from monai.transforms import RandHistogramShift
    except ImportError:
        note = "MONAI is not installed: no RandHistogramShift figure."
    else:
        shift = RandHistogramShift(prob=1.0).set_random_state(0)
        as_float = x.float()
        cases.append(("MONAI RandHistogramShift (float32 in)",
                      timed(lambda: shift(as_float), reps("slow"))))
        note = ""

    def through_host():
        host = rsgt_fast.transform_batch(x.cpu().numpy(), rng=rng)
        return torch.from_numpy(host).to(DEVICE)

    cases.append(("CPU engine + download and upload", timed(through_host, reps("slow"))))
    rows, ok = [], True
    for name, (synced, pipelined) in cases:
        share = copy[1] / pipelined
        rows.append([name, ms(synced), ms(pipelined), f"{6 * voxels / pipelined / 1e6:.0f}",
                     f"{share:.2f}"])
    ours = cases[0][1][1]
    met = copy[1] / ours >= TARGET
    text = (f"{'x'.join(map(str, shape))} int16 -> float32 ({voxels / 1e6:.1f} Mvoxel); "
            "`synced`: one call waited for (wall clock); `back to back`: "
            f"{reps('fast')} calls queued, CUDA events around them.  GB/s counts 6 bytes a "
            "voxel (2 read, 4 written) for every row, the copy's traffic.\n\n"
            + table(["case", "ms synced", "ms back to back", "GB/s", "copy time / time"],
                    rows)
            + f"\n\nOwn ranges at {copy[1] / ours:.2f} of the int16 -> float32 copy's "
              f"throughput: target {TARGET:.2f} "
              + ("met." if met else "**not met**." if CUDA else "(a dry run: no target)."))
    if note:
        text += "\n\n" + note
    return text, ok


def shapes_and_data():
    rows = []
    shape = size("small")
    x = uniform_ct(shape)
    out = torch.empty(shape, dtype=torch.float32, device=DEVICE)
    rng = np.random.default_rng(0)
    copy = timed(lambda: out.copy_(x), reps("fast"))
    ours = timed(lambda: call(x, rng=rng, out=out), reps("fast"))
    rows.append([f"{'x'.join(map(str, shape))}, own ranges", ms(ours[0]), ms(ours[1]),
                 ms(copy[1]), f"{copy[1] / ours[1]:.2f}"])
    shape = size("ct")
    out = torch.empty(shape, dtype=torch.float32, device=DEVICE)
    for name, make in (("uniform random in [-1024, 3071]", uniform_ct), ("CT-like", ct_like)):
        x = make(shape)
        copy = timed(lambda: out.copy_(x), reps("fast"))
        ours = timed(lambda: call(x, rng=rng, out=out), reps("fast"))
        rows.append([f"{'x'.join(map(str, shape))}, {name}", ms(ours[0]), ms(ours[1]),
                     ms(copy[1]), f"{copy[1] / ours[1]:.2f}"])
    return table(["batch", "ms synced", "ms back to back", "copy ms", "copy time / time"],
                 rows), True


def sleep_cycles_per_ms():
    if not hasattr(torch.cuda, "_sleep"):
        return None
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(10_000_000)
    end.record()
    end.synchronize()
    return 10_000_000 / start.elapsed_time(end)


def stream_probe():
    if not CUDA:
        return "No CUDA stream here: the probe runs on a GPU only.", True
    per_ms = sleep_cycles_per_ms()
    if per_ms is None:
        return "This PyTorch has no torch.cuda._sleep to queue work with.", True
    queued = 50.0
    shape = size("ct")
    x = uniform_ct(shape)
    x32 = x.to(torch.int32)
    xf = x.to(torch.float32)
    out = torch.empty(shape, dtype=torch.float32, device=DEVICE)
    rng = np.random.default_rng(0)
    cases = [
        ("int16, own ranges (tables on the GPU)", lambda: call(x, rng=rng, out=out), False),
        ("int16, given range (tables on the GPU)",
         lambda: call(x, rng=rng, out=out, min_max_val=(-1024, 3071)), False),
        ("int32, given range (host tables, one upload)",
         lambda: call(x32, rng=rng, out=out, min_max_val=(-1024, 3071)), False),
        ("float32, own ranges (ranges come down)", lambda: call(xf, rng=rng, out=out), True),
        ("int16, own ranges, return_curves=True (curves come down)",
         lambda: call(x, rng=rng, out=out, return_curves=True), True),
    ]
    rows, ok = [], True
    for name, fn, expected in cases:
        fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        alone = (time.perf_counter() - t0) * 1e3
        torch.cuda.synchronize()
        torch.cuda._sleep(int(queued * per_ms))
        t0 = time.perf_counter()
        fn()
        behind = (time.perf_counter() - t0) * 1e3
        torch.cuda.synchronize()
        waits = behind > alone + queued / 2
        ok &= waits == expected
        rows.append([name, ms(alone), ms(behind), "yes" if waits else "no",
                     "yes" if expected else "no"])
    text = (f"Host time of one call (until it returns, no synchronisation), alone and with "
            f"{queued:.0f} ms of GPU work queued before it.\n\n"
            + table(["call", "ms alone", f"ms behind {queued:.0f} ms of work", "waits",
                     "expected to wait"], rows))
    return text, ok


def launches():
    shape = size("ct")
    x = uniform_ct(shape)
    out = torch.empty(shape, dtype=torch.float32, device=DEVICE)
    cases = [("int16, own ranges", lambda: call(x, rng=0, out=out)),
             ("int16, given range", lambda: call(x, rng=0, out=out, min_max_val=(-1024, 3071))),
             ("int16, given non-integral range (host tables)",
              lambda: call(x, rng=0, out=out, min_max_val=(-1024.5, 3071.5))),
             (f"{'x'.join(map(str, size('small')))} int16, own ranges",
              lambda: call(uniform_ct(size("small")), rng=0))]
    rows = []
    for name, fn in cases:
        fn()
        sync()
        with Watch() as watch:
            kernels, copies = profiled(fn)
        rows.append([name, len(watch.launches), len(watch.uploads),
                     "n/a" if kernels is None else len(kernels),
                     "n/a" if copies is None else "; ".join(copies) or "none"])
    text = ("Per call: Triton launches and uploads as `_gpu` issues them; every CUDA kernel "
            "and copy as PyTorch's profiler sees them (GPU only; allocating the output is "
            "not counted).\n\n"
            + table(["call", "Triton launches", "uploads", "CUDA kernels", "copies"], rows))
    return text, True


def profiled(fn):
    if not CUDA:
        fn()
        return None, None
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    kernels, copies = [], []
    for event in prof.events():
        if not str(getattr(event, "device_type", "")).endswith("CUDA"):
            continue
        (copies if event.name.startswith(("Memcpy", "Memset")) else kernels).append(event.name)
    return kernels, copies


def tests():
    if ARGS.no_pytest or not CUDA:
        return "Not run (dry run or --no-pytest).", True
    try:
        import pytest  # noqa: F401
    except ImportError:
        return "pytest is not installed here: not run.", True
    left = max(30.0, ARGS.budget - (time.perf_counter() - START) - 10)
    command = [sys.executable, "-m", "pytest", "tests/test_gpu.py", "tests/test_device_routing.py",
               "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-k", "not compiles"]
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=left)
    except subprocess.TimeoutExpired:
        return f"`{' '.join(command[1:])}` ran past {left:.0f} s.", False
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return f"`{' '.join(command[1:])}`: exit status {proc.returncode}\n\n```\n{tail}\n```", \
        proc.returncode == 0


def trainers():
    """RSGT's cost per nnU-Net iteration: on the device (the on-device trainer) and in workers.

    A 3d_fullres-like batch of 2 z-scored 1-channel 128^3 patches, every sample
    transformed: :func:`rsgt_fast.nnunet.transform_training_batch` on the
    device, against what ``nnUNetTrainerRSGT``'s workers spend on the same
    two samples on the CPU (bgv2's ``RandomTransform`` around the transform,
    one thread each, as in a worker).
    """
    try:
        from batchgeneratorsv2.transforms.utils.random import RandomTransform

        from rsgt_fast import nnunet
        from rsgt_fast.batchgenerators import SmoothGrayValueTransform
    except Exception as exc:  # nnU-Net is an optional extra
        return f"Not run: nnU-Net v2 or batchgeneratorsv2 cannot be imported here ({exc}).", True
    shape = (2, 1, 128, 128, 128) if CUDA else (2, 1, 8, 8, 8)
    g = torch.Generator().manual_seed(0)
    host = torch.randn(shape, generator=g)
    device = host.to(DEVICE)
    work = device.clone()
    on_device = SmoothGrayValueTransform()
    in_worker = RandomTransform(SmoothGrayValueTransform(n_threads=1), apply_probability=1.0)

    def device_step():
        work.copy_(device)
        nnunet.transform_training_batch(work, on_device, probability=1.0)

    def worker_step():
        for sample in host:
            in_worker(image=sample.clone())

    ours = timed(device_step, reps("slow") * 4)
    copy = timed(lambda: work.copy_(device), reps("slow") * 4)
    t0 = time.perf_counter()
    for _ in range(reps("slow")):
        worker_step()
    worker = (time.perf_counter() - t0) * 1e3 / reps("slow")
    rows = [["nnUNetTrainerRSGTOnDevice: the batch on the device (minus its copy)",
             ms(ours[0] - copy[0])],
            ["nnUNetTrainerRSGT: the same samples in a worker, on the CPU", ms(worker)]]
    return table([f"RSGT per iteration, batch {'x'.join(map(str, shape))}", "ms"], rows), True


SECTIONS = [("Machine", machine), ("Every mode against the numpy engine", correctness),
            ("CT batch: throughput against a copy and peers", throughput),
            ("Small elements, random and CT-like data", shapes_and_data),
            ("Stream-sync probe", stream_probe), ("What one call queues", launches),
            ("nnU-Net trainers: RSGT per iteration", trainers),
            ("Tests on this machine", tests)]


def main():
    out = Path(ARGS.out)
    command = "bash bench/gpu_check.sh " + " ".join(sys.argv[1:])
    title = (f"# GPU check: {torch.cuda.get_device_name() if CUDA else 'dry run (no GPU)'}\n\n"
             f"{datetime.date.today().isoformat()}, `{command.strip()}`; written by "
             "`bench/gpu_check.py`.")
    parts, ok = [title], True
    for name, section in SECTIONS:
        if time.perf_counter() - START > ARGS.budget:
            parts.append(f"## {name}\n\nSkipped: the time budget ({ARGS.budget:.0f} s) is spent.")
            ok = good = False
        else:
            t0 = time.perf_counter()
            try:
                text, good = section()
            except Exception:
                text, good = "**Failed:**\n\n```\n" + traceback.format_exc()[-3000:] + "```", False
            ok &= good
            parts.append(f"## {name}\n\n{text}\n\n_{time.perf_counter() - t0:.1f} s_")
        out.write_text("\n\n".join(parts) + "\n")
        print(f"{name}: {'ok' if good else 'FAILED'}", flush=True)
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
