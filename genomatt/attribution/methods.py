"""Every attribution method of genomatt behind one call.

>>> from genomatt.attribution import attribute
>>> contrib = attribute(model, X)                                      # DeepLIFT, (N, 4, L)
>>> ig = attribute(model, X, method="integrated_gradients", steps=32)  # against 20 shuffles each
>>> ism = attribute(model, X, method="ism", hypothetical=True, start=80, end=120)

Every method returns ``(N, 4, L)`` float32 (``(N, T, 4, L)`` for a list of T targets): the score of
the observed base at each position, ``X * hypothetical``, or with ``hypothetical=True`` the score
each of the four bases would have. Methods that take a baseline accept ``references`` (and
``n_shuffles``, ``random_state``) exactly as :func:`~genomatt.attribution.deep_lift_shap` does;
methods that claim completeness (summation-to-delta) return their error with ``return_delta=True``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from genomatt.attribution.deeplift import deep_lift_shap
from genomatt.attribution.gradients import gradient_x_input, integrated_gradients, saliency
from genomatt.attribution.inputs import AttributionResult, Target
from genomatt.attribution.lrp import epsilon_lrp
from genomatt.attribution.patterns import Patterns, fit_patterns, patternattribution, patternnet
from genomatt.attribution.perturbation import ism, occlusion
from genomatt.errors import ConfigError

__all__ = ["METHODS", "AttributionResult", "Patterns", "attribute", "fit_patterns"]


METHODS: dict[str, Callable[..., Tensor | AttributionResult]] = {
    "deeplift": deep_lift_shap,
    "saliency": saliency,
    "gradient_x_input": gradient_x_input,
    "integrated_gradients": integrated_gradients,
    "epsilon_lrp": epsilon_lrp,
    "occlusion": occlusion,
    "ism": ism,
    "patternnet": patternnet,
    "patternattribution": patternattribution,
}
"""Method name → function; each function's own parameters are the method's options."""

_COMMON = ("target", "hypothetical", "batch_size", "device", "return_delta")


def method_options(method: str) -> tuple[str, ...]:
    """Options ``method`` accepts besides ``target``, ``hypothetical``, ``batch_size`` and ``device``."""
    return tuple(name for name in inspect.signature(METHODS[method]).parameters
                 if name not in ("model", "X", *_COMMON))


def _accepts(method: str, name: str) -> bool:
    return name in inspect.signature(METHODS[method]).parameters


# Gradients are what every method computes: also when called inside torch.inference_mode().
@torch.inference_mode(False)
def attribute(
    model: nn.Module,
    X: Tensor | np.ndarray,
    method: str = "deeplift",
    target: Target = 0,
    hypothetical: bool = False,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    return_delta: bool = False,
    **options: Any,
) -> Tensor | AttributionResult:
    """Per-base attributions of a sequence model by any of genomatt's methods.

    Methods (paper; options; whether ``hypothetical`` and ``return_delta`` apply):

    - ``deeplift``: Shrikumar et al. 2017; ``rule`` ("rescale", "revealcancel", "genomics_default"),
      ``max_rule`` ("cross_max", "shapley"), ``references``, ``n_shuffles``, ``random_state``, ...; hypothetical; exact completeness.
    - ``saliency``: Simonyan et al. 2014, |gradient|; hypothetical.
    - ``gradient_x_input``: Shrikumar et al. 2016; hypothetical.
    - ``integrated_gradients``: Sundararajan et al. 2017; ``steps``, ``integration``,
      ``references``, ``n_shuffles``, ``random_state``; hypothetical; completeness up to quadrature.
    - ``epsilon_lrp``: Bach et al. 2015; ``epsilon``; hypothetical; conservation up to biases and ε.
    - ``occlusion``: Zeiler & Fergus 2014; ``window``, ``stride``, ``references``, ``n_shuffles``,
      ``random_state``.
    - ``ism``: saturation mutagenesis; ``start``, ``end``; hypothetical.
    - ``patternnet``, ``patternattribution``: Kindermans et al. 2018; ``patterns`` or ``X_train``;
      hypothetical.

    Parameters
    ----------
    model : torch.nn.Module
        Takes one-hot ``(B, 4, L)``.
    X : Tensor or numpy.ndarray, shape (N, 4, L)
        One-hot sequences, channels A, C, G, T.
    method : str, default "deeplift"
        A key of :data:`METHODS`.
    target : int, list of int, or callable
        As in :func:`~genomatt.attribution.deep_lift_shap` (the pattern methods take columns only).
    hypothetical : bool, default False
        Return the score of every base at every position instead of ``X * hypothetical``.
    batch_size : int, default 128
        Rows per forward pass (pairs, path points or edited sequences, depending on the method).
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    return_delta : bool, default False
        Return an :class:`~genomatt.attribution.inputs.AttributionResult` with the completeness
        error of each region (``deeplift``, ``integrated_gradients``, ``epsilon_lrp``).
    **options
        The method's own options; see the function of each method in :data:`METHODS`.

    Returns
    -------
    Tensor or AttributionResult
        float32 on the CPU, shape (N, 4, L), or (N, T, 4, L) for a list of T targets.

    Raises
    ------
    ConfigError
        For an unknown method or option, or an option the method does not have.
    SequenceError, ModelError
        As the method raises them.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown attribution method {method!r}; expected one of {', '.join(METHODS)}")
    if hypothetical and not _accepts(method, "hypothetical"):
        raise ConfigError(f"{method} has no hypothetical scores: it occludes all four bases of a window at once")
    if return_delta and not _accepts(method, "return_delta"):
        raise ConfigError(f"{method} does not claim completeness, so it has no completeness error "
                          "(return_delta is for deeplift, integrated_gradients and epsilon_lrp)")
    unknown = sorted(set(options) - set(method_options(method)))
    if unknown:
        accepted = ", ".join(method_options(method)) or "none"
        raise ConfigError(f"{method} has no option {', '.join(map(repr, unknown))}; its options are: {accepted}")
    arguments = {"target": target, "batch_size": batch_size, "device": device, **options}
    if hypothetical:
        arguments["hypothetical"] = True
    if return_delta:
        arguments["return_delta"] = True
    return METHODS[method](model, X, **arguments)
