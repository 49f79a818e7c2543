"""Motif hits: where each motif is used in the contribution scores of every region.

Method (greedy non-negative matching pursuit of CWMs; ``docs/methods.md`` has the full account):

1. Every motif is a contribution weight matrix (CWM) ``(4, W)``, trimmed to the positions whose total
   absolute weight is at least ``trim_threshold`` of the largest (as Fi-NeMo and tfmodisco-lite trim),
   scaled to unit L2 norm and scanned on both strands.
2. For every window, the *similarity* is the cosine between the window's projected contributions and
   the CWM (all four bases, as Fi-NeMo's ``hit_similarity``), with ``energy_floor`` times the energy of
   a background window of the same width (the task's median squared contribution per position times
   the core width) added to the window's squared norm (Fi-NeMo's ``eps``), so it is high only where the
   sequence matches the motif and the contributions follow it and stand out of the background; the
   *importance* is the sum of the window's contributions (sign-flipped for motifs with a negative CWM).
3. The importance threshold of each motif and task keeps the false discovery rate of candidate hits
   at ``fdr`` (Benjamini-Hochberg) against a permutation null: the same scan on the contributions with
   their per-base values moved to random positions of the same region, on the unchanged sequence.
4. A hit's least-squares coefficient must also be at least ``min_strength`` times the *reference
   strength* of the task: the largest, over the motifs scanned, of the 90th percentile over regions of
   the motif's best coefficient in each region, i.e. how strongly the task's strongest motif is used
   at its typical sites. Site contributions and background per position do not depend on how wide
   the regions are, so neither does this threshold nor the energy floor.
5. In each region, the passing window whose least-squares fit explains the most squared contribution
   becomes a hit; its fit is subtracted from the contributions, the windows of the same motif that
   overlap it (either strand) are closed, and the scan repeats on what is left until no window passes.
   So each site gives one hit of a motif (palindromes and shifted copies included) and its contribution
   is counted once, while a different motif overlapping it is still found.
6. A hit is scanned with the motif's core (trimmed at ``trim_threshold``) but spans the motif as
   discovered: ``start``/``end`` are the columns of at least a tenth of the largest (the span matched to
   known motifs and written in ``motifs.meme``), so a long motif's hit lies on its whole site.
7. Across tasks (:func:`call_hits_in_store`), a hit is kept only where its site drives its own task at least
   ``min_task_share`` as much as the task it drives most, each task on the scale of its own hits
   (:func:`task_share`), so a task does not take the sites of factors that drive its other tasks.

Everything runs batched in PyTorch, on a GPU when one is available.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from genomatt import __version__
from genomatt.atomic import atomic_hdf5, atomic_path
from genomatt.contributions import PER_REGION_SCORES, Contributions, read_contributions
from genomatt.device import resolve_device
from genomatt.errors import MotifError, StoreError
from genomatt.motifs.discovery import MATCH_TRIM_FRACTION, TRIM_FRACTION, trim_bounds
from genomatt.motifs.finemo import write_finemo_motifs
from genomatt.motifs.formats import read_meme, reverse_complement_matrix
from genomatt.store import read_table, write_table
from genomatt.tracks import write_hits_bed

log = logging.getLogger(__name__)

# Fi-NeMo's hits.tsv columns, in its order: hits.tsv holds exactly these.
FINEMO_COLUMNS = [
    "chr", "start", "end", "start_untrimmed", "end_untrimmed", "motif_name", "hit_coefficient",
    "hit_coefficient_global", "hit_similarity", "hit_correlation", "hit_importance", "hit_importance_sq",
    "strand", "peak_name", "peak_id",
]
# Ours, in hits_genomatt.tsv (row for row with hits.tsv, after the columns that identify a hit).
EXTRA_COLUMNS = ["task", "hit_amplitude", "hit_contribution"]
HIT_COLUMNS = FINEMO_COLUMNS + EXTRA_COLUMNS
EXTRA_FILE_COLUMNS = ["chr", "start", "end", "motif_name", "strand", "peak_id"] + EXTRA_COLUMNS
QC_COLUMNS = ["chrom", "start", "end", "name", "peak_id", "task", "n_hits", "contribution", "global_scale",
              "explained_fraction", "delta", "prediction"]

DEFAULT_MIN_SIMILARITY = 0.7
DEFAULT_FDR = 0.05
# Fi-NeMo's eps: the share of a region's mean squared contribution per position added to window energies.
DEFAULT_ENERGY_FLOOR = 1.0
DEFAULT_TRIM_THRESHOLD = TRIM_FRACTION
DEFAULT_BATCH_SIZE = 128
# Least hit coefficient, as a fraction of the task's reference strength (see the module docstring).
DEFAULT_MIN_STRENGTH = 0.1
# The reference strength of a motif is this quantile over regions of its best coefficient per region: a
# motif used in more than a tenth of the regions scanned reaches it at its sites, not in the background.
REFERENCE_QUANTILE = 0.9
# Least share of a hit's site in its own task (see task_share): the site must drive its task at least half as
# much as it drives the task it drives most.
DEFAULT_MIN_TASK_SHARE = 0.5


@dataclass
class CwmMotif:
    """A motif to find in contribution scores.

    Attributes
    ----------
    name
        Motif name, written in the ``motif_name`` column of the hits.
    cwm
        ``(4, W)`` contribution weight matrix (A, C, G, T); negative for motifs whose contributions are.
    task
        The task whose contributions the motif is scanned in; ``None`` scans every task.
    n_seqlets
        Seqlets the motif was built from (``None`` for motifs of a MEME file).
    """

    name: str
    cwm: np.ndarray
    task: str | None = None
    n_seqlets: int | None = None

    @property
    def sign(self) -> int:
        """+1 for a motif of positive contributions, -1 for a negative one."""
        return 1 if self.cwm.sum() >= 0 else -1


@dataclass
class HitCalls:
    """Hits and per-region quality control of one hit-calling run.

    Attributes
    ----------
    hits
        One row per hit, columns :data:`HIT_COLUMNS` (Fi-NeMo's ``hits.tsv`` columns, then ours).
    qc
        One row per region and task, columns :data:`QC_COLUMNS`.
    motifs
        The motifs scanned, with their trim bounds and importance thresholds (one row per motif and task).
    cwms
        Motif name → the ``(4, W)`` CWM scanned (untrimmed, as given).
    settings
        The parameters of the run.
    """

    hits: pd.DataFrame
    qc: pd.DataFrame
    motifs: pd.DataFrame
    cwms: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def logo_heights(probabilities: np.ndarray) -> np.ndarray:
    """Letter heights of a sequence logo: probabilities times information content (bits).

    Parameters
    ----------
    probabilities
        ``(4, W)`` position probability matrix, columns summing to 1.

    Returns
    -------
    numpy.ndarray
        ``(4, W)`` float64, each column summing to its information content (0 to 2 bits).
    """
    probabilities = np.asarray(probabilities, dtype=float)
    entropy = -(probabilities * np.log2(np.clip(probabilities, 1e-12, 1))).sum(axis=0)
    return probabilities * (2 - entropy)


def read_cwm_motifs(path: str | os.PathLike) -> list[CwmMotif]:
    """Motifs to scan from a ``motifs.h5`` (discovered CWMs) or a MEME file (e.g. JASPAR motifs).

    A MEME motif has no CWM: its logo heights (:func:`logo_heights`) stand in for one, and it is
    scanned in every task.

    Returns
    -------
    list of CwmMotif
        In file order; empty for a ``motifs.h5`` in which no motif was found.
    """
    path = Path(path)
    if not path.is_file():
        raise MotifError(f"{path}: motif file not found")
    if h5py.is_hdf5(path):
        from genomatt.motifs.store import read_motifs

        motifs = [CwmMotif(motif.name, np.asarray(motif.cwm, dtype=float), motif.task, motif.n_seqlets)
                  for motif in read_motifs(path)[0]]
    else:
        motifs = [CwmMotif(motif.name if motif.name else motif.id, logo_heights(motif.probabilities))
                  for motif in read_meme(path)]
    for motif in motifs:
        if motif.cwm.ndim != 2 or motif.cwm.shape[0] != 4 or motif.cwm.shape[1] == 0:
            raise MotifError(f"{path}: motif {motif.name} has CWM shape {motif.cwm.shape}, expected (4, W)")
        if not np.isfinite(motif.cwm).all() or not np.abs(motif.cwm).sum() > 0:
            raise MotifError(f"{path}: motif {motif.name} has a CWM that is all zero or not finite")
    names = [motif.name for motif in motifs]
    if len(set(names)) != len(names):
        raise MotifError(f"{path}: motif names must be distinct, got duplicates of "
                         f"{sorted({n for n in names if names.count(n) > 1})}")
    return motifs


def select_motifs(
    motifs: list[CwmMotif], include: list[str] | None = None, exclude: list[str] | None = None,
    min_seqlets: int = 0,
) -> list[CwmMotif]:
    """The motifs to scan, chosen by name and size (as Fi-NeMo's ``-I``/``-E``).

    Parameters
    ----------
    motifs
        Motifs in file order.
    include, exclude
        Shell-style name patterns (``fnmatch``, e.g. ``GATA1.pos.*``): keep only motifs matching one of
        ``include`` (all when ``None``), then drop those matching one of ``exclude``.
    min_seqlets
        Drop discovered motifs built from fewer seqlets (MEME motifs, which have no count, stay).

    Returns
    -------
    list of CwmMotif
        The kept motifs, in file order.

    Raises
    ------
    MotifError
        If a pattern of ``include`` or ``exclude`` matches no motif (a misspelt name would otherwise go
        unnoticed).
    """
    from fnmatch import fnmatchcase

    names = [motif.name for motif in motifs]
    for option, patterns in (("include", include), ("exclude", exclude)):
        unmatched = [p for p in patterns or [] if not any(fnmatchcase(name, p) for name in names)]
        if unmatched:
            raise MotifError(f"--{option} patterns {unmatched} match no motif (motifs: {names})")
    kept = [m for m in motifs if include is None or any(fnmatchcase(m.name, p) for p in include)]
    kept = [m for m in kept if not any(fnmatchcase(m.name, p) for p in exclude or [])]
    small = [m.name for m in kept if m.n_seqlets is not None and m.n_seqlets < min_seqlets]
    if small:
        log.info("motifs %s have fewer than %d seqlets; not scanned", small, min_seqlets)
    return [m for m in kept if m.name not in small]


def importance_threshold(observed: np.ndarray, null: np.ndarray, fdr: float) -> float:
    """Smallest importance at which the candidate hits keep a false discovery rate of at most ``fdr``.

    Parameters
    ----------
    observed
        Importance of every candidate hit of the contributions.
    null
        Importance of every candidate hit of the permuted contributions.
    fdr
        Target false discovery rate, in (0, 1).

    Returns
    -------
    float
        The Benjamini-Hochberg cut of ``observed`` against ``null`` (> 0), or ``inf`` when no
        candidate passes. The null count is incremented by one, so a small data set errs on the side
        of fewer hits.
    """
    observed = np.sort(observed)[::-1]
    null = np.sort(null)
    null_at_least = null.size - np.searchsorted(null, observed, side="left")
    estimated_fdr = (null_at_least + 1) / np.arange(1, observed.size + 1)
    passing = np.flatnonzero((estimated_fdr <= fdr) & (observed > 0))
    return float(observed[passing[-1]]) if passing.size else float("inf")


def permute_contributions(contrib: np.ndarray, onehot: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contributions with their per-base values moved to random positions of the same region.

    The sequence stays, so chance matches of a motif stay; each base receives the contribution of a
    random base of the same region. Motif-shaped runs of contributions are destroyed.

    Parameters
    ----------
    contrib, onehot
        ``(N, 4, L)`` projected contributions and one-hot sequences.

    Returns
    -------
    numpy.ndarray
        ``(N, 4, L)`` float32 permuted projected contributions.
    """
    per_base = rng.permuted(contrib.sum(axis=1), axis=1)
    return (onehot * per_base[:, None, :]).astype(np.float32)


@dataclass
class _Filters:
    """Both orientations of every trimmed, unit-norm CWM, left-aligned and zero-padded to one width."""

    weights: torch.Tensor  # (K, 4, Wmax), K = 2 * motifs: forward then reverse complement of each
    widths: np.ndarray  # (K,) trimmed widths
    width_index: torch.Tensor  # (K,) index into unique_widths
    unique_widths: np.ndarray  # (J,)
    window_mask: torch.Tensor  # (K, Wmax) ones over each filter's first w_k positions
    motif_index: np.ndarray  # (K,)
    reverse: np.ndarray  # (K,) bool
    sign: torch.Tensor  # (K,)
    trims: list[tuple[int, int]]  # per motif
    scales: np.ndarray  # (M,) L2 norm of each trimmed CWM before scaling
    spans: np.ndarray  # (K, 2) the motif's span (motif_span) relative to the start of each filter's core


def _build_filters(motifs: list[CwmMotif], trim_threshold: float, device: torch.device) -> _Filters:
    trims = [trim_bounds(motif.cwm, trim_threshold) for motif in motifs]
    cores = [motif.cwm[:, start:end] for motif, (start, end) in zip(motifs, trims)]
    scales = np.array([np.sqrt((core**2).sum()) for core in cores])
    oriented = []
    for core, scale in zip(cores, scales):
        oriented += [core / scale, reverse_complement_matrix(core / scale)]
    widths = np.array([matrix.shape[1] for matrix in oriented])
    weights = np.zeros((len(oriented), 4, widths.max()), dtype=np.float32)
    for index, matrix in enumerate(oriented):
        weights[index, :, : matrix.shape[1]] = matrix
    unique_widths, width_index = np.unique(widths, return_inverse=True)
    window_mask = (np.arange(widths.max())[None, :] < widths[:, None]).astype(np.float32)
    signs = np.repeat([motif.sign for motif in motifs], 2).astype(np.float32)
    spans = []
    for motif, (start, end) in zip(motifs, trims):
        span_start, span_end = motif_span(motif.cwm, (start, end))
        # On the reverse strand the core starts at W - end of the reverse complement, the span at W - span_end.
        spans += [(span_start - start, span_end - start), (end - span_end, end - span_start)]
    return _Filters(
        weights=torch.from_numpy(weights).to(device), widths=widths,
        width_index=torch.from_numpy(width_index).to(device), unique_widths=unique_widths,
        window_mask=torch.from_numpy(window_mask).to(device), motif_index=np.repeat(np.arange(len(motifs)), 2),
        reverse=np.tile([False, True], len(motifs)), sign=torch.from_numpy(signs).to(device),
        trims=trims, scales=scales, spans=np.array(spans, dtype=np.int64),
    )


def _window_sums(track: torch.Tensor, filters: _Filters) -> torch.Tensor:
    """Sum of a ``(B, L)`` track over the window of each filter starting at each position: ``(B, K, L)``.

    Windows running past the end are 0. Cumulative sums in float64 keep the small windows of long
    regions exact enough for the similarity's denominator.
    """
    cumulative = F.pad(track.double().cumsum(dim=-1), (1, 0))
    sums = [F.pad(cumulative[:, w:] - cumulative[:, :-w], (0, w - 1)) for w in filters.unique_widths.tolist()]
    return torch.stack(sums, dim=1).float()[:, filters.width_index]


def _scan(
    contrib: torch.Tensor, filters: _Filters, floor: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Covariance, similarity and importance of every window of every oriented filter.

    Parameters
    ----------
    contrib
        ``(B, 4, L)`` projected contributions.
    floor
        ``(K,)`` energy added to each filter's windows before the similarity is taken (see
        ``energy_floor`` of :func:`call_hits`).

    Returns
    -------
    covariance, similarity, importance
        ``(B, K, L)`` each, indexed by window start; windows running past the region end are ``-inf``
        in ``similarity``.
    """
    length = contrib.shape[-1]
    covariance = F.conv1d(F.pad(contrib, (0, filters.weights.shape[-1] - 1)), filters.weights)
    energy = _window_sums((contrib**2).sum(dim=1), filters)
    importance = _window_sums(contrib.sum(dim=1), filters) * filters.sign[None, :, None]
    similarity = covariance / torch.sqrt((energy + floor[None, :, None]).clamp_min(1e-20))
    positions = torch.arange(length, device=contrib.device)
    widths = torch.as_tensor(filters.widths, device=contrib.device)
    inside = positions[None, :] + widths[:, None] <= length  # (K, L)
    similarity = torch.where(inside, similarity, -torch.inf)
    return covariance, similarity, importance


def _projected_energy(onehot: torch.Tensor, filters: _Filters) -> torch.Tensor:
    """``(B, K, L)`` squared norm of each filter projected on each window's sequence (``cwm * onehot``)."""
    return F.conv1d(F.pad(onehot, (0, filters.weights.shape[-1] - 1)), filters.weights**2).clamp_min(1e-20)


def _candidates(
    contrib: torch.Tensor, onehot: torch.Tensor, filters: _Filters, min_similarity: float, floor: torch.Tensor
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per motif, the importance of each candidate hit in a batch, and each region's best coefficient.

    A candidate is a window passing the similarity threshold whose fit explains more contribution than
    any other window of the motif (either strand) that it overlaps. Counting candidates rather than
    windows keeps the shifted copies of one site from counting as many discoveries.

    Returns
    -------
    importance
        Per motif, the importance of its candidates.
    best_coefficient
        ``(B, M)`` largest least-squares coefficient of each motif over the windows of each region that
        pass the similarity threshold (0 where none does).
    """
    covariance, similarity, importance = _scan(contrib, filters, floor)
    projected_energy = _projected_energy(onehot, filters)
    similar = similarity >= min_similarity
    gain = torch.where(similar, covariance**2 / projected_energy, 0.0)
    coefficient = torch.where(similar, covariance / projected_energy, 0.0)
    found, best_coefficient = [], []
    for motif in range(len(filters.trims)):
        width = int(filters.widths[2 * motif])
        both = gain[:, 2 * motif : 2 * motif + 2]
        best, strand = both.max(dim=1)
        neighbourhood = F.max_pool1d(best[:, None], 2 * width - 1, stride=1, padding=width - 1)[:, 0]
        peak = (best > 0) & (best >= neighbourhood)
        values = importance[:, 2 * motif : 2 * motif + 2].gather(1, strand[:, None])[:, 0]
        found.append(values[peak].cpu().numpy())
        best_coefficient.append(coefficient[:, 2 * motif : 2 * motif + 2].flatten(1).max(dim=1).values)
    return found, torch.stack(best_coefficient, dim=1).cpu().numpy()


def _subtract_fits(
    residual: torch.Tensor, onehot: torch.Tensor, region: torch.Tensor, chosen_filter: torch.Tensor,
    position: torch.Tensor, coefficient: torch.Tensor, filters: _Filters,
) -> None:
    """Subtract ``coefficient * cwm * onehot`` over each chosen window, in place (one window per region)."""
    length = residual.shape[-1]
    columns = position[:, None] + torch.arange(filters.weights.shape[-1], device=residual.device)[None, :]
    inside = (filters.window_mask[chosen_filter] > 0) & (columns < length)  # (H, Wmax)
    # Padding columns point at column 0 with a zero update; accumulating keeps them from overwriting it.
    columns = torch.where(inside, columns, 0)[:, None, :].expand(-1, 4, -1)  # (H, 4, Wmax)
    rows = region[:, None, None].expand_as(columns)
    channels = torch.arange(4, device=residual.device)[None, :, None].expand_as(columns)
    fitted = coefficient[:, None, None] * filters.weights[chosen_filter] * inside[:, None, :]
    residual.index_put_((rows, channels, columns), -fitted * onehot[rows, channels, columns], accumulate=True)


def _close_overlapping(
    closed: torch.Tensor, region: torch.Tensor, chosen_filter: torch.Tensor, position: torch.Tensor,
    filters: _Filters,
) -> None:
    """Close, in place, the windows of each hit's motif (both strands) whose span overlaps the hit's span.

    ``closed`` is ``(B, K, L)``: window starts of each oriented filter that may no longer become hits.
    """
    length = closed.shape[-1]
    spans = torch.as_tensor(filters.spans, device=closed.device)
    hit_span = spans[chosen_filter]  # (H, 2)
    reach = int((filters.spans[:, 1] - filters.spans[:, 0]).max())
    shifts = torch.arange(-2 * reach, 2 * reach + 1, device=closed.device)
    for strand in (0, 1):
        other = 2 * (chosen_filter // 2) + strand  # (H,) the motif's filter on that strand
        other_span = spans[other]
        # The other filter's span at start s overlaps [p + a_k, p + b_k) when p + a_k - b_j < s < p + b_k - a_j.
        low = hit_span[:, 0] - other_span[:, 1]
        high = hit_span[:, 1] - other_span[:, 0]
        starts = position[:, None] + shifts[None, :]
        overlapping = ((shifts[None, :] > low[:, None]) & (shifts[None, :] < high[:, None])
                       & (starts >= 0) & (starts < length))
        rows = region[:, None].expand_as(starts)[overlapping]
        closed[rows, other[:, None].expand_as(starts)[overlapping], starts[overlapping]] = True


def _pursue(
    contrib: torch.Tensor, onehot: torch.Tensor, filters: _Filters, thresholds: torch.Tensor,
    min_similarity: float, floor: torch.Tensor, min_coefficient: float,
) -> tuple[list[tuple[int, int, int, float, float]], torch.Tensor]:
    """Greedy non-negative matching pursuit on a batch, one hit per site and motif.

    Parameters
    ----------
    contrib, onehot
        ``(B, 4, L)`` projected contributions and one-hot sequence.
    thresholds
        ``(K,)`` importance threshold of each oriented filter.
    floor
        ``(K,)`` energy floor of each oriented filter's similarities.
    min_coefficient
        Least coefficient of a hit.

    Returns
    -------
    hits
        ``(row, filter, position, coefficient, similarity)`` tuples; ``position`` is the window start.
    residual
        ``(B, 4, L)`` contributions left unexplained by the hits.
    """
    length = contrib.shape[-1]
    cwm_energy = _projected_energy(onehot, filters)
    residual = contrib.clone()
    closed = torch.zeros((contrib.shape[0], len(filters.widths), length), dtype=torch.bool, device=contrib.device)
    active = torch.arange(contrib.shape[0], device=contrib.device)
    hits = []
    while active.numel():
        covariance, similarity, importance = _scan(residual[active], filters, floor)
        projected_energy = cwm_energy[active]
        coefficients = covariance / projected_energy
        passing = ((similarity >= min_similarity) & (importance >= thresholds[None, :, None])
                   & (coefficients >= min_coefficient) & ~closed[active])
        # The window whose least-squares fit removes the most squared contribution wins.
        gain = torch.where(passing, covariance**2 / projected_energy, -1.0)
        best_gain, best = gain.flatten(1).max(dim=1)
        found = best_gain > 0
        if not found.any():
            break
        rows, best = torch.nonzero(found).squeeze(1), best[found]
        chosen_filter, chosen_position = best // length, best % length
        coefficient = coefficients[rows, chosen_filter, chosen_position]
        region = active[rows]
        _subtract_fits(residual, onehot, region, chosen_filter, chosen_position, coefficient, filters)
        _close_overlapping(closed, region, chosen_filter, chosen_position, filters)
        hits += list(zip(region.tolist(), chosen_filter.tolist(), chosen_position.tolist(), coefficient.tolist(),
                         similarity[rows, chosen_filter, chosen_position].tolist()))
        active = region
    return hits, residual


def _motifs_for_task(motifs: list[CwmMotif], task: str) -> list[CwmMotif]:
    return [motif for motif in motifs if motif.task in (None, task)]


def background_energy(contrib: np.ndarray) -> float:
    """Squared contribution of a typical background position: the median over all positions of all regions.

    Motif sites cover far fewer than half the positions, so the median is the background's level and does
    not depend on the width of the regions (their mean does: it holds the sites' energy over the width).

    Parameters
    ----------
    contrib
        ``(N, 4, L)`` projected contributions.
    """
    per_position = (contrib.astype(np.float64) ** 2).sum(axis=1)
    return float(np.median(per_position)) if per_position.size else 0.0


def _window_floor(contrib: np.ndarray, energy_floor: float, filters: _Filters) -> np.ndarray:
    """``(K,)`` ``energy_floor`` times the background energy of a window of each filter's width."""
    return (energy_floor * background_energy(contrib) * filters.widths).astype(np.float32)


def _scan_statistics(
    contrib: np.ndarray, onehot: np.ndarray, filters: _Filters, min_similarity: float, fdr: float,
    batch_size: int, device: torch.device, seed: int, floor: np.ndarray,
) -> tuple[list[float], np.ndarray]:
    """Importance threshold of each motif (candidates of the contributions against those of a permutation)
    and ``(N, M)`` best coefficient of each motif in each region."""
    rng = np.random.default_rng(seed)
    observed, null = [[] for _ in filters.trims], [[] for _ in filters.trims]
    best_coefficients = []
    floor_tensor = torch.from_numpy(floor).to(device)
    for first in range(0, len(contrib), batch_size):
        batch = slice(first, first + batch_size)
        batch_onehot = torch.from_numpy(onehot[batch]).to(device)
        permuted = permute_contributions(contrib[batch], onehot[batch], rng)
        for collected, values in ((observed, contrib[batch]), (null, permuted)):
            found, best = _candidates(torch.from_numpy(values).to(device), batch_onehot, filters, min_similarity,
                                      floor_tensor)
            for motif_values, batch_values in zip(collected, found):
                motif_values.append(batch_values)
            if collected is observed:
                best_coefficients.append(best)
    thresholds = [importance_threshold(np.concatenate(real), np.concatenate(shuffled), fdr)
                  for real, shuffled in zip(observed, null)]
    return thresholds, np.concatenate(best_coefficients)


def reference_strength(best_coefficients: np.ndarray) -> tuple[float, np.ndarray]:
    """The task's reference strength and each motif's strength, from their best coefficient per region.

    Parameters
    ----------
    best_coefficients
        ``(N, M)`` largest hit coefficient of each motif in each region (0 where no window is similar).

    Returns
    -------
    reference : float
        The largest motif strength: the strongest motif's coefficient at its typical sites.
    strengths : numpy.ndarray
        ``(M,)`` each motif's :data:`REFERENCE_QUANTILE` quantile over regions of its best coefficient.
    """
    if not best_coefficients.size:
        return 0.0, np.zeros(best_coefficients.shape[1])
    strengths = np.quantile(best_coefficients, REFERENCE_QUANTILE, axis=0)
    return float(strengths.max()), strengths


def call_hits(
    contrib: np.ndarray,
    onehot: np.ndarray,
    motifs: list[CwmMotif],
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    fdr: float = DEFAULT_FDR,
    trim_threshold: float = DEFAULT_TRIM_THRESHOLD,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    seed: int = 0,
    energy_floor: float = DEFAULT_ENERGY_FLOOR,
    min_strength: float = DEFAULT_MIN_STRENGTH,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Call hits of motifs in the contributions of one task, region by region.

    Parameters
    ----------
    contrib
        ``(N, 4, L)`` projected contributions (``onehot * hypothetical``).
    onehot
        ``(N, 4, L)`` one-hot sequences.
    motifs
        Motifs to find (each scanned on both strands).
    min_similarity
        Least similarity between a window's contributions and the unit-norm CWM, in (0, 1]: their
        cosine, with the energy floor added to the window's energy. Fi-NeMo's default is the same 0.7.
    fdr
        False discovery rate of candidate hits, against the permutation null, that sets each motif's
        importance threshold.
    trim_threshold
        CWM trimming of the scanned core, as a fraction of the largest per-position weight.
    batch_size
        Regions per batch.
    device
        Torch device; the GPU when one is available, else the CPU.
    seed
        Seed of the permutation null.
    energy_floor
        Regularisation of the similarity, as Fi-NeMo's ``eps``: ``energy_floor`` times the energy of a
        background window of the core's width (:func:`background_energy` per position) is added to each
        window's squared norm, so a window must carry more contribution than the background to look
        like the motif. 0 gives the plain cosine.
    min_strength
        Least hit coefficient as a fraction of the task's reference strength (:func:`reference_strength`:
        the strongest motif's coefficient at its typical sites), in [0, 1). 0 keeps every hit that passes
        the other thresholds.

    Returns
    -------
    hits : pandas.DataFrame
        One row per hit: ``region`` (row in the inputs), ``motif`` (index in ``motifs``), ``strand``,
        ``offset`` and ``width`` (the motif's span, see the module docstring, clipped to the region),
        ``offset_untrimmed``, ``width_untrimmed`` (the whole CWM), ``coefficient`` (least-squares
        coefficient of the unit-norm core, in contribution units), ``similarity``, ``importance`` (sum of
        absolute contributions over the span), ``importance_sq`` (sum of squares), ``contribution``
        (signed sum).
    qc : pandas.DataFrame
        One row per region: ``n_hits``, ``contribution`` (sum), ``global_scale`` (root mean square
        contribution per position) and ``explained_fraction`` (share of the squared contributions that
        the hits explain).
    thresholds : pandas.DataFrame
        One row per motif: ``trim_start``, ``trim_end``, ``cwm_scale``, ``importance_threshold``,
        ``strength`` (its reference-strength quantile) and ``min_coefficient`` (the task's coefficient
        threshold).
    """
    contrib, onehot = _check_arrays(contrib, onehot)
    if not 0 < min_similarity <= 1:
        raise MotifError(f"min_similarity must be in (0, 1], got {min_similarity}")
    if not 0 < fdr < 1:
        raise MotifError(f"fdr must be in (0, 1), got {fdr}")
    if not 0 <= trim_threshold <= 1:
        raise MotifError(f"trim_threshold must be in [0, 1], got {trim_threshold}")
    if batch_size < 1:
        raise MotifError(f"batch_size must be >= 1, got {batch_size}")
    if not energy_floor >= 0:
        raise MotifError(f"energy_floor must be >= 0, got {energy_floor}")
    if not 0 <= min_strength < 1:
        raise MotifError(f"min_strength must be in [0, 1), got {min_strength}")
    n, _, length = contrib.shape
    device = resolve_device(device)
    if not motifs:
        total_sq = (contrib.astype(np.float64) ** 2).sum(axis=(1, 2))
        return (_empty_hits(), _region_qc(contrib, total_sq, np.zeros(n, dtype=int)),
                _thresholds_table([], [], [], [], [], 0.0))
    filters = _build_filters(motifs, trim_threshold, device)
    too_wide = [m.name for m, (start, end) in zip(motifs, filters.trims) if end - start > length]
    if too_wide:
        raise MotifError(f"motifs {too_wide} are wider (after trimming) than the regions ({length} bp)")
    floor = _window_floor(contrib, energy_floor, filters)
    motif_thresholds, best_coefficients = _scan_statistics(contrib, onehot, filters, min_similarity, fdr,
                                                           batch_size, device, seed, floor)
    reference, strengths = reference_strength(best_coefficients)
    min_coefficient = min_strength * reference
    thresholds = torch.tensor(np.repeat(motif_thresholds, 2), dtype=torch.float32, device=device)
    floor_tensor = torch.from_numpy(floor).to(device)
    tables, residual_sq = [], np.empty(n)
    for first in range(0, n, batch_size):
        batch = slice(first, first + batch_size)
        batch_contrib = torch.from_numpy(contrib[batch]).to(device)
        found, residual = _pursue(batch_contrib, torch.from_numpy(onehot[batch]).to(device), filters, thresholds,
                                  min_similarity, floor_tensor, min_coefficient)
        table = _hit_table(found, filters, motifs, contrib[batch])
        tables.append(table.assign(region=table["region"] + first))
        residual_sq[batch] = (residual.double() ** 2).sum(dim=(1, 2)).cpu().numpy()
    hits = pd.concat(tables, ignore_index=True) if tables else _empty_hits()
    qc = _region_qc(contrib, residual_sq, np.bincount(hits["region"], minlength=n))
    table = _thresholds_table(motifs, filters.trims, filters.scales, motif_thresholds, strengths, min_coefficient)
    return hits, qc, table


def _check_arrays(contrib: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    contrib = np.ascontiguousarray(contrib, dtype=np.float32)
    onehot = np.ascontiguousarray(onehot, dtype=np.float32)
    if contrib.ndim != 3 or contrib.shape[1] != 4:
        raise MotifError(f"contributions must be (N, 4, L), got shape {contrib.shape}")
    if onehot.shape != contrib.shape:
        raise MotifError(f"one-hot shape {onehot.shape} differs from contributions shape {contrib.shape}")
    if not np.isfinite(contrib).all():
        raise MotifError("contributions contain NaN or infinite values")
    return contrib, onehot


def _empty_hits() -> pd.DataFrame:
    columns = {"region": int, "motif": int, "strand": str, "offset": int, "width": int, "offset_untrimmed": int,
               "width_untrimmed": int, "coefficient": float, "similarity": float, "importance": float,
               "importance_sq": float, "contribution": float}
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def motif_span(cwm: np.ndarray, trim: tuple[int, int]) -> tuple[int, int]:
    """Columns ``[start, end)`` of a ``(4, W)`` CWM that a hit spans: the motif as discovered (columns of at
    least ``MATCH_TRIM_FRACTION`` of the largest, as matched to known motifs), widened to hold the core
    ``trim``."""
    start, end = trim_bounds(cwm, MATCH_TRIM_FRACTION)
    return min(start, trim[0]), max(end, trim[1])


def _hit_table(found: list, filters: _Filters, motifs: list[CwmMotif], contrib: np.ndarray) -> pd.DataFrame:
    """Hits of a batch (``found`` from :func:`_pursue`) with their statistics over the motif's span."""
    if not found:
        return _empty_hits()
    region, oriented, offset, coefficient, similarity = (np.array(column) for column in zip(*found))
    motif = filters.motif_index[oriented]
    reverse = filters.reverse[oriented]
    full_width = np.array([motifs[m].cwm.shape[1] for m in motif])
    trim_start = np.array([filters.trims[m][0] for m in motif])
    trim_end = np.array([filters.trims[m][1] for m in motif])
    # The reverse complement of the core starts (W - trim_end) into the reverse complement of the full CWM.
    offset_untrimmed = offset - np.where(reverse, full_width - trim_end, trim_start)
    span_stop = np.minimum(offset + filters.spans[oriented, 1], contrib.shape[-1])
    span_offset = np.maximum(offset + filters.spans[oriented, 0], 0)
    width = span_stop - span_offset
    span = np.arange(width.max())
    inside = span[None, :] < width[:, None]  # (H, Wmax)
    windows = contrib[region[:, None], :, np.where(inside, span_offset[:, None] + span[None, :], 0)]  # (H, Wmax, 4)
    windows = windows.astype(np.float64) * inside[:, :, None]
    table = pd.DataFrame({
        "region": region.astype(np.int64), "motif": motif.astype(np.int64),
        "strand": np.where(reverse, "-", "+"), "offset": span_offset.astype(np.int64), "width": width.astype(np.int64),
        "offset_untrimmed": offset_untrimmed.astype(np.int64), "width_untrimmed": full_width.astype(np.int64),
        "coefficient": coefficient, "similarity": similarity, "importance": np.abs(windows).sum(axis=(1, 2)),
        "importance_sq": (windows**2).sum(axis=(1, 2)), "contribution": windows.sum(axis=(1, 2)),
    })
    return table.sort_values(["region", "offset", "motif"], kind="stable").reset_index(drop=True)


def _region_qc(contrib: np.ndarray, residual_sq: np.ndarray, n_hits: np.ndarray) -> pd.DataFrame:
    """Per-region QC; ``residual_sq`` is the squared contribution left unexplained in each region."""
    total_sq = (contrib.astype(np.float64) ** 2).sum(axis=(1, 2))
    explained = np.divide(total_sq - residual_sq, total_sq, out=np.zeros_like(total_sq), where=total_sq > 0)
    return pd.DataFrame({
        "n_hits": n_hits.astype(np.int64), "contribution": contrib.sum(axis=(1, 2), dtype=np.float64),
        "global_scale": np.sqrt(total_sq / contrib.shape[-1]), "explained_fraction": explained,
    })


def _thresholds_table(motifs, trims, scales, thresholds, strengths, min_coefficient: float) -> pd.DataFrame:
    return pd.DataFrame({
        "motif_name": [m.name for m in motifs], "sign": ["pos" if m.sign > 0 else "neg" for m in motifs],
        "width": [m.cwm.shape[1] for m in motifs], "trim_start": [t[0] for t in trims],
        "trim_end": [t[1] for t in trims], "cwm_scale": list(scales), "importance_threshold": list(thresholds),
        "strength": list(strengths), "min_coefficient": [min_coefficient] * len(motifs),
    })


def call_hits_in_store(
    contrib_path: str | os.PathLike,
    motifs: list[CwmMotif],
    tasks: list[str] | None = None,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    fdr: float = DEFAULT_FDR,
    trim_threshold: float = DEFAULT_TRIM_THRESHOLD,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    seed: int = 0,
    task_rows: Mapping[str, np.ndarray] | None = None,
    energy_floor: float = DEFAULT_ENERGY_FLOOR,
    min_strength: float = DEFAULT_MIN_STRENGTH,
    min_task_share: float = DEFAULT_MIN_TASK_SHARE,
) -> HitCalls:
    """Call hits in every task of a ``contrib.h5`` and place them in genome coordinates.

    Each motif is scanned in the contributions of its own task (the one it was discovered in) or,
    for motifs without a task (MEME/JASPAR motifs), in every task. Parameters are those of
    :func:`call_hits`; ``min_task_share`` drops the hits whose :func:`task_share` is lower (0 keeps
    all); ``tasks`` restricts the tasks scanned, and ``task_rows`` (task → sorted rows of
    the regions table, e.g. from :func:`genomatt.task_regions.task_region_rows`) the regions
    scanned for each task (hits, thresholds and QC then cover those regions only).

    Returns
    -------
    HitCalls
        Hits with Fi-NeMo's columns then ``task`` and ``hit_contribution``; per-region QC.
    """
    contributions = read_contributions(contrib_path)
    contrib_path, all_tasks, regions = contributions.path, contributions.tasks, contributions.regions
    contributions.check_tasks(tasks)
    unmatched = [m.name for m in motifs if m.task is not None and m.task not in all_tasks]
    if unmatched:
        raise MotifError(f"motifs {unmatched} belong to tasks absent from {contrib_path} (it has {all_tasks})")
    settings = {"min_similarity": min_similarity, "fdr": fdr, "trim_threshold": trim_threshold, "seed": seed,
                "energy_floor": energy_floor, "min_strength": min_strength, "min_task_share": min_task_share}
    if not 0 <= min_task_share <= 1:
        raise MotifError(f"min_task_share must be in [0, 1], got {min_task_share}")
    scores = {name: contributions.read_scores(name) for name in PER_REGION_SCORES}
    hit_tables, qc_tables, motif_tables = [], [], []
    for task_index, task in enumerate(all_tasks):
        if tasks and task not in tasks:
            continue
        task_motifs = _motifs_for_task(motifs, task)
        contrib, onehot = contributions.read_contrib(task_index), contributions.read_onehot()
        rows = np.arange(len(regions)) if task_rows is None else np.asarray(task_rows[task], dtype=np.int64)
        if task_rows is not None:
            contrib, onehot = contrib[rows], onehot[rows]
        scanned = regions.iloc[rows].reset_index(drop=True)
        hits, qc, thresholds = call_hits(contrib, onehot, task_motifs, min_similarity, fdr, trim_threshold,
                                         batch_size, device, seed, energy_floor, min_strength)
        log.info("task %s: %d hits of %d motifs in %d regions", task, len(hits), len(task_motifs), len(scanned))
        # peak_id is the row of the regions table of the contribution file.
        hit_tables.append(_genome_hits(hits, scanned, task_motifs, qc, task, thresholds["cwm_scale"].to_numpy(),
                                       energy_floor, min_similarity).assign(
            peak_id=lambda table: rows[table["peak_id"].to_numpy(np.int64)]))
        qc = pd.concat([scanned[["chrom", "start", "end", "name"]], qc], axis=1)
        qc["peak_id"] = rows
        qc["task"] = task
        for name, values in scores.items():
            qc[name] = np.full(len(rows), np.nan) if values is None else values[rows, task_index]
        qc_tables.append(qc[QC_COLUMNS])
        thresholds.insert(1, "task", task)
        motif_tables.append(thresholds)
    hits = (pd.concat(hit_tables, ignore_index=True) if hit_tables
            else _genome_hits(_empty_hits(), regions, [], None, "", np.array([]), energy_floor, min_similarity))
    qc = pd.concat(qc_tables, ignore_index=True) if qc_tables else pd.DataFrame(columns=QC_COLUMNS)
    if min_task_share > 0 and len(hits):
        share = task_share(contributions, hits, pd.concat(motif_tables, ignore_index=True))
        kept = share >= min_task_share
        log.info("%d of %d hits dropped: their site contributes more, for its task's scale, to another task "
                 "(task share under %g)", int((~kept).sum()), len(hits), min_task_share)
        hits = hits[kept].reset_index(drop=True)
        counts = hits.groupby(["peak_id", "task"]).size()
        qc["n_hits"] = [int(counts.get((row, task), 0)) for row, task in zip(qc["peak_id"], qc["task"])]
    chrom_order = {chrom: index for index, chrom in enumerate(pd.unique(regions["chrom"]))}
    hits = hits.sort_values(["chr", "start", "motif_name", "strand"], key=lambda c: c.map(chrom_order)
                            if c.name == "chr" else c, kind="stable").reset_index(drop=True)
    motif_table = (pd.concat(motif_tables, ignore_index=True) if motif_tables
                   else _thresholds_table([], [], [], [], [], 0.0))
    return HitCalls(hits, qc, motif_table, {motif.name: motif.cwm for motif in motifs}, settings)


def task_share(contributions: Contributions, hits: pd.DataFrame, motifs: pd.DataFrame) -> np.ndarray:
    """How much each hit's site drives its own task, relative to the task it drives most, in (0, 1].

    The contribution of the hit's span is summed in every task and divided by that task's scale, the median
    absolute ``hit_contribution`` of the hits of the task's strongest motif (largest ``strength``; tasks
    without such hits are left out: they have no scale);
    the share is the own task's value over the largest. A site of another factor that a task responds to
    only a little (as multi-task models do to sites that drive their other tasks) has a small share.

    Parameters
    ----------
    contributions
        The ``contrib.h5`` the hits were called in (:func:`genomatt.contributions.read_contributions`).
    hits
        Hits with ``start``, ``end``, ``peak_id``, ``task`` and ``hit_contribution``.
    motifs
        The motifs table of the run (``motif_name``, ``task``, ``strength``).

    Returns
    -------
    numpy.ndarray
        ``(H,)`` share of each hit (1 where only its own task has a scale).
    """
    regions, tasks = contributions.regions, contributions.tasks
    strongest_motif = motifs.sort_values("strength", kind="stable").groupby("task")["motif_name"].last()
    own_motif = hits["motif_name"].to_numpy() == strongest_motif.reindex(hits["task"]).to_numpy()
    scale = hits[own_motif].assign(size=hits["hit_contribution"].abs()).groupby("task")["size"].median()
    rows, row_of_hit = np.unique(hits["peak_id"].to_numpy(np.int64), return_inverse=True)
    offset = hits["start"].to_numpy(np.int64) - regions["start"].to_numpy(np.int64)[hits["peak_id"].to_numpy(np.int64)]
    width = (hits["end"] - hits["start"]).to_numpy(np.int64)
    driven = np.full((len(hits), len(tasks)), np.nan)
    for index, task in enumerate(tasks):
        if not scale.get(task, 0) > 0:
            continue
        per_base = contributions.read_contrib(index, rows).sum(axis=1, dtype=np.float64)  # (R, L)
        cumulative = np.pad(per_base.cumsum(axis=1), ((0, 0), (1, 0)))
        span = cumulative[row_of_hit, offset + width] - cumulative[row_of_hit, offset]
        driven[:, index] = np.abs(span) / scale[task]
    own = driven[np.arange(len(hits)), [tasks.index(task) for task in hits["task"]]]
    strongest = np.nanmax(driven, axis=1)
    return np.divide(own, strongest, out=np.ones(len(hits)), where=strongest > 0)


def _genome_hits(hits: pd.DataFrame, regions: pd.DataFrame, motifs: list[CwmMotif], qc: pd.DataFrame | None,
                 task: str, core_norms: np.ndarray, energy_floor: float, min_similarity: float) -> pd.DataFrame:
    region = hits["region"].to_numpy(np.int64)
    region_start = regions["start"].to_numpy(np.int64)[region]
    scale = qc["global_scale"].to_numpy()[region] if qc is not None else np.ones(len(hits))
    start = region_start + hits["offset"].to_numpy(np.int64)
    start_untrimmed = region_start + hits["offset_untrimmed"].to_numpy(np.int64)
    names = np.array([motif.name for motif in motifs], dtype=object)
    motif_index = hits["motif"].to_numpy(np.int64)
    full_norms = np.array([np.sqrt((motif.cwm**2).sum()) for motif in motifs])
    norm_ratio = full_norms[motif_index] / np.asarray(core_norms, dtype=float)[motif_index]
    coefficient_global = finemo_coefficient(hits["coefficient"].to_numpy(), norm_ratio,
                                            hits["importance_sq"].to_numpy(), scale, hits["similarity"].to_numpy(),
                                            energy_floor, min_similarity)
    table = pd.DataFrame({
        "chr": regions["chrom"].to_numpy()[region],
        "start": start, "end": start + hits["width"].to_numpy(np.int64),
        "start_untrimmed": start_untrimmed,
        "end_untrimmed": start_untrimmed + hits["width_untrimmed"].to_numpy(np.int64),
        "motif_name": names[motif_index] if len(hits) else np.array([], dtype=object),
        "hit_coefficient": np.divide(coefficient_global, scale**2, out=np.zeros(len(hits)), where=scale > 0),
        "hit_coefficient_global": coefficient_global,
        "hit_similarity": hits["similarity"].to_numpy(), "hit_correlation": hits["similarity"].to_numpy(),
        "hit_importance": hits["importance"].to_numpy(), "hit_importance_sq": hits["importance_sq"].to_numpy(),
        "strand": hits["strand"].to_numpy(),
        "peak_name": regions["name"].to_numpy()[region],
        "peak_id": region,
        "task": task, "hit_amplitude": hits["coefficient"].to_numpy(),
        "hit_contribution": hits["contribution"].to_numpy(),
    })
    return table[HIT_COLUMNS]


def finemo_coefficient(amplitude: np.ndarray, norm_ratio: np.ndarray, window_energy: np.ndarray,
                       global_scale: np.ndarray, similarity: np.ndarray, energy_floor: float,
                       penalty: float) -> np.ndarray:
    """Hit coefficients on Fi-NeMo's scale (its ``hit_coefficient_global``) from least-squares amplitudes.

    Fi-NeMo fits ``contrib / g ≈ Σ c · s · cwm`` by lasso (penalty λ on ``c``), with the CWM scaled to
    unit norm over its full width then trimmed, ``g`` the region's RMS contribution per position and
    ``s = (E / g² + eps) ** -0.5`` (at most 10) from the window's energy ``E``, and reports ``c · g²``.
    For a hit that no other hit overlaps, the lasso's ``c`` is the least-squares one shrunk by
    ``(similarity − λ · r) / similarity``, with ``r`` the full CWM's norm over the trimmed one's (Fi-NeMo's
    trimmed CWM has norm ``1 / r``); with ``a`` the amplitude of the unit-norm trimmed CWM in contribution
    units, ``c · g²`` is ``a · r · sqrt(E + eps · g²) · (similarity − λ · r) / similarity``.

    Parameters
    ----------
    amplitude
        ``(H,)`` least-squares coefficients of the unit-norm trimmed CWM (contribution units).
    norm_ratio
        ``(H,)`` L2 norm of the motif's full CWM over that of its trimmed CWM (>= 1).
    window_energy
        ``(H,)`` sum of squared contributions over each hit's window.
    global_scale
        ``(H,)`` RMS contribution per position of each hit's region.
    similarity
        ``(H,)`` each hit's similarity (``hit_similarity``).
    energy_floor
        Fi-NeMo's ``eps``.
    penalty
        Fi-NeMo's λ: the similarity threshold (``min_similarity``).

    Returns
    -------
    numpy.ndarray
        ``(H,)`` float64, in squared contribution units, >= 0; divide by ``global_scale**2`` for
        Fi-NeMo's ``hit_coefficient``.
    """
    scale_sq = np.asarray(global_scale, dtype=float) ** 2
    energy = np.maximum(np.asarray(window_energy, dtype=float) + energy_floor * scale_sq, 0.01 * scale_sq)
    similarity = np.asarray(similarity, dtype=float)
    shrinkage = np.divide(np.maximum(similarity - penalty * norm_ratio, 0.0), similarity,
                          out=np.zeros_like(similarity), where=similarity > 0)
    return np.asarray(amplitude, dtype=float) * norm_ratio * np.sqrt(energy) * shrinkage


def write_hits(calls: HitCalls, out_dir: str | os.PathLike, provenance: dict | None = None) -> dict[str, Path]:
    """Write the hit tables, tracks and Fi-NeMo's companion files into ``out_dir``, each atomically.

    ``hits.tsv`` holds exactly Fi-NeMo's columns; ``hits_genomatt.tsv`` ours, row for row. With
    ``motif_data.tsv``, ``motif_cwms.npy`` and ``parameters.json`` the folder reads as a Fi-NeMo
    ``call-hits`` output (``finemo report``, ``collapse-hits``).

    Returns
    -------
    dict
        ``{"tsv", "extra", "bed", "h5", "qc", "motif_data", "motif_cwms", "parameters"}`` → written path.
    """
    out = Path(out_dir)
    paths = {"tsv": out / "hits.tsv", "extra": out / "hits_genomatt.tsv", "bed": out / "hits.bed",
             "h5": out / "hits.h5", "qc": out / "regions_qc.tsv"}
    for key, columns in (("tsv", FINEMO_COLUMNS), ("extra", EXTRA_FILE_COLUMNS)):
        with atomic_path(paths[key]) as tmp:
            calls.hits[columns].to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    write_hits_bed(calls.hits, paths["bed"])
    with atomic_path(paths["qc"]) as tmp:
        calls.qc.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    _write_hits_h5(calls, paths["h5"], provenance or {})
    paths.update(write_finemo_motifs(calls, out))
    return paths


def _write_hits_h5(calls: HitCalls, path: Path, provenance: dict) -> None:
    with atomic_hdf5(path) as handle:
        handle.attrs["genomatt_version"] = __version__
        handle.attrs["created_utc"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        handle.attrs["kind"] = "hits"
        handle.attrs["provenance"] = json.dumps({**provenance, "settings": calls.settings}, sort_keys=True,
                                                default=str)
        for name, table in (("hits", calls.hits), ("qc", calls.qc), ("motifs", calls.motifs)):
            write_table(handle.create_group(name), table)
        cwms = handle.create_group("cwms")
        cwms.attrs["names"] = json.dumps(list(calls.cwms))
        for name, cwm in calls.cwms.items():
            cwms.create_dataset(name, data=np.asarray(cwm, dtype=np.float32))


def read_hits(path: str | os.PathLike) -> HitCalls:
    """Read a ``hits.h5`` written by :func:`write_hits`."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: hits file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise StoreError(f"{path}: not a readable HDF5 file ({error})") from None
    with handle:
        if handle.attrs.get("kind") != "hits" or any(name not in handle for name in ("hits", "qc", "motifs", "cwms")):
            raise StoreError(f"{path}: not a genomatt hits.h5 (expected kind 'hits' with /hits, /qc, /motifs, /cwms)")
        tables = {name: read_table(handle[name]) for name in ("hits", "qc", "motifs")}
        cwms = {name: handle["cwms"][name][()] for name in json.loads(handle["cwms"].attrs["names"])}
        settings = json.loads(handle.attrs["provenance"]).get("settings", {})
    return HitCalls(tables["hits"], tables["qc"], tables["motifs"], cwms, settings)
