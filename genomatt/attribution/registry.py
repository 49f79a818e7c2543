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
  that must cancel in every difference;
* plain torch operations on the tensors, which the mode does not intercept inside a rule: linear
  ones keep their gradient as multiplier; their results must be marked with ``mark_varying``.

``mode.operation`` is the operation's name and ``mode.refuse(reason)`` the error to raise for a
call the rule cannot handle. :func:`deep_lift_rules` merges the user's rules
(``deep_lift_shap(..., rules={...})``) over the built-in ones, so a user rule replaces a built-in
one of the same name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from genomatt.attribution.interception import basic_rules, is_varying, mark_varying
from genomatt.attribution.rules import SECANT_FALLBACK, pair_backward, pairs
from genomatt.errors import ConfigError

if TYPE_CHECKING:
    from genomatt.attribution.interception import DeepLiftMode

__all__ = ["deep_lift_rules", "elementwise", "layer_norm", "log_softmax", "logsumexp", "multi_head_attention",
           "recurrent", "scaled_dot_product_attention", "softmax"]

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


def _reduction_dims(mode: DeepLiftMode, dim: Any, z: Tensor) -> tuple[Tensor, tuple[int, ...], bool]:
    """``z`` and the axes reduced over, with the batch in front: a reduction over the positions (axis 0) of
    a sequence-first tensor ``(L, B, ...)`` is computed on its transpose; the flag says it was."""
    if dim is None:
        raise mode.refuse("it needs an explicit dim")
    dims = tuple(d % z.dim() for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))
    if 0 in dims and mode._batch_second(z):
        swapped = tuple(1 if d == 0 else 0 if d == 1 else d for d in dims)
        return z.transpose(0, 1), swapped, True
    if 0 in dims:
        raise mode.refuse(mode.axis_zero_reason(z))
    return z, dims, False


class _LogSumExpFunction(torch.autograd.Function):
    """log Σ exp(z) over ``dims`` (kept), whose backward multiplies each pair by its exact multipliers.

    ``forward(z, dims, n_sequences)`` computes each row as torch does, shifted by its own maximum. For a
    sequence row z and one of its references z0, with a = logsumexp(z), a0 = logsumexp(z0) and s = max(a, a0),
    element i's multiplier is the Rescale chain through exp, the sum and log, taken with the pair's shift s::

        m_i = |a − a0| / (1 − exp(−|a − a0|)) · (exp(z_i − s) − exp(z0_i − s)) / (z_i − z0_i)

    The chain is the same for any shift common to the pair. With s, the pair's shifted sums are 1 and
    exp(−|a − a0|) and log's secant (the first factor) comes from |a − a0| alone, so no sum underflows to 0
    (as a shift shared by a sequence and all its references lets it) and Σ_i m_i (z_i − z0_i) = a − a0
    however far apart the rows' maxima are. Where z_i and z0_i are equal (to
    :data:`~genomatt.attribution.rules.SECANT_FALLBACK`, relative), the second factor is the derivative at the
    sequence, exp(z_i − s).
    """

    @staticmethod
    def forward(ctx, z: Tensor, dims: tuple[int, ...], n_sequences: int) -> Tensor:
        b = n_sequences
        out = torch.logsumexp(z, dim=dims, keepdim=True)
        precise = z.detach().to(torch.promote_types(z.dtype, torch.float32))
        # The pair's totals at float32 or better: a reduced-precision output's rounding would scale with the gap.
        total = torch.logsumexp(precise, dim=dims, keepdim=True)
        z_in, z_ref = precise[:b].unsqueeze(1), pairs(precise[b:], b)
        total_in, total_ref = total[:b].unsqueeze(1), pairs(total[b:], b)
        shift = torch.maximum(total_in, total_ref)
        term_in, term_ref = torch.exp(z_in - shift), torch.exp(z_ref - shift)
        delta = z_in - z_ref
        # Equal values have no difference, -inf ones too (a mask at the sequence and its reference).
        tiny = delta.abs() <= SECANT_FALLBACK * torch.maximum(z_in.abs(), z_ref.abs()).clamp(max=1.0)
        slope = torch.where(tiny | (z_in == z_ref), term_in, (term_in - term_ref) / delta)
        gap = (total_in - total_ref).abs()
        log_slope = torch.where(gap > 0, gap / -torch.expm1(-gap), torch.ones_like(gap))
        ctx.save_for_backward((log_slope * slope).reshape(z[b:].shape).to(z.dtype))
        ctx.n_sequences = b
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        return pair_backward(ctx, grad), None, None


def _logsumexp(mode: DeepLiftMode, z: Tensor, dims: tuple[int, ...]) -> Tensor:
    """log Σ exp(z) over ``dims`` (kept), exact for every pair whatever the gap between its rows' maxima."""
    mode._check_rows(mode.operation, z)
    out = _LogSumExpFunction.apply(z, dims, mode._n_sequences)
    mark_varying(out)
    return out


def _cast(z: Tensor, dtype: torch.dtype | None) -> Tensor:
    if dtype is None:
        return z
    out = z.to(dtype)
    mark_varying(out)
    return out


def logsumexp(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``torch.logsumexp``: exact, with the Rescale chain through exp, the sum and log taken per pair."""
    z = _only_input(mode, args, kwargs)
    z, dims, transposed = _reduction_dims(mode, _argument(args, kwargs, 1, "dim"), z)
    out = _logsumexp(mode, z, dims)
    if not _argument(args, kwargs, 2, "keepdim", False):
        out = out.squeeze(dims)  # the reduced positions gone, the batch is in front as the model's result
    elif transposed:
        out = out.transpose(0, 1)
    mark_varying(out)
    return out


def log_softmax(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``log_softmax``: z − logsumexp(z), exact."""
    z = _cast(_only_input(mode, args, kwargs), kwargs.get("dtype"))
    z, dims, transposed = _reduction_dims(mode, _argument(args, kwargs, 1, "dim"), z)
    out = z - _logsumexp(mode, z, dims)
    out = out.transpose(0, 1) if transposed else out
    mark_varying(out)
    return out


def softmax(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``softmax``: exp(z − logsumexp(z)), exact (Rescale at the final exponential too)."""
    z = _cast(_only_input(mode, args, kwargs), kwargs.get("dtype"))
    z, dims, transposed = _reduction_dims(mode, _argument(args, kwargs, 1, "dim"), z)
    centred = z - _logsumexp(mode, z, dims)
    mark_varying(centred)
    out = mode.rescale(centred, torch.exp)
    if transposed:
        out = out.transpose(0, 1)
        mark_varying(out)
    return out


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
    out = _standardised(mode, z, dims, eps, centre=not rms)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    mark_varying(out)
    return out


def _sqrt(value: Tensor) -> Tensor:
    """√value with a zero derivative at 0 (a channel constant over the sequence and its references): the
    Rescale rule falls back to the derivative where the difference vanishes, and √'s is infinite at 0."""
    return torch.sqrt(value.clamp_min(torch.finfo(value.dtype).tiny))


def absolute(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``abs``: Rescale for a real tensor; for a complex one (a Fourier transform's magnitude),
    √(re² + im²), exact (Rescale at the squares and the root)."""
    z = _argument(args, kwargs, 0, "input")
    if not (isinstance(z, Tensor) and z.is_complex() and is_varying(z)):
        return elementwise(mode, func, args, kwargs)
    parts = torch.view_as_real(z)
    mark_varying(parts)
    squares = mode.rescale(parts, torch.square).sum(dim=-1)
    mark_varying(squares)
    return mode.rescale(squares, _sqrt)


def _centred(z: Tensor, dims: tuple[int, ...]) -> Tensor:
    """z − mean z over ``dims``: linear."""
    centred = z - z.mean(dim=dims, keepdim=True)
    mark_varying(centred)
    return centred


def _square_sum(mode: DeepLiftMode, z: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Σ z² over ``dims`` (kept): Rescale at the square, a sum."""
    out = mode.rescale(z, torch.square).sum(dim=dims, keepdim=True)
    mark_varying(out)
    return out


def _finish_reduction(out: Tensor, dims: tuple[int, ...], keepdim: bool, transposed: bool) -> Tensor:
    """A reduction's result kept over ``dims``, squeezed unless ``keepdim``, the batch brought back."""
    if not keepdim:
        out = out.squeeze(dims)
    elif transposed:
        out = out.transpose(0, 1)
    mark_varying(out)
    return out


def variance(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``var`` and ``std`` over explicit axes: Σ (z − mean)² / (n − correction), exact, and its square root
    by Rescale (hand-written layer norms divide by ``std``)."""
    z = _only_input(mode, args, kwargs)
    rest, dim, unbiased, keepdim = list(args[1:]), kwargs.get("dim"), kwargs.get("unbiased"), False
    if rest and isinstance(rest[0], bool):  # var(input, unbiased)
        unbiased = rest.pop(0)
    elif rest:  # var(input, dim, unbiased, keepdim)
        dim = rest.pop(0)
        unbiased = rest.pop(0) if rest else unbiased
        keepdim = rest.pop(0) if rest else keepdim
    keepdim = kwargs.get("keepdim", keepdim)
    correction = kwargs.get("correction", 0 if unbiased is False else 1)
    z, dims, transposed = _reduction_dims(mode, dim, z)
    count = 1
    for d in dims:
        count *= z.shape[d]
    out = _square_sum(mode, _centred(z, dims), dims) / max(count - correction, 0)
    mark_varying(out)
    if mode.operation == "std":
        out = mode.rescale(out, _sqrt)
    return _finish_reduction(out, dims, keepdim, transposed)


def _p_norm(mode: DeepLiftMode, z: Tensor, p: Any, dims: tuple[int, ...]) -> Tensor:
    """(Σ |z|^p)^(1/p) over ``dims`` (kept), Rescale at the power and at the root."""
    p = 2.0 if p in (None, "fro") else p
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 < p < float("inf"):
        raise mode.refuse(f"only finite p > 0 is supported, not p={p!r}; write an infinity norm as "
                          "z.abs().amax(dim)")
    powered = mode.rescale(z, torch.square if p == 2 else lambda v: v.abs() ** p)
    total = powered.sum(dim=dims, keepdim=True)
    mark_varying(total)
    return mode.rescale(total, _sqrt if p == 2 else lambda v: v.clamp_min(torch.finfo(v.dtype).tiny) ** (1 / p))


def norm(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``norm`` and ``linalg.vector_norm`` over explicit axes: (Σ |z|^p)^(1/p), exact."""
    z = _only_input(mode, args, kwargs)
    vector = mode.operation == "linalg_vector_norm"
    p = _argument(args, kwargs, 1, "ord" if vector else "p", 2.0 if vector else "fro")
    z = _cast(z, kwargs.get("dtype"))
    z, dims, transposed = _reduction_dims(mode, _argument(args, kwargs, 2, "dim"), z)
    out = _p_norm(mode, z, p, dims)
    return _finish_reduction(out, dims, _argument(args, kwargs, 3, "keepdim", False), transposed)


def normalize(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``F.normalize``: z / max(‖z‖_p, eps) along ``dim``, exact (the quotient by Rescale and the product
    rule)."""
    z = _only_input(mode, args, kwargs)
    p, dim = _argument(args, kwargs, 1, "p", 2.0), _argument(args, kwargs, 2, "dim", 1)
    eps = _argument(args, kwargs, 3, "eps", 1e-12)
    base, dims, transposed = _reduction_dims(mode, dim, z)
    length = _p_norm(mode, base, p, dims)
    if transposed:
        length = length.transpose(0, 1)
        mark_varying(length)
    out = mode.product(torch.mul, z, mode.rescale(length, lambda v: 1 / v.clamp_min(eps)))
    mark_varying(out)
    return out


def _standardised(mode: DeepLiftMode, z: Tensor, dims: tuple[int, ...], eps: float, centre: bool = True) -> Tensor:
    """(z − mean) · rsqrt(mean of squares + eps) over ``dims`` (the biased variance), layer norm's
    normalisation; without ``centre``, z · rsqrt(mean(z²) + eps), RMS norm's. The centred values are linear in
    z, the squares and the rsqrt take Rescale, their product the two-factor rule."""
    centred = _centred(z, dims) if centre else z
    count = 1
    for d in dims:
        count *= z.shape[d]
    variance = _square_sum(mode, centred, dims) / count
    mark_varying(variance)
    out = mode.product(torch.mul, centred, mode.rescale(variance, lambda v: torch.rsqrt(v + eps)))
    mark_varying(out)
    return out


def _channel_affine(out: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """``out`` · w + b with one weight and bias per channel (axis 1)."""
    shape = (1, -1) + (1,) * (out.dim() - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    mark_varying(out)
    return out


def group_norm(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``group_norm`` (``nn.GroupNorm``): layer norm over each group of channels and the positions, then
    one affine per channel, exact."""
    z = _only_input(mode, args, kwargs)
    groups = _argument(args, kwargs, 1, "num_groups")
    weight, bias = _argument(args, kwargs, 2, "weight"), _argument(args, kwargs, 3, "bias")
    eps = _argument(args, kwargs, 4, "eps", 1e-5)
    grouped = z.reshape(z.shape[0], groups, -1)
    mark_varying(grouped)
    out = _standardised(mode, grouped, (2,), eps).reshape(z.shape)
    return _channel_affine(out, weight, bias)


def instance_norm(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``instance_norm`` (``nn.InstanceNorm1d``): each channel standardised over the positions of its own
    sequence, then an affine per channel, exact; with running statistics it is linear, as batch norm."""
    z = _only_input(mode, args, kwargs)
    # F.instance_norm(input, running_mean, running_var, weight, bias, ...); torch.instance_norm (a
    # TorchScript node) takes weight and bias first.
    names = ("running_mean", "running_var", "weight", "bias") if func is torch.nn.functional.instance_norm \
        else ("weight", "bias", "running_mean", "running_var")
    values = {name: _argument(args, kwargs, i + 1, name) for i, name in enumerate(names)}
    use_input_stats = _argument(args, kwargs, 5, "use_input_stats", True)
    eps = _argument(args, kwargs, 7, "eps", 1e-5)
    if not use_input_stats:
        return mode._linear(func, mode.operation, args, kwargs, [z])
    out = _standardised(mode, z, tuple(range(2, z.dim())), eps)
    return _channel_affine(out, values["weight"], values["bias"])


def glu(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``glu``: a · sigmoid(b) of the two halves of z along ``dim``, exact (Rescale at the sigmoid, the
    two-factor rule at the product), as a gated unit written out."""
    z = _only_input(mode, args, kwargs)
    dim = _argument(args, kwargs, 1, "dim", -1)
    if dim % z.dim() == 0:
        raise mode.refuse(mode.axis_zero_reason(z))
    value, gate = z.chunk(2, dim=dim)
    mark_varying(value)
    mark_varying(gate)
    out = mode.product(torch.mul, value, mode.rescale(gate, torch.sigmoid))
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
    if mode.operation.endswith("_") and not mode.operation.startswith("_"):
        return mode.product_into(torch.mul, numerator, inverse)
    return mode.product(torch.mul, numerator, inverse)


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


def _matmul(mode: DeepLiftMode, first: Tensor, second: Tensor) -> Tensor:
    if is_varying(first) and is_varying(second):
        return mode.product(torch.matmul, first, second)
    out = first @ second
    mark_varying(out)
    return out


def scaled_dot_product_attention(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``F.scaled_dot_product_attention``: softmax(q · kᵀ · scale + mask) · v, exact.

    The two matrix products take the two-factor rule, the softmax its composite rule; an additive
    float mask that does not depend on the input (-inf included) and ``is_causal`` are supported, dropout and
    boolean masks are refused.
    """
    query, key, value = (_argument(args, kwargs, i, name) for i, name in enumerate(("query", "key", "value")))
    mask = _argument(args, kwargs, 3, "attn_mask")
    if _argument(args, kwargs, 4, "dropout_p", 0.0) or kwargs.get("enable_gqa", False):
        raise mode.refuse("only dropout_p=0 and enable_gqa=False are supported; write the attention with tensor "
                          "operations")
    if mask is not None and (mask.dtype == torch.bool or is_varying(mask)):
        raise mode.refuse("only an additive float mask that does not depend on the input is supported")
    if _argument(args, kwargs, 5, "is_causal", False):
        if mask is not None:
            raise mode.refuse("is_causal with an attn_mask as well: torch refuses it too")
        # torch's causal mask: position i attends to positions up to i (aligned at the top left).
        length, source = query.shape[-2], key.shape[-2]
        allowed = torch.ones(length, source, dtype=torch.bool, device=query.device).tril()
        mask = torch.zeros(length, source, dtype=query.dtype, device=query.device).masked_fill(~allowed, -torch.inf)
    return _attention(mode, query, key, value, kwargs.get("scale") or query.shape[-1] ** -0.5, mask)[0]


def _attention(mode: DeepLiftMode, query: Tensor, key: Tensor, value: Tensor, scale: float,
               mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """softmax(q · kᵀ · scale + mask) · v and the softmax weights, with the exact rules."""
    transposed = key.transpose(-2, -1)
    if not (is_varying(query) or is_varying(key)):
        weights = torch.softmax(query @ transposed * scale + (0 if mask is None else mask), dim=-1)
        return _matmul(mode, weights, value), weights
    if is_varying(key):
        mark_varying(transposed)
    logits = _matmul(mode, query, transposed) * scale
    if mask is not None:
        logits = logits + mask
    mark_varying(logits)
    centred = logits - _logsumexp(mode, logits, (logits.dim() - 1,))
    mark_varying(centred)
    weights = mode.rescale(centred, torch.exp)
    return _matmul(mode, weights, value), weights


def multi_head_attention(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> tuple[Tensor, Any]:
    """``F.multi_head_attention_forward`` (``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer``).

    Projections are linear, attention takes :func:`scaled_dot_product_attention`'s rules. Supported
    without ``bias_k``/``bias_v``, ``add_zero_attn``, key padding masks, causal or boolean masks and
    static keys, and with dropout off (eval mode).
    """
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = bound.arguments
    mask = arguments["attn_mask"]
    unsupported = [name for name in ("bias_k", "bias_v", "key_padding_mask", "static_k", "static_v")
                   if arguments[name] is not None]
    unsupported += [name for name in ("add_zero_attn", "is_causal") if arguments[name]]
    if arguments["training"] and arguments["dropout_p"]:
        unsupported.append("dropout in training mode")
    if mask is not None and (mask.dtype == torch.bool or is_varying(mask)):
        unsupported.append("a boolean or input-dependent attn_mask")
    if arguments["query"].dim() != 3:
        unsupported.append("unbatched input")
    if unsupported:
        raise mode.refuse(f"genomatt's attention rule does not support {', '.join(unsupported)}")
    heads = arguments["num_heads"]
    if arguments["use_separate_proj_weight"]:
        projections = [arguments[f"{name}_proj_weight"] for name in ("q", "k", "v")]
    else:
        projections = list(arguments["in_proj_weight"].chunk(3))
    biases = list(arguments["in_proj_bias"].chunk(3)) if arguments["in_proj_bias"] is not None else [None] * 3
    split = []
    for tensor, weight, bias in zip((arguments["query"], arguments["key"], arguments["value"]), projections, biases):
        # (L, N, E) → (N, heads, L, E / heads), the batch first as the rules need it.
        projected = torch.nn.functional.linear(tensor.transpose(0, 1), weight, bias)
        projected = projected.reshape(*projected.shape[:2], heads, -1).transpose(1, 2)
        if is_varying(tensor):
            mark_varying(projected)
        split.append(projected)
    query, key, value = split
    if mask is not None and mask.dim() == 3:
        mask = mask.reshape(query.shape[0], heads, *mask.shape[1:])
    attended, weights = _attention(mode, query, key, value, query.shape[-1] ** -0.5, mask)
    attended = attended.transpose(1, 2).reshape(attended.shape[0], attended.shape[2], -1)
    out = torch.nn.functional.linear(attended, arguments["out_proj_weight"], arguments["out_proj_bias"]).transpose(0, 1)
    mark_varying(out)
    if not arguments["need_weights"]:
        return out, None
    if arguments["average_attn_weights"]:
        weights = weights.mean(dim=1)
    mark_varying(weights)
    return out, weights


def _times(mode: DeepLiftMode, first: Tensor | float, second: Tensor) -> Tensor:
    """first · second: the product rule when both depend on the input."""
    if isinstance(first, Tensor) and is_varying(first) and is_varying(second):
        return mode.product(torch.mul, first, second)
    out = first * second
    if is_varying(second) or (isinstance(first, Tensor) and is_varying(first)):
        mark_varying(out)
    return out


def _plus(*terms: Tensor) -> Tensor:
    out = terms[0]
    for term in terms[1:]:
        out = out + term
    if any(is_varying(term) for term in terms if isinstance(term, Tensor)):
        mark_varying(out)
    return out


def _gru_step(mode: DeepLiftMode, x: Tensor, state: Tensor, weights: list) -> tuple[Tensor, Tensor]:
    w_ih, w_hh, b_ih, b_hh = weights
    input_r, input_z, input_n = torch.nn.functional.linear(x, w_ih, b_ih).chunk(3, dim=1)
    hidden_r, hidden_z, hidden_n = torch.nn.functional.linear(state, w_hh, b_hh).chunk(3, dim=1)
    for tensor, source in ((input_r, x), (input_z, x), (input_n, x), (hidden_r, state), (hidden_z, state),
                           (hidden_n, state)):
        if is_varying(source):
            mark_varying(tensor)
    reset = mode.rescale(_plus(input_r, hidden_r), torch.sigmoid)
    update = mode.rescale(_plus(input_z, hidden_z), torch.sigmoid)
    candidate = mode.rescale(_plus(input_n, _times(mode, reset, hidden_n)), torch.tanh)
    keep = 1.0 - update
    mark_varying(keep)
    state = _plus(_times(mode, keep, candidate), _times(mode, update, state))
    return state, state


def _lstm_step(mode: DeepLiftMode, x: Tensor, state: tuple[Tensor, Tensor], weights: list) -> tuple[Tensor, tuple]:
    w_ih, w_hh, b_ih, b_hh = weights
    hidden, cell = state
    gates_input = torch.nn.functional.linear(x, w_ih, b_ih)
    gates_hidden = torch.nn.functional.linear(hidden, w_hh, b_hh)
    if is_varying(x):
        mark_varying(gates_input)
    if is_varying(hidden):
        mark_varying(gates_hidden)
    parts = [_plus(a, b) for a, b in zip(gates_input.chunk(4, dim=1), gates_hidden.chunk(4, dim=1))]
    for part in parts:
        mark_varying(part)
    input_gate, forget_gate, output_gate = (mode.rescale(parts[i], torch.sigmoid) for i in (0, 1, 3))
    candidate = mode.rescale(parts[2], torch.tanh)
    cell = _plus(_times(mode, forget_gate, cell), _times(mode, input_gate, candidate))
    hidden = _times(mode, output_gate, mode.rescale(cell, torch.tanh))
    return hidden, (hidden, cell)


def recurrent(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> tuple:
    """``gru`` and ``lstm`` (``nn.GRU``, ``nn.LSTM``): the cell equations step by step, exact.

    Gates take Rescale (sigmoid, tanh) and every product of two input-dependent tensors the
    two-factor rule. Packed sequences, projections (``proj_size``) and training-mode dropout are
    refused.
    """
    lstm = mode.operation == "lstm"
    if len(args) != 9 or not isinstance(args[2], (list, tuple)):
        raise mode.refuse("packed sequences are not supported; pad the batch")
    inputs, hx, params, has_biases, layers, dropout, training, bidirectional, batch_first = args
    if training and dropout:
        raise mode.refuse("dropout between layers runs in training mode")
    directions = 2 if bidirectional else 1
    per_layer = 4 if has_biases else 2
    if len(params) != layers * directions * per_layer:
        raise mode.refuse("projections (proj_size) are not supported")
    sequence = inputs if batch_first else inputs.transpose(0, 1)
    if is_varying(inputs):
        mark_varying(sequence)
    initial = hx if lstm else (hx,)
    finals: list[list[Tensor]] = [[] for _ in initial]
    for layer in range(layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            weights = list(params[index * per_layer:(index + 1) * per_layer])
            if not has_biases:
                weights += [None, None]
            state = tuple(h[index] for h in initial)
            state = state if lstm else state[0]
            steps = range(sequence.shape[1]) if direction == 0 else reversed(range(sequence.shape[1]))
            produced = {}
            for t in steps:
                step = sequence[:, t]
                if is_varying(sequence):
                    mark_varying(step)
                produced[t], state = (_lstm_step if lstm else _gru_step)(mode, step, state, weights)
            for final, value in zip(finals, state if lstm else (state,)):
                final.append(value)
            stacked = torch.stack([produced[t] for t in range(sequence.shape[1])], dim=1)
            mark_varying(stacked)
            outputs.append(stacked)
        sequence = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
        mark_varying(sequence)
    output = sequence if batch_first else sequence.transpose(0, 1)
    mark_varying(output)
    states = []
    for final in finals:
        state = torch.stack(final)
        mark_varying(state)
        states.append(state)
    return (output, *states)


def _binary_or_axis(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Any:
    if mode._is_binary_max(args, kwargs):
        return extremum(mode, func, args, kwargs)
    return BUILT_IN[mode.operation](mode, func, args, kwargs)


def _explained_through(mode: DeepLiftMode, func: Callable, args: tuple, kwargs: dict) -> Tensor:
    """``detach()`` in a model: explained through, as the model computes (:meth:`DeepLiftMode.pass_through`)."""
    return mode.pass_through(func, args, kwargs)


BUILT_IN = basic_rules()

_COMPOSITE: dict[str, Rule] = {
    "softmax": softmax, "log_softmax": log_softmax, "logsumexp": logsumexp,
    "layer_norm": layer_norm, "rms_norm": layer_norm, "glu": glu, "group_norm": group_norm,
    "instance_norm": instance_norm, "var": variance, "std": variance, "norm": norm, "linalg_vector_norm": norm,
    "normalize": normalize, "abs": absolute,
    "div": divide, "div_": divide, "divide": divide, "true_divide": divide, "__truediv__": divide,
    "__itruediv__": divide, "__div__": divide,
    "maximum": extremum, "minimum": extremum, "fmax": extremum, "fmin": extremum,
    "max": _binary_or_axis, "min": _binary_or_axis, "profile_logit_scaling": profile_logit_scaling,
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "multi_head_attention_forward": multi_head_attention, "gru": recurrent, "lstm": recurrent,
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
    rules["detach"] = _explained_through
    for name, rule in (user_rules or {}).items():
        if not isinstance(name, str) or not callable(rule):
            raise ConfigError(f"rules must map operation names to callables rule(mode, func, args, kwargs); "
                              f"got {name!r}: {type(rule).__name__}")
        rules[name] = rule
    return rules
