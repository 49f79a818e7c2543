"""The inputs every attribution method shares, checked, and the result they return.

Sequences (:func:`as_sequences`), positive integer options (:func:`check_positive_int`), the
explained target (:func:`output_reduction`) and the references of methods that take a baseline
(:func:`reference_source`) are checked here, once for all methods, so that a bad input gets the same
error from each; :class:`AttributionResult` is what a method returns with ``return_delta=True``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from genomatt.errors import ConfigError, GenomattError, ModelError, SequenceError

__all__ = [
    "AttributionResult",
    "Target",
    "as_sequences",
    "check_batch_size",
    "check_positive_int",
    "output_reduction",
    "reference_source",
]

Target = int | Sequence[int] | Callable[[Any], Tensor]


class AttributionResult(NamedTuple):
    """Attributions with their completeness errors (``return_delta=True``).

    Attributes
    ----------
    attributions : Tensor, shape (N, 4, L), or (N, T, 4, L) for a list of T targets, float32
        Contributions, or hypothetical contributions with ``hypothetical=True``.
    delta : Tensor, shape (N,), or (N, T), float32
        For each region (and target), the largest over its references of
        |f(x) − f(reference) − Σ attributions| (for DeepLIFT, Σ m · (x − reference)); for
        epsilon-LRP, which explains f(x) itself, |f(x) − Σ attributions|. DeepLIFT's contributions
        (``X`` times the hypothetical ones) sum to that difference where the references are one-hot
        and ``X`` has no N column; at an N column, or against references that are not one-hot (a
        uniform 0.25 background), ``delta`` holds but the returned contributions leave out the part
        of the change the reference's own bases carry.
    prediction : Tensor, shape (N,), or (N, T), float32
        The explained output f(x) of each region (and target).
    """

    attributions: Tensor
    delta: Tensor
    prediction: Tensor


def as_sequences(X: Tensor | np.ndarray) -> Tensor:
    """Check one-hot sequences and return them as a float32 CPU tensor.

    Parameters
    ----------
    X : Tensor or numpy.ndarray, shape (N, 4, L)
        One-hot sequences, channels A, C, G, T; N and L at least 1.

    Returns
    -------
    Tensor, shape (N, 4, L), float32 on the CPU
        Detached from any autograd graph.

    Raises
    ------
    SequenceError
        If ``X`` is not an array or tensor of that shape, or holds a NaN or infinite value. (The methods
        that draw shuffled references also refuse input that is not one-hot.)
    """
    if isinstance(X, np.ndarray):
        X = torch.from_numpy(X)
    if not isinstance(X, Tensor):
        raise SequenceError(f"X must be a numpy array or torch tensor of shape (N, 4, L), got {type(X).__name__}")
    if X.dim() != 3 or X.shape[1] != 4:
        raise SequenceError(f"X must have shape (N, 4, L) (one-hot A, C, G, T), got {tuple(X.shape)}")
    if X.shape[0] == 0 or X.shape[2] == 0:
        raise SequenceError(f"X holds no sequence positions: shape {tuple(X.shape)}")
    X = X.detach().to("cpu", torch.float32)
    if X.is_inference():  # made inside torch.inference_mode(): a copy that autograd may use
        X = X.clone()
    # A NaN or infinite input gives NaN scores in some methods and an error deep in others: refused by all.
    finite = torch.isfinite(X)
    if not finite.all():
        sequence, channel, position = (int(i) for i in (~finite).nonzero()[0])
        raise SequenceError(f"X holds {int((~finite).sum())} NaN or infinite values (first: "
                            f"{float(X[sequence, channel, position])} at sequence {sequence}, channel {channel}, "
                            f"position {position}); expected one-hot sequences (an N is a column of zeros)")
    return X


def check_positive_int(value: Any, name: str) -> int:
    """Check that an option is a positive integer.

    Parameters
    ----------
    value : Any
        The option's value; a bool is refused although it is an int.
    name : str
        The option's name, quoted in the error.

    Returns
    -------
    int
        ``value`` as a Python int (numpy integers are taken).

    Raises
    ------
    ConfigError
        If ``value`` is not an int of at least 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as a positive int, or a :class:`~genomatt.errors.ConfigError`."""
    return check_positive_int(batch_size, "batch_size")


def single_output(output: Any) -> Any:
    """A model's output, a tuple or list of one tensor (``(logits,)``: one head) taken as that tensor."""
    return output[0] if isinstance(output, (tuple, list)) and len(output) == 1 else output


def output_reduction(
    target: int | Sequence[int] | Callable[[Any], Tensor],
) -> tuple[Callable[[Any], Tensor], list[int] | None]:
    """The function from the model output to the explained target values, and the target columns.

    Parameters
    ----------
    target : int, sequence of int, or callable
        An output column, a non-empty list of columns, or a callable mapping the model output to
        one scalar per sequence ``(B,)`` (see :func:`~genomatt.attribution.deep_lift_shap`).

    Returns
    -------
    reduce_output : callable
        Model output → target values, Tensor of shape ``(B, T)`` (T = 1 for an int or a callable);
        it raises :class:`~genomatt.errors.ModelError` when the output does not fit ``target``.
    columns : list of int or None
        The target columns; None for a callable target.

    Raises
    ------
    ConfigError
        If ``target`` is not an int, a non-empty list of ints or a callable.
    """
    if callable(target):
        def reduce_callable(output: Any) -> Tensor:
            values = target(output)
            if not isinstance(values, Tensor) or values.dim() not in (1, 2) or values.reshape(values.shape[0], -1).shape[1] != 1:
                shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
                rows = f"({values.shape[0]},)" if isinstance(values, Tensor) and values.dim() else "(B,)"
                raise ModelError(f"the target callable returned {shape}; expected one scalar per row of the model's "
                                 f"output, {rows} (its batch holds the sequences and their references)")
            return values.reshape(-1, 1)

        return reduce_callable, None
    columns = [target] if isinstance(target, numbers.Integral) else list(target) if isinstance(target, (list, tuple)) \
        else None
    if not columns or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in columns):
        raise ConfigError(f"target must be an int, a non-empty list of ints or a callable, got {target!r}")
    columns = [int(column) for column in columns]  # numpy integers too

    def reduce_columns(output: Any) -> Tensor:
        output = single_output(output)
        if not isinstance(output, Tensor):
            raise ModelError(f"the model returns {type(output).__name__}; an integer target needs a tensor "
                             "(B, n_outputs); pass a callable target that picks one scalar per sequence")
        if output.dim() == 1:
            output = output.unsqueeze(1)
        elif output.dim() > 2 and math.prod(output.shape[2:]) == 1:
            output = output.reshape(output.shape[0], output.shape[1])
        if output.dim() != 2:
            raise ModelError(f"the model returns shape {tuple(output.shape[1:])} per sequence; an integer "
                             "target needs (B, n_outputs); pass a callable target that reduces the output "
                             "to one scalar per sequence")
        for column in columns:
            if not -output.shape[1] <= column < output.shape[1]:
                raise ModelError(f"target {column} is out of range: the model has {output.shape[1]} outputs")
        return output[:, columns]

    return reduce_columns, columns


def reference_source(
    references: Tensor | np.ndarray | Callable[..., Any] | None,
    X: Tensor,
    n_shuffles: int,
    random_state: int | np.random.Generator | None,
    regions: pd.DataFrame | None = None,
) -> tuple[int, Callable[[int, int], Tensor]]:
    """The references of each sequence, given block by block.

    Parameters
    ----------
    references : Tensor, numpy.ndarray, callable or None
        ``(N, R, 4, L)`` references, a callable or None (dinucleotide shuffles), as in
        :func:`~genomatt.attribution.deep_lift_shap`.
    X : Tensor, shape (N, 4, L)
        The sequences, as returned by :func:`as_sequences`.
    n_shuffles : int
        References per sequence when they are generated.
    random_state : int, numpy.random.Generator or None
        Seed of generated references; one generator serves all blocks, in order. With
        ``regions``, the run's seed (a non-negative int).
    regions : pandas.DataFrame, optional
        ``chrom``, ``start``, ``end`` of each sequence: generated references are then those of
        :func:`genomatt.shuffle.references_for_regions`, which depend only on the seed and each
        region's coordinates, and may be asked for in any order.

    Returns
    -------
    n_references : int
        The number R of references per sequence.
    blocks : callable
        ``blocks(start, stop)`` returns the references of ``X[start:stop]``, ``(stop − start, R, 4, L)``
        float32; references generated without ``regions`` must be asked for in consecutive blocks.

    Raises
    ------
    SequenceError
        If the references (or those a callable returns) have the wrong shape, or given references hold a NaN
        or infinite value.
    ConfigError
        If ``references`` is of another kind, or ``regions`` comes with references (a seed that is
        not a non-negative int is refused by the first block).
    """
    n, _, length = X.shape
    if regions is not None:
        return n_shuffles, _region_blocks(references, X, n_shuffles, random_state, regions)
    if isinstance(references, np.ndarray):
        references = torch.from_numpy(references)
    if isinstance(references, Tensor):
        if references.dim() != 4 or references.shape[0] != n or references.shape[2:] != (4, length) or references.shape[1] < 1:
            raise SequenceError(f"references must have shape (N, R, 4, L) = ({n}, R, 4, {length}), "
                                f"got {tuple(references.shape)}")
        if not torch.isfinite(references).all():
            raise SequenceError(f"references hold {int((~torch.isfinite(references)).sum())} NaN or infinite values")
        return references.shape[1], lambda start, stop: references[start:stop].to(torch.float32)
    if references is None:
        from genomatt.shuffle import dinucleotide_shuffle

        references = dinucleotide_shuffle
    if not callable(references):
        raise ConfigError(f"references must be a tensor (N, R, 4, L), a callable or None, got {type(references).__name__}")
    seed = isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and random_state >= 0
    if not (random_state is None or seed or isinstance(random_state, np.random.Generator)):
        raise ConfigError(f"random_state must be None, an integer of at least 0 or a numpy Generator, got "
                          f"{random_state!r}")
    generator = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)

    def generate(start: int, stop: int) -> Tensor:
        try:
            block = references(X[start:stop], n=n_shuffles, random_state=generator)
        except GenomattError:
            raise
        except Exception as error:
            name = getattr(references, "__qualname__", type(references).__name__)
            raise ConfigError(
                f"the references callable {name} failed ({type(error).__name__}: {error}); genomatt calls it as "
                "references(X, n=n_shuffles, random_state=numpy.random.Generator) with X a (B, 4, L) tensor and "
                "takes (B, n, 4, L); for one that takes an int seed, pass e.g. lambda X, n, random_state: "
                "shuffle(X, n=n, random_state=int(random_state.integers(2**31)))") from error
        block = torch.from_numpy(block) if isinstance(block, np.ndarray) else block
        if not isinstance(block, Tensor) or tuple(block.shape) != (stop - start, n_shuffles, 4, length):
            shape = tuple(block.shape) if isinstance(block, Tensor) else type(block).__name__
            raise SequenceError(f"the references callable returned {shape} for {stop - start} sequences; "
                                f"expected ({stop - start}, {n_shuffles}, 4, {length})")
        return block.to(torch.float32)

    return n_shuffles, generate


def _region_blocks(
    references: Any, X: Tensor, n_shuffles: int, seed: Any, regions: pd.DataFrame,
) -> Callable[[int, int], Tensor]:
    """``blocks(start, stop)`` of :func:`reference_source` for sequences with region coordinates."""
    from genomatt.shuffle import references_for_regions

    if references is not None:
        raise ConfigError("regions seed the generated references; pass references=None with regions")
    if not isinstance(regions, pd.DataFrame):
        raise ConfigError(f"regions must be a pandas DataFrame with columns chrom, start, end, got "
                          f"{type(regions).__name__}")
    if len(regions) != X.shape[0]:
        raise SequenceError(f"regions has {len(regions)} rows but X has {X.shape[0]} sequences; "
                            "expected one row per sequence")

    def block(start: int, stop: int) -> Tensor:
        rows = slice(start, stop)
        return references_for_regions(regions.iloc[rows], X[rows], n=n_shuffles, seed=seed).to(torch.float32)

    return block
