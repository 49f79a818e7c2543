"""Which planted motif of the simulated genome a discovered motif stands for (shared by the benchmarks).

A discovered motif stands for a planted JASPAR matrix when its best known-motif match (q < 0.05) is that
matrix (any version) or a matrix of the same TF family in JASPAR, as the acceptance of motif discovery
allows ("its own JASPAR matrix or one of its family"). A motif of a task stands for the task's own planted
matrix when any of its significant matches is that matrix, or its best match shares the matrix's family:
with two planted motifs of one family (ETS1 and ELF1), a match to a third member (FLI1) is the task's own,
and JASPAR's family names differ between members (Ebf4 "EBF-related", EBF1 "Early B-Cell Factor-related
factors") where the matrix itself is among the matches.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

SIGNIFICANT_Q = 0.05


@functools.lru_cache
def tf_family(matrix_id: str, release: str) -> frozenset[str]:
    """The TF families JASPAR lists for a matrix (by base ID, latest version)."""
    from pyjaspar import jaspardb

    record = jaspardb(release=release).fetch_motif_by_id(matrix_id.split(".")[0])
    return frozenset(record.tf_family or []) if record else frozenset()


def planted_matrix(matches: list[dict], planted_ids: Iterable[str], release: str,
                   own: str | None = None) -> str | None:
    """The planted matrix ID a motif with these known-motif matches (best first) stands for, or None.

    ``own`` is the planted matrix of the motif's task, when known: it is preferred to another planted matrix of
    its family, and found among all significant matches, not only the best.
    """
    significant = [match for match in matches if match["q"] < SIGNIFICANT_Q]
    if not significant:
        return None
    best = significant[0]["id"]
    planted_ids = list(planted_ids)
    for matrix_id in planted_ids:
        if best.split(".")[0] == matrix_id.split(".")[0]:
            return matrix_id
    if own is not None and (any(match["id"].split(".")[0] == own.split(".")[0] for match in significant)
                            or tf_family(best, release) & tf_family(own, release)):
        return own
    for matrix_id in planted_ids:
        if tf_family(best, release) & tf_family(matrix_id, release):
            return matrix_id
    return None
