"""Chromosome hold-out: which chromosomes validate and test a model, and which regions fall where."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from genomatt.errors import ConfigError

# Defaults for the simulated genome (chromosomes chr1 ... chr5): train on chr1-chr3.
DEFAULT_VALIDATION_CHROMS = ("chr4",)
DEFAULT_TEST_CHROMS = ("chr5",)
SPLITS = ("train", "validation", "test")


def holdout_chromosomes(
    genome_chroms: Iterable[str],
    validation_chroms: Sequence[str] | None = None,
    test_chroms: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Resolve and check the validation and test chromosomes.

    Parameters
    ----------
    genome_chroms
        Chromosome names of the FASTA.
    validation_chroms, test_chroms
        Chosen chromosomes; ``None`` takes the default (``chr4`` and ``chr5``, as in the simulated
        genome) when the genome has it.

    Returns
    -------
    tuple of list of str
        Validation and test chromosomes.

    Raises
    ------
    ConfigError
        If a default is absent from the genome, a chromosome is unknown, or the sets overlap.
    """
    genome_chroms = list(genome_chroms)
    chosen = []
    shown = ", ".join(genome_chroms[:10]) + (" ..." if len(genome_chroms) > 10 else "")
    for label, given, default, option in (
        ("validation", validation_chroms, DEFAULT_VALIDATION_CHROMS, "--val-chroms (train.val_chroms)"),
        ("test", test_chroms, DEFAULT_TEST_CHROMS, "--test-chroms (train.test_chroms)"),
    ):
        if given is None:
            if not set(default) <= set(genome_chroms):
                raise ConfigError(
                    f"no {label} chromosomes given and the default ({', '.join(default)}) is not in the genome "
                    f"(it has {shown}); choose them with {option}"
                )
            given = default
        given = list(given)
        if not given:
            raise ConfigError(f"{option}: give at least one {label} chromosome")
        unknown = sorted(set(given) - set(genome_chroms))
        if unknown:
            # UCSC against Ensembl names: chr4 for 4, or 4 for chr4.
            spelt = [name for chrom in unknown for name in (f"chr{chrom}", str(chrom).removeprefix("chr"))
                     if name in genome_chroms]
            hint = f"; did you mean {', '.join(spelt)}?" if spelt else ""
            raise ConfigError(f"{option}: chromosomes {unknown} are not in the genome (it has {shown}){hint}")
        chosen.append(given)
    shared = sorted(set(chosen[0]) & set(chosen[1]))
    if shared:
        raise ConfigError(f"chromosomes {shared} are both validation and test chromosomes; the sets must be disjoint")
    return chosen[0], chosen[1]


def assign_splits(chroms: np.ndarray, validation_chroms: Sequence[str], test_chroms: Sequence[str]) -> np.ndarray:
    """``"train"``, ``"validation"`` or ``"test"`` for each region's chromosome; ``(N,)`` str."""
    chroms = np.asarray(chroms)
    split = np.full(chroms.shape, "train", dtype=object)
    split[np.isin(chroms, list(validation_chroms))] = "validation"
    split[np.isin(chroms, list(test_chroms))] = "test"
    return split
