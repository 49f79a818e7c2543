import numpy as np

from genomatt.motifs.trimming import MATCH_TRIM_FRACTION, trim_bounds


def test_trim_bounds_keeps_columns_above_three_tenths_of_the_maximum():
    cwm = np.zeros((4, 8))
    cwm[0, [1, 3, 4, 6]] = [0.25, 1.0, -0.5, 0.31]
    assert trim_bounds(cwm) == (3, 7)


def test_the_match_span_reaches_columns_of_a_tenth_of_the_maximum():
    cwm = np.zeros((4, 8))
    cwm[[0, 1, 2, 3], [0, 2, 4, 7]] = [0.05, 0.12, -1.0, 0.2]
    assert trim_bounds(cwm, MATCH_TRIM_FRACTION) == (2, 8)
    assert trim_bounds(cwm) == (4, 5)
