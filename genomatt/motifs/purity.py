"""Task purity: a task's motifs are built from the sites that drive that task.

Every task of a contribution file explains the same regions, so the contribution of a seqlet's core can be
summed in each task: the site's effect on each task's output (times -1 for negative motifs). A seqlet's
purity is its effect on its motif's task over its largest effect on any task; a motif's purity is the median
over its seqlets. :func:`pure_motifs` drops the motifs of low purity (another task's motif) and rebuilds each
kept motif from its seqlets of enough purity, so that a motif mixing its task's sites with a similar motif's
sites of another task keeps only its own. The contributions are read once for every seqlet of every task.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd

from genomatt.contributions import Contributions
from genomatt.motifs.discovery import (
    MOTIF_SEQLET_COLUMNS,
    SIGNS,
    TaskDiscovery,
    core_bounds,
    motif_seqlet_table,
    pattern_motif,
    place,
    rebuild_pattern,
    supported,
)
from genomatt.motifs.trimming import trim_bounds
from genomatt.task_regions import comparable_targets

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
    drives no task up. ``driven`` is ``(n, T)``, signed so that driving a task is positive."""
    own, strongest = driven[:, task_index], driven.max(axis=1)
    return np.clip(np.divide(own, strongest, out=np.ones(len(own)), where=strongest > 0), 0, 1)


@dataclasses.dataclass
class _Entry:
    """One motif of one task's discovery, with its pattern and the cores of the pattern's seqlets."""

    discovery: int
    sign: str
    name: str
    pattern: object
    cores: pd.DataFrame
    effects: np.ndarray | None = None


def _entry(index: int, sign: str, name: str, pattern, trim: tuple[int, int]) -> _Entry:
    return _Entry(index, sign, name, pattern, core_bounds(pattern.seqlets, *trim))


def _read_effects(contributions: Contributions, discoveries: list[TaskDiscovery], entries: list[_Entry]) -> None:
    """Set every entry's ``(n, T)`` core effects, reading the contributions once for all of them."""
    rows, starts, ends = [], [], []
    for entry in entries:
        discovery = discoveries[entry.discovery]
        rows.append(np.asarray(discovery.region_order, dtype=np.int64)[entry.cores["example"].to_numpy()])
        starts.append(entry.cores["start"].to_numpy(np.int64) + discovery.window_start)
        ends.append(entry.cores["end"].to_numpy(np.int64) + discovery.window_start)
    if not entries:
        return
    effects = core_effects(contributions, np.concatenate(rows), np.concatenate(starts), np.concatenate(ends))
    for entry, part in zip(entries, np.split(effects, np.cumsum([len(row) for row in rows])[:-1])):
        entry.effects = part


def pure_motifs(contributions: Contributions, discoveries: list[TaskDiscovery], min_purity: float
                ) -> list[TaskDiscovery]:
    """Each discovery without other tasks' motifs, and each motif kept rebuilt from its pure seqlets.

    A motif whose purity (the median of its seqlets' :func:`seqlet_purity`) is under ``min_purity`` is
    another task's motif and is dropped, with a logged line naming the task its seqlets drive most on
    average. A kept motif with seqlets of purity under ``min_purity`` is rebuilt from the others
    (:func:`~genomatt.motifs.discovery.rebuild_pattern`), with a logged line, or dropped when fewer than
    :data:`~genomatt.motifs.discovery.MIN_MOTIF_SEQLETS` remain. A task whose motifs change is
    renumbered by decreasing seqlet count. Every ``region_order`` must name rows of the contribution file.

    Parameters
    ----------
    contributions
        The ``contrib.h5`` discovery read, every task explaining the same regions.
    discoveries
        One discovery per task of ``contributions``.
    min_purity
        In [0, 1]; 0.5 keeps sites that drive their task at least half as much as any task.
    """
    tasks = list(contributions.tasks)
    rivals = comparable_targets(tasks)
    entries = [_entry(index, motif.sign, motif.name, pattern, (motif.trim_start, motif.trim_end))
               for index, discovery in enumerate(discoveries) for sign in SIGNS
               for motif, pattern in zip([motif for motif in discovery.motifs if motif.sign == sign],
                                         discovery.patterns[sign])]
    _read_effects(contributions, discoveries, entries)
    kept, rebuilt, changed = [], [], set()
    for entry in entries:
        discovery = discoveries[entry.discovery]
        own = tasks.index(discovery.task)
        # Only the targets that rival this one: other tasks on the same head (not its own task's other head).
        driven = np.where(rivals[own], entry.effects * (1 if entry.sign == "pos" else -1), -np.inf)
        purity = seqlet_purity(driven, own)
        if len(purity) and float(np.median(purity)) < min_purity:
            others = np.where(np.arange(len(tasks)) == own, -np.inf, driven).mean(axis=0)
            log.info("task %s: motif %s (%d seqlets) dropped as a motif of task %s: its seqlets drive their own "
                     "task %.2f as much (purity under %g)", discovery.task, entry.name, len(purity),
                     tasks[int(np.argmax(others))], float(np.median(purity)), min_purity)
            changed.add(entry.discovery)
            continue
        keep = purity >= min_purity
        if not keep.all():
            most = np.bincount(driven[~keep].argmax(axis=1), minlength=len(tasks))
            log.info("task %s: motif %s: %d of %d seqlets dropped: they drive another task over %g times as much as "
                     "their own (mostly %s)", discovery.task, entry.name, int((~keep).sum()), len(keep),
                     1 / min_purity, tasks[int(np.argmax(most))])
            changed.add(entry.discovery)
            pattern = rebuild_pattern(entry.pattern, keep)
            if not supported(pattern, f"task {discovery.task}: motif {entry.name}"):
                continue
            trim = trim_bounds(pattern.contrib_scores.T.astype(np.float32))
            entry = _entry(entry.discovery, entry.sign, entry.name, pattern, trim)
            rebuilt.append(entry)
        kept.append(entry)
    _read_effects(contributions, discoveries, rebuilt)
    return [_renumbered(discovery, [entry for entry in kept if entry.discovery == index], tasks, contributions)
            if index in changed else discovery for index, discovery in enumerate(discoveries)]


def _renumbered(discovery: TaskDiscovery, entries: list[_Entry], tasks: list[str],
                contributions: Contributions) -> TaskDiscovery:
    """The discovery made of ``entries``' patterns, numbered by decreasing seqlet count within each sign."""
    own = tasks.index(discovery.task)
    motifs, patterns, tables = [], {}, []
    for sign in SIGNS:
        mine = sorted((entry for entry in entries if entry.sign == sign), key=lambda entry: -len(entry.pattern.seqlets))
        patterns[sign] = [entry.pattern for entry in mine]
        for index, entry in enumerate(mine):
            motif = pattern_motif(entry.pattern, f"{discovery.task}.{sign}.{index}", discovery.task, sign)
            motifs.append(motif)
            tables.append(motif_seqlet_table(entry.cores.assign(score=entry.effects[:, own]), motif))
    if tables:
        seqlets = place(pd.concat(tables, ignore_index=True), discovery.region_order, contributions.regions,
                        discovery.window_start, MOTIF_SEQLET_COLUMNS)
    else:
        seqlets = discovery.motif_seqlets.iloc[0:0]
    return dataclasses.replace(discovery, motifs=motifs, motif_seqlets=seqlets, patterns=patterns)
