"""The one exception family of genomatt.

Every error a user can cause by their input is a :class:`GenomattError`; the CLI prints its message
alone and exits with status 2. Messages say what was wrong, where (file:line, chromosome, layer) and
what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path


class GenomattError(Exception):
    """Base class of every error genomatt raises on bad input or an impossible request."""


class BedFormatError(GenomattError):
    """A BED/narrowPeak file (or regions table) is malformed."""


class FastaError(GenomattError):
    """A FASTA file is missing, unreadable or lacks the requested chromosomes."""


class SequenceError(GenomattError):
    """A sequence or one-hot array has the wrong shape, values or alphabet."""


class MotifError(GenomattError):
    """A motif, motif file or motif database request is invalid."""


class ModelError(GenomattError):
    """A model cannot be loaded, does not fit the data, or contains an unsupported operation."""


class StoreError(GenomattError):
    """An HDF5 artefact is missing, unreadable or does not follow genomatt's schema."""


class ConfigError(GenomattError):
    """A configuration value is missing or invalid."""


class OutputError(GenomattError):
    """An output cannot be written (disk full, I/O error, no permission); nothing is left under its name."""


class NonFiniteError(ModelError):
    """A model's outputs, contributions or summation-to-delta errors hold NaN or infinite values.

    Attributes
    ----------
    rows
        The rows (sequences) affected, in increasing order.
    """

    def __init__(self, message: str, rows: list[int]):
        super().__init__(message)
        self.rows = rows


def missing_file(path: str | os.PathLike, kind: str) -> str:
    """The message for ``path`` given as a ``kind`` (e.g. "BED file") that is not a file: not found, or a folder."""
    if Path(path).is_dir():
        return f"{path}: a folder, not a {kind}; give the file itself"
    return f"{path}: {kind} not found"
