"""The parameters of hit calling, their defaults, units and valid ranges: the one place they are decided.

:class:`HitParameters` is what the algorithm (:mod:`genomatt.motifs.hit_calling`), its file driver
(:mod:`genomatt.motifs.hits`), ``genomatt hits`` (its option defaults), Fi-NeMo's ``parameters.json``
(:mod:`genomatt.motifs.finemo`) and ``bench/hits.py`` read. The workflow passes the ``hits`` section of the
config as options of ``genomatt hits``; keys it leaves out take these defaults. The module imports neither
torch nor h5py, so the command's parser reads the defaults cheaply.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

from genomatt.errors import MotifError
from genomatt.motifs.trimming import TRIM_FRACTION

# Regions scanned at once: memory and speed only, never the hits, so it is no field of HitParameters.
DEFAULT_BATCH_SIZE = 128


@dataclass(frozen=True)
class HitParameters:
    """Parameters of a hit-calling run (``docs/methods.md`` gives the method).

    The fields are written as the ``settings`` of ``hits.h5`` (its provenance, keys sorted) and, in this order,
    of ``parameters.json``.

    Attributes
    ----------
    min_similarity
        Least similarity of a window's contributions and the unit-norm CWM: their cosine, with the energy
        floor added to the window's squared norm; unitless, in (0, 1]. Fi-NeMo's default is the same 0.7;
        it is written as each motif's ``lambda`` on Fi-NeMo's similarity scale (``motif_data.tsv``).
    fdr
        False discovery rate of candidate hits against the permutation null, which sets each motif's
        importance threshold; a fraction in (0, 1).
    trim_threshold
        The scanned core of each CWM: its columns of at least this fraction of the largest column's summed
        absolute weight, in [0, 1] (:func:`genomatt.motifs.trimming.trim_bounds`).
    seed
        Seed of the permutation null, an integer >= 0.
    energy_floor
        Regularisation of the similarity, as Fi-NeMo's ``eps``: this multiple of the squared contribution of
        a background window of the core's width is added to each window's squared norm, so a window must
        stand out of the background to look like the motif; unitless, >= 0 (0 gives the plain cosine).
    min_strength
        Least hit coefficient, as a fraction of the task's reference strength (the strongest motif's
        coefficient at its typical sites), in [0, 1); 0 keeps every hit that passes the other thresholds.
    min_sequence_quantile
        Least match of a hit's sequence to the motif: the log-odds score of the sequence under the scanned
        core (the motif's PWM against a uniform background) must reach this quantile of the scores of
        sequences drawn from that PWM itself, in [0, 1); 0.02 admits 98% of the sequences the motif
        describes. 0 turns the check off, as it is for motifs without a PWM.
    min_task_share
        Least share of a hit's site in its own task: its contribution there, on the scale of the task's
        strongest motif's hits (or, where larger, of the task's typical strongest sites), over that in the task
        it drives most, in [0, 1]; 0 keeps all hits.

    Raises
    ------
    MotifError
        If a value lies outside its range.
    """

    min_similarity: float = 0.7
    fdr: float = 0.05
    trim_threshold: float = TRIM_FRACTION
    seed: int = 0
    energy_floor: float = 1.0
    min_strength: float = 0.2
    min_sequence_quantile: float = 0.02
    min_task_share: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.min_similarity <= 1:
            raise MotifError(f"min_similarity must be in (0, 1], got {self.min_similarity}")
        if not 0 < self.fdr < 1:
            raise MotifError(f"fdr must be in (0, 1), got {self.fdr}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise MotifError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not 0 <= self.trim_threshold <= 1:
            raise MotifError(f"trim_threshold must be in [0, 1], got {self.trim_threshold}")
        if not self.energy_floor >= 0:
            raise MotifError(f"energy_floor must be >= 0, got {self.energy_floor}")
        if not 0 <= self.min_strength < 1:
            raise MotifError(f"min_strength must be in [0, 1), got {self.min_strength}")
        if not 0 <= self.min_sequence_quantile < 1:
            raise MotifError(f"min_sequence_quantile must be in [0, 1), got {self.min_sequence_quantile}")
        if not 0 <= self.min_task_share <= 1:
            raise MotifError(f"min_task_share must be in [0, 1], got {self.min_task_share}")

    def settings(self) -> dict:
        """The parameters as a dict, in field order (the ``settings`` record of a run)."""
        return dataclasses.asdict(self)
