"""How to train a model (:class:`TrainingConfig`) and its defaults.

Apart from the training loop so that ``genomatt train --help`` shows the defaults without loading torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from genomatt.errors import ConfigError

# Architecture parameters that training takes from the data (task BEDs and width), not from a config.
FROM_THE_DATA = ("n_tasks", "input_length")
ARCHITECTURE_NAMES = ("basset", "bpnet")
"""Names of the architectures genomatt builds (the keys of :data:`genomatt.models.architectures.ARCHITECTURES`)."""

# One wide convolution with a global max pool, averaged over both strands: on a few thousand regions
# (the demo genome) it learns motif presence faster and generalises better than deeper stacks; see
# docs/benchmarks.md.
DEFAULT_ARCHITECTURE = {
    "architecture": "bpnet",
    "filters": 128,
    "n_layers": 0,
    "first_kernel_size": 15,
    "pooling": "max",
    "strand_average": True,
}


@dataclass
class TrainingConfig:
    """How to train: windows, negatives, hold-out, architecture and optimiser settings.

    The defaults train the default model on the simulated demo genome (200 bp regions on chr1-chr5).

    Attributes
    ----------
    width
        Input length L in bp; windows are centred on summits or midpoints.
    jitter
        Maximum random shift in bp of each training window (0 turns shifting off).
    negatives
        ``"gc_matched"``, ``"shuffled"`` or a BED file (see :func:`build_training_data`).
    validation_chroms, test_chroms
        Hold-out chromosomes; ``None`` takes ``chr4`` and ``chr5`` when the genome has them.
    architecture
        ``{"architecture": name, **parameters}`` without ``n_tasks`` and ``input_length``, which
        come from the data.
    epochs
        Maximum number of passes over the training windows.
    batch_size
        Windows per optimiser step.
    learning_rate
        Adam step size.
    weight_decay
        L2 penalty on every weight, added to the gradient as Adam's ``weight_decay`` does (0 turns it off).
    patience
        Stop after this many epochs without a higher mean validation auROC; the best weights are kept.
    reverse_complement
        Reverse-complement each training window with probability 1/2.
    seed
        Seed of weights, negatives, batch order and augmentation (runs repeat exactly on the CPU).
    """

    width: int = 200
    jitter: int = 20
    negatives: str = "gc_matched"
    validation_chroms: list[str] | None = None
    test_chroms: list[str] | None = None
    architecture: dict = field(default_factory=lambda: dict(DEFAULT_ARCHITECTURE))
    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    patience: int = 6
    reverse_complement: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("width", "epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"training: {name} must be a positive integer, got {value!r}")
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, int) or self.jitter < 0:
            raise ConfigError(f"training: jitter must be a non-negative integer (bp), got {self.jitter!r}")
        if 2 * self.jitter >= self.width:
            raise ConfigError(f"training: jitter ({self.jitter} bp) must be under half the width ({self.width} bp): "
                              "a window shifted further no longer holds its region's centre, yet keeps its label")
        if not 0 < self.learning_rate < math.inf:
            raise ConfigError(f"training: learning_rate must be positive and finite, got {self.learning_rate!r}")
        decay = self.weight_decay
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < math.inf:
            raise ConfigError(f"training: weight_decay must be zero or positive and finite, got {self.weight_decay!r}")
        reserved = set(FROM_THE_DATA) & set(self.architecture)
        if reserved:
            raise ConfigError(
                f"training: {sorted(reserved)} come from the data (task BEDs and width); "
                "remove them from the architecture config"
            )
