"""The DeepLIFT rule registry: operation name → rule, the built-in rules and the user's alike.

A rule is a function ``rule(mode, func, args, kwargs)`` called for every call of an operation
that has an input-dependent operand, in place of the call; it returns what the call returns. It
builds its result from what the mode (:class:`~genomatt.attribution.interception.DeepLiftMode`)
offers, each keeping summation-to-delta exact:

* ``mode.rescale(z, function)`` — an elementwise function of one input-dependent tensor, with the
  Rescale (or RevealCancel) multipliers;
* ``mode.product(function, a, b)`` — a function linear in each of two input-dependent tensors
  (products, matrix products), with the two-factor Shapley rule;
* ``mode.group_constant(values)`` — per-row constants equal within a sequence's group, for shifts
  that must cancel in every difference (the max subtracted before an exponential);
* plain torch operations on the tensors, which the mode does not intercept inside a rule: linear
  ones keep their gradient as multiplier; their results must be marked with ``mark_varying``.

``mode.operation`` is the operation's name and ``mode.refuse(reason)`` the error to raise for a
call the rule cannot handle. :func:`deep_lift_rules` merges the user's rules
(``deep_lift_shap(..., rules={...})``) over the built-in ones, so a user rule replaces a built-in
one of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from genomatt.attribution.interception import basic_rules, is_varying, mark_varying
from genomatt.errors import ConfigError

if TYPE_CHECKING:
    from genomatt.attribution.interception import DeepLiftMode

__all__ = ["deep_lift_rules", "elementwise", "layer_norm", "logsumexp", "log_softmax", "softmax"]

Rule = Callable[["DeepLiftMode", Callable, tuple, dict], Any]


def elementwise(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Any:
    """Rule for an elementwise function of one input-dependent operand: Rescale (or RevealCancel)."""
    return mode._elementwise(func, mode.operation, args, kwargs, mode.varying_operands(args, kwargs))


def _argument(args: tuple, kwargs: dict, position: int, name: str, default: Any = None) -> Any:
    return args[position] if len(args) > position else kwargs.get(name, default)


def _only_input(mode: DeepLiftMode, args: tuple, kwargs: dict) -> Tensor:
    z = _argument(args, kwargs, 0, "input")
    if any(tensor is not z for tensor in mode.varying_operands(args, kwargs)):
        raise mode.refuse("an operand other than its input depends on the input")
    return z


def _reduction_dims(mode: DeepLiftMode, dim: Any, z: Tensor) -> tuple[int, ...]:
    if dim is None:
        raise mode.refuse("it needs an explicit dim")
    dims = tuple(d % z.dim() for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))
    if 0 in dims:
        raise mode.refuse("it reduces over the batch axis, which mixes sequences")
    return dims


def _logsumexp(mode: DeepLiftMode, z: Tensor, dims: tuple[int, ...]) -> Tensor:
    """log Σ exp(z) over ``dims`` (kept), as c + log Σ exp(z − c) with c constant in each group."""
    shift = mode.group_constant(z.detach().amax(dim=dims, keepdim=True))
    shifted = z - shift
    mark_varying(shifted)
    total = mode.rescale(shifted, torch.exp).sum(dim=dims, keepdim=True)
    mark_varying(total)
    out = mode.rescale(total, torch.log) + shift
    mark_varying(out)
    return out


def _cast(z: Tensor, dtype: torch.dtype | None) -> Tensor:
    if dtype is None:
        return z
    out = z.to(dtype)
    mark_varying(out)
    return out


def logsumexp(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``torch.logsumexp``: exact, through a group-constant shift, Rescale at exp and log and a sum."""
    z = _only_input(mode, args, kwargs)
    dims = _reduction_dims(mode, _argument(args, kwargs, 1, "dim"), z)
    out = _logsumexp(mode, z, dims)
    if not _argument(args, kwargs, 2, "keepdim", False):
        out = out.squeeze(dims)
        mark_varying(out)
    return out


def log_softmax(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``log_softmax``: z − logsumexp(z), exact."""
    z = _cast(_only_input(mode, args, kwargs), kwargs.get("dtype"))
    dims = _reduction_dims(mode, _argument(args, kwargs, 1, "dim"), z)
    out = z - _logsumexp(mode, z, dims)
    mark_varying(out)
    return out


def softmax(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``softmax``: exp(z − logsumexp(z)), exact (Rescale at the final exponential too)."""
    z = _cast(_only_input(mode, args, kwargs), kwargs.get("dtype"))
    dims = _reduction_dims(mode, _argument(args, kwargs, 1, "dim"), z)
    centred = z - _logsumexp(mode, z, dims)
    mark_varying(centred)
    return mode.rescale(centred, torch.exp)


def layer_norm(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``layer_norm`` (and ``rms_norm``): (z − mean) · rsqrt(var + eps) · w + b, exact.

    The centred values d are linear in z; d² and rsqrt(mean(d²) + eps) take Rescale; their
    product takes the two-factor rule; the affine part is linear.
    """
    z = _only_input(mode, args, kwargs)
    shape = _argument(args, kwargs, 1, "normalized_shape")
    weight, bias = _argument(args, kwargs, 2, "weight"), None
    rms = mode.operation == "rms_norm"
    if rms:
        eps = _argument(args, kwargs, 3, "eps")
        eps = torch.finfo(z.dtype).eps if eps is None else eps
    else:
        bias, eps = _argument(args, kwargs, 3, "bias"), _argument(args, kwargs, 4, "eps", 1e-5)
    dims = tuple(range(z.dim() - len(tuple(shape)), z.dim()))
    centred = z if rms else z - z.mean(dim=dims, keepdim=True)
    mark_varying(centred)
    variance = mode.rescale(centred, torch.square).mean(dim=dims, keepdim=True)
    mark_varying(variance)
    scale = mode.rescale(variance, lambda v: torch.rsqrt(v + eps))
    out = mode.product(torch.mul, centred, scale)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    mark_varying(out)
    return out


def divide(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``a / b``: linear in a for a constant b; a · (1 / b) with Rescale and the product rule otherwise."""
    numerator, divisor = args[0], _argument(args, kwargs, 1, "other")
    if kwargs.get("rounding_mode") is not None:
        raise mode.refuse("a rounded division is not differentiable")
    if not (isinstance(divisor, Tensor) and is_varying(divisor)):
        return mode._linear(func, mode.operation, args, kwargs, mode.varying_operands(args, kwargs))
    inverse = mode.rescale(divisor, torch.reciprocal)
    if not (isinstance(numerator, Tensor) and is_varying(numerator)):
        out = inverse * numerator
        mark_varying(out)
        return out
    out = mode.product(torch.mul, numerator, inverse)
    if mode.operation.endswith("_") and not mode.operation.startswith("_"):
        numerator.copy_(out)
        return numerator
    return out


def extremum(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``maximum``/``minimum`` of two tensors: a + relu(b − a) and a − relu(a − b), exact."""
    first, second = args[0], _argument(args, kwargs, 1, "other")
    if not all(isinstance(t, Tensor) and is_varying(t) for t in (first, second)):
        return mode._elementwise(func, mode.operation, args, kwargs, mode.varying_operands(args, kwargs))
    larger = mode.operation in ("maximum", "fmax", "max")
    gap = second - first if larger else first - second
    mark_varying(gap)
    out = first + mode.rescale(gap, torch.relu) if larger else first - mode.rescale(gap, torch.relu)
    mark_varying(out)
    return out


def profile_logit_scaling(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """bpnet-lite's c ↦ c · softmax(c) block: Rescale as one block, as bpnet-lite registers it."""
    centred = _only_input(mode, args, kwargs)
    return mode.rescale(centred, func)


def _binary_or_axis(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Any:
    if mode._is_binary_max(args, kwargs):
        return extremum(mode, func, args, kwargs)
    return BUILT_IN[mode.operation](mode, func, args, kwargs)


BUILT_IN = basic_rules()

_COMPOSITE: dict[str, Rule] = {
    "softmax": softmax, "log_softmax": log_softmax, "logsumexp": logsumexp,
    "layer_norm": layer_norm, "rms_norm": layer_norm,
    "div": divide, "div_": divide, "divide": divide, "true_divide": divide, "__truediv__": divide,
    "__itruediv__": divide, "__div__": divide,
    "maximum": extremum, "minimum": extremum, "fmax": extremum, "fmin": extremum,
    "max": _binary_or_axis, "min": _binary_or_axis, "profile_logit_scaling": profile_logit_scaling,
}


def deep_lift_rules(user_rules: Mapping[str, Rule] | None = None) -> dict[str, Rule]:
    """The DeepLIFT rules by operation name: the built-in ones with ``user_rules`` over them.

    Parameters
    ----------
    user_rules : mapping of str to callable, optional
        Operation name (as genomatt names it in refusals: ``erfinv``, ``glu``, ``my_op``) → rule
        ``rule(mode, func, args, kwargs)``; see the module docstring.

    Returns
    -------
    dict of str to callable

    Raises
    ------
    ConfigError
        If a key is not a string or a rule is not callable.
    """
    rules = dict(BUILT_IN)
    rules.update(_COMPOSITE)
    rules["detach"] = lambda mode, func, args, kwargs: mode.pass_through(func, args, kwargs)
    for name, rule in (user_rules or {}).items():
        if not isinstance(name, str) or not callable(rule):
            raise ConfigError(f"rules must map operation names to callables rule(mode, func, args, kwargs); "
                              f"got {name!r}: {type(rule).__name__}")
        rules[name] = rule
    return rules
