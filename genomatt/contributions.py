"""The contribution file ``contrib.h5``: its one writer, its one reader and its one validator.

:mod:`genomatt.store` knows genomatt's HDF5 files in general (a regions table, per-region arrays,
provenance, atomic writes, shards and their gathering); this module knows what a contribution file holds
on top of that. Every stage that uses contributions (motif discovery, hits, tracks, the report, the CLI)
opens the file with :func:`read_contributions`, so each gets the same checks and the same messages, and
reads its arrays through the returned :class:`Contributions`, a task or a block of rows at a time.

Layout (``docs/formats.md``), on top of :mod:`genomatt.store`'s::

    /onehot        (N, 4, L)     float32 one-hot, A C G T
    /hypothetical  (N, T, 4, L)  hypothetical contributions, T tasks in the order of attribute ``tasks``
    /contrib       (N, T, 4, L)  onehot x hypothetical
    /hit_contrib   (N, T, 4, L)  optional: the contributions hits read, under another rule for a max over a
                                 whole axis (provenance ``hit_max_rule``)
    /delta         (N, T)        summation-to-delta error
    /prediction    (N, T)        the model's output
    attrs          kind = "contributions", tasks (T names), provenance

Discovery needs only ``/onehot`` and ``/hypothetical``; the other arrays are checked when present and
required by the reads that use them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from genomatt.errors import StoreError
from genomatt.store import StoreWriter, list_arrays, read_attrs, read_regions, reading, writing_store

KIND = "contributions"
PER_REGION_SCORES = ("delta", "prediction")


@dataclass(frozen=True)
class Contributions:
    """A checked ``contrib.h5``: what it holds, with its arrays read on demand.

    Attributes
    ----------
    path
        The file.
    regions
        Its regions table (N rows: ``chrom, start, end, name``, ...).
    tasks
        The T task names, in axis order of ``/hypothetical`` and ``/contrib``.
    length
        Region length L in bp.
    attrs
        Root attributes (``kind``, ``tasks``, ``genomatt_version``, ``created_utc``, ...); ``provenance``
        decoded from JSON.
    arrays
        Name → shape of each array of the file.
    """

    path: Path
    regions: pd.DataFrame
    tasks: list[str]
    length: int
    attrs: dict
    arrays: dict[str, tuple[int, ...]]

    @property
    def provenance(self) -> dict:
        """How the file was made (method, model hash, ...)."""
        return self.attrs.get("provenance", {})

    def check_tasks(self, tasks: Sequence[str] | None) -> None:
        """Raise ``StoreError`` unless every one of ``tasks`` (None: no restriction) is a task of the file."""
        unknown = [task for task in tasks or [] if task not in self.tasks]
        if unknown:
            raise StoreError(f"{self.path}: tasks {unknown} are not in the file (it has {self.tasks})")

    def read_window(self, task_index: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """One-hot and one task's hypothetical contributions over ``[start, end)`` of every region.

        Returns
        -------
        onehot, hypothetical : numpy.ndarray
            ``(N, 4, end - start)`` float32 each.

        Raises
        ------
        StoreError
            If the task's hypothetical contributions hold a NaN or an infinite value.
        """
        with h5py.File(self.path, "r") as handle, reading(self.path, f"the contributions of task {task_index}"):
            onehot = handle["onehot"][:, :, start:end].astype(np.float32, copy=False)
            hypothetical = handle["hypothetical"][:, task_index, :, start:end].astype(np.float32, copy=False)
        if not np.isfinite(hypothetical).all():
            raise StoreError(f"{self.path}: hypothetical contributions of task {task_index} contain NaN or "
                             "infinite values")
        return onehot, hypothetical

    def read_onehot(self) -> np.ndarray:
        """``(N, 4, L)`` one-hot of every region, as stored."""
        with h5py.File(self.path, "r") as handle, reading(self.path, "array 'onehot'"):
            return handle["onehot"][()]

    @property
    def hit_array(self) -> str:
        """The array hits read: ``hit_contrib`` where the file holds it, else ``contrib``."""
        return "hit_contrib" if "hit_contrib" in self.arrays else "contrib"

    def read_contrib(self, task_index: int, rows: int | slice | np.ndarray = slice(None),
                     array: str = "contrib") -> np.ndarray:
        """One task's contributions (``/contrib``, or ``array``) of some rows, as stored.

        Parameters
        ----------
        task_index
            The task's position in :attr:`tasks`.
        rows
            A row (then ``(4, L)``), a slice or sorted row indices (then ``(R, 4, L)``); default every row.
        array
            ``contrib``, or ``hit_contrib`` (:attr:`hit_array`).
        """
        if array not in self.arrays:
            raise StoreError(f"{self.path}: no '/{array}' array; expected a contrib.h5 from 'genomatt attribute'")
        with h5py.File(self.path, "r") as handle, reading(self.path, f"the contributions of task {task_index}"):
            return handle[array][rows, task_index]

    def read_products(self, rows: np.ndarray) -> np.ndarray:
        """``(R, T, 4, L)`` float32 contributions of sorted ``rows`` in every task, as one-hot x hypothetical.

        Computed from ``/onehot`` and ``/hypothetical``, so that a file without ``/contrib`` serves too.
        """
        with h5py.File(self.path, "r") as handle, reading(self.path, "the contributions"):
            return handle["onehot"][rows][:, None].astype(np.float32) * handle["hypothetical"][rows]

    def read_scores(self, name: str) -> np.ndarray | None:
        """``(N, T)`` float64 per-region scores ``name`` (``delta`` or ``prediction``); None if not stored."""
        if name not in self.arrays:
            return None
        with h5py.File(self.path, "r") as handle, reading(self.path, f"array {name!r}"):
            return np.asarray(handle[name][()], dtype=np.float64)


def _check_shapes(path: Path, shapes: Mapping[str, tuple[int, ...]]) -> None:
    for name, expected in (("onehot", "(N, 4, L)"), ("hypothetical", "(N, T, 4, L)")):
        if name not in shapes:
            raise StoreError(f"{path}: no '/{name}' array {expected}; not a contribution file (genomatt attribute)")
    onehot, hypothetical = shapes["onehot"], shapes["hypothetical"]
    if len(onehot) != 3 or onehot[1] != 4:
        raise StoreError(f"{path}: '/onehot' has shape {onehot}, expected (N, 4, L)")
    if len(hypothetical) != 4 or hypothetical[2] != 4 or hypothetical[0] != onehot[0] or hypothetical[3] != onehot[2]:
        raise StoreError(f"{path}: '/hypothetical' has shape {hypothetical}, expected (N, T, 4, L) = "
                         f"({onehot[0]}, T, 4, {onehot[2]}) to match '/onehot'")


def _check_optional_shapes(path: Path, shapes: Mapping[str, tuple[int, ...]]) -> None:
    hypothetical = shapes["hypothetical"]
    for name in ("contrib", "hit_contrib"):
        if name in shapes and shapes[name] != hypothetical:
            raise StoreError(f"{path}: '/{name}' has shape {shapes[name]}, expected (N, T, 4, L) = {hypothetical} "
                             "to match '/hypothetical'")
    for name in PER_REGION_SCORES:
        if name in shapes and shapes[name] != hypothetical[:2]:
            raise StoreError(f"{path}: '/{name}' has shape {shapes[name]}, expected (N, T) = {hypothetical[:2]}")


def read_contributions(path: str | os.PathLike) -> Contributions:
    """Check a ``contrib.h5`` and return what it holds; its arrays are read later, on demand.

    Parameters
    ----------
    path
        A contribution file written by ``genomatt attribute`` (or :func:`write_contributions`).

    Returns
    -------
    Contributions
        Regions, tasks, region length, root attributes and array shapes of the file.

    Raises
    ------
    StoreError
        The file is missing or not HDF5; it is of another kind than ``contributions`` or lacks the regions
        table; it lacks ``/onehot`` or ``/hypothetical``; its arrays disagree with ``(N, 4, L)``,
        ``(N, T, 4, L)`` (``/contrib`` too) and ``(N, T)`` (``/delta``, ``/prediction``), N regions and the T
        names of attribute ``tasks``, or those names are not unique.
    """
    path = Path(path)
    attrs = read_attrs(path)
    kind = attrs.get("kind")
    # A file of another genomatt kind is named by its kind; one with no kind either is not a genomatt file.
    if kind is not None and kind != KIND:
        raise StoreError(f"{path}: kind is {kind!r}, expected {KIND!r} (a contrib.h5)")
    regions = read_regions(path)
    if kind is None:
        raise StoreError(f"{path}: kind is None, expected {KIND!r} (a contrib.h5)")
    shapes = list_arrays(path)
    _check_shapes(path, shapes)
    onehot, hypothetical = shapes["onehot"], shapes["hypothetical"]
    if len(regions) != onehot[0]:
        raise StoreError(f"{path}: {len(regions)} regions but {onehot[0]} rows in '/onehot'")
    # Every coordinate that a later step writes (hits, seqlets, tracks) is a region's start plus a column.
    widths = (regions["end"] - regions["start"]).to_numpy()
    if len(widths) and (widths != onehot[2]).any():
        row = int(np.flatnonzero(widths != onehot[2])[0])
        raise StoreError(f"{path}: region {row} ({regions['chrom'].iloc[row]}:{regions['start'].iloc[row]}-"
                         f"{regions['end'].iloc[row]}) spans {widths[row]} bp, but its window has {onehot[2]} columns; "
                         "the file is damaged or was edited")
    if attrs.get("tasks") is None:
        raise StoreError(f"{path}: no 'tasks' attribute")
    tasks = [str(task) for task in np.atleast_1d(attrs["tasks"])]
    if len(tasks) != hypothetical[1]:
        raise StoreError(f"{path}: attribute 'tasks' names {len(tasks)} tasks but '/hypothetical' has "
                         f"{hypothetical[1]}")
    if len(set(tasks)) != len(tasks):
        raise StoreError(f"{path}: task names are not unique: {tasks}")
    _check_optional_shapes(path, shapes)
    return Contributions(path, regions, tasks, int(onehot[2]), attrs, shapes)


def contribution_tasks(path: str | os.PathLike) -> list[str]:
    """Task names of a ``contrib.h5``, in axis order (checks the file with :func:`read_contributions`)."""
    return read_contributions(path).tasks


def contribution_block(onehot: np.ndarray, hypothetical: np.ndarray, delta: np.ndarray,
                       prediction: np.ndarray, hit_hypothetical: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The arrays of ``contrib.h5`` for some rows, ``/contrib`` = ``onehot[:, None] * hypothetical``.

    Parameters
    ----------
    onehot
        ``(b, 4, L)`` one-hot.
    hypothetical
        ``(b, T, 4, L)`` hypothetical contributions.
    delta, prediction
        ``(b, T)`` summation-to-delta errors and the model's outputs.
    hit_hypothetical
        ``(b, T, 4, L)`` hypothetical contributions for hits, under another max rule; ``/hit_contrib`` =
        ``onehot[:, None] * hit_hypothetical``. None for a file without them.

    Returns
    -------
    dict
        ``onehot``, ``hypothetical``, ``contrib``, ``delta``, ``prediction`` (and ``hit_contrib``), for
        :meth:`genomatt.store.StoreWriter.write` of a writer from :func:`writing_contributions`.
    """
    block = {"onehot": onehot, "hypothetical": hypothetical, "contrib": onehot[:, None] * hypothetical,
             "delta": delta, "prediction": prediction}
    if hit_hypothetical is not None:
        block["hit_contrib"] = onehot[:, None] * hit_hypothetical
    return block


def writing_contributions(
    path: str | os.PathLike,
    regions: pd.DataFrame,
    tasks: Sequence[str],
    length: int,
    provenance: Mapping,
    hit_contrib: bool = False,
) -> contextlib.AbstractContextManager[StoreWriter]:
    """Write a ``contrib.h5`` block by block, atomically (:func:`genomatt.store.writing_store`).

    Each block is written with ``writer.write(contribution_block(...))`` in row order; every array is
    float32. The file appears under ``path`` only when the block completes with every row written.

    Parameters
    ----------
    path
        Output file.
    regions
        The N regions explained (``chrom, start, end, name``, ...).
    tasks
        The T task names, in axis order.
    length
        Region length L in bp.
    provenance
        How the file was made; stored as JSON when the file completes, so the writer's
        ``provenance`` may still be updated (e.g. with ``max_delta``).
    hit_contrib
        Whether the file holds ``/hit_contrib`` (each block then gives ``hit_hypothetical``).

    Returns
    -------
    context manager of StoreWriter
    """
    n_tasks = len(tasks)
    layout = {"onehot": ((4, length), np.float32), "hypothetical": ((n_tasks, 4, length), np.float32),
              "contrib": ((n_tasks, 4, length), np.float32), "delta": ((n_tasks,), np.float32),
              "prediction": ((n_tasks,), np.float32)}
    if hit_contrib:
        layout["hit_contrib"] = ((n_tasks, 4, length), np.float32)
    return writing_store(path, regions, layout, kind=KIND, provenance=provenance, attrs={"tasks": list(tasks)})


def write_contributions(
    path: str | os.PathLike,
    regions: pd.DataFrame,
    tasks: Sequence[str],
    onehot: np.ndarray,
    hypothetical: np.ndarray,
    delta: np.ndarray,
    prediction: np.ndarray,
    provenance: Mapping,
) -> Path:
    """Write a whole ``contrib.h5`` atomically; ``/contrib`` is ``onehot[:, None] * hypothetical``.

    Parameters
    ----------
    path
        Output file.
    regions
        The N regions explained (``chrom, start, end, name``, ...).
    tasks
        The T task names, in axis order.
    onehot
        ``(N, 4, L)`` one-hot.
    hypothetical
        ``(N, T, 4, L)`` hypothetical contributions.
    delta, prediction
        ``(N, T)`` summation-to-delta errors and the model's outputs.
    provenance
        How the file was made; stored as JSON.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    with writing_contributions(path, regions, tasks, onehot.shape[-1], provenance) as writer:
        writer.write(contribution_block(onehot, hypothetical, delta, prediction))
    return Path(path)
