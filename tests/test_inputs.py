import pandas as pd
import pytest

from genomatt.errors import StoreError
from genomatt.inputs import check_in_regions

REGIONS = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "start": [0, 500, 100], "end": [200, 700, 300],
                        "name": ["a", "b", "c"]})


def test_rows_in_the_regions_they_name_pass():
    by_index = pd.DataFrame({"peak_id": [0, 2, 1], "chr": ["chr1", "chr2", "chr1"], "start": [10, 100, 690],
                             "end": [20, 110, 700]})
    check_in_regions(by_index, REGIONS, "hits.h5", "contrib.h5", "peak_id", "chr", "hit")
    by_name = pd.DataFrame({"region": ["c", "a"], "chrom": ["chr2", "chr1"], "start": [150, 0], "end": [170, 200]})
    check_in_regions(by_name, REGIONS, "motifs.h5", "contrib.h5", "region", "chrom", "seqlet")
    check_in_regions(by_name.iloc[:0], REGIONS.iloc[:0], "motifs.h5", "contrib.h5", "region", "chrom", "seqlet")


@pytest.mark.parametrize("row, column", [({"peak_id": 3}, "peak_id"), ({"peak_id": 1}, "peak_id"),
                                         ({"region": "d"}, "region"), ({"region": "b"}, "region")])
def test_rows_elsewhere_are_refused(row, column):
    table = pd.DataFrame([{**row, "chrom": "chr1", "start": 10, "end": 20}])
    with pytest.raises(StoreError, match=rf"x.h5: not made from contrib.h5: 1 of 1 seqlets lie outside the region "
                                         rf"they name \(first: chr1:10-20 in region {list(row.values())[0]}\)"):
        check_in_regions(table, REGIONS, "x.h5", "contrib.h5", column, "chrom", "seqlet")
