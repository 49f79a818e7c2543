"""CWM trimming: the columns of a contribution weight matrix that make up a motif's core or its span.

One rule serves every stage: the columns whose summed absolute weight is at least a fraction of the
largest column's, from the first such column to the last. The core (``TRIM_FRACTION``, as tfmodisco-lite's
report and Fi-NeMo trim) is what discovery records, hit calling scans and composite detection compares;
the wider span (``MATCH_TRIM_FRACTION``) is what known-motif matching, ``motifs.meme``, logos and hits cover.
"""

from __future__ import annotations

import numpy as np

# A motif's core is its span of positions whose summed |CWM| is at least this fraction of the largest
# (tfmodisco-lite's report and Fi-NeMo trim with the same rule).
TRIM_FRACTION = 0.3
# Known-motif matching and the MEME file use a wider span, at least this fraction of the largest column:
# a model often puts most of a motif's contribution on a few core bases (GATC of a 10 bp GATA motif),
# and a 4 bp core cannot tell one matrix of a family from hundreds of others, while its flanks can.
MATCH_TRIM_FRACTION = 0.1


def trim_bounds(cwm: np.ndarray, fraction: float = TRIM_FRACTION) -> tuple[int, int]:
    """Core columns ``[start, end)`` of a ``(4, W)`` CWM: the span of columns whose summed |CWM| is at
    least ``fraction`` of the largest column's."""
    score = np.abs(cwm).sum(axis=0)
    passing = np.flatnonzero(score >= fraction * score.max())
    return int(passing[0]), int(passing[-1]) + 1
