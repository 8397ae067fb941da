"""Run the benchmark suite and print its results as a Markdown report.

Usage, from the repository root::

    python bench/report.py [--output FILE] [--json FILE] [--min-rounds N]

The suite runs with benchmarking enabled (a few minutes); its progress goes to
stderr and the report to stdout.  ``--json`` renders a result file of an earlier
run instead of running the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from importlib import metadata
from pathlib import Path

import numba

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def pytest_command(json_path, min_rounds):
    """The command that runs the suite and writes pytest-benchmark's JSON to ``json_path``."""
    return [sys.executable, "-m", "pytest", "bench", "--benchmark-enable",
            f"--benchmark-json={json_path}", f"--benchmark-min-rounds={min_rounds}",
            "-p", "no:cacheprovider", "-q"]


def busy_cpu_seconds():
    """CPU seconds the whole machine has spent busy since boot (``None`` off Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_suite(json_path, min_rounds):
    """Run the suite from the repository root, its output going to stderr.

    Returns
    -------
    wall : float
        Seconds the run took.
    others : float or None
        CPU seconds the machine spent busy outside the run meanwhile (other
        processes, and time stolen by a hypervisor): a measure of contention.
    """
    machine, ours = busy_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(pytest_command(json_path, min_rounds), cwd=ROOT, stdout=sys.stderr,
                          check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"report.py: the benchmark suite failed (exit status {done.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime + after.ru_stime) - (ours.ru_utime + ours.ru_stime)
    others = None if machine is None else max(0.0, busy_cpu_seconds() - machine - used)
    return wall, others


def fmt_time(seconds):
    """A duration in ms with three significant digits (``'6.49 ms'``, ``'412 ms'``)."""
    ms = seconds * 1e3
    return f"{ms:.{2 if ms < 10 else 1 if ms < 100 else 0}f} ms"


def ratio(medians, role, t, text):
    """``text`` formatted with ``medians[role] / t``, or ``''`` if there is no such role."""
    return text.format(medians[role] / t) if role in medians else ""


def timing_table(benchmarks):
    """Markdown table of the timed cases: medians, speed-up over rsgt, shares of the floors.

    Parameters
    ----------
    benchmarks : list of dict
        The ``benchmarks`` of a pytest-benchmark JSON file.

    Returns
    -------
    list of str
        Table lines.
    """
    groups = defaultdict(list)
    for bench in benchmarks:
        if "contender" in bench["extra_info"]:
            bench["extra_info"].setdefault("role", "other")
            groups[bench["group"]].append(bench)
    columns = ["Case", "Contender", "Median", "x faster than rsgt", "Share of floor",
               "Share of fresh floor"]
    lines = ["| " + " | ".join(columns) + " |", "|---|---|---:|---:|---:|---:|"]
    order = ["ours", "ours_out", "rsgt", "other", "floor", "floor_fresh"]
    for group in sorted(groups):
        members = sorted(groups[group], key=lambda b: order.index(b["extra_info"]["role"]))
        median = {b["extra_info"]["role"]: b["stats"]["median"] for b in members}
        for i, bench in enumerate(members):
            info, t = bench["extra_info"], bench["stats"]["median"]
            cells = ["", "", ""]
            if info["role"] in ("ours", "ours_out"):
                cells[:2] = ratio(median, "rsgt", t, "{:.1f}x"), ratio(median, "floor", t, "{:.0%}")
            if info["role"] == "ours":
                cells[2] = ratio(median, "floor_fresh", t, "{:.0%}")
            name = info["contender"] + (f" ({info['note']})" if "note" in info else "")
            lines.append(f"| {group if i == 0 else ''} | {name} | {fmt_time(t)} | "
                         + " | ".join(cells) + " |")
    return lines


def memory_table(benchmarks):
    """Markdown table of the peak resident memory measurements."""
    lines = ["| Call | Peak RSS increase | Output size | Peak / output | rsgt peak | rsgt / ours |",
             "|---|---:|---:|---:|---:|---:|"]
    for bench in benchmarks:
        info = bench["extra_info"]
        if info.get("kind") != "memory":
            continue
        peak, output, rsgt = info["peak_bytes"], info["output_bytes"], info["rsgt_peak_bytes"]
        flag = "" if info["counter_reset"] else " (peak counter not reset)"
        lines.append(
            f"| {info['call']}{flag} | {peak / MIB:.1f} MiB | {output / MIB:.1f} MiB "
            f"| {peak / output:.2f} | {'' if rsgt is None else f'{rsgt / MIB:.1f} MiB'} "
            f"| {'' if rsgt is None or peak <= 0 else f'{rsgt / peak:.1f}x'} |")
    return lines


def startup_table(benchmarks):
    """Markdown table of the fresh-process start-up times."""
    lines = []
    for bench in benchmarks:
        info = bench["extra_info"]
        if info.get("kind") != "startup":
            continue
        shape = "x".join(map(str, info["shape"]))
        intro = (f"Fresh process running `import rsgt_fast` and one `transform_batch` of "
                 f"{shape} int16 zeros (known range); medians of {info['runs']} (warm) and "
                 f"{max(1, info['runs'] // 2)} (cold, each with a new empty `NUMBA_CACHE_DIR`) "
                 f"runs.")
        lines += [intro, "",
                  "| Numba cache | Process, start to exit | import rsgt_fast | First call |",
                  "|---|---:|---:|---:|"]
        for cache in ("warm", "cold"):
            lines.append(f"| {cache} | {fmt_time(info[f'{cache}_wall_s'])} "
                         f"| {fmt_time(info[f'{cache}_import_s'])} "
                         f"| {fmt_time(info[f'{cache}_first_call_s'])} |")
        lines.append(f"| (`python -c 'import numpy'`) | {fmt_time(info['python_numpy_s'])} | | |")
    return lines


def startup_paths_table(benchmarks):
    """Markdown table of each path's first call on an empty and on a warm numba cache."""
    lines = []
    for bench in benchmarks:
        info = bench["extra_info"]
        if info.get("kind") != "startup_paths":
            continue
        rows = info["rows"]
        variants = list(dict.fromkeys(row["variant"] for row in rows))
        paths = list(dict.fromkeys(row["path"] for row in rows))
        by = {(row["path"], row["variant"]): row for row in rows}
        lines += ["First call of one path in a fresh process, in each variant: on an empty "
                  "`NUMBA_CACHE_DIR` (compilation) and on the cache that run filled (loading).",
                  "", "| Path | " + " | ".join(f"{v}, empty | {v}, warm" for v in variants) + " |",
                  "|---|" + "---:|---:|" * len(variants)]

        def cells(path):
            return " | ".join(
                f"{fmt_time(by[path, v]['cold_s'])} | {fmt_time(by[path, v]['warm_s'])}"
                if (path, v) in by else " | " for v in variants)

        singles = [p for p in paths if not p.startswith("every path")]
        for path in singles:
            lines.append(f"| {path} | {cells(path)} |")
        totals = " | ".join(
            f"{fmt_time(sum(by[p, v]['cold_s'] for p in singles if (p, v) in by))} | "
            for v in variants)
        lines.append(f"| all of them, one process each | {totals} |")
        for path in paths:
            if path not in singles:
                lines.append(f"| {path} | {cells(path)} |")
    return lines


def age_table(benchmarks):
    """Markdown table of early against late calls in a fresh process (case 15)."""
    lines = []
    for bench in benchmarks:
        info = bench["extra_info"]
        if info.get("kind") != "age":
            continue
        size = info["size"]
        lines += [f"Sixty calls in each of three fresh processes on a warm numba cache, default "
                  f"settings (medians over the three): the batch (8 x {size}^3 int16 into "
                  f"`out=`) and the facade (one {size}^3 int16 volume).", "",
                  "| Call | First call | Calls 2-11, median | Calls 41-60, median | "
                  "2-11 / 41-60 |", "|---|---:|---:|---:|---:|"]
        for row in info["rows"]:
            lines.append(f"| {row['path']} | {fmt_time(row['first_s'])} "
                         f"| {fmt_time(row['early_s'])} | {fmt_time(row['late_s'])} "
                         f"| {row['early_s'] / row['late_s']:.2f} |")
    return lines


def loader_table(benchmarks):
    """Markdown table of DataLoader epochs with fresh workers (case 16)."""
    lines = []
    for bench in benchmarks:
        info = bench["extra_info"]
        if info.get("kind") != "loader":
            continue
        size = info["size"]
        rows = {row["transform"]: row for row in info["rows"]}
        names = {"rsgt_fast": "rsgt_fast.monai.RandSmoothGrayValued",
                 "monai": "monai RandHistogramShiftd"}
        lines += [f"A MONAI `DataLoader` of 8 float32 samples of 1 x {size}^3, batches of 2, 2 "
                  "worker processes made anew each epoch; a fresh process on a warm numba "
                  "cache.", "",
                  "| Transform | Building it | Epoch, median | Epoch / RandHistogramShiftd's |",
                  "|---|---:|---:|---:|"]
        for key, row in rows.items():
            lines.append(f"| {names[key]} | {fmt_time(row['built_s'])} "
                         f"| {fmt_time(row['epoch_s'])} "
                         f"| {row['epoch_s'] / rows['monai']['epoch_s']:.2f} |")
    return lines


def machine_line(result):
    """CPU model and core counts, from the result file where it has them."""
    cpu = result.get("machine_info", {}).get("cpu", {}).get("brand_raw")
    if not cpu:
        try:
            with open("/proc/cpuinfo") as cpuinfo:
                cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo
                           if line.startswith("model name"))
        except (OSError, StopIteration):
            cpu = platform.processor() or "unknown CPU"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu}, {os.cpu_count()} logical cores ({usable} usable, "
            f"{numba.config.NUMBA_NUM_THREADS} numba threads), {platform.system()}")


TIMING_NOTE = (
    "Median of at least {rounds} rounds.  *x faster than rsgt*: rsgt's median over this "
    "median.  *Share of floor*: the floor's median over this median, the floor being "
    "`np.copyto` of the input into a preallocated output of the same dtype (one read, one "
    "write, on one core; the transforms use every core, so shares above 100 % are possible).  "
    "*Share of fresh floor*: the same for `x.astype(dtype)`, which writes a new array and so "
    "pays for its page faults, as every call returning a new array does.  `(out=)` calls "
    "write into a preallocated array, like the floor."
)
DATA_NOTE = (
    "Data: int16 CT phantoms (body, lungs, bony shell, organs, 20 HU noise, air and a metal "
    "implant, so that each volume spans -1024..3071), float32 MR-like voxels ~ N(500, 150) "
    "clipped at 0, uniform uint16 over 0..65535."
)
MEMORY_NOTE = (
    "Increase of the peak resident set during one call in a fresh process, after a warm-up "
    "call on the same input (the input is allocated beforehand and not counted)."
)


def render(result, command, contention=None):
    """The whole Markdown report for one pytest-benchmark result.

    ``contention`` is ``(wall, others)`` from :func:`run_suite`, if known.
    """
    benchmarks = result["benchmarks"]
    min_rounds = min((b["options"]["min_rounds"] for b in benchmarks), default=0)
    versions = ", ".join(f"{name} {metadata.version(dist)}" for name, dist in [
        ("numpy", "numpy"), ("numba", "numba"), ("rsgt_fast", "rsgt-fast"), ("rsgt", "rsgt")])
    date = result["datetime"][:16].replace("T", " ")
    footnote = (f"Machine: {machine_line(result)}.  Date: {date} UTC.  Python "
                f"{platform.python_version()}, {versions}.  Command: `{command}` (run by "
                f"`python bench/report.py`).")
    if contention is not None and contention[1] is not None:
        wall, others = contention
        footnote += (f"  During the {wall:.0f} s run the rest of the machine used {others:.1f} "
                     f"CPU-seconds ({others / wall:.2f} cores on average; much more than zero "
                     f"would have disturbed the parallel kernels' timings).")
    lines = [
        "## Timings", "", TIMING_NOTE.format(rounds=min_rounds), "",
        *timing_table(benchmarks), "", DATA_NOTE, "",
        "## Peak memory", "", MEMORY_NOTE, "", *memory_table(benchmarks), "",
        "## Start-up", "", *(startup_table(benchmarks) or ["Not measured."]), "",
        *startup_paths_table(benchmarks), "",
        "## The age of the process", "", *(age_table(benchmarks) or ["Not measured."]), "",
        *loader_table(benchmarks), "", footnote,
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--json", type=Path, help="render this result file instead of running")
    parser.add_argument("--min-rounds", type=int, default=5, help="rounds per benchmark (5)")
    parser.add_argument("--save-json", type=Path, help="also keep the raw results here")
    args = parser.parse_args(argv)

    command = shlex.join(["python", *pytest_command("RESULTS.json", args.min_rounds)[1:]])
    contention = None
    if args.json is not None:
        result = json.loads(args.json.read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "results.json"
            contention = run_suite(path, args.min_rounds)
            result = json.loads(path.read_text())
            if args.save_json is not None:
                args.save_json.write_text(path.read_text())
    report = render(result, command, contention)
    sys.stdout.write(report)
    if args.output is not None:
        args.output.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
