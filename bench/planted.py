"""Which planted motif of the simulated genome a discovered motif stands for (shared by the benchmarks).

A discovered motif stands for a planted JASPAR matrix when its best known-motif match (q < 0.05) is that
matrix (any version) or a matrix of the same TF family in JASPAR, as the acceptance of motif discovery
allows ("its own JASPAR matrix or one of its family").
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


def planted_matrix(matches: list[dict], planted_ids: Iterable[str], release: str) -> str | None:
    """The planted matrix ID a motif with these known-motif matches (best first) stands for, or None."""
    if not matches or matches[0]["q"] >= SIGNIFICANT_Q:
        return None
    best = matches[0]["id"]
    planted_ids = list(planted_ids)
    for matrix_id in planted_ids:
        if best.split(".")[0] == matrix_id.split(".")[0]:
            return matrix_id
    for matrix_id in planted_ids:
        if tf_family(best, release) & tf_family(matrix_id, release):
            return matrix_id
    return None
