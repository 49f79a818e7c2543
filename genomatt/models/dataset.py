"""Labelled training data from a genome, task BED files and a choice of negatives.

A window is positive for a task when its centre base lies inside one of the task's regions, so a
region listed for several tasks (or a window inside another task's peak) is positive for each of
them, and every other window is a negative for the task.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genomatt.errors import ConfigError
from genomatt.fasta import read_chrom_sizes
from genomatt.genome import load_regions, past_chromosome_ends, read_bed, resize
from genomatt.intervals import centre_in_any, overlaps_any
from genomatt.models.negatives import MAX_UNKNOWN_FRACTION, gc_content, gc_matched_negatives, shuffled_negatives
from genomatt.models.splits import SPLITS, assign_splits, holdout_chromosomes
from genomatt.task_regions import check_task_beds, count_missing_chromosomes, read_task_regions

log = logging.getLogger(__name__)

NEGATIVE_KINDS = ("gc_matched", "shuffled")
_WINDOW_COLUMNS = ["chrom", "start", "end", "name"]


@dataclass
class TrainingData:
    """Windows, sequences and labels for training, split by chromosome.

    Attributes
    ----------
    regions
        One row per window of the training width: ``chrom, start, end, name``, ``source``
        (``positive``, ``gc_matched``, ``shuffled`` or ``bed``) and ``split``.
    X
        ``(N, 4, width + 2 * jitter)`` float32 one-hot: each window with ``jitter`` bp of flank on
        both sides, so training can shift it.
    labels
        ``(N, T)`` float32, 1 where the window is positive for the task.
    task_names
        ``T`` task names.
    jitter
        Flank in bp on each side of the windows in ``X``.
    """

    regions: pd.DataFrame
    X: np.ndarray
    labels: np.ndarray
    task_names: list[str]
    jitter: int

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Sequences ``(M, 4, width + 2 * jitter)`` and labels ``(M, T)`` of one split."""
        mask = (self.regions["split"] == name).to_numpy()
        return self.X[mask], self.labels[mask]


def positive_windows(task_regions: dict[str, pd.DataFrame], width: int) -> pd.DataFrame:
    """Windows of ``width`` bp centred on every task's regions (summit or midpoint), without duplicates; each keeps
    its region's ``region_start``/``region_end``, so that a window running off a chromosome end is not taken for
    a region past it."""
    windows = pd.concat(
        [resize(regions, width)[_WINDOW_COLUMNS + ["region_start", "region_end"]] for regions in task_regions.values()],
        ignore_index=True,
    )
    return windows.drop_duplicates(["chrom", "start", "end"]).reset_index(drop=True)


def label_windows(windows: pd.DataFrame, task_regions: dict[str, pd.DataFrame]) -> np.ndarray:
    """``(N, T)`` float32 labels: 1 where a window's centre lies in one of the task's regions."""
    return np.stack([centre_in_any(windows, regions) for regions in task_regions.values()], axis=1).astype(np.float32)


def _genomic_negatives(
    fasta: str | os.PathLike,
    negatives: str,
    positives: pd.DataFrame,
    positive_X: np.ndarray,
    task_regions: dict[str, pd.DataFrame],
    width: int,
    jitter: int,
    seed: int,
) -> pd.DataFrame:
    if negatives == "gc_matched":
        exclude = pd.concat([positives, *task_regions.values()], ignore_index=True)[["chrom", "start", "end"]]
        centre = slice(jitter, jitter + width)
        windows = gc_matched_negatives(
            fasta, positives, gc_content(positive_X[:, :, centre]), exclude, width, margin=jitter, random_state=seed
        )
        return windows[_WINDOW_COLUMNS].assign(source="gc_matched")
    windows = resize(read_bed(negatives), width)[_WINDOW_COLUMNS]
    # Identical windows are kept once: a repeated negative, or one a positive window already is.
    keys = ["chrom", "start", "end"]
    repeated = windows.duplicated(keys) | windows[keys].merge(positives[keys].drop_duplicates(), how="left",
                                                              indicator=True)["_merge"].eq("both").to_numpy()
    if repeated.any():
        log.info("%s: %d negative windows repeat an earlier negative or a positive window; each is kept once",
                 negatives, int(repeated.sum()))
    windows = windows[~repeated].reset_index(drop=True)
    if windows.empty:
        raise ConfigError(f"{negatives}: every one of its windows is a positive window (a task BED given as the "
                          "negatives?); give background regions, or --negatives gc_matched or shuffled")
    # Labelled like every window, by its centre: one that only overlaps a task's region stays a negative for it.
    labels = label_windows(windows, task_regions) > 0
    touching = np.zeros(len(windows), dtype=bool)
    for task, regions in enumerate(task_regions.values()):
        touching |= ~labels[:, task] & overlaps_any(windows["chrom"].to_numpy(), windows["start"].to_numpy(),
                                                    windows["end"].to_numpy(), regions)
    if touching.any():
        log.warning("%s: %d negative windows overlap a task's region without their centre in it, and stay negatives "
                    "(a window is positive for a task when its centre base lies in one of the task's regions)",
                    negatives, int(touching.sum()))
    return windows.assign(source="bed")


def _without_unknown_windows(positives: pd.DataFrame, X: np.ndarray, read: pd.DataFrame
                             ) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop the positive windows whose bases read from the genome are more unknown (N: assembly gaps) than
    background windows may be, with a warning: otherwise N itself would tell positives from negatives. The N
    that pads a window off a chromosome end is not counted."""
    padding = (read["padded_left"] + read["padded_right"]).to_numpy()
    in_genome = np.maximum(X.shape[2] - padding, 1)
    unknown = (read["n_bases"].to_numpy() - padding) / in_genome
    kept = unknown <= MAX_UNKNOWN_FRACTION
    if not kept.all():
        first = positives.iloc[int(np.flatnonzero(~kept)[0])]
        log.warning("%d positive windows are more than %d%% unknown bases (N) in the genome and are left out, as "
                    "background windows are (first: %s:%d-%d); a model would otherwise learn N as the signal",
                    int((~kept).sum()), round(100 * MAX_UNKNOWN_FRACTION), first["chrom"], first["start"],
                    first["end"])
    if not kept.any():
        raise ConfigError(f"every positive window is more than {round(100 * MAX_UNKNOWN_FRACTION)}% unknown bases "
                          "(N): is this the genome of the task BEDs?")
    return positives[kept].reset_index(drop=True), X[kept]


def build_training_data(
    fasta: str | os.PathLike,
    beds: Sequence[str | os.PathLike],
    width: int,
    labels_column: str | None = None,
    negatives: str = "gc_matched",
    jitter: int = 0,
    validation_chroms: Sequence[str] | None = None,
    test_chroms: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> TrainingData:
    """Assemble positives, negatives, labels, sequences and the chromosome split.

    Parameters
    ----------
    fasta
        Genome FASTA.
    beds, labels_column
        Task regions (see :func:`read_task_regions`).
    width
        Window width in bp (centred on summits or midpoints).
    negatives
        ``"gc_matched"`` (genomic background away from positives, GC-matched per chromosome),
        ``"shuffled"`` (one dinucleotide shuffle per positive) or a BED file of negative regions
        (labelled like every window, so those inside a task's regions count as positives).
    jitter
        Flank in bp kept on each side for random shifts.
    validation_chroms, test_chroms
        Hold-out chromosomes (see :func:`genomatt.models.splits.holdout_chromosomes`).
    seed
        Seed of the negative sampling.
    progress
        Show progress bars while reading sequences.

    Returns
    -------
    TrainingData
    """
    if negatives not in NEGATIVE_KINDS and not Path(negatives).is_file():
        raise ConfigError(
            f"negatives {negatives!r}: expected {' or '.join(NEGATIVE_KINDS)} or a BED file, and no such file exists"
        )
    task_regions = read_task_regions(beds, labels_column)
    sizes = read_chrom_sizes(fasta)
    # Each BED's regions on the genome, the BED named in the error.
    check_task_beds(list(beds), labels_column, sizes, fasta, "error")
    if negatives not in NEGATIVE_KINDS:
        negative_table = read_bed(negatives)
        count_missing_chromosomes(negative_table, sizes, fasta, negatives, "error", can_skip=False)
        past_chromosome_ends(negative_table, np.zeros(len(negative_table), bool), sizes, Path(fasta), negatives,
                             "error", can_skip=False)
    validation_chroms, test_chroms = holdout_chromosomes(sizes, validation_chroms, test_chroms)
    positives = positive_windows(task_regions, width).assign(source="positive")
    read, positive_X = load_regions(fasta, positives, width + 2 * jitter, progress=progress)
    positives = positives[_WINDOW_COLUMNS + ["source"]]
    positives, positive_X = _without_unknown_windows(positives, positive_X, read)
    if negatives == "shuffled":
        negative_windows = positives.assign(source="shuffled", name=positives["name"] + ":shuffled")
        negative_X = shuffled_negatives(positive_X, random_state=seed)
    else:
        negative_windows = _genomic_negatives(
            fasta, negatives, positives, positive_X, task_regions, width, jitter, seed
        )
        _, negative_X = load_regions(fasta, negative_windows, width + 2 * jitter, progress=progress)
    regions = pd.concat([positives, negative_windows], ignore_index=True)
    labels = label_windows(regions, task_regions)
    # A shuffle keeps its positive's coordinates but none of its motifs.
    labels[(regions["source"] == "shuffled").to_numpy()] = 0.0
    regions["split"] = assign_splits(regions["chrom"].to_numpy(), validation_chroms, test_chroms)
    data = TrainingData(regions, np.concatenate([positive_X, negative_X]), labels, list(task_regions), jitter)
    _check_splits(data, validation_chroms, test_chroms)
    log.info("training windows by split and source: %s", regions.groupby(["split", "source"]).size().to_dict())
    return data


def _check_splits(data: TrainingData, validation_chroms: Sequence[str], test_chroms: Sequence[str]) -> None:
    """Every split needs windows, and train and test need both classes of every task."""
    for task, positives in zip(data.task_names, data.labels.sum(axis=0)):
        if positives < 2:
            raise ConfigError(f"task {task} has {int(positives)} positive window: a task needs positives on the "
                              "training and on the test chromosomes; give it more regions, or leave it out")
    for split in SPLITS:
        _, labels = data.split(split)
        chroms = {"validation": validation_chroms, "test": test_chroms}.get(split, ["the other chromosomes"])
        if len(labels) == 0:
            raise ConfigError(
                f"no regions on the {split} chromosomes ({', '.join(chroms)}); choose other hold-out chromosomes"
            )
        if split == "validation":
            for task, positives in zip(data.task_names, labels.sum(axis=0)):
                if positives in (0, len(labels)):
                    log.warning("task %s has no %s windows on the validation chromosomes (%s): early stopping "
                                "will not follow it", task, "positive" if positives == 0 else "negative",
                                ", ".join(chroms))
            continue
        for task, positives in zip(data.task_names, labels.sum(axis=0)):
            if positives == 0 or positives == len(labels):
                kind = "positive" if positives == 0 else "negative"
                raise ConfigError(
                    f"task {task} has no {kind} regions on the {split} chromosomes ({', '.join(chroms)}); "
                    "choose other hold-out chromosomes"
                )
