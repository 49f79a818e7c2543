"""FASTA access through pyfaidx or pysam, with an index never older than the FASTA.

Kept apart from :mod:`genomatt.genome` (BED parsing, windows, one-hot encoding) so that reading
chromosome sizes or naming the backends loads neither numpy nor pandas.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from genomatt.errors import FastaError, GenomattError

log = logging.getLogger(__name__)

FASTA_BACKENDS = ("pyfaidx", "pysam")


def _index_paths(path: Path) -> list[Path]:
    """The index files of a FASTA: ``.fai``, and ``.gzi`` for a bgzip-compressed one."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    return [Path(f"{path}.fai")] + ([Path(f"{path}.gzi")] if compressed else [])


def _build_index(path: Path, backend: str, indexes: list[Path]) -> None:
    """Write the index files of ``path`` atomically (concurrent readers see the old or the new index)."""
    from genomatt.atomic import atomic_path

    with contextlib.ExitStack() as stack:
        temporary = [stack.enter_context(atomic_path(index, rollback=False)) for index in indexes]
        if backend == "pyfaidx":
            import pyfaidx

            pyfaidx.Faidx(str(path), indexname=str(temporary[0]), rebuild=True,
                          gzi_indexname=str(temporary[1]) if len(temporary) > 1 else None).close()
        else:
            import pysam

            options = ["--fai-idx", str(temporary[0])]
            if len(temporary) > 1:
                options += ["--gzi-idx", str(temporary[1])]
            pysam.faidx(str(path), *options)


def ensure_fasta_index(path: str | os.PathLike, backend: str = "pyfaidx") -> list[Path]:
    """Build the index of a FASTA when it is missing or older than the FASTA; return its files.

    An index older than its FASTA (the FASTA was edited or re-wrapped after indexing) would read the
    wrong bases, so it is rebuilt, atomically.

    Raises
    ------
    FastaError
        If the index cannot be built (an unreadable FASTA, or a folder that cannot be written).
    """
    path = Path(path)
    indexes = _index_paths(path)
    fasta_time = path.stat().st_mtime_ns
    stale = [index for index in indexes if not index.is_file() or index.stat().st_mtime_ns < fasta_time]
    if not stale:
        return indexes
    present = [index for index in stale if index.is_file()]
    if present:
        log.warning("%s is older than %s; rebuilding the index", present[0], path)
    try:
        _build_index(path, backend, indexes)
    except GenomattError as error:
        raise FastaError(f"{path}: cannot write its index ({error})") from None
    except Exception as error:  # pyfaidx and pysam raise many types for unreadable or unindexable files
        reason = " ".join(str(error).split())
        raise FastaError(f"{path}: cannot open FASTA with {backend} ({type(error).__name__}: {reason})") from None
    return indexes


class FastaReader:
    """Uniform access to a FASTA file through pyfaidx or pysam, with an index never older than the FASTA."""

    def __init__(self, path: Path, backend: str):
        if backend not in FASTA_BACKENDS:
            raise FastaError(f"unknown FASTA backend {backend!r}; expected one of {FASTA_BACKENDS}")
        if not path.is_file():
            raise FastaError(f"{path}: FASTA file not found")
        self.path = path
        ensure_fasta_index(path, backend)
        try:
            if backend == "pyfaidx":
                import pyfaidx

                self._handle = pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False, rebuild=False)
                self.sizes = {name: len(record) for name, record in self._handle.items()}
                self._fetch = lambda chrom, start, end: self._handle[chrom][start:end]
            else:
                import pysam

                self._handle = pysam.FastaFile(str(path))
                self.sizes = dict(zip(self._handle.references, self._handle.lengths))
                self._fetch = lambda chrom, start, end: self._handle.fetch(chrom, start, end)
        except Exception as error:  # both libraries raise many types for unreadable or unindexable files
            raise FastaError(f"{path}: cannot open FASTA with {backend} ({type(error).__name__}: {error})") from None

    def fetch(self, chrom: str, start: int, end: int) -> str:
        return self._fetch(chrom, start, end)

    def close(self) -> None:
        self._handle.close()


def read_chrom_sizes(fasta: str | os.PathLike, backend: str = "pyfaidx") -> dict[str, int]:
    """Chromosome names and lengths of a FASTA file, in file order (builds the ``.fai`` if needed)."""
    reader = FastaReader(Path(fasta), backend)
    try:
        return dict(reader.sizes)
    finally:
        reader.close()
