"""Checks that the input files of a command belong to one run, before anything is written."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from genomatt.errors import StoreError


def _inside(table: pd.DataFrame, regions: pd.DataFrame, region_column: str, chrom_column: str) -> np.ndarray:
    """Whether each row of ``table`` lies in a region its ``region_column`` names (row index or name)."""
    located = pd.DataFrame({"row": np.arange(len(table)), "key": table[region_column].to_numpy(),
                            "chrom": table[chrom_column].astype(str).to_numpy(),
                            "start": table["start"].to_numpy(np.int64), "end": table["end"].to_numpy(np.int64)})
    by_index = pd.api.types.is_integer_dtype(table[region_column])
    candidates = pd.DataFrame({"key": np.arange(len(regions)) if by_index else regions["name"].astype(str).to_numpy(),
                               "region_chrom": regions["chrom"].astype(str).to_numpy(),
                               "region_start": regions["start"].to_numpy(np.int64),
                               "region_end": regions["end"].to_numpy(np.int64)})
    if not by_index:
        located["key"] = located["key"].astype(str)
    pairs = located.merge(candidates, on="key", how="inner")
    fits = ((pairs["chrom"] == pairs["region_chrom"]) & (pairs["start"] >= pairs["region_start"])
            & (pairs["end"] <= pairs["region_end"]))
    inside = np.zeros(len(table), dtype=bool)
    inside[pairs.loc[fits, "row"].to_numpy(np.int64)] = True
    return inside


def check_in_regions(
    table: pd.DataFrame, regions: pd.DataFrame, table_path: str | os.PathLike, regions_path: str | os.PathLike,
    region_column: str, chrom_column: str, what: str,
) -> None:
    """Check that every row of ``table`` lies in the region of ``regions`` that it names.

    Parameters
    ----------
    table
        Rows naming a region (by row of ``regions``, integers, or by name, strings), with a chromosome,
        ``start`` and ``end`` (e.g. hits or seqlets).
    regions
        The regions table of the file the rows should come from.
    table_path, regions_path
        The two files, for the message.
    region_column, chrom_column
        Names of the region and chromosome columns of ``table``.
    what
        What a row is (``"hit"``, ``"seqlet"``), for the message.

    Raises
    ------
    StoreError
        Naming the first row that lies elsewhere: the files come from different runs.
    """
    if not len(table):
        return
    inside = _inside(table, regions, region_column, chrom_column)
    if inside.all():
        return
    first = table.iloc[int(np.flatnonzero(~inside)[0])]
    raise StoreError(f"{table_path}: not made from {regions_path}: {int((~inside).sum())} of {len(table)} {what}s "
                     f"lie outside the region they name (first: {first[chrom_column]}:{first['start']}-{first['end']} "
                     f"in region {first[region_column]}); give the files of one run")
