"""The parameters of the synthetic genome (:func:`genomatt.simulate.simulate_genome`) and their defaults.

Apart from the simulator so that ``genomatt simulate --help`` shows them without loading numba or pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genomatt.motifs.jaspar import DEFAULT_RELEASE

# GATA1 is its 10 bp matrix MA2388: the 7 bp MA0035.5 carries so little information that chance matches
# in 200 bp of background make its task unlearnable even for a scan with the true matrix.
DEFAULT_MOTIFS = ("MA2388", "MA0091", "MA0139", "MA0080", "MA0466")  # GATA1, TAL1::TCF3, CTCF, SPI1, CEBPB


@dataclass
class SimulationSettings:
    """Parameters of the synthetic genome (defaults give the embedded demo)."""

    seed: int = 0
    motifs: Sequence[str] = DEFAULT_MOTIFS
    jaspar_release: str = DEFAULT_RELEASE
    n_chromosomes: int = 5
    chromosome_length: int = 500_000
    region_width: int = 200
    n_positive_regions: int = 2000
    n_negative_regions: int = 1000
    motif_probability: float = 0.35
    second_instance_probability: float = 0.3
    edge_margin: int = 20
