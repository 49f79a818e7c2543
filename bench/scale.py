"""The whole workflow at the size users run it: time and peak memory of every stage, growing with N.

Simulates one large genome (default 10 chromosomes of 10 Mb = 100 Mb, regions of 1,000 bp with the
default planted motifs), then for each number of regions N (smallest first) runs every stage of the
workflow as the Snakefile does, one `genomatt` command per rule: extract, attribute (its shards side by
side, as a local run with one core per shard does), gather, motifs, hits, report. The model is trained
once, on every simulated region, capped at ``--epochs`` epochs (a training epoch costs the same per
window at any N; the default run stops early after 30-50 epochs). Each command runs in its own
process; its wall time, CPU time and peak resident memory come from ``os.wait4``. A ChromBPNet-like model (``bpnet``, 2,114 bp, 512 filters, 8 dilated layers,
random weights) is timed on the attribution stage alone.

Results are appended to a JSON-lines file as each command finishes, so a run cut short keeps what it
measured; the markdown tables (with fitted growth exponents and projections to 300,000 regions) are
printed at the end, or from that file alone with ``--tables-only``.

Usage: .venv/bin/python bench/scale.py --workdir DIR [--sizes 1000 3000 10000] [--tables-only]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

STAGES = ("simulate", "extract", "train", "attribute", "gather", "motifs", "hits", "report")
CHROMBPNET = {
    "architecture": "bpnet",
    "filters": 512,
    "n_layers": 8,
    "first_kernel_size": 21,
    "kernel_size": 3,
    "pooling": "average",
}
CHROMBPNET_WIDTH = 2114
TARGET_REGIONS = 300_000


def run_stage(results: Path, command: list[list[str]], record: dict, log: Path) -> dict:
    """Run one or more commands side by side; record wall time, CPU time and peak RSS of each.

    Parameters
    ----------
    results
        JSON-lines file the record is appended to.
    command
        Argument lists run at once (the shards of one stage), each in its own process.
    record
        Keys identifying the stage (``stage``, ``n``, ...), completed with the measurements.
    log
        File receiving the commands' standard output and error.

    Returns
    -------
    dict
        ``record`` with ``wall_s`` (all commands), ``cpu_s`` (summed), ``peak_rss_mib`` (largest
        process) and ``processes``.
    """
    started = time.perf_counter()
    with log.open("a") as stream:
        processes = [subprocess.Popen(arguments, stdout=stream, stderr=subprocess.STDOUT) for arguments in command]
        usages = []
        for process in processes:
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            usages.append(usage)
    wall = time.perf_counter() - started
    failed = [process.args for process in processes if process.returncode != 0]
    if failed:
        raise SystemExit(f"{record['stage']} failed (see {log}): {' '.join(failed[0])}")
    record = {
        **record,
        "wall_s": round(wall, 2),
        "cpu_s": round(sum(usage.ru_utime + usage.ru_stime for usage in usages), 2),
        "peak_rss_mib": round(max(usage.ru_maxrss for usage in usages) / 1024, 1),
        "processes": len(processes),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with results.open("a") as stream:
        stream.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)
    return record


def genomatt(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "genomatt.cli.main", "-q", *arguments]


def subset_regions(genome: Path, n: int, folder: Path) -> tuple[Path, Path]:
    """``n`` regions drawn evenly from the simulated ones (seed 0), and the task labels of those regions."""
    regions = pd.read_csv(genome / "regions.bed", sep="\t", header=None)
    if n > len(regions):
        raise SystemExit(f"--sizes: {n} regions asked, the genome has {len(regions)}")
    chosen = np.sort(np.random.default_rng(0).choice(len(regions), size=n, replace=False))
    subset = regions.iloc[chosen]
    regions_bed = folder / "regions.bed"
    subset.to_csv(regions_bed, sep="\t", header=False, index=False)
    tasks = pd.read_csv(genome / "tasks.bed", sep="\t", header=None)
    keys = set(zip(subset[0], subset[1], subset[2]))
    in_subset = [key in keys for key in zip(tasks[0], tasks[1], tasks[2])]
    tasks_bed = folder / "tasks.bed"
    tasks[in_subset].to_csv(tasks_bed, sep="\t", header=False, index=False)
    return regions_bed, tasks_bed


def train(args: argparse.Namespace, genome: Path, results: Path) -> Path:
    """The model every size is explained with, trained on all of the genome's task regions."""
    folder = Path(args.workdir) / "model"
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.pt"
    if not model.exists():
        n = sum(1 for _ in (genome / "regions.bed").open())
        run_stage(results, [genomatt("train", "--fasta", str(genome / "genome.fa"),
                                     "--task-regions", str(genome / "tasks.bed"),
                                     "--labels-column", "name", "--width", str(args.width),
                                     "--epochs", str(args.epochs), "--out", str(model))],
                  {"stage": "train", "n": n, "width": args.width, "epochs": args.epochs}, folder / "train.log")
    return model


def run_size(args: argparse.Namespace, genome: Path, model: Path, n: int, results: Path) -> None:
    """Every stage after simulation on ``n`` regions."""
    folder = Path(args.workdir) / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "commands.log"
    regions_bed, tasks_bed = subset_regions(genome, n, folder)
    fasta = str(genome / "genome.fa")
    width = str(args.width)
    base = {"n": n, "width": args.width}

    def stage(name: str, *commands: list[str], **extra) -> dict:
        return run_stage(results, list(commands), {"stage": name, **base, **extra}, log)

    stage("extract", genomatt("extract", "--fasta", fasta, "--regions", str(regions_bed), "--width", width,
                              "--out", str(folder / "regions.h5")))
    shards = [
        genomatt("attribute", "--regions-h5", str(folder / "regions.h5"), "--model", str(model),
                 "--out", str(folder / f"contrib.{shard}.h5"), "--shard", f"{shard}/{args.shards}",
                 "--references", str(args.references), "--batch-size", "128", "--device", "cpu",
                 "--hit-max-rule", "shapley")
        for shard in range(args.shards)
    ]
    stage("attribute", *shards, references=args.references)
    stage("gather", genomatt("gather", "--inputs", *(str(folder / f"contrib.{shard}.h5") for shard in range(args.shards)),
                             "--out", str(folder / "contrib.h5")))
    for shard in range(args.shards):
        (folder / f"contrib.{shard}.h5").unlink()
    task_options = ["--task-regions", str(tasks_bed), "--labels-column", "name"]
    stage("motifs", genomatt("motifs", "--contrib", str(folder / "contrib.h5"), "--out", str(folder / "motifs" / "motifs.h5"),
                             "--threads", "2", "--jaspar-release", "JASPAR2024", "--jaspar-tax-group", "all",
                             *task_options))
    stage("hits", genomatt("hits", "--contrib", str(folder / "contrib.h5"), "--motifs", str(folder / "motifs" / "motifs.h5"),
                           "--fasta", fasta, "--out-dir", str(folder / "hits"), "--tracks-dir", str(folder / "tracks"),
                           "--device", "cpu", *task_options))
    stage("report", genomatt("report", "--contrib", str(folder / "contrib.h5"), "--motifs", str(folder / "motifs" / "motifs.h5"),
                             "--hits", str(folder / "hits" / "hits.h5"), "--metrics", str(model.with_suffix(".metrics.json")),
                             "--out", str(folder / "report.html")))


def run_chrombpnet(args: argparse.Namespace, genome: Path, results: Path) -> None:
    """Attribution of ``--chrombpnet-regions`` regions with a random-weight ChromBPNet-like model."""
    from genomatt.models import build_model, save_model

    folder = Path(args.workdir) / "chrombpnet"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "commands.log"
    n = args.chrombpnet_regions
    regions_bed, _ = subset_regions(genome, n, folder)
    model = build_model({**CHROMBPNET, "n_tasks": 1, "input_length": CHROMBPNET_WIDTH})
    save_model(model, folder / "model.pt", ["accessibility"], training_config={"random_weights": True})
    base = {"n": n, "width": CHROMBPNET_WIDTH, "model": "chrombpnet-like"}
    run_stage(results, [genomatt("extract", "--fasta", str(genome / "genome.fa"), "--regions", str(regions_bed),
                                 "--width", str(CHROMBPNET_WIDTH), "--out", str(folder / "regions.h5"))],
              {"stage": "extract", **base}, log)
    shards = [
        genomatt("attribute", "--regions-h5", str(folder / "regions.h5"), "--model", str(folder / "model.pt"),
                 "--out", str(folder / f"contrib.{shard}.h5"), "--shard", f"{shard}/{args.shards}",
                 "--references", str(args.references), "--batch-size", "64", "--device", "cpu",
                 "--hit-max-rule", "shapley")
        for shard in range(args.shards)
    ]
    run_stage(results, shards, {"stage": "attribute", **base, "references": args.references}, log)


def growth_exponent(rows: pd.DataFrame, column: str) -> float:
    """Slope of log(value) against log(N) over the sizes measured (least squares)."""
    if len(rows) < 2:
        return float("nan")
    return float(np.polyfit(np.log(rows["n"]), np.log(rows[column].clip(lower=1e-3)), 1)[0])


def tables(results: Path) -> str:
    """Markdown tables of the measurements in ``results``.

    Growth exponents are fitted on CPU time, steadier than wall time on a shared machine. The
    projection to 300,000 regions scales the largest measured CPU time by ``(300,000 / N)^max(b, 1)``
    (never less than linear: fixed start-up costs flatten the fit at small N).
    """
    records = pd.DataFrame([json.loads(line) for line in results.read_text().splitlines() if line.strip()])
    if "model" not in records:
        records["model"] = None
    main = records[records["model"].isna()]
    per_size = main[~main["stage"].isin(["simulate", "train"])]
    totals = per_size.groupby("n")["cpu_s"].sum()
    lines = ["| stage | N | wall s | CPU s | peak RSS MiB | share of the N's CPU |", "|---|---:|---:|---:|---:|---:|"]
    for record in main.sort_values(["n"], kind="stable").itertuples():
        share = "—" if record.stage in ("simulate", "train") else f"{record.cpu_s / totals[record.n]:.0%}"
        lines.append(f"| {record.stage} | {record.n:,} | {record.wall_s:.1f} | {record.cpu_s:.1f} | "
                     f"{record.peak_rss_mib:,.0f} | {share} |")
    lines += ["", "| stage | sizes | CPU exponent b (CPU ∝ N^b) | peak RSS exponent | projected CPU hours at 300k |",
              "|---|---|---:|---:|---:|"]
    total = 0.0
    for name in STAGES[1:]:
        rows = per_size[per_size["stage"] == name].sort_values("n")
        if len(rows) < 2:
            continue
        b, m = growth_exponent(rows, "cpu_s"), growth_exponent(rows, "peak_rss_mib")
        largest = rows.iloc[-1]
        projected = largest["cpu_s"] * (TARGET_REGIONS / largest["n"]) ** max(b, 1.0)
        total += projected
        sizes = ", ".join(f"{n:,}" for n in rows["n"])
        lines.append(f"| {name} | {sizes} | {b:.2f} | {m:.2f} | {projected / 3600:,.1f} |")
    lines.append(f"| all of these | | | | {total / 3600:,.1f} |")
    side = records[records["model"].notna()]
    if not side.empty:
        lines += ["", "| model | stage | N | width | wall s | CPU s | peak RSS MiB | CPU s per region |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for record in side.itertuples():
            lines.append(f"| {record.model} | {record.stage} | {record.n:,} | {record.width:,} | {record.wall_s:.1f} | "
                         f"{record.cpu_s:.1f} | {record.peak_rss_mib:,.0f} | {record.cpu_s / record.n:.1f} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} × {cpu}, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="folder for the genome and every stage's outputs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000], help="numbers of regions N")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--n-chromosomes", type=int, default=10)
    parser.add_argument("--chromosome-length", type=int, default=10_000_000)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (cap)")
    parser.add_argument("--references", type=int, default=20)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--chrombpnet-regions", type=int, default=100, help="0 skips the ChromBPNet-like model")
    parser.add_argument("--tables-only", action="store_true", help="print the tables of an earlier run")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    results = workdir / "results.jsonl"
    if not args.tables_only:
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}", flush=True)
        genome = workdir / "genome"
        if not (genome / "manifest.json").exists():
            run_stage(results, [genomatt("simulate", "--out-dir", str(genome),
                                         "--n-chromosomes", str(args.n_chromosomes),
                                         "--chromosome-length", str(args.chromosome_length),
                                         "--region-width", str(args.width), "--n-positives", str(max(args.sizes)),
                                         "--n-negatives", str(max(args.sizes) // 2))],
                      {"stage": "simulate", "n": max(args.sizes), "width": args.width,
                       "genome_mb": args.n_chromosomes * args.chromosome_length / 1e6}, workdir / "simulate.log")
        if args.chrombpnet_regions:
            run_chrombpnet(args, genome, results)
        model = train(args, genome, results)
        for n in sorted(args.sizes):
            run_size(args, genome, model, n, results)
    print(tables(results))


if __name__ == "__main__":
    main()
