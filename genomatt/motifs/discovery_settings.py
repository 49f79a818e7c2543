"""The parameters of motif discovery (:class:`DiscoverySettings`) and their defaults.

Apart from the discovery code so that ``genomatt motifs --help`` shows the defaults without loading
numba, h5py or pandas.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from genomatt.errors import MotifError


@dataclass(frozen=True)
class DiscoverySettings:
    """Parameters of a discovery run.

    Attributes
    ----------
    max_seqlets
        Seqlets of each sign that clustering uses at most (tfmodisco-lite's
        ``max_seqlets_per_metacluster``), taken from regions in a seeded random order.
    seed
        Seed of the region order, an integer >= 0.
    target_fdr
        False discovery rate of seqlet calling.
    min_seqlets
        Fewest seqlets of a sign worth clustering; signs with fewer give no motifs.
    n_leiden_runs
        Leiden clusterings with different seeds per clustering step (tfmodisco-lite's command-line
        default; its Python default of 50 gives near-identical motifs at 25 times the cost).
    threads
        Threads numba and the BLAS libraries may use.
    min_strength
        Least strength of a motif (:func:`genomatt.motifs.discovery.motif_strength`) as a fraction of the
        strongest motif of its task; weaker patterns are dropped, in [0, 1).
    min_purity
        Least task purity of a motif and of a seqlet (:mod:`genomatt.motifs.purity`): motifs whose seqlets
        drive another task more than ``1 / min_purity`` times as much as their own are other tasks' motifs
        and are dropped, and each kept motif is rebuilt without such seqlets, in [0, 1].
    min_seqlet_share
        Least contribution of a motif seqlet's core as a fraction of the motif's median seqlet's; weaker
        seqlets are dropped from the motif and its matrices rebuilt from the others, in [0, 1).
    """

    max_seqlets: int = 20_000
    seed: int = 0
    target_fdr: float = 0.05
    min_seqlets: int = 100
    n_leiden_runs: int = 2
    threads: int = 1
    min_strength: float = 0.3
    min_purity: float = 0.5
    min_seqlet_share: float = 0.5

    def __post_init__(self) -> None:
        for name in ("max_seqlets", "threads", "n_leiden_runs"):
            if getattr(self, name) < 1:
                raise MotifError(f"{name} must be at least 1, got {getattr(self, name)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise MotifError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.min_seqlets < 2:
            raise MotifError(f"min_seqlets must be at least 2, got {self.min_seqlets}")
        if self.max_seqlets < self.min_seqlets:
            raise MotifError(f"max_seqlets must be at least {self.min_seqlets}, the fewest seqlets of a sign that are "
                             f"clustered, got {self.max_seqlets}: no motif could be found")
        if not 0 < self.target_fdr < 1:
            raise MotifError(f"target_fdr must be between 0 and 1, got {self.target_fdr}")
        if not 0 <= self.min_strength < 1:
            raise MotifError(f"min_strength must be in [0, 1), got {self.min_strength}")
        if not 0 <= self.min_purity <= 1:
            raise MotifError(f"min_purity must be in [0, 1], got {self.min_purity}")
        if not 0 <= self.min_seqlet_share < 1:
            raise MotifError(f"min_seqlet_share must be in [0, 1), got {self.min_seqlet_share}")
