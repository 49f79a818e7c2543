"""Explaining a TorchScript model: its graph run node by node as Python torch calls.

A TorchScript model runs its operations in C++, where no rule can see them. :class:`TorchScriptGraph`
wraps it as an ``nn.Module`` whose forward walks the model's inlined graph and performs every
``aten::`` operation as the equivalent ``torch`` / ``torch.nn.functional`` / tensor-method call, so
the DeepLIFT engine intercepts each one exactly as in the model's Python class, with the same rules
and refusals. Control flow (``prim::If``, ``prim::Loop``), attribute access, lists, tuples and
scalar arithmetic are evaluated directly. A node the walk does not know is refused, naming it and
the model source line recorded in the TorchScript file.
"""

from __future__ import annotations

import linecache
import math
import operator
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genomatt.errors import GenomattError, ModelError

__all__ = ["NODE_LABEL", "TorchScriptGraph", "node_site"]

NODE_LABEL = "TorchScript node"
# A source line of a TorchScript node: `path(line): function` (trace) or `File "path", line N` (script).
_FRAME = re.compile(r'^(?:\S.*\(\d+\): \w|File ".*", line \d+)')
_TORCH_DIR = os.path.dirname(torch.__file__)

# torch functions that a TorchScript graph holds as their operations, one by one, but that a Python model calls
# as one function, explained by one rule (nn.MultiheadAttention's, whose operations fold the heads into the batch).
INLINED_LAYERS = ("multi_head_attention_forward",)

LOAD_PYTHON_CLASS = ("load the weights into the model's Python class instead: model = MyModel(...); "
                     "model.load_state_dict(torch.jit.load(path).state_dict()), or give genomatt "
                     "`package.module:factory` with --weights (docs/models.md)")


def _slice(values: Any, *bounds: Any) -> Any:
    if isinstance(values, Tensor):
        dim, start, end, step = bounds
        return values[(slice(None),) * (dim % values.dim()) + (slice(start, end, step),)]
    start, end, step = bounds
    return values[start:end:step]


def _substring(text: str, start: int, end: int) -> str:
    """TorchScript's ``text[start:end]`` of its string methods, whose end -1 means the end of the string."""
    return text[start:] if end == -1 else text[start:end]


def _batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _layer_norm(input, normalized_shape, weight, bias, eps, cudnn_enable):
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def _convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups, *flags):
    dims = weight.dim() - 2
    if transposed:
        return getattr(F, f"conv_transpose{dims}d")(input, weight, bias, stride, padding, output_padding, groups,
                                                    dilation)
    return getattr(F, f"conv{dims}d")(input, weight, bias, stride, padding, dilation, groups)


def _convolution_mode(input, weight, bias, stride, padding, dilation, groups):
    # A convolution with a padding mode ("same", "valid"), as nn.Conv1d(..., padding="same") traces.
    return getattr(F, f"conv{weight.dim() - 2}d")(input, weight, bias, stride, padding, dilation, groups)


def _index(tensor, indices):
    # Tensor indexing (x[:, idx]): a None in the list keeps that axis whole.
    return tensor[tuple(slice(None) if index is None else index for index in indices)]


def _dropout(input, p, train):
    return F.dropout(input, p, train)


def _native_multi_head_attention(query, key, value, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight,
                                 proj_bias, mask=None, need_weights=True, average_attn_weights=True,
                                 mask_type=None):
    # nn.MultiheadAttention's fused path (batch first), run as its Python path (sequence first), which
    # the attention rule explains.
    if mask is not None:
        raise ModelError("genomatt cannot walk the fused attention aten::_native_multi_head_attention with a "
                         "mask; " + LOAD_PYTHON_CLASS)
    out, weights = F.multi_head_attention_forward(
        query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), embed_dim, num_heads, qkv_weight,
        qkv_bias, None, None, False, 0.0, proj_weight, proj_bias, training=False, need_weights=need_weights,
        average_attn_weights=average_attn_weights)
    return out.transpose(0, 1), weights if weights is not None else out.new_empty(0)


def _transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias,
                                   use_gelu, norm_first, eps, norm_weight_1, norm_bias_1, norm_weight_2,
                                   norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2, mask=None,
                                   mask_type=None):
    # nn.TransformerEncoderLayer's fused path (batch first, eval mode), run as its Python path.
    def attend(x):
        return _native_multi_head_attention(x, x, x, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight,
                                            proj_bias, mask, need_weights=False)[0]

    def feed_forward(x):
        hidden = F.linear(x, ffn_weight_1, ffn_bias_1)
        return F.linear(F.gelu(hidden) if use_gelu else F.relu(hidden), ffn_weight_2, ffn_bias_2)

    def norm(x, weight, bias):
        return F.layer_norm(x, (embed_dim,), weight, bias, eps)

    if norm_first:
        src = src + attend(norm(src, norm_weight_1, norm_bias_1))
        return src + feed_forward(norm(src, norm_weight_2, norm_bias_2))
    src = norm(src + attend(src), norm_weight_1, norm_bias_1)
    return norm(src + feed_forward(src), norm_weight_2, norm_bias_2)


# aten operations whose Python spelling differs from their schema (argument order or name).
_SPECIAL: dict[str, Callable] = {
    "slice": _slice, "_convolution": _convolution, "_convolution_mode": _convolution_mode, "index": _index,
    "batch_norm": _batch_norm, "layer_norm": _layer_norm, "dropout": _dropout,
    # A size without a dimension is TorchScript's int[]: a list, so that it compares equal to one.
    "feature_dropout": _dropout, "size": lambda tensor, *dim: tensor.size(*dim) if dim else list(tensor.size()),
    "dim": lambda t: t.dim(),
    "len": len, "__getitem__": operator.getitem, "__not__": operator.not_, "__is__": operator.is_,
    "__isnot__": operator.is_not, "__contains__": lambda c, v: v in c, "format": lambda s, *a: s.format(*a),
    "Int": int, "Float": float, "Bool": bool, "ScalarImplicit": lambda t: t.item(), "item": lambda t: t.item(),
    "floordiv": operator.floordiv, "neg": lambda v: -v, "append": lambda lst, v: lst.append(v) or lst,
    "list": list, "warn": lambda *args: None, "__and__": lambda a, b: a & b, "__or__": lambda a, b: a | b,
    "_native_multi_head_attention": _native_multi_head_attention,
    "_transformer_encoder_layer_fwd": _transformer_encoder_layer_fwd,
    # A scripted `for i in range(lo, hi, step)`: its trip count and each step's value.
    "__range_length": lambda low, high, step: len(range(low, high, step)),
    "__derive_index": lambda index, start, step: start + index * step,
    "startswith": lambda text, part, start=0, end=-1: _substring(text, start, end).startswith(part),
    "endswith": lambda text, part, start=0, end=-1: _substring(text, start, end).endswith(part),
}
# Functions of a number (TorchScript's math.sqrt(x) of a float is aten::sqrt), by their aten name.
_MATH = {name: getattr(math, name) for name in ("sqrt", "exp", "log", "log2", "log10", "log1p", "expm1", "floor",
                                                 "ceil", "trunc", "sin", "cos", "tan", "tanh", "atan", "fabs",
                                                 "isnan", "isinf", "isfinite", "gcd", "factorial")}
_MATH.update({"abs": abs, "min": min, "max": max})
_SCALAR = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
           "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
           "ge": operator.ge, "remainder": operator.mod, "pow": operator.pow, "neg": operator.neg}
# Enumerations a TorchScript graph holds as integers (c10's ScalarType, MemoryFormat and Layout, whose values
# TorchScript files store), by the type the operation's schema declares.
_ENUMS: dict[str, dict[int, Any]] = {
    "ScalarType": dict(enumerate([torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
                                  torch.float32, torch.float64, torch.complex32, torch.complex64,
                                  torch.complex128, torch.bool, torch.qint8, torch.quint8, torch.qint32,
                                  torch.bfloat16])),
    "MemoryFormat": dict(enumerate([torch.contiguous_format, torch.preserve_format, torch.channels_last,
                                    torch.channels_last_3d])),
    "Layout": dict(enumerate([torch.strided, torch.sparse_coo])),
}
_ENUM_ARGUMENT = re.compile(r"\b(" + "|".join(_ENUMS) + r")\??\s+(\w+)")
# Tensor and device properties the graph reads with a prim:: node.
_PROPERTIES = ("device", "dtype", "layout", "requires_grad", "type")


class TorchScriptGraph(nn.Module):
    """A TorchScript model run node by node as Python torch calls (see the module docstring).

    Parameters
    ----------
    scripted : torch.jit.ScriptModule
        The loaded model; it keeps its parameters, buffers and submodules.

    Raises
    ------
    ModelError
        If the model has no forward graph to walk.
    """

    def __init__(self, scripted: torch.jit.ScriptModule):
        super().__init__()
        self.scripted = scripted
        try:
            self.graph = scripted.inlined_graph
        except (AttributeError, RuntimeError) as error:
            raise ModelError(f"the TorchScript model has no forward graph genomatt can walk ({error}); "
                             + LOAD_PYTHON_CLASS) from None

    def forward(self, *inputs: Any) -> Any:
        graph_inputs = list(self.graph.inputs())
        env = {graph_inputs[0].unique(): self.scripted}
        env.update((value.unique(), given) for value, given in zip(graph_inputs[1:], self._arguments(inputs)))
        self._run(self.graph.nodes(), env)
        outputs = [env[value.unique()] for value in self.graph.outputs()]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _arguments(self, inputs: tuple[Any, ...]) -> list[Any]:
        """The forward's arguments: ``inputs``, then the default of each argument left out (``X_ctl=None``).

        Raises
        ------
        ModelError
            If there are more inputs than arguments, or an argument left out has no default.
        """
        parameters = self.scripted.forward.schema.arguments[1:]  # after self
        if len(inputs) > len(parameters):
            raise ModelError(f"the TorchScript model takes {len(parameters)} inputs, got {len(inputs)}")
        arguments = list(inputs)
        for parameter in parameters[len(inputs):]:
            if not parameter.has_default_value():
                raise ModelError(f"the TorchScript model's forward needs its argument '{parameter.name}' "
                                 f"({parameter.type}), which has no default value, where genomatt passes "
                                 f"{len(inputs)} input(s), the one-hot sequences; give '{parameter.name}' a "
                                 "default in the model, or " + LOAD_PYTHON_CLASS)
            arguments.append(parameter.default_value)
        return arguments

    def _run(self, nodes: Iterable, env: dict[int, Any]) -> None:
        for node in nodes:
            try:
                results = self._node(node, [env[value.unique()] for value in node.inputs()], env)
            except GenomattError as error:
                # Named once, by the innermost node (a node inside prim::If or prim::Loop is inside two).
                message = str(error) if NODE_LABEL in str(error) else f"{error} [{node_site(node)}]"
                inside = _inlined_layer(node)
                if inside and LOAD_PYTHON_CLASS not in message:
                    message = message.rstrip(". ") + (f"; the operation is torch's own {inside} inlined into the "
                                                       "graph, which the model's Python class runs as one layer "
                                                       "that genomatt explains: " + LOAD_PYTHON_CLASS)
                if message == str(error):
                    raise
                raise type(error)(message) from None
            except Exception as error:
                raise ModelError(f"the TorchScript model failed at {node_site(node)}: {error}") from error
            outputs = list(node.outputs())
            if len(outputs) == 1:
                env[outputs[0].unique()] = results
            elif outputs:
                env.update((value.unique(), result) for value, result in zip(outputs, results))

    def _block(self, block: Any, arguments: list[Any], env: dict[int, Any]) -> list[Any]:
        env.update((value.unique(), argument) for value, argument in zip(block.inputs(), arguments))
        self._run(block.nodes(), env)
        return [env[value.unique()] for value in block.returnNode().inputs()]

    def _node(self, node: Any, inputs: list[Any], env: dict[int, Any]) -> Any:
        kind = node.kind()
        if kind == "prim::Constant":
            return node.output().toIValue() if node.hasAttributes() else None
        if kind == "prim::GetAttr":
            return getattr(inputs[0], node.s("name"))
        if kind in ("prim::ListConstruct",):
            return list(inputs)
        if kind == "prim::TupleConstruct":
            return tuple(inputs)
        if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            return list(inputs[0])
        if kind == "prim::TupleIndex":
            return inputs[0][inputs[1]]
        if kind in ("prim::unchecked_cast", "prim::Uninitialized"):
            return inputs[0] if inputs else None
        if kind == "prim::NumToTensor":
            return torch.tensor(inputs[0])
        if kind.startswith("prim::") and (kind[6:] in _PROPERTIES or kind.startswith("prim::is_")):
            return getattr(inputs[0], kind[6:])
        if kind == "prim::RaiseException":
            raise ModelError(f"the TorchScript model raised: {inputs[0]}")
        if kind == "prim::If":
            results = self._block(list(node.blocks())[0 if inputs[0] else 1], [], env)
            return results[0] if len(results) == 1 else results
        if kind == "prim::Loop":
            return self._loop(node, inputs, env)
        if kind.startswith("aten::"):
            return self._aten(node, kind[len("aten::"):], inputs)
        raise ModelError(f"genomatt cannot walk the TorchScript operation {kind}; " + LOAD_PYTHON_CLASS)

    def _loop(self, node: Any, inputs: list[Any], env: dict[int, Any]) -> Any:
        trip_count, condition, carried = inputs[0], inputs[1], list(inputs[2:])
        block = list(node.blocks())[0]
        iteration = 0
        while condition and iteration < trip_count:
            results = self._block(block, [iteration, *carried], env)
            condition, carried = results[0], results[1:]
            iteration += 1
        return carried[0] if len(carried) == 1 else carried

    def _aten(self, node: Any, name: str, inputs: list[Any]) -> Any:
        if not any(isinstance(value, Tensor) for value in inputs):
            if name in _SCALAR:
                return _SCALAR[name](*inputs)
            if name in _MATH:
                return _MATH[name](*inputs)
        if name in _SPECIAL:
            return _SPECIAL[name](*inputs)
        if name in ("all", "any") and isinstance(inputs[0], list):
            return (all if name == "all" else any)(inputs[0])
        text = node.schema()
        schema = torch._C.parse_schema(text)
        enums = {name: _ENUMS[kind] for kind, name in _ENUM_ARGUMENT.findall(text)}
        positional, keywords = [], {}
        for argument, value in zip(schema.arguments, inputs):
            if argument.name in enums and isinstance(value, int) and not isinstance(value, bool):
                value = enums[argument.name][value]
            # alpha by name: positionally, torch.add(x, y, alpha) reads as its deprecated (x, alpha, y);
            # every argument after a keyword is a keyword too.
            if argument.kwarg_only or argument.name == "alpha" or keywords:
                if value is not None:
                    keywords[argument.name] = value
            else:
                positional.append(value)
        while positional and positional[-1] is None:  # optional trailing arguments left at their default
            positional.pop()
        if name == "to":  # aten::to.dtype_layout spells out a layout and pinning, which Tensor.to does not take
            keywords.pop("layout", None)
            keywords.pop("pin_memory", None)
        base = name.rstrip("_") if name.endswith("_") and not name.startswith("_") else name
        # torch and its _nn, _fft and _linalg namespaces take the schema's argument order; F's wrappers may not.
        for owner in (torch, torch._C._nn, torch._C._fft, torch._C._linalg, F):
            function = getattr(owner, name, None)
            if callable(function) and not isinstance(function, type):
                return function(*positional, **keywords)
        method = getattr(Tensor, name, None) or getattr(Tensor, base, None)
        if method is not None and positional and isinstance(positional[0], Tensor):
            return method(*positional, **keywords)
        raise ModelError(f"genomatt cannot walk the TorchScript operation aten::{name}; " + LOAD_PYTHON_CLASS)


def _source_frames(node: Any) -> list[str]:
    """The source lines a TorchScript file recorded for ``node``, innermost first (a trace records the Python
    stack of the call, torch's own functions first; a script the line of the scripted code)."""
    try:
        lines = [line.strip() for line in str(node.sourceRange()).strip().splitlines()]
    except RuntimeError:
        lines = []
    return [line for line in lines if _FRAME.match(line)]


def _in_torch(frame: str) -> bool:
    """Whether a recorded source line (``path(line): function`` or ``File "path", line N``) is in torch's code."""
    return frame.removeprefix('File "').startswith(_TORCH_DIR)


def _inlined_layer(node: Any) -> str | None:
    """``multi_head_attention_forward (torch/nn/functional.py, line N)`` where ``node`` is an operation of a torch
    function that a TorchScript graph inlines and the model's Python class runs as one layer with a rule
    (:data:`INLINED_LAYERS`), else None."""
    frames = _source_frames(node)
    if not frames or not _in_torch(frames[0]):
        return None
    traced = re.match(r"^(.*)\((\d+)\): (\w+)", frames[0])
    scripted = re.match(r'^File "(.*)", line (\d+)', frames[0])
    if traced:
        path, line, function = traced.group(1), int(traced.group(2)), traced.group(3)
    elif scripted:
        path, line = scripted.group(1), int(scripted.group(2))
        function = _enclosing_function(path, line)
    else:
        return None
    if function not in INLINED_LAYERS:
        return None
    return f"{function} ({path.replace(f'{_TORCH_DIR}{os.sep}', 'torch/')}, line {line})"


def _enclosing_function(path: str, line: int) -> str | None:
    """The name of the innermost function whose body holds ``line`` of the source file ``path`` (a script records
    no name): the nearest ``def`` above it, at any indentation."""
    for number in range(line, 0, -1):
        found = re.match(r"^\s*def (\w+)\(", linecache.getline(path, number))
        if found:
            return found.group(1)
    return None


def node_site(node: Any) -> str:
    """``TorchScript node aten::conv1d at <file:line>``: the node and the model source it came from, if the
    file recorded it."""
    frames = _source_frames(node)
    # The first frame outside torch is the model's line.
    site = next((line for line in frames if not _in_torch(line)), frames[0] if frames else None)
    return f"{NODE_LABEL} {node.kind()}" + (f" at {site}" if site else "")
