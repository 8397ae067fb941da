"""The ``rsgt-fast`` command: preview, augment and bench.

Run ``rsgt-fast --help`` (or ``python -m rsgt_fast.cli --help``) for the
subcommands and ``rsgt-fast COMMAND --help`` for their options and examples.
Errors are reported as one line on stderr; the exit status is 0 on success,
1 when a file failed or an optional dependency is missing, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np

from . import __version__, transform_batch
from ._optional import MissingExtra, require

__all__ = ["main"]

PROG = "rsgt-fast"
#: The Hounsfield range RSGT maps onto the curve for CT unless told otherwise.
CT_RANGE = (-1024, 3071)


class UsageError(Exception):
    """A bad command line; the message is the one line to print."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, raised instead of printed."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _seed(text):
    """An argparse type: a non-negative integer seed."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _epilog(text):
    return textwrap.dedent(text).strip()


def _wrap(text):
    return textwrap.fill(text, width=78)


def build_parser():
    """The argument parser of ``rsgt-fast`` and its subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG, formatter_class=formatter,
        description="Random smooth gray value transformations (RSGT) for CT and MR images.",
        epilog=_epilog("""
            examples:
              rsgt-fast preview --sample ct -o preview.png
              rsgt-fast augment scans/*.nii.gz -o augmented --n 4 --seed 0
              rsgt-fast bench
        """),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    preview = commands.add_parser(
        "preview", formatter_class=formatter,
        help="plot a slice and N transformed versions with their transfer functions",
        description=_wrap("Plot a slice, then N randomly transformed versions of it side by "
                          "side, each with its transfer function (input value -> output) "
                          "beneath it."),
        epilog=_epilog("""
            examples:
              rsgt-fast preview --sample ct -o preview.png
              rsgt-fast preview --sample mr -o mr.png --n 5 --seed 1
              rsgt-fast preview scan.nii.gz -o scan.png --slice 40 --normalize ct
              rsgt-fast preview scan.nrrd -o scan.png --min-max 0 1000

            With --normalize ct (the default for CT) the original is shown as
            normalize_ct_scan shows it and RSGT maps [-1024, 3071] HU, clipped
            to the image's own range; --min-max sets that range.
        """),
    )
    preview.add_argument("input", nargs="?", metavar="INPUT",
                         help="image file (NIfTI, NRRD, MetaImage, DICOM or .npy) or a folder "
                              "holding a DICOM series")
    preview.add_argument("--sample", choices=["ct", "mr"],
                         help="use pydicom's CT_small.dcm or MR_small.dcm instead of INPUT")
    preview.add_argument("-o", "--output", required=True, type=Path, metavar="PNG",
                         help="PNG file to write")
    preview.add_argument("--n", type=int, default=3,
                         help="transformed versions, 1 to 12 (default 3)")
    preview.add_argument("--seed", type=_seed, help="seed of the curves (default: random)")
    preview.add_argument("--series", metavar="UID",
                         help="in a DICOM folder with several series, the one to show")
    preview.add_argument("--slice", type=int, metavar="K",
                         help="slice of a 3-D image (default: the middle one)")
    preview.add_argument("--min-max", type=float, nargs=2, metavar=("LO", "HI"),
                         help="input range mapped onto the curves")
    preview.add_argument("--normalize", choices=["ct", "mr"],
                         help="how the original is shown (default: from the DICOM modality, "
                              "else a linear map of its range)")

    augment = commands.add_parser(
        "augment", formatter_class=formatter,
        help="write K randomly transformed copies of each input, geometry kept",
        description=_wrap("Write K randomly transformed copies of each input to OUTDIR, in "
                          "the input's format with its geometry (DICOM inputs are written as "
                          "NIfTI), named <stem>_rsgt<k><suffix>."),
        epilog=_epilog("""
            examples:
              rsgt-fast augment ct.nii.gz -o out --n 4
              rsgt-fast augment scans/*.nrrd -o out --n 2 --seed 0 --min-max -1024 3071
              rsgt-fast augment a.mha b.mha -o out --dtype float64 --overwrite
              rsgt-fast augment slices/*.npy -o out --dtype float16
              rsgt-fast augment scans/*.nii.gz -o out --seed 0 --workers 4
              rsgt-fast augment stack.zarr -o out --n 2 --seed 0
              rsgt-fast augment mr.nii.gz -o out --nan-policy omit --mask nonzero
              rsgt-fast augment t1_t2_flair.nii.gz -o out --channel-axis -1

            With --seed the run is reproducible: input number i (in the order
            given) gets the i-th child of numpy.random.SeedSequence(seed), and
            its K copies are drawn from it in one batch.  With --key name an
            input's child is chosen by its file name instead (the first 8 bytes
            of the name's SHA-256), so a file gets the same copies whatever
            other files the run holds and in whatever order they are given.  Inputs are never
            overwritten; existing outputs only with --overwrite.  A file that
            fails is reported in one line and the others are still processed;
            the exit status is then 1.
        """),
    )
    augment.add_argument("inputs", nargs="+", metavar="INPUT",
                         help="image files, folders holding a DICOM series (written as "
                              "NIfTI), or .zarr arrays (batch on axis 0)")
    augment.add_argument("-o", "--output-dir", required=True, type=Path, metavar="OUTDIR",
                         help="folder for the outputs (created if missing)")
    augment.add_argument("--n", type=int, default=1, help="copies per input (default 1)")
    augment.add_argument("--seed", type=_seed, help="seed of the whole run (default: random)")
    augment.add_argument("--key", choices=["index", "name"], default="index",
                         help="what selects an input's random stream: its position in the "
                              "list (default) or its file name")
    augment.add_argument("--dtype", default="float32", choices=["float16", "float32", "float64"],
                         help="output data type (default float32; float16 only for .npy)")
    augment.add_argument("--min-max", type=float, nargs=2, metavar=("LO", "HI"),
                         help="input range mapped onto the curves (default: each image's own)")
    augment.add_argument("--nan-policy", choices=["raise", "omit"], default="raise",
                         help="images holding NaN or Inf: refuse them (default) or transform "
                              "their finite voxels only (NaN stays NaN)")
    augment.add_argument("--mask", metavar="FILE|nonzero",
                         help="voxels that set the range and are transformed: nonzero ones, or "
                              "those where an image FILE of the same shape is nonzero; the "
                              "others are written as 0")
    augment.add_argument("--channel-axis", type=int, metavar="AXIS",
                         help="give each channel on this axis of an image its own curve and "
                              "range (e.g. -1 for a NIfTI holding T1, T2 and FLAIR on its last "
                              "axis; a .zarr array's axes count its batch axis 0); default: one "
                              "curve per image")
    augment.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    augment.add_argument("--series", metavar="UID",
                         help="in a DICOM folder with several series, the one to read "
                              "(default: the one with the most slices)")
    augment.add_argument("--workers", type=int, metavar="N",
                         help="run the files on a local Dask cluster of N worker processes")
    augment.add_argument("--scheduler", metavar="ADDRESS",
                         help="run the files on an existing Dask cluster (tcp://host:port)")

    warm = commands.add_parser(
        "warmup", formatter_class=formatter,
        help="compile the kernels for some input dtypes into numba's cache, once",
        description=_wrap("Compile every kernel path (transform_batch, the facade and both "
                          "normalisations; serial and parallel variants) for the given input "
                          "dtypes into numba's on-disk cache, so that later processes load them "
                          "instead of compiling on their first call.  Run it when building a "
                          "Docker image, a cluster node or a CI runner; running it again only "
                          "loads the cache."),
        epilog=_epilog("""
            examples:
              rsgt-fast warmup
              rsgt-fast warmup --dtypes int16,float32
              NUMBA_CACHE_DIR=/opt/numba-cache rsgt-fast warmup --out-dtypes float32,float16
        """),
    )
    warm.add_argument("--dtypes", metavar="LIST",
                      help="comma-separated input dtypes (default: uint8, int16, uint16, int32, "
                           "float16, float32, float64)")
    warm.add_argument("--out-dtypes", metavar="LIST", default="float32",
                      help="comma-separated output dtypes (default: float32)")

    bench = commands.add_parser(
        "bench", formatter_class=formatter,
        help="time rsgt_fast against rsgt 1.1.0 (or a plain copy) for a few seconds",
        description=_wrap("Time transform_batch on synthetic CT and MR batches against a "
                          "loop of rsgt 1.1.0 calls (when rsgt is installed) and against "
                          "np.copyto into a preallocated array, the least any transform has "
                          "to do."),
        epilog=_epilog("""
            examples:
              rsgt-fast bench
              rsgt-fast bench --batch 8 --size 96 --repeat 7
        """),
    )
    bench.add_argument("--batch", type=int, default=4, help="volumes per batch (default 4)")
    bench.add_argument("--size", type=int, default=96, help="edge of each volume (default 96)")
    bench.add_argument("--repeat", type=int, default=5, help="timed runs per case (default 5)")
    return parser


def main(argv=None):
    """Run ``rsgt-fast`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else 0
        if args.command is None:
            raise UsageError(f"{PROG}: error: choose a command: preview, augment, warmup or bench "
                             f"(see {PROG} --help)")
        return {"preview": _preview, "augment": _augment, "bench": _bench,
                "warmup": _warmup}[args.command](args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except MissingExtra as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, never a traceback
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {text}", file=sys.stderr)
        return 1


def _usage(command, message):
    return UsageError(f"{PROG} {command}: error: {message} (see {PROG} {command} --help)")


def _min_max(values):
    return None if values is None else tuple(int(v) if v.is_integer() else v for v in values)


# ---------------------------------------------------------------- preview


def _preview(args):
    if (args.input is None) == (args.sample is None):
        raise _usage("preview", "give either INPUT or --sample ct|mr")
    if not 1 <= args.n <= 12:
        raise _usage("preview", f"--n must be between 1 and 12, got {args.n}")
    if args.min_max is not None and args.min_max[1] <= args.min_max[0]:
        raise _usage("preview", "--min-max needs LO < HI")
    require("matplotlib", "plot", "preview")
    from . import io

    image = io.sample(args.sample) if args.sample else io.read(args.input, args.series)
    try:
        plane = np.asarray(image.display_slice(args.slice))
    except ValueError as exc:
        raise _usage("preview", str(exc)) from None
    kind = args.normalize or (args.sample or (image.modality or "").lower() or None)
    kind = kind if kind in ("ct", "mr") else None
    bounds = _min_max(args.min_max)
    if bounds is None and kind == "ct":
        # The slice's own range within [-1024, 3071] HU (a single value if it lies outside).
        bounds = tuple(min(max(v, CT_RANGE[0]), CT_RANGE[1])
                       for v in (plane.min().item(), plane.max().item()))
    stack = np.broadcast_to(plane, (args.n,) + plane.shape)
    outputs, curves = transform_batch(stack, min_max_val=bounds, rng=args.seed,
                                      return_curves=True)
    name = io.SAMPLES[args.sample] if args.sample else Path(args.input).name
    figure = preview_figure(plane, outputs, curves, kind, name, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")
    return 0


def _display(plane, kind):
    """The original as shown: its normalised image and the linear map ``(a, b)`` used."""
    from .normalization import normalize_ct_scan, normalize_mr_scan

    if kind == "ct":
        return normalize_ct_scan(plane), (-1000.0, 3096.0)
    if kind == "mr":
        return normalize_mr_scan(plane), tuple(np.percentile(plane.astype(np.float32), [5, 95]))
    lo, hi = float(plane.min()), float(plane.max())
    return (plane.astype(np.float64) - lo) / (hi - lo or 1.0), (lo, hi)


def preview_figure(plane, outputs, curves, kind, name, seed):
    """A matplotlib figure: the original and each transformed slice, curves beneath.

    Parameters
    ----------
    plane : ndarray
        The original 2-D slice.
    outputs : ndarray
        ``(N, H, W)`` transformed slices.
    curves : Curves
        Their transfer functions.
    kind : {'ct', 'mr', None}
        How the original is normalised for display.
    name, seed
        For the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    n = len(outputs)
    figure = Figure(figsize=(2.3 * (n + 1), 5.0), layout="constrained")
    axes = figure.subplots(2, n + 1, height_ratios=[1.15, 1], squeeze=False)
    shown, (a, b) = _display(plane, kind)
    values, mapped = curves.sample(256)
    unit = " (HU)" if kind == "ct" else ""
    identity = np.clip((values[0] - a) / ((b - a) or 1.0), 0, 1)  # a constant slice: a == b
    columns = [("original", shown, values[0], identity, "C7")]
    columns += [(f"RSGT {k + 1}", outputs[k], values[k], mapped[k], f"C{k % 7}")
                for k in range(n)]
    for col, (title, picture, x, y, color) in enumerate(columns):
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        top.set_title(title, fontsize=10)
        top.set_axis_off()
        bottom.plot(x, y, color=color, linewidth=1.8)
        if x[-1] > x[0]:  # a single-valued range keeps matplotlib's own limits
            bottom.set_xlim(x[0], x[-1])
        bottom.set_ylim(-0.03, 1.03)
        bottom.set_box_aspect(1)
        bottom.grid(alpha=0.3)
        bottom.tick_params(labelsize=7)
        bottom.set_xlabel(f"input{unit}", fontsize=8)
        if col == 0:
            bottom.set_ylabel("output", fontsize=8)
            bottom.set_title(f"normalized ({kind.upper()})" if kind else "linear", fontsize=8)
        else:
            bottom.tick_params(labelleft=False)
    seed_text = "random seed" if seed is None else f"seed {seed}"
    figure.suptitle(f"Random smooth gray value transformations: {name}, {seed_text}",
                    fontsize=11)
    return figure


# ---------------------------------------------------------------- augment


def name_key(path):
    """The stream key of an input under ``--key name``: its file name's SHA-256, 63 bits."""
    digest = hashlib.sha256(Path(path).name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def input_streams(seed, inputs, key="index"):
    """One ``SeedSequence`` per input: child ``i`` (``key='index'``) or child ``name_key``."""
    root = np.random.SeedSequence(seed)
    if key == "index":
        return root.spawn(len(inputs))
    keys = [name_key(p) for p in inputs]
    return [np.random.SeedSequence(root.entropy, spawn_key=(k,)) for k in keys]


def _augment(args):
    if args.n < 1:
        raise _usage("augment", f"--n must be >= 1, got {args.n}")
    if args.min_max is not None and args.min_max[1] < args.min_max[0]:
        raise _usage("augment", "--min-max needs LO <= HI")
    if args.workers is not None and args.workers < 1:
        raise _usage("augment", f"--workers must be >= 1, got {args.workers}")
    if args.workers is not None and args.scheduler is not None:
        raise _usage("augment", "give --workers or --scheduler, not both")
    tqdm = require("tqdm", "io", "augment").tqdm
    from .io import ImageReadError

    # Absolute paths: workers of a remote cluster do not share this working folder.
    inputs = [Path(p).absolute() for p in args.inputs]
    args.output_dir = args.output_dir.absolute()
    mask = args.mask
    if mask is not None and mask != "nonzero":
        mask = Path(mask).absolute()
        if not mask.exists():
            raise _usage("augment", f"--mask {args.mask}: no such file (give an image file or "
                                    "the word nonzero)")
    options = {"bounds": _min_max(args.min_max), "dtype": args.dtype, "n": args.n,
               "series": args.series, "nan_policy": args.nan_policy, "mask": mask,
               "channel_axis": args.channel_axis}
    seeds = input_streams(args.seed, inputs, args.key)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    jobs, failed = _plan_outputs(inputs, seeds, args)
    written = 0
    progress = tqdm(total=len(inputs), desc=PROG, unit="file", file=sys.stderr, disable=None)
    progress.update(len(failed))
    for path, text in failed:
        progress.write(f"{PROG} augment: {path}: {text}", file=sys.stderr)
    failed = [path for path, _ in failed]
    with _cluster(args) as client:
        for path, error in _run_jobs(jobs, options, client):
            progress.update(1)
            if error is None:
                written += len(jobs[path][1])
                continue
            failed.append(path)
            text = " ".join(str(error).split()) or type(error).__name__
            where = "" if isinstance(error, (ImageReadError, FileProblem)) else f"{path}: "
            progress.write(f"{PROG} augment: {where}{text}", file=sys.stderr)
    progress.close()
    done = len(inputs) - len(failed)
    summary = (f"{PROG} augment: {done} of {len(inputs)} files augmented, "
               f"{written} images written to {args.output_dir}")
    print(summary + (f"; {len(failed)} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _plan_outputs(inputs, seeds, args):
    """Each input's stream and output paths, checked before anything is read.

    Returns ``(jobs, failed)``: ``jobs`` maps an input to ``(stream,
    targets)`` in the order given, ``failed`` lists ``(input, reason)``.
    """
    from . import io

    protected = {p.resolve() for p in inputs}
    claimed, jobs, failed = set(), {}, []
    for path, seed in zip(inputs, seeds, strict=True):
        try:
            if _is_zarr(path):
                targets = [args.output_dir / f"{path.stem}_rsgt{k}.zarr" for k in range(args.n)]
            else:
                targets = [io.output_path(path, k, args.output_dir) for k in range(args.n)]
            for target in targets:
                resolved = target.resolve()
                if resolved in protected:
                    raise ValueError(f"refusing to overwrite the input {target}")
                if resolved in claimed:
                    raise ValueError(f"{target} is also an output of another input")
                if target.exists() and not args.overwrite:
                    raise ValueError(f"{target} exists (use --overwrite to replace it)")
                if not _is_zarr(path):
                    io.check_writable(target, args.dtype)
        except ValueError as exc:
            failed.append((path, " ".join(str(exc).split())))
            continue
        claimed.update(t.resolve() for t in targets)
        jobs[path] = (seed, targets)
    return jobs, failed


def _is_zarr(path):
    return Path(path).suffix.lower() == ".zarr"


class FileProblem(ValueError):
    """What is wrong with an input file, in the command's terms; the message names the file."""


def _checked_voxels(path, array, nan_policy, mask):
    """The mask to pass for ``array`` (read from ``path``), after the checks a user can act on.

    ``mask`` is ``None``, ``"nonzero"`` or a mask file's path; problems raise
    :class:`FileProblem` naming the file and the option that helps.
    """
    from . import io

    name = Path(path).name
    if array.size == 0:
        raise FileProblem(f"{name} holds no voxels (its shape is {array.shape}); "
                          "leave it out of the inputs")
    floating = array.dtype.kind == "f"
    finite = np.isfinite(array) if floating else None
    if floating and nan_policy == "raise" and not finite.all():
        what = "NaN" if np.isnan(array).any() else "infinite"
        raise FileProblem(f"{name} holds {what} values; pass --nan-policy omit to transform "
                          "the finite voxels only")
    if mask is None:
        selected = None
    elif mask == "nonzero":
        selected = array != 0
    else:
        try:
            selected = np.asarray(io.read(mask).array) != 0
        except Exception as exc:
            raise FileProblem(f"--mask {Path(mask).name} cannot be read as an image: "
                              f"{' '.join(str(exc).split())}") from None
        if selected.shape != array.shape:
            raise FileProblem(f"--mask {Path(mask).name} has {selected.shape} voxels but {name} "
                              f"has {array.shape}; give a mask of the image's shape")
    counted = finite if selected is None else (selected if finite is None else selected & finite)
    if counted is not None and not counted.any():
        if selected is None:
            raise FileProblem(f"{name} holds no finite value; there is nothing to transform")
        source = "nonzero" if mask == "nonzero" else Path(mask).name
        raise FileProblem(f"--mask {source} leaves no {'finite ' if floating else ''}voxel of "
                          f"{name} to transform; check the mask")
    return selected


def _channel_axis(name, shape, axis):
    """The batch's axis of an image's channel ``axis`` (``None`` stays), or :class:`FileProblem`.

    ``shape`` is one image's (a .zarr array's includes its batch axis 0).
    """
    if axis is None:
        return None
    if not -len(shape) <= axis < len(shape):
        raise FileProblem(f"--channel-axis {axis} is out of range for {name}, which has "
                          f"{len(shape)} axes {tuple(shape)}; give an axis from 0 to "
                          f"{len(shape) - 1} (or from -1 to -{len(shape)})")
    return axis + 1 if axis >= 0 else axis


def augment_file(path, seed, targets, bounds, dtype, n, series=None, nan_policy="raise",
                 mask=None, channel_axis=None):
    """Write the ``n`` transformed copies of one input file to ``targets``.

    Copies are drawn in one batch from ``numpy.random.default_rng(seed)``, so
    a file's outputs depend only on its stream, not on where it runs.
    """
    from . import io

    image = io.read(path, series if Path(path).is_dir() else None)
    selected = _checked_voxels(path, image.array, nan_policy, mask)
    axis = _channel_axis(Path(path).name, image.array.shape, channel_axis)
    stack = np.broadcast_to(image.array, (n,) + image.array.shape)
    outputs = transform_batch(stack, min_max_val=bounds, dtype=dtype, nan_policy=nan_policy,
                              mask=selected, channel_axis=axis,
                              rng=np.random.default_rng(seed))
    for target, output in zip(targets, outputs, strict=True):
        io.write(image.with_array(output), target)


def augment_zarr(path, seed, targets, bounds, dtype, n, nan_policy="raise", mask=None,
                 channel_axis=None):
    """Write ``n`` transformed copies of a zarr batch (axis 0) through ``rsgt_fast.dask``.

    Copy ``k`` draws its curves from child ``k`` of ``seed``; blocks are read,
    transformed and written in parallel, chunk by chunk, on the current Dask
    scheduler.
    """
    rdask = require("rsgt_fast.dask", "dask", "augment of .zarr")
    da = require("dask.array", "dask", "augment of .zarr")
    try:
        x = da.from_zarr(str(path))
    except Exception as exc:
        raise ValueError(f"cannot read {path} as a zarr array: {exc}") from None
    if mask == "nonzero":
        mask = x != 0
    elif mask is not None:
        raise FileProblem(f"--mask {Path(mask).name}: a .zarr input takes --mask nonzero only")
    if channel_axis is not None:
        _channel_axis(Path(path).name, x.shape, channel_axis)
        if channel_axis % x.ndim == 0:
            raise FileProblem(f"--channel-axis {channel_axis} of {Path(path).name} is its batch "
                              f"axis 0 (shape {x.shape}); give an axis from 1 to {x.ndim - 1} "
                              "(a .zarr array's axes count its batch axis)")
    for target, child in zip(targets, seed.spawn(n), strict=True):
        lazy = rdask.transform_batch(x, min_max_val=bounds, dtype=dtype, nan_policy=nan_policy,
                                     mask=mask, channel_axis=channel_axis,
                                     rng=np.random.default_rng(child))
        lazy.to_zarr(str(target), overwrite=True)


def _run_jobs(jobs, options, client):
    """Yield ``(input, error or None)`` as each input finishes."""
    def call(path):
        seed, targets = jobs[path]
        fn = augment_zarr if _is_zarr(path) else augment_file
        extra = () if _is_zarr(path) else (options["series"],)
        return fn, (path, seed, targets, options["bounds"], options["dtype"], options["n"], *extra,
                    options["nan_policy"], options["mask"], options["channel_axis"])

    def here(path):
        fn, call_args = call(path)
        try:
            fn(*call_args)
        except Exception as exc:
            return path, exc
        return path, None

    if client is None:
        for path in jobs:
            yield here(path)
        return
    distributed = require("distributed", "dask", "augment --workers")
    run = uuid.uuid4().hex  # keys of this run only, on a scheduler others may share
    # zarr inputs are graphs of their own: run them from here, on the cluster.
    futures = {}
    for path in jobs:
        if not _is_zarr(path):
            fn, call_args = call(path)
            futures[client.submit(fn, *call_args, key=f"rsgt-fast-augment-{run}-{len(futures)}",
                                  pure=False)] = path
    for path in jobs:
        if _is_zarr(path):
            yield here(path)
    for future in distributed.as_completed(futures):
        path = futures[future]
        try:
            future.result()
        except Exception as exc:
            yield path, exc
        else:
            yield path, None


@contextlib.contextmanager
def _cluster(args):
    """A ``dask.distributed`` client for ``--workers``/``--scheduler``, else ``None``."""
    if args.workers is None and args.scheduler is None:
        yield None
        return
    distributed = require("distributed", "dask", "augment --workers")
    if args.scheduler is not None:
        with distributed.Client(args.scheduler) as client:
            yield client
        return
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            yield client


# ---------------------------------------------------------------- bench


def _median_time(fn, repeat):
    fn()  # compile or load the kernels, fault in the pages
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _warmup(args):
    from .warmup import DTYPES, warmup

    def listed(text, option):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise _usage("warmup", f"{option} needs at least one dtype")
        return items

    dtypes = listed(args.dtypes, "--dtypes") if args.dtypes else list(DTYPES)
    out_dtypes = listed(args.out_dtypes, "--out-dtypes")
    try:
        done = warmup(dtypes, out_dtypes)
    except (TypeError, ValueError) as exc:
        raise _usage("warmup", str(exc)) from None
    for name, seconds in done.seconds.items():
        print(f"{name}: {seconds:.1f} s")
    total = sum(done.seconds.values())
    print(f"{PROG} warmup: {len(done.seconds)} input dtypes ({done.kernels} kernels) "
          f"in {total:.1f} s")
    if done.cache is None:
        print(f"{PROG} warmup: numba has no writable cache here, so nothing was kept; set "
              "NUMBA_CACHE_DIR to a writable folder", file=sys.stderr)
        return 1
    print(f"numba cache: {done.cache}")
    return 0


def _bench(args):
    if args.batch < 1 or args.size < 2 or args.repeat < 1:
        raise _usage("bench", "--batch and --repeat must be >= 1 and --size >= 2")
    import numba

    try:
        from rsgt.augmentation import random_smooth_grayvalue_transform as rsgt_transform
    except ImportError:
        rsgt_transform = None
    rng = np.random.default_rng(0)
    shape = (args.batch,) + (args.size,) * 3
    ct = np.clip(rng.normal(40.0, 400.0, shape), *CT_RANGE).astype(np.int16)
    ct.reshape(args.batch, -1)[:, :2] = CT_RANGE
    mr = np.maximum(rng.normal(500.0, 150.0, shape), 0).astype(np.float32)
    cases = [(f"int16 CT, range {CT_RANGE}", ct, CT_RANGE), ("float32 MR, own min/max", mr, None)]

    head = ["case", "rsgt_fast", "rsgt 1.1.0 loop" if rsgt_transform else "rsgt (missing)",
            "np.copyto floor", "speed-up"]
    rows = [[label, *_bench_case(x, bounds, rsgt_transform, args.repeat)]
            for label, x, bounds in cases]
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    print(f"{PROG} {__version__}: batch of {args.batch} volumes of {args.size}^3 voxels, "
          f"median of {args.repeat} runs, {numba.get_num_threads()} threads")
    for row in [head] + rows:
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
    if rsgt_transform is None:
        print("rsgt is not installed; pip install rsgt==1.1.0 to compare with it")
    return 0


def _bench_case(x, bounds, rsgt_transform, repeat):
    """Timings of one case as table cells: ours, rsgt's (or '-'), the floor, the speed-up."""
    out = np.empty(x.shape, np.float32)
    ours = _median_time(lambda: transform_batch(x, min_max_val=bounds, out=out), repeat)
    floor = _median_time(lambda: np.copyto(out, x), repeat)
    theirs = None
    if rsgt_transform is not None:
        theirs = _median_time(
            lambda: [rsgt_transform(e, min_max_val=bounds, dtype="float32") for e in x], repeat)
    return [_ms(ours), _ms(theirs), _ms(floor), f"{theirs / ours:.1f}x" if theirs else "-"]


def _ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    sys.exit(main())
