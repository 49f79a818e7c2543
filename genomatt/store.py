"""HDF5 store of every genomatt artefact: one schema, provenance on every file, atomic writes.

Layout (documented in ``docs/formats.md``)::

    /regions/<column>     one dataset per regions-table column (chrom, start, end, name, ...)
    /<array>              per-region arrays, first axis = region (e.g. onehot (N, 4, L))
    attrs                 genomatt_version, created_utc, kind, provenance (JSON)
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from genomatt import __version__
from genomatt.atomic import atomic_path
from genomatt.errors import StoreError

REGIONS_GROUP = "regions"
REQUIRED_REGION_COLUMNS = ("chrom", "start", "end", "name")
CHUNK_ROWS = 256
_STRING = h5py.string_dtype(encoding="utf-8")


def _column_to_dataset(values: pd.Series) -> tuple[np.ndarray, object]:
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(bool), bool
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy(np.int64), np.int64
    if pd.api.types.is_float_dtype(values):
        return values.to_numpy(np.float64), np.float64
    return values.astype(str).to_numpy(dtype=object), _STRING


def write_table(group: h5py.Group, table: pd.DataFrame) -> None:
    """Write a table into an HDF5 group, one dataset per column.

    Parameters
    ----------
    group : h5py.Group
        An empty group of a file open for writing.
    table : pandas.DataFrame
        Bool, integer (stored as int64) and float (float64) columns keep their type; any other
        column is stored as UTF-8 strings. The column order is recorded in the ``columns`` attribute.
    """
    group.attrs["columns"] = json.dumps(list(table.columns))
    for column in table.columns:
        data, dtype = _column_to_dataset(table[column])
        group.create_dataset(column, data=data, dtype=dtype)


def read_table(group: h5py.Group) -> pd.DataFrame:
    """Read a table written by :func:`write_table`.

    Parameters
    ----------
    group : h5py.Group
        One dataset per column; the ``columns`` attribute (a JSON list) gives their order, and
        without it every member of the group is read.

    Returns
    -------
    pandas.DataFrame
        Columns in their written order; strings decoded to ``str`` (object dtype).
    """
    columns = json.loads(group.attrs.get("columns", "[]")) or list(group)
    data = {}
    for column in columns:
        values = group[column][()]
        if values.dtype == object:
            values = np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
        data[column] = values
    return pd.DataFrame(data)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (Path, os.PathLike)):
        return str(value)
    raise TypeError(f"cannot record {type(value).__name__} in provenance")


def write_store(
    path: str | os.PathLike,
    regions: pd.DataFrame,
    arrays: Mapping[str, np.ndarray] | None = None,
    kind: str = "regions",
    provenance: Mapping | None = None,
    attrs: Mapping[str, object] | None = None,
    compression: str | None = "gzip",
) -> Path:
    """Write regions and per-region arrays to an HDF5 file atomically.

    Parameters
    ----------
    path
        Output ``.h5`` file; written to a temporary file and renamed when complete.
    regions
        Regions table with at least ``chrom, start, end, name``.
    arrays
        Name → array whose first axis has one entry per region (e.g. ``onehot`` ``(N, 4, L)``).
    kind
        What the file holds (``regions``, ``contributions``, ...), recorded as an attribute.
    provenance
        How the file was made (config, seed, inputs, model hash); stored as JSON.
    attrs
        Further scalar or small-array attributes on the root (e.g. ``tasks``).
    compression
        HDF5 filter for arrays (``"gzip"`` level 1, or ``None``).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    missing = [column for column in REQUIRED_REGION_COLUMNS if column not in regions.columns]
    if missing:
        raise StoreError(f"{path}: regions table lacks columns {missing}")
    arrays = dict(arrays or {})
    for name, array in arrays.items():
        if name == REGIONS_GROUP or "/" in name:
            raise StoreError(f"{path}: invalid array name {name!r}")
        if len(array) != len(regions):
            raise StoreError(f"{path}: array {name!r} has {len(array)} rows for {len(regions)} regions")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["genomatt_version"] = __version__
        handle.attrs["created_utc"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        handle.attrs["kind"] = kind
        handle.attrs["provenance"] = json.dumps(dict(provenance or {}), default=_json_default, sort_keys=True)
        for key, value in (attrs or {}).items():
            handle.attrs[key] = value
        write_table(handle.create_group(REGIONS_GROUP), regions)
        for name, array in arrays.items():
            array = np.asarray(array)
            chunks = (min(CHUNK_ROWS, max(len(array), 1)),) + array.shape[1:] if array.ndim and len(array) else None
            handle.create_dataset(
                name, data=array, chunks=chunks,
                compression=compression if chunks else None,
                compression_opts=1 if compression == "gzip" and chunks else None,
            )
    return Path(path)


def _open(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: file not found")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise StoreError(f"{path}: not a readable HDF5 file ({error})") from None


def read_regions(path: str | os.PathLike) -> pd.DataFrame:
    """Read the regions table of a genomatt HDF5 file, columns in their written order."""
    with _open(path) as handle:
        if REGIONS_GROUP not in handle:
            raise StoreError(f"{path}: no '/{REGIONS_GROUP}' group; not a genomatt file")
        frame = read_table(handle[REGIONS_GROUP])
    missing = [column for column in REQUIRED_REGION_COLUMNS if column not in frame.columns]
    if missing:
        raise StoreError(f"{path}: regions lack columns {missing}")
    return frame


def read_array(path: str | os.PathLike, name: str, rows: slice | np.ndarray | None = None) -> np.ndarray:
    """Read a per-region array (all rows, a slice, or sorted row indices)."""
    with _open(path) as handle:
        if name not in handle or not isinstance(handle[name], h5py.Dataset):
            available = [key for key in handle if isinstance(handle[key], h5py.Dataset)]
            raise StoreError(f"{path}: no array {name!r} (it has: {available})")
        dataset = handle[name]
        return dataset[()] if rows is None else dataset[rows]


def read_attrs(path: str | os.PathLike) -> dict:
    """Root attributes of a genomatt HDF5 file; ``provenance`` is decoded from JSON."""
    with _open(path) as handle:
        attrs = {key: (value.tolist() if isinstance(value, np.ndarray) else value) for key, value in handle.attrs.items()}
    if "provenance" in attrs:
        attrs["provenance"] = json.loads(attrs["provenance"])
    return attrs


def list_arrays(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the per-region arrays of a file."""
    with _open(path) as handle:
        return {key: handle[key].shape for key in handle if isinstance(handle[key], h5py.Dataset)}


def shard_rows(n_regions: int, shard: int, n_shards: int) -> slice:
    """Rows of shard ``shard`` (0-based) when ``n_regions`` are split into ``n_shards`` contiguous chunks.

    Chunk sizes differ by at most one, as in ``numpy.array_split``; a shard may be empty when there are
    more shards than regions.
    """
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise StoreError(f"shard {shard} of {n_shards}: need n_shards >= 1 and 0 <= shard < n_shards")
    base, extra = divmod(n_regions, n_shards)
    start = shard * base + min(shard, extra)
    return slice(start, start + base + (shard < extra))


def gather_stores(inputs: list[str | os.PathLike], path: str | os.PathLike) -> Path:
    """Concatenate shard files (same arrays, same kind) in the given order into one file, atomically.

    The root attributes and provenance of the first shard are kept, without its ``shard`` entry, so
    the gathered file equals the one an unsharded run writes.
    """
    if not inputs:
        raise StoreError(f"{path}: no shard files to gather")
    frames, arrays = [], {}
    first_names = None
    for shard_path in inputs:
        names = sorted(list_arrays(shard_path))
        if first_names is None:
            first_names = names
        elif names != first_names:
            raise StoreError(f"{shard_path}: arrays {names} differ from the first shard's {first_names}")
        frames.append(read_regions(shard_path))
        for name in names:
            arrays.setdefault(name, []).append(read_array(shard_path, name))
    attrs = read_attrs(inputs[0])
    provenance = attrs.pop("provenance", {})
    provenance.pop("shard", None)
    kind = attrs.pop("kind", "regions")
    for key in ("genomatt_version", "created_utc"):
        attrs.pop(key, None)
    regions = pd.concat(frames, ignore_index=True)
    return write_store(path, regions, {name: np.concatenate(parts) for name, parts in arrays.items()},
                       kind=kind, provenance=provenance, attrs=attrs)
