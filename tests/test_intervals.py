"""Interval overlap queries."""

import numpy as np
import pandas as pd

from genomatt.intervals import overlaps_any


def test_overlaps_any_matches_brute_force():
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 1000, 60)
    regions = pd.DataFrame(
        {"chrom": rng.choice(["chr1", "chr2"], 60), "start": starts, "end": starts + rng.integers(1, 80, 60)}
    )
    query_start = rng.integers(0, 1100, 500)
    query_end = query_start + rng.integers(1, 50, 500)
    query_chrom = rng.choice(["chr1", "chr2", "chr3"], 500)
    expected = [
        bool(((regions["chrom"] == c) & (regions["start"] < e) & (regions["end"] > s)).any())
        for c, s, e in zip(query_chrom, query_start, query_end)
    ]
    assert overlaps_any(query_chrom, query_start, query_end, regions).tolist() == expected
