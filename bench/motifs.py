"""Benchmark: motif discovery acceptance on the simulated genome, and time and memory versus seqlets.

1. Acceptance (with ``--truth``): discovery in every task of the contribution file
   (``discover_task_motifs``, the library function ``genomatt motifs`` calls, with its defaults) and
   TOMTOM matching against JASPAR, then for every planted motif of ``truth.tsv`` the discovered motif
   assigned to it (best JASPAR match is the planted matrix or
   one of its TF family, q < 0.05), its seqlets, best match and q-value; and the fraction of the seqlets
   of assigned motifs that overlap a planted instance of their motif (acceptance: >= 90% for each motif).
2. Scaling: one task's contributions, regions replicated with small noise added to the hypothetical
   contributions until about N seqlets are called (N = ``--sizes``; a file with enough regions is only
   subset); discovery (``discover_motifs``, no seqlet cap binding) timed in a fresh process after a
   warm-up run: wall time, CPU time (with tfmodisco-lite's forked children) and peak resident memory
   (largest of the process and of those children).

Run: ``.venv/bin/python bench/motifs.py CONTRIB [--truth truth.tsv [--task-regions tasks.bed]]
[--sizes 2000 10000 50000]``
(prints markdown tables).
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from planted import planted_matrix

from genomatt.contributions import read_contributions
from genomatt.motifs.discovery import DiscoverySettings, discover_motifs, resolve_window
from genomatt.motifs.jaspar import DEFAULT_RELEASE
from genomatt.motifs.matching import load_database, match_motifs
from genomatt.motifs.seqlets import call_seqlets, seqlet_geometry
from genomatt.motifs.task_discovery import discover_task_motifs
from genomatt.task_regions import read_task_regions, task_region_rows

WARM_UP_REGIONS = 300


def acceptance(contrib: Path, truth_path: Path, threads: int, release: str, tax_group: str,
               task_regions: Path | None) -> None:
    start = time.perf_counter()
    info = read_contributions(contrib)
    window_start, window = resolve_window(None, info.length)
    # The simulated tasks.bed names each region's task in its name column.
    rows = (task_region_rows(info.regions, info.tasks, read_task_regions([task_regions], "name"))
            if task_regions else None)
    discoveries = discover_task_motifs(info, window_start, window, DiscoverySettings(threads=threads), rows)
    motifs = [motif for discovery in discoveries for motif in discovery.motifs]
    if motifs:
        match_motifs(motifs, load_database(None, release, "CORE", None if tax_group == "all" else tax_group),
                     threads=threads)
    seconds = time.perf_counter() - start
    seqlets = pd.concat([discovery.motif_seqlets for discovery in discoveries], ignore_index=True)
    truth = pd.read_csv(truth_path, sep="\t")
    planted = truth.drop_duplicates("motif_id").set_index("motif_id")["motif_name"].to_dict()
    own = truth.drop_duplicates("task").set_index("task")["motif_id"].to_dict()
    print(f"\nDiscovery and matching on {contrib} ({threads} threads): {seconds:.1f} s, {len(motifs)} motifs\n")

    rows = []
    for motif in motifs:
        matrix_id = planted_matrix(motif.matches, planted, release, own.get(motif.task))
        motif_seqlets = seqlets[seqlets["motif"] == motif.name]
        overlap = np.nan
        if matrix_id is not None:
            instances = truth[truth["motif_id"] == matrix_id]
            overlap = np.mean([((instances["chrom"] == s.chrom) & (instances["start"] < s.end)
                                & (instances["end"] > s.start)).any() for s in motif_seqlets.itertuples()])
        best = motif.matches[0] if motif.matches else {"id": "-", "name": "-", "q": np.nan}
        rows.append({"motif": motif.name, "seqlets": motif.n_seqlets, "best": f"{best['id']} {best['name']}",
                     "q": best["q"], "planted": matrix_id, "overlap": overlap})
    table = pd.DataFrame(rows, columns=["motif", "seqlets", "best", "q", "planted", "overlap"])

    print("| planted motif | discovered motif | seqlets | best match | q-value | found |")
    print("|---|---|---:|---|---:|---|")
    for matrix_id, name in planted.items():
        mine = table[table["planted"] == matrix_id].sort_values("seqlets", ascending=False)
        if mine.empty:
            print(f"| {matrix_id} {name} | - | - | - | - | no |")
        else:
            row = mine.iloc[0]
            print(f"| {matrix_id} {name} | {row['motif']} | {row['seqlets']:,} | {row['best']} | "
                  f"{row['q']:.2g} | yes |")

    print("\nAll discovered motifs:\n")
    print("| motif | seqlets | best match | q-value | assigned to | seqlets on a planted site |")
    print("|---|---:|---|---:|---|---:|")
    for row in table.itertuples():
        overlap = "-" if np.isnan(row.overlap) else f"{row.overlap:.1%}"
        planted_id = row.planted if isinstance(row.planted, str) else "-"
        print(f"| {row.motif} | {row.seqlets:,} | {row.best} | {row.q:.2g} | {planted_id} | {overlap} |")
    counted = table.dropna(subset=["overlap"])
    if len(counted):
        overall = float(np.average(counted["overlap"], weights=counted["seqlets"]))
        verdict = "pass" if (counted["overlap"] >= 0.9).all() else "FAIL"
        print(f"\nSeqlets of assigned motifs on a planted instance of their motif: {overall:.1%}, per motif "
              f"{counted['overlap'].min():.1%} to {counted['overlap'].max():.1%} ({verdict}, >= 90% for each motif)")


def replicated_inputs(contrib: Path, task: str, target: int, seed: int):
    """One task's window arrays with regions replicated (noise added) until about ``target`` seqlets."""
    info = read_contributions(contrib)
    start, width = resolve_window(None, info.length)
    onehot, hypothetical = info.read_window(info.tasks.index(task), start, start + width)
    called, _ = call_seqlets(onehot * hypothetical, seqlet_geometry(width))
    per_region = max(len(called), 1) / len(onehot)
    n_regions = int(np.ceil(target / per_region))
    rows = np.arange(n_regions) % len(onehot)
    rng = np.random.default_rng(seed)
    noise = float(hypothetical.std()) * 0.05
    shape = (n_regions,) + hypothetical.shape[1:]
    replicated = hypothetical[rows] + rng.normal(0, noise, size=shape).astype(np.float32)
    regions = info.regions.iloc[rows].reset_index(drop=True)
    regions["name"] = [f"{name}#{i // len(onehot)}" for i, name in enumerate(regions["name"])]
    return onehot[rows], replicated, regions, start


def _cpu_seconds() -> float:
    """User and system CPU time of this process and of its waited-for children (tfmodisco-lite's forks)."""
    return sum(usage.ru_utime + usage.ru_stime
               for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def measure(contrib: str, task: str, target: int, threads: int, queue) -> None:
    """In a fresh process: warm up on a few regions, then time discovery on ~target seqlets."""
    onehot, hypothetical, regions, start = replicated_inputs(Path(contrib), task, target, seed=target)
    settings = DiscoverySettings(max_seqlets=10 * target, threads=threads)
    warm = slice(0, WARM_UP_REGIONS)
    discover_motifs(onehot[warm], hypothetical[warm], regions.iloc[warm], task, start, settings)
    cpu_before = _cpu_seconds()
    begin = time.perf_counter()
    result = discover_motifs(onehot, hypothetical, regions, task, start, settings)
    seconds = time.perf_counter() - begin
    cpu = _cpu_seconds() - cpu_before
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    input_mib = (onehot.nbytes + hypothetical.nbytes) / 2**20
    clustered = {sign: int((result.called_seqlets["sign"] == sign).sum()) for sign in ("pos", "neg")}
    queue.put({"regions": len(regions), "seqlets": clustered, "seconds": seconds, "cpu": cpu, "peak_mib": peak / 1024,
               "input_mib": input_mib, "motifs": len(result.motifs)})


def scaling(contrib: Path, task: str | None, sizes: list[int], threads: int) -> None:
    task = task or read_contributions(contrib).tasks[0]
    context = multiprocessing.get_context("spawn")
    print(f"\nDiscovery time and peak memory versus seqlets, task {task} of {contrib}, {threads} threads\n")
    print("| seqlets (pos / neg) | regions | input (MiB) | discovery (s) | CPU (s) | peak RSS (MiB) | motifs |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        queue = context.Queue()
        process = context.Process(target=measure, args=(str(contrib), task, size, threads, queue))
        process.start()
        row = queue.get()
        process.join()
        seqlets = f"{row['seqlets']['pos']:,} / {row['seqlets']['neg']:,}"
        print(f"| {seqlets} | {row['regions']:,} | {row['input_mib']:.0f} | {row['seconds']:.1f} | {row['cpu']:.1f} | "
              f"{row['peak_mib']:.0f} | {row['motifs']} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contrib", type=Path, help="contrib.h5 (genomatt attribute)")
    parser.add_argument("--truth", type=Path, help="truth.tsv of the simulated genome: print the acceptance table")
    parser.add_argument("--task-regions", type=Path,
                        help="tasks.bed of the simulated genome: discover each task's motifs in its regions")
    parser.add_argument("--sizes", type=int, nargs="*", default=[2_000, 10_000, 50_000], help="seqlet counts")
    parser.add_argument("--task", help="task for the scaling runs (default: the first)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jaspar-release", default=DEFAULT_RELEASE)
    parser.add_argument("--jaspar-tax-group", default="vertebrates",
                        help="JASPAR taxon matched against ('all' when planted motifs span taxa)")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {platform.processor() or platform.platform()}, "
          f"Python {platform.python_version()}")
    if args.truth:
        acceptance(args.contrib, args.truth, args.threads, args.jaspar_release, args.jaspar_tax_group,
                   args.task_regions)
    if args.sizes:
        scaling(args.contrib, args.task, args.sizes, args.threads)


if __name__ == "__main__":
    main()
