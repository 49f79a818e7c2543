"""Perturbation attributions: occlusion and in-silico saturation mutagenesis (ISM).

Both only run the model forward on edited copies of each sequence, so they explain any model and
measure real output changes; their cost is one forward pass per edit.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from genomatt.attribution.inputs import Target, as_sequences, check_batch_size, check_positive_int, reference_source
from genomatt.attribution.interception import HeldValuesRefused
from genomatt.attribution.outputs import explained, per_target
from genomatt.errors import ConfigError


def occlusion_windows(length: int, window: int, stride: int) -> Tensor:
    """Masks of the occluded windows, ``(W, L)`` bool.

    Windows start at 0, stride, 2·stride, ... until one reaches the end; the last one is cut at
    the end of the sequence when the stride does not divide ``length − window`` (as in captum).
    """
    count = math.ceil((length - window) / stride) + 1
    starts = torch.arange(count) * stride
    positions = torch.arange(length)
    return (positions >= starts[:, None]) & (positions < starts[:, None] + window)


def occlusion(
    model: nn.Module,
    X: Tensor | np.ndarray,
    target: Target = 0,
    window: int = 5,
    stride: int = 1,
    references: Tensor | np.ndarray | Callable[..., Any] | None = None,
    n_shuffles: int = 20,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    random_state: int | np.random.Generator | None = 0,
) -> Tensor:
    """Occlusion (Zeiler & Fergus, 2014): the output drop when a window of the sequence is replaced.

    Each window of ``window`` bp is replaced by the same bases of each reference in turn; a
    position's score is f(x) − f(occluded), averaged over references and over every window that
    covers the position. The window sets the resolution: scores are smooth over ``window`` bp and
    say nothing about which base of a window mattered, so there are no hypothetical scores.

    Parameters
    ----------
    model : torch.nn.Module
        Takes one-hot ``(B, 4, L)``.
    X : Tensor or numpy.ndarray, shape (N, 4, L)
        One-hot sequences, channels A, C, G, T.
    target : int, list of int, or callable
        As in :func:`~genomatt.attribution.deep_lift_shap`.
    window, stride : int
        Width of the occluded window and step between windows, in bp.
    references : Tensor, numpy.ndarray, callable or None
        What replaces a window, exactly as in :func:`~genomatt.attribution.deep_lift_shap`:
        ``(N, R, 4, L)``, a callable, or None for dinucleotide shuffles. ``torch.zeros(N, 1, 4, L)``
        writes ``N`` bases, the grey square of the paper.
    n_shuffles : int, default 20
        References per sequence when they are generated.
    batch_size : int, default 128
        Occluded sequences per forward pass.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of generated references.

    Returns
    -------
    Tensor, shape (N, 4, L), or (N, T, 4, L) for a list of T targets, float32 on the CPU
        The score of each position at its observed base (``X * score``).
    """
    X = as_sequences(X)
    batch_size = check_batch_size(batch_size)
    length = X.shape[2]
    window, stride = check_positive_int(window, "window"), check_positive_int(stride, "stride")
    if window > length:
        raise ConfigError(f"window ({window} bp) is longer than the sequences ({length} bp)")
    if stride > window:
        raise ConfigError(f"stride ({stride} bp) is longer than the window ({window} bp): the positions between "
                          "windows would never be occluded; take a stride of at most the window")
    check_positive_int(n_shuffles, "n_shuffles")
    masks = occlusion_windows(length, window, stride)
    coverage = masks.sum(dim=0).float()
    n_references, reference_blocks = reference_source(references, X, n_shuffles, random_state)
    sequences_per_block = max(1, batch_size // (n_references * masks.shape[0]))
    scores = []
    with explained(model, target, device) as model_ready, HeldValuesRefused("occlusion", "occluded sequences"):
        for start in range(0, X.shape[0], sequences_per_block):
            stop = min(start + sequences_per_block, X.shape[0])
            x, refs = X[start:stop], reference_blocks(start, stop)
            occluded = torch.where(masks[None, None, :, None, :], refs.unsqueeze(2), x[:, None, None])
            values = model_ready.values(occluded.reshape(-1, 4, length), batch_size)
            values = values.reshape(*occluded.shape[:3], -1)
            drop = (model_ready.values(x, batch_size)[:, None, None] - values).mean(dim=1)
            scores.append(torch.einsum("bwt,wl->btl", drop, masks.float()) / coverage)
    return per_target(X.unsqueeze(1) * torch.cat(scores).unsqueeze(2), target)


def ism(
    model: nn.Module,
    X: Tensor | np.ndarray,
    target: Target = 0,
    hypothetical: bool = False,
    start: int | None = None,
    end: int | None = None,
    batch_size: int = 128,
    device: str | torch.device | None = None,
) -> Tensor:
    """In-silico saturation mutagenesis: the output for every single-base substitution.

    Every position in ``[start, end)`` is set to each base other than the observed one (identity
    edits are skipped; an ``N`` position is set to all four), one edit per forward pass. The score
    of base b at position l is its output against the average of the four bases there::

        hyp[b, l] = f(x with b at l) − ¼ Σ_c f(x with c at l)

    so differences between bases are exact output differences, hyp[b, l] − hyp[observed, l] =
    f(x with b at l) − f(x), and the contribution of the observed base is how much better it does
    than the average base. ISM measures one edit at a time: it misses effects that need two
    positions to change together (a motif whose every base is redundant scores zero).

    Parameters
    ----------
    model, X, target, device
        As in :func:`occlusion`.
    hypothetical : bool, default False
        Return ``hyp`` for every base instead of ``X * hyp``.
    start, end : int, optional
        Mutate only positions ``start`` ≤ l < ``end`` (default: all); others score zero.
    batch_size : int, default 128
        Edited sequences per forward pass.

    Returns
    -------
    Tensor, shape (N, 4, L), or (N, T, 4, L) for a list of T targets, float32 on the CPU
    """
    X = as_sequences(X)
    batch_size = check_batch_size(batch_size)
    length = X.shape[2]
    start = 0 if start is None else start
    end = length if end is None else end
    if not all(isinstance(value, numbers.Integral) and not isinstance(value, bool) for value in (start, end)) \
            or not 0 <= start < end <= length:
        raise ConfigError(f"start and end must be positions with 0 <= start < end <= {length}, got {start!r}, {end!r}")
    start, end = int(start), int(end)
    sequences_per_block = max(1, batch_size // (3 * (end - start)))
    scores = []
    with (explained(model, target, device) as model_ready,
          HeldValuesRefused("in silico mutagenesis", "mutated sequences")):
        for first in range(0, X.shape[0], sequences_per_block):
            x = X[first:first + sequences_per_block]
            scores.append(_substitution_scores(model_ready, x, start, end, batch_size))
    scores = torch.cat(scores)
    return per_target(scores if hypothetical else X.unsqueeze(1) * scores, target)


def _substitution_scores(model_ready, x: Tensor, start: int, end: int, batch_size: int) -> Tensor:
    """``hyp`` of :func:`ism` for a block of sequences, ``(b, T, 4, L)``."""
    edits = (x[:, :, start:end] != 1).nonzero()
    sequence, base, position = edits[:, 0], edits[:, 1], edits[:, 2] + start
    edited = x[sequence].clone()
    edited[torch.arange(len(edits)), :, position] = 0
    edited[torch.arange(len(edits)), base, position] = 1
    change = model_ready.values(edited, batch_size) - model_ready.values(x, batch_size)[sequence]
    delta = torch.zeros(x.shape[0], change.shape[1], 4, x.shape[2])
    delta[sequence, :, base, position] = change
    window = delta[..., start:end]
    window -= window.mean(dim=2, keepdim=True)
    return delta
