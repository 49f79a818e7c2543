"""Task regions: which regions are a task's own, for its training labels, its motifs and its hits.

A task's regions are BED intervals (its peaks): one BED file per task, named after it, or one BED whose
labels column names each region's task (:func:`read_task_regions`). A window or region is *positive* for
a task when its centre base lies inside one of the task's regions. Training labels windows by that rule
(:mod:`genomatt.models.dataset`); motif discovery and hit calling use, for each task, the rows of the
contribution file positive for it (:func:`task_region_rows`), when task regions are given. The regions of
task BEDs (and training negatives) off the genome are found, the file named, by :func:`check_task_beds`
and :func:`count_missing_chromosomes`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genomatt.errors import BedFormatError, ConfigError, FastaError, MotifError, missing_file
from genomatt.genome import past_chromosome_ends, read_bed
from genomatt.intervals import centre_in_any

log = logging.getLogger(__name__)

_BED_SUFFIXES = (".gz", ".bgz", ".bed", ".narrowpeak", ".broadpeak")


def check_task_names(names: Sequence[str], where: str) -> None:
    """Refuse task names given twice, empty, or holding whitespace or a double quote.

    A task's name names its contributions, becomes its motifs' MEME IDs (``<task>.pos.0``) and fills the name
    fields of BED files, none of which can hold whitespace, and a quote would be escaped in them.

    Raises
    ------
    ConfigError
        Naming ``where`` (the option, file or model the names come from) and the names.
    """
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        raise ConfigError(f"{where}: task {repeated[0]!r} is given more than once ({list(names)}); each explained "
                          "target needs its own name")
    unfit = [name for name in names if not name or any(char.isspace() or char == '"' for char in name)]
    if unfit:
        raise ConfigError(f"{where}: task names {unfit} hold whitespace or a double quote (or are empty); a task name "
                          "becomes its motifs' MEME IDs and BED name fields, which hold neither: rename it (a task "
                          "BED's file, or the model's names with task_names / --task-names)")


def task_name_from_path(path: str | os.PathLike) -> str:
    """Task name of a BED file: its name without ``.bed``, ``.narrowPeak`` or ``.gz`` suffixes."""
    name = Path(path).name
    while name.lower().endswith(_BED_SUFFIXES):
        name = name[: name.lower().rfind(".")]
    return name or Path(path).name


def read_task_regions(beds: Sequence[str | os.PathLike], labels_column: str | None = None) -> dict[str, pd.DataFrame]:
    """Positive regions of each task.

    Parameters
    ----------
    beds
        One BED/narrowPeak file per task (task name = file name without suffix), or, with
        ``labels_column``, a single BED whose column names each region's task (a region positive for
        several tasks appears once per task).
    labels_column
        Column of the regions table holding the task name (``name`` for BED column 4).

    Returns
    -------
    dict
        Task name → regions table, in the order the tasks were given (or first appear).
    """
    if not beds:
        raise ConfigError("no task BED files given; pass one --task-regions BED per task")
    for path in beds:
        if not Path(path).is_file():
            raise BedFormatError(missing_file(path, "task BED file"))
    if labels_column is not None:
        if len(beds) != 1:
            raise ConfigError(f"a labels column goes with one BED file holding every task; got {len(beds)} files")
        return _split_by_label(beds[0], labels_column)
    tasks: dict[str, pd.DataFrame] = {}
    for path in beds:
        task = task_name_from_path(path)
        if task in tasks:
            raise ConfigError(f"two BED files give task {task!r} (task names are file names without suffix): {path}")
        tasks[task] = read_bed(path)
    check_task_names(list(tasks), "task BEDs " + ", ".join(map(str, beds)))
    return tasks


def _split_by_label(path: str | os.PathLike, column: str) -> dict[str, pd.DataFrame]:
    regions = read_bed(path)
    if column not in regions.columns:
        raise ConfigError(f"{path}: no labels column {column!r}; its columns are {list(regions.columns)}")
    labels = regions[column].astype(str)
    unnamed = regions["chrom"] + ":" + regions["start"].astype(str) + "-" + regions["end"].astype(str)
    if column == "name" and (labels == unnamed).any():
        row = int(np.flatnonzero((labels == unnamed).to_numpy())[0])
        raise BedFormatError(f"{path}: region {unnamed.iloc[row]} has no task name in column 4 (name)")
    tasks = {task: group.reset_index(drop=True) for task, group in regions.groupby(labels, sort=False)}
    check_task_names(list(tasks), f"{path} (labels column {column})")
    return tasks


HEAD_PREFIXES = ("profile_", "counts_")
"""Prefixes of the targets of a profile model's task (``profile_<task>``, ``counts_<task>``)."""


def target_task(target: str, tasks: Iterable[str]) -> str | None:
    """The task of ``tasks`` whose regions a target of the contributions uses, if any.

    A target is its own task; a profile model's targets ``profile_<task>`` and ``counts_<task>``
    (:func:`genomatt.attribution.targets.head_targets`) use their task's regions.
    """
    tasks = list(tasks)
    if target in tasks:
        return target
    for prefix in HEAD_PREFIXES:
        if target.startswith(prefix) and target[len(prefix):] in tasks:
            return target[len(prefix):]
    return None


def _head_and_task(target: str) -> tuple[str, str]:
    """A target's head (``profile``, ``counts``, or ``""`` for a task's single output) and its task."""
    if target in ("profile", "counts"):
        return target, ""
    for prefix in HEAD_PREFIXES:
        if target.startswith(prefix):
            return prefix.rstrip("_"), target[len(prefix):]
    return "", target


def comparable_targets(targets: Sequence[str]) -> np.ndarray:
    """``(T, T)`` boolean: whether target j's contributions may rival target i's in task purity and task share.

    A target is compared with itself and with the targets of other tasks on the same head: one task's
    ``profile_<task>`` and ``counts_<task>`` explain the same factor's sites (on scales that differ), so they
    are never rivals, and a profile target is compared only with other profile targets.
    """
    keys = [_head_and_task(target) for target in targets]
    return np.array([[first == second or (first[0] == second[0] and first[1] != second[1]) for second in keys]
                     for first in keys])


def task_region_rows(
    regions: pd.DataFrame, tasks: Sequence[str], task_regions: Mapping[str, pd.DataFrame]
) -> dict[str, np.ndarray]:
    """Rows of the regions table that each task uses in discovery and hits: the regions positive for the task.

    As motifs of a task are usually discovered, and their hits called, in that task's peaks, a region is
    used for a task when its centre base lies inside one of the task's regions (:func:`read_task_regions`).

    Parameters
    ----------
    regions
        The regions of the contribution file (``chrom``, ``start``, ``end``).
    tasks
        The tasks of the contribution file to use (a profile model's ``profile_<task>`` and ``counts_<task>`` use
        ``<task>``'s regions, :func:`target_task`).
    task_regions
        Task name → its regions (``chrom``, ``start``, ``end``); tasks absent from the contribution file
        are ignored.

    Returns
    -------
    dict
        Task → sorted row indices (possibly empty).

    Raises
    ------
    MotifError
        If a task of the contribution file has no regions given.
    """
    used = {task: target_task(task, task_regions) for task in tasks}
    missing = [task for task, bed in used.items() if bed is None]
    if missing:
        raise MotifError(f"no task regions for tasks {missing} of the contributions; the task BEDs name "
                         f"{list(task_regions)} (task names must match the model's)")
    unused = [task for task in task_regions if task not in used.values()]
    if unused:
        log.info("task regions of %s are not used: none of the tasks %s reads them", unused, list(tasks))
    rows = {}
    for task in tasks:
        rows[task] = np.flatnonzero(centre_in_any(regions, task_regions[used[task]]))
        log.info("task %s: %d of %d regions are positive for the task", task, len(rows[task]), len(regions))
        if not len(rows[task]):
            log.warning("task %s: no region of the contributions lies in the task's regions; nothing is searched for "
                        "it%s", task, _chromosome_mismatch(regions, task_regions[used[task]]))
    return rows


def _chromosome_mismatch(regions: pd.DataFrame, task_regions: pd.DataFrame) -> str:
    """Where none of the task regions' chromosomes is among the regions' (``1`` for ``chr1``), a clause saying so."""
    theirs, ours = set(map(str, task_regions["chrom"])), set(map(str, regions["chrom"]))
    if not theirs or theirs & ours:
        return ""
    shown = ", ".join(sorted(theirs)[:3])
    return (f" (the task regions lie on chromosomes {shown}{', ...' if len(theirs) > 3 else ''}, none of which the "
            f"regions name: they name {', '.join(sorted(ours)[:3])}{', ...' if len(ours) > 3 else ''}; are the task "
            "BEDs of the same genome, with its chromosome names?)")


def count_missing_chromosomes(table: pd.DataFrame, sizes: dict[str, int], fasta: str | os.PathLike,
                              source: str | os.PathLike, on_missing: str, can_skip: bool = True) -> int:
    """Regions of ``table`` (read from ``source``) on chromosomes absent from the FASTA.

    Parameters
    ----------
    table
        Regions with ``chrom``.
    sizes
        Chromosome lengths of ``fasta``.
    fasta, source
        The FASTA and the file the regions were read from, for messages.
    on_missing
        ``"error"``: raise; ``"skip"``: log a warning and count them.
    can_skip
        Whether the run could skip such regions (``on_missing: skip``), which the error then suggests; a
        model is trained on every task region and negative, so those cannot be skipped.

    Returns
    -------
    int
        The number of such regions.

    Raises
    ------
    FastaError
        With ``on_missing="error"``, naming the file, the chromosomes and the FASTA's.
    """
    absent = ~table["chrom"].isin(list(sizes))
    if not absent.any():
        return 0
    missing = sorted(set(table.loc[absent, "chrom"]))
    shown = ", ".join(list(sizes)[:5]) + (", ..." if len(sizes) > 5 else "")
    message = (f"{source}: {int(absent.sum())} regions on chromosomes {missing[:5]}{' ...' if len(missing) > 5 else ''}"
               f" that are not in {fasta} (it has: {shown})")
    if on_missing != "skip":
        raise FastaError(message + ("; fix the names, or skip such regions (on_missing: skip)" if can_skip else
                                    "; fix the names (a model is trained on every task region and negative)"))
    log.warning("%s; they will be skipped", message)
    return int(absent.sum())


def check_task_beds(task_beds: Sequence[str | os.PathLike], labels_column: str | None, sizes: dict[str, int],
                    fasta: str | os.PathLike, on_missing: str, trained: bool = True) -> dict[str, int]:
    """Regions of each task BED on the FASTA's chromosomes, by task.

    ``trained`` is the check of a model to train, which reads every task region: a region on a chromosome
    absent from the FASTA, or starting past its end, is an error naming its BED, whatever ``on_missing``.
    The task BEDs of a user's model only place regions in tasks: regions on absent chromosomes are an error
    with ``on_missing="error"``, and with ``"skip"`` are counted and logged; a task none of whose regions
    lies on the FASTA's chromosomes is an error either way.

    Raises
    ------
    FastaError
        Naming the BED (and the task, for one labelled BED).
    """
    tasks = read_task_regions(list(task_beds), labels_column)
    files = {task_name_from_path(path): str(path) for path in task_beds}
    counts = {}
    for task, table in tasks.items():
        source = f"{task_beds[0]} (task {task})" if labels_column else files[task]
        skipped = count_missing_chromosomes(table, sizes, fasta, source, "error" if trained else on_missing,
                                            can_skip=not trained)
        if trained:
            absent = ~table["chrom"].isin(list(sizes)).to_numpy()
            past_chromosome_ends(table.reset_index(drop=True), absent, sizes, Path(fasta), source, "error",
                                 can_skip=False)
        counts[task] = len(table) - skipped
        if not counts[task]:
            raise FastaError(f"{source}: none of its {len(table)} regions lies on a chromosome of {fasta}, so task "
                             f"{task} would have no regions; do the BED and the FASTA name chromosomes alike?")
    return counts
