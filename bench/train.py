"""Training time and test metrics of the default model on the simulated demo genome.

Simulates the default genome, runs ``genomatt train`` with its defaults (once per thread count),
and scores the same test windows with the planted motifs themselves: the sum over positions and
strands of each motif's likelihood ratio, which is close to the best any model can do and so shows
how much of a task is learnable at all.

At a width other than 200 bp the genome is simulated with regions of that width (``genomatt
simulate --region-width``) and the windows are that wide.

Usage: .venv/bin/python bench/train.py [--threads 1 2] [--width 1000 --chromosome-length 1500000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from genomatt.models import TrainingConfig, build_training_data
from genomatt.motifs.formats import read_meme
from genomatt.simulate import SimulationSettings, simulate_genome


def train(genome, out: Path, threads: int, width: int) -> tuple[dict, float, float]:
    """Run ``genomatt train`` with default settings; return its metrics, wall and CPU seconds."""
    beds = ["--task-regions", *[str(bed) for bed in genome.task_beds.values()]]
    command = [
        sys.executable,
        "-m",
        "genomatt.cli.main",
        "-q",
        "train",
        "--fasta",
        str(genome.fasta),
        *beds,
        "--out",
        str(out / f"model_{threads}.pt"),
        "--threads",
        str(threads),
        "--width",
        str(width),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads((out / f"model_{threads}.metrics.json").read_text()), wall, cpu


def motif_scan_auroc(genome, width: int) -> dict[str, float]:
    """auROC of the planted motifs' likelihood-ratio scan on the test windows the model is scored on."""
    config = TrainingConfig()
    data = build_training_data(
        genome.fasta,
        list(genome.task_beds.values()),
        width,
        jitter=config.jitter,
        seed=config.seed,
        progress=False,
    )
    X, y = data.split("test")
    X = X[:, :, config.jitter : config.jitter + width]
    aurocs = {}
    for index, (task, motif) in enumerate(zip(data.task_names, read_meme(genome.motifs_meme))):
        log_odds = motif.log_odds()
        score = np.zeros(len(X))
        for matrix in (log_odds, log_odds[::-1, ::-1]):
            for position in range(X.shape[2] - motif.width + 1):
                score += 2.0 ** np.einsum("nij,ij->n", X[:, :, position : position + motif.width], matrix)
        aurocs[task] = roc_auc_score(y[:, index], score)
    return aurocs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--width", type=int, default=200, help="region and window width in bp")
    parser.add_argument("--chromosome-length", type=int, default=500_000, help="of each of the 5 chromosomes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = SimulationSettings(region_width=args.width, chromosome_length=args.chromosome_length)
        genome = simulate_genome(Path(folder) / "genome", settings)
        runs = {threads: train(genome, Path(folder), threads, args.width) for threads in args.threads}
        ceiling = motif_scan_auroc(genome, args.width)
    print("| threads | wall (s) | CPU (s) | epochs (best) |")
    print("|---:|---:|---:|---:|")
    for threads, (metrics, wall, cpu) in runs.items():
        print(f"| {threads} | {wall:.0f} | {cpu:.0f} | {metrics['epochs_trained']} ({metrics['best_epoch']}) |")
    metrics = runs[args.threads[0]][0]
    print()
    print("| task | test auROC | test auPRC | positives / negatives | planted-motif scan auROC |")
    print("|---|---:|---:|---:|---:|")
    for task, values in metrics["tasks"].items():
        print(
            f"| {task} | {values['auroc']:.3f} | {values['auprc']:.3f} | "
            f"{values['n_positive']} / {values['n_negative']} | {ceiling[task]:.3f} |"
        )


if __name__ == "__main__":
    main()
