"""DeepLIFT / DeepSHAP contributions of a PyTorch sequence model against shuffled references.

For a sequence x and a reference x0, DeepLIFT assigns every input position a multiplier m such
that the contributions m · (x − x0) sum exactly to f(x) − f(x0) ("summation-to-delta"). DeepSHAP
averages over several references, here dinucleotide shuffles of each sequence. The multipliers
come from one backward pass in which every nonlinearity uses a DeepLIFT rule instead of its
gradient (:mod:`genomatt.attribution.rules`); the rules are applied per call by intercepting the
forward pass (:mod:`genomatt.attribution.interception`), and operations without a rule are refused
before any output is produced.

Cost: each batch of sequences runs one forward pass without autograd (the sequences) and one
forward and backward pass over its (sequence, reference) pairs, where each pair is represented by
its reference row alone. The forward pass of a sequence is therefore shared by all its
references, and the total is close to one plain forward + backward over the pairs.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_leaves
from tqdm.auto import tqdm

from genomatt.attribution.choices import MAX_RULES, RULES
from genomatt.attribution.inputs import (
    AttributionResult,
    as_sequences,
    check_positive_int,
    output_reduction,
    reference_source,
)
from genomatt.attribution.interception import (
    AmbiguousBatchAxis,
    DeepLiftMode,
    is_varying,
    refuse_opaque_modules,
    varying_input,
)
from genomatt.attribution.outputs import output_scale, prepared, refuse_mixed_rows
from genomatt.attribution.torchscript import TorchScriptGraph
from genomatt.device import resolve_device
from genomatt.errors import ConfigError, GenomattError, ModelError, NonFiniteError

__all__ = [
    "DeepLiftShapResult",
    "deep_lift_shap",
    "hypothetical_contributions",
    "refuse_opaque_modules",
    "RuleProbe",
    "probe_rules",
    "sequences_per_batch",
]

DELTA_TOLERANCE = 1e-4
"""Default summation-to-delta tolerance, relative to the region's scale (see :func:`deep_lift_shap`)."""

DELTA_TOLERANCE_AUTOCAST = 5e-2
"""Default tolerance under bfloat16 / float16 autocast, whose activations keep ~3 digits."""

AUTOCAST_AGREEMENT = 0.2
"""Largest relative L2 distance, per target, of the contributions under autocast from float32's on the first
sequences of a call (:func:`deep_lift_shap`); a trained CNN under bfloat16 measures 0.01–0.03."""

# A progress bar appears (on a terminal) from this many (sequence, reference) pairs on.
_PROGRESS_PAIRS = 20_000


DeepLiftShapResult = AttributionResult
"""What :func:`deep_lift_shap` returns with ``return_delta=True``: the result type of every method."""


def hypothetical_contributions(multipliers: Tensor, references: Tensor) -> Tensor:
    """Project multipliers onto every base: the contribution each base would have at each position.

    A one-hot position switches from the reference's (fractional) base mix to base b, so its
    difference is (e_b − ref) and its contribution is m · (e_b − ref)::

        hyp[b, l] = m[b, l] − Σ_c m[c, l] · ref[c, l]

    Parameters
    ----------
    multipliers, references : Tensor, shape (..., 4, L)
        Multipliers of (sequence, reference) pairs and the references.

    Returns
    -------
    Tensor, shape (..., 4, L)
        Hypothetical contributions; at the observed base they sum over positions to
        f(x) − f(reference).
    """
    return multipliers - (multipliers * references).sum(dim=-2, keepdim=True)


# Gradients are what it computes: also when called inside torch.inference_mode().
@torch.inference_mode(False)
def deep_lift_shap(
    model: nn.Module,
    X: Tensor | np.ndarray,
    references: Tensor | np.ndarray | Callable[..., Any] | None = None,
    n_shuffles: int = 20,
    target: int | Sequence[int] | Callable[[Any], Tensor] = 0,
    hypothetical: bool = False,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    random_state: int | np.random.Generator | None = 0,
    regions: pd.DataFrame | None = None,
    rule: str = "rescale",
    rules: Mapping[str, Callable] | None = None,
    max_rule: str = "cross_max",
    autocast: torch.dtype | None = None,
    autocast_check: int = 16,
    delta_tolerance: float | None = None,
    strict: bool = True,
    return_delta: bool = False,
    progress: bool | None = None,
    on_block: Callable[[int], None] | None = None,
) -> Tensor | AttributionResult:
    """DeepLIFT contributions averaged over references (DeepSHAP), per base.

    Parameters
    ----------
    model : torch.nn.Module
        Takes one-hot ``(B, 4, L)`` and returns ``(B, n_outputs)`` (trailing axes of length 1 are
        dropped), or anything a callable ``target`` reduces to one value per sequence. Every
        operation on input-dependent values must be linear or have a DeepLIFT rule (see
        :mod:`genomatt.attribution.interception`); others raise before any output. The model is
        run in eval mode on ``device`` and put back as it was.
    X : Tensor or numpy.ndarray, shape (N, 4, L)
        One-hot sequences, channels A, C, G, T.
    references : Tensor, numpy.ndarray, callable or None
        ``(N, R, 4, L)`` references of each sequence; or a callable
        ``references(X_block, n=n_shuffles, random_state=generator)`` returning ``(b, R, 4, L)``,
        called on consecutive blocks of sequences with one shared ``numpy.random.Generator``;
        None is :func:`genomatt.shuffle.dinucleotide_shuffle`, which makes the result independent
        of ``batch_size`` and equal to passing ``dinucleotide_shuffle(X, n_shuffles, random_state)``.
    n_shuffles : int, default 20
        References per sequence when they are generated.
    target : int, sequence of int, or callable
        Output column to explain; a list of columns (explained from one shared forward pass per
        batch; the result gets a target axis after the region axis); or a callable mapping the
        model output to one scalar per sequence ``(B,)``, e.g. a profile head summed over
        positions. A callable is part of the attributed function, so its operations follow the
        same rules as the model's.
    hypothetical : bool, default False
        Return the hypothetical contributions (:func:`hypothetical_contributions`, averaged over
        references) instead of ``X * hypothetical``.
    batch_size : int, default 128
        (sequence, reference) pairs per forward/backward pass; memory does not grow with N.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of generated references; with ``regions``, the run's seed, a non-negative int.
    regions : pandas.DataFrame, optional
        ``chrom``, ``start``, ``end`` of each sequence, one row per sequence in the order of ``X``.
        Generated references are then :func:`genomatt.shuffle.references_for_regions`, seeded by
        ``random_state`` and each region's coordinates, so a region gets the same references
        whatever the batch, shard or order it comes in; ``references`` must be None.
    rule : {"rescale", "revealcancel", "genomics_default"}
        Rule for elementwise nonlinearities. ``"revealcancel"`` (DeepLIFT paper, section 3.5.3)
        applies where a nonlinearity's input comes straight from a convolution or linear layer,
        optionally through an eval-mode batch norm, and Rescale elsewhere;
        ``"genomics_default"`` (the DeepLIFT authors' setting for genomics) applies RevealCancel
        after linear (dense) layers only and Rescale after convolutions.
    rules : mapping of str to callable, optional
        Rules for operations by name, over the built-in ones (:mod:`genomatt.attribution.registry`):
        ``rule(mode, func, args, kwargs)`` returns the operation's result.
    max_rule : {"cross_max", "shapley"}, default "cross_max"
        Rule for a max over a whole axis (a global max pool, ``torch.max``/``amax`` over an axis):
        ``"cross_max"`` credits the change to the argmax of the sequence and of the reference, as
        gradient-routing implementations do; ``"shapley"`` gives each position its Shapley value in the
        max (Max SHAP), so two sites that each reach the maximum share it. Windowed max pools always use
        cross-max. See docs/methods/deeplift.md.
    autocast : torch.dtype, optional
        Run the model under ``torch.autocast`` with this dtype (``torch.bfloat16``,
        ``torch.float16``); the multipliers, their projection and the delta check stay float32. The
        first ``autocast_check`` sequences are explained in float32 too (against their first
        references), and contributions further than :data:`AUTOCAST_AGREEMENT` from float32's
        (relative L2 distance over them, for any target) fail as the delta check does: the delta check
        compares the contributions with outputs computed in the same reduced precision, so it cannot
        see a target whose output changes too little between a sequence and its references for three
        digits (a nearly flat profile).
    autocast_check : int, default 16
        Under ``autocast``, how many of the first sequences are compared with float32 (0: none; a caller
        explaining a run in several calls checks its first).
    delta_tolerance : float, optional
        A region fails the summation-to-delta check when its delta exceeds this times its scale:
        the largest of |f(x)|, |f(reference)|, Σ|contributions| (the sum over positions of each
        position's |contribution| to one reference's difference) and the largest |value| of the model's
        outputs that the target reads (which it may reduce with cancellation: centred profile logits, a
        difference of heads) over its references; the model's other outputs do not count. The scale follows
        the target's units, so a target far below 1 is held to the same relative accuracy. Default
        :data:`DELTA_TOLERANCE` (float32) or :data:`DELTA_TOLERANCE_AUTOCAST`.
    strict : bool, default True
        Raise :class:`~genomatt.errors.ModelError` when a region fails the check (nothing is
        returned); with False, warn and return the contributions.
    return_delta : bool, default False
        Return an :class:`~genomatt.attribution.inputs.AttributionResult` (also importable as
        ``DeepLiftShapResult``) with the per-region delta and prediction.
    progress : bool, optional
        Show a progress bar; by default, on a terminal for runs of 20,000 pairs or more.
    on_block : callable, optional
        Called with the number of sequences explained so far after each block of sequences
        (e.g. to log progress).

    Returns
    -------
    Tensor or AttributionResult
        float32 on the CPU, shape (N, 4, L), or (N, T, 4, L) for a list of T targets.

    Raises
    ------
    SequenceError
        If ``X``, the references or ``regions`` have the wrong shape.
    ModelError
        If the model contains an operation without a rule, does not accept the input, mixes the
        sequences of a batch, or (with ``strict``) fails the summation-to-delta check.
    NonFiniteError
        If the model's outputs, the contributions or the deltas of any sequence are NaN or infinite
        (with or without ``strict``); its ``rows`` name those sequences.
    ConfigError
        If an option is invalid.
    """
    X = as_sequences(X)
    _check_options(batch_size, rule, n_shuffles, max_rule, autocast_check)
    device = resolve_device(device)
    reduce_output, targets = output_reduction(target)
    n_references, reference_blocks = reference_source(references, X, n_shuffles, random_state, regions)
    tolerance = delta_tolerance if delta_tolerance is not None else (
        DELTA_TOLERANCE if autocast is None else DELTA_TOLERANCE_AUTOCAST)
    n, length = X.shape[0], X.shape[2]
    n_targets = len(targets) if targets is not None else 1

    hypothetical_sum = torch.zeros(n, n_targets, 4, length)
    delta = torch.zeros(n, n_targets)
    scale = torch.zeros(n, n_targets)
    prediction = torch.zeros(n, n_targets)
    model = _walkable(model)
    with prepared(model, device) as dtype:
        mode = DeepLiftMode(model, rule, tuple(X.shape), rules, max_rule)
        engine = _Engine(model, mode, reduce_output, device, dtype, autocast)
        sequences_per_block = sequences_per_batch(batch_size, n_references)
        references_per_pass = min(batch_size, n_references)
        # Under autocast the first sequences are explained in float32 too (their first references), to compare.
        checked = min(n, autocast_check) if autocast is not None else 0
        full = _Engine(model, mode, reduce_output, device, dtype, None) if checked else None
        agreement = torch.zeros(2, n_targets)
        with tqdm(total=n * n_references, unit="pair", desc="DeepLIFT",
                  disable=_progress_disabled(progress, n * n_references)) as bar:
            for start in range(0, n, sequences_per_block):
                stop = min(start + sequences_per_block, n)
                block = reference_blocks(start, stop)
                for first in range(0, n_references, references_per_pass):
                    refs = block[:, first:first + references_per_pass]
                    hyp_sum, errors, magnitude, values = engine.pairs(X[start:stop], refs)
                    if full is not None and first == 0 and start < checked:
                        rows = min(stop, checked) - start
                        x = X[start:start + rows]
                        agreement += _agreement_terms(hyp_sum[:rows], full.pairs(x, refs[:rows])[0], x)
                        if stop >= checked:
                            _check_autocast_agreement(agreement, checked, str(autocast), strict, targets)
                    hypothetical_sum[start:stop] += hyp_sum
                    prediction[start:stop] = values
                    delta[start:stop] = torch.maximum(delta[start:stop], errors)
                    scale[start:stop] = torch.maximum(scale[start:stop], magnitude)
                    bar.update(refs.shape[0] * refs.shape[1])
                if on_block is not None:
                    on_block(stop)

    _check_finite(hypothetical_sum, delta, prediction)
    _check_delta(delta, scale, tolerance, strict, regions, dtype if autocast is None else None)
    attributions = hypothetical_sum / n_references
    if not hypothetical:
        attributions *= X.unsqueeze(1)
    if not isinstance(target, (list, tuple)):
        attributions, delta, prediction = attributions[:, 0], delta[:, 0], prediction[:, 0]
    if return_delta:
        return AttributionResult(attributions, delta, prediction)
    return attributions


def sequences_per_batch(batch_size: int, n_references: int) -> int:
    """Sequences explained together in one block of :func:`deep_lift_shap`'s passes.

    Calls over consecutive runs of sequences whose lengths are multiples of this give the same batches,
    so the same numbers bit for bit, as one call over all of them.

    Parameters
    ----------
    batch_size : int
        (sequence, reference) pairs per pass.
    n_references : int
        References per sequence.
    """
    return max(1, batch_size // n_references)


@dataclass(frozen=True)
class RuleProbe:
    """Which of DeepLIFT's rules a model's operations take, from one forward pass (:func:`probe_rules`).

    Attributes
    ----------
    whole_axis_max : bool
        Whether the model takes a max over a whole axis (a global max pool), where ``max_rule="cross_max"``
        and ``"shapley"`` differ.
    rule_sites : list of (str, str)
        Each elementwise nonlinearity's rule (``"rescale"`` or ``"revealcancel"``) and where it is called.
    """

    whole_axis_max: bool
    rule_sites: list[tuple[str, str]]

    def sites(self, rule: str) -> list[str]:
        """Where the nonlinearities under ``rule`` are called."""
        return [site for taken, site in self.rule_sites if taken == rule]


def probe_rules(model: nn.Module, length: int, rule: str = "rescale",
                device: str | torch.device | None = None) -> RuleProbe:
    """Run the model once under DeepLIFT's rules and say which rule each of its operations takes.

    Runs on a random sequence and one reference of ``length`` bp. Under ``rule="revealcancel"`` a
    nonlinearity whose input is not a convolution's or linear layer's output takes Rescale, and under
    ``"genomics_default"`` one after a convolution does: the probe names them. For a model without a
    max over a whole axis, ``max_rule="cross_max"`` and ``"shapley"`` give the same contributions.

    Parameters
    ----------
    model : torch.nn.Module
        The model (a TorchScript model is walked as :func:`deep_lift_shap` walks it).
    length : int
        Input length in bp.
    rule : {"rescale", "revealcancel", "genomics_default"}
        Rule for elementwise nonlinearities, as :func:`deep_lift_shap` takes it.
    device : str or torch.device, optional

    Returns
    -------
    RuleProbe

    Raises
    ------
    ModelError
        If the model fails on the input or holds an operation DeepLIFT has no rule for.
    """
    if rule not in RULES:
        raise ConfigError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    model, device = _walkable(model), resolve_device(device)
    with prepared(model, device) as dtype:
        # A sequence and one random reference; more where a tensor has the batch's size on two axes.
        for n_references in range(1, 9):
            bases = torch.randint(0, 4, (1 + n_references, length), generator=torch.Generator().manual_seed(0))
            mode = DeepLiftMode(model, rule, (1, 4, length))
            mode.rule_sites = []
            mode.layout(1, n_references)
            batch = torch.nn.functional.one_hot(bases, 4).transpose(1, 2).to(device, dtype).requires_grad_(True)
            try:
                with torch.enable_grad():
                    _Engine(model, mode, _first_tensor, device, dtype, None)._forward(batch)
            except AmbiguousBatchAxis:
                continue
            return RuleProbe(mode.whole_axis_max, mode.rule_sites)
    raise ModelError("the model's tensors have the batch's size on axis 0 and another axis for every batch of 2 "
                     "to 9 rows tried, so which axis holds the batch cannot be told; please report it with the model")


def _first_tensor(output: Any) -> Tensor:
    """The first tensor of a model's output (a tensor, or a tuple or dict of them)."""
    return next(leaf for leaf in tree_leaves(output) if isinstance(leaf, Tensor))


def _walkable(model: nn.Module) -> nn.Module:
    """The model as DeepLIFT's rules walk it: a TorchScript model as its graph, a compiled (``torch.compile``)
    model as the Python module it compiles; opaque submodules refused."""
    if isinstance(model, torch.jit.ScriptModule):
        model = TorchScriptGraph(model)
    elif type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None), nn.Module):
        model = model._orig_mod
    refuse_opaque_modules(model)
    return model


def _check_options(batch_size: int, rule: str, n_shuffles: int, max_rule: str, autocast_check: int) -> None:
    check_positive_int(batch_size, "batch_size")
    if isinstance(autocast_check, bool) or not isinstance(autocast_check, numbers.Integral) or autocast_check < 0:
        raise ConfigError(f"autocast_check must be a non-negative integer, got {autocast_check!r}")
    if rule not in RULES:
        raise ConfigError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    if max_rule not in MAX_RULES:
        raise ConfigError(f"max_rule must be one of {', '.join(MAX_RULES)}, got {max_rule!r}")
    check_positive_int(n_shuffles, "n_shuffles")


def _progress_disabled(progress: bool | None, n_pairs: int) -> bool | None:
    """tqdm's ``disable``: as asked, or on a terminal only (None) for long runs."""
    if progress is not None:
        return not progress
    return None if n_pairs >= _PROGRESS_PAIRS else True


def _check_finite(hypothetical_sum: Tensor, delta: Tensor, prediction: Tensor) -> None:
    """Raise :class:`NonFiniteError` naming the sequences whose outputs or contributions are not finite."""
    finite = (torch.isfinite(prediction).all(dim=1) & torch.isfinite(delta).all(dim=1)
              & torch.isfinite(hypothetical_sum.flatten(1)).all(dim=1))
    if finite.all():
        return
    rows = (~finite).nonzero()[:, 0].tolist()
    shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
    if torch.isfinite(prediction[rows]).all():  # outputs of references were checked finite as they were run
        raise NonFiniteError(f"the contributions are NaN or infinite for {len(rows)} of {len(finite)} sequences "
                             f"(rows {shown}) though the model's outputs are finite: a value inside the model is "
                             "infinite at a sequence or a reference (a log of 0, a constant of ±inf), which no rule "
                             "can take a difference of; keep it finite (log(x + 1e-6), -1e9 for a mask)", rows)
    raise NonFiniteError(f"the model's outputs or contributions are NaN or infinite for {len(rows)} of "
                         f"{len(finite)} sequences (rows {shown}); check the model's weights and inputs", rows)


def _output_magnitudes(outputs: list[Tensor], b: int, r: int) -> list[Tensor | None]:
    """The largest finite |value| of each element of each output over each sequence and its references.

    Parameters
    ----------
    outputs : list of Tensor
        The model's outputs, ``b * (1 + r)`` rows in the engine's batch layout.
    b, r : int
        Sequences and references per sequence.

    Returns
    -------
    list of Tensor or None
        Shape ``(b, elements per row)`` per output; None for one that is not in the batch layout or is empty.
    """
    magnitudes = []
    for output in outputs:
        if not output.dim() or output.shape[0] != b * (1 + r) or not output[0].numel():
            magnitudes.append(None)
            continue
        values = output.detach().float().abs()
        values = torch.where(torch.isfinite(values), values, torch.zeros_like(values))
        magnitudes.append(torch.maximum(values[:b].reshape(b, -1), values[b:].reshape(b, r, -1).amax(dim=1)))
    return magnitudes


def _read_output_scale(magnitudes: list[Tensor | None], gradients: Sequence[Tensor | None], b: int, r: int) -> Tensor:
    """The largest finite |value| of the outputs a target reads, over each sequence and its references, ``(b,)``.

    An output value is read where the target's multiplier of it is nonzero at one of the sequence's references:
    a column target reads its column, a profile target its profile's logits, not the model's other outputs.

    Parameters
    ----------
    magnitudes : list of Tensor or None
        :func:`_output_magnitudes` of the model's outputs.
    gradients : sequence of Tensor or None
        The target's multiplier of each output (None where the target does not read it).
    b, r : int
        Sequences and references per sequence.
    """
    scale = torch.zeros(b)
    for magnitude, gradient in zip(magnitudes, gradients):
        if magnitude is not None and gradient is not None:
            read = (gradient[b:] != 0).reshape(b, r, -1).any(dim=1)
            scale = torch.maximum(scale, torch.where(read, magnitude, torch.zeros_like(magnitude)).amax(dim=1).cpu())
    return scale


def _check_batch_first(single: list[Any], batched: list[Any], rows: int) -> None:
    """Refuse floating-point outputs whose first axis does not follow the number of sequences: 1 for ``single``
    (the model's outputs on one sequence), ``rows`` for ``batched`` (on ``rows``)."""
    for one, many in zip(single, batched):
        if isinstance(one, Tensor) and one.is_floating_point() and (
                not one.dim() or not many.dim() or one.shape[0] != 1 or many.shape[0] != rows):
            raise ModelError(f"the model's output's first axis is not the batch axis: its size does not follow the "
                             f"number of sequences (an output of shape {tuple(one.shape)} for 1 sequence and "
                             f"{tuple(many.shape)} for {rows}); expected (N, ...) with N the number of sequences, "
                             "e.g. (N, n_outputs), not tasks first (n_outputs, N)")


def _agreement_terms(reduced: Tensor, full: Tensor, x: Tensor) -> Tensor:
    """``(2, T)``: the squared distance of the contributions (hypothetical × sequence) from reduced-precision
    hypothetical sums ``reduced`` to float32's ``full``, and the squared norm of float32's, per target."""
    reduced, full = reduced * x.unsqueeze(1), full * x.unsqueeze(1)
    return torch.stack([((reduced - full) ** 2).sum(dim=(0, 2, 3)), (full ** 2).sum(dim=(0, 2, 3))])


def _check_autocast_agreement(agreement: Tensor, n_checked: int, autocast: str, strict: bool,
                              targets: list[int] | None) -> None:
    """Refuse (or with ``strict=False`` warn of) contributions under autocast further than
    :data:`AUTOCAST_AGREEMENT` from float32's on the first ``n_checked`` sequences (``agreement``:
    :func:`_agreement_terms` summed over them; ``targets``: the output columns explained, if several). Non-finite
    contributions are left to the check of non-finite values."""
    if not torch.isfinite(agreement).all():
        return
    difference, norm = agreement
    distance = torch.where(norm > 0, (difference / norm.clamp(min=torch.finfo(norm.dtype).tiny)).sqrt(), 0.0)
    if float(distance.max()) <= AUTOCAST_AGREEMENT:
        return
    dtype = autocast.removeprefix("torch.")
    which = f" of output column {targets[int(distance.argmax())]}" if targets and len(targets) > 1 else ""
    message = (f"under autocast {dtype} the contributions{which} of the first {n_checked} sequences are "
               f"{float(distance.max()):.0%} away from float32's (relative L2 distance; at most "
               f"{AUTOCAST_AGREEMENT:.0%} is accepted): the target's output changes too little between a sequence and "
               f"its references for {dtype}'s three digits (as a nearly flat profile's does), and the "
               "summation-to-delta check, computed in the same precision, cannot see it; explain it in float32 "
               "(without autocast, --autocast)")
    if strict:
        raise ModelError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def _check_delta(delta: Tensor, scale: Tensor, tolerance: float, strict: bool,
                 regions: pd.DataFrame | None, dtype: torch.dtype | None = None) -> None:
    """Refuse (or with ``strict=False`` warn of) regions whose delta exceeds the tolerance; ``dtype``: the
    model's parameters', named with the way out where they hold fewer digits than the tolerance needs."""
    failing = delta > tolerance * scale
    if not failing.any():
        return
    region = int(failing.any(dim=1).nonzero()[0])
    if regions is not None:
        # Named by its coordinates: the row is relative to this call, which may cover part of a run.
        row = regions.iloc[region]
        first = f"{row['chrom']}:{row['start']}-{row['end']}"
        if "name" in regions.columns:
            first = f"{row['name']} ({first})"
    else:
        first = f"region {region}"
    worst = float(delta.max())
    message = (f"summation-to-delta fails for {int(failing.any(dim=1).sum())} of {delta.shape[0]} regions "
               f"(first: {first}; largest error {worst:.3g}; tolerance {tolerance:g} relative to the largest "
               "of |f(x)|, |f(reference)|, Σ|contributions| and the |outputs| the target reads): the "
               "contributions do not add up to f(x) − f(reference)")
    if dtype in (torch.float16, torch.bfloat16):
        message += (f"; the model's parameters are {str(dtype).removeprefix('torch.')}, which keep about three "
                    "digits: explain model.float() (autocast= runs it in reduced precision, with a tolerance for it)")
    if strict:
        raise ModelError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


# --- the passes ---------------------------------------------------------------------------------


class _Engine:
    """Runs the forward and backward pass of each batch; turns multipliers into contributions and deltas."""

    def __init__(self, model: nn.Module, mode: DeepLiftMode, reduce_output: Callable[[Any], Tensor],
                 device: torch.device, dtype: torch.dtype, autocast: torch.dtype | None):
        self.model, self.mode, self.reduce_output = model, mode, reduce_output
        self.device, self.dtype, self.autocast = device, dtype, autocast
        self._checked_batch_independence = False

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def _forward(self, inputs: Tensor) -> tuple[Any, Tensor]:
        """The model output and the target values ``(B, T)``, computed under the mode."""
        try:
            with self.mode, self._autocast():
                output = self.model(varying_input(inputs))
                values = self.reduce_output(output)
        except GenomattError:
            raise
        except Exception as error:
            raise ModelError(f"the model failed on a batch of shape {tuple(inputs.shape)}: {error}") from error
        if not is_varying(values):
            raise ModelError("the model output does not depend on its input through operations genomatt "
                             "can see (a TorchScript or compiled model, a C++ extension, or numpy); "
                             "load the weights into the model's Python class")
        return output, values.float()

    def _check_batch_independence(self, inputs: Tensor, batched_output: Any) -> None:
        """Refuse a model whose plain output for one row changes with the other rows of its batch.

        The pairs of a batch are independent only if every row is computed on its own (no batch
        statistics, no reduction over the batch axis). Checked once, on the first row.
        """
        self._checked_batch_independence = True
        if inputs.shape[0] < 2:
            return

        def alone() -> list[Any]:
            with torch.no_grad(), self._autocast():
                return tree_leaves(self.model(inputs[:1].detach().clone()))

        first, batched = alone(), tree_leaves(batched_output)
        _check_batch_first(first, batched, inputs.shape[0])
        refuse_mixed_rows(first, alone, batched, "DeepLIFT", self.autocast or self.dtype)

    def _check_plain_output(self, inputs: Tensor, engine_output: Any, n_sequences: int) -> None:
        """Check, on the first batch, that the explained pass computes the model's plain output.

        Every rule returns the value of the operation it replaces, so the target values of the
        explained pass are the plain model's and the summation-to-delta error is measured against
        the model itself, without a second pass per batch. The plain model (no autograd, no
        interception) runs once on the first sequence and its first reference to confirm it, and
        on the first sequence alone to confirm that rows do not mix.
        """
        rows = torch.tensor([0, n_sequences], device=inputs.device)
        subset = inputs.detach()[rows]
        with torch.no_grad(), self._autocast():
            plain_output = self.model(subset.clone())
        self._check_batch_independence(subset, plain_output)
        for expected, seen in zip(tree_leaves(plain_output), tree_leaves(engine_output)):
            if isinstance(expected, Tensor) and expected.is_floating_point():
                expected, seen = expected.float(), seen.detach()[rows].float()
                tolerance = (1e-5 if self.autocast is None else 5e-2) * output_scale(expected)
                # A value the plain model makes infinite may come out NaN under the rules: both are refused with
                # the model's non-finite outputs (_check_finite), not as a difference of the rules.
                if expected.shape != seen.shape or not (
                        torch.isclose(seen, expected, rtol=0, atol=tolerance)
                        | ~(torch.isfinite(seen) | torch.isfinite(expected))).all():
                    self._refuse_other_output(inputs, rows, engine_output, tolerance)

    def _refuse_other_output(self, inputs: Tensor, rows: Tensor, engine_output: Any, tolerance: float) -> None:
        """Say why the explained pass's output differs from the plain model's on two of its rows: the plain model
        run on the whole batch tells a model whose output depends on the batch's size from a rule's error."""
        with torch.no_grad(), self._autocast():
            whole = self.model(inputs.detach().clone())
        same = all(torch.isclose(seen.detach()[rows].float(), plain[rows].float(), rtol=0, atol=tolerance).all()
                   for plain, seen in zip(tree_leaves(whole), tree_leaves(engine_output))
                   if isinstance(plain, Tensor) and plain.is_floating_point())
        if same:
            raise ModelError(f"the model's output for a sequence changes with the size of its batch (the same two "
                             f"sequences give other outputs alone than in a batch of {inputs.shape[0]}, e.g. from "
                             "x.shape[0] or a statistic over the batch); its contributions would depend on "
                             "--batch-size: make each sequence's output depend on that sequence alone")
        raise ModelError("the model's output under genomatt's rules differs from its plain output (an operation "
                         "changes values when intercepted); please report it with the model")

    def multipliers(self, x: Tensor, refs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Multipliers of every (sequence, reference) pair and the target values.

        Parameters
        ----------
        x : Tensor, shape (b, 4, L)
        refs : Tensor, shape (b, r, 4, L)

        Returns
        -------
        multipliers : Tensor, shape (T, b, r, 4, L), float32
        values_in : Tensor, shape (b, T)
        values_ref : Tensor, shape (b, r, T)
        output_scale : Tensor, shape (b, T)
            The largest |value| of the model's outputs that each target reads (before its reduction), over
            each sequence and its references: the scale of their rounding, where a target cancels large
            values (a profile's centred logits, a difference of two heads).
        """
        b, r = refs.shape[:2]
        batch = torch.cat([x, refs.reshape(b * r, *refs.shape[2:])]).to(self.device, self.dtype)
        batch.requires_grad_(True)
        self.mode.layout(b, r)
        with torch.enable_grad():
            output, values = self._forward(batch)
            if not self._checked_batch_independence:
                self._check_plain_output(batch, output, b)
            outputs = [leaf for leaf in tree_leaves(output) if isinstance(leaf, Tensor) and leaf.requires_grad]
            magnitudes = _output_magnitudes(outputs, b, r)
            n_targets = values.shape[1]
            multipliers, read_scales = [], []
            for k in range(n_targets):
                gradient, *output_multipliers = torch.autograd.grad(values[b:, k].sum(), [batch, *outputs],
                                                                    retain_graph=k < n_targets - 1, allow_unused=True)
                multipliers.append(torch.zeros_like(batch[b:]) if gradient is None else gradient[b:])
                read_scales.append(_read_output_scale(magnitudes, output_multipliers, b, r))
        multipliers = torch.stack(multipliers).float().reshape(n_targets, b, r, *refs.shape[2:])
        values = values.detach()
        return multipliers, values[:b], values[b:].reshape(b, r, n_targets), torch.stack(read_scales, dim=1)

    def pairs(self, x: Tensor, refs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Summed hypothetical contributions, delta errors, output magnitudes and predictions of a batch.

        Where a tensor of the model has the batch's size on axis 0 and another axis (a sequence-first LSTM
        whose length equals it, a layer of as many channels), the pairs are explained in passes of another
        size (halves; one pair against copies of its reference): each pair's numbers do not depend on the
        others of its pass.

        Returns
        -------
        hypothetical_sum : Tensor, shape (b, T, 4, L)
            Sum over the r references of the hypothetical contributions (CPU).
        errors : Tensor, shape (b, T)
            Largest |f(x) − f(ref) − Σ m · (x − ref)| over the references (CPU).
        magnitude : Tensor, shape (b, T)
            The largest of |f(x)|, |f(ref)|, Σ_l |Σ_c m · (x − ref)| and the largest |output| the target reads
            over the references, the scale of the tolerance (CPU).
        prediction : Tensor, shape (b, T)
            f(x) (CPU).
        """
        try:
            return self._explain(x, refs)
        except AmbiguousBatchAxis as error:
            b, r = refs.shape[:2]
            if r > 1:
                first, second = self.pairs(x, refs[:, :r // 2]), self.pairs(x, refs[:, r // 2:])
                return (first[0] + second[0], torch.maximum(first[1], second[1]),
                        torch.maximum(first[2], second[2]), first[3])
            if b > 1:
                first, second = self.pairs(x[:b // 2], refs[:b // 2]), self.pairs(x[b // 2:], refs[b // 2:])
                return tuple(torch.cat([one, two]) for one, two in zip(first, second))
            for copies in range(2, 9):
                try:
                    hypothetical_sum, errors, magnitude, prediction = self._explain(x, refs.repeat(1, copies, 1, 1))
                except AmbiguousBatchAxis:
                    continue
                return hypothetical_sum / copies, errors, magnitude, prediction
            raise ModelError(f"{error}, in batches of 2 to 9 rows; please report it with the model") from None

    def _explain(self, x: Tensor, refs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:meth:`pairs` of one pass."""
        multipliers, values_in, values_ref, read_scale = self.multipliers(x, refs)
        x = x.to(self.device)
        refs = refs.to(self.device)
        # Σ_c m · ref at each position serves both the projection and the delta check.
        reference_dot = (multipliers * refs).sum(dim=-2)
        hypothetical_sum = (multipliers.sum(dim=2) - reference_dot.sum(dim=2).unsqueeze(-2)).transpose(0, 1)
        per_position = (multipliers * x.unsqueeze(1)).sum(dim=-2) - reference_dot
        output_delta = (values_in.unsqueeze(1) - values_ref).permute(2, 0, 1)
        errors = (output_delta - per_position.sum(dim=-1)).abs().amax(dim=2).T
        magnitude = torch.maximum(torch.maximum(values_in.abs(), values_ref.abs().amax(dim=1)),
                                  per_position.abs().sum(dim=-1).amax(dim=2).T)
        magnitude = torch.maximum(magnitude, read_scale.to(magnitude.device))
        return hypothetical_sum.cpu(), errors.cpu(), magnitude.cpu(), values_in.cpu()
