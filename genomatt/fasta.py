"""FASTA access through pyfaidx or pysam, with an index that matches the FASTA.

Kept apart from :mod:`genomatt.genome` (BED parsing, windows, one-hot encoding) so that reading
chromosome sizes or naming the backends loads neither numpy nor pandas.

The index (``.fai``, and ``.gzi`` for a bgzip-compressed FASTA) lives beside the FASTA when that folder
can be written. When it cannot (a shared genome in a read-only folder), the index is built once in the
user's cache folder instead, keyed by the FASTA's absolute path, size and modification time.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import gzip
import hashlib
import io
import logging
import math
import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from genomatt.errors import FastaError, OutputError, missing_file

log = logging.getLogger(__name__)

FASTA_BACKENDS = ("pyfaidx", "pysam")

# The first bytes of a BGZF block: a gzip member whose extra field is the "BC" subfield.
_GZIP_MAGIC = b"\x1f\x8b"
_BGZF_FLAGS = b"\x1f\x8b\x08\x04"
_BGZF_SUBFIELD = b"BC"
# File-system refusals of a write: the index is then built in the cache folder instead.
_WRITE_REFUSALS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}
# Most bytes read around one record boundary when checking an index against its FASTA (header lines).
_MAX_HEADER_BYTES = 1 << 16
_SCAN_BYTES = 1 << 24
_HEADER_NAME = re.compile(rb"^>(\S*)", re.MULTILINE)


@dataclass(frozen=True)
class _IndexRecord:
    """One line of a ``.fai``: a record's name, length (bp), sequence offset and line layout."""

    name: str
    length: int
    offset: int
    line_bases: int
    line_bytes: int

    @property
    def end(self) -> int:
        """Byte just past the record's last line and its newline."""
        if self.length == 0:
            return self.offset
        lines = math.ceil(self.length / self.line_bases)
        return self.offset + self.length + lines * (self.line_bytes - self.line_bases)


_TWO_BIT_MAGIC = (b"\x43\x27\x41\x1a", b"\x1a\x41\x27\x43")
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"


def _is_bgzip(path: Path) -> bool:
    """Whether ``path`` is bgzip-compressed; a FASTA compressed with plain gzip is refused, and so are a 2bit file
    and a FASTA opening with a byte-order mark.

    Raises
    ------
    FastaError
        If the FASTA cannot be read, or is gzip- but not bgzip-compressed (it has no index for random access),
        or is not a FASTA.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise FastaError(f"{path}: cannot read FASTA ({error.strerror or error})") from None
    if head[:4] in _TWO_BIT_MAGIC:
        raise FastaError(f"{path}: a 2bit genome, not a FASTA; convert it with `twoBitToFa {path.name} "
                         "genome.fa` (UCSC's tools) and give the FASTA")
    if head.startswith(_BYTE_ORDER_MARK):  # invisible in an editor, it would make the first header unreadable
        raise FastaError(f"{path}: starts with a byte-order mark (as some Windows editors save text), before its first "
                         f"header line; remove it (`sed -i '1s/^\\xEF\\xBB\\xBF//' {path.name}`)")
    if not head.startswith(_GZIP_MAGIC):
        return False
    if head.startswith(_BGZF_FLAGS) and head[12:14] == _BGZF_SUBFIELD:
        return True
    plain = path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name
    raise FastaError(
        f"{path}: compressed with gzip, not bgzip, so it cannot be read at random positions; decompress it "
        f"(`gunzip {path.name}`) and use it plain, or compress it again with `bgzip {plain}`"
    )


def _index_paths(path: Path, folder: Path, compressed: bool) -> list[Path]:
    """The index files of the FASTA ``path`` in ``folder``: ``.fai``, and ``.gzi`` for a bgzip-compressed one."""
    return [folder / f"{path.name}.fai"] + ([folder / f"{path.name}.gzi"] if compressed else [])


def _cache_folder(path: Path) -> Path:
    """The folder in the user's cache for the index of ``path``, keyed by its absolute path, size and time.

    ``$XDG_CACHE_HOME/genomatt/fasta-index/<key>`` (``~/.cache`` when unset): a FASTA replaced, edited or
    touched gets a new key, so an index found there always belongs to the FASTA as it is now.
    """
    stat = path.stat()
    identity = f"{path.resolve()}\n{stat.st_size}\n{stat.st_mtime_ns}".encode()
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "genomatt" / "fasta-index" / hashlib.sha256(identity).hexdigest()[:24]


def _read_fai(index: Path) -> list[_IndexRecord]:
    """The records of the ``.fai`` file ``index``.

    Raises
    ------
    ValueError
        Saying why it is not a usable index of a FASTA (a malformed line, a name listed twice, no record).
    """
    records, names = [], set()
    with open(index, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").split("\t")
            try:
                record = _IndexRecord(fields[0], *(int(field) for field in fields[1:]))
            except (TypeError, ValueError):
                record = None
            if (record is None or min(record.length, record.offset, record.line_bases) < 0
                    or record.line_bytes < record.line_bases or (record.length and not record.line_bases)):
                raise ValueError(f"line {number} is not a FASTA index line (name, length, offset, line bases, "
                                 "line bytes)")
            if record.name in names:
                raise ValueError(f"it lists record {record.name!r} twice")
            names.add(record.name)
            records.append(record)
    if not records:
        raise ValueError("it lists no record")
    return records


def _holds_sequence(lines: list[bytes]) -> bool:
    """Whether any of ``lines`` is a sequence line: neither blank nor a header (of a record without bases,
    which htslib leaves out of its index)."""
    return any(line.strip() and not line.startswith(b">") for line in lines)


def _header_problem(handle: BinaryIO, record: _IndexRecord, previous: _IndexRecord | None) -> str | None:
    """Why the bytes before ``record``'s sequence are not its header line; ``None`` if they are.

    Before the first record anything may come (comment lines); between records no sequence line.
    """
    if previous is not None and record.offset <= previous.end:
        return f"record {record.name!r} starts at byte {record.offset}, inside record {previous.name!r}"
    start = previous.end if previous is not None else max(0, record.offset - _MAX_HEADER_BYTES)
    if record.offset - start > _MAX_HEADER_BYTES:
        return f"{record.offset - start} bytes lie between records {previous.name!r} and {record.name!r}"
    handle.seek(start)
    lines = handle.read(record.offset - start).split(b"\n")
    header = lines[-2].rstrip(b"\r") if len(lines) > 1 and lines[-1] == b"" else b""
    if header[:1] != b">" or header[1:].split()[:1] != [record.name.encode()]:
        return f"the line before byte {record.offset} is not the header of record {record.name!r}"
    if previous is not None and _holds_sequence(lines[:-2]):
        return f"sequence lines not in the index lie between records {previous.name!r} and {record.name!r}"
    return None


# Spaces or tabs in sequence lines (at their ends, or between blocks of bases as in GenBank): pyfaidx indexes them as
# bases, so that every window after them would be read from the wrong place.
_BLANKS_IN_SEQUENCE = ("which an index reads as bases; FASTA sequence lines hold bases only: remove them (e.g. "
                       "sed -i '/^>/!s/[[:blank:]]//g' genome.fa) and run again")


def _first_line_problem(handle: BinaryIO, record: _IndexRecord, size: int) -> str | None:
    """Why ``record``'s first sequence line does not hold ``line_bases`` bases and a newline; ``None`` if it does."""
    if record.length == 0:
        return None
    bases = min(record.length, record.line_bases)
    handle.seek(record.offset)
    line = handle.read(record.line_bytes - record.line_bases + bases)
    newline = line[bases:]
    if any(blank in line[:bases] or blank in newline for blank in (b" ", b"\t")):
        return (f"the first sequence line of record {record.name!r} (byte {record.offset}) holds a space or tab, "
                f"{_BLANKS_IN_SEQUENCE}")
    ends_line = newline in (b"\n", b"\r\n") or (newline == b"" and record.offset + bases == size)
    if len(line) < bases or b"\n" in line[:bases] or line[:1] == b">" or not ends_line:
        return (f"the first line of record {record.name!r} (byte {record.offset}) does not hold "
                f"{bases} bases and a newline")
    return None


def _trailer_problem(handle: BinaryIO, last: _IndexRecord, size: int) -> str | None:
    """Why the file does not end (blank and header lines aside) where its last indexed record ends; ``None`` if
    it does."""
    end = last.end
    if end > size:
        # The last line of a file may lack its newline.
        missing_newline = last.length and end - size <= last.line_bytes - last.line_bases
        return None if missing_newline else (
            f"record {last.name!r} would end at byte {end}, past the end of the file ({size} bytes)")
    handle.seek(end)
    rest = handle.read(_MAX_HEADER_BYTES + 1)
    if len(rest) > _MAX_HEADER_BYTES or _holds_sequence(rest.split(b"\n")):
        return f"sequence lines not in the index follow its last record {last.name!r}"
    return None


def _layout_problem(handle: BinaryIO, size: int, records: list[_IndexRecord]) -> str | None:
    """Why the ``.fai`` records do not describe the FASTA read through ``handle``; ``None`` when they do.

    Reads a few bytes at each record's boundaries, never the sequences: each record's sequence must
    follow its header line, its first line must hold ``line_bases`` bases, and it must end where the
    next header (or the file, of ``size`` bytes) begins. A FASTA re-wrapped, edited or replaced after
    indexing fails.
    """
    previous = None
    for record in records:
        problem = _header_problem(handle, record, previous) or _first_line_problem(handle, record, size)
        if problem:
            return problem
        previous = record
    return _trailer_problem(handle, previous, size)


class _BgzfText(io.RawIOBase):
    """The decompressed bytes of a bgzip file, read at any offset through its ``.gzi`` block index.

    Each BGZF block holds at most 64 KiB of data; the ``.gzi`` lists where each block after the first
    starts, compressed and decompressed. Only the blocks read are decompressed (the last one is kept).

    Raises
    ------
    ValueError
        When the ``.gzi`` is malformed or does not describe the file's blocks (an index of another file).
    """

    def __init__(self, path: Path, gzi: Path):
        super().__init__()
        data = gzi.read_bytes()
        count = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
        if count < 0 or len(data) != 8 + 16 * count:
            raise ValueError(f"{gzi.name} is not a bgzip block index ({len(data)} bytes)")
        offsets = struct.unpack(f"<{2 * count}Q", data[8:])
        self._compressed, self._decompressed = [0, *offsets[0::2]], [0, *offsets[1::2]]
        if any(a >= b for a, b in zip(self._compressed, self._compressed[1:])) or any(
                a >= b for a, b in zip(self._decompressed, self._decompressed[1:])):
            raise ValueError(f"{gzi.name} lists its blocks out of order")
        self._file = open(path, "rb")
        self._position = 0
        self._block: tuple[int, bytes] = (-1, b"")

    def close(self) -> None:
        if hasattr(self, "_file"):
            self._file.close()
        super().close()

    def _block_data(self, index: int) -> bytes:
        """The decompressed data of the ``index``-th block of the ``.gzi``, checked against its next entry."""
        if self._block[0] != index:
            at = self._compressed[index]
            self._file.seek(at)
            header = self._file.read(18)
            if len(header) < 18 or header[:4] != _BGZF_FLAGS or header[12:14] != _BGZF_SUBFIELD:
                raise ValueError(f"its .gzi points at byte {at}, where no bgzip block starts")
            body = self._file.read(int.from_bytes(header[16:18], "little") + 1 - 18)
            try:
                data = zlib.decompress(body[:-8], wbits=-15)
            except zlib.error as error:
                raise ValueError(f"the bgzip block at byte {at} cannot be decompressed ({error})") from None
            if index + 1 < len(self._decompressed) and (
                    self._decompressed[index] + len(data) != self._decompressed[index + 1]):
                raise ValueError(f"the bgzip block at byte {at} holds {len(data)} bytes, not the "
                                 f"{self._decompressed[index + 1] - self._decompressed[index]} its .gzi says")
            self._block = (index, data)
        return self._block[1]

    def size(self) -> int:
        """Decompressed bytes in the file: the last indexed block's offset and the blocks from there on."""
        self._file.seek(self._compressed[-1])
        total = self._decompressed[-1]
        while len(header := self._file.read(18)) == 18 and header[:4] == _BGZF_FLAGS:
            self._file.seek(int.from_bytes(header[16:18], "little") + 1 - 18 - 4, os.SEEK_CUR)
            total += int.from_bytes(self._file.read(4), "little")
        return total

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET:
            raise io.UnsupportedOperation("only absolute seeks")
        self._position = offset
        return offset

    def read(self, size: int = -1) -> bytes:
        chunks = []
        while size:
            index = bisect.bisect_right(self._decompressed, self._position) - 1
            within = self._position - self._decompressed[index]
            piece = self._block_data(index)[within:within + size if size > 0 else None]
            if not piece:
                break  # past the data of the last block: the end of the file
            chunks.append(piece)
            self._position += len(piece)
            size = max(0, size - len(piece)) if size > 0 else size
        return b"".join(chunks)


def _index_mismatch(path: Path, indexes: list[Path], compressed: bool) -> str | None:
    """Why the present index files ``indexes`` do not match the FASTA ``path``; ``None`` if they do.

    The ``.fai`` must be well formed with unique names and its records must match the FASTA's bytes
    (those of a bgzip-compressed FASTA read at the offsets of its ``.gzi``, which must point at its blocks).
    """
    try:
        records = _read_fai(indexes[0])
        if compressed:
            with _BgzfText(path, indexes[1]) as handle:
                return _layout_problem(handle, handle.size(), records)
        with open(path, "rb") as handle:
            return _layout_problem(handle, path.stat().st_size, records)
    except ValueError as error:
        return str(error)
    except OSError as error:
        return f"cannot read it: {error.strerror or error}"


def _older_index(path: Path, indexes: list[Path]) -> Path | None:
    """The first of ``indexes`` older than the FASTA ``path``, or ``None``."""
    fasta_time = path.stat().st_mtime_ns
    return next((index for index in indexes if index.stat().st_mtime_ns < fasta_time), None)


def _usable_cached_index(path: Path, cached: list[Path], compressed: bool) -> bool:
    """Whether an index built earlier in the cache folder is there and matches the FASTA.

    Its age is not checked: the cache folder's key holds the FASTA's size and time.
    """
    return all(index.is_file() for index in cached) and _index_mismatch(path, cached, compressed) is None


def _record_names(path: Path, compressed: bool) -> Iterator[str]:
    """The record names of the FASTA ``path``, in file order, reading the whole file once in large chunks."""
    with (gzip.open(path, "rb") if compressed else open(path, "rb")) as handle:
        pending, at_line_start = b"", True
        while chunk := handle.read(_SCAN_BYTES):
            chunk = pending + chunk
            if not at_line_start:
                newline = chunk.find(b"\n")
                if newline < 0:
                    continue
                chunk = chunk[newline + 1:]
            cut = chunk.rfind(b"\n") + 1
            for match in _HEADER_NAME.finditer(chunk, 0, cut):
                yield match.group(1).decode("utf-8", errors="replace")
            rest = chunk[cut:]
            # An unfinished header line is kept for the next chunk; the rest of a sequence line is skipped.
            pending = rest if rest.startswith(b">") else b""
            at_line_start = rest == b"" or bool(pending)
        for match in _HEADER_NAME.finditer(pending):
            yield match.group(1).decode("utf-8", errors="replace")


_BLANK = re.compile(rb"[ \t]")


def _first_blank_in_sequence(path: Path, compressed: bool) -> int | None:
    """The line number (1-based) of the first sequence line of the FASTA ``path`` holding a space or tab, or
    ``None``; header lines (``>name description``) may hold them, and so may text before the first header (which
    the indexers refuse themselves). Reads the whole file once in large chunks."""
    lines, at_line_start, in_header, started = 0, True, False, False
    with (gzip.open(path, "rb") if compressed else open(path, "rb")) as handle:
        while chunk := handle.read(_SCAN_BYTES):
            first_header = 0 if at_line_start and chunk.startswith(b">") else chunk.find(b"\n>") + 1 or len(chunk)
            position = 0
            while match := _BLANK.search(chunk, position):
                line_start = chunk.rfind(b"\n", 0, match.start()) + 1
                header = in_header if line_start == 0 and not at_line_start else chunk[line_start:line_start + 1] == b">"
                if not header and (started or first_header <= match.start()):
                    return lines + chunk.count(b"\n", 0, match.start()) + 1
                position = chunk.find(b"\n", match.start()) + 1
                if position == 0:
                    break
            last = chunk.rfind(b"\n")
            if last >= 0 or at_line_start:  # the chunk's last line starts in it: a header if it opens with ">"
                in_header = chunk[last + 1:last + 2] == b">"
            started = started or first_header < len(chunk) or in_header
            at_line_start = last == len(chunk) - 1
            lines += chunk.count(b"\n")
    return None


def _refuse_blanks_in_sequence(path: Path, compressed: bool) -> None:
    """Raise if a sequence line of the FASTA holds a space or tab, which pyfaidx's index would count as bases."""
    try:
        line = _first_blank_in_sequence(path, compressed)
    except (OSError, EOFError) as error:
        raise FastaError(f"{path}: cannot read FASTA ({error})") from None
    if line is not None:
        raise FastaError(f"{path}:{line}: a sequence line holds a space or tab, {_BLANKS_IN_SEQUENCE}")


def _refuse_carriage_return_lines(path: Path, compressed: bool) -> None:
    """Raise if the FASTA's lines end in a carriage return alone (classic Mac OS): the indexers read each record as
    one header line and no bases."""
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as handle:
            start = handle.read(_SCAN_BYTES)
    except (OSError, EOFError) as error:
        raise FastaError(f"{path}: cannot read FASTA ({error})") from None
    if b"\r" in start and b"\n" not in start:
        raise FastaError(f"{path}: its lines end in a carriage return alone (classic Mac OS line endings), which FASTA "
                         "indexers do not read as line ends: convert them (e.g. tr '\\r' '\\n' < in.fa > out.fa) and "
                         "run again")


def _refuse_duplicate_records(path: Path, compressed: bool) -> None:
    """Raise if two records of the FASTA share a name: pyfaidx would refuse it and pysam read the first only."""
    seen = set()
    try:
        for name in _record_names(path, compressed):
            if name in seen:
                raise FastaError(f"{path}: record name {name!r} appears more than once; each record of a FASTA "
                                 "needs its own name (rename or remove the duplicate)")
            seen.add(name)
    except (OSError, EOFError) as error:  # an unreadable file, or a truncated or damaged bgzip one
        raise FastaError(f"{path}: cannot read FASTA ({error})") from None


def _open_failure(path: Path, backend: str, error: Exception) -> FastaError:
    reason = " ".join(str(error).split())
    return FastaError(f"{path}: cannot open FASTA with {backend} ({type(error).__name__}: {reason})")


def _run_indexer(path: Path, backend: str, indexes: list[Path]) -> None:
    """Write the index of ``path`` to ``indexes`` (``.fai``, then ``.gzi`` for bgzip) with ``backend``."""
    if backend == "pyfaidx":
        import pyfaidx

        pyfaidx.Faidx(str(path), indexname=str(indexes[0]), rebuild=True,
                      gzi_indexname=str(indexes[1]) if len(indexes) > 1 else None).close()
    else:
        import pysam

        options = ["--fai-idx", str(indexes[0])]
        if len(indexes) > 1:
            options += ["--gzi-idx", str(indexes[1])]
        pysam.faidx(str(path), *options)


def _build_index(path: Path, backend: str, indexes: list[Path]) -> None:
    """Write the index files of ``path`` atomically (concurrent readers see the old or the new index).

    Raises
    ------
    OutputError
        If the folder of ``indexes`` refuses the write (read-only, no permission, full).
    FastaError
        If ``backend`` cannot index the FASTA.
    """
    from genomatt.atomic import atomic_path

    with contextlib.ExitStack() as stack:
        temporary = [stack.enter_context(atomic_path(index, rollback=False)) for index in indexes]
        try:
            _run_indexer(path, backend, temporary)
        except OSError as error:
            if error.errno in _WRITE_REFUSALS:
                raise  # atomic_path reports it as the OutputError of the index file
            raise _open_failure(path, backend, error) from None
        except Exception as error:  # pyfaidx and pysam raise many types for unreadable or unindexable files
            raise _open_failure(path, backend, error) from None


def _write_refusal(error: OutputError) -> str:
    """The file system's reason for a refused index write, e.g. ``Read-only file system``."""
    cause = error.__context__
    return cause.strerror if isinstance(cause, OSError) and cause.strerror else str(error)


def _index_elsewhere(path: Path, backend: str, beside: list[Path], cached: list[Path], refusal: str,
                     use_beside: bool) -> list[Path]:
    """The index of ``path`` when its folder refused to take a new one (for the reason ``refusal``).

    With ``use_beside`` (an index older than its FASTA, whose records match it), that index;
    otherwise one built in the cache folder ``cached``.
    """
    if use_beside:
        log.warning("%s: cannot rebuild its index beside it (%s); using %s, older than the FASTA but matching "
                    "its records", path, refusal, beside[0])
        return beside
    try:
        _build_index(path, backend, cached)
    except OutputError as error:
        raise FastaError(f"{path}: cannot write its index beside it ({refusal}) nor in {cached[0].parent} "
                         f"({_write_refusal(error)}); set XDG_CACHE_HOME to a writable folder") from None
    log.warning("%s: cannot write its index beside it (%s); built it in %s", path, refusal, cached[0].parent)
    return cached


def ensure_fasta_index(path: str | os.PathLike, backend: str = "pyfaidx") -> list[Path]:
    """Find or build an index of a FASTA that matches it; return its files (``.fai``, and ``.gzi`` for bgzip).

    The index beside the FASTA is used when it is there, not older than the FASTA and its records match
    the FASTA's bytes (a few bytes read per record; for a bgzip FASTA, through its ``.gzi``). Otherwise it is rebuilt
    there, atomically. When that folder cannot be written (a shared genome in a read-only folder), an
    index older than the FASTA whose records match is used with a warning; any other is built once in
    the user's cache folder (``$XDG_CACHE_HOME/genomatt/fasta-index``, by default ``~/.cache``), with a
    warning naming it, and found there again by later calls.

    Parameters
    ----------
    path
        Plain or bgzip-compressed FASTA.
    backend
        ``"pyfaidx"`` or ``"pysam"``: the library that builds a missing index.

    Returns
    -------
    list of pathlib.Path
        The ``.fai`` (and ``.gzi``) to read the FASTA with, beside it or in the cache folder.

    Raises
    ------
    FastaError
        If the FASTA cannot be read or indexed (plain gzip, two records of the same name, malformed
        lines), or its index can be written neither beside it nor in the cache folder.
    """
    path = Path(path)
    compressed = _is_bgzip(path)
    beside = _index_paths(path, path.parent, compressed)
    present = all(index.is_file() for index in beside)
    mismatch = _index_mismatch(path, beside, compressed) if present else None
    older = _older_index(path, beside) if present and mismatch is None else None
    if present and mismatch is None and older is None:
        return beside
    cached = _index_paths(path, _cache_folder(path), compressed)
    if _usable_cached_index(path, cached, compressed):
        log.info("%s: using its index in %s", path, cached[0].parent)
        return cached
    if mismatch is not None:
        log.warning("%s does not match %s (%s); rebuilding the index", beside[0], path, mismatch)
    elif older is not None:
        log.info("%s is older than %s; rebuilding the index", older, path)
    _refuse_carriage_return_lines(path, compressed)
    _refuse_duplicate_records(path, compressed)
    _refuse_blanks_in_sequence(path, compressed)
    try:
        _build_index(path, backend, beside)
    except OutputError as error:
        return _index_elsewhere(path, backend, beside, cached, _write_refusal(error),
                                use_beside=older is not None)
    return beside


class FastaReader:
    """Uniform access to a FASTA file through pyfaidx or pysam, with an index that matches the FASTA."""

    def __init__(self, path: Path, backend: str):
        if backend not in FASTA_BACKENDS:
            raise FastaError(f"unknown FASTA backend {backend!r}; expected one of {FASTA_BACKENDS}")
        if not path.is_file():
            raise FastaError(missing_file(path, "FASTA file"))
        self.path = path
        fai, *gzi = (str(index) for index in ensure_fasta_index(path, backend))
        try:
            if backend == "pyfaidx":
                import pyfaidx

                # ensure_fasta_index has checked an index older than the FASTA; pyfaidx would warn about its age.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    self._handle = pyfaidx.Fasta(str(path), indexname=fai, gzi_indexname=gzi[0] if gzi else None,
                                                 as_raw=True, sequence_always_upper=False, rebuild=False,
                                                 build_index=False)
                self.sizes = {name: len(record) for name, record in self._handle.items()}
                self._fetch = lambda chrom, start, end: self._handle[chrom][start:end]
            else:
                import pysam

                self._handle = pysam.FastaFile(str(path), filepath_index=fai,
                                               filepath_index_compressed=gzi[0] if gzi else None)
                self.sizes = dict(zip(self._handle.references, self._handle.lengths))
                self._fetch = lambda chrom, start, end: self._handle.fetch(chrom, start, end)
        except Exception as error:  # both libraries raise many types for unreadable or unindexable files
            raise _open_failure(path, backend, error) from None

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
