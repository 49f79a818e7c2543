"""Hit calling, the algorithm: where each motif is used in one task's contributions (arrays in, hits out).

:func:`call_hits` takes the contributions and one-hot sequences of the regions as arrays and returns tables;
it reads and writes no file (:mod:`genomatt.motifs.hits` runs it over a ``contrib.h5``, task by task, and
writes the outputs). Its parameters are a :class:`~genomatt.motifs.hit_parameters.HitParameters`.

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
4. The sequence under a window must match the motif: its log-odds score under the motif's PWM over the
   scanned core (against a uniform background) must reach the ``min_sequence_quantile`` quantile of the
   scores of sequences drawn from that PWM (:func:`sequence_score_threshold`), so weak motif-shaped
   contributions on sequence that barely resembles the motif (a model's response to partial matches) are
   not hits, while the genuine sites the motif describes are, whatever its width. Motifs without a PWM
   skip this check.
5. A hit's least-squares coefficient must also be at least ``min_strength`` times the *reference
   strength* of the task: the largest, over the motifs scanned, of the 90th percentile over regions of
   the motif's best coefficient in each region, i.e. how strongly the task's strongest motif is used
   at its typical sites. A motif of no task (from a MEME or JASPAR file) is scanned in every task, tasks its
   factor does not drive included: its reference is the task's own, measured on the contributions whatever the
   motifs (:func:`contribution_strength`: the 90th percentile over regions of the largest L2 norm of a
   window of the motif's core width), so a factor's weak echo in a task it does not drive is no hit there.
   Site contributions and background per position do not depend on how wide the regions are, so neither
   does this threshold nor the energy floor.
6. In each region, the passing window whose least-squares fit explains the most squared contribution
   becomes a hit; its fit is subtracted from the contributions, the windows of the same motif that
   overlap it (either strand) are closed, and the scan repeats on what is left until no window passes.
   So each site gives one hit of a motif (palindromes and shifted copies included) and its contribution
   is counted once, while a different motif overlapping it is still found. Where the other strand has a
   passing window overlapping the best one's core with a gain within :data:`ORIENTATION_TOLERANCE` of it,
   the contributions cannot orient the site, and the window whose sequence over the motif's span scores
   highest under its PWM is the hit (motifs without a PWM keep the best window).
7. A hit is scanned with the motif's core (trimmed at ``trim_threshold``) but spans the motif as
   discovered: ``start``/``end`` are the columns of at least a tenth of the largest (the span matched to
   known motifs and written in ``motifs.meme``), so a long motif's hit lies on its whole site.

Across tasks, :func:`genomatt.motifs.hits.call_hits_in_store` keeps a hit only where its site drives its own
task at least ``min_task_share`` as much as the task it drives most.

Everything runs batched in PyTorch, on a GPU when one is available.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from genomatt.device import full_float32, resolve_device
from genomatt.errors import MotifError
from genomatt.motifs.formats import CwmMotif, reverse_complement_matrix
from genomatt.motifs.hit_parameters import DEFAULT_BATCH_SIZE, HitParameters
from genomatt.motifs.trimming import MATCH_TRIM_FRACTION, trim_bounds

log = logging.getLogger(__name__)

# Pseudocount added to each probability of a PWM before its log-odds, so an unseen base scores about -4.7 bits.
PWM_PSEUDOCOUNT = 0.01
# Resolution of the exact distribution of PWM scores (bits): the quantile thresholds are exact to this step.
SCORE_STEP = 0.01

# The reference strength of a motif is this quantile over regions of its best coefficient per region: a
# motif used in more than a tenth of the regions scanned reaches it at its sites, not in the background.
REFERENCE_QUANTILE = 0.9

# Where the best window's motif also passes on the other strand, with a core overlapping the best core and a
# gain at least (1 - ORIENTATION_TOLERANCE) times the best, the contributions do not tell the orientation
# apart and the sequence over the motif's span decides it. At a (nearly) palindromic core both strands fit
# the same contributions up to the CWM's own asymmetry and a shift of a base (CTCF: gains 1.38 and 1.56,
# 12% apart); at a core that is no palindrome the other strand's fit shares few bases with the site and
# explains a small fraction of it, well under three quarters.
ORIENTATION_TOLERANCE = 0.25


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
    rng
        The random generator of the permutations.

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
    log_odds: torch.Tensor  # (K, 4, Wmax) PWM log-odds of each oriented core (zero for motifs without a PWM)
    sequence_thresholds: torch.Tensor  # (K,) least log-odds score of a window's sequence (-inf: no check)
    span_log_odds: torch.Tensor  # (K, 4, Smax) PWM log-odds of each oriented span (zero for motifs without a PWM)
    has_pwm: torch.Tensor  # (K,) bool: whether the filter's motif has a PWM to orient ambiguous hits with


def pwm_log_odds(pwm: np.ndarray) -> np.ndarray:
    """``(4, W)`` log2-odds of a PWM's probabilities against a uniform background, with :data:`PWM_PSEUDOCOUNT`."""
    probabilities = np.asarray(pwm, dtype=np.float64) + PWM_PSEUDOCOUNT
    probabilities /= probabilities.sum(axis=0, keepdims=True)
    return np.log2(probabilities / 0.25)


def sequence_score_threshold(pwm: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of the log-odds scores (:func:`pwm_log_odds`) of sequences drawn from ``pwm`` itself.

    The distribution is computed exactly (columns independent, scores on a grid of :data:`SCORE_STEP`
    bits; the threshold is lowered by the most that rounding ``W`` columns to the grid can add up to), so
    it admits at least the fraction ``1 - quantile`` of the sequences the motif describes whatever its
    width or information content.

    Parameters
    ----------
    pwm
        ``(4, W)`` position probability matrix (columns summing to 1).
    quantile
        In [0, 1); 0 gives ``-inf`` (every sequence passes).
    """
    if quantile <= 0:
        return -np.inf
    probabilities = np.asarray(pwm, dtype=np.float64)
    probabilities = probabilities / probabilities.sum(axis=0, keepdims=True)
    steps = np.round(pwm_log_odds(pwm) / SCORE_STEP).astype(np.int64)
    lowest = int(steps.min(axis=0).sum())
    distribution = np.ones(1)
    for column in range(steps.shape[1]):
        shifts = steps[:, column] - steps[:, column].min()
        grown = np.zeros(len(distribution) + int(shifts.max()))
        for base in range(4):
            grown[shifts[base] : shifts[base] + len(distribution)] += probabilities[base, column] * distribution
        distribution = grown
    below = np.searchsorted(np.cumsum(distribution), quantile * distribution.sum())
    # Each column's score was rounded to the grid by at most half a step: lower the threshold by the most that
    # can add up to, so no sequence at the quantile fails by rounding.
    return float((lowest + below) * SCORE_STEP - steps.shape[1] * SCORE_STEP / 2)


def admits_one_sequence(pwm: np.ndarray, threshold: float) -> bool:
    """Whether only the best-scoring sequence of ``pwm`` (``(4, W)``) reaches the log-odds ``threshold``: a
    matrix of columns of probability 0 and 1 (a consensus), whose own sequences are all that one."""
    log_odds = np.sort(pwm_log_odds(pwm), axis=0)
    best = log_odds[-1].sum()
    return bool(threshold > best - (log_odds[-1] - log_odds[-2]).min())


def _build_filters(motifs: list[CwmMotif], trim_threshold: float, device: torch.device,
                   sequence_quantile: float = 0.0) -> _Filters:
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
    log_odds = np.zeros_like(weights)
    sequence_thresholds = np.full(len(oriented), -np.inf, dtype=np.float32)
    for index, (motif, (start, end)) in enumerate(zip(motifs, trims)):
        if motif.pwm is None or sequence_quantile <= 0:
            continue
        core = motif.pwm[:, start:end]
        core_log_odds = pwm_log_odds(core)
        log_odds[2 * index, :, : end - start] = core_log_odds
        log_odds[2 * index + 1, :, : end - start] = reverse_complement_matrix(core_log_odds)
        sequence_thresholds[2 * index : 2 * index + 2] = sequence_score_threshold(core, sequence_quantile)
    span_widths = [end - start for start, end in spans]
    span_log_odds = np.zeros((len(oriented), 4, max(span_widths)), dtype=np.float32)
    has_pwm = np.repeat([motif.pwm is not None for motif in motifs], 2)
    for index, motif in enumerate(motifs):
        if motif.pwm is None:
            continue
        span_start, span_end = motif_span(motif.cwm, trims[index])
        forward = pwm_log_odds(motif.pwm[:, span_start:span_end])
        span_log_odds[2 * index, :, : span_end - span_start] = forward
        span_log_odds[2 * index + 1, :, : span_end - span_start] = reverse_complement_matrix(forward)
    return _Filters(
        weights=torch.from_numpy(weights).to(device), widths=widths,
        width_index=torch.from_numpy(width_index).to(device), unique_widths=unique_widths,
        window_mask=torch.from_numpy(window_mask).to(device), motif_index=np.repeat(np.arange(len(motifs)), 2),
        reverse=np.tile([False, True], len(motifs)), sign=torch.from_numpy(signs).to(device),
        trims=trims, scales=scales, spans=np.array(spans, dtype=np.int64),
        log_odds=torch.from_numpy(log_odds).to(device),
        sequence_thresholds=torch.from_numpy(sequence_thresholds).to(device),
        span_log_odds=torch.from_numpy(span_log_odds).to(device), has_pwm=torch.from_numpy(has_pwm).to(device),
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
        ``energy_floor`` of :class:`HitParameters`).

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


def _sequence_supported(onehot: torch.Tensor, filters: _Filters) -> torch.Tensor:
    """``(B, K, L)`` whether each window's sequence reaches its filter's PWM score threshold."""
    scores = F.conv1d(F.pad(onehot, (0, filters.weights.shape[-1] - 1)), filters.log_odds)
    return scores >= filters.sequence_thresholds[None, :, None]


def _span_scores(onehot: torch.Tensor, filters: _Filters) -> torch.Tensor:
    """``(B, K, L)`` PWM log-odds score of the sequence over the motif's span of each filter's window.

    Indexed by the window's (core's) start, as :func:`_scan`; the span starts ``filters.spans[k, 0]`` (at
    most 0) from it. Span columns past either end of the region add nothing.
    """
    length = onehot.shape[-1]
    left = -int(filters.spans[:, 0].min())
    # Output column t scores the span starting at t - left.
    scores = F.conv1d(F.pad(onehot, (left, filters.span_log_odds.shape[-1])), filters.span_log_odds)
    starts = torch.as_tensor(filters.spans[:, 0] + left, device=onehot.device)[:, None] + torch.arange(
        length, device=onehot.device)[None, :]  # (K, L)
    return scores.gather(2, starts[None].expand(onehot.shape[0], -1, -1))


def _orient(
    gain: torch.Tensor, span_score: torch.Tensor, chosen_filter: torch.Tensor, position: torch.Tensor,
    filters: _Filters,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The window of each hit, switched to the other strand where the contributions cannot orient it.

    Where the chosen window's motif has a PWM and a passing window on the other strand whose core overlaps
    the chosen core and whose gain is at least ``1 - ORIENTATION_TOLERANCE`` of the chosen gain, the
    window (of these and the chosen one) whose sequence over the motif's span scores highest under the
    PWM becomes the hit.

    Parameters
    ----------
    gain
        ``(H, K, L)`` gain of each window in each hit's region (negative where the window does not pass).
    span_score
        ``(H, K, L)`` :func:`_span_scores` of each hit's region.
    chosen_filter, position
        ``(H,)`` each hit's filter and window start; the chosen window has the largest gain of its region.

    Returns
    -------
    chosen_filter, position
        ``(H,)`` the hits' windows after orientation.
    """
    hits = torch.arange(len(chosen_filter), device=gain.device)
    other = chosen_filter ^ 1  # the motif's filter on the other strand
    chosen_gain = gain[hits, chosen_filter, position]
    starts = torch.arange(gain.shape[-1], device=gain.device)
    widths = torch.as_tensor(filters.widths, device=gain.device)[other]
    # Both strands of a motif have the core's width: cores at p and s overlap when |s - p| < width.
    overlapping = (starts[None, :] - position[:, None]).abs() < widths[:, None]
    close = overlapping & (gain[hits, other] >= (1 - ORIENTATION_TOLERANCE) * chosen_gain[:, None])
    alternative_score, alternative_position = torch.where(close, span_score[hits, other], -torch.inf).max(dim=1)
    switch = filters.has_pwm[other] & (alternative_score > span_score[hits, chosen_filter, position])
    return torch.where(switch, other, chosen_filter), torch.where(switch, alternative_position, position)


def _projected_energy(onehot: torch.Tensor, filters: _Filters) -> torch.Tensor:
    """``(B, K, L)`` squared norm of each filter projected on each window's sequence (``cwm * onehot``)."""
    return F.conv1d(F.pad(onehot, (0, filters.weights.shape[-1] - 1)), filters.weights**2).clamp_min(1e-20)


def _candidates(
    contrib: torch.Tensor, projected_energy: torch.Tensor, supported: torch.Tensor, filters: _Filters,
    min_similarity: float, floor: torch.Tensor,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per motif, the importance of each candidate hit in a batch, and each region's best coefficient.

    A candidate is a window passing the similarity threshold, on a sequence that matches the motif
    (``supported``, :func:`_sequence_supported`), whose fit explains more contribution than any other
    window of the motif (either strand) that it overlaps. Counting candidates rather than windows keeps
    the shifted copies of one site from counting as many discoveries. ``projected_energy`` and
    ``supported`` depend on the sequence alone, so the data and its permutation share them.

    Returns
    -------
    importance
        Per motif, the importance of its candidates.
    best_coefficient
        ``(B, M)`` largest least-squares coefficient of each motif over the windows of each region that
        pass the similarity threshold (0 where none does).
    """
    covariance, similarity, importance = _scan(contrib, filters, floor)
    similar = (similarity >= min_similarity) & supported
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
    min_similarity: float, floor: torch.Tensor, min_coefficient: torch.Tensor,
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
        ``(K,)`` least coefficient of a hit of each oriented filter.

    Returns
    -------
    hits
        ``(row, filter, position, coefficient, similarity)`` tuples; ``position`` is the window start.
    residual
        ``(B, 4, L)`` contributions left unexplained by the hits.
    """
    length = contrib.shape[-1]
    cwm_energy = _projected_energy(onehot, filters)
    supported = _sequence_supported(onehot, filters)
    span_score = _span_scores(onehot, filters)
    residual = contrib.clone()
    closed = torch.zeros((contrib.shape[0], len(filters.widths), length), dtype=torch.bool, device=contrib.device)
    active = torch.arange(contrib.shape[0], device=contrib.device)
    hits = []
    while active.numel():
        covariance, similarity, importance = _scan(residual[active], filters, floor)
        projected_energy = cwm_energy[active]
        coefficients = covariance / projected_energy
        passing = ((similarity >= min_similarity) & (importance >= thresholds[None, :, None])
                   & (coefficients >= min_coefficient[None, :, None]) & supported[active] & ~closed[active])
        # The window whose least-squares fit removes the most squared contribution wins.
        gain = torch.where(passing, covariance**2 / projected_energy, -1.0)
        best_gain, best = gain.flatten(1).max(dim=1)
        found = best_gain > 0
        if not found.any():
            break
        rows, best = torch.nonzero(found).squeeze(1), best[found]
        chosen_filter, chosen_position = _orient(gain[rows], span_score[active[rows]], best // length,
                                                 best % length, filters)
        coefficient = coefficients[rows, chosen_filter, chosen_position]
        region = active[rows]
        _subtract_fits(residual, onehot, region, chosen_filter, chosen_position, coefficient, filters)
        _close_overlapping(closed, region, chosen_filter, chosen_position, filters)
        hits += list(zip(region.tolist(), chosen_filter.tolist(), chosen_position.tolist(), coefficient.tolist(),
                         similarity[rows, chosen_filter, chosen_position].tolist()))
        active = region
    return hits, residual


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
    batch_size: int, device: torch.device, seed: int, floor: np.ndarray, advance: Callable[[int], None],
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
        projected_energy = _projected_energy(batch_onehot, filters)
        supported = _sequence_supported(batch_onehot, filters)
        permuted = permute_contributions(contrib[batch], onehot[batch], rng)
        for collected, values in ((observed, contrib[batch]), (null, permuted)):
            found, best = _candidates(torch.from_numpy(values).to(device), projected_energy, supported, filters,
                                      min_similarity, floor_tensor)
            for motif_values, batch_values in zip(collected, found):
                motif_values.append(batch_values)
            if collected is observed:
                best_coefficients.append(best)
        advance(len(permuted))
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


def contribution_strength(contrib: np.ndarray, widths: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """How strongly a task's contributions are used at its typical strongest sites, for windows of each width.

    Parameters
    ----------
    contrib
        ``(N, 4, L)`` projected contributions of the task's regions.
    widths
        ``(J,)`` window widths (bp; a width over ``L`` is taken as ``L``).
    batch_size
        Regions summed at a time (memory).

    Returns
    -------
    numpy.ndarray
        ``(J,)`` the :data:`REFERENCE_QUANTILE` quantile over regions of the largest L2 norm of a window of
        each width: no more than the coefficient of a motif of that width fitting the window (a coefficient
        divides the norm by that of the motif's weights on the window's bases; 0 without regions).
    """
    # A JASPAR file has thousands of motifs but a few dozen widths.
    unique, inverse = np.unique(np.asarray(widths, dtype=np.int64), return_inverse=True)
    if not len(contrib):
        return np.zeros(len(inverse))
    largest = [_largest_window_sums((contrib[first : first + batch_size].astype(np.float64) ** 2).sum(axis=1), unique)
               for first in range(0, len(contrib), batch_size)]
    return np.sqrt(np.quantile(np.concatenate(largest), REFERENCE_QUANTILE, axis=0))[inverse]


def contribution_scale(contrib: np.ndarray, width: int, batch_size: int = 1024) -> float:
    """A task's contribution at its typical strongest sites, whatever motifs are scanned in it.

    Parameters
    ----------
    contrib
        ``(N, 4, L)`` projected contributions of the task's regions.
    width
        Window width (bp; over ``L`` taken as ``L``).
    batch_size
        Regions summed at a time (memory).

    Returns
    -------
    float
        The :data:`REFERENCE_QUANTILE` quantile over regions of the largest absolute sum of contributions over
        a window of ``width`` (0 without regions).
    """
    if not len(contrib):
        return 0.0
    largest = []
    for first in range(0, len(contrib), batch_size):
        per_base = contrib[first : first + batch_size].sum(axis=1, dtype=np.float64)
        largest.append(np.maximum(_largest_window_sums(per_base, [width]), _largest_window_sums(-per_base, [width])))
    return float(np.quantile(np.concatenate(largest), REFERENCE_QUANTILE))


def _largest_window_sums(track: np.ndarray, widths: np.ndarray | list[int]) -> np.ndarray:
    """``(N, J)`` largest sum of the ``(N, L)`` track over a window of each width (over ``L``: ``L``)."""
    cumulative = np.pad(track.cumsum(axis=1), ((0, 0), (1, 0)))
    widths = np.minimum(np.asarray(widths, dtype=np.int64), track.shape[1])
    return np.stack([(cumulative[:, w:] - cumulative[:, :-w]).max(axis=1) for w in widths], axis=1)


@full_float32()
def call_hits(
    contrib: np.ndarray,
    onehot: np.ndarray,
    motifs: list[CwmMotif],
    parameters: HitParameters | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    advance: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Call hits of motifs in the contributions of one task, region by region.

    Parameters
    ----------
    contrib
        ``(N, 4, L)`` projected contributions (``onehot * hypothetical``); hypothetical ones (contributions
        on bases the sequences do not have) are projected, with a warning.
    onehot
        ``(N, 4, L)`` one-hot sequences: 0 and 1, at most one base per position (none: an N).
    motifs
        Motifs to find (each scanned on both strands).
    parameters
        The thresholds, trimming and seed (:class:`HitParameters`; its defaults when ``None``).
        ``min_task_share`` is applied across tasks, by :func:`genomatt.motifs.hits.call_hits_in_store`.
    batch_size
        Regions per batch.
    device
        Torch device; the GPU when one is available, else the CPU.
    advance
        Called with the number of regions of each batch scanned; every region is scanned twice (for the
        thresholds, then for the hits), so the calls add up to ``2 N``.

    Returns
    -------
    hits : pandas.DataFrame
        One row per hit: ``region`` (row in the inputs), ``motif`` (index in ``motifs``), ``strand``,
        ``offset`` and ``width`` (the motif's span, see the module docstring, clipped to the region),
        ``offset_untrimmed``, ``width_untrimmed`` (the whole CWM), ``coefficient`` (least-squares
        coefficient of the unit-norm core, in contribution units), ``similarity``, ``importance`` (sum of
        absolute contributions over the span), ``importance_sq`` (sum of squares), ``contribution``
        (signed sum), ``core_importance_sq`` (sum of squares over the core scanned) and ``core_dot`` (its dot
        product with the unit-norm core on the hit's strand).
    qc : pandas.DataFrame
        One row per region: ``n_hits``, ``contribution`` (sum), ``global_scale`` (root mean square
        contribution per position) and ``explained_fraction`` (share of the squared contributions that
        the hits explain).
    thresholds : pandas.DataFrame
        One row per motif (none without regions, ``N = 0``): ``trim_start``, ``trim_end``, ``cwm_scale``,
        ``importance_threshold``, ``strength`` (its reference-strength quantile), ``min_coefficient`` (the
        least coefficient of its hits) and ``min_sequence_score`` (least PWM log-odds score of a hit's
        sequence, bits; ``-inf`` where not checked).
    """
    parameters = parameters or HitParameters()
    contrib, onehot = _check_arrays(contrib, onehot)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MotifError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    n, _, length = contrib.shape
    advance = advance or (lambda done: None)
    device = resolve_device(device)
    if not motifs or not n:
        # Nothing to scan: no motif, or no region (whose candidates would set the thresholds).
        total_sq = (contrib.astype(np.float64) ** 2).sum(axis=(1, 2))
        advance(2 * n)
        return empty_hits(), _region_qc(contrib, total_sq, np.zeros(n, dtype=int)), empty_thresholds()
    filters = _build_filters(motifs, parameters.trim_threshold, device, parameters.min_sequence_quantile)
    too_wide = [m.name for m, (start, end) in zip(motifs, filters.trims) if end - start > length]
    if too_wide:
        raise MotifError(f"motifs {too_wide} are wider (after trimming) than the regions ({length} bp)")
    floor = _window_floor(contrib, parameters.energy_floor, filters)
    motif_thresholds, best_coefficients = _scan_statistics(contrib, onehot, filters, parameters.min_similarity,
                                                           parameters.fdr, batch_size, device, parameters.seed, floor,
                                                           advance)
    strengths, min_coefficient = _least_coefficients(contrib, motifs, filters, best_coefficients,
                                                     parameters.min_strength)
    # A motif no candidate of which keeps the FDR can have no hit: the pursuit leaves it out (most of the motifs
    # of a JASPAR file in any one task), which gives the same hits at a fraction of the cost.
    kept = np.flatnonzero(np.isfinite(motif_thresholds))
    pursued = filters if len(kept) in (0, len(motifs)) else _build_filters(
        [motifs[index] for index in kept], parameters.trim_threshold, device, parameters.min_sequence_quantile)
    oriented = np.repeat(2 * kept, 2) + np.tile([0, 1], len(kept))
    limits = (torch.tensor(np.repeat(np.asarray(motif_thresholds)[kept], 2), dtype=torch.float32, device=device),
              torch.tensor(np.repeat(min_coefficient[kept], 2), dtype=torch.float32, device=device),
              torch.from_numpy(floor[oriented]).to(device))
    tables, residual_sq = [], (contrib.astype(np.float64) ** 2).sum(axis=(1, 2))
    for first in range(0, n, batch_size):
        batch = slice(first, first + batch_size)
        if len(kept):
            table, residual_sq[batch] = _pursue_batch(contrib[batch], onehot[batch], [motifs[i] for i in kept],
                                                      pursued, limits, parameters.min_similarity, device)
            tables.append(table.assign(region=table["region"] + first, motif=kept[table["motif"].to_numpy(np.int64)]))
        advance(len(residual_sq[batch]))
    hits = pd.concat(tables, ignore_index=True) if tables else empty_hits()
    qc = _region_qc(contrib, residual_sq, np.bincount(hits["region"], minlength=n))
    table = _thresholds_table(motifs, filters.trims, filters.scales, motif_thresholds, strengths, min_coefficient,
                              filters.sequence_thresholds[::2].cpu().numpy())
    return hits, qc, table


def _least_coefficients(contrib: np.ndarray, motifs: list[CwmMotif], filters: _Filters, best_coefficients: np.ndarray,
                        min_strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Each motif's strength and the least coefficient of its hits: ``min_strength`` times the task's reference
    (:func:`reference_strength`; for a motif of no task, :func:`contribution_strength` at its core width)."""
    reference, strengths = reference_strength(best_coefficients)
    references = np.full(len(motifs), reference)
    taskless = np.array([motif.task is None for motif in motifs])
    if taskless.any():
        references[taskless] = contribution_strength(contrib, filters.widths[::2][taskless])
    return strengths, min_strength * references


def _pursue_batch(contrib: np.ndarray, onehot: np.ndarray, motifs: list[CwmMotif], filters: _Filters,
                  limits: tuple[torch.Tensor, torch.Tensor, torch.Tensor], min_similarity: float,
                  device: torch.device) -> tuple[pd.DataFrame, np.ndarray]:
    """The hits of ``motifs`` (their ``filters``) in a batch of regions, and each region's squared contribution
    left unexplained; ``limits`` are each oriented filter's importance threshold, least coefficient and energy
    floor."""
    thresholds, least_coefficients, floor = limits
    found, residual = _pursue(torch.from_numpy(contrib).to(device), torch.from_numpy(onehot).to(device), filters,
                              thresholds, min_similarity, floor, least_coefficients)
    return _hit_table(found, filters, motifs, contrib), (residual.double() ** 2).sum(dim=(1, 2)).cpu().numpy()


def _check_arrays(contrib: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    contrib = np.ascontiguousarray(contrib, dtype=np.float32)
    onehot = np.ascontiguousarray(onehot, dtype=np.float32)
    if contrib.ndim != 3 or contrib.shape[1] != 4:
        raise MotifError(f"contributions must be (N, 4, L), got shape {contrib.shape}")
    if onehot.shape != contrib.shape:
        raise MotifError(f"one-hot shape {onehot.shape} differs from contributions shape {contrib.shape}")
    if not np.isfinite(contrib).all():
        raise MotifError("contributions contain NaN or infinite values")
    # A column of zeros is an N; anything but 0 and 1, or two bases at a position, is no one-hot sequence.
    if not (np.isin(onehot, (0.0, 1.0)).all() and onehot.sum(axis=1).max(initial=0) <= 1):
        raise MotifError("the one-hot sequences must hold 0 and 1 only, at most one base per position (a column "
                         "of zeros is an N); got other values or several bases at a position")
    total = np.abs(contrib).sum(dtype=np.float64)
    off_sequence = total - np.abs(contrib * onehot).sum(dtype=np.float64)
    if off_sequence > 1e-3 * total:
        log.warning("%.2g%% of the contributions lie on bases the sequences do not have: hypothetical "
                    "contributions? Hits are called in their projection on the sequences (contributions x one-hot)",
                    100 * off_sequence / total)
        contrib = contrib * onehot
    return contrib, onehot


def empty_hits() -> pd.DataFrame:
    """The hits table of :func:`call_hits` with no rows."""
    columns = {"region": int, "motif": int, "strand": str, "offset": int, "width": int, "offset_untrimmed": int,
               "width_untrimmed": int, "coefficient": float, "similarity": float, "importance": float,
               "importance_sq": float, "contribution": float, "core_importance_sq": float,
               "core_dot": float}
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
        return empty_hits()
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
    # The core scanned lies inside the region: the window of Fi-NeMo's trimmed CWM.
    core_width = trim_end - trim_start
    core = np.arange(core_width.max())
    in_core = core[None, :] < core_width[:, None]
    core_windows = contrib[region[:, None], :, np.where(in_core, offset[:, None] + core[None, :], 0)]
    core_windows = core_windows.astype(np.float64) * in_core[:, :, None]  # (H, Wcore, 4)
    unit_cores = filters.weights[oriented, :, : core.size].double().cpu().numpy().transpose(0, 2, 1)
    table = pd.DataFrame({
        "region": region.astype(np.int64), "motif": motif.astype(np.int64),
        "strand": np.where(reverse, "-", "+"), "offset": span_offset.astype(np.int64), "width": width.astype(np.int64),
        "offset_untrimmed": offset_untrimmed.astype(np.int64), "width_untrimmed": full_width.astype(np.int64),
        "coefficient": coefficient, "similarity": similarity, "importance": np.abs(windows).sum(axis=(1, 2)),
        "importance_sq": (windows**2).sum(axis=(1, 2)), "contribution": windows.sum(axis=(1, 2)),
        "core_importance_sq": (core_windows**2).sum(axis=(1, 2)),
        "core_dot": (core_windows * unit_cores).sum(axis=(1, 2)),
    })
    return table.sort_values(["region", "offset", "motif"], kind="stable").reset_index(drop=True)


def _region_qc(contrib: np.ndarray, residual_sq: np.ndarray, n_hits: np.ndarray) -> pd.DataFrame:
    """Per-region QC; ``residual_sq`` is the squared contribution left unexplained in each region."""
    total_sq = (contrib.astype(np.float64) ** 2).sum(axis=(1, 2))
    # A region without hits explains nothing: its residual is its contributions, whatever the rounding.
    explained = np.divide(total_sq - residual_sq, total_sq, out=np.zeros_like(total_sq),
                          where=(total_sq > 0) & (n_hits > 0))
    return pd.DataFrame({
        "n_hits": n_hits.astype(np.int64), "contribution": contrib.sum(axis=(1, 2), dtype=np.float64),
        "global_scale": np.sqrt(total_sq / contrib.shape[-1]), "explained_fraction": explained,
    })


def empty_thresholds() -> pd.DataFrame:
    """The thresholds table of :func:`call_hits` with no rows."""
    return _thresholds_table([], [], [], [], [], np.zeros(0), np.zeros(0))


def _thresholds_table(motifs, trims, scales, thresholds, strengths, min_coefficient: np.ndarray,
                      sequence_thresholds: np.ndarray) -> pd.DataFrame:
    # Typed columns: a task without motifs gives an empty table that keeps the others' integer columns.
    return pd.DataFrame({
        "motif_name": pd.Series([m.name for m in motifs], dtype=object),
        "sign": pd.Series(["pos" if m.sign > 0 else "neg" for m in motifs], dtype=object),
        "width": np.array([m.cwm.shape[1] for m in motifs], dtype=np.int64),
        "trim_start": np.array([t[0] for t in trims], dtype=np.int64),
        "trim_end": np.array([t[1] for t in trims], dtype=np.int64),
        "cwm_scale": np.array(list(scales), dtype=np.float64),
        "importance_threshold": np.array(list(thresholds), dtype=np.float64),
        "strength": np.array(list(strengths), dtype=np.float64),
        "min_coefficient": np.asarray(min_coefficient, dtype=np.float64),
        "min_sequence_score": np.array([float(value) for value in sequence_thresholds], dtype=np.float64),
    })
