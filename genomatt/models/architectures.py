"""Sequence CNN architectures and the registry that builds them from a config mapping.

Every architecture takes one-hot input ``(N, 4, L)`` (channels A, C, G, T) and returns ``(N, T)``:
one unbounded output per task (logits for classification, values for regression). They are built only
from operations the DeepLIFT engine supports (Conv1d, BatchNorm1d, ReLU, MaxPool1d, residual add,
mean, flatten, Linear, Dropout, flip), with one module instance per layer so that every layer has its
own name.

A config is a plain mapping, as in a YAML file::

    architecture: bpnet
    n_tasks: 5
    input_length: 400
    filters: 64
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from genomatt.errors import ConfigError

POOLINGS = ("average", "max")


def _positive_int(value: object, name: str, architecture: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{architecture}: {name} must be {kind}, got {value!r}")
    return value


def _odd_kernel(value: object, name: str, architecture: str) -> int:
    # Odd kernels with padding k // 2 keep the length, so layer outputs line up with input positions.
    size = _positive_int(value, name, architecture)
    if size % 2 == 0:
        raise ConfigError(f"{architecture}: {name} must be odd (so convolutions keep the length), got {size}")
    return size


class _SequenceCNN(nn.Module):
    """Common forward pass: one strand, or the average over a sequence and its reverse complement."""

    def __init__(self, strand_average: bool, architecture: str):
        super().__init__()
        if not isinstance(strand_average, bool):
            raise ConfigError(f"{architecture}: strand_average must be true or false, got {strand_average!r}")
        self.strand_average = strand_average

    def forward_strand(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, T)`` for one-hot ``(N, 4, L)`` read as given."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map one-hot ``(N, 4, L)`` to task outputs ``(N, T)``."""
        if not self.strand_average:
            return self.forward_strand(x)
        # In ACGT order, reversing channels and positions together gives the reverse complement.
        return 0.5 * (self.forward_strand(x) + self.forward_strand(x.flip(1, 2)))


class BPNet(_SequenceCNN):
    """BPNet-style dilated residual CNN with a global pooling head.

    A wide first convolution finds motif-like patterns; ``n_layers`` dilated convolutions (dilation
    2, 4, 8, ...) with ReLU and residual connections combine them over a growing receptive field;
    a global pool over positions feeds one linear output per task. The average pool of BPNet's
    count head sums evidence along the sequence (counts, regression); the max pool reports the
    strongest match anywhere, which learns the presence of a motif from far fewer examples.

    Parameters
    ----------
    n_tasks
        Number of outputs T.
    input_length
        Declared input length L in bp.
    filters
        Channels of every convolution.
    n_layers
        Number of dilated residual layers.
    first_kernel_size
        Kernel of the first convolution (odd).
    kernel_size
        Kernel of the dilated convolutions (odd).
    pooling
        ``"average"`` or ``"max"`` over all positions.
    strand_average
        Average the outputs on the sequence and on its reverse complement, so both strands give the
        same prediction and every filter serves both orientations of a motif.
    """

    def __init__(
        self,
        n_tasks: int,
        input_length: int,
        filters: int = 64,
        n_layers: int = 4,
        first_kernel_size: int = 21,
        kernel_size: int = 3,
        pooling: str = "average",
        strand_average: bool = False,
    ):
        name = "bpnet"
        super().__init__(strand_average, name)
        if pooling not in POOLINGS:
            raise ConfigError(f"{name}: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.config = {
            "architecture": name,
            "n_tasks": _positive_int(n_tasks, "n_tasks", name),
            "input_length": _positive_int(input_length, "input_length", name),
            "filters": _positive_int(filters, "filters", name),
            "n_layers": _positive_int(n_layers, "n_layers", name, minimum=0),
            "first_kernel_size": _odd_kernel(first_kernel_size, "first_kernel_size", name),
            "kernel_size": _odd_kernel(kernel_size, "kernel_size", name),
            "pooling": pooling,
            "strand_average": strand_average,
        }
        self.first_conv = nn.Conv1d(4, filters, first_kernel_size, padding=first_kernel_size // 2)
        self.first_relu = nn.ReLU()
        self.dilated_convs = nn.ModuleList(
            nn.Conv1d(filters, filters, kernel_size, dilation=2**layer, padding=2**layer * (kernel_size // 2))
            for layer in range(1, n_layers + 1)
        )
        self.dilated_relus = nn.ModuleList(nn.ReLU() for _ in range(n_layers))
        # One max-pool window spans the declared length: the model is meant for exactly that length.
        self.global_max_pool = nn.MaxPool1d(input_length) if pooling == "max" else None
        self.head = nn.Linear(filters, n_tasks)

    def forward_strand(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, T)`` for one-hot ``(N, 4, L)`` read as given."""
        x = self.first_relu(self.first_conv(x))
        for conv, relu in zip(self.dilated_convs, self.dilated_relus):
            x = x + relu(conv(x))
        pooled = x.mean(dim=-1) if self.global_max_pool is None else self.global_max_pool(x).flatten(1)
        return self.head(pooled)


class Basset(_SequenceCNN):
    """Basset-style CNN: convolution blocks with max-pooling, then fully connected layers.

    Each block is Conv1d → BatchNorm1d → ReLU → MaxPool1d; the pooled map is flattened and passed
    through hidden linear layers (ReLU, dropout) to one output per task. The flatten ties the model
    to ``input_length``.

    Parameters
    ----------
    n_tasks
        Number of outputs T.
    input_length
        Input length L in bp.
    filters
        Channels of each convolution block.
    kernel_sizes
        Kernel of each block (odd), same length as ``filters``.
    pool_sizes
        Max-pool width (and stride) of each block, same length as ``filters``.
    hidden
        Widths of the fully connected layers before the output.
    dropout
        Dropout probability after each hidden layer.
    strand_average
        Average the outputs on the sequence and on its reverse complement.
    """

    def __init__(
        self,
        n_tasks: int,
        input_length: int,
        filters: Sequence[int] = (64, 64, 64),
        kernel_sizes: Sequence[int] = (19, 11, 7),
        pool_sizes: Sequence[int] = (3, 4, 4),
        hidden: Sequence[int] = (256,),
        dropout: float = 0.3,
        strand_average: bool = False,
    ):
        name = "basset"
        super().__init__(strand_average, name)
        filters = [_positive_int(value, "filters", name) for value in filters]
        kernel_sizes = [_odd_kernel(value, "kernel_sizes", name) for value in kernel_sizes]
        pool_sizes = [_positive_int(value, "pool_sizes", name) for value in pool_sizes]
        hidden = [_positive_int(value, "hidden", name) for value in hidden]
        if not filters or not len(filters) == len(kernel_sizes) == len(pool_sizes):
            raise ConfigError(
                f"{name}: filters, kernel_sizes and pool_sizes need one entry per convolution block; "
                f"got {len(filters)}, {len(kernel_sizes)} and {len(pool_sizes)}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self.config = {
            "architecture": name,
            "n_tasks": _positive_int(n_tasks, "n_tasks", name),
            "input_length": _positive_int(input_length, "input_length", name),
            "filters": filters,
            "kernel_sizes": kernel_sizes,
            "pool_sizes": pool_sizes,
            "hidden": hidden,
            "dropout": float(dropout),
            "strand_average": strand_average,
        }
        blocks: list[nn.Module] = []
        channels, length = 4, input_length
        for out_channels, kernel, pool in zip(filters, kernel_sizes, pool_sizes):
            blocks += [
                nn.Conv1d(channels, out_channels, kernel, padding=kernel // 2),
                nn.BatchNorm1d(out_channels),
                nn.ReLU(),
                nn.MaxPool1d(pool),
            ]
            channels, length = out_channels, length // pool
        if length < 1:
            raise ConfigError(
                f"{name}: input_length {input_length} is too short for pool sizes {pool_sizes} "
                f"(needs at least {math.prod(pool_sizes)} bp)"
            )
        self.convolutions = nn.Sequential(*blocks)
        layers: list[nn.Module] = [nn.Flatten()]
        width = channels * length
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, n_tasks))
        self.classifier = nn.Sequential(*layers)

    def forward_strand(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, T)`` for one-hot ``(N, 4, L)`` read as given."""
        return self.classifier(self.convolutions(x))


ARCHITECTURES: dict[str, type[nn.Module]] = {"bpnet": BPNet, "basset": Basset}
"""Architecture name (the ``architecture:`` of a config) → model class."""


def architecture_parameters(name: str) -> dict[str, object]:
    """Parameters of architecture ``name`` and their defaults (``inspect.Parameter.empty`` if required)."""
    model_class = _architecture_class(name)
    parameters = inspect.signature(model_class.__init__).parameters
    return {key: value.default for key, value in parameters.items() if key != "self"}


def _architecture_class(name: object) -> type[nn.Module]:
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {name!r}; expected one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def build_model(config: Mapping[str, object], source: str = "architecture config") -> nn.Module:
    """Build an untrained model from a config mapping.

    Parameters
    ----------
    config
        ``{"architecture": name, **parameters}``; ``n_tasks`` and ``input_length`` are required,
        every other parameter defaults as in the architecture class.
    source
        Where the config came from (a file name), for error messages.

    Returns
    -------
    torch.nn.Module
        The model, with its full config (defaults filled in) in ``model.config``.

    Raises
    ------
    ConfigError
        For an unknown architecture, unknown or missing parameters, or invalid values.
    """
    if "architecture" not in config:
        raise ConfigError(f"{source}: missing 'architecture' (one of {sorted(ARCHITECTURES)})")
    name = config["architecture"]
    parameters = {key: value for key, value in config.items() if key != "architecture"}
    accepted = architecture_parameters(name)
    unknown = sorted(set(parameters) - set(accepted))
    if unknown:
        raise ConfigError(f"{source}: {name} has no parameters {unknown}; it accepts {sorted(accepted)}")
    missing = sorted(
        key for key, default in accepted.items() if default is inspect.Parameter.empty and key not in parameters
    )
    if missing:
        raise ConfigError(f"{source}: {name} needs {missing}")
    try:
        return _architecture_class(name)(**parameters)
    except TypeError as error:  # e.g. a scalar where a list of kernel sizes belongs
        raise ConfigError(f"{source}: invalid parameters for {name}: {error}") from None
