"""PatternNet and PatternAttribution (Kindermans et al., 2018): explanations that separate signal from distractor.

The weights w of a layer y = wᵀx filter out the distractors of the data as much as they detect the
signal, so the gradient (w itself) points partly away from the signal. Kindermans et al. estimate,
for every neuron, the direction a in which its input carries its output — the *pattern* — from
training data: with y computed without bias,

* linear estimator S_a:         a = cov[x, y] / σ²(y)
* two-component estimator S_a+: the same moments over the inputs where the neuron is active
  (y + b > 0) only, for neurons followed by a ReLU, whose inactive regime passes no signal back.

For a linear model with additive distractor, a is exactly the signal direction. PatternNet then
back-projects the output value with the patterns in place of the weights, giving the estimated
signal in input space; PatternAttribution back-projects with w ⊙ a, giving the contribution of the
signal (a root point of Deep Taylor decomposition learned from data). Everything else in the
network — ReLU gates, max pools, average pools, residual sums, the average over both strands —
passes the back-projection as its gradient does.

The forward pass runs under the interception machinery the DeepLIFT engine shares
(:mod:`genomatt.attribution.interception`), which sees every call: convolutions and linear layers
must be ``nn.Conv1d`` / ``nn.Linear`` modules of the model (their weights are what the patterns
replace), a batch norm must directly follow one of them (it is folded into it, as eval-mode batch
norm is an affine map), the only nonlinearities allowed are ReLU and max operations (the methods
are defined for ReLU networks), and every other operation on input-dependent values must be
linear. Anything else is refused before any output.
"""

from __future__ import annotations

import datetime
import io
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genomatt import __version__
from genomatt.atomic import atomic_path
from genomatt.attribution.inputs import as_sequences, check_batch_size, single_output
from genomatt.attribution.interception import (ModifiedGradientMode, as_model_error, is_varying, mark_varying,
                                               varying_input)
from genomatt.attribution.outputs import check_finite_values, explained, per_target, prepared
from genomatt.errors import ConfigError, ModelError
from genomatt.device import resolve_device

ESTIMATORS = ("two_component", "linear")
PATTERNS_FORMAT = "genomatt-patterns"
PATTERNS_VERSION = 1
KERNEL_OPERATIONS = {"conv1d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                     "linear": ("input", "weight", "bias")}
OTHER_KERNELS = frozenset({"conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                           "matmul", "mm", "bmm", "einsum", "tensordot"})
SUPPORTED = ("PatternNet and PatternAttribution explain ReLU networks whose convolutions and linear layers are "
             "nn.Conv1d and nn.Linear modules (a batch norm only directly after one), with ReLU, max pooling "
             "and linear operations (average pooling, sums, reshaping, flips) in between.")
_SOURCE = "_genomatt_pattern_source"
_POOLED = "_genomatt_pattern_pooled"


@dataclass(frozen=True)
class Patterns:
    """Signal patterns of every convolution and linear layer of a model, fitted by :func:`fit_patterns`.

    Attributes
    ----------
    layers : tuple of str
        Module name of each ``Conv1d`` / ``Linear`` in the order of first use; ``conv+norm`` when a
        batch norm follows it.
    patterns : tuple of Tensor
        One per layer, shaped like its weight, ``(out, in, k)`` or ``(out, in)``, float32: the
        pattern of the layer with its batch norm folded in.
    scales : tuple of Tensor
        One per layer, ``(out,)``: the factor the batch norm multiplies each output by (ones without one).
    estimator : {"two_component", "linear"}
    model_hash : str
        :func:`genomatt.models.content_hash` of the model the patterns belong to.
    n_sequences : int
        Number of training sequences the moments were taken over.
    """

    layers: tuple[str, ...]
    patterns: tuple[Tensor, ...]
    scales: tuple[Tensor, ...]
    estimator: str
    model_hash: str
    n_sequences: int

    def save(self, path: str | os.PathLike) -> None:
        """Write the patterns to a ``torch.save`` file of plain data (loads with ``weights_only``)."""
        payload = {
            "format": PATTERNS_FORMAT, "format_version": PATTERNS_VERSION, "estimator": self.estimator,
            "layers": list(self.layers), "patterns": [pattern.cpu() for pattern in self.patterns],
            "scales": [scale.cpu() for scale in self.scales], "model_sha256": self.model_hash,
            "n_sequences": self.n_sequences, "genomatt_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        # Serialised in memory first: torch.save reports a full disk as an opaque RuntimeError.
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getbuffer())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Patterns:
        """Read patterns written by :meth:`save`."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as error:
            raise ModelError(f"{path}: cannot read patterns: {error}") from None
        if not isinstance(payload, dict) or payload.get("format") != PATTERNS_FORMAT:
            raise ModelError(f"{path}: not a genomatt patterns file (written by Patterns.save)")
        return cls(tuple(payload["layers"]), tuple(payload["patterns"]), tuple(payload["scales"]),
                   payload["estimator"], payload["model_sha256"], int(payload["n_sequences"]))

    def layer(self, kernel: str) -> tuple[str, Tensor, Tensor]:
        """The full layer name, pattern and batch-norm scale of kernel module ``kernel``."""
        for name, pattern, scale in zip(self.layers, self.patterns, self.scales):
            if name.split("+")[0] == kernel:
                return name, pattern, scale
        raise ModelError(f"the patterns have no layer '{kernel}' (they have {', '.join(self.layers)}); fit them "
                         "again with fit_patterns")


# --- one forward pass, seen call by call ----------------------------------------------------------


@dataclass
class _KernelCall:
    """One call of a convolution or linear layer: the inputs each output neuron saw, and its outputs.

    ``patches`` and ``y`` are ``(rows, in · k)`` and ``(rows, out)``, one row per sequence and output
    position; ``y`` is without bias and, once a batch norm is folded in, scaled as it scales it.
    """

    kernel: str
    norm: str | None
    patches: Tensor
    y: Tensor
    scale: Tensor
    kind: str
    active: Tensor | None = None
    """``(rows, out)`` bool, where the ReLU this call feeds is active; None if it feeds none."""

    @property
    def name(self) -> str:
        return self.kernel if self.norm is None else f"{self.kernel}+{self.norm}"


def _kernel_arguments(name: str, args: tuple, kwargs: dict) -> dict:
    names = KERNEL_OPERATIONS[name]
    arguments = dict(zip(names, args))
    arguments.update(kwargs)
    defaults = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}
    return {key: arguments.get(key, defaults.get(key)) for key in names}


def _single(value: object) -> int | str:
    return value if isinstance(value, str) else int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def _patches(name: str, arguments: dict) -> Tensor:
    """The input each output neuron sees, ``(rows, in · k)``, rows ordered by sequence then position."""
    x, weight = arguments["input"], arguments["weight"]
    if name == "linear":
        return x.reshape(-1, x.shape[-1])
    kernel = weight.shape[-1]
    stride, padding, dilation = (_single(arguments[key]) for key in ("stride", "padding", "dilation"))
    span = dilation * (kernel - 1) + 1
    if padding == "same":
        left, right = (span - 1) // 2, span - 1 - (span - 1) // 2
    else:
        left = right = 0 if padding == "valid" else padding
    windows = F.pad(x, (left, right)).unfold(2, span, stride)[..., ::dilation]
    return windows.permute(0, 2, 1, 3).reshape(-1, x.shape[1] * kernel)


def _rows(z: Tensor, kind: str) -> Tensor:
    """Outputs of a kernel layer as ``(rows, out)``, in the row order of :func:`_patches`."""
    return z.transpose(1, 2).reshape(-1, z.shape[1]) if kind == "conv1d" else z.reshape(-1, z.shape[-1])


class _PatternMode(ModifiedGradientMode):
    """Intercepts a forward pass: hands kernel layers, batch norms and ReLUs to subclasses, runs max
    operations and linear operations as they are, and refuses the rest."""

    method_name = "PatternNet"
    supported = SUPPORTED

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.kernels = {id(module.weight): name for name, module in model.named_modules()
                        if isinstance(module, (nn.Conv1d, nn.Linear))}
        self.norms = {id(module.running_mean): name for name, module in model.named_modules()
                      if isinstance(module, nn.BatchNorm1d) and module.running_mean is not None}

    def _linear(self, func, name, args, kwargs, varying):
        if name in KERNEL_OPERATIONS:
            arguments = _kernel_arguments(name, args, kwargs)
            kernel = self.kernels.get(id(arguments["weight"]))
            if kernel is None or any(tensor is not arguments["input"] for tensor in varying):
                raise self._refusal(name, "its weight is not the weight of an nn.Conv1d or nn.Linear module of "
                                          "the model, or an operand other than its input depends on the input")
            if name == "conv1d" and arguments["groups"] != 1:
                raise self._refusal(name, "only convolutions with groups=1 are supported")
            out = self._kernel(func, name, args, kwargs, arguments, kernel)
        elif name in OTHER_KERNELS:
            raise self._refusal(name, "the patterns are fitted for nn.Conv1d and nn.Linear layers only")
        elif name == "batch_norm":
            source = getattr(varying[0], _SOURCE, None)
            norm = self.norms.get(id(args[1] if len(args) > 1 else kwargs.get("running_mean")))
            if source is None or norm is None:
                raise self._refusal(name, "a batch norm is supported only as an nn.BatchNorm1d module directly "
                                          "after an nn.Conv1d or nn.Linear, into which it is folded")
            self._require_eval(func, name, args, kwargs)
            out = self._batch_norm(func(*args, **kwargs), source, norm, args, kwargs)
        else:
            return super()._linear(func, name, args, kwargs, varying)
        mark_varying(out)
        return out

    def _elementwise(self, func, name, args, kwargs, varying):
        if name not in ("relu", "relu_") or len(varying) > 1:
            raise self._refusal(name, "PatternNet is defined for ReLU networks; no other nonlinearity is supported")
        z = varying[0]
        # A ReLU after a max pool gates the pooled layer's neurons as one before the pool would, since
        # relu(max(y)) = max(relu(y)): the layer's regime is y > 0 at every position, winner of its window or not.
        gated = getattr(z, _POOLED, z)
        self._activated(gated, gated > 0)
        out = func(*args, **kwargs)
        mark_varying(out)
        return out

    def _max(self, name, reduction, z):
        out, indices = super()._max(name, reduction, z)
        if getattr(z, _SOURCE, None) is not None:
            setattr(out, _POOLED, z)
        return out, indices

    def _kernel(self, func, name, args, kwargs, arguments, kernel):
        """Run the call ``name`` of kernel module ``kernel``; return its (marked) output."""
        raise NotImplementedError

    def _batch_norm(self, out, source, norm, args, kwargs):
        """Handle batch norm ``norm`` applied to the output of kernel call ``source``; return ``out``."""
        raise NotImplementedError

    def _activated(self, z: Tensor, active: Tensor) -> None:
        """A ReLU is applied to ``z``; ``active`` says where z > 0."""


class _FittingMode(_PatternMode):
    """Collects every kernel call of a forward pass, with its batch norm folded in and its ReLU regime."""

    method_name = "the patterns of PatternNet and PatternAttribution"
    # Fitting runs without autograd; the explaining pass after it (with autograd) refuses what it did not see.
    autograd_required = False

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.calls: list[_KernelCall] = []

    def _kernel(self, func, name, args, kwargs, arguments, kernel):
        out = func(*args, **kwargs)
        weight = arguments["weight"]
        patches = _patches(name, arguments)
        call = _KernelCall(kernel, None, patches, patches @ weight.reshape(weight.shape[0], -1).T,
                           torch.ones(weight.shape[0], dtype=out.dtype, device=out.device), name)
        self.calls.append(call)
        setattr(out, _SOURCE, call)
        return out

    def _batch_norm(self, out, source, norm, args, kwargs):
        if source.norm is not None:
            raise self._refusal("batch_norm", "two batch norms follow one layer")
        running_var = args[2] if len(args) > 2 else kwargs["running_var"]
        weight = args[3] if len(args) > 3 else kwargs.get("weight")
        eps = args[7] if len(args) > 7 else kwargs.get("eps", 1e-5)
        scale = (running_var + eps).rsqrt() * (weight if weight is not None else 1.0)
        source.norm, source.scale, source.y = norm, scale, source.y * scale
        setattr(out, _SOURCE, source)
        return out

    def _activated(self, z: Tensor, active: Tensor) -> None:
        source = getattr(z, _SOURCE, None)
        if source is not None and source.active is None:
            source.active = _rows(active, source.kind)


def _trace(mode: _PatternMode, model: nn.Module, x: Tensor) -> Tensor:
    """Run ``model`` on ``x`` under ``mode``; return the output (the tensor of a tuple of one)."""
    with as_model_error(x), mode:
        output = single_output(model(varying_input(x)))
    if not isinstance(output, Tensor):
        raise ModelError(f"the model returns {type(output).__name__}; PatternNet and PatternAttribution explain "
                         "columns of one output tensor (B, n_outputs): wrap the model so that it returns the head "
                         "to explain")
    if not is_varying(output):
        raise ModelError("the model output does not depend on its input through operations genomatt can see; "
                         "TorchScript and compiled models run their operations outside Python")
    return output


# --- fitting ------------------------------------------------------------------------------------


@dataclass
class _Moments:
    """Running sums for cov[x, y] and σ²(y) of every neuron of one layer, in float64."""

    count: Tensor | float = 0.0
    sum_x: Tensor | float = 0.0
    sum_y: Tensor | float = 0.0
    sum_xy: Tensor | float = 0.0
    sum_yy: Tensor | float = 0.0
    scale: Tensor | None = None
    shape: torch.Size = field(default_factory=torch.Size)

    def add(self, patches: Tensor, y: Tensor, mask: Tensor) -> None:
        patches, y, mask = patches.double(), y.double(), mask.double()
        y_masked = y * mask
        self.count = self.count + mask.sum(dim=0)
        self.sum_x = self.sum_x + patches.T @ mask
        self.sum_y = self.sum_y + y_masked.sum(dim=0)
        self.sum_xy = self.sum_xy + patches.T @ y_masked
        self.sum_yy = self.sum_yy + (y_masked * y).sum(dim=0)

    def pattern(self) -> Tensor:
        """cov[x, y] / σ²(y) per neuron, shaped like the weight; zero for a neuron without variance."""
        count = torch.clamp(self.count, min=1.0)
        mean_x, mean_y = self.sum_x / count, self.sum_y / count
        covariance = self.sum_xy / count - mean_x * mean_y
        variance = self.sum_yy / count - mean_y**2
        usable = (self.count >= 2) & (variance > 1e-12 * torch.clamp(self.sum_yy / count, min=1e-30))
        pattern = torch.where(usable, covariance / torch.where(usable, variance, 1.0), 0.0)
        return pattern.T.float().reshape(self.shape)


@torch.inference_mode(False)
def fit_patterns(
    model: nn.Module,
    X_train: Tensor | np.ndarray,
    estimator: str = "two_component",
    batch_size: int = 128,
    device: str | torch.device | None = None,
) -> Patterns:
    """Fit the signal patterns of every convolution and linear layer from training sequences.

    Parameters
    ----------
    model : torch.nn.Module
        A ReLU network as described in :mod:`genomatt.attribution.patterns`, run in eval mode and put
        back as it was. A layer used several times (e.g. on both strands) gets the moments of all
        its uses.
    X_train : Tensor or numpy.ndarray, shape (N, 4, L)
        Sequences the moments are taken over, typically the training set; only the inputs are
        used, never labels.
    estimator : {"two_component", "linear"}, default "two_component"
        ``"two_component"`` takes the moments over active inputs for neurons followed by a ReLU
        (S_a+ of the paper) and over all inputs elsewhere; ``"linear"`` over all inputs (S_a).
    batch_size : int, default 128
        Sequences per forward pass.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.

    Returns
    -------
    Patterns
        Save them with :meth:`Patterns.save` beside the model file.
    """
    from genomatt.models.io import content_hash

    X_train = as_sequences(X_train)
    batch_size = check_batch_size(batch_size)
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    moments: dict[str, _Moments] = {}
    device = resolve_device(device)
    with prepared(model, device) as dtype, torch.no_grad():
        for start in range(0, X_train.shape[0], batch_size):
            mode = _FittingMode(model)
            _trace(mode, model, X_train[start:start + batch_size].to(device, dtype))
            for call in mode.calls:
                # Neurons feeding no ReLU, and every neuron for the linear estimator, use all inputs.
                active = call.active if call.active is not None and estimator == "two_component" else \
                    torch.ones_like(call.y)
                layer = moments.setdefault(call.name, _Moments(scale=call.scale, shape=_weight_shape(model, call)))
                layer.add(call.patches, call.y, active)
    kernels = [name.split("+")[0] for name in moments]
    if len(set(kernels)) != len(kernels):
        raise ModelError(f"a layer is followed by a batch norm at one use and not at another ({', '.join(moments)})")
    if not moments:
        raise ModelError(f"the model has no nn.Conv1d or nn.Linear layer on the input's path. {SUPPORTED}")
    return Patterns(tuple(moments), tuple(layer.pattern() for layer in moments.values()),
                    tuple(layer.scale.float().cpu() for layer in moments.values()), estimator, content_hash(model),
                    int(X_train.shape[0]))


def _weight_shape(model: nn.Module, call: _KernelCall) -> torch.Size:
    return dict(model.named_modules())[call.kernel].weight.shape


# --- explaining ---------------------------------------------------------------------------------


class _ProjectingMode(_PatternMode):
    """Runs the forward pass with each kernel layer's backward using its pattern (PatternNet) or its
    weight ⊙ pattern (PatternAttribution) in place of its weight; everything else keeps its gradient."""

    def __init__(self, model: nn.Module, patterns: Patterns, attribution: bool):
        self.method_name = "PatternAttribution" if attribution else "PatternNet"
        super().__init__(model)
        self.patterns, self.attribution = patterns, attribution

    def _kernel(self, func, name, args, kwargs, arguments, kernel):
        out = func(*args, **kwargs)
        layer, pattern, scale = self.patterns.layer(kernel)
        weight = arguments["weight"].detach()
        pattern = pattern.to(weight.device, weight.dtype)
        scale = scale.to(weight.device, weight.dtype).reshape(-1, *([1] * (weight.dim() - 1)))
        # The batch norm after the layer multiplies the backward pass by its scale, so the layer itself
        # carries the folded matrix divided by it: pattern / scale, or (weight · scale) ⊙ pattern / scale.
        matrix = weight * pattern if self.attribution else pattern / scale
        extra = {key: value for key, value in arguments.items() if key not in ("input", "weight", "bias")}
        replaced = func(arguments["input"], matrix, None, *extra.values()) if name == "conv1d" else \
            func(arguments["input"], matrix)
        out = out.detach() + (replaced - replaced.detach())
        setattr(out, _SOURCE, layer)
        return out

    def _batch_norm(self, out, source, norm, args, kwargs):
        if source != f"{source.split('+')[0]}+{norm}":
            raise self._refusal("batch_norm", f"the patterns were fitted with '{source}', not with batch norm "
                                              f"'{norm}' after the layer")
        return out


def _resolve_patterns(model: nn.Module, patterns: Patterns | None, X_train: Tensor | np.ndarray | None,
                      batch_size: int, device: str | torch.device | None, method: str) -> Patterns:
    from genomatt.models.io import content_hash

    if patterns is None and X_train is None:
        raise ConfigError(f"{method} needs signal patterns fitted on training sequences: pass "
                          "patterns=fit_patterns(model, X_train) or X_train=")
    if patterns is not None and X_train is not None:
        raise ConfigError(f"{method}: pass either patterns= or X_train= (to fit them now), not both")
    if patterns is None:
        return fit_patterns(model, X_train, batch_size=batch_size, device=device)
    if not isinstance(patterns, Patterns):
        raise ConfigError(f"patterns must be a Patterns object (fit_patterns, Patterns.load), got "
                          f"{type(patterns).__name__}")
    model_hash = content_hash(model)
    if patterns.model_hash != model_hash:
        raise ConfigError(f"the patterns were fitted for model {patterns.model_hash[:12]}, not this model "
                         f"({model_hash[:12]}); fit them again with fit_patterns")
    return patterns


def _pattern_method(model: nn.Module, X: Tensor | np.ndarray, target: int | list[int], hypothetical: bool,
                    patterns: Patterns | None, X_train: Tensor | np.ndarray | None, batch_size: int,
                    device: str | torch.device | None, attribution: bool, method: str) -> Tensor:
    X = as_sequences(X)
    batch_size = check_batch_size(batch_size)
    if callable(target):
        raise ConfigError(f"{method} explains output columns: target must be an int or a non-empty list of ints, "
                          f"got {target!r}")
    patterns = _resolve_patterns(model, patterns, X_train, batch_size, device, method)
    chunks = []
    with explained(model, target, device) as model_ready:
        mode = _ProjectingMode(model, patterns, attribution)
        for start in range(0, X.shape[0], batch_size):
            batch = X[start:start + batch_size].to(model_ready.device, model_ready.dtype).requires_grad_(True)
            with torch.enable_grad():
                values = model_ready.reduce_output(_trace(mode, model, batch))
                check_finite_values(values)
                model_ready.check_rows_independent(batch, values)
                # The back-projection starts from the output value itself, not from 1.
                signals = [torch.autograd.grad(values[:, k], batch, values[:, k].detach(),
                                               retain_graph=k < values.shape[1] - 1)[0]
                           for k in range(values.shape[1])]
            chunks.append(torch.stack(signals, dim=1).float().cpu())
    scores = torch.cat(chunks)
    return per_target(scores if hypothetical else X.unsqueeze(1) * scores, target)


def patternnet(
    model: nn.Module,
    X: Tensor | np.ndarray,
    target: int | list[int] = 0,
    hypothetical: bool = False,
    patterns: Patterns | None = None,
    X_train: Tensor | np.ndarray | None = None,
    batch_size: int = 128,
    device: str | torch.device | None = None,
) -> Tensor:
    """PatternNet: the signal of the input that the output detects (Kindermans et al., 2018).

    The output value is back-projected with the patterns in place of the weights; for a linear
    model y = wᵀx + b the result is a·y with y the output value, bias included (as innvestigate's
    PatternNet), which is the signal component of x where b = 0; the gradient would return w.

    Parameters
    ----------
    model : torch.nn.Module
        A ReLU network as described in :mod:`genomatt.attribution.patterns`.
    X : Tensor or numpy.ndarray, shape (N, 4, L)
        One-hot sequences, channels A, C, G, T.
    target : int or list of int
        Output column(s) to explain.
    hypothetical : bool, default False
        Return the estimated signal over all four bases instead of its value at the observed base.
    patterns : Patterns, optional
        From :func:`fit_patterns` or :meth:`Patterns.load`, for this model.
    X_train : Tensor or numpy.ndarray, shape (M, 4, L), optional
        Training sequences to fit two-component patterns on now, when ``patterns`` is not given.
    batch_size : int, default 128
        Sequences per forward and backward pass.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.

    Returns
    -------
    Tensor, shape (N, 4, L), or (N, T, 4, L) for a list of T targets, float32 on the CPU
    """
    return _pattern_method(model, X, target, hypothetical, patterns, X_train, batch_size, device,
                           attribution=False, method="patternnet")


def patternattribution(
    model: nn.Module,
    X: Tensor | np.ndarray,
    target: int | list[int] = 0,
    hypothetical: bool = False,
    patterns: Patterns | None = None,
    X_train: Tensor | np.ndarray | None = None,
    batch_size: int = 128,
    device: str | torch.device | None = None,
) -> Tensor:
    """PatternAttribution: the contribution of the signal to the output (Kindermans et al., 2018).

    The output value is back-projected with w ⊙ a in place of each weight w: Deep Taylor
    decomposition with the root point x − a·y learned from data rather than chosen by a rule. For
    a linear model y = wᵀx + b the relevance of input i is w_i a_i y, y the output value (bias included).

    Parameters
    ----------
    model, X, target, patterns, X_train, batch_size, device
        As in :func:`patternnet`.
    hypothetical : bool, default False
        Return the relevance over all four bases instead of its value at the observed base.

    Returns
    -------
    Tensor, shape (N, 4, L), or (N, T, 4, L) for a list of T targets, float32 on the CPU
    """
    return _pattern_method(model, X, target, hypothetical, patterns, X_train, batch_size, device,
                           attribution=True, method="patternattribution")
