"""Targets of models with several outputs, e.g. BPNet/ChromBPNet-style profile and count heads.

A model returning ``(N, T)`` is explained per output column. A model returning several outputs (a
tuple) is explained per output ("head"): a head with one value per sequence directly, a head with a
profile (``(N, L_out)`` or ``(N, strands, L_out)``) through the sum of its mean-centred logits weighted
by their softmax, the weights held constant, as BPNet and ChromBPNet explain profiles. The DeepLIFT
engine holds detached values at those of the explained sequence, so these weights are the sequence's
own and summation-to-delta holds exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from genomatt.attribution.interception import hold_at_sequence
from genomatt.errors import ConfigError, ModelError


def _head(outputs: Any, head: int) -> Tensor:
    if not isinstance(outputs, (tuple, list)) or not -len(outputs) <= head < len(outputs):
        raise ModelError(f"the model output has no head {head}")
    return outputs[head]


def profile_target(head: int) -> Callable[[Any], Tensor]:
    """The target explaining profile head ``head``: Σ softmax(logits) · (logits − mean), weights constant.

    Parameters
    ----------
    head : int
        Index of the profile output in the model's output tuple.

    Returns
    -------
    callable
        Model outputs → ``(B,)`` target values.
    """
    def profile(outputs: Any) -> Tensor:
        logits = _head(outputs, head).flatten(1)
        centred = logits - logits.mean(dim=-1, keepdim=True)
        return (torch.softmax(hold_at_sequence(logits), dim=-1) * centred).sum(dim=-1)

    return profile


def scalar_target(head: int) -> Callable[[Any], Tensor]:
    """The target explaining a head with one value per sequence (e.g. log counts).

    Parameters
    ----------
    head : int
        Index of the output in the model's output tuple.

    Returns
    -------
    callable
        Model outputs → ``(B,)`` target values.
    """
    def scalar(outputs: Any) -> Tensor:
        values = _head(outputs, head)
        return values.reshape(values.shape[0], -1)[:, 0]

    return scalar


def head_targets(output_shapes: Sequence[tuple[int, ...]],
                 requested: Sequence[str] | None = None) -> list[tuple[str, Callable[[Any], Tensor]]]:
    """Named targets of a model with several outputs.

    Parameters
    ----------
    output_shapes : sequence of tuple of int
        Per-sequence shape of each output (``LoadedModel.output_shapes``).
    requested : sequence of str, optional
        Target names (or head indices) to keep, in this order; default every head.

    Returns
    -------
    list of (str, callable)
        ``profile`` and ``counts`` for the usual profile + count model, else ``profile_<i>`` and
        ``counts_<i>`` by head index ``i``, with their target functions.

    Raises
    ------
    ConfigError
        If a requested target is neither a name nor a head index.
    """
    kinds = ["counts" if math.prod(shape) == 1 else "profile" for shape in output_shapes]
    targets = []
    for head, kind in enumerate(kinds):
        name = kind if kinds.count(kind) == 1 else f"{kind}_{head}"
        targets.append((name, scalar_target(head) if kind == "counts" else profile_target(head)))
    if not requested:
        return targets
    by_name = dict(targets)
    chosen = []
    for item in requested:
        if item in by_name:
            chosen.append((item, by_name[item]))
        elif item.lstrip("-").isdigit() and -len(targets) <= int(item) < len(targets):
            chosen.append(targets[int(item)])
        else:
            raise ConfigError(f"--targets: {item!r} is neither a head of the model ({', '.join(by_name)}) "
                              f"nor a head index below {len(targets)}")
    return chosen
