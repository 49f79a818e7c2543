"""Gradient-based attributions: saliency, gradient × input and integrated gradients.

All three run plain autograd, so they explain any differentiable model (TorchScript included). Each
returns, like :func:`~genomatt.attribution.deep_lift_shap`, the contribution of the observed base
at each position (``X * hypothetical``), or with ``hypothetical=True`` the score every base would
have at that position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from genomatt.attribution.deeplift import hypothetical_contributions
from genomatt.attribution.inputs import (
    AttributionResult,
    Target,
    as_sequences,
    check_batch_size,
    check_positive_int,
    reference_source,
)
from genomatt.attribution.interception import HeldValuesRefused
from genomatt.attribution.outputs import ExplainedModel, explained, per_target
from genomatt.errors import ConfigError

INTEGRATIONS = ("gauss_legendre", "riemann")


def _input_gradients(model: nn.Module, X: Tensor, target: Target, batch_size: int,
                     device: str | torch.device | None) -> Tensor:
    """Gradients of the targets at the sequences themselves, ``(N, T, 4, L)``."""
    with explained(model, target, device) as model_ready:
        chunks = [model_ready.gradients(X[start:start + batch_size])[0].transpose(0, 1)
                  for start in range(0, X.shape[0], batch_size)]
    return torch.cat(chunks)


def saliency(
    model: nn.Module,
    X: Tensor | np.ndarray,
    target: Target = 0,
    hypothetical: bool = False,
    batch_size: int = 128,
    device: str | torch.device | None = None,
) -> Tensor:
    """Saliency map: the absolute gradient of the output (Simonyan et al., 2014).

    |∂f/∂x| says how sensitive the output is to each input, not how much each input contributed;
    it assumes the model is close to linear around x and ignores the sign of the effect.

    Parameters
    ----------
    model : torch.nn.Module
        Takes one-hot ``(B, 4, L)``.
    X : Tensor or numpy.ndarray, shape (N, 4, L)
        One-hot sequences, channels A, C, G, T.
    target : int, list of int, or callable
        As in :func:`~genomatt.attribution.deep_lift_shap`.
    hypothetical : bool, default False
        Return the whole map |∂f/∂x| over the four bases (the saliency map of the paper) instead of
        its value at the observed base, ``X * |∂f/∂x|``.
    batch_size : int, default 128
        Sequences per forward and backward pass.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.

    Returns
    -------
    Tensor, shape (N, 4, L), or (N, T, 4, L) for a list of T targets, float32 on the CPU
    """
    X = as_sequences(X)
    saliency_map = _input_gradients(model, X, target, check_batch_size(batch_size), device).abs()
    return per_target(saliency_map if hypothetical else X.unsqueeze(1) * saliency_map, target)


def gradient_x_input(
    model: nn.Module,
    X: Tensor | np.ndarray,
    target: Target = 0,
    hypothetical: bool = False,
    batch_size: int = 128,
    device: str | torch.device | None = None,
) -> Tensor:
    """Gradient × input (Shrikumar et al., 2016).

    The first-order Taylor term of f around the all-zero (all-``N``) sequence: exact for a linear
    model, where it equals DeepLIFT and integrated gradients with a zero reference; for a
    nonlinear model it assumes the gradient at x holds all the way from zero to x.

    Parameters
    ----------
    model, X, target, batch_size, device
        As in :func:`saliency`.
    hypothetical : bool, default False
        Return the gradient, the contribution each base would have at each position
        (``e_b · ∂f/∂x``), instead of ``X * ∂f/∂x``.

    Returns
    -------
    Tensor, shape (N, 4, L), or (N, T, 4, L) for a list of T targets, float32 on the CPU
    """
    X = as_sequences(X)
    gradient = _input_gradients(model, X, target, check_batch_size(batch_size), device)
    return per_target(gradient if hypothetical else X.unsqueeze(1) * gradient, target)


def quadrature(steps: int, integration: str) -> tuple[Tensor, Tensor]:
    """Nodes α in (0, 1) and weights of a rule integrating over [0, 1] with ``steps`` points.

    ``"riemann"`` is the midpoint Riemann sum, α_k = (k + ½) / steps with weights 1 / steps;
    ``"gauss_legendre"`` the Gauss–Legendre rule, exact for polynomials of degree 2·steps − 1
    (the ``riemann_middle`` and ``gausslegendre`` methods of captum).

    Returns
    -------
    alphas, weights : Tensor, shape (steps,), float32
    """
    check_positive_int(steps, "steps")
    if integration == "riemann":
        alphas = (np.arange(steps) + 0.5) / steps
        weights = np.full(steps, 1.0 / steps)
    elif integration == "gauss_legendre":
        nodes, node_weights = np.polynomial.legendre.leggauss(steps)
        alphas, weights = 0.5 * (nodes + 1.0), 0.5 * node_weights
    else:
        raise ConfigError(f"integration must be one of {', '.join(INTEGRATIONS)}, got {integration!r}")
    return torch.from_numpy(alphas).float(), torch.from_numpy(weights).float()


def integrated_gradients(
    model: nn.Module,
    X: Tensor | np.ndarray,
    target: Target = 0,
    hypothetical: bool = False,
    references: Tensor | np.ndarray | Callable[..., Any] | None = None,
    n_shuffles: int = 20,
    steps: int = 50,
    integration: str = "gauss_legendre",
    batch_size: int = 128,
    device: str | torch.device | None = None,
    random_state: int | np.random.Generator | None = 0,
    return_delta: bool = False,
) -> Tensor | AttributionResult:
    """Integrated gradients (Sundararajan et al., 2017), averaged over references.

    For a sequence x and a reference x0 the multiplier of each input is the gradient averaged
    along the straight path from x0 to x, m = ∫₀¹ ∂f(x0 + α (x − x0))/∂x dα, and the
    attributions m · (x − x0) sum to f(x) − f(x0) (completeness) up to the error of the
    quadrature, which shrinks as ``steps`` grows. The path runs through non-one-hot inputs the
    model never saw in training. Several references are averaged as DeepSHAP averages DeepLIFT
    (the expected-gradients estimate when references are samples of a background).

    Parameters
    ----------
    model, X, target, batch_size, device
        As in :func:`saliency`; ``batch_size`` counts path points per pass.
    hypothetical : bool, default False
        Return ``m − Σ_c m_c · x0_c`` at every base, the contribution each base would have,
        averaged over references (as :func:`~genomatt.attribution.hypothetical_contributions`),
        instead of ``X * hypothetical``, whose sum over positions is f(x) − mean f(x0).
    references : Tensor, numpy.ndarray, callable or None
        Baselines exactly as in :func:`~genomatt.attribution.deep_lift_shap`: ``(N, R, 4, L)``, a
        callable, or None for dinucleotide shuffles. The all-zero baseline of the paper is
        ``torch.zeros(N, 1, 4, L)``.
    n_shuffles : int, default 20
        References per sequence when they are generated.
    steps : int, default 50
        Points of the path integral.
    integration : {"gauss_legendre", "riemann"}
        Quadrature rule, see :func:`quadrature`.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of generated references.
    return_delta : bool, default False
        Also return the completeness error of each region as an
        :class:`~genomatt.attribution.inputs.AttributionResult`.

    Returns
    -------
    Tensor or AttributionResult
        float32 on the CPU, shape (N, 4, L), or (N, T, 4, L) for a list of T targets.
    """
    X = as_sequences(X)
    batch_size = check_batch_size(batch_size)
    alphas, weights = quadrature(steps, integration)
    check_positive_int(n_shuffles, "n_shuffles")
    n_references, reference_blocks = reference_source(references, X, n_shuffles, random_state)
    sequences_per_block = max(1, batch_size // (n_references * steps))
    hypothetical_scores, deltas, predictions = [], [], []
    with explained(model, target, device) as model_ready:
        for start in range(0, X.shape[0], sequences_per_block):
            stop = min(start + sequences_per_block, X.shape[0])
            x, refs = X[start:stop], reference_blocks(start, stop)
            multipliers = _path_multipliers(model_ready, x, refs, alphas, weights, batch_size)
            hypothetical_scores.append(hypothetical_contributions(multipliers, refs).mean(dim=2).transpose(0, 1))
            if return_delta:
                delta, prediction = _completeness(model_ready, x, refs, multipliers, batch_size)
                deltas.append(delta)
                predictions.append(prediction)
    scores = torch.cat(hypothetical_scores)
    attributions = per_target(scores if hypothetical else X.unsqueeze(1) * scores, target)
    if return_delta:
        return AttributionResult(attributions, per_target(torch.cat(deltas), target),
                                 per_target(torch.cat(predictions), target))
    return attributions


def _path_multipliers(model_ready: ExplainedModel, x: Tensor, refs: Tensor, alphas: Tensor, weights: Tensor,
                      batch_size: int) -> Tensor:
    """Quadrature of the gradient along each (sequence, reference) path, ``(T, b, R, 4, L)``."""
    b, r = refs.shape[:2]
    difference = x.unsqueeze(1) - refs
    points = refs.unsqueeze(2) + alphas.reshape(1, 1, -1, 1, 1) * difference.unsqueeze(2)
    points = points.reshape(-1, *x.shape[1:])
    with HeldValuesRefused("integrated gradients", "the points of its path"):
        gradients = torch.cat([model_ready.gradients(points[start:start + batch_size])[0]
                               for start in range(0, points.shape[0], batch_size)], dim=1)
    gradients = gradients.reshape(gradients.shape[0], b, r, alphas.shape[0], *x.shape[1:])
    return (gradients * weights.reshape(1, 1, 1, -1, 1, 1)).sum(dim=3)


def _completeness(model_ready: ExplainedModel, x: Tensor, refs: Tensor, multipliers: Tensor,
                  batch_size: int) -> tuple[Tensor, Tensor]:
    """Largest |f(x) − f(x0) − Σ m · (x − x0)| over the references ``(b, T)``, and f(x) ``(b, T)``."""
    b, r = refs.shape[:2]
    values = model_ready.values(torch.cat([x, refs.reshape(b * r, *x.shape[1:])]), batch_size)
    value_x, value_refs = values[:b], values[b:].reshape(b, r, -1)
    summed = (multipliers * (x.unsqueeze(1) - refs)).sum(dim=(-2, -1))
    error = (value_x.T.unsqueeze(-1) - value_refs.permute(2, 0, 1) - summed).abs()
    return error.amax(dim=2).T, value_x
