"""Interval overlap queries between windows and region sets (0-based, half-open, as in BED)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def overlaps_any(chrom: np.ndarray, start: np.ndarray, end: np.ndarray, regions: pd.DataFrame) -> np.ndarray:
    """Whether each query interval ``[start, end)`` overlaps at least one of ``regions``.

    Parameters
    ----------
    chrom, start, end
        ``(N,)`` query intervals.
    regions
        Table with ``chrom, start, end``; its intervals may overlap one another.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` bool.
    """
    chrom = np.asarray(chrom)
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    hit = np.zeros(len(chrom), dtype=bool)
    for name, group in regions.groupby("chrom", sort=False):
        query = np.flatnonzero(chrom == name)
        if query.size == 0:
            continue
        order = np.argsort(group["start"].to_numpy(np.int64), kind="stable")
        region_start = group["start"].to_numpy(np.int64)[order]
        # With regions sorted by start, the furthest end among those starting before a point tells
        # whether any of them reaches past it.
        furthest_end = np.maximum.accumulate(group["end"].to_numpy(np.int64)[order])
        last_starting_before_end = np.searchsorted(region_start, end[query], side="left") - 1
        candidates = last_starting_before_end >= 0
        hit[query[candidates]] = furthest_end[last_starting_before_end[candidates]] > start[query[candidates]]
    return hit


def centre_in_any(windows: pd.DataFrame, regions: pd.DataFrame) -> np.ndarray:
    """Whether the centre base of each window lies inside one of ``regions``; ``(N,)`` bool."""
    centre = (windows["start"].to_numpy(np.int64) + windows["end"].to_numpy(np.int64)) // 2
    return overlaps_any(windows["chrom"].to_numpy(), centre, centre + 1, regions)


def genome_bases(regions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``[start, end)`` of the bases of each window read from the genome: a window that ran off a chromosome end
    was padded with N (``padded_left``/``padded_right`` of the table, bp; none where the table records none).

    Parameters
    ----------
    regions
        Windows with ``start, end`` (and ``padded_left, padded_right``).

    Returns
    -------
    start, end : numpy.ndarray
        ``(N,)`` int64.
    """
    start, end = regions["start"].to_numpy(np.int64), regions["end"].to_numpy(np.int64)
    if {"padded_left", "padded_right"} <= set(regions.columns):
        start = start + regions["padded_left"].to_numpy(np.int64)
        end = end - regions["padded_right"].to_numpy(np.int64)
    return start, end
