"""Every operation of a forward pass, seen one call at a time, with its DeepLIFT rule or a refusal.

An :class:`InterceptionMode` is a ``TorchFunctionMode``: while it is active, every torch function,
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
  varying tensor (Rescale or RevealCancel), a max over windows (cross-max, or Max SHAP where one window
  spans the whole input and ``max_rule="shapley"``), a product of two varying
  tensors (the two-factor Shapley rule), or a composite of these (softmax, logsumexp, layer norm,
  quotients; :mod:`genomatt.attribution.registry`, where users add rules by operation name);

anything else raises :class:`~genomatt.errors.ModelError` naming the operation, the module and the
source line that called it, as does a varying operation run with autograd disabled (``no_grad``, a
custom ``autograd.Function``'s forward) or an operand computed from the input by operations the mode
did not see (a TorchScript function, a C++ extension).

Each operation runs through the rule of its name in the mode's table. Three modes share this
machinery: :class:`DeepLiftMode` takes the DeepLIFT registry (:mod:`genomatt.attribution.registry`)
and a batch that holds ``b`` sequences followed by their ``r`` references each (the layout of
:mod:`genomatt.attribution.rules`), so every rule sees a reference and its sequence in the same
call; :class:`ModifiedGradientMode` (epsilon-LRP, PatternNet) takes the basic rules
(:func:`basic_rules`) and a batch of sequences alone.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import linecache
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_leaves, tree_map, tree_unflatten

from genomatt.attribution import kernels
from genomatt.attribution.rules import (
    CrossMaxFunction,
    MaxReduction,
    NotElementwise,
    RescaleFunction,
    ShapleyMaxFunction,
    axis_reduction,
    pairs,
    pooling_reduction,
    reveal_cancel_multipliers,
)
from genomatt.attribution.torchscript import TorchScriptGraph, node_site
from genomatt.errors import ConfigError, GenomattError, ModelError

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
    # The kernels interpolate calls, which a TorchScript graph names.
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
    "upsample_trilinear3d", "upsample_bicubic2d", "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa",
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
    # Fourier transforms (long convolutions of Hyena-like models) and the complex values between them.
    "fft_fft", "fft_ifft", "fft_rfft", "fft_irfft", "fft_fft2", "fft_ifft2", "fft_rfft2", "fft_irfft2",
    "fft_fftn", "fft_ifftn", "fft_rfftn", "fft_irfftn", "fft_hfft", "fft_ihfft", "fft_fftshift",
    "fft_ifftshift", "real", "imag", "view_as_real", "view_as_complex", "conj", "resolve_conj",
})

# Their second operand gives only a shape or dtype: it may depend on the input.
SHAPE_OF_SECOND = frozenset({"view_as", "reshape_as", "expand_as", "type_as"})

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

# Comparisons: their boolean results change with the input but carry no multiplier.
COMPARISONS = frozenset({
    "gt", "ge", "lt", "le", "eq", "ne", "greater", "greater_equal", "less", "less_equal", "not_equal",
    "__gt__", "__ge__", "__lt__", "__le__", "__eq__", "__ne__", "isclose", "argmax", "argmin", "argsort",
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
    "concatenation, reshaping, padding, indexing, Fourier transforms, products and quotients with "
    "constants), elementwise functions of one input-dependent tensor (ReLU, GELU, SiLU, ELU, sigmoid, tanh, "
    "softplus, exp, log, ...), products and matrix products of two (gating, glu, attention), "
    "quotients, softmax, log_softmax, logsumexp, layer_norm, rms_norm, group_norm, instance_norm, var, std, "
    "p-norms, normalize, maximum/minimum, "
    "attention (scaled_dot_product_attention, nn.MultiheadAttention), nn.GRU, nn.LSTM, max "
    "pooling and torch.max/min over one axis; other operations take a rule from rules={...} (Python)."
)

MODIFIED_GRADIENT_SUPPORTED = (
    "On input-dependent values this method supports linear operations (convolutions, linear layers, eval-mode "
    "batch norm and dropout, average pooling, sums, means, concatenation, reshaping, padding, indexing, Fourier "
    "transforms, products with constants), elementwise functions of one input-dependent tensor and max pooling; "
    "products of two input-dependent tensors (gating, attention), softmax, layer norm and recurrent layers have no "
    "rule here."
)

class AmbiguousBatchAxis(ModelError):
    """Axis 0 of a tensor and another axis have the batch's size: a batch of another size tells them apart
    (:func:`~genomatt.attribution.deep_lift_shap` explains the pairs again in passes of another size)."""


BATCH_FIRST = ("genomatt finds the batch on axis 0, or on axis 1 of a sequence-first (L, N, ...) tensor as "
               "nn.LSTM and nn.TransformerEncoderLayer make without batch_first; permute the tensor so that the "
               "batch is on one of them")

# The frame of a TorchScript graph's node walk, whose local `node` is the node being run.
_WALK_CODE = TorchScriptGraph._run.__code__
_INTERNAL_DIRS = (
    os.path.dirname(torch.__file__) + os.sep,
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
)


def _linear_rule(mode: "InterceptionMode", func: Callable, args: tuple, kwargs: dict) -> Any:
    return mode._linear(func, mode.operation, args, kwargs, mode.varying_operands(args, kwargs))


def _elementwise_rule(mode: "InterceptionMode", func: Callable, args: tuple, kwargs: dict) -> Any:
    return mode._elementwise(func, mode.operation, args, kwargs, mode.varying_operands(args, kwargs))


def _max_pool_rule(mode: "InterceptionMode", func: Callable, args: tuple, kwargs: dict) -> Any:
    return mode._max_pool(func, mode.operation, args, kwargs, mode.varying_operands(args, kwargs))


def _max_rule(mode: "InterceptionMode", func: Callable, args: tuple, kwargs: dict) -> Any:
    """``max``/``min``/``amax``/``amin``: over one axis (the max rule; a min is ``-max(-x)``), or of two tensors
    (elementwise)."""
    name, varying = mode.operation, mode.varying_operands(args, kwargs)
    if name in ("max", "min") and mode._is_binary_max(args, kwargs):
        return mode._elementwise(func, name, args, kwargs, varying)
    return mode._max_over_axis(func, name, args, kwargs, varying)


def _held_rule(mode: "InterceptionMode", func: Callable, args: tuple, kwargs: dict) -> Any:
    return mode._held_constant(func, args, kwargs)


def basic_rules() -> dict[str, Callable]:
    """The rules every intercepting method shares: linear operations, elementwise functions, maxima.

    Returns
    -------
    dict of str to callable
        Operation name → rule ``rule(mode, func, args, kwargs)``.
    """
    rules: dict[str, Callable] = {}
    rules.update(dict.fromkeys(LINEAR_IN_FIRST | LINEAR_IN_ALL | LINEAR_IN_ONE, _linear_rule))
    rules.update(dict.fromkeys(ELEMENTWISE, _elementwise_rule))
    rules.update(dict.fromkeys(MAX_POOLS, _max_pool_rule))
    rules.update(dict.fromkeys(("max", "min", "amax", "amin"), _max_rule))
    rules["hold_at_sequence"] = _held_rule
    rules["detach"] = _held_rule
    return rules


def hold_at_sequence(tensor: Tensor) -> Tensor:
    """A constant of the explained function: ``tensor`` detached, held at the explained sequence's value.

    Outside an explanation it is ``tensor.detach()``. Under the DeepLIFT engine every reference
    row takes the value of its sequence's row, so a target weighted by held values (a profile
    head's softmax weights) is one linear function for a sequence and its references. genomatt's
    profile targets use it; a ``detach()`` in a model is explained through, as the model computes.

    Parameters
    ----------
    tensor : Tensor
        Rows in the engine's batch layout when under the engine.

    Returns
    -------
    Tensor
        Detached.
    """
    if torch.overrides.has_torch_function_unary(tensor):
        return torch.overrides.handle_torch_function(hold_at_sequence, (tensor,), tensor)
    return tensor.detach()


class HeldValuesRefused(TorchFunctionMode):
    """Refuse :func:`hold_at_sequence` in a target explained at other inputs than the sequence's own.

    Integrated gradients takes the gradient along a path of inputs, and in silico mutagenesis and occlusion
    run the model on edited sequences: a value held there would be held at each of those inputs, not at the
    explained sequence as the target means.

    Parameters
    ----------
    method : str
        The method, named in the error.
    inputs : str
        What the method runs the model on instead of the sequence, said in the error.
    """

    def __init__(self, method: str, inputs: str):
        super().__init__()
        self.method, self.inputs = method, inputs

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is hold_at_sequence:
            raise ConfigError(f"{self.method} cannot hold a value at the explained sequence's (the target holds "
                              f"one, as the 'held' profile convention does): it runs the model on {self.inputs}, "
                              "each of which would hold its own; use the 'bpnet' profile convention, or deeplift")
        return func(*args, **(kwargs or {}))


def mark_varying(tree: Any) -> None:
    """Mark every tensor in ``tree`` as depending on the input."""
    for leaf in tree_leaves(tree):
        if isinstance(leaf, Tensor):
            setattr(leaf, _VARYING, True)


def varying_input(batch: Tensor) -> Tensor:
    """The model's input for an explained pass: a copy of ``batch`` (so that a model writing into its input in
    place, ``x[..., :k] = 0``, writes into no autograd leaf) marked as depending on the input."""
    model_input = batch.clone()
    mark_varying(model_input)
    return model_input


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


def _public_names() -> dict[Callable, str]:
    """The public name of each torch and ``torch.nn.functional`` function defined under a private one
    (``F.threshold`` is ``_threshold``), as users call it and rules are named."""
    names: dict[Callable, str] = {}
    for owner in (torch, F):
        for name in dir(owner):
            function = getattr(owner, name, None)
            private = getattr(function, "__name__", None)
            if (not name.startswith("_") and callable(function) and not isinstance(function, type)
                    and isinstance(private, str) and private.startswith("_") and private != name):
                names.setdefault(function, name)
    return names


_PUBLIC_NAMES = _public_names()


def operation_name(func: Callable) -> str:
    """The name of an intercepted operation (``relu``, ``conv1d``, ``__getitem__``, ``shape``): the public
    name of a function defined under a private one (``threshold``, not ``_threshold``)."""
    try:
        public = _PUBLIC_NAMES.get(func)
    except TypeError:  # an unhashable callable
        public = None
    if public is not None:
        return public
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


class InterceptionMode(TorchFunctionMode):
    """Intercepts a forward pass: each operation on input-dependent values runs through its rule.

    The rules come from a table, operation name → ``rule(mode, func, args, kwargs)``: the DeepLIFT
    registry (:func:`genomatt.attribution.registry.deep_lift_rules`) or the basic rules every method
    shares (:func:`basic_rules`); an operation without one is refused. Subclasses say what a linear
    operation, an elementwise function of one input-dependent tensor, a product of two and a max do
    under their method.

    Parameters
    ----------
    model : torch.nn.Module
        The model, for naming the module that called an operation in error messages.
    rules : dict of str to callable
        The rule of each operation.
    data_shape : tuple of int, optional
        Shape of the data being explained, quoted when the model fails on it.
    """

    method_name: str
    """The method named in refusals."""
    autograd_required: bool
    """Refuse input-dependent operations run with autograd disabled or reached by unseen operations."""
    supported = SUPPORTED
    """What the method supports, appended to refusals."""
    takes_rules = False
    """Whether a user may add rules (``rules={...}``), which a refusal then suggests."""
    elementwise_rule_name: str
    """The rule of elementwise functions, named when one has two input-dependent operands."""

    def __init__(self, model: nn.Module, rules: Mapping[str, Callable], data_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.rules = rules
        self.operation = ""
        self.data_shape = data_shape
        self._module_names = {id(module): (name, type(module).__name__) for name, module in model.named_modules()}

    # --- dispatch ----------------------------------------------------------------------------

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        varying = [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, Tensor) and is_varying(leaf)]
        if not varying:
            return func(*args, **kwargs)
        name = operation_name(func)
        if name == "new_tensor" and any(is_varying(leaf) for leaf in tree_leaves(args[1:])
                                        if isinstance(leaf, Tensor)):
            raise self._refusal(name, "it copies input-dependent values into a new tensor outside autograd, so "
                                      "they would count as a constant; use .clone() or .detach(), which genomatt "
                                      "explains through")
        if name in METADATA or name in CONSTANT_RESULT:
            return func(*args, **kwargs)
        try:
            return self._dispatch(func, name, args, kwargs, varying)
        except GenomattError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise self._failure(name, args, kwargs, varying, error) from error

    def _dispatch(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Any:
        if self.autograd_required and not torch.is_grad_enabled():
            raise self._refusal(name, f"it runs with autograd disabled ({self._grad_disabled_context()}), so "
                                      "genomatt cannot apply its rules to it; remove the no_grad block, or "
                                      "write the custom Function's forward as ordinary torch operations")
        if self.autograd_required:
            self._check_seen(name, args, kwargs)
        if name in EVAL_ONLY:
            self._require_eval(func, name, args, kwargs)
        base = name[:-1] if _in_place_name(name) else name
        rule = self.rules.get(name) or self.rules.get(base)
        if rule is None and base in COMPARISONS:
            tokens = ("; a model that turns its one-hot input into token ids (argmax) to look them up in a table "
                      "takes genomatt.models.one_hot_embedding in place of both (docs/models.md, 'Models that take "
                      "tokens')" if base in ("argmax", "argmin") else "")
            raise self._refusal(name, "it compares input-dependent values, and a mask or condition that changes with "
                                      "the input has no multiplier; write the masking with elementwise functions "
                                      "(torch.where(h > 0, h, a * h) is F.leaky_relu(h, a); clamp, maximum)"
                                      + tokens)
        if rule is None:
            way_out = (f"in Python, add one with deep_lift_shap(..., rules={{{name!r}: ...}}), see "
                       "docs/methods/deeplift.md; from the command line, write the model's Python class with "
                       "operations genomatt explains" if self.takes_rules else
                       "explain such a model with deeplift, integrated_gradients or gradient_x_input")
            raise self._refusal(name, f"no {self.method_name} rule is known for it ({way_out})")
        self.operation = name
        return rule(self, func, args, kwargs)

    def _check_seen(self, name: str, args: tuple, kwargs: dict) -> None:
        """Refuse an operand computed from the input by operations the mode did not see.

        Parameters are frozen while a model is explained, so an unmarked tensor that requires a
        gradient can only come from the input through code outside Python (a TorchScript or
        compiled submodule, a C++ extension).
        """
        for leaf in tree_leaves((args, kwargs)):
            if isinstance(leaf, Tensor) and leaf.grad_fn is not None and not is_varying(leaf):
                raise self._refusal(name, "an operand depends on the input through operations genomatt did not "
                                          "see (a TorchScript or compiled submodule, a C++ extension, a torch.vmap or "
                                          "other torch.func transform, as in borzoi-pytorch's relative shift), or is "
                                          "computed from parameters that are not registered in the model")

    @staticmethod
    def _grad_disabled_context() -> str:
        """The custom autograd Function whose forward is running, or the no_grad block."""
        frame = sys._getframe(1)
        while frame is not None:
            ctx = frame.f_locals.get("ctx") if frame.f_code.co_name == "forward" else None
            if isinstance(ctx, torch.autograd.function.FunctionCtx):
                owner = type(ctx).__name__.removesuffix("Backward")
                return f"the forward of custom torch.autograd.Function {owner}"
            frame = frame.f_back
        return "a torch.no_grad() or torch.inference_mode() block, or a custom torch.autograd.Function"

    def varying_operands(self, args: tuple, kwargs: dict) -> list[Tensor]:
        """The input-dependent tensors among the arguments of a call, in order."""
        return [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, Tensor) and is_varying(leaf)]

    def refuse(self, reason: str) -> ModelError:
        """The error refusing the current operation, naming it, its module and source line."""
        return self._refusal(self.operation, reason)

    def _held_constant(self, func: Callable, args: tuple, kwargs: dict) -> Tensor:
        """``detach`` and :func:`hold_at_sequence`: a constant of the explanation."""
        return func(*args, **kwargs)

    def _bilinear(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Tensor:
        """A product of two input-dependent tensors (gating, attention)."""
        raise NotImplementedError

    def _elementwise_rule(self, name: str, z: Tensor, function: Callable[[Tensor], Tensor]) -> Tensor:
        """``function(z)`` for an elementwise function of one input-dependent tensor, with the method's rule."""
        raise NotImplementedError

    def _batch_second(self, z: Tensor) -> bool:
        """Whether ``z`` holds the batch on axis 1 (sequence-first), for a method that pairs rows."""
        return False

    def axis_zero_reason(self, z: Tensor) -> str:
        """Why an operation over axis 0 of ``z`` is refused."""
        return "it acts over axis 0, the batch axis, which mixes sequences"

    def _max(self, name: str, reduction: MaxReduction, z: Tensor) -> tuple[Tensor, Tensor]:
        """The values and indices of a max over windows or an axis, with the method's rule."""
        raise NotImplementedError

    # --- linear operations -------------------------------------------------------------------

    def _linear(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Any:
        if name in LINEAR_IN_FIRST:
            first = args[0] if args else kwargs.get("input", kwargs.get("self"))
            if name in SHAPE_OF_SECOND and not any(tensor is first for tensor in varying):
                return func(*args, **kwargs)  # a constant in the shape of an input-dependent tensor
            if any(tensor is not first for tensor in varying) and name not in SHAPE_OF_SECOND:
                raise self._refusal(name, "it is linear only in its first operand, and another operand "
                                          "depends on the input too")
        elif name in LINEAR_IN_ONE:
            if len(varying) > 1:
                return self._bilinear(func, name, args, kwargs, varying)
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
        return out

    def _require_eval(self, func: Callable, name: str, args: tuple, kwargs: dict) -> None:
        bound = _bind(func, args, kwargs)
        training = None if bound is None else bound.arguments.get("training")
        if training is not False:
            raise self._refusal(name, "it runs in training mode (batch statistics or random dropout) with "
                                      "the model in eval mode: the layer ignores eval mode (a BatchNorm with "
                                      "track_running_stats=False, F.dropout(..., training=True)) or a "
                                      "TorchScript trace recorded it in training mode (trace again after "
                                      "model.eval()); DeepLIFT needs eval-mode layers")

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
        if z.is_complex():
            raise self._refusal(name, "its operand is complex, and the rules of nonlinear functions take real "
                                      "values: take .real, .imag or .abs() of it first")
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

    # --- max over windows --------------------------------------------------------------------

    def _max_pool(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Any:
        pool_with_indices = MAX_POOLS[name]
        bound = _bind(pool_with_indices, args, kwargs)
        if bound is None:
            raise self._refusal(name, "its arguments could not be read")
        z = bound.arguments["input"]
        if any(tensor is not z for tensor in varying):
            raise self._refusal(name, "an argument other than its input depends on the input")
        # torch's own adaptive max pools (aten's, which a TorchScript graph calls) return values and indices.
        wants_indices = (name.endswith("_with_indices") or bound.arguments.get("return_indices", False)
                         or (name.startswith("adaptive") and not _is_functional(func)))
        arguments = dict(bound.arguments, return_indices=True)

        def pool(value: Tensor) -> tuple[Tensor, Tensor]:
            return pool_with_indices(**dict(arguments, input=value))

        fused = _fused_max_pool1d(arguments) if pool_with_indices is F.max_pool1d_with_indices else None
        out, indices = self._max(name, pooling_reduction(pool, fused, _spans_whole_input(name, arguments)), z)
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
        minimum = name in ("min", "amin")
        if minimum:
            z = -z  # min(z) = -max(-z): the max rule on the negated values, its values negated back
        if dim == 0 and self._batch_second(z):
            # Over the positions of a sequence-first tensor (L, B, ...): the max over axis 1 of (B, L, ...).
            values, indices = self._max(name, axis_reduction(1, bool(keepdim)), z.transpose(0, 1))
            if keepdim:
                values, indices = values.transpose(0, 1), indices.transpose(0, 1)
        elif dim == 0:
            raise self._refusal(name, self.axis_zero_reason(z))
        else:
            values, indices = self._max(name, axis_reduction(dim, bool(keepdim)), z)
        if minimum:
            values = -values
        mark_varying(values)
        if name in ("amax", "amin"):
            return values
        return (torch.return_types.min if minimum else torch.return_types.max)((values, indices))

    # --- messages ----------------------------------------------------------------------------

    def _location(self) -> str:
        """Where the intercepted call happened: module name and the model's source line."""
        frame = sys._getframe(1)
        module, site, unregistered = None, None, None
        while frame is not None and (module is None or site is None):
            code = frame.f_code
            if site is None and code is _WALK_CODE:
                # A TorchScript graph run node by node: the node and the model's source line it records.
                return f"at the model's {node_site(frame.f_locals['node'])}"
            if site is None and not code.co_filename.startswith(_INTERNAL_DIRS):
                line = linecache.getline(code.co_filename, frame.f_lineno).strip()
                site = f"{code.co_filename}:{frame.f_lineno}" + (f" (`{line}`)" if line else "")
            if module is None and code.co_name == "forward" and code.co_argcount:
                owner = frame.f_locals.get(code.co_varnames[0])  # the module: `self`, however it is named
                module = self._module_names.get(id(owner)) if owner is not None else None
                if module is None and unregistered is None and isinstance(owner, nn.Module):
                    unregistered = type(owner).__name__
            frame = frame.f_back
        if unregistered is not None:
            # model.eval() and the module names reach only registered submodules.
            where = (f"in a {unregistered} that is not a registered submodule of the model (held in a plain "
                     "list or dict? hold it in nn.ModuleList or nn.ModuleDict)")
        elif module is None:
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


class DeepLiftMode(InterceptionMode):
    """Intercepts a forward pass: runs linear operations, applies DeepLIFT rules, refuses the rest.

    The batch holds ``b`` sequences followed by their ``r`` references each (:meth:`layout`), so
    every rule sees a reference and its sequence in the same call. The rules are the DeepLIFT
    registry's (:mod:`genomatt.attribution.registry`) with the user's ``rules`` over them.

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
    rules : mapping of str to callable, optional
        The user's rules by operation name, over the built-in ones.
    max_rule : {"cross_max", "shapley"}
        Rule for a max over a whole axis (a global max pool, ``torch.max`` over an axis):
        :class:`~genomatt.attribution.rules.CrossMaxFunction` or
        :class:`~genomatt.attribution.rules.ShapleyMaxFunction`. Windowed max pools use cross-max.

    Attributes
    ----------
    whole_axis_max : bool
        Whether a forward pass under the mode has taken a max over a whole axis of more than one element,
        where the two max rules differ.
    rule_sites : list of (str, str) or None
        Where a list, each elementwise nonlinearity of a forward pass appends the rule it took
        (``"rescale"`` or ``"revealcancel"``) and where it was called; None (the default) records nothing.
    """

    method_name = "DeepLIFT"
    autograd_required = True
    takes_rules = True
    elementwise_rule_name = "Rescale"

    def __init__(self, model: nn.Module, rule: str = "rescale", data_shape: tuple[int, ...] | None = None,
                 rules: Mapping[str, Callable] | None = None, max_rule: str = "cross_max"):
        from genomatt.attribution.registry import deep_lift_rules

        super().__init__(model, deep_lift_rules(rules), data_shape)
        self.rule = rule
        self.max_rule = max_rule
        self.whole_axis_max = False
        self.rule_sites: list[tuple[str, str]] | None = None
        self._n_sequences = 0
        self._n_references = 0

    def layout(self, n_sequences: int, n_references: int) -> None:
        """Set the batch layout of the next forward pass: ``b`` sequences, then ``r`` references each."""
        self._n_sequences, self._n_references = n_sequences, n_references

    def pass_through(self, func: Callable, args: tuple, kwargs: dict) -> Tensor:
        """``detach()`` in a model: the function the model computes is explained, through it."""
        z = args[0]
        out = z.view_as(z)
        mark_varying(out)
        return out

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

    def _linear(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Any:
        out = super()._linear(func, name, args, kwargs, varying)
        if self.rule in ("revealcancel", "genomics_default"):
            self._split_linear(func, name, args, kwargs, out)
        return out

    def _bilinear(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Tensor:
        """A product of two input-dependent tensors (gating, attention): the two-factor Shapley rule."""
        leaves, spec = tree_flatten((args, kwargs))
        positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, Tensor) and is_varying(leaf)]
        if len(positions) > 2 and name == "einsum" and isinstance(leaves[0], str):
            return self._einsum_in_pairs(leaves[0], leaves[1:])
        if len(positions) != 2:
            raise self._refusal(name, f"it multiplies {len(positions)} input-dependent tensors; the product "
                                      "rule takes two")
        in_place = _in_place_name(name)
        if in_place:
            func = _out_of_place(func, name)

        def function(first: Tensor, second: Tensor) -> Tensor:
            operands = list(leaves)
            operands[positions[0]], operands[positions[1]] = first, second
            call_args, call_kwargs = tree_unflatten(operands, spec)
            return func(*call_args, **call_kwargs)

        if in_place:
            return self.product_into(function, leaves[positions[0]], leaves[positions[1]])
        return self.product(function, leaves[positions[0]], leaves[positions[1]])

    def _einsum_in_pairs(self, equation: str, operands: list) -> Tensor:
        """An einsum of three or more input-dependent operands, as einsums of two taken left to right.

        Each step keeps the indices the output or a later operand needs; a step of two input-dependent
        operands takes the product rule, one with a constant is linear. Every step sums to its output's
        difference, so the whole does.
        """
        equation = equation.replace(" ", "")
        if "..." in equation or not all(isinstance(operand, Tensor) for operand in operands):
            raise self._refusal("einsum", "it multiplies more than two input-dependent tensors with an ellipsis "
                                          "('...') in its equation; write the indices out, or take the product "
                                          "two operands at a time")
        inputs, arrow, output = equation.partition("->")
        terms = inputs.split(",")
        if not arrow:  # an implicit output: the indices that appear once, in alphabetical order
            output = "".join(sorted(index for index in set(inputs) - {","} if inputs.count(index) == 1))
        product, indices = operands[0], terms[0]
        for step, (operand, term) in enumerate(zip(operands[1:], terms[1:]), start=1):
            needed = output + "".join(terms[step + 1:])
            kept = "".join(dict.fromkeys(index for index in indices + term if index in needed))
            pair = f"{indices},{term}->{kept}"
            if is_varying(product) and is_varying(operand):
                product = self.product(functools.partial(torch.einsum, pair), product, operand)
            else:
                varying = is_varying(product) or is_varying(operand)
                product = torch.einsum(pair, product, operand)
                if varying:
                    mark_varying(product)
            indices = kept
        out = torch.einsum(f"{indices}->{output}", product)
        mark_varying(out)
        return out

    def product_into(self, function: Callable[[Tensor, Tensor], Tensor], target: Tensor, other: Tensor) -> Tensor:
        """:meth:`product` written into its first operand, as an in-place product (``h *= g``) does.

        The product's backward pass keeps its operands, so the rule reads a copy of ``target``, which the
        result then overwrites.
        """
        operand = target.clone()
        mark_varying(operand)
        target.copy_(self.product(function, operand, other))
        return target

    def product(self, function: Callable[[Tensor, Tensor], Tensor], first: Tensor, second: Tensor) -> Tensor:
        """``function(first, second)`` for a function linear in each operand, with the Shapley rule.

        For each (sequence, reference) pair the output difference splits exactly as
        Δ(a·b) = ½ (a + a0) Δb + ½ (b + b0) Δa: each operand's multiplier is the function's
        gradient with the other operand held at its pair average.

        Parameters
        ----------
        function : callable
            Bilinear in its two operands (``torch.mul``, ``torch.matmul``, an einsum, ...).
        first, second : Tensor, shape (b * (1 + r), ...)
            Input-dependent operands in the batch layout.

        Returns
        -------
        Tensor
            ``function(first, second)``, marked as input-dependent.
        """
        name = self.operation
        if self._batch_second(first) and self._batch_second(second):
            rows = self._n_sequences * (1 + self._n_references)

            def batch_first(a: Tensor, c: Tensor) -> Tensor:
                value = function(a.transpose(0, 1), c.transpose(0, 1))
                if value.dim() < 2 or value.shape[1] != a.shape[0]:
                    raise self.refuse(f"its sequence-first operands (batch of {rows} on axis 1) give an output "
                                      f"of shape {tuple(value.shape)}, whose batch is not on axis 1 ({BATCH_FIRST})")
                return value.transpose(0, 1)

            out = self.product(batch_first, first.transpose(0, 1), second.transpose(0, 1)).transpose(0, 1)
            mark_varying(out)
            return out
        self._check_rows(name, first)
        self._check_rows(name, second)
        b, r = self._n_sequences, self._n_references
        out = function(first, second)
        rows = b * (1 + r)
        if b and r and (out.dim() == 0 or out.shape[0] != rows):
            raise self._refusal(name, f"its input-dependent operands keep the batch of {rows} on axis 0 and its "
                                      f"output of shape {tuple(out.shape)} does not: it sums over the batch's "
                                      "sequences or moves the batch; keep the batch first in the product and "
                                      "permute its result")
        if b and r:
            with torch.no_grad():
                first_mean = 0.5 * (first[:b].repeat_interleave(r, dim=0) + first[b:])
                second_mean = 0.5 * (second[:b].repeat_interleave(r, dim=0) + second[b:])
            carrier = function(first[b:], second_mean) + function(first_mean, second[b:])
            out = torch.cat([out[:b], out[b:].detach() + (carrier - carrier.detach())])
        mark_varying(out)
        return out

    def rescale(self, z: Tensor, function: Callable[[Tensor], Tensor]) -> Tensor:
        """``function(z)`` for an elementwise function of one input-dependent tensor, with its rule.

        The rule is Rescale (or RevealCancel where the setting asks for it); the result is marked
        as input-dependent.
        """
        try:
            out = self._elementwise_rule(self.operation, z, function)
        except NotElementwise:
            raise self.refuse("it is not elementwise here (its output and input-dependent operand differ "
                              "in shape)") from None
        mark_varying(out)
        return out

    def group_constant(self, values: Tensor) -> Tensor:
        """Per-row constants made equal within each sequence's group: the largest over the group.

        Parameters
        ----------
        values : Tensor, shape (b * (1 + r), ...)
            A value per row (detached).

        Returns
        -------
        Tensor, same shape
            Each row holds the largest value of its sequence and that sequence's references, so
            a shift by it cancels in every (sequence, reference) difference.
        """
        b, r = self._n_sequences, self._n_references
        values = values.detach()
        if not (b and r):
            return values
        group = torch.maximum(values[:b], pairs(values[b:], b).amax(dim=1))
        return torch.cat([group, group.repeat_interleave(r, dim=0)])

    def _elementwise_rule(self, name: str, z: Tensor, function: Callable[[Tensor], Tensor]) -> Tensor:
        """``function(z)`` with the Rescale (or RevealCancel) multipliers as its backward."""
        if self._batch_second(z):
            # A sequence-first tensor (L, B, ...): the same rule with the batch brought to the front.
            out = self._elementwise_rule(name, z.transpose(0, 1),
                                         lambda value: function(value.transpose(0, 1)).transpose(0, 1)
                                         ).transpose(0, 1)
            mark_varying(out)
            return out
        self._check_rows(name, z)
        split = self._valid_split(z) if self.rule in ("revealcancel", "genomics_default") else None
        if self.rule_sites is not None:
            self.rule_sites.append(("rescale" if split is None else "revealcancel", f"`{name}` {self._location()}"))
        if split is None:
            return RescaleFunction.apply(z, function, self._n_sequences, name in ("relu", "relu_"))
        return self._reveal_cancel(z, function, split)

    def _reveal_cancel(self, z: Tensor, function: Callable[[Tensor], Tensor],
                       split: tuple[Tensor, Tensor]) -> Tensor:
        b = self._n_sequences
        positive, negative, _ = split
        with torch.no_grad():
            out = function(z)
            if not isinstance(out, Tensor) or out.shape != z.shape:
                raise NotElementwise
            out_in = out[:b]
            multiplier_positive, multiplier_negative = reveal_cancel_multipliers(
                out_in, z[b:], out[b:], positive.detach(), negative.detach(), function)
        # The value is f(z); the gradient reaches the two parts of each Δz, each with its multiplier.
        carrier = positive * multiplier_positive + negative * multiplier_negative
        return torch.cat([out_in, out[b:] + (carrier - carrier.detach())])

    def _max(self, name: str, reduction: MaxReduction, z: Tensor) -> tuple[Tensor, Tensor]:
        self._check_rows(name, z)
        # A max over one element is the identity under either rule.
        self.whole_axis_max = self.whole_axis_max or (reduction.whole and reduction.inputs(z).shape[-1] > 1)
        function = ShapleyMaxFunction if self.max_rule == "shapley" and reduction.whole else CrossMaxFunction
        out, indices = function.apply(z, reduction, self._n_sequences)
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
            # An input equal to its reference gets half of each part's multiplier, as in the original
            # DeepLIFT: 0.5 (m+ + m−) · W (its difference, and so its term's value, is zero).
            unchanged = 0.5 * (delta == 0)
            rising, falling = carrier * ((delta > 0) + unchanged), carrier * ((delta < 0) + unchanged)
            weight_positive, weight_negative = weight.clamp(min=0), weight.clamp(max=0)
            positive = apply(rising, weight_positive) + apply(falling, weight_negative)
            negative = apply(rising, weight_negative) + apply(falling, weight_positive)
            setattr(out, _SPLIT, (out._version, positive, negative, name == "linear"))
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
            positive, negative, dense = split
            setattr(out, _SPLIT, (out._version, up * positive + down * negative, up * negative + down * positive,
                                  dense))

    def _valid_split(self, tensor: Tensor) -> tuple[Tensor, Tensor, bool] | None:
        """The positive and negative parts of ``tensor``'s differences and whether a dense layer made them.

        None where RevealCancel does not apply: no split, a stale one (the tensor was modified in
        place since), or one from a convolution under ``genomics_default``.
        """
        split = getattr(tensor, _SPLIT, None)
        if split is None or split[0] != tensor._version:
            return None
        if self.rule == "genomics_default" and not split[3]:
            return None
        return split[1], split[2], split[3]

    # --- batch layout ------------------------------------------------------------------------

    def _check_rows(self, name: str, z: Tensor) -> None:
        expected = self._n_sequences * (1 + self._n_references)
        self._refuse_ambiguous_axes(z)
        if z.dim() == 0 or z.shape[0] != expected:
            raise self._refusal(
                name, f"its input has {z.shape[0] if z.dim() else 'no'} rows where the batch has "
                      f"{expected}; DeepLIFT pairs rows, so the batch must stay on axis 0 ({BATCH_FIRST})"
            )

    def _batch_second(self, z: Tensor) -> bool:
        """Whether ``z`` is sequence-first, ``(L, B, ...)``: its batch on axis 1 rather than 0 (nn.LSTM, nn.GRU
        and nn.TransformerEncoderLayer without batch_first)."""
        rows = self._n_sequences * (1 + self._n_references)
        self._refuse_ambiguous_axes(z)
        return z.dim() >= 2 and z.shape[0] != rows and z.shape[1] == rows

    def _refuse_ambiguous_axes(self, z: Tensor) -> None:
        """Raise :class:`AmbiguousBatchAxis` where axis 0 of ``z`` and another axis have the batch's size."""
        rows = self._n_sequences * (1 + self._n_references)
        if self._n_references and z.dim() >= 2 and z.shape[0] == rows and rows in z.shape[1:]:
            raise AmbiguousBatchAxis(f"a tensor of shape {tuple(z.shape)} has the batch's size, {rows}, on axis 0 "
                                     "and another axis, so which holds the batch cannot be told")

    def axis_zero_reason(self, z: Tensor) -> str:
        """Why an operation over axis 0 of ``z`` is refused: it mixes the batch's sequences, or axis 0 is
        not the batch (a sequence-first layout), which genomatt needs on axis 0."""
        expected = self._n_sequences * (1 + self._n_references)
        if z.dim() and z.shape[0] != expected:
            return (f"it acts over axis 0 of a tensor of shape {tuple(z.shape)}, whose batch of {expected} rows "
                    f"is not on axis 0; DeepLIFT pairs rows, so the batch must stay on axis 0 ({BATCH_FIRST})")
        return "it acts over the batch axis, which mixes sequences"


def refuse_opaque_modules(model: nn.Module) -> None:
    """Refuse a model with a part whose operations run outside Python, where no rule can apply.

    Parameters
    ----------
    model : torch.nn.Module

    Raises
    ------
    ModelError
        Naming the TorchScript or compiled (``torch.compile``) submodule; a whole TorchScript model
        is walked by :class:`~genomatt.attribution.torchscript.TorchScriptGraph` instead.
    """
    if isinstance(model, TorchScriptGraph):
        return
    for name, module in model.named_modules():
        opaque = isinstance(module, torch.jit.ScriptModule) or type(module).__name__ == "OptimizedModule"
        if opaque and name:
            kind = "TorchScript" if isinstance(module, torch.jit.ScriptModule) else "compiled (torch.compile)"
            raise ModelError(f"module '{name}' of the model is a {kind} module, whose operations run outside "
                             "Python where genomatt's rules cannot apply; use its Python class there")


class ModifiedGradientMode(InterceptionMode):
    """Intercepts a forward pass for a modified-gradient method (epsilon-LRP, PatternNet).

    Linear operations run as they are and max operations keep their gradient, which routes to the
    winner of each window, instead of the cross-max rule; subclasses set the rule of elementwise
    functions and name the method in refusals. Products of two input-dependent tensors and the
    DeepLIFT composite rules (softmax, layer norm, ...) are refused.
    """

    autograd_required = True
    supported = MODIFIED_GRADIENT_SUPPORTED

    def __init__(self, model: nn.Module):
        if isinstance(model, torch.jit.ScriptModule):
            raise ModelError(f"cannot compute {self.method_name} on a TorchScript model, which runs its operations "
                             "outside Python where the method's rules cannot apply: give the model's Python class (a "
                             "factory and its weights), or explain it with deeplift, integrated_gradients or "
                             "gradient_x_input")
        refuse_opaque_modules(model)
        super().__init__(model, basic_rules())

    def _bilinear(self, func: Callable, name: str, args: tuple, kwargs: dict, varying: list[Tensor]) -> Tensor:
        raise self._refusal(name, "it multiplies two input-dependent tensors (e.g. gating or attention), "
                                  f"which has no {self.method_name} rule")

    def _max(self, name: str, reduction: MaxReduction, z: Tensor) -> tuple[Tensor, Tensor]:
        out, indices = reduction.compute(z)
        mark_varying(out)
        return out, indices


def _is_functional(func: Callable) -> bool:
    """Whether ``func`` is a ``torch.nn.functional`` wrapper (not the ``torch`` / aten function of that name)."""
    return getattr(func, "__module__", None) == F.__name__


def _spans_whole_input(name: str, arguments: dict) -> bool:
    """Whether a batched max pool has one window spanning its whole input (a global max pool)."""
    z = arguments["input"]
    spatial = 2 if "2d" in name else 1
    if z.dim() != spatial + 2:
        return False

    def sizes(value: Any) -> tuple[int, ...]:
        values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        # An adaptive pool's None keeps that axis's size, so it is never a whole-axis window.
        return tuple(-1 if v is None else int(v) for v in values) * (spatial if len(values) == 1 else 1)

    if "adaptive" in name:
        return all(size == 1 for size in sizes(arguments["output_size"]))
    return (sizes(arguments["kernel_size"]) == tuple(z.shape[2:]) and not any(sizes(arguments["padding"]))
            and all(d == 1 for d in sizes(arguments["dilation"])))


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
