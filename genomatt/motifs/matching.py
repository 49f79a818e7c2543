"""Known-motif matching: discovered motifs compared with JASPAR or a MEME file by TOMTOM (memelite).

Each discovered motif's trimmed letter-probability matrix (its seqlets' base frequencies over the span of
columns whose summed |CWM| is at least ``genomatt.motifs.trimming.MATCH_TRIM_FRACTION`` of the largest, with
square-root pseudocounts: :func:`genomatt.motifs.discovery.site_probabilities`) is compared with every motif of
the database, on both strands, by memelite's TOMTOM (complete scores, Euclidean column distance).
TOMTOM's p-value is that of the best alignment; the q-value is the Benjamini-Hochberg adjustment of a
motif's p-values against all database motifs (``scipy.stats.false_discovery_control``), as MEME's tomtom
reports it.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control

from genomatt.atomic import atomic_path
from genomatt.errors import MotifError
from genomatt.motifs.discovery import DiscoveredMotif
from genomatt.motifs.formats import Motif, probability_matrix, read_motif_file
from genomatt.motifs.jaspar import DEFAULT_RELEASE, fetch_jaspar_collection
from genomatt.threads import bounded_threads

log = logging.getLogger(__name__)

MIN_STABLE_DATABASE = 25
"""Known motifs below which TOMTOM's p-values depend on the set given (memelite's own threshold)."""
MATCH_COLUMNS = ("motif", "task", "sign", "n_seqlets", "rank", "match_id", "match_name", "p_value", "q_value")


def load_database(
    meme: str | os.PathLike | None = None,
    release: str = DEFAULT_RELEASE,
    collection: str = "CORE",
    tax_group: str | None = "vertebrates",
) -> list[Motif]:
    """Known motifs to match against: a MEME or JASPAR-format file when given, else a JASPAR collection (offline,
    pyjaspar)."""
    if meme is not None:
        return read_motif_file(meme)
    return fetch_jaspar_collection(release, collection, tax_group)


def compare_motifs(
    queries: Sequence[np.ndarray], database: Sequence[Motif], top: int = 3, threads: int = 1
) -> list[list[dict]]:
    """TOMTOM matches of each query against a motif database.

    Parameters
    ----------
    queries
        Probability matrices ``(4, W)`` (columns sum to 1), a sequence of them or a ``(Q, 4, W)`` array.
    database
        Known motifs, whose probabilities are checked as the queries'; :data:`MIN_STABLE_DATABASE` or more
        give stable p-values (a warning is logged below).
    top
        Matches kept per query, by increasing p-value.
    threads
        Threads for TOMTOM.

    Returns
    -------
    list of list of dict
        Per query, its ``top`` matches: ``id``, ``name``, ``p``, ``q``.

    Raises
    ------
    MotifError
        If a query or known motif is not a ``(4, W)`` probability matrix (W >= 1, finite, non-negative,
        columns summing to 1 within ``PROBABILITY_TOLERANCE``), naming it.
    """
    from memelite import tomtom

    if top < 1:
        raise MotifError(f"the number of matches kept per motif must be at least 1, got {top}")
    queries = [probability_matrix(query, f"queries[{index}]") for index, query in enumerate(queries)]
    if not queries:
        return []
    if not database:
        raise MotifError("the known-motif database is empty")
    targets = [probability_matrix(motif.probabilities, f"known motif {motif.id}") for motif in database]
    if len(targets) < MIN_STABLE_DATABASE:
        log.warning("matching against %d known motifs: TOMTOM's p-values take their background from the known "
                    "motifs' columns, so with fewer than %d they depend on which motifs are given; a whole "
                    "database (e.g. JASPAR) gives stable ones", len(targets), MIN_STABLE_DATABASE)
    with bounded_threads(threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="tomtom was given", category=UserWarning)
        p_values = tomtom(queries, targets)[0]
    # scipy refuses p-values outside [0, 1]; rounding error must not fail a run.
    q_values = false_discovery_control(np.clip(p_values, 0.0, 1.0), axis=1, method="bh")
    matches = []
    for row_p, row_q in zip(p_values, q_values):
        best = np.argsort(row_p, kind="stable")[:top]
        matches.append([{"id": database[i].id, "name": database[i].name, "p": float(row_p[i]), "q": float(row_q[i])}
                        for i in best])
    return matches


def match_motifs(motifs: Sequence[DiscoveredMotif], database: Sequence[Motif], top: int = 3, threads: int = 1) -> None:
    """Set each motif's ``matches`` to its ``top`` TOMTOM matches (its ``trimmed_motif()`` vs. the database)."""
    found = compare_motifs([motif.trimmed_motif().probabilities for motif in motifs], database, top, threads)
    for motif, matches in zip(motifs, found):
        motif.matches = matches


def write_matches_tsv(motifs: Sequence[DiscoveredMotif], path: str | os.PathLike) -> None:
    """Write every motif's matches as a TSV (``MATCH_COLUMNS``), one row per match, atomically."""
    rows = [{"motif": motif.name, "task": motif.task, "sign": motif.sign, "n_seqlets": motif.n_seqlets,
             "rank": rank, "match_id": match["id"], "match_name": match["name"], "p_value": match["p"],
             "q_value": match["q"]}
            for motif in motifs for rank, match in enumerate(motif.matches, start=1)]
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=list(MATCH_COLUMNS)).to_csv(tmp, sep="\t", index=False, float_format="%.4g")
