"""The explained outputs of a model: target values and their gradients, batch by batch.

Every attribution method explains the same thing as :func:`~genomatt.attribution.deep_lift_shap`:
one output column, a list of columns, or a callable reducing the model output to one value per
sequence. :func:`explained` holds the model ready (eval mode, on the device, put back afterwards)
and evaluates those target values ``(B, T)`` and, where a method needs them, their gradients with
respect to the input, which plain autograd gives for any model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from genomatt.attribution.inputs import Target, output_reduction
from genomatt.attribution.interception import as_model_error
from genomatt.device import full_float32, resolve_device
from genomatt.errors import ModelError, NonFiniteError


@dataclass
class ExplainedModel:
    """A model in eval mode on its device, with the reduction of its output to the targets.

    Attributes
    ----------
    model : torch.nn.Module
    reduce_output : callable
        Model output → target values ``(B, T)``.
    columns : list of int or None
        The explained output columns; None for a callable target (T = 1).
    device : torch.device
    dtype : torch.dtype
        Floating point type of the model's parameters; inputs are cast to it.
    """

    model: nn.Module
    reduce_output: Callable[[Any], Tensor]
    columns: list[int] | None
    device: torch.device
    dtype: torch.dtype
    rows_checked: bool = False

    @property
    def n_targets(self) -> int:
        """Number T of explained values per sequence."""
        return len(self.columns) if self.columns is not None else 1

    def _evaluate(self, inputs: Tensor) -> Tensor:
        with as_model_error(inputs):
            # A copy, so that a model writing into its input in place writes into no autograd leaf.
            values = self.reduce_output(self.model(inputs.clone()))
        check_finite_values(values)
        self.check_rows_independent(inputs, values)
        return values

    def check_rows_independent(self, inputs: Tensor, values: Tensor) -> None:
        """Refuse a model whose target values for a row change with the other rows of its batch (a reduction over
        the batch axis, batch statistics), as the results would depend on ``batch_size``; checked once, on the
        first row of the first batch of two rows or more.

        Parameters
        ----------
        inputs : Tensor, shape (B, 4, L)
            A batch, on the model's device.
        values : Tensor, shape (B, T)
            The target values of the batch.

        Raises
        ------
        ModelError
            As :func:`refuse_mixed_rows`.
        """
        if self.rows_checked or inputs.shape[0] < 2:
            return
        self.rows_checked = True

        def alone() -> list[Any]:
            with torch.no_grad(), as_model_error(inputs[:1]):
                return [self.reduce_output(self.model(inputs[:1].detach().clone()))]

        refuse_mixed_rows(alone(), alone, [values], "attribution", self.dtype)

    def values(self, inputs: Tensor, batch_size: int) -> Tensor:
        """Target values of every row, in batches of ``batch_size`` rows.

        Parameters
        ----------
        inputs : Tensor, shape (B, 4, L)
        batch_size : int
            Rows per forward pass.

        Returns
        -------
        Tensor, shape (B, T), float32 on the CPU
        """
        chunks = []
        with torch.no_grad():
            for start in range(0, inputs.shape[0], batch_size):
                batch = inputs[start:start + batch_size].to(self.device, self.dtype)
                chunks.append(self._evaluate(batch).float().cpu())
        return torch.cat(chunks)

    def gradients(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Gradients of each target value with respect to the input rows, in one forward pass.

        Parameters
        ----------
        inputs : Tensor, shape (B, 4, L)

        Returns
        -------
        gradients : Tensor, shape (T, B, 4, L), float32 on the CPU
        values : Tensor, shape (B, T), float32 on the CPU
        """
        batch = inputs.detach().to(self.device, self.dtype).requires_grad_(True)
        with torch.enable_grad():
            values = self._evaluate(batch)
            gradients = []
            for k in range(values.shape[1]):
                (gradient,) = torch.autograd.grad(values[:, k].sum(), batch, retain_graph=k < values.shape[1] - 1,
                                                  allow_unused=True)
                gradients.append(torch.zeros_like(batch) if gradient is None else gradient)
        return torch.stack(gradients).float().cpu(), values.detach().float().cpu()


def output_scale(values: Tensor) -> float:
    """max(1, the largest finite |value|): the scale of a tolerance on model outputs."""
    finite = values[torch.isfinite(values)]
    return max(1.0, float(finite.abs().max())) if finite.numel() else 1.0


def _same_first_rows(first: list[Any], second: list[Any], precision: torch.dtype) -> bool:
    """Whether the first row of each floating-point output of ``second`` equals ``first``'s, to the rounding of
    a model computed in ``precision`` (kernels may change with the batch size, and their rounding with them)."""
    rtol = max(1e-3, 8 * torch.finfo(precision).eps)
    for single, batched in zip(first, second):
        if isinstance(single, Tensor) and single.is_floating_point():
            single, batched = single.float(), batched[:1].detach().float()
            # A NaN output is the same NaN in both runs; the finiteness check names it.
            if not torch.allclose(single, batched, rtol=rtol, atol=0.1 * rtol * output_scale(single), equal_nan=True):
                return False
    return True


def refuse_mixed_rows(first: list[Any], alone: Callable[[], list[Any]], batched: list[Any], method: str,
                      precision: torch.dtype = torch.float32) -> None:
    """Refuse a model whose outputs for a sequence change with the other sequences of its batch.

    Parameters
    ----------
    first : list
        The model's outputs on the batch's first sequence alone (tensors, ``(1, ...)``).
    alone : callable
        Runs the model on that sequence alone again (to tell noise from mixing); returns outputs as ``first``.
    batched : list
        The outputs of the whole batch, in the same order.
    method : str
        The method named in the message.
    precision : torch.dtype, default float32
        The least precise floating point type the model computes in (its parameters', or autocast's), whose
        rounding the comparison allows.

    Raises
    ------
    ModelError
        If the first sequence's outputs alone differ from its outputs in the batch, saying whether a second run
        alone differs too (noise drawn in the forward) or not (a reduction over the batch axis).
    """
    if _same_first_rows(first, batched, precision):
        return
    if not _same_first_rows(first, alone(), precision):
        raise ModelError("the model's output for a sequence changes from one run to the next (noise drawn in its "
                         f"forward, e.g. torch.randn_like, or dropout forced on); {method} needs a deterministic model")
    raise ModelError("the model's output for a sequence changes with the other sequences in its batch (a reduction "
                     "over the batch axis, or batch statistics), so its attributions would depend on batch_size; "
                     f"{method} needs each sequence computed on its own")


def check_finite_values(values: Tensor) -> None:
    """Refuse explained outputs ``(B, T)`` that hold NaN or infinite values, naming how many rows do.

    Raises
    ------
    NonFiniteError
        With the rows of the batch affected.
    """
    finite = torch.isfinite(values.detach()).all(dim=1)
    if not finite.all():
        rows = (~finite).nonzero()[:, 0].tolist()
        raise NonFiniteError(f"the model's explained outputs are NaN or infinite for {len(rows)} of the "
                             f"{len(finite)} inputs of a batch (sequences, or the references, path points or "
                             "edits built from them); check the model's weights and inputs", rows)


@contextlib.contextmanager
def prepared(model: nn.Module, device: torch.device) -> Iterator[torch.dtype]:
    """Hold the model in eval mode on ``device``, parameters frozen; put it back as it was afterwards.

    Float32 operations run in float32 meanwhile (:func:`full_float32`).

    Parameters
    ----------
    model : torch.nn.Module
        Every module's own training flag, and the device, are restored on exit, even after an error
        (a model in training mode with a frozen batch norm in eval mode keeps it so).
    device : torch.device
        Where the model runs, e.g. from :func:`genomatt.device.resolve_device`.

    Yields
    ------
    torch.dtype
        The floating point type of the model's parameters (float32 without any); inputs are cast
        to it.
    """
    _check_not_inference_tensors(model)
    parameter = next(iter(model.parameters()), None)
    original_device = parameter.device if parameter is not None else None
    training = [(module, module.training) for module in model.modules()]
    model.eval().to(device)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    # Frozen parameters make every tensor that requires a gradient depend on the input.
    trainable = [p for p in model.parameters()
                 if p.requires_grad and not isinstance(p, nn.parameter.UninitializedParameter)]
    for p in trainable:
        p.requires_grad_(False)
    try:
        # Gradients are what every method computes: also when called inside torch.inference_mode().
        with full_float32(), torch.inference_mode(False):
            yield dtype
    finally:
        for p in trainable:
            p.requires_grad_(True)
        for module, flag in training:
            module.training = flag
        if original_device is not None and original_device != device:
            model.to(original_device)


def _check_not_inference_tensors(model: nn.Module) -> None:
    """Refuse a model whose tensors were made inside ``torch.inference_mode()``, which autograd cannot use, or
    whose parameters are no leaf tensors (a copy of a TorchScript model loaded in inference mode)."""
    scripted = any(isinstance(module, torch.jit.ScriptModule) for module in model.modules())
    # A TorchScript model's copies keep their parameters computed, not leaves: only loading it again helps.
    way_out = ("load it again outside inference_mode (torch.no_grad() is fine)" if scripted else
               "explain copy.deepcopy(model), whose tensors are ordinary ones, or create or load the model outside "
               "inference_mode (torch.no_grad() is fine)")
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        # A lazy module's parameters are made at its first call (inside the explanation, so never inference ones).
        if isinstance(tensor, nn.parameter.UninitializedTensorMixin):
            continue
        if tensor.is_inference():
            raise ModelError(f"the model's tensor '{name}' was made inside torch.inference_mode(), so no gradient can "
                             f"flow through it; {way_out}")
        if tensor.requires_grad and not tensor.is_leaf:
            raise ModelError(f"the model's tensor '{name}' is computed from another tensor, not a leaf (a copy of "
                             f"a TorchScript model loaded inside torch.inference_mode()?); {way_out}")


@contextlib.contextmanager
def explained(model: nn.Module, target: Target, device: str | torch.device | None) -> Iterator[ExplainedModel]:
    """Hold ``model`` ready to explain ``target`` on ``device``; put it back as it was afterwards.

    Raises
    ------
    ConfigError
        If ``target`` is not an int, a non-empty list of ints or a callable.
    """
    reduce_output, columns = output_reduction(target)
    device = resolve_device(device)
    with prepared(model, device) as dtype:
        yield ExplainedModel(model, reduce_output, columns, device, dtype)


def per_target(attributions: Tensor, target: Target) -> Tensor:
    """Drop the target axis of ``(N, T, ...)`` results unless the target was a list of columns."""
    return attributions if isinstance(target, (list, tuple)) else attributions[:, 0]

