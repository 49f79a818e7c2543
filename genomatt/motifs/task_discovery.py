"""Motif discovery in every task of a contribution file: the driver of :func:`discover_motifs`.

:func:`discover_task_motifs` reads each task's one-hot and hypothetical contributions over the discovery
window of its regions, discovers the task's motifs, and, with several tasks, drops the motifs whose seqlets
drive another task more than their own and rebuilds the others from their seqlets that drive their own task
(:func:`~genomatt.motifs.purity.pure_motifs`). ``genomatt motifs`` and ``bench/motifs.py``
call it; matching the motifs and writing them is left to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from genomatt.contributions import Contributions
from genomatt.motifs.discovery import DiscoverySettings, TaskDiscovery, discover_motifs
from genomatt.motifs.purity import pure_motifs

log = logging.getLogger(__name__)


def _contributing_span(hypothetical: np.ndarray, task: str, window_start: int) -> tuple[int, int]:
    """The columns ``[first, last)`` of the window between its leading and trailing columns of no contribution
    in any region, with a warning when there are such columns.

    A model whose output does not see the whole input (a receptive field narrower than the region, as a profile
    model's crop makes) gives exactly zero contributions there, on which seqlet similarities are undefined.
    """
    width = hypothetical.shape[2]
    columns = np.flatnonzero(np.any(hypothetical != 0, axis=(0, 1)))
    if not len(columns) or (columns[0] == 0 and columns[-1] == width - 1):
        return 0, width
    first, last = int(columns[0]), int(columns[-1]) + 1
    log.warning("task %s: bp %d-%d and %d-%d of the regions carry no contribution in any region (outside what the "
                "model's output sees, or no site of the task lies near that edge): motifs are discovered in the %d "
                "bp between them (motifs.window, --window, sets a narrower window)", task, window_start,
                window_start + first, window_start + last, window_start + width, last - first)
    return first, last


def discover_task_motifs(
    info: Contributions,
    window_start: int,
    window: int,
    settings: DiscoverySettings,
    task_rows: Mapping[str, np.ndarray] | None = None,
) -> list[TaskDiscovery]:
    """Discover the motifs of every task of a contribution file, one task at a time.

    Parameters
    ----------
    info
        The contribution file (:func:`genomatt.contributions.read_contributions`).
    window_start, window
        The discovery window within each region (:func:`genomatt.motifs.discovery.resolve_window`).
    settings
        Discovery parameters; with ``min_purity`` above 0 and several tasks, motifs and seqlets of other
        tasks are dropped (:func:`~genomatt.motifs.purity.pure_motifs`).
    task_rows
        Task → sorted rows of the regions table that the task's discovery uses (e.g. from
        :func:`genomatt.task_regions.task_region_rows`); every region for every task when ``None``.

    Returns
    -------
    list of TaskDiscovery
        One per task, in task order; ``region_order`` names rows of the contribution file.
    """
    discoveries = []
    for index, task in enumerate(info.tasks):
        onehot, hypothetical = info.read_window(index, window_start, window_start + window)
        regions = info.regions
        if task_rows is not None:
            rows = task_rows[task]
            onehot, hypothetical, regions = onehot[rows], hypothetical[rows], regions.iloc[rows].reset_index(drop=True)
        first, last = _contributing_span(hypothetical, task, window_start)
        discovery = discover_motifs(onehot[:, :, first:last], hypothetical[:, :, first:last], regions, task,
                                    window_start + first, settings)
        del onehot, hypothetical
        if task_rows is not None:
            # tfmodisco-lite's example indices name rows of the contribution file.
            discovery.region_order = task_rows[task][discovery.region_order]
        discoveries.append(discovery)
    if settings.min_purity > 0 and len(info.tasks) > 1:
        discoveries = pure_motifs(info, discoveries, settings.min_purity)
    return discoveries
