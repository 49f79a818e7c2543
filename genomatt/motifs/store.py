"""Motif-stage files: ``motifs.h5`` and tfmodisco-lite results.

``motifs.h5`` and the tfmodisco-lite schema are documented in ``docs/formats.md``. Both are written to
a temporary file and renamed when complete. The contributions they come from are read with
:mod:`genomatt.contributions`.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from genomatt import __version__
from genomatt.atomic import atomic_hdf5
from genomatt.errors import StoreError, missing_file
from genomatt.motifs.discovery import MOTIF_SEQLET_COLUMNS, DiscoveredMotif, TaskDiscovery
from genomatt.motifs.seqlets import CALLED_SEQLET_COLUMNS
from genomatt.store import h5_key, h5_member, read_table

log = logging.getLogger(__name__)

_STRING = h5py.string_dtype(encoding="utf-8")
_INTEGER_COLUMNS = {"start", "end", "window_start", "window_end"}
_FLOAT_COLUMNS = {"score"}
TABLES = {"seqlets": MOTIF_SEQLET_COLUMNS, "called_seqlets": CALLED_SEQLET_COLUMNS}


def _write_table(group: h5py.Group, table: pd.DataFrame, columns: Sequence[str]) -> None:
    group.attrs["columns"] = json.dumps(list(columns))
    for column in columns:
        if column in _INTEGER_COLUMNS:
            group.create_dataset(column, data=table[column].to_numpy(np.int64))
        elif column in _FLOAT_COLUMNS:
            group.create_dataset(column, data=table[column].to_numpy(np.float64))
        else:
            group.create_dataset(column, data=table[column].astype(str).to_numpy(object), dtype=_STRING)


def write_motifs(
    path: str | os.PathLike,
    motifs: Sequence[DiscoveredMotif],
    seqlets: pd.DataFrame,
    called_seqlets: pd.DataFrame,
    provenance: dict,
) -> Path:
    """Write discovered motifs and their seqlets to ``motifs.h5`` (schema in ``docs/formats.md``).

    Parameters
    ----------
    path
        Output file.
    motifs
        The motifs, in the order to keep (``/motifs`` attribute ``names``).
    seqlets
        Motif seqlets (``MOTIF_SEQLET_COLUMNS``).
    called_seqlets
        Seqlets called against the null (``CALLED_SEQLET_COLUMNS``).
    provenance
        How the file was made; stored as JSON.
    """
    with atomic_hdf5(path) as handle:
        handle.attrs["genomatt_version"] = __version__
        handle.attrs["created_utc"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        handle.attrs["kind"] = "motifs"
        handle.attrs["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
        group = handle.create_group("motifs")
        group.attrs["names"] = json.dumps([motif.name for motif in motifs])
        for motif in motifs:
            entry = group.create_group(h5_key(motif.name))
            entry.create_dataset("cwm", data=motif.cwm.astype(np.float32))
            entry.create_dataset("hypothetical_cwm", data=motif.hypothetical_cwm.astype(np.float32))
            entry.create_dataset("pwm", data=motif.pwm.astype(np.float32))
            entry.attrs.update({"task": motif.task, "sign": motif.sign, "n_seqlets": motif.n_seqlets,
                                "trim_start": motif.trim_start, "trim_end": motif.trim_end,
                                "matches": json.dumps(motif.matches)})
        for name, table in (("seqlets", seqlets), ("called_seqlets", called_seqlets)):
            _write_table(handle.create_group(name), table, TABLES[name])
    return Path(path)


def read_motifs(path: str | os.PathLike) -> tuple[list[DiscoveredMotif], pd.DataFrame, pd.DataFrame]:
    """Read ``motifs.h5``: the motifs (in written order), the motif seqlets and the called seqlets."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(missing_file(path, "motifs file"))
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        with open(path, "rb") as text:
            meme = text.read(64).lstrip().startswith(b"MEME version")
        if meme:
            raise StoreError(f"{path}: a MEME file, where the motifs.h5 of genomatt motifs is expected (its motifs "
                             "carry their tasks and seqlets; genomatt hits --motifs also takes MEME files)") from None
        raise StoreError(f"{path}: not a readable HDF5 file ({error})") from None
    with handle:
        if handle.attrs.get("kind") != "motifs" or "motifs" not in handle:
            raise StoreError(f"{path}: not a motifs file (genomatt motifs)")
        group = handle["motifs"]
        motifs = []
        for name in json.loads(group.attrs["names"]):
            entry = h5_member(group, name)
            motifs.append(DiscoveredMotif(
                name=name, task=str(entry.attrs["task"]), sign=str(entry.attrs["sign"]),
                cwm=entry["cwm"][()], hypothetical_cwm=entry["hypothetical_cwm"][()], pwm=entry["pwm"][()],
                n_seqlets=int(entry.attrs["n_seqlets"]), trim_start=int(entry.attrs["trim_start"]),
                trim_end=int(entry.attrs["trim_end"]), matches=json.loads(entry.attrs["matches"]),
            ))
        return motifs, read_table(handle["seqlets"]), read_table(handle["called_seqlets"])


def _write_pattern(group: h5py.Group, pattern, region_order: np.ndarray, shift: int) -> None:
    """One tfmodisco-lite pattern (and its subpatterns) as ``modiscolite.io.save_hdf5`` lays it out, its seqlets'
    ``start``/``end`` moved by ``shift`` columns (from the discovery window to the centred window written)."""
    seqlets = pattern.seqlets
    group.create_dataset("sequence", data=pattern.sequence)
    group.create_dataset("contrib_scores", data=pattern.contrib_scores)
    group.create_dataset("hypothetical_contribs", data=pattern.hypothetical_contribs)
    seqlet_group = group.create_group("seqlets")
    seqlet_group.create_dataset("n_seqlets", data=np.array([len(seqlets)]))
    seqlet_group.create_dataset("start", data=np.array([seqlet.start for seqlet in seqlets], dtype=np.int64) + shift)
    seqlet_group.create_dataset("end", data=np.array([seqlet.end for seqlet in seqlets], dtype=np.int64) + shift)
    # Regions-table rows of contrib.h5, not tfmodisco-lite's shuffled order, so readers index the regions.
    seqlet_group.create_dataset("example_idx", data=region_order[[seqlet.example_idx for seqlet in seqlets]])
    seqlet_group.create_dataset("is_revcomp", data=np.array([bool(seqlet.is_revcomp) for seqlet in seqlets]))
    for track in ("sequence", "contrib_scores", "hypothetical_contribs"):
        seqlet_group.create_dataset(track, data=np.array([getattr(seqlet, track) for seqlet in seqlets]))
    if pattern.subclusters is not None:
        for subcluster, subpattern in pattern.subcluster_to_subpattern.items():
            _write_pattern(group.create_group(f"subpattern_{subcluster}"), subpattern, region_order, shift)


def centred_window(start: int, size: int, length: int) -> tuple[int, int]:
    """The smallest window centred as tfmodisco-lite and Fi-NeMo centre one (``length // 2 - W // 2``) that holds
    the window ``[start, start + size)`` of regions of ``length`` bp: its start and size W."""
    for width in range(size, length + 1):
        first = length // 2 - width // 2
        if first <= start and first + width >= start + size:
            return first, width
    return 0, length


def write_modisco_h5(path: str | os.PathLike, discovery: TaskDiscovery, provenance: dict, length: int) -> Path:
    """Write one task's discovery in tfmodisco-lite's HDF5 schema (read by ``modisco report``, Fi-NeMo).

    ``<sign>_patterns/pattern_<i>`` is motif ``<task>.<sign>.<i>``. Seqlet ``start``/``end`` are relative
    to a window centred in the regions of ``length`` bp as Fi-NeMo centres it (root attributes ``window_size``
    W and ``window_start``, its offset ``length // 2 - W // 2``; the smallest such window holding the
    discovery's, which a task's columns of no contribution may have made off-centre), and ``example_idx``
    indexes the regions of the contribution file.
    """
    start, size = centred_window(discovery.window_start, discovery.window_size, length)
    shift = discovery.window_start - start
    with atomic_hdf5(path) as handle:
        handle.attrs["window_size"] = size
        handle.attrs["window_start"] = start
        handle.attrs["task"] = discovery.task
        handle.attrs["genomatt_version"] = __version__
        handle.attrs["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
        for sign, patterns in discovery.patterns.items():
            if patterns:
                group = handle.create_group(f"{sign}_patterns")
                for index, pattern in enumerate(patterns):
                    _write_pattern(group.create_group(f"pattern_{index}"), pattern, discovery.region_order, shift)
    return Path(path)
