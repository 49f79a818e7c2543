"""Seqlets: short windows of high contribution, called against a null and placed in genome coordinates.

Seqlets are called exactly as tfmodisco-lite calls them inside ``TFMoDISco`` (its
``extract_seqlets``): per-base contributions are summed over sliding windows of ``core`` bp, a Laplace
null is fitted to the bulk of those sums, and windows whose sum passes an isotonic-regression FDR
threshold are taken greedily, best first, each suppressing its neighbourhood. Each seqlet is a
``core``-bp window plus ``flank`` bp on both sides. tfmodisco-lite's floor of 3% passing windows is
dropped (``min_passing_windows_frac=0``) so that the FDR alone decides and pure noise gives next to no seqlets.
A seqlet's sign is that of its core sum; seqlets whose core sum is within the weakest threshold of zero
are dropped, as ``TFMoDISco`` drops them.
"""

from __future__ import annotations

import logging
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genomatt.atomic import atomic_path
from genomatt.errors import MotifError, NonFiniteError, SequenceError
from genomatt.intervals import genome_bases
from genomatt.shuffle import as_numpy

log = logging.getLogger(__name__)

# The table of seqlets called against the null, in genome coordinates (0-based, half-open).
CALLED_SEQLET_COLUMNS = ("task", "sign", "chrom", "start", "end", "region", "score")

# tfmodisco-lite's seqlet and pattern sizes (its command-line defaults) are kept for windows at least this
# long, where a pattern (trim + 2 flanks = 50 bp) spans at most a quarter of the window. Shorter windows
# scale all sizes down: a pattern keeps only the seqlets whose expansion to its width stays inside the
# window, so full-size patterns lose most seqlets of short windows (tfmodisco-lite finds no motif below
# ~100 bp); docs/methods.md gives the measurements.
FULL_GEOMETRY_WINDOW = 200
MIN_WINDOW = 20

# tfmodisco-lite's defaults: the weakest threshold for counting a seqlet's sign, as a quantile of
# |windowed sums|, and the largest fraction of windows that may pass.
WEAK_THRESHOLD_FOR_COUNTING_SIGN = 0.8
MAX_PASSING_WINDOWS_FRAC = 0.2


@dataclass(frozen=True)
class SeqletGeometry:
    """Seqlet and pattern sizes in bp.

    Attributes
    ----------
    core
        Width of the sliding window whose contribution sum is tested (``sliding_window_size``).
    flank
        Bases added on each side of the core to make a seqlet (``flank_size``).
    trim
        Width a pattern is trimmed to around its most informative window (``trim_to_window_size``).
    pattern_flank
        Bases added on each side of a trimmed pattern (``initial_flank_to_add``).

    Raises
    ------
    MotifError
        If ``core`` or ``trim`` is not an integer >= 1, or ``flank`` or ``pattern_flank`` not one >= 0.
    """

    core: int = 20
    flank: int = 5
    trim: int = 30
    pattern_flank: int = 10

    def __post_init__(self) -> None:
        for name, least in (("core", 1), ("flank", 0), ("trim", 1), ("pattern_flank", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise MotifError(f"SeqletGeometry {name} must be an integer >= {least}, got {value!r}")

    @property
    def suppress(self) -> int:
        """Half-width around a called seqlet's core start within which no other seqlet is taken."""
        return int(0.5 * self.core) + self.flank


def seqlet_geometry(window: int) -> SeqletGeometry:
    """Seqlet and pattern sizes for a discovery window of ``window`` bp.

    Windows of at least ``FULL_GEOMETRY_WINDOW`` bp get tfmodisco-lite's sizes; shorter ones get all four
    sizes scaled by ``window / FULL_GEOMETRY_WINDOW`` (core >= 6, flank >= 1, trim >= 10, pattern flank
    >= 2).

    Raises
    ------
    MotifError
        If ``window`` is not a positive integer.
    """
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 1:
        raise MotifError(f"window must be a positive integer (bp), got {window!r}")
    full = SeqletGeometry()
    if window >= FULL_GEOMETRY_WINDOW:
        return full
    scale = window / FULL_GEOMETRY_WINDOW
    return SeqletGeometry(
        core=max(6, round(full.core * scale)),
        flank=max(1, round(full.flank * scale)),
        trim=max(10, round(full.trim * scale)),
        pattern_flank=max(2, round(full.pattern_flank * scale)),
    )


def check_tracks(values: np.ndarray, name: str) -> None:
    """Refuse per-base tracks that are not ``(N, 4, L)`` or hold NaN or infinite values.

    Raises
    ------
    SequenceError
        If ``values`` is not 3-D with 4 channels on axis 1; a ``(N, L, 4)`` array or a single ``(4, L)``
        track is told how to make one.
    NonFiniteError
        If a value is NaN or infinite, naming the first row (region) and position, with every row affected.
    """
    if values.ndim != 3 or values.shape[1] != 4:
        hint = ""
        if values.ndim == 3 and values.shape[2] == 4:
            hint = ("; length before channels, (N, L, 4) as tfmodisco-lite's TFMoDISco takes them? give "
                    ".transpose(0, 2, 1)")
        elif values.ndim == 2 and values.shape[0] == 4:
            hint = "; one region's (4, L) track? give it as [track] or track[None]"
        raise SequenceError(f"{name}: expected an array of shape (N, 4, L) (channels A, C, G, T on axis 1), got "
                            f"{values.shape}{hint}")
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        row, position = (int(index) for index in np.argwhere(~finite)[0])
        rows = np.flatnonzero(~finite.all(axis=1)).tolist()
        raise NonFiniteError(f"{name}: NaN or infinite at {int((~finite).sum())} position(s) in {len(rows)} of "
                             f"{len(values)} regions (first: region row {row}, position {position}); expected finite "
                             "values", rows)


def call_seqlets(contrib: np.ndarray, geometry: SeqletGeometry, target_fdr: float = 0.05,
                 task: str | None = None) -> tuple[pd.DataFrame, float]:
    """Call seqlets in actual-contribution tracks.

    Parameters
    ----------
    contrib
        ``(N, 4, W)`` float32 actual contributions (``onehot * hypothetical``) of each region's window: a
        numpy array or a torch tensor, finite.
    geometry
        Seqlet sizes (see :func:`seqlet_geometry`).
    target_fdr
        False discovery rate of windowed sums against the fitted Laplace null, in (0, 1).
    task
        The task the contributions are of, named in the warning.

    Returns
    -------
    seqlets : pandas.DataFrame
        One row per seqlet: ``example`` (row of ``contrib``), ``start``/``end`` (the core, in window
        coordinates), ``sign`` (``pos``/``neg``) and ``score`` (sum of contributions over the core).
        Empty when there are no regions or windows too short for a seqlet, and, with a logged warning,
        when no null can be fitted to the windowed sums (all equal, or of one sign).
    threshold : float
        The absolute core sum a seqlet must exceed to be kept (``nan`` when nothing was tested).

    Raises
    ------
    SequenceError
        If ``contrib`` is not ``(N, 4, W)`` (see :func:`check_tracks`).
    NonFiniteError
        If ``contrib`` holds NaN or infinite values.
    MotifError
        If ``target_fdr`` is not in (0, 1).
    """
    from modiscolite.extract_seqlets import extract_seqlets

    if isinstance(target_fdr, bool) or not isinstance(target_fdr, numbers.Real) or not 0 < target_fdr < 1:
        raise MotifError(f"target_fdr must be in (0, 1), got {target_fdr!r}")
    contrib = as_numpy(contrib)
    check_tracks(contrib, "contributions")

    empty = pd.DataFrame({"example": np.zeros(0, np.int64), "start": np.zeros(0, np.int64),
                          "end": np.zeros(0, np.int64), "sign": np.zeros(0, object), "score": np.zeros(0)})
    # Length-last, as TFMoDISco holds it, so that every sum below has the bits of the sums it computes and
    # the seqlets called here are exactly the seqlets it clusters (no copy when given its own array's view).
    length_last = np.ascontiguousarray(contrib.transpose(0, 2, 1))
    per_base = length_last.sum(axis=2)
    if not len(per_base) or per_base.shape[1] < geometry.core + 2 * geometry.flank:
        return empty, float("nan")
    try:
        coordinates, threshold = extract_seqlets(
            attribution_scores=per_base, window_size=geometry.core, flank=geometry.flank,
            suppress=geometry.suppress, target_fdr=target_fdr, min_passing_windows_frac=0.0,
            max_passing_windows_frac=MAX_PASSING_WINDOWS_FRAC,
            weak_threshold_for_counting_sign=WEAK_THRESHOLD_FOR_COUNTING_SIGN,
        )
    except (IndexError, ValueError, ZeroDivisionError):
        # tfmodisco-lite fits its null to each side of the mode of the windowed sums and fails when a side
        # is empty: all-zero or constant tracks, or sums of (almost) one sign.
        log.warning("%sthe windowed contribution sums cannot be fitted by a null (all equal, or almost all of one "
                    "sign); no seqlets", f"task {task}: " if task is not None else "")
        return empty, float("nan")
    examples = np.array([seqlet.example_idx for seqlet in coordinates], dtype=np.int64)
    starts = np.array([seqlet.start for seqlet in coordinates], dtype=np.int64) + geometry.flank
    scores = np.array([length_last[e, s : s + geometry.core].sum() for e, s in zip(examples, starts)], dtype=np.float64)
    keep = np.abs(scores) > threshold
    seqlets = pd.DataFrame({
        "example": examples[keep], "start": starts[keep], "end": starts[keep] + geometry.core,
        "sign": np.where(scores[keep] > 0, "pos", "neg").astype(object), "score": scores[keep],
    })
    return seqlets, float(threshold)


def to_genome(seqlets: pd.DataFrame, regions: pd.DataFrame, window_start: int) -> pd.DataFrame:
    """Place window-relative intervals in the genome.

    Parameters
    ----------
    seqlets
        Table with ``example`` (row of ``regions``) and ``start``/``end`` relative to the window.
    regions
        The regions table (``chrom``, ``start``, ``name``) whose rows ``example`` indexes.
    window_start
        Offset of the discovery window within each region.

    Returns
    -------
    pandas.DataFrame
        ``seqlets`` with ``chrom`` and ``region`` added and ``start``/``end`` in genome coordinates, clipped to
        the bases of the region's window read from the genome (:func:`genomatt.intervals.genome_bases`; a
        window padded with N past a chromosome end holds no seqlet base there).
    """
    rows = seqlets["example"].to_numpy(np.int64)
    offset = regions["start"].to_numpy(np.int64)[rows] + window_start
    low, high = (bound[rows] for bound in genome_bases(regions))
    placed = seqlets.copy()
    placed["chrom"] = regions["chrom"].to_numpy(object)[rows]
    placed["region"] = regions["name"].to_numpy(object)[rows]
    placed["start"] = np.clip(seqlets["start"].to_numpy(np.int64) + offset, low, high)
    placed["end"] = np.clip(seqlets["end"].to_numpy(np.int64) + offset, low, high)
    return placed


def write_bed(table: pd.DataFrame, path: str | os.PathLike, name: str) -> Path:
    """Write seqlets as BED6+1, sorted, atomically: ``chrom, start, end, <name column>, score, strand,
    contribution``.

    A header line (``#chrom ...``) names the columns. ``score`` is the UCSC score, an integer 0–1000:
    ``round(1000 × |contribution| / the file's largest |contribution|)``; ``contribution`` the seqlet's
    signed ``score`` of the table. A table without a ``strand`` column is written with strand ``.``.
    """
    values = table["score"].to_numpy(np.float64)
    top = float(np.abs(values).max()) if len(values) else 0.0
    ucsc = np.round(1000 * np.abs(values) / top).astype(np.int64) if top > 0 else np.zeros(len(values), np.int64)
    bed = pd.DataFrame({
        "#chrom": table["chrom"], "start": table["start"], "end": table["end"], "name": table[name],
        "score": ucsc, "strand": table["strand"] if "strand" in table else ".", "contribution": values,
    }).sort_values(["#chrom", "start", "end"], kind="stable")
    with atomic_path(path) as tmp:
        # Six significant digits, not decimals: contributions of any model's scale keep their values.
        bed.to_csv(tmp, sep="\t", header=True, index=False, float_format="%.6g")
    return Path(path)
