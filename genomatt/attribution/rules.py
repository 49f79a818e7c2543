"""DeepLIFT rules: how a difference from the reference crosses each nonlinear operation.

Every rule works on one batch layout: ``b`` sequences followed by their references, ``r`` each::

    rows 0 .. b-1                 the sequences x_1 .. x_b
    rows b + i*r .. b + i*r + r-1  the r references of sequence i

so an operation computes each sequence once for all its references. The reference rows carry the
(sequence, reference) pairs through the backward pass: a rule maps the multiplier of its output,
for each pair, to the multiplier of its input for the same pair, using the activations of the
pair's sequence row. Sequence rows receive no gradient. Linear operations need no rule, since their
multiplier is their ordinary gradient for every pair.

Where a rule divides by a difference that is (near) zero, it falls back to the derivative at the
sequence, the convention of the DeepLIFT reference implementation and of tangermeme, shap and
captum; a multiplier there changes no sum of contributions, only the hypothetical contributions
of absent bases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genomatt.attribution import kernels

SECANT_FALLBACK = 1e-6
"""Below this |difference|, times min(1, the larger |input| of the pair), the Rescale rule uses the derivative at the
sequence, not the secant. Relative for inputs under 1: a function steep near 0 (a logarithm of tiny sums, a
user rule's) keeps its secant, where its derivative would be far off."""


class NotElementwise(ValueError):
    """An operation treated as elementwise returned a tensor of another shape than its input."""


def pairs(ref: Tensor, n_sequences: int) -> Tensor:
    """View reference rows ``(b * r, *S)`` as ``(b, r, *S)``."""
    return ref.reshape(n_sequences, -1, *ref.shape[1:])


def _high_precision(tensor: Tensor) -> Tensor:
    # Differences of half-precision activations lose most of their digits; divide in float32.
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def slope(function: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """Derivative of an elementwise function at every element of ``z``."""
    with torch.enable_grad():
        leaf = z.detach().requires_grad_(True)
        out = function(leaf)
        if not out.requires_grad:
            return torch.zeros_like(z)
        (derivative,) = torch.autograd.grad(out, leaf, torch.ones_like(out))
    return derivative


def rescale_multiplier(z_in: Tensor, z_ref: Tensor, out_in: Tensor, out_ref: Tensor,
                       slope_in: Callable[[], Tensor]) -> Tensor:
    """Rescale multiplier Δout / Δz of an elementwise function for every pair.

    Parameters
    ----------
    z_in, out_in : Tensor, shape (b, *S)
        Input and output of the function at the sequences.
    z_ref, out_ref : Tensor, shape (b * r, *S)
        Input and output at the references.
    slope_in : callable
        Returns the derivative of the function at the sequences, shape (b, *S).

    Returns
    -------
    Tensor, shape (b * r, *S), dtype of ``z_ref``
        The secant, or the derivative at the sequence where |Δz| <= :data:`SECANT_FALLBACK` · min(1, max |z|).
    """
    if kernels.usable(z_in, z_ref, out_in, out_ref):
        return kernels.rescale_multiplier(z_in, z_ref, out_in, out_ref, slope_in, SECANT_FALLBACK)
    b = z_in.shape[0]
    delta_in = _high_precision(z_in).unsqueeze(1) - pairs(_high_precision(z_ref), b)
    delta_out = _high_precision(out_in).unsqueeze(1) - pairs(_high_precision(out_ref), b)
    secant = delta_out.div_(delta_in)
    magnitude = torch.maximum(_high_precision(z_in).abs().unsqueeze(1), pairs(_high_precision(z_ref), b).abs())
    # Equal inputs have no difference, infinite ones too (a mask of -inf at the sequence and its reference).
    same = z_in.unsqueeze(1) == pairs(z_ref, b)
    tiny = (delta_in.abs_() <= SECANT_FALLBACK * magnitude.clamp_(max=1.0)) | same
    secant = torch.where(tiny, slope_in().unsqueeze(1).to(secant.dtype), secant)
    return secant.reshape(z_ref.shape).to(z_ref.dtype)


class RescaleFunction(torch.autograd.Function):
    """An elementwise function whose backward multiplies each pair by its Rescale multiplier.

    ``forward(z, function, n_sequences, is_relu)`` returns ``function(z)`` for the whole batch;
    ``is_relu`` says that ``function`` is ``torch.relu``, which has a fused CPU kernel.
    """

    @staticmethod
    def forward(ctx, z: Tensor, function: Callable[[Tensor], Tensor], n_sequences: int, is_relu: bool) -> Tensor:
        b = n_sequences
        if is_relu and kernels.usable(z):
            out, multiplier = kernels.relu_rescale(z, b, SECANT_FALLBACK)
        else:
            out = function(z)
            if not isinstance(out, Tensor) or out.shape != z.shape:
                raise NotElementwise
            multiplier = rescale_multiplier(z[:b], z[b:], out[:b], out[b:], lambda: slope(function, z[:b]))
        ctx.save_for_backward(multiplier)
        ctx.n_sequences = b
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        return pair_backward(ctx, grad), None, None, None


def pair_backward(ctx: Any, grad: Tensor) -> Tensor:
    """The backward of a function whose forward saved each pair's multiplier (``ctx.saved_tensors``, the shape of
    its input's reference rows) and ``ctx.n_sequences``: the multipliers times ``grad`` (broadcast, as the
    output of a reduction that keeps its axes) at the references, 0 at the sequences."""
    (multiplier,) = ctx.saved_tensors
    b = ctx.n_sequences
    result = grad.new_empty((grad.shape[0], *multiplier.shape[1:]))
    result[:b] = 0
    torch.mul(grad[b:], multiplier, out=result[b:])
    return result


def reveal_cancel_multipliers(
    out_in: Tensor, z_ref: Tensor, out_ref: Tensor, positive: Tensor, negative: Tensor,
    function: Callable[[Tensor], Tensor],
) -> tuple[Tensor, Tensor]:
    """RevealCancel multipliers of an elementwise function (DeepLIFT paper, section 3.5.3).

    The input difference Δz of each pair is split into the sum ``positive`` of its positive terms
    and the sum ``negative`` of its negative terms; each part gets the average of its effect with
    and without the other part::

        Δy+ = ½ (f(z0 + Δz+) − f(z0)) + ½ (f(z) − f(z0 + Δz−))
        Δy− = ½ (f(z0 + Δz−) − f(z0)) + ½ (f(z) − f(z0 + Δz+))

    so that Δy+ + Δy− = f(z) − f(z0) exactly, and m+ = Δy+ / Δz+, m− = Δy− / Δz−.

    Parameters
    ----------
    out_in : Tensor, shape (b, *S)
        Output of the function at the sequences.
    z_ref, out_ref, positive, negative : Tensor, shape (b * r, *S)
        Input and output at the references and the two parts of each pair's input difference.
    function : callable
        The elementwise function.

    Returns
    -------
    multiplier_positive, multiplier_negative : Tensor, shape (b * r, *S)
        A part smaller than :data:`SECANT_FALLBACK` has no effect and takes multiplier 0, as in
        the original implementation (which divides its zero effect by a pseudocount).
    """
    b = out_in.shape[0]
    out_pair = out_in.unsqueeze(1).expand(pairs(out_ref, b).shape).reshape(out_ref.shape)
    with_positive = function(z_ref + positive)
    with_negative = function(z_ref + negative)
    gain_positive = 0.5 * ((with_positive - out_ref) + (out_pair - with_negative))
    gain_negative = 0.5 * ((with_negative - out_ref) + (out_pair - with_positive))
    multiplier_positive = torch.where(positive.abs() < SECANT_FALLBACK, 0.0, gain_positive / positive)
    multiplier_negative = torch.where(negative.abs() < SECANT_FALLBACK, 0.0, gain_negative / negative)
    return multiplier_positive, multiplier_negative


@dataclass(frozen=True)
class MaxReduction:
    """A max over windows, seen as ``(B, M, S)`` inputs reduced to ``(B, M, So)`` outputs.

    ``compute(z)`` returns the output and the argmax indices in the caller's shapes;
    ``outputs(out)`` views either as ``(B, M, So)``, where an index points into the last axis of
    ``inputs(z)``. Max pooling flattens the spatial axes (its indices already index them); a max
    over one axis moves that axis last.
    """

    compute: Callable[[Tensor], tuple[Tensor, Tensor]]
    inputs: Callable[[Tensor], Tensor]
    outputs: Callable[[Tensor], Tensor]
    restore: Callable[[Tensor, torch.Size], Tensor]
    fused: Callable[[Tensor, int], tuple[Tensor, Tensor, Tensor, Tensor]] | None = None
    """Optional CPU kernel ``(z, b) -> (out, indices, coefficient_in, coefficient_ref)``."""
    whole: bool = False
    """Each output is the max of a whole row of ``inputs(z)`` (a global max pool, a max over an axis)."""


def pooling_reduction(pool_with_indices: Callable[[Tensor], tuple[Tensor, Tensor]],
                      fused: Callable[[Tensor, int], tuple[Tensor, Tensor, Tensor, Tensor]] | None = None,
                      whole: bool = False) -> MaxReduction:
    """The :class:`MaxReduction` of a max pooling call (indices index the flattened spatial axes);
    ``whole`` when its one window spans the whole input (a global max pool)."""
    return MaxReduction(
        compute=pool_with_indices,
        inputs=lambda z: z.flatten(2),
        outputs=lambda out: out.flatten(2),
        restore=lambda grad, shape: grad.reshape(shape),
        fused=fused,
        whole=whole,
    )


def axis_reduction(dim: int, keepdim: bool) -> MaxReduction:
    """The :class:`MaxReduction` of ``torch.max(z, dim, keepdim)``; ``dim`` > 0 (not the batch axis)."""
    def compute(z: Tensor) -> tuple[Tensor, Tensor]:
        out, indices = torch.max(z, dim, keepdim=keepdim)
        return out, indices

    def inputs(z: Tensor) -> Tensor:
        return z.movedim(dim, -1).reshape(z.shape[0], -1, z.shape[dim])

    def outputs(out: Tensor) -> Tensor:
        return out.reshape(out.shape[0], -1, 1)

    def restore(grad: Tensor, shape: torch.Size) -> Tensor:
        moved = list(shape)
        moved.append(moved.pop(dim))
        return grad.reshape(moved).movedim(-1, dim)

    return MaxReduction(compute=compute, inputs=inputs, outputs=outputs, restore=restore, whole=True)


class CrossMaxFunction(torch.autograd.Function):
    """A max over windows whose backward applies the cross-max rule to every pair.

    With ``top = max(out_in, out_ref)``, the output difference of a window splits into
    ``top − out_ref`` (≥ 0), credited to the sequence's argmax, and ``out_in − top`` (≤ 0),
    credited to the reference's argmax; an input position's multiplier is the sum of the credits
    it receives, over every window it wins (windows may overlap), divided by its own difference.
    The credits sum to the output difference, so the rule is exact. Where an input's difference
    is exactly zero the multiplier is the ordinary gradient at the sequence.

    A credit is nonzero only where the input's difference is not (the sequence's argmax holds
    ``out_in``, which exceeds the reference there whenever ``top − out_ref > 0``; likewise for the
    reference), so each window's two coefficients — credit over difference at its two argmaxes —
    are computed at the size of the output, and the backward pass is two scatter-adds.

    ``forward(z, reduction, n_sequences)`` returns the output and argmax of the whole batch in
    the caller's shapes.
    """

    @staticmethod
    def forward(ctx, z: Tensor, reduction: MaxReduction, n_sequences: int) -> tuple[Tensor, Tensor]:
        b = n_sequences
        if reduction.fused is not None and kernels.usable(z):
            out, indices, coefficient_in, coefficient_ref = reduction.fused(z, b)
            index = reduction.outputs(indices)
            ctx.save_for_backward(coefficient_in, coefficient_ref, index[:b], pairs(index[b:], b))
            ctx.reduction, ctx.n_sequences, ctx.shape = reduction, b, z.shape
            ctx.inputs_shape = reduction.inputs(z).shape
            ctx.mark_non_differentiable(indices)
            return out, indices
        out, indices = reduction.compute(z)
        inputs, values, index = reduction.inputs(z), reduction.outputs(out), reduction.outputs(indices)
        inputs_ref, values_ref, index_ref = (pairs(tensor[b:], b) for tensor in (inputs, values, index))
        if kernels.usable(z, index):
            coefficient_in, coefficient_ref = kernels.cross_max_coefficients(
                inputs[:b], values[:b], index[:b], inputs_ref, values_ref, index_ref)
        else:
            coefficient_in, coefficient_ref = _cross_max_coefficients(
                inputs[:b], values[:b], index[:b], inputs_ref, values_ref, index_ref)
        ctx.save_for_backward(coefficient_in, coefficient_ref, index[:b], index_ref)
        ctx.reduction, ctx.n_sequences, ctx.shape, ctx.inputs_shape = reduction, b, z.shape, inputs.shape
        ctx.mark_non_differentiable(indices)
        return out, indices

    @staticmethod
    def backward(ctx, grad: Tensor, _grad_indices: Tensor):
        coefficient_in, coefficient_ref, index_in, index_ref = ctx.saved_tensors
        b = ctx.n_sequences
        grad = pairs(ctx.reduction.outputs(grad)[b:], b)
        multiplier = torch.empty(ctx.inputs_shape, dtype=grad.dtype, device=grad.device)
        multiplier[:b] = 0
        if kernels.usable(grad, coefficient_in):
            kernels.route_cross_max(grad, coefficient_in, index_in, coefficient_ref, index_ref,
                                    pairs(multiplier[b:], b))
        else:
            routed = pairs(multiplier[b:], b)
            routed.zero_()
            routed.scatter_add_(-1, index_in.unsqueeze(1).expand(index_ref.shape),
                                (grad * coefficient_in).to(grad.dtype))
            routed.scatter_add_(-1, index_ref, (grad * coefficient_ref).to(grad.dtype))
        return ctx.reduction.restore(multiplier, ctx.shape), None, None


def max_shapley_values(x: Tensor, r: Tensor) -> Tensor:
    """Shapley values of ``max`` over the last axis, each position a player moving from ``r`` to ``x``.

    The game is v(S) = max(x_i for i in S, r_j for j not in S): Max SHAP (Lundberg & Lee 2017, "A unified
    approach to interpreting model predictions"). Written as an integral over thresholds t,
    max = const + ∫ 1[some y_i > t] dt, and at each t the indicator is a game on the positions with
    x_i > t (set A, a of them) and r_i > t (set B, b of them): it is constant when some position is in
    both, and otherwise each position of A gets b!(a−1)!/(a+b)! and each of B −(b−1)!a!/(a+b)!. The
    thresholds above m* = max_i min(x_i, r_i) are the only ones where it varies, so only positions with
    max(x_i, r_i) > m* get a value; the values sum to max(x) − max(r).

    Parameters
    ----------
    x, r : Tensor, shape (..., S)
        The sequence's and the reference's values.

    Returns
    -------
    Tensor, shape (..., S), float64
        Each position's Shapley value.
    """
    shape = x.shape
    x, r = x.reshape(-1, shape[-1]).double(), r.reshape(-1, shape[-1]).double()
    phi = torch.zeros_like(x)
    floor = torch.minimum(x, r).amax(-1, keepdim=True)
    high = torch.maximum(x, r)
    k = int((high > floor).sum(-1).max()) if x.numel() else 0
    if k == 0:
        return phi.reshape(shape)
    top = high.topk(k, dim=-1).indices
    values = torch.cat([x.gather(-1, top), r.gather(-1, top)], -1)
    order = values.argsort(dim=-1, descending=True, stable=True)
    thresholds = values.gather(-1, order)
    from_x = (order < k).double()
    a, b = from_x.cumsum(-1), (1 - from_x).cumsum(-1)
    position = torch.empty_like(order).scatter_(-1, order, torch.arange(2 * k, device=x.device).expand_as(order))
    # A position is in both sets from the later of its two thresholds on.
    both = torch.zeros_like(thresholds).scatter_add_(
        -1, torch.maximum(position[:, :k], position[:, k:]), torch.ones_like(thresholds[:, :k])).cumsum(-1)
    below = torch.maximum(torch.cat([thresholds[:, 1:], floor], -1), floor)
    width = torch.where(both == 0, (thresholds - below).clamp(min=0), 0.0)
    log_total = torch.lgamma(a + b + 1)
    credit_a = torch.where(a > 0, width * torch.exp(torch.lgamma(b + 1) + torch.lgamma(a.clamp(min=1)) - log_total), 0.0)
    credit_b = torch.where(b > 0, -width * torch.exp(torch.lgamma(b.clamp(min=1)) + torch.lgamma(a + 1) - log_total), 0.0)
    # A position collects the credits of every threshold at or below its own value.
    suffix_a = credit_a.flip(-1).cumsum(-1).flip(-1)
    suffix_b = credit_b.flip(-1).cumsum(-1).flip(-1)
    phi.scatter_(-1, top, suffix_a.gather(-1, position[:, :k]) + suffix_b.gather(-1, position[:, k:]))
    return phi.reshape(shape)


class ShapleyMaxFunction(torch.autograd.Function):
    """A max over a whole axis whose backward gives each position its Shapley value (:func:`max_shapley_values`).

    A position's multiplier is its Shapley value divided by its own difference; where the difference is
    zero, the Shapley value is zero and the multiplier is the ordinary gradient at the sequence (1 at the
    sequence's argmax), as for cross-max. Unlike cross-max, which credits the whole change to the
    sequence's argmax, two positions that each reach the maximum share it: a sequence with two copies of
    a motif credits both, where a max credits one.

    ``forward(z, reduction, n_sequences)`` returns the output and argmax of the whole batch in the
    caller's shapes; ``reduction`` must reduce each row of ``inputs(z)`` to one value.
    """

    @staticmethod
    def forward(ctx, z: Tensor, reduction: MaxReduction, n_sequences: int) -> tuple[Tensor, Tensor]:
        b = n_sequences
        out, indices = reduction.compute(z)
        inputs = reduction.inputs(z)
        argmax_in = reduction.outputs(indices)[:b]
        if kernels.usable(z, indices):
            coefficient = kernels.shapley_max_coefficients(inputs[:b], pairs(inputs[b:], b), argmax_in[..., 0])
        else:
            coefficient = _shapley_max_coefficients(inputs[:b], pairs(inputs[b:], b), argmax_in)
        ctx.save_for_backward(coefficient.to(_high_precision(z).dtype))
        ctx.reduction, ctx.n_sequences, ctx.shape, ctx.inputs_shape = reduction, b, z.shape, inputs.shape
        ctx.mark_non_differentiable(indices)
        return out, indices

    @staticmethod
    def backward(ctx, grad: Tensor, _grad_indices: Tensor):
        (coefficient,) = ctx.saved_tensors
        b = ctx.n_sequences
        grad = pairs(ctx.reduction.outputs(grad)[b:], b)
        multiplier = torch.empty(ctx.inputs_shape, dtype=grad.dtype, device=grad.device)
        multiplier[:b] = 0
        torch.mul(grad, coefficient.to(grad.dtype), out=pairs(multiplier[b:], b))
        return ctx.reduction.restore(multiplier, ctx.shape), None, None


def _shapley_max_coefficients(inputs_in: Tensor, inputs_ref: Tensor, argmax_in: Tensor) -> Tensor:
    """:func:`genomatt.attribution.kernels.shapley_max_coefficients` in torch, for tensors the kernel does not take
    (``argmax_in`` keeps its trailing axis of length 1)."""
    x = inputs_in.unsqueeze(1).expand_as(inputs_ref)
    phi = max_shapley_values(x, inputs_ref)
    difference = x.double() - inputs_ref.double()
    argmax = torch.zeros_like(phi).scatter_(-1, argmax_in.unsqueeze(1).expand(*inputs_ref.shape[:-1], 1), 1.0)
    return torch.where(difference == 0, argmax, phi / torch.where(difference == 0, 1.0, difference))


def _cross_max_coefficients(inputs_in: Tensor, values_in: Tensor, index_in: Tensor, inputs_ref: Tensor,
                            values_ref: Tensor, index_ref: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`genomatt.attribution.kernels.cross_max_coefficients` in torch, for tensors the kernel does not take.

    Same parameters and shapes; the coefficients are at least float32.
    """
    index_in = index_in.unsqueeze(1).expand(index_ref.shape)
    values_in = _high_precision(values_in).unsqueeze(1)
    values_ref = _high_precision(values_ref)
    top = torch.maximum(values_in, values_ref)
    # The sequence's argmax holds values_in and the reference's argmax holds values_ref.
    delta_at_in = values_in - _high_precision(torch.gather(inputs_ref, -1, index_in))
    inputs_in = inputs_in.unsqueeze(1).expand(*index_ref.shape[:2], *inputs_in.shape[1:])
    delta_at_ref = _high_precision(torch.gather(inputs_in, -1, index_ref)) - values_ref
    coefficient_in = torch.where(delta_at_in == 0, 1.0, (top - values_ref) / delta_at_in)
    coefficient_ref = torch.where(delta_at_ref == 0, 0.0, (values_in - top) / delta_at_ref)
    return coefficient_in, coefficient_ref
