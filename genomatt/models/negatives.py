"""Negative examples for training: GC-matched genomic background, or dinucleotide shuffles of positives."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from genomatt.errors import ConfigError, FastaError
from genomatt.fasta import read_chrom_sizes
from genomatt.genome import load_regions
from genomatt.intervals import overlaps_any
from genomatt.shuffle import dinucleotide_shuffle

log = logging.getLogger(__name__)

GC_BINS = 50
CANDIDATES_PER_POSITIVE = 5
MIN_CANDIDATES_PER_CHROM = 200
# Windows with more unknown bases than this are not background (assembly gaps, masked repeats).
MAX_UNKNOWN_FRACTION = 0.1
GC_CHUNK = 4096


def gc_content(X: np.ndarray) -> np.ndarray:
    """Fraction of G and C among the known bases of each sequence.

    Parameters
    ----------
    X
        ``(N, 4, L)`` one-hot, channels A, C, G, T.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64; NaN for a sequence of unknown bases only.
    """
    known = X.sum(axis=(1, 2), dtype=np.float64)
    gc = X[:, 1:3].sum(axis=(1, 2), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known > 0, gc / known, np.nan)


def _candidate_windows(
    chrom: str, chrom_size: int, n: int, width: int, margin: int, exclude: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Up to ``n`` random windows of ``chrom`` whose ``margin``-widened span avoids ``exclude``."""
    if chrom_size < width + 2 * margin:
        return pd.DataFrame(columns=["chrom", "start", "end"])
    starts = np.unique(rng.integers(margin, chrom_size - width - margin + 1, size=n))
    chroms = np.full(len(starts), chrom, dtype=object)
    clear = ~overlaps_any(chroms, starts - margin, starts + width + margin, exclude)
    return pd.DataFrame({"chrom": chroms[clear], "start": starts[clear], "end": starts[clear] + width})


def _known_gc(fasta: str | os.PathLike, windows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """GC fraction and fraction of unknown bases of each window, read in chunks to bound memory."""
    gc, unknown = [], []
    for begin in range(0, len(windows), GC_CHUNK):
        _, X = load_regions(fasta, windows.iloc[begin : begin + GC_CHUNK], progress=False, report_n=False)
        gc.append(gc_content(X))
        unknown.append(1.0 - X.sum(axis=(1, 2)) / X.shape[2])
    return np.concatenate(gc), np.concatenate(unknown)


def _gc_bin(gc: np.ndarray) -> np.ndarray:
    """GC bin index of each fraction (an all-unknown sequence, NaN, counts as 50%)."""
    return np.clip((np.nan_to_num(gc, nan=0.5) * GC_BINS).astype(int), 0, GC_BINS - 1)


def _match_by_gc(target_gc: np.ndarray, candidate_gc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each target, a distinct candidate from the nearest GC bin that still has one; ``(M,)`` indices.

    Fewer than ``len(target_gc)`` indices come back when the candidates run out.
    """
    candidate_bins = _gc_bin(candidate_gc)
    pools = [list(rng.permutation(np.flatnonzero(candidate_bins == b))) for b in range(GC_BINS)]
    chosen = []
    for target_bin in _gc_bin(target_gc)[rng.permutation(len(target_gc))]:
        for distance in range(GC_BINS):
            nonempty = [b for b in (target_bin - distance, target_bin + distance) if 0 <= b < GC_BINS and pools[b]]
            if nonempty:
                chosen.append(pools[nonempty[0]].pop())
                break
        else:
            break
    return np.array(chosen, dtype=np.int64)


def _negatives_on_chromosome(
    fasta: str | os.PathLike,
    chrom: str,
    chrom_size: int,
    target_gc: np.ndarray,
    exclude: pd.DataFrame,
    width: int,
    margin: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Background windows of one chromosome matching ``target_gc`` (fewer if candidates run out)."""
    n_candidates = max(CANDIDATES_PER_POSITIVE * len(target_gc), MIN_CANDIDATES_PER_CHROM)
    candidates = _candidate_windows(chrom, chrom_size, n_candidates, width, margin, exclude, rng)
    if len(candidates) == 0:
        return candidates.assign(gc=np.zeros(0))
    candidate_gc, unknown = _known_gc(fasta, candidates)
    usable = unknown <= MAX_UNKNOWN_FRACTION
    candidates, candidate_gc = candidates[usable].reset_index(drop=True), candidate_gc[usable]
    picked = _match_by_gc(target_gc, candidate_gc, rng)
    return candidates.iloc[picked].assign(gc=candidate_gc[picked])


# Fewer GC-matched negatives than this share of the positives is refused: the background is too small to learn.
MIN_NEGATIVE_SHARE = 0.5


def gc_matched_negatives(
    fasta: str | os.PathLike,
    positives: pd.DataFrame,
    positive_gc: np.ndarray,
    exclude: pd.DataFrame,
    width: int,
    margin: int = 0,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Genomic background windows with the GC content of the positives, chromosome by chromosome.

    Each chromosome gets as many negatives as it has positives, so every chromosome hold-out split
    keeps its balance. Candidates are drawn uniformly along the chromosome, dropped if they (widened
    by ``margin``) overlap ``exclude`` or hold more than 10% unknown bases, and matched greedily to
    the positives' GC content in bins of 2%.

    Parameters
    ----------
    fasta
        Genome FASTA.
    positives
        ``(N,)`` positive windows with ``chrom``.
    positive_gc
        ``(N,)`` GC fraction of each positive (see :func:`gc_content`).
    exclude
        Regions negatives must not overlap (all positive regions and windows).
    width
        Window width in bp.
    margin
        Extra bp on each side that must also be clear (e.g. the jitter of training windows).
    random_state
        Seed or generator.

    Returns
    -------
    pandas.DataFrame
        ``chrom, start, end, name, gc`` of the negatives.
    """
    rng = np.random.default_rng(random_state)
    sizes = read_chrom_sizes(fasta)
    missing = sorted(set(positives["chrom"]) - set(sizes))
    if missing:
        raise FastaError(f"{fasta}: chromosomes {missing} of the positives are not in the FASTA")
    chosen = []
    for chrom, index in positives.groupby("chrom", sort=False).indices.items():
        found = _negatives_on_chromosome(fasta, chrom, sizes[chrom], positive_gc[index], exclude, width, margin, rng)
        if len(found) < len(index):
            log.warning(
                "%s: only %d of %d GC-matched negatives found clear of the positives", chrom, len(found), len(index)
            )
        if len(found):
            chosen.append(found)
    found = sum(len(table) for table in chosen)
    if not chosen or found < MIN_NEGATIVE_SHARE * len(positives):
        raise ConfigError(
            f"{fasta}: only {found} background windows of {width} bp clear of the task regions for {len(positives)} "
            f"positive windows (at least {MIN_NEGATIVE_SHARE:.0%} as many are needed): trained on so few negatives, "
            "a model learns to tell the tasks apart, not each task from the background. Use --negatives shuffled "
            "(dinucleotide shuffles of the positives) or a BED of negatives, or a smaller --width")
    if found < len(positives):
        log.warning("%d GC-matched negatives for %d positive windows: the genome's background between the task "
                    "regions holds no more", found, len(positives))
    negatives = pd.concat(chosen, ignore_index=True)
    gap = float(np.mean(positive_gc)) - float(negatives["gc"].mean())
    if abs(gap) > 1 / GC_BINS:
        # Matched to the nearest bins that had candidates: the classes differ in GC, which a model learns.
        log.warning("the GC-matched negatives hold %.3f GC on average against the positives' %.3f: the genome has "
                    "too few background windows of the positives' GC, and a model may tell the classes apart by "
                    "GC alone; consider --negatives shuffled (the positives' own dinucleotide content) or a BED of "
                    "negatives", float(negatives["gc"].mean()), float(np.mean(positive_gc)))
    negatives["name"] = [
        f"{c}:{s}-{e}:gc_matched" for c, s, e in negatives[["chrom", "start", "end"]].itertuples(index=False)
    ]
    return negatives[["chrom", "start", "end", "name", "gc"]]


def shuffled_negatives(X: np.ndarray, random_state: int | np.random.Generator | None = None) -> np.ndarray:
    """One dinucleotide shuffle of each positive sequence.

    Parameters
    ----------
    X
        ``(N, 4, L)`` one-hot positives.
    random_state
        Seed or generator.

    Returns
    -------
    numpy.ndarray
        ``(N, 4, L)`` float32 shuffles with the same dinucleotide counts as their positive.
    """
    return np.ascontiguousarray(dinucleotide_shuffle(X, n=1, random_state=random_state)[:, 0])
