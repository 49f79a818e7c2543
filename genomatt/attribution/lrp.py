"""Epsilon layer-wise relevance propagation (ε-LRP; Bach et al., 2015).

LRP passes the output value backwards layer by layer: a linear layer z_j = Σ_i x_i w_ij + b_j gives
input i the relevance R_i = Σ_j x_i w_ij / (z_j + ε · sign(z_j)) · R_j, and an elementwise
activation passes relevance through unchanged. Ancona et al. (2018) showed this equals the input
times a modified gradient in which each activation a = g(z) has the derivative g(z) / z in place
of g'(z); with the stabiliser, g(z) / (z + ε · sign(z)). That is how it is computed here: one
backward pass in which every elementwise function uses that ratio, max pooling routes relevance to
the winner (its gradient), and the output relevance f(x) enters through f / (f + ε · sign(f)).

Consecutive linear operations (a convolution and the batch norm after it, pooling by averaging,
reshaping, a residual sum) act as one linear layer, whose stabiliser is the one at the activation
that follows, as LRP implementations fold batch norm into the convolution before it. As ε → 0 in
a ReLU network the result is gradient × input; larger ε absorbs weak and contradictory relevance,
and with biases part of f(x) is absorbed by them, so Σ R = f(x) holds only without biases.

The operations are seen per call by the interception machinery the DeepLIFT engine shares
(:mod:`genomatt.attribution.interception`), so functional calls and reused modules are handled,
and operations without a rule are refused.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from genomatt.attribution.inputs import AttributionResult, Target, as_sequences, check_batch_size
from genomatt.attribution.interception import ModifiedGradientMode, as_model_error, require_varying, varying_input
from genomatt.attribution.outputs import check_finite_values, explained, per_target
from genomatt.attribution.rules import NotElementwise
from genomatt.errors import ConfigError


def _stabilised(z: Tensor, epsilon: float) -> Tensor:
    """z + ε · sign(z), with sign(0) = +1 so the result is never zero for ε > 0."""
    return z + epsilon * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


class _EpsilonRule(torch.autograd.Function):
    """An elementwise function whose backward multiplies by g(z) / (z + ε · sign(z))."""

    @staticmethod
    def forward(ctx, z: Tensor, function: Callable[[Tensor], Tensor], epsilon: float) -> Tensor:
        out = function(z)
        if not isinstance(out, Tensor) or out.shape != z.shape:
            raise NotElementwise
        ctx.save_for_backward(out / _stabilised(z, epsilon))
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (ratio,) = ctx.saved_tensors
        return grad * ratio, None, None


class EpsilonLrpMode(ModifiedGradientMode):
    """Intercepts a forward pass for ε-LRP: linear operations run as they are, elementwise functions
    get the ε-ratio rule, max operations keep their gradient, and anything else is refused.

    Parameters
    ----------
    model : torch.nn.Module
        The model, for naming modules in error messages.
    epsilon : float
        The stabiliser ε > 0.
    """

    method_name = "epsilon-LRP"
    elementwise_rule_name = "epsilon"

    def __init__(self, model: nn.Module, epsilon: float):
        super().__init__(model)
        self.epsilon = epsilon

    def _elementwise_rule(self, name: str, z: Tensor, function: Callable[[Tensor], Tensor]) -> Tensor:
        return _EpsilonRule.apply(z, function, self.epsilon)


def epsilon_lrp(
    model: nn.Module,
    X: Tensor | np.ndarray,
    target: Target = 0,
    hypothetical: bool = False,
    epsilon: float = 0.01,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    return_delta: bool = False,
) -> Tensor | AttributionResult:
    """ε-LRP relevance of every input (Bach et al., 2015), as input × modified gradient (Ancona et al., 2018).

    Parameters
    ----------
    model : torch.nn.Module
        Takes one-hot ``(B, 4, L)``. Every operation on input-dependent values must be linear, an
        elementwise function of one input-dependent tensor, or a max (as for
        :func:`~genomatt.attribution.deep_lift_shap`); others raise
        :class:`~genomatt.errors.ModelError` before any output.
    X : Tensor or numpy.ndarray, shape (N, 4, L)
        One-hot sequences, channels A, C, G, T.
    target : int, list of int, or callable
        As in :func:`~genomatt.attribution.deep_lift_shap`.
    hypothetical : bool, default False
        Return the modified gradient, the relevance each base would have at each position, instead
        of ``X * hypothetical``.
    epsilon : float, default 0.01
        The stabiliser ε > 0, in the units of the pre-activations.
    batch_size : int, default 128
        Sequences per forward and backward pass.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    return_delta : bool, default False
        Also return the conservation error |f(x) − Σ R| of each region as an
        :class:`~genomatt.attribution.inputs.AttributionResult`.

    Returns
    -------
    Tensor or AttributionResult
        float32 on the CPU, shape (N, 4, L), or (N, T, 4, L) for a list of T targets.
    """
    X = as_sequences(X)
    batch_size = check_batch_size(batch_size)
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not 0 < epsilon < math.inf:
        raise ConfigError(f"epsilon must be a positive finite number, got {epsilon!r}")
    scores, predictions = [], []
    with explained(model, target, device) as model_ready:
        mode = EpsilonLrpMode(model, float(epsilon))
        for start in range(0, X.shape[0], batch_size):
            batch = X[start:start + batch_size].to(model_ready.device, model_ready.dtype).requires_grad_(True)
            with torch.enable_grad():
                with as_model_error(batch), mode:
                    values = model_ready.reduce_output(model(varying_input(batch)))
                check_finite_values(values)
                require_varying(values)
                model_ready.check_rows_independent(batch, values)
                gradients = []
                for k in range(values.shape[1]):
                    (gradient,) = torch.autograd.grad(values[:, k].sum(), batch, retain_graph=k < values.shape[1] - 1)
                    gradients.append(gradient)
            values = values.detach().float().cpu()
            output_ratio = values / _stabilised(values, float(epsilon))
            scores.append(torch.stack(gradients).float().cpu().transpose(0, 1) * output_ratio[:, :, None, None])
            predictions.append(values)
    scores = torch.cat(scores)
    relevance = X.unsqueeze(1) * scores
    attributions = per_target(scores if hypothetical else relevance, target)
    if return_delta:
        prediction = torch.cat(predictions)
        delta = (prediction - relevance.sum(dim=(-2, -1))).abs()
        return AttributionResult(attributions, per_target(delta, target), per_target(prediction, target))
    return attributions
