"""Targets of models with profile outputs, e.g. BPNet/ChromBPNet-style profile and count heads.

A model returning ``(N, T)`` (or ``(N, T, 1)``) is explained per output column. A model returning
several outputs (a tuple) is explained per output ("head"): a head with one value per sequence
directly, a head with a profile (``(N, L_out)`` or ``(N, strands, L_out)``, strands flattened with
positions as bpnet-lite does) through a profile target. A multi-task profile model, whose count head
has T > 1 values, one per track of its profile head ``(N, T, L_out)`` (or ``(N, T, strands, L_out)``),
is explained per task: the profile target of track t and the count of task t; so is BPNet's layout of one
count per task and strand ``(N, T, strands)`` beside ``(N, T, strands, L_out)``, task t's count being the mean
of its strands'. A model returning one profile tensor
``(N, T, L_out)`` (gReLU track models) is explained per track ``t`` through the profile target of
``[:, t]``; one returning ``(N, L_out, T)`` (Enformer, Basenji), whose T tracks are named by the user
(``task_names``), through that of ``[..., t]``.

A profile target reduces the logits l of one profile to a scalar. Two conventions of the field are
offered (``PROFILE_CONVENTIONS``), both with exact summation-to-delta:

``"bpnet"`` (default)
    bpnet-lite's ``ProfileWrapper`` (its PyTorch BPNet and ChromBPNet): with centred logits
    c = l − mean(l), Σ c · softmax(c), whose map c ↦ c · softmax(c) takes the Rescale rule as one block
    (bpnet-lite registers it so with tangermeme and captum). The default because bpnet-lite users
    compare against these scores, and the explained value is a function of the sequence alone.
``"held"``
    BPNet's original target: Σ softmax(l) · c with the softmax weights a constant (stop-gradient),
    held at the explained sequence's value for its references, so the target is one linear
    function of the logits per sequence (tangermeme with a detached softmax gives the same).

shap's ``DeepExplainer`` weights each reference by its own softmax (the TensorFlow ChromBPNet 1.x and
BPNet scripts' stop-gradient softmax); those contributions do not sum to any output difference, so
genomatt does not offer that weighting.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.overrides import handle_torch_function, has_torch_function_unary

from genomatt.attribution.choices import PROFILE_CONVENTIONS
from genomatt.attribution.interception import hold_at_sequence
from genomatt.errors import ConfigError, ModelError
from genomatt.models.io import LoadedModel, explains_columns, name_tasks, refuse_other_task_names, squeezed_shape

log = logging.getLogger(__name__)


def profile_logit_scaling(centred: Tensor) -> Tensor:
    """c · softmax(c) over the last axis: bpnet-lite's ``_ProfileLogitScaling``.

    Under the DeepLIFT engine it takes the Rescale rule as one block (multiplier Δout / Δc per
    element), as bpnet-lite registers it with tangermeme and captum.

    Parameters
    ----------
    centred : Tensor, shape (B, P)
        Mean-centred profile logits.

    Returns
    -------
    Tensor, shape (B, P)
    """
    if has_torch_function_unary(centred):
        return handle_torch_function(profile_logit_scaling, (centred,), centred)
    return centred * torch.softmax(centred, dim=-1)


def _head(outputs: Any, head: int, track: int | None = None, tracks_last: bool = False) -> Tensor:
    if isinstance(outputs, Tensor) and head == 0:
        values = outputs
    elif isinstance(outputs, (tuple, list)) and -len(outputs) <= head < len(outputs):
        values = outputs[head]
    else:
        raise ModelError(f"the model output has no head {head}")
    if track is None:
        return values
    return values[..., track] if tracks_last else values[:, track]


def profile_target(head: int, convention: str = "bpnet", track: int | None = None,
                   tracks_last: bool = False) -> Callable[[Any], Tensor]:
    """The target explaining a profile: the model's output ``head`` (and its ``track``).

    Parameters
    ----------
    head : int
        Index of the profile output in the model's output tuple (0 for a model returning one tensor).
    convention : {"bpnet", "held"}
        See the module docstring.
    track : int, optional
        For a profile output ``(N, T, L_out)``, the track explained.
    tracks_last : bool
        The profile output is ``(N, L_out, T)`` (Enformer, Basenji): ``track`` indexes its last axis.

    Returns
    -------
    callable
        Model outputs → ``(B,)`` target values.

    Raises
    ------
    ConfigError
        If ``convention`` is not one of :data:`PROFILE_CONVENTIONS`.
    """
    if convention not in PROFILE_CONVENTIONS:
        raise ConfigError(f"profile convention must be one of {', '.join(PROFILE_CONVENTIONS)}, got {convention!r}")

    def profile(outputs: Any) -> Tensor:
        logits = _head(outputs, head, track, tracks_last).flatten(1)
        centred = logits - logits.mean(dim=-1, keepdim=True)
        if convention == "bpnet":
            return profile_logit_scaling(centred).sum(dim=-1)
        return (torch.softmax(hold_at_sequence(logits), dim=-1) * centred).sum(dim=-1)

    return profile


def scalar_target(head: int, column: int = 0) -> Callable[[Any], Tensor]:
    """The target explaining one value per sequence of a head (e.g. log counts, or one task's log counts).

    Parameters
    ----------
    head : int
        Index of the output in the model's output tuple.
    column : int, default 0
        The value of the head explained, for a head with one value per task.

    Returns
    -------
    callable
        Model outputs → ``(B,)`` target values.
    """
    def scalar(outputs: Any) -> Tensor:
        values = _head(outputs, head)
        return values.reshape(values.shape[0], -1)[:, column]

    return scalar


def strand_mean_target(head: int, task: int) -> Callable[[Any], Tensor]:
    """The target explaining one task's counts of a head with one count per task and strand ``(N, T, S)``: their
    mean over the S strands.

    Parameters
    ----------
    head : int
        Index of the count output in the model's output tuple.
    task : int
        The task explained.

    Returns
    -------
    callable
        Model outputs → ``(B,)`` target values.
    """
    def counts(outputs: Any) -> Tensor:
        values = _head(outputs, head)
        return values[:, task].reshape(values.shape[0], -1).mean(dim=-1)

    return counts


def _stranded_counts(shape: tuple[int, ...], shapes: Sequence[tuple[int, ...]]) -> bool:
    """Whether a head of squeezed ``shape`` holds one count per task and strand ``(T, S)`` beside a profile head
    ``(T, S, L)`` among the squeezed ``shapes`` (BPNet's layout)."""
    return len(shape) == 2 and any(len(profile) == 3 and profile[:2] == shape for profile in shapes)


def _task_axis(output_shapes: Sequence[tuple[int, ...]]) -> int | None:
    """T for a multi-task profile model: a head of T > 1 values, one per track of a profile head ``(T, ..., L)``;
    or a head of T × S values, one per task and strand, beside a profile head ``(T, S, L)`` (BPNet's layout)."""
    shapes = [squeezed_shape(tuple(shape)) for shape in output_shapes]
    for shape in shapes:
        if len(shape) == 1 and shape[0] > 1 and any(len(other) >= 2 and other[0] == shape[0] for other in shapes):
            return shape[0]
        if _stranded_counts(shape, shapes):
            return shape[0]
    return None


def _tuple_targets(output_shapes: Sequence[tuple[int, ...]], convention: str,
                   task_names: Sequence[str] | None) -> list[tuple[str, Callable]]:
    """The targets of a model returning several outputs (module docstring), each task's named after it when
    ``task_names`` names the model's tasks (one for a single-task model)."""
    n_tasks = _task_axis(output_shapes)
    if task_names and len(task_names) != (n_tasks or 1):
        # A profile (S, L) beside S counts may be S tasks or one task's S strands: either way explained apart.
        strands = (f"; its 2 profile tracks beside 2 counts are explained apart, as 2 tasks or one task's 2 "
                   f"strands: name each (e.g. {task_names[0]}_plus {task_names[0]}_minus)"
                   if n_tasks == 2 and len(task_names) == 1 else "")
        raise ModelError(f"{len(task_names)} task names {list(task_names)} given for a model whose heads "
                         f"{[tuple(shape) for shape in output_shapes]} hold {n_tasks or 1} task(s){strands}")
    heads = []
    shapes = [squeezed_shape(tuple(shape)) for shape in output_shapes]
    for head, shape in enumerate(shapes):
        if n_tasks and len(shape) == 1 and shape[0] == n_tasks:
            heads.append(("counts", [scalar_target(head, task) for task in range(n_tasks)]))
        elif n_tasks and _stranded_counts(shape, shapes) and shape[0] == n_tasks:
            # One count per task and strand: each task's mean over its strands (as BPNet averages its strands' scores).
            heads.append(("counts", [strand_mean_target(head, task) for task in range(n_tasks)]))
        elif n_tasks and len(shape) >= 2 and shape[0] == n_tasks:
            heads.append(("profile", [profile_target(head, convention, task) for task in range(n_tasks)]))
        elif math.prod(shape) == 1:
            heads.append(("counts", [scalar_target(head)]))
        else:
            if len(shape) == 1:
                log.info("output %d of the model, %d values per sequence, is explained as a profile "
                         "(Σ c·softmax(c) over its values)", head, shape[0])
            heads.append(("profile", [profile_target(head, convention)]))
    kinds = [kind for kind, _ in heads]
    if task_names:
        prefixed = [name for name in task_names if str(name).startswith(("profile_", "counts_"))]
        if prefixed:
            raise ModelError(f"task names {prefixed} begin with profile_ or counts_, as the targets of another task "
                             "would be named (profile_<task>, counts_<task>): rename them")
        if not n_tasks and (kinds.count("profile") > 1 or kinds.count("counts") > 1):
            raise ModelError(f"1 task name {list(task_names)} given for a model whose heads "
                             f"{[tuple(shape) for shape in output_shapes]} are several profile or count heads, not one "
                             "task's: to name its tasks, return one profile head (N, T, [strands,] L) beside one count "
                             "head (N, T), each task's track on axis 1 (docs/models.md)")
    targets = []
    for head, (kind, functions) in enumerate(heads):
        name = kind if kinds.count(kind) == 1 else f"{kind}_{head}"
        if len(functions) > 1:
            labels = task_names or range(len(functions))
            targets += [(f"{name}_{label}", function) for label, function in zip(labels, functions)]
        else:
            # A head of a single-task model is its task's (a model of one task, or of one task's per-task heads); one
            # beside per-task heads of several is no task's.
            per_task = n_tasks == 1 and len(shapes[head]) >= 2
            own = task_names and (not n_tasks or per_task)
            targets.append((f"{name}_{task_names[0]}" if own else name, functions[0]))
    return targets


def _track_targets(shape: tuple[int, int], convention: str, task_names: Sequence[str] | None,
                   ) -> list[tuple[str, Callable[[Any], Tensor]]]:
    """The target of each track of one ``(A, B)`` output: tracks first, unless ``task_names`` name the B of the
    last axis; a profile target, or for tracks of one position the value itself."""
    first, last = shape
    if first == last > 1:
        raise ModelError(f"the model returns one {shape} tensor per sequence: as many positions as tracks at this "
                         "width, so which axis holds the tracks cannot be told (tracks first, (T, L_out), as gReLU "
                         "models return them, or last, (L_out, T), as Enformer and Basenji do); explain it at a width "
                         "at which its number of output positions differs from its number of tracks")
    if task_names and len(task_names) not in shape:
        raise ModelError(f"{len(task_names)} task names {list(task_names)} given for a model returning "
                         f"{shape} per sequence: name its {first} tracks (first axis) or {last} (last axis)")
    tracks_last = bool(task_names) and len(task_names) == last != first
    if not task_names and last != 1:
        log.warning("the model returns one (%d, %d) tensor per sequence: explained as %d track%s of %d positions "
                    "(tracks first, as gReLU models return them); for a model whose tracks are its last axis "
                    "(Enformer, Basenji: positions first%s), give --task-names with %d names (config: task_names)",
                    first, last, first, "" if first == 1 else "s", last,
                    ", here one position of %d tasks" % last if first == 1 else "", last)
    if task_names and len(task_names) == 1 == last < first:
        log.warning("the model returns one (%d, 1) tensor per sequence and is given one task name: explained as one "
                    "track of %d positions (positions first); for %d tasks of one value each (as gReLU models "
                    "return them), give %d task names", first, first, first, first)
    n_tracks = last if tracks_last else first
    names = list(task_names) if task_names and len(task_names) == n_tracks else \
        [f"track_{track}" for track in range(n_tracks)]
    if (first if tracks_last else last) == 1:
        # Tracks of one position hold one value each: a profile of one position has no shape to explain.
        return [(name, scalar_target(0, track)) for track, name in enumerate(names)]
    return [(name, profile_target(0, convention, track, tracks_last)) for track, name in enumerate(names)]


def column_targets(requested: Sequence[str] | None, task_names: Sequence[str]) -> tuple[list[int], list[str]]:
    """The output columns of an ``(N, T)`` model to explain, and their names, from task names or indices.

    Parameters
    ----------
    requested : sequence of str, optional
        Task names or column indices (``-1`` the last); default every column.
    task_names : sequence of str
        The name of each output column.

    Returns
    -------
    columns : list of int
    names : list of str

    Raises
    ------
    ConfigError
        If a requested target is neither a task name nor a column index.
    """
    task_names = list(task_names)
    if not requested:
        return list(range(len(task_names))), task_names
    columns = []
    for target in requested:
        if target in task_names:
            columns.append(task_names.index(target))
        elif re.fullmatch(r"-?\d+", target) and -len(task_names) <= int(target) < len(task_names):
            columns.append(int(target) % len(task_names))
        else:
            raise ConfigError(f"--targets: {target!r} is neither a task of the model ({', '.join(task_names)}) "
                              f"nor an output index from 0 to {len(task_names) - 1} (or -1 for the last)")
    return columns, [task_names[column] for column in columns]


def head_targets(output_shapes: Sequence[tuple[int, ...]], requested: Sequence[str] | None = None,
                 convention: str = "bpnet", task_names: Sequence[str] | None = None,
                 ) -> list[tuple[str, Callable[[Any], Tensor]]]:
    """Named targets of a model with profile outputs.

    Parameters
    ----------
    output_shapes : sequence of tuple of int
        Per-sequence shape of each output (``LoadedModel.output_shapes``).
    requested : sequence of str, optional
        Target names (or indices) to keep, in this order; default every target.
    convention : {"bpnet", "held"}
        Profile target convention (module docstring).
    task_names : sequence of str, optional
        Track names of a single profile output ``(A, B)``: A names for tracks first ``(T, L_out)``, the
        default, or B names for tracks last ``(L_out, T)``; default ``track_<t>`` for A tracks. For several
        outputs, the model's task names (one for a single-task profile + count model), which name its
        targets ``profile_<task>`` and ``counts_<task>``.

    Returns
    -------
    list of (str, callable)
        For several outputs, ``profile`` and ``counts`` for the usual profile + count model, else
        ``profile_<i>`` and ``counts_<i>`` by head index ``i``; for a multi-task profile model (a profile
        head ``(T, ..., L_out)`` and a count head of T values), ``profile_<t>`` and ``counts_<t>`` for
        each task t; for one ``(T, L_out)`` (or, named, ``(L_out, T)``) output, one profile target per track
        (the track's value where L_out is 1).

    Raises
    ------
    ConfigError
        If a requested target is neither a name nor an index, or the convention is unknown.
    ModelError
        If ``task_names`` does not fit the outputs.
    """
    targets = []
    if len(output_shapes) == 1 and len(output_shapes[0]) == 2:
        targets = _track_targets(output_shapes[0], convention, task_names)
    else:
        targets = _tuple_targets(output_shapes, convention, task_names)
    if not requested:
        return targets
    by_name = dict(targets)
    chosen = []
    for item in requested:
        # A head (profile, counts) of a multi-task model stands for its targets of every task, a task for its heads'.
        grouped = [(name, function) for name, function in targets
                   if name.startswith(("profile_", "counts_")) and item in name.split("_", 1)]
        if item in by_name:
            chosen.append((item, by_name[item]))
        elif item.lstrip("-").isdigit() and -len(targets) <= int(item) < len(targets):
            chosen.append(targets[int(item)])
        elif grouped:
            chosen += grouped
        else:
            raise ConfigError(f"--targets: {item!r} is neither a target of the model ({', '.join(by_name)}), a head "
                              f"or task of them, nor an index from 0 to {len(targets) - 1} (or -1 for the last)")
    return list({name: (name, function) for name, function in chosen}.values())


def model_targets(loaded: LoadedModel, where: str, task_names: Sequence[str] | None = None,
                  requested: Sequence[str] | None = None, convention: str = "bpnet",
                  ) -> tuple[LoadedModel, list[int] | None, list[str], list]:
    """What a loaded model is explained for: its output columns, or its heads and tracks.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`genomatt.models.io.load`.
    where : str
        The model as the user gave it, for messages.
    task_names : sequence of str, optional
        Names of the model's tasks, for a model that names none (``--task-names``).
    requested : sequence of str, optional
        The targets to explain, by name or index (``--targets``); default all.
    convention : {"bpnet", "held"}
        Profile target convention.

    Returns
    -------
    loaded : LoadedModel
        ``loaded``, with ``task_names`` where it returns one value per task.
    columns : list of int or None
        The output columns of an ``(N, T)`` model (explained in one pass), else None.
    names : list of str
        The name of each target.
    targets : list
        ``[columns]``, or one target callable per head or track.

    Raises
    ------
    ModelError
        If the names or targets do not fit the model's outputs, naming ``where``.
    """
    if task_names:
        refuse_other_task_names(loaded, task_names, where)
    if explains_columns(loaded.output_shapes, task_names or loaded.task_names):
        if task_names:
            loaded = name_tasks(loaded, task_names, where)
        columns, names = column_targets(requested, loaded.task_names)
        return loaded, columns, names, [columns]
    try:
        named = head_targets(loaded.output_shapes, requested, convention, task_names or loaded.task_names)
    except ModelError as error:
        raise ModelError(f"{where}: {error}") from None
    return loaded, None, [name for name, _ in named], [target for _, target in named]
