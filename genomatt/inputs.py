"""Checks that the input files of a command belong to one run, before anything is written."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from genomatt.errors import StoreError


def check_in_regions(
    table: pd.DataFrame, regions: pd.DataFrame, table_path: str | os.PathLike, regions_path: str | os.PathLike,
    region_column: str, chrom_column: str, what: str,
) -> None:
    """Check that every row of ``table`` lies in the region of ``regions`` its ``region_column`` names.

    Parameters
    ----------
    table
        Rows with a region index (row of ``regions``), a chromosome, ``start`` and ``end`` (e.g. hits or
        seqlets).
    regions
        The regions table of the file the rows should come from.
    table_path, regions_path
        The two files, for the message.
    region_column, chrom_column
        Names of the region index and chromosome columns of ``table``.
    what
        What a row is (``"hit"``, ``"seqlet"``), for the message.

    Raises
    ------
    StoreError
        Naming the first row that lies elsewhere: the files come from different runs.
    """
    if not len(table):
        return
    index = table[region_column].to_numpy(np.int64)
    inside = (index >= 0) & (index < len(regions))
    safe = np.where(inside, index, 0)
    inside &= table[chrom_column].astype(str).to_numpy() == regions["chrom"].astype(str).to_numpy()[safe]
    inside &= table["start"].to_numpy(np.int64) >= regions["start"].to_numpy(np.int64)[safe]
    inside &= table["end"].to_numpy(np.int64) <= regions["end"].to_numpy(np.int64)[safe]
    if inside.all():
        return
    row = int(np.flatnonzero(~inside)[0])
    first = table.iloc[row]
    where = (f"region {index[row]} is {regions['chrom'].iloc[index[row]]}:{regions['start'].iloc[index[row]]}-"
             f"{regions['end'].iloc[index[row]]} there" if 0 <= index[row] < len(regions)
             else f"it has only {len(regions)} regions")
    raise StoreError(f"{table_path}: not made from {regions_path}: {int((~inside).sum())} {what}s lie outside their "
                     f"region (first: {first[chrom_column]}:{first['start']}-{first['end']} in region {index[row]}, "
                     f"but {where}); give the files of one run")
