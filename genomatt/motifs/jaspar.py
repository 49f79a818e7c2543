"""Known motifs from the JASPAR database shipped offline by ``pyjaspar``, or from a user's MEME file."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genomatt.errors import MotifError
from genomatt.motifs.formats import Motif, normalise_columns, read_motif_file

DEFAULT_RELEASE = "JASPAR2024"
# Names with these suffixes are motif files (MEME or JASPAR format), never JASPAR IDs or factor names.
MOTIF_FILE_SUFFIXES = (".meme", ".txt", ".jaspar", ".pfm")
_JASPAR_ID = re.compile(r"^MA\d{4}(\.\d+)?$")


def _database(release: str):
    from pyjaspar import jaspardb

    available = jaspardb().get_releases()
    if release not in available:
        raise MotifError(f"unknown JASPAR release {release!r}; available offline: {available}")
    return jaspardb(release=release)


def _to_motif(record) -> Motif:
    counts = np.array([record.counts[base] for base in "ACGT"], dtype=float)
    return Motif(
        id=record.matrix_id,
        name=record.name,
        probabilities=normalise_columns(counts, f"JASPAR {record.matrix_id}"),
        sites=int(round(counts[:, 0].sum())),
        extra={"collection": record.collection, "tax_group": ",".join(record.tax_group or [])},
    )


def fetch_jaspar(spec: str, release: str = DEFAULT_RELEASE) -> Motif:
    """One JASPAR motif by matrix ID (``MA0035.5``; ``MA0035`` for the latest version) or by TF name.

    A name matching several matrices picks the one with the lowest base ID (the historical matrix);
    give an ID to choose another.
    """
    database = _database(release)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if _JASPAR_ID.match(spec):
            record = database.fetch_motif_by_id(spec)
        else:
            matches = database.fetch_motifs_by_name(spec)
            record = min(matches, key=lambda motif: motif.matrix_id) if matches else None
    if record is None:
        raise MotifError(f"no JASPAR motif {spec!r} in {release} (give a matrix ID such as MA0035.5 or a TF name)")
    return _to_motif(record)


def fetch_jaspar_collection(
    release: str = DEFAULT_RELEASE, collection: str = "CORE", tax_group: str | None = "vertebrates"
) -> list[Motif]:
    """Every motif of a JASPAR collection (latest version of each), optionally restricted to a taxon."""
    database = _database(release)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = database.fetch_motifs(collection=collection, tax_group=tax_group)
    if not records:
        raise MotifError(f"JASPAR {release} has no motifs for collection={collection!r} tax_group={tax_group!r}")
    return [_to_motif(record) for record in records]


def resolve_motifs(specs: Sequence[str], release: str = DEFAULT_RELEASE) -> list[Motif]:
    """Turn a list of JASPAR IDs, TF names and motif file paths (MEME or JASPAR format) into motifs (a file gives all
    of its motifs)."""
    motifs: list[Motif] = []
    for spec in specs:
        # A motif file's suffix or a folder in the name is a path: missing, it is said so (not looked up in JASPAR).
        if Path(spec).suffix.lower() in MOTIF_FILE_SUFFIXES or os.sep in str(spec) or Path(spec).is_file():
            motifs.extend(read_motif_file(spec))
        else:
            motifs.append(fetch_jaspar(spec, release))
    if not motifs:
        raise MotifError("no motifs given")
    return motifs
