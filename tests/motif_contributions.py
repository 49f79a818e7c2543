"""Synthetic contribution files for the motif tests: the contributions an ideal model would give.

Each task's hypothetical contributions are Gaussian noise plus, at every planted instance of a motif the
task responds to, the motif's log-odds columns (floored at -2, read on the instance's strand) times the
task's weight for that motif; a negative weight makes a repressor-like negative motif.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from genomatt.genome import load_regions
from genomatt.motifs.formats import read_meme, reverse_complement_matrix
from genomatt.simulate import SimulatedGenome, SimulationSettings, simulate_genome
from genomatt.store import write_store


def _stop_tqdm_monitor() -> None:
    """Stop tqdm's monitor thread: tfmodisco-lite forks (to compile its kernels into numba's cache and to
    build patterns in parallel) only while no other thread runs, and load_regions leaves the monitor."""
    tqdm.monitor_interval = 0
    if tqdm.monitor is not None:
        tqdm.monitor.exit()
        tqdm.monitor = None


def planted_contributions(
    genome: SimulatedGenome, tasks: dict[str, dict[str, float]], noise: float = 0.05, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Regions, one-hot ``(N, 4, L)`` and hypothetical contributions ``(N, T, 4, L)`` of a simulated genome.

    ``tasks`` maps each task name to ``{motif name: weight}`` (motif names as in ``truth.tsv``).
    """
    regions, onehot = load_regions(genome.fasta, genome.regions_bed, progress=False)
    _stop_tqdm_monitor()
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    motifs = {motif.name: motif for motif in read_meme(genome.motifs_meme)}
    rng = np.random.default_rng(seed)
    hypothetical = rng.normal(0, noise, size=(len(regions), len(tasks), 4, onehot.shape[2])).astype(np.float32)
    row_of = dict(zip(regions["name"], range(len(regions))))
    for task_index, weights in enumerate(tasks.values()):
        for instance in truth[truth["motif_name"].isin(list(weights))].itertuples():
            row = row_of[instance.region]
            offset = instance.start - int(regions["start"].iloc[row])
            columns = np.maximum(motifs[instance.motif_name].log_odds(), -2.0)
            if instance.strand == "-":
                columns = reverse_complement_matrix(columns)
            weight = weights[instance.motif_name]
            hypothetical[row, task_index, :, offset : offset + columns.shape[1]] += weight * columns
    return regions, onehot, hypothetical


def write_planted_contributions(
    genome: SimulatedGenome, path: str | Path, tasks: dict[str, dict[str, float]], noise: float = 0.05, seed: int = 0
) -> Path:
    """Write a ``contrib.h5`` (docs/formats.md schema) of :func:`planted_contributions`."""
    regions, onehot, hypothetical = planted_contributions(genome, tasks, noise, seed)
    arrays = {"onehot": onehot, "hypothetical": hypothetical, "contrib": onehot[:, None] * hypothetical,
              "delta": np.zeros(hypothetical.shape[:2], np.float32),
              "prediction": np.zeros(hypothetical.shape[:2], np.float32)}
    provenance = {"method": "planted", "seed": seed, "tasks": tasks}
    return write_store(path, regions, arrays, kind="contributions", provenance=provenance, attrs={"tasks": list(tasks)})


# Two well-separated motifs planted densely enough for tfmodisco-lite in a few seconds.
TWO_MOTIF_SETTINGS = SimulationSettings(
    seed=3, motifs=("MA0035", "MA0139"), n_chromosomes=2, chromosome_length=100_000,
    n_positive_regions=300, n_negative_regions=0,
)
# GATA1 drives its task; CTCF activates the other and GATA1 represses it; a third task is pure noise.
TWO_MOTIF_TASKS = {"GATA1": {"GATA1": 0.5}, "CTCF": {"CTCF": 0.5, "GATA1": -0.5}, "noise": {}}


def two_motif_contributions(folder: Path) -> tuple[SimulatedGenome, Path]:
    """Simulate the two-motif genome in ``folder`` and write its ``contrib.h5``."""
    genome = simulate_genome(folder, TWO_MOTIF_SETTINGS)
    return genome, write_planted_contributions(genome, folder / "contrib.h5", TWO_MOTIF_TASKS)


# 50 bp regions with one motif, for short discovery windows.
SHORT_REGION_SETTINGS = SimulationSettings(
    seed=4, motifs=("MA0035",), n_chromosomes=1, chromosome_length=100_000, region_width=50, edge_margin=4,
    n_positive_regions=400, n_negative_regions=0,
)


def overlap_fraction(seqlets: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Fraction of seqlets (``chrom, start, end``) overlapping an interval of ``truth``."""
    hits = [((truth["chrom"] == row.chrom) & (truth["start"] < row.end) & (truth["end"] > row.start)).any()
            for row in seqlets.itertuples()]
    return float(np.mean(hits)) if hits else 0.0
