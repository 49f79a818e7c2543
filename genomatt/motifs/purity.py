"""Task purity: how much a motif's seqlets drive their own task, relative to the task they drive most.

Every task of a contribution file explains the same regions, so the contribution of a seqlet's core can be
summed in each task: the site's effect on each task's output. :func:`task_purity` judges whole motifs by it
(another task's motif is dropped); :func:`pure_seqlets` then rebuilds each kept motif from its seqlets that
drive its task at least ``min_purity`` as much as any task, so that a motif mixing its task's sites with a
similar motif's sites of another task keeps only its own.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from genomatt.contributions import Contributions
from genomatt.errors import MotifError
from genomatt.motifs.discovery import (
    MOTIF_SEQLET_COLUMNS,
    SIGNS,
    DiscoveredMotif,
    TaskDiscovery,
    core_bounds,
    motif_seqlet_table,
    pattern_motif,
    place,
    rebuild_pattern,
)

log = logging.getLogger(__name__)

# Regions read at once.
PURITY_CHUNK = 512


def core_effects(contributions: Contributions, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``(n, T)`` float64 summed contribution of each interval ``[starts, ends)`` (region-relative bp) of the
    regions-table ``rows`` in every task, read a chunk of regions at a time so that memory does not grow with
    the number of regions."""
    rows = np.asarray(rows, dtype=np.int64)
    sums = np.zeros((len(rows), len(contributions.tasks)))
    unique = np.unique(rows)
    for first in range(0, len(unique), PURITY_CHUNK):
        chunk = unique[first : first + PURITY_CHUNK]
        contrib = contributions.read_products(chunk)
        cumulative = np.pad(contrib.sum(axis=2, dtype=np.float64).cumsum(axis=2), ((0, 0), (0, 0), (1, 0)))
        inside = np.flatnonzero(np.isin(rows, chunk))
        index = np.searchsorted(chunk, rows[inside])
        sums[inside] = cumulative[index, :, ends[inside]] - cumulative[index, :, starts[inside]]
    return sums


def seqlet_purity(driven: np.ndarray, task_index: int) -> np.ndarray:
    """Each seqlet's effect on its task over its largest effect on any task, clipped to [0, 1]; 1 where it
    drives no task up. ``driven`` is ``(n, T)``, already signed so that driving a task is positive."""
    own, strongest = driven[:, task_index], driven.max(axis=1)
    return np.clip(np.divide(own, strongest, out=np.ones(len(own)), where=strongest > 0), 0, 1)


def task_purity(contributions: Contributions, motifs: Sequence[DiscoveredMotif],
                motif_seqlets: pd.DataFrame) -> pd.DataFrame:
    """How much each motif's seqlets drive its own task, relative to the task they drive most.

    The contribution of every seqlet's core is summed in each task of the contribution file (all tasks
    explain the same regions), times -1 for negative motifs: the site's effect on each task's output, in the
    units of the contributions. A seqlet's purity is its effect on the motif's task over its largest effect
    on any task (:func:`seqlet_purity`); a motif's *purity* is the median over its seqlets, so that a pattern
    mixing a few of its task's sites with many of another task's is judged by the latter. A multi-task model
    responds a little in every task to the sites that drive its other tasks, and at realistic widths most of
    a task's regions hold such sites, so tfmodisco-lite finds them as patterns of the task; they drive
    another task several times more, and their purity is low. A motif shared by two tasks (its sites drive
    both alike) is pure in both.

    Parameters
    ----------
    contributions
        The ``contrib.h5`` discovery read (:func:`genomatt.contributions.read_contributions`).
    motifs
        The discovered motifs of every task.
    motif_seqlets
        Their seqlets (``MOTIF_SEQLET_COLUMNS``, genome coordinates).

    Returns
    -------
    pandas.DataFrame
        One row per motif: ``motif``, ``task``, ``purity`` (in [0, 1]), ``driven_task`` (the task its seqlets
        drive most on average) and ``effect.<task>``, the mean effect of its seqlets on each task.
    """
    regions, tasks = contributions.regions, contributions.tasks
    row_of = pd.Series(np.arange(len(regions)), index=regions["name"].to_numpy())
    table = motif_seqlets[motif_seqlets["motif"].isin([motif.name for motif in motifs])]
    row_of_seqlet = row_of.reindex(table["region"].to_numpy()).to_numpy()
    if np.isnan(row_of_seqlet).any():
        raise MotifError(f"{contributions.path}: motif seqlets name regions that are not in the contributions")
    row_of_seqlet = row_of_seqlet.astype(np.int64)
    offset = table["start"].to_numpy(np.int64) - regions["start"].to_numpy(np.int64)[row_of_seqlet]
    end = offset + (table["end"] - table["start"]).to_numpy(np.int64)
    sums = core_effects(contributions, row_of_seqlet, offset, end)
    records = []
    for motif in motifs:
        mine = (table["motif"] == motif.name).to_numpy()
        driven = sums[mine] * (1 if motif.sign == "pos" else -1)
        per_seqlet = seqlet_purity(driven, list(tasks).index(motif.task))
        effect = driven.mean(axis=0) if mine.any() else np.zeros(len(tasks))
        records.append({"motif": motif.name, "task": motif.task,
                        "purity": float(np.median(per_seqlet)) if mine.any() else 1.0,
                        "driven_task": tasks[int(np.argmax(effect))],
                        **{f"effect.{task}": float(value) for task, value in zip(tasks, effect)}})
    return pd.DataFrame.from_records(records, columns=["motif", "task", "purity", "driven_task",
                                                       *(f"effect.{task}" for task in tasks)])


def _pattern_effects(contributions: Contributions, discovery: TaskDiscovery, pattern, motif: DiscoveredMotif
                     ) -> tuple[pd.DataFrame, np.ndarray]:
    """The cores of a pattern's seqlets (:func:`core_bounds`, window-relative) and their ``(n, T)`` effects."""
    cores = core_bounds(pattern.seqlets, motif.trim_start, motif.trim_end)
    rows = np.asarray(discovery.region_order, dtype=np.int64)[cores["example"].to_numpy()]
    starts = cores["start"].to_numpy(np.int64) + discovery.window_start
    ends = cores["end"].to_numpy(np.int64) + discovery.window_start
    return cores, core_effects(contributions, rows, starts, ends)


def pure_seqlets(contributions: Contributions, discovery: TaskDiscovery, min_purity: float) -> TaskDiscovery:
    """The discovery with each motif rebuilt from its seqlets of purity at least ``min_purity``.

    A seqlet's purity is :func:`seqlet_purity` of its core's effect on every task. A motif whose seqlets all
    pass (or none does) is kept as it is; the others are rebuilt (:func:`~genomatt.motifs.discovery.
    rebuild_pattern`) with a logged line, and the task's motifs are renumbered by decreasing seqlet count.
    ``discovery.region_order`` must name rows of the contribution file.
    """
    tasks = list(contributions.tasks)
    own = tasks.index(discovery.task)
    patterns, changed = {}, False
    for sign in SIGNS:
        patterns[sign] = []
        motifs = [motif for motif in discovery.motifs if motif.sign == sign]
        for motif, pattern in zip(motifs, discovery.patterns[sign]):
            _, effects = _pattern_effects(contributions, discovery, pattern, motif)
            driven = effects * (1 if sign == "pos" else -1)
            keep = seqlet_purity(driven, own) >= min_purity
            if keep.all() or not keep.any():
                patterns[sign].append(pattern)
                continue
            most = np.bincount(driven[~keep].argmax(axis=1), minlength=len(tasks))
            log.info("task %s: motif %s: %d of %d seqlets dropped: they drive another task over %g times as much as "
                     "their own (mostly %s)", discovery.task, motif.name, int((~keep).sum()), len(keep),
                     1 / min_purity, tasks[int(np.argmax(most))])
            patterns[sign].append(rebuild_pattern(pattern, keep))
            changed = True
    if not changed:
        return discovery
    motifs, tables = [], []
    for sign in SIGNS:
        patterns[sign] = sorted(patterns[sign], key=lambda pattern: -len(pattern.seqlets))
        for index, pattern in enumerate(patterns[sign]):
            motif = pattern_motif(pattern, f"{discovery.task}.{sign}.{index}", discovery.task, sign)
            cores, effects = _pattern_effects(contributions, discovery, pattern, motif)
            motifs.append(motif)
            tables.append(motif_seqlet_table(cores.assign(score=effects[:, own]), motif))
    seqlets = place(pd.concat(tables, ignore_index=True), discovery.region_order, contributions.regions,
                    discovery.window_start, MOTIF_SEQLET_COLUMNS)
    return dataclasses.replace(discovery, motifs=motifs, motif_seqlets=seqlets, patterns=patterns)
