"""Every operation of a forward pass, seen one call at a time, with its DeepLIFT rule or a refusal.

A :class:`DeepLiftMode` is a ``TorchFunctionMode``: while it is active, every torch function,
``torch.nn.functional`` function and tensor method called by the model passes through it. That
is what makes the engine work per call rather than per module: ``torch.relu``, ``F.max_pool1d``,
``x.sigmoid()`` and an ``nn.ReLU`` object used three times are all seen, each time.

The mode tracks which tensors depend on the input (it marks them as *varying*; parameters,
buffers and anything computed from them alone are constants). An operation on constants runs as
it is. An operation on varying tensors must be either

* known to be linear (or affine) in its varying operands — convolutions, linear layers, eval-mode
  batch norm and dropout, average pooling, sums, reshaping, indexing, padding, products with
  constants, ...; it runs as it is, and its ordinary gradient is its multiplier; or
* a nonlinearity with a rule (:mod:`genomatt.attribution.rules`): an elementwise function of one
  varying tensor (Rescale or RevealCancel), or a max over windows (cross-max);

anything else raises :class:`~genomatt.errors.ModelError` naming the operation, the module and the
source line that called it.

The batch holds ``b`` sequences followed by their ``r`` references each (the layout of
:mod:`genomatt.attribution.rules`), so every rule sees a reference and its sequence in the same
call.
"""

from __future__ import annotations

import contextlib
import inspect
import linecache
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves, tree_map

from genomatt.attribution import kernels
from genomatt.attribution.rules import (
    CrossMaxFunction,
    MaxReduction,
    NotElementwise,
    RescaleFunction,
    axis_reduction,
    pairs,
    pooling_reduction,
    reveal_cancel_multipliers,
    slope,
)
from genomatt.errors import GenomattError, ModelError

_VARYING = "_genomatt_varying"
_SPLIT = "_genomatt_split"

# Operations that read only metadata (shape, dtype, device, ...) of a tensor.
METADATA = frozenset({
    "size", "dim", "ndimension", "shape", "ndim", "numel", "nelement", "dtype", "device", "layout",
    "is_cuda", "is_cpu", "is_mps", "is_meta", "is_sparse", "is_quantized", "is_nested", "is_leaf",
    "requires_grad", "grad_fn", "is_contiguous", "stride", "storage_offset", "element_size",
    "itemsize", "nbytes", "is_floating_point", "is_complex", "get_device", "__len__", "names",
    "output_nr", "_version", "data_ptr", "__repr__", "__format__", "__str__",
})

# Operations whose result does not depend on the values of their tensor arguments.
CONSTANT_RESULT = frozenset({
    "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
    "randint_like", "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor",
})

# Linear in their first operand; every other tensor operand must be a constant.
LINEAR_IN_FIRST = frozenset({
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "linear", "batch_norm", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "pad", "interpolate", "upsample",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose",
    "transpose_", "t", "T", "mT", "swapaxes", "swapdims", "movedim", "moveaxis", "squeeze",
    "squeeze_", "unsqueeze", "unsqueeze_", "contiguous", "expand", "expand_as", "broadcast_to",
    "repeat", "repeat_interleave", "tile", "flip", "fliplr", "flipud", "roll", "narrow", "select",
    "__getitem__", "index_select", "gather", "take_along_dim", "chunk", "split",
    "split_with_sizes", "tensor_split", "unbind", "unfold", "diagonal", "tril", "triu",
    "clone", "to", "float", "double", "half", "bfloat16", "type", "type_as", "cpu", "cuda",
    "div", "div_", "divide", "true_divide", "neg", "neg_", "negative", "positive", "cumsum",
    "sum", "mean", "masked_fill", "masked_fill_",
})

# Linear in all their tensor operands together (the listed positions must be constants).
LINEAR_IN_ALL = frozenset({
    "add", "add_", "__radd__", "sub", "sub_", "subtract", "__rsub__", "rsub", "cat", "concat",
    "concatenate", "stack", "hstack", "vstack", "dstack", "where", "__setitem__", "copy_",
})
CONSTANT_POSITIONS = {"where": (0,), "__setitem__": (1,)}

# Linear in any one of their operands while the others are constants.
LINEAR_IN_ONE = frozenset({
    "mul", "mul_", "multiply", "matmul", "mm", "bmm", "einsum", "tensordot", "outer", "inner",
    "dot", "kron",
})

# Operations with a `training` flag that must be off (otherwise they are random or mix the batch).
EVAL_ONLY = frozenset({
    "batch_norm", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "rrelu",
})

# Elementwise functions of one varying tensor: the Rescale (or RevealCancel) rule.
ELEMENTWISE = frozenset({
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid",
    "tanh", "softplus", "softsign", "hardtanh", "hardsigmoid", "hardswish", "log_sigmoid",
    "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "threshold", "prelu", "rrelu",
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "square", "pow",
    "__rpow__", "__rdiv__", "__rtruediv__", "reciprocal", "abs", "clamp", "clip", "clamp_min",
    "clamp_max", "erf", "erfc", "sin", "cos", "atan", "arctan", "sinh", "asinh", "arcsinh",
    "logit", "maximum", "minimum", "fmax", "fmin",
})

# Max pooling, and the function returning the pooled values with their argmax.
MAX_POOLS = {
    "max_pool1d": F.max_pool1d_with_indices,
    "max_pool1d_with_indices": F.max_pool1d_with_indices,
    "max_pool2d": F.max_pool2d_with_indices,
    "max_pool2d_with_indices": F.max_pool2d_with_indices,
    "adaptive_max_pool1d": F.adaptive_max_pool1d_with_indices,
    "adaptive_max_pool1d_with_indices": F.adaptive_max_pool1d_with_indices,
    "adaptive_max_pool2d": F.adaptive_max_pool2d_with_indices,
    "adaptive_max_pool2d_with_indices": F.adaptive_max_pool2d_with_indices,
}

# Linear operations whose positive and negative terms RevealCancel separates.
SIGNED_LINEAR = frozenset({
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "linear",
})

SUPPORTED = (
    "On input-dependent values genomatt supports linear operations (convolutions, linear "
    "layers, eval-mode batch norm and dropout, average pooling, sums, means, differences, "
    "concatenation, reshaping, padding, indexing, products and quotients with constants), "
    "elementwise functions of one input-dependent tensor (ReLU, LeakyReLU, ELU, GELU, SiLU, "
    "sigmoid, tanh, softplus, exp, ...), max pooling and torch.max over one axis; a detached value "
    "is a constant held at its value for the explained sequence."
)

_INTERNAL_DIRS = (
    os.path.dirname(torch.__file__) + os.sep,
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
)


def mark_varying(tree: Any) -> None:
    """Mark every tensor in ``tree`` as depending on the input."""
    for leaf in tree_leaves(tree):
        if isinstance(leaf, Tensor):
            setattr(leaf, _VARYING, True)


def is_varying(tensor: Tensor) -> bool:
    """Whether ``tensor`` was marked as depending on the input."""
    return getattr(tensor, _VARYING, False)


def require_varying(values: Any) -> None:
    """Refuse target values that do not depend on the input through operations a mode saw.

    Parameters
    ----------
    values : Any
        What the model (and the target reduction) returned under the mode.

    Raises
    ------
    ModelError
        If ``values`` is not marked as varying, e.g. for a TorchScript model.
    """
    if not is_varying(values):
        raise ModelError("the model output does not depend on its input through operations genomatt "
                         "can see; TorchScript and compiled models run their operations outside "
                         "Python, so load the weights into the model's Python class")


@contextlib.contextmanager
def as_model_error(inputs: Tensor) -> Iterator[None]:
    """Report any failure of the model on ``inputs`` as a :class:`~genomatt.errors.ModelError`.

    Parameters
    ----------
    inputs : Tensor
        The batch the model runs on, whose shape the message quotes.

    Raises
    ------
    ModelError
        For any exception inside the block other than a :class:`~genomatt.errors.GenomattError`,
        which passes unchanged.
    """
    try:
        yield
    except GenomattError:
        raise
    except Exception as error:
        raise ModelError(f"the model failed on a batch of shape {tuple(inputs.shape)}: {error}") from error


def operation_name(func: Callable) -> str:
    """The name of an intercepted operation (``relu``, ``conv1d``, ``__getitem__``, ``shape``)."""
    name = getattr(func, "__name__", None)
    if name == "__get__":
        return getattr(getattr(func, "__self__", None), "__name__", repr(func))
    return name or repr(func)


def _bind(func: Callable, args: tuple, kwargs: dict) -> inspect.BoundArguments | None:
    """Bind a call to its signature (defaults applied), or None for a builtin without one."""
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    bound.apply_defaults()
    return bound


def _in_place_name(name: str) -> bool:
    return name.endswith("_") and not name.startswith("_")


def _out_of_place(func: Callable, name: str) -> Callable | None:
    """The out-of-place twin of an in-place operation (``Tensor.relu`` for ``Tensor.relu_``), if any."""
    base = name[:-1]
    owners: list[Any] = []
    if getattr(func, "__qualname__", "").startswith(("TensorBase.", "Tensor.")):
        owners.append(torch.Tensor)
    owners.extend([sys.modules.get(getattr(func, "__module__", None) or ""), torch, F])
    return next((getattr(owner, base) for owner in owners if owner is not None and hasattr(owner, base)), None)


class DeepLiftMode(TorchFunctionMode):
    """Intercepts a forward pass: runs linear operations, applies DeepLIFT rules, refuses the rest.

    Parameters
    ----------
    model : torch.nn.Module
        The model, for naming the module that called an operation in error messages.
    rule : {"rescale", "revealcancel"}
        Rule for elementwise nonlinearities. RevealCancel applies where the nonlinearity's input
        comes straight from a convolution or linear layer (optionally through an eval-mode batch
        norm); elsewhere Rescale.
    data_shape : tuple of int, optional
        Shape of the data being explained, quoted when the model fails on it.
    """

    method_name = "DeepLIFT"
    """The method named in refusals."""
    supported = SUPPORTED
    """What the method supports, appended to refusals."""
    elementwise_rule_name = "Rescale"
    """The rule of elementwise functions, named when one has two input-dependent operands."""

    def __init__(self, model: nn.Module, rule: str = "rescale", data_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.rule = rule
        self.data_shape = data_shape
        self._module_names = {id(module): (name, type(module).__name__) for name, module in model.named_modules()}
        self._n_sequences = 0
        self._n_references = 0

    def layout(self, n_sequences: int, n_references: int) -> None:
        """Set the batch layout of the next forward pass: ``b`` sequences, then ``r`` references each."""
        self._n_sequences, self._n_references = n_sequences, n_references

    # --- dispatch ----------------------------------------------------------------------------

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        varying = [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, Tensor) and is_varying(leaf)]
        if not varying:
            return func(*args, **kwargs)
        name = operation_name(func)
        if name in METADATA or name in CONSTANT_RESULT:
            return func(*args, **kwargs)
        try:
            return self._dispatch(func, name, args, kwargs, varying)
        except GenomattError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise self._failure(name, args, kwargs, varying, error) from error

    def _dispatch(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Any:
        if name in EVAL_ONLY:
            self._require_eval(func, name, args, kwargs)
        base = name[:-1] if _in_place_name(name) else name
        binary = name in ("max", "min") and self._is_binary_max(args, kwargs)
        if name in ("max", "amax") and not binary:
            return self._max_over_axis(func, name, args, kwargs, varying)
        if name in LINEAR_IN_FIRST or name in LINEAR_IN_ALL or name in LINEAR_IN_ONE:
            return self._linear(func, name, args, kwargs, varying)
        if base in ELEMENTWISE or binary:
            return self._elementwise(func, name, args, kwargs, varying)
        if name in MAX_POOLS:
            return self._max_pool(name, args, kwargs, varying)
        if name == "detach":
            return self._held_constant(func, args, kwargs)
        raise self._refusal(name, "no DeepLIFT rule is known for it")

    def _held_constant(self, func: Callable, args: tuple, kwargs: dict) -> Tensor:
        """``detach``: a constant of the explanation, held at its value for the explained sequence.

        Each reference row takes the value of its sequence's row, so that a target weighted by
        detached values (a profile head's softmax weights) is one linear function for the sequence
        and its references, and summation-to-delta holds exactly.
        """
        out = func(*args, **kwargs)
        b, r = self._n_sequences, self._n_references
        if b and r and out.dim() and out.shape[0] == b * (1 + r):
            out = torch.cat([out[:b], out[:b].repeat_interleave(r, dim=0)])
        return out

    # --- linear operations -------------------------------------------------------------------

    def _linear(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Any:
        if name in LINEAR_IN_FIRST:
            first = args[0] if args else kwargs.get("input", kwargs.get("self"))
            if any(tensor is not first for tensor in varying):
                raise self._refusal(name, "it is linear only in its first operand, and another operand "
                                          "depends on the input too")
        elif name in LINEAR_IN_ONE:
            if len(varying) > 1:
                raise self._refusal(name, "it multiplies two input-dependent tensors (e.g. gating or "
                                          "attention), which has no exact DeepLIFT rule here")
        else:
            for position in CONSTANT_POSITIONS.get(name, ()):
                if position < len(args) and any(
                    isinstance(leaf, Tensor) and is_varying(leaf) for leaf in tree_leaves(args[position])
                ):
                    raise self._refusal(name, f"its operand {position} (a condition or index) depends on "
                                              "the input")
        out = func(*args, **kwargs)
        mark_varying(out)
        if args and isinstance(args[0], Tensor) and (name == "__setitem__" or _in_place_name(name)):
            # Writing into a view writes into its base too.
            mark_varying([args[0], args[0]._base])
        if self.rule == "revealcancel":
            self._split_linear(func, name, args, kwargs, out)
        return out

    def _require_eval(self, func: Callable, name: str, args: tuple, kwargs: dict) -> None:
        bound = _bind(func, args, kwargs)
        training = None if bound is None else bound.arguments.get("training")
        if training is not False:
            raise self._refusal(name, "it runs in training mode (batch statistics or random "
                                      "dropout); DeepLIFT needs the model in eval mode")

    # --- elementwise nonlinearities ----------------------------------------------------------

    @staticmethod
    def _is_binary_max(args: tuple, kwargs: dict) -> bool:
        other = args[1] if len(args) > 1 else kwargs.get("other")
        return isinstance(other, Tensor)

    def _elementwise(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Any:
        if len(varying) > 1:
            raise self._refusal(name, f"it combines two input-dependent tensors; the {self.elementwise_rule_name} "
                                      "rule needs one input-dependent operand")
        z = varying[0]
        function, in_place = self._elementwise_function(func, name, args, kwargs, z)
        try:
            out = self._elementwise_rule(name, z, function)
        except NotElementwise:
            raise self._refusal(name, "it is not elementwise here (its output and input-dependent "
                                      "operand differ in shape)") from None
        mark_varying(out)
        if in_place:
            z.copy_(out)
            return z
        return out

    def _elementwise_rule(self, name: str, z: Tensor, function: Callable[[Tensor], Tensor]) -> Tensor:
        """``function(z)`` with the Rescale (or RevealCancel) multipliers as its backward."""
        self._check_rows(name, z)
        split = self._valid_split(z) if self.rule == "revealcancel" else None
        if split is None:
            return RescaleFunction.apply(z, function, self._n_sequences, name in ("relu", "relu_"))
        return self._reveal_cancel(z, function, split)

    def _elementwise_function(self, func: Callable, name: str, args: tuple, kwargs: dict,
                              z: Tensor) -> tuple[Callable[[Tensor], Tensor], bool]:
        """The operation as an out-of-place function of its varying operand; whether it was in place."""
        in_place = _in_place_name(name)
        if in_place:
            func = _out_of_place(func, name)
            if func is None:
                raise self._refusal(name, "it has no out-of-place version to apply the rule to")
        else:
            bound = _bind(func, args, kwargs)
            if bound is not None and bound.arguments.get("inplace"):
                in_place = True
                bound.arguments["inplace"] = False
                args, kwargs = bound.args, bound.kwargs

        def function(value: Tensor) -> Tensor:
            def swap(leaf: Any) -> Any:
                return value if leaf is z else leaf

            return func(*tree_map(swap, args), **tree_map(swap, kwargs))

        return function, in_place

    def _reveal_cancel(self, z: Tensor, function: Callable[[Tensor], Tensor],
                       split: tuple[Tensor, Tensor]) -> Tensor:
        b = self._n_sequences
        positive, negative = split
        with torch.no_grad():
            out = function(z)
            if not isinstance(out, Tensor) or out.shape != z.shape:
                raise NotElementwise
            z_in, out_in = z[:b], out[:b]
            multiplier_positive, multiplier_negative = reveal_cancel_multipliers(
                z_in, z[b:], out_in, out[b:], positive.detach(), negative.detach(), function, slope(function, z_in))
        # The value is f(z); the gradient reaches the two parts of each Δz, each with its multiplier.
        carrier = positive * multiplier_positive + negative * multiplier_negative
        return torch.cat([out_in, out[b:] + (carrier - carrier.detach())])

    # --- max over windows --------------------------------------------------------------------

    def _max_pool(self, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Any:
        pool_with_indices = MAX_POOLS[name]
        bound = _bind(pool_with_indices, args, kwargs)
        if bound is None:
            raise self._refusal(name, "its arguments could not be read")
        z = bound.arguments["input"]
        if any(tensor is not z for tensor in varying):
            raise self._refusal(name, "an argument other than its input depends on the input")
        wants_indices = name.endswith("_with_indices") or bound.arguments.get("return_indices", False)
        arguments = dict(bound.arguments, return_indices=True)

        def pool(value: Tensor) -> tuple[Tensor, Tensor]:
            return pool_with_indices(**dict(arguments, input=value))

        fused = _fused_max_pool1d(arguments) if pool_with_indices is F.max_pool1d_with_indices else None
        out, indices = self._max(name, pooling_reduction(pool, fused), z)
        return (out, indices) if wants_indices else out

    def _max_over_axis(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Any:
        z = args[0] if args else kwargs.get("input")
        if any(tensor is not z for tensor in varying):
            raise self._refusal(name, "an argument other than its input depends on the input")
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
        if isinstance(dim, (tuple, list)) and len(dim) == 1:
            dim = dim[0]
        if not isinstance(dim, int):
            raise self._refusal(name, "a max over several axes (or all of them) is supported only over "
                                      "one axis that is not the batch axis")
        dim %= z.dim()
        if dim == 0:
            raise self._refusal(name, "a max over the batch axis mixes sequences")
        values, indices = self._max(name, axis_reduction(dim, bool(keepdim)), z)
        return values if name == "amax" else torch.return_types.max((values, indices))

    def _max(self, name: str, reduction: MaxReduction, z: Tensor) -> tuple[Tensor, Tensor]:
        self._check_rows(name, z)
        out, indices = CrossMaxFunction.apply(z, reduction, self._n_sequences)
        mark_varying(out)
        return out, indices

    # --- RevealCancel: positive and negative parts of each difference ------------------------

    def _split_linear(self, func: Callable, name: str, args: tuple, kwargs: dict, out: Tensor) -> None:
        """Attach to ``out`` the positive and negative parts of each pair's difference."""
        if name in SIGNED_LINEAR:
            z = args[0]
            self._check_rows(name, z)
            b = self._n_sequences
            z_in, z_ref = z[:b], z[b:]
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            extra = {key: value for key, value in kwargs.items() if key not in ("input", "weight", "bias")}

            def apply(value: Tensor, weight_part: Tensor) -> Tensor:
                return func(value, weight_part, None, *args[3:], **extra)

            with torch.no_grad():
                delta = (z_in.unsqueeze(1) - pairs(z_ref, z_in.shape[0])).reshape(z_ref.shape)
            # Its value is Δz; its gradient flows to the reference rows, as every multiplier does.
            carrier = z_ref + (delta - z_ref).detach()
            rising, falling = carrier * (delta > 0), carrier * (delta < 0)
            weight_positive, weight_negative = weight.clamp(min=0), weight.clamp(max=0)
            positive = apply(rising, weight_positive) + apply(falling, weight_negative)
            negative = apply(rising, weight_negative) + apply(falling, weight_positive)
            setattr(out, _SPLIT, (out._version, positive, negative))
        elif name == "batch_norm":
            split = self._valid_split(args[0])
            if split is None:
                return
            bound = _bind(func, args, kwargs)
            scale = (bound.arguments["running_var"] + bound.arguments["eps"]).rsqrt()
            if bound.arguments["weight"] is not None:
                scale = scale * bound.arguments["weight"]
            scale = scale.reshape(1, -1, *([1] * (out.dim() - 2)))
            up, down = scale.clamp(min=0), scale.clamp(max=0)
            positive, negative = split
            setattr(out, _SPLIT, (out._version, up * positive + down * negative, up * negative + down * positive))

    @staticmethod
    def _valid_split(tensor: Tensor) -> tuple[Tensor, Tensor] | None:
        # A split is stale once the tensor has been modified in place.
        split = getattr(tensor, _SPLIT, None)
        if split is None or split[0] != tensor._version:
            return None
        return split[1], split[2]

    # --- batch layout ------------------------------------------------------------------------

    def _check_rows(self, name: str, z: Tensor) -> None:
        expected = self._n_sequences * (1 + self._n_references)
        if z.dim() == 0 or z.shape[0] != expected:
            raise self._refusal(
                name, f"its input has {z.shape[0] if z.dim() else 'no'} rows where the batch has "
                      f"{expected}; DeepLIFT pairs rows, so the batch must stay on axis 0"
            )

    # --- messages ----------------------------------------------------------------------------

    def _location(self) -> str:
        """Where the intercepted call happened: module name and the model's source line."""
        frame = sys._getframe(1)
        module, site = None, None
        while frame is not None and (module is None or site is None):
            code = frame.f_code
            if site is None and not code.co_filename.startswith(_INTERNAL_DIRS):
                line = linecache.getline(code.co_filename, frame.f_lineno).strip()
                site = f"{code.co_filename}:{frame.f_lineno}" + (f" (`{line}`)" if line else "")
            if module is None and code.co_name == "forward":
                owner = frame.f_locals.get("self")
                module = self._module_names.get(id(owner)) if owner is not None else None
            frame = frame.f_back
        if module is None:
            where = "outside the model's modules"
        elif module[0]:
            where = f"in module '{module[0]}' ({module[1]})"
        else:
            where = f"in the forward of the model ({module[1]})"
        return where + (f" at {site}" if site else "")

    def _refusal(self, name: str, reason: str) -> ModelError:
        return ModelError(f"cannot compute {self.method_name} through `{name}` called {self._location()}: "
                          f"{reason}. {self.supported}")

    def _failure(self, name: str, args: tuple, kwargs: dict, varying: list[Tensor], error: Exception) -> ModelError:
        shapes = ", ".join(str(tuple(tensor.shape)) for tensor in varying)
        hint = ""
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        if name in ("conv1d", "conv2d", "conv3d") and isinstance(weight, Tensor):
            groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
            hint = (f"; this layer expects {weight.shape[1] * groups} input channels and got "
                    f"{varying[0].shape[1]}")
        elif name == "linear" and isinstance(weight, Tensor):
            hint = (f"; this layer expects {weight.shape[-1]} input features and got {varying[0].shape[-1]} "
                    "(was the model built for another sequence length?)")
        data = f"; the data X has shape (N, 4, L) = {self.data_shape}" if self.data_shape else ""
        return ModelError(f"the model failed at `{name}` called {self._location()} on input-dependent "
                          f"tensor(s) of shape {shapes}{hint}{data}: {error}")


class ModifiedGradientMode(DeepLiftMode):
    """Intercepts a forward pass for a modified-gradient method (epsilon-LRP, PatternNet).

    Linear operations run as they are and max operations keep their gradient, which routes to the
    winner of each window, instead of the cross-max rule; subclasses set the rule of elementwise
    functions and name the method in refusals.
    """

    def _max(self, name: str, reduction: MaxReduction, z: Tensor) -> tuple[Tensor, Tensor]:
        out, indices = reduction.compute(z)
        mark_varying(out)
        return out, indices


def _fused_max_pool1d(arguments: dict) -> Callable[[Tensor, int], tuple[Tensor, Tensor, Tensor, Tensor]] | None:
    """The fused CPU kernel of ``F.max_pool1d`` with these arguments (None for unbatched input)."""
    if arguments["input"].dim() != 3:
        return None

    def single(value: Any) -> int:
        return int(value[0]) if isinstance(value, (tuple, list)) else int(value)

    kernel = single(arguments["kernel_size"])
    stride = single(arguments["stride"]) if arguments["stride"] not in (None, [], ()) else kernel
    padding, dilation = single(arguments["padding"]), single(arguments["dilation"])
    ceil_mode = bool(arguments["ceil_mode"])

    def fused(z: Tensor, n_sequences: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return kernels.max_pool1d_cross_max(z, n_sequences, kernel, stride, padding, dilation, ceil_mode)

    return fused
