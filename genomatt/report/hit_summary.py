"""Summaries of motif hits for the report: motif strength, score and position distributions, co-occurrence."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genomatt.motifs.hits import HitCalls


def motif_strength(calls: HitCalls | None) -> pd.Series:
    """Share of each task's contribution carried by each motif's hits.

    The share is the sum of the signed contribution of a motif's hits in a task (``hit_contribution``)
    over the sum, across the regions scanned for the task, of the absolute value of each region's total
    contribution; negative for motifs of negative contributions.

    Returns
    -------
    pandas.Series
        Indexed by ``(motif_name, task)``; only pairs with hits (none without ``calls``).
    """
    if calls is None or not len(calls.hits):
        return pd.Series(dtype=float, index=pd.MultiIndex.from_tuples([], names=["motif_name", "task"]))
    totals = calls.qc.groupby("task")["contribution"].apply(lambda values: values.abs().sum())
    sums = calls.hits.groupby(["motif_name", "task"])["hit_contribution"].sum()
    denominator = totals.reindex(sums.index.get_level_values("task")).to_numpy()
    return pd.Series(np.divide(sums.to_numpy(), denominator, out=np.zeros(len(sums)), where=denominator > 0),
                     index=sums.index)


def hit_positions(hits: pd.DataFrame, regions: pd.DataFrame) -> np.ndarray:
    """Centre of each hit relative to the centre of its region, in bp (negative: towards the start)."""
    rows = hits["peak_id"].to_numpy(np.int64)
    centre = (regions["start"].to_numpy(np.float64)[rows] + regions["end"].to_numpy(np.float64)[rows]) / 2
    return (hits["start"].to_numpy(np.float64) + hits["end"].to_numpy(np.float64)) / 2 - centre


def cooccurrence(hits: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Number of regions holding hits of both motifs, for every pair (diagonal: regions with the motif).

    Hits of every task count: a region holds a motif when the motif is hit in it in any task.
    """
    if not len(hits):
        return pd.DataFrame(0, index=names, columns=names)
    indicator = pd.crosstab(hits["peak_id"], hits["motif_name"]).clip(upper=1)
    indicator = indicator.reindex(columns=names, fill_value=0).astype(np.int64)
    return indicator.T @ indicator


def _clean(ax) -> None:
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def distribution_figure(hits: pd.DataFrame, positions: np.ndarray, half_width: float, colour: str) -> Figure:
    """Histograms of one motif's hits: similarity, coefficient and centre relative to the region centre.

    Parameters
    ----------
    hits
        The motif's hits (``hit_similarity``, ``hit_coefficient_global``).
    positions
        ``(H,)`` hit centres relative to their region centres (:func:`hit_positions`).
    half_width
        Half the region width, the range of the position axis.
    colour
        Bar colour.
    """
    figure = Figure(figsize=(7.5, 1.7))
    axes = figure.subplots(1, 3)
    panels = ((hits["hit_similarity"].to_numpy(float), "similarity", None),
              (hits["hit_coefficient_global"].to_numpy(float), "coefficient (Fi-NeMo scale)", None),
              (positions, "hit centre − region centre (bp)", (-half_width, half_width)))
    for ax, (values, label, span) in zip(axes, panels):
        ax.hist(values, bins=30, range=span, color=colour, alpha=0.85)
        ax.set_xlabel(label, fontsize=7)
        _clean(ax)
    axes[0].set_ylabel("hits", fontsize=7)
    figure.tight_layout(pad=0.4)
    return figure


def cooccurrence_figure(counts: pd.DataFrame) -> Figure:
    """Heatmap of motif co-occurrence: colour is the share of the row motif's regions that also hold the
    column motif, numbers the regions holding both."""
    names = list(counts.index)
    size = max(3.0, 0.45 * len(names) + 1.8)
    figure = Figure(figsize=(size + 1.0, size))
    ax = figure.subplots()
    diagonal = np.diag(counts.to_numpy()).astype(float)
    share = np.divide(counts.to_numpy(float), diagonal[:, None], out=np.zeros(counts.shape),
                      where=diagonal[:, None] > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)))
    ax.set_yticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_yticklabels(names, fontsize=7)
    if len(names) <= 20:
        for row in range(len(names)):
            for column in range(len(names)):
                ax.text(column, row, f"{counts.iat[row, column]:,}", ha="center", va="center", fontsize=6,
                        color="white" if share[row, column] > 0.6 else "#0f172a")
    colourbar = figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colourbar.ax.tick_params(labelsize=7)
    colourbar.set_label("share of the row motif's regions", fontsize=7)
    figure.tight_layout(pad=0.4)
    return figure
