"""HDF5 store of every genomatt artefact: one schema, provenance on every file, atomic writes.

Layout (documented in ``docs/formats.md``)::

    /regions/<column>     one dataset per regions-table column (chrom, start, end, name, ...)
    /<array>              per-region arrays, first axis = region (e.g. onehot (N, 4, L))
    attrs                 genomatt_version, created_utc, kind, provenance (JSON)
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from genomatt import __version__
from genomatt.atomic import atomic_hdf5, check_hdf5_writes
from genomatt.errors import StoreError, missing_file

log = logging.getLogger(__name__)

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


def _write_root(handle: h5py.File, regions: pd.DataFrame, kind: str, provenance: Mapping | None,
                attrs: Mapping[str, object] | None) -> None:
    """Write the root attributes and the regions table of a genomatt file."""
    handle.attrs["genomatt_version"] = __version__
    handle.attrs["created_utc"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    handle.attrs["kind"] = kind
    handle.attrs["provenance"] = json.dumps(dict(provenance or {}), default=_json_default, sort_keys=True)
    for key, value in (attrs or {}).items():
        handle.attrs[key] = value
    write_table(handle.create_group(REGIONS_GROUP), regions)


def _create_array(handle: h5py.File, name: str, shape: tuple[int, ...], dtype: np.dtype,
                  compression: str | None) -> h5py.Dataset:
    """Create an empty per-region array chunked by rows (compressed, checksummed)."""
    chunks = (min(CHUNK_ROWS, max(shape[0], 1)),) + tuple(shape[1:]) if len(shape) and shape[0] else None
    return handle.create_dataset(
        name, shape=shape, dtype=dtype, chunks=chunks,
        compression=compression if chunks else None,
        compression_opts=1 if compression == "gzip" and chunks else None,
        fletcher32=bool(chunks),
    )


def _check_regions(path: str | os.PathLike, regions: pd.DataFrame) -> None:
    missing = [column for column in REQUIRED_REGION_COLUMNS if column not in regions.columns]
    if missing:
        raise StoreError(f"{path}: regions table lacks columns {missing}")


def _check_array_name(path: str | os.PathLike, name: str) -> None:
    if name == REGIONS_GROUP or "/" in name:
        raise StoreError(f"{path}: invalid array name {name!r}")


class StoreWriter:
    """The per-region arrays of a file that :func:`writing_store` writes, filled block by block in row order.

    Attributes
    ----------
    path : pathlib.Path
        The final file.
    n_regions : int
        Rows of every array.
    rows_written : int
        Rows written so far (the same for every array).
    provenance : dict
        How the file was made; written when the ``writing_store`` block completes, so it may be updated
        until then (e.g. with a statistic over every row).
    """

    def __init__(self, path: Path, handle: h5py.File, datasets: Mapping[str, h5py.Dataset], n_regions: int,
                 provenance: dict):
        self.path, self.n_regions, self.provenance = path, n_regions, provenance
        self.rows_written = 0
        self._handle, self._datasets = handle, dict(datasets)

    def write(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Write the next rows of every array of the file.

        Parameters
        ----------
        arrays
            Name → the next ``b`` rows of that array (``(b, *row_shape)``), the same ``b`` for every
            array of the file; converted to the array's dtype.

        Raises
        ------
        StoreError
            If an array of the file is missing or one is unknown, the blocks differ in rows or in row
            shape from the file's arrays, or they would pass the last row.
        OutputError
            If the file cannot be written (a full disk), at the block that did not fit.
        """
        if sorted(arrays) != sorted(self._datasets):
            raise StoreError(f"{self.path}: a block must hold the arrays {sorted(self._datasets)}, "
                             f"got {sorted(arrays)}")
        blocks = {name: np.asarray(block) for name, block in arrays.items()}
        if not blocks:
            return
        rows = {len(block) for block in blocks.values()}
        if len(rows) != 1:
            raise StoreError(f"{self.path}: the arrays of a block differ in rows: "
                             f"{ {name: len(block) for name, block in blocks.items()} }")
        (n_rows,) = rows
        stop = self.rows_written + n_rows
        if stop > self.n_regions:
            raise StoreError(f"{self.path}: rows {self.rows_written}-{stop} pass the file's {self.n_regions} regions")
        for name, block in blocks.items():
            if block.shape[1:] != self._datasets[name].shape[1:]:
                raise StoreError(f"{self.path}: array {name!r} has rows of shape {block.shape[1:]}, expected "
                                 f"{self._datasets[name].shape[1:]}")
        for name, block in blocks.items():
            if n_rows:
                self._datasets[name][self.rows_written:stop] = block
        check_hdf5_writes(self._handle)
        self.rows_written = stop


@contextlib.contextmanager
def writing_store(
    path: str | os.PathLike,
    regions: pd.DataFrame,
    arrays: Mapping[str, tuple[tuple[int, ...], np.dtype | type]],
    kind: str = "regions",
    provenance: Mapping | None = None,
    attrs: Mapping[str, object] | None = None,
    compression: str | None = "gzip",
) -> Iterator[StoreWriter]:
    """Write regions and per-region arrays to an HDF5 file block by block, atomically.

    The arrays are created empty, filled in row order with :meth:`StoreWriter.write`, and the file
    appears under ``path`` only when the block completes with every row written; if the block raises
    (an error, ``KeyboardInterrupt``), neither ``path`` nor the temporary file is left. Memory is what
    the caller holds for one block, whatever the number of regions.

    Parameters
    ----------
    path
        Output ``.h5`` file; written to a temporary file beside it and renamed when complete.
    regions
        Regions table with at least ``chrom, start, end, name``: N rows.
    arrays
        Name → (shape of one row, dtype) of each per-region array, e.g. ``{"onehot": ((4, L), np.float32)}``
        for an ``(N, 4, L)`` float32 array.
    kind, provenance, attrs, compression
        As for :func:`write_store`; ``provenance`` is copied into :attr:`StoreWriter.provenance`.

    Yields
    ------
    StoreWriter
        Takes the arrays' rows, a block at a time.

    Raises
    ------
    StoreError
        If the regions lack a column, an array name is invalid, or the block completes before every
        row is written.
    """
    _check_regions(path, regions)
    for name in arrays:
        _check_array_name(path, name)
    with atomic_hdf5(path) as handle:
        datasets = {name: _create_array(handle, name, (len(regions), *row_shape), np.dtype(dtype), compression)
                    for name, (row_shape, dtype) in arrays.items()}
        writer = StoreWriter(Path(path), handle, datasets, len(regions), dict(provenance or {}))
        yield writer
        if datasets and writer.rows_written != len(regions):
            raise StoreError(f"{path}: {writer.rows_written} of {len(regions)} rows written; the file is incomplete")
        _write_root(handle, regions, kind, writer.provenance, attrs)


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
        HDF5 filter for arrays (``"gzip"`` level 1, or ``None``). Chunked arrays also carry a
        Fletcher-32 checksum, so a damaged chunk is an error on reading, never wrong numbers.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    _check_regions(path, regions)
    arrays = {name: np.asarray(array) for name, array in (arrays or {}).items()}
    for name, array in arrays.items():
        _check_array_name(path, name)
        if len(array) != len(regions):
            raise StoreError(f"{path}: array {name!r} has {len(array)} rows for {len(regions)} regions")
    layout = {name: (array.shape[1:], array.dtype) for name, array in arrays.items()}
    with writing_store(path, regions, layout, kind, provenance, attrs, compression) as writer:
        writer.write(arrays)
    return Path(path)


def _open(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise StoreError(missing_file(path, "file"))
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


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn an HDF5 read failure in the block (a corrupted chunk, an I/O error) into one ``StoreError``.

    Parameters
    ----------
    path
        The file read.
    what
        What is read, for the message (e.g. ``"array 'hypothetical'"``).
    """
    try:
        yield
    except OSError as error:
        reason = " ".join(str(error).split())
        raise StoreError(f"{path}: cannot read {what} ({reason}); the file is damaged, write it again") from None


def read_array(path: str | os.PathLike, name: str, rows: slice | np.ndarray | None = None) -> np.ndarray:
    """Read a per-region array (all rows, a slice, or sorted row indices)."""
    with _open(path) as handle:
        if name not in handle or not isinstance(handle[name], h5py.Dataset):
            available = [key for key in handle if isinstance(handle[key], h5py.Dataset)]
            raise StoreError(f"{path}: no array {name!r} (it has: {available})")
        dataset = handle[name]
        with reading(path, f"array {name!r}"):
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


def shard_rows(n_regions: int, shard: int, n_shards: int, unit: int = 1) -> slice:
    """Rows of shard ``shard`` (0-based) when ``n_regions`` are split into ``n_shards`` contiguous chunks.

    Every chunk but the last starts and ends at a multiple of ``unit`` rows (the regions of one batch of the
    computation, so that a shard's batches are those of one run over every region, and its numbers the same
    bit for bit); their numbers of units differ by at most one, as in ``numpy.array_split``. A shard may be
    empty when there are more shards than units.
    """
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise StoreError(f"shard {shard} of {n_shards}: need n_shards >= 1 and 0 <= shard < n_shards")
    if unit < 1:
        raise StoreError(f"shards of {unit} rows: need a unit of at least 1 row")
    base, extra = divmod(-(-n_regions // unit), n_shards)
    start = shard * base + min(shard, extra)
    stop = start + base + (shard < extra)
    return slice(min(start * unit, n_regions), min(stop * unit, n_regions))


SHARD_SPECIFIC = ("shard", "max_delta")
"""Provenance entries that differ between the shards of one run; every other entry must agree."""


def shard_record(shard: int, n_shards: int, n_regions: int, unit: int = 1) -> dict:
    """The ``shard`` provenance entry of shard ``shard`` (0-based) of ``n_shards`` over ``n_regions`` regions, cut
    at multiples of ``unit`` rows (:func:`shard_rows`).

    Returns
    -------
    dict
        ``index``, ``count``, ``rows`` (``[start, stop)`` of the full regions table), ``n_regions`` and ``unit``.
    """
    rows = shard_rows(n_regions, shard, n_shards, unit)
    return {"index": shard, "count": n_shards, "rows": [rows.start, rows.stop], "n_regions": n_regions, "unit": unit}


def h5_key(name: str) -> str:
    """A motif's name as the key of its HDF5 group or dataset: ``%`` is written ``%25`` and ``/`` (which HDF5
    reads as a path of groups; HOMER's motif names hold it) ``%2F``, and a name of dots alone has them as
    ``%2E``, so every name is one key and the name is read back from the group's ``names`` attribute.
    """
    key = name.replace("%", "%25").replace("/", "%2F")
    return key.replace(".", "%2E") if key and not key.strip(".") else key


def h5_member(group: h5py.Group, name: str) -> h5py.Group | h5py.Dataset:
    """The member of ``group`` keyed by :func:`h5_key` of ``name``, or by ``name`` itself as files written before that
    key was used hold it.

    Raises
    ------
    StoreError
        If ``group`` holds neither.
    """
    for key in (h5_key(name), name):
        if key in group:
            return group[key]
    raise StoreError(f"{group.file.filename}: no {group.name}/{h5_key(name)} of {name!r}, which the group's names list")


def content_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of what a genomatt HDF5 file holds, not of its bytes: each group's and dataset's name and attributes,
    each dataset's dtype, shape and values (by name), and the root attributes but ``created_utc``, so the same
    inputs written twice hash the same.

    Parameters
    ----------
    path
        A genomatt HDF5 file.

    Returns
    -------
    str
        Hexadecimal digest.
    """
    digest = hashlib.sha256()
    with _open(path) as handle:
        for key in sorted(handle.attrs):
            if key != "created_utc":
                digest.update(f"{key}={handle.attrs[key]!r}".encode())
        names: list[str] = []
        handle.visit(names.append)
        for name in sorted(names):
            item = handle[name]
            digest.update(f"{name}:".encode() + "".join(f"{key}={item.attrs[key]!r};" for key in sorted(item.attrs))
                          .encode())
            if not isinstance(item, h5py.Dataset):
                continue
            dataset = item
            digest.update(f"{name}:{dataset.dtype.str}:{dataset.shape}".encode())
            for block in dataset.iter_chunks() if dataset.chunks else [()]:
                values = dataset[block]
                if values.dtype == object:  # variable-length strings: their bytes, not their pointers
                    digest.update(b"\0".join(v if isinstance(v, bytes) else str(v).encode() for v in values.ravel()))
                else:
                    digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


@dataclass
class _Shard:
    path: Path
    kind: str
    attrs: dict
    provenance: dict
    record: dict
    arrays: dict[str, tuple[int, ...]]
    n_regions: int


def _read_shard(path: str | os.PathLike) -> _Shard:
    path = Path(path)
    attrs = read_attrs(path)
    provenance = attrs.pop("provenance", {})
    record = provenance.get("shard")
    if not isinstance(record, dict) or not {"index", "count", "rows", "n_regions"} <= set(record):
        raise StoreError(f"{path}: no shard record (index, count, rows, n_regions) in its provenance; "
                         "gather takes the files written with --shard I/K")
    for key in ("genomatt_version", "created_utc"):
        attrs.pop(key, None)
    kind = attrs.pop("kind", "regions")
    return _Shard(path, kind, attrs, provenance, record, list_arrays(path), len(read_regions(path)))


def _first_difference(first: Mapping, other: Mapping, ignore: tuple[str, ...] = ()) -> str | None:
    for key in sorted(set(first) | set(other)):
        if key in ignore:
            continue
        if json.dumps(first.get(key), default=_json_default, sort_keys=True) != json.dumps(
                other.get(key), default=_json_default, sort_keys=True):
            return key
    return None


def _check_shards(shards: list[_Shard], path: str | os.PathLike) -> list[_Shard]:
    """Check that ``shards`` are the complete set of one run; return them in shard order."""
    first = shards[0]
    for shard in shards:
        if shard.kind != first.kind:
            raise StoreError(f"{shard.path}: kind {shard.kind!r} differs from {first.path}'s {first.kind!r}")
        key = _first_difference(first.provenance, shard.provenance, SHARD_SPECIFIC)
        if key is None:
            key = _first_difference(first.attrs, shard.attrs)
        if key is not None:
            mine = shard.provenance.get(key, shard.attrs.get(key))
            theirs = first.provenance.get(key, first.attrs.get(key))
            raise StoreError(f"{shard.path}: {key} = {mine!r} differs from {first.path}'s {theirs!r}; "
                             "shards of different runs cannot be gathered")
        if shard.record["count"] != first.record["count"] or shard.record["n_regions"] != first.record["n_regions"]:
            raise StoreError(f"{shard.path}: shard {shard.record['index']} of {shard.record['count']} over "
                             f"{shard.record['n_regions']} regions, but {first.path} is a shard of "
                             f"{first.record['count']} over {first.record['n_regions']} regions")
        if sorted(shard.arrays) != sorted(first.arrays) or any(
                shard.arrays[name][1:] != first.arrays[name][1:] for name in first.arrays):
            raise StoreError(f"{shard.path}: arrays {shard.arrays} differ from the first shard's {first.arrays}")
        start, stop = shard.record["rows"]
        if shard.n_regions != stop - start or any(shape[0] != stop - start for shape in shard.arrays.values()):
            raise StoreError(f"{shard.path}: holds {shard.n_regions} regions but shard {shard.record['index']} "
                             f"covers rows {start}-{stop}")
    seen: dict[int, Path] = {}
    for shard in shards:
        index = shard.record["index"]
        if index in seen:
            raise StoreError(f"{shard.path}: shard {index} of {first.record['count']} is given twice "
                             f"(also {seen[index]})")
        seen[index] = shard.path
    missing = sorted(set(range(first.record["count"])) - set(seen))
    if missing:
        raise StoreError(f"{path}: cannot gather: shards {missing} of {first.record['count']} are missing "
                         f"(given shards {sorted(seen)})")
    indices = [shard.record["index"] for shard in shards]
    if indices != sorted(indices):
        log.info("gathering the shards in shard order, not in the order given")
    ordered = sorted(shards, key=lambda shard: shard.record["index"])
    for shard in ordered:
        if shard.record.get("unit") != first.record.get("unit"):
            raise StoreError(f"{shard.path}: cut in batches of {shard.record.get('unit')} regions, but {first.path} in "
                             f"batches of {first.record.get('unit')} (another --batch-size or --references): shards "
                             "of one run are made with one batch size; make them all again with it")
    # The shards' rows, in shard order, must cover every region once.
    stops = [0] + [shard.record["rows"][1] for shard in ordered]
    for shard, stop in zip(ordered, stops):
        if shard.record["rows"][0] != stop:
            raise StoreError(f"{shard.path}: shard {shard.record['index']} covers rows {shard.record['rows'][0]}-"
                             f"{shard.record['rows'][1]}, but the shards before it end at row {stop}")
    if stops[-1] != first.record["n_regions"]:
        raise StoreError(f"{path}: the shards cover rows 0-{stops[-1]} of {first.record['n_regions']} regions")
    return ordered


def gather_stores(inputs: list[str | os.PathLike], path: str | os.PathLike) -> Path:
    """Concatenate the shards of one run into one file, in shard order, atomically.

    Each shard's provenance must hold its ``shard`` record (:func:`shard_record`). The set must be
    complete (every index of the count once) and of one run: the same kind, arrays, root attributes
    and provenance apart from ``shard`` and ``max_delta``. The gathered file keeps that common
    provenance, the largest ``max_delta`` of the shards, and a ``gathered`` entry listing the shard
    files; its arrays and regions equal those of an unsharded run.

    Raises
    ------
    StoreError
        Naming the file of a shard that is missing, given twice or from a different run.
    """
    if not inputs:
        raise StoreError(f"{path}: no shard files to gather")
    shards = _check_shards([_read_shard(shard_path) for shard_path in inputs], path)
    regions = pd.concat([read_regions(shard.path) for shard in shards], ignore_index=True)
    provenance = {key: value for key, value in shards[0].provenance.items() if key not in SHARD_SPECIFIC}
    deltas = [shard.provenance["max_delta"] for shard in shards if "max_delta" in shard.provenance]
    if deltas:
        provenance["max_delta"] = max(deltas)
    provenance["gathered"] = {"count": len(shards), "files": [str(shard.path.resolve()) for shard in shards]}
    with _open(shards[0].path) as first:
        layout = {name: (shape[1:], first[name].dtype) for name, shape in shards[0].arrays.items()}
    # Rows are copied a block at a time, so memory stays one block whatever the run's size.
    with writing_store(path, regions, layout, shards[0].kind, provenance, shards[0].attrs) as writer:
        for shard in shards:
            rows = next(iter(shard.arrays.values()))[0] if shard.arrays else 0
            with _open(shard.path) as source:
                for start in range(0, rows, CHUNK_ROWS):
                    block = {}
                    for name in layout:
                        with reading(shard.path, f"array {name!r}"):
                            block[name] = source[name][start:start + CHUNK_ROWS]
                    writer.write(block)
    return Path(path)
