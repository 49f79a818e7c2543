"""Regions and sequences: BED/narrowPeak parsing, fixed-width windows read from a FASTA, one-hot encoding.

Coordinates are 0-based and half-open, as in BED. One-hot arrays are ``(N, 4, L)`` float32 in channel
order A, C, G, T; any base other than ACGT (N, IUPAC codes, gaps) is a column of zeros.
"""

from __future__ import annotations

import gzip
import logging
import numbers
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numba
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from genomatt import ALPHABET
from genomatt.errors import BedFormatError, FastaError, SequenceError, missing_file
from genomatt.fasta import FastaReader, read_chrom_sizes

log = logging.getLogger(__name__)

REGION_COLUMNS = ["chrom", "start", "end", "name"]
NARROWPEAK_COLUMNS = 10
HEADER_PREFIXES = ("#", "track", "browser")
STRANDS = {"+", "-", "."}


def _channel_table() -> np.ndarray:
    """Byte → channel table: ACGT (either case) map to 0..3, every other byte to 4 (a zero column)."""
    table = np.full(256, 4, dtype=np.uint8)
    for channel, base in enumerate(ALPHABET):
        table[ord(base)] = channel
        table[ord(base.lower())] = channel
    return table


_CHANNEL_TABLE = _channel_table()


@numba.njit(cache=True, nogil=True)
def _scatter_one_hot(codes: np.ndarray, table: np.ndarray, out: np.ndarray) -> int:
    """Set ``out[channel, i] = 1`` for each byte of ``codes`` (``out`` zeroed); return the non-ACGT count."""
    unknown = 0
    for position in range(codes.size):
        channel = table[codes[position]]
        if channel < 4:
            out[channel, position] = 1
        else:
            unknown += 1
    return unknown


def _open_text(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    # utf-8-sig: a byte-order mark, as some Windows editors write, is not part of the first chromosome name.
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


_INTEGER = re.compile(r"[+-]?[0-9]+")
# Longer than any chromosome (the longest known are a few Gb), and far from int64's limit, which the window
# arithmetic must not reach.
_MAX_COORDINATE = 2**40


def _parse_int(text: str, what: str, where: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):  # int() also takes "1_000" and other spellings no BED tool writes
        raise BedFormatError(f"{where}: {what} must be an integer, got {text!r}")
    value = int(text)
    if abs(value) > _MAX_COORDINATE:
        raise BedFormatError(f"{where}: {what} {text} is larger than any chromosome (at most {_MAX_COORDINATE:,})")
    return value


def _parse_bed_line(fields: list[str], where: str, is_narrowpeak: bool) -> dict:
    if len(fields) < 3:
        raise BedFormatError(
            f"{where}: expected at least 3 tab-separated columns (chrom, start, end), "
            f"got {len(fields)}: {chr(9).join(fields)!r}"
        )
    chrom = fields[0]
    start = _parse_int(fields[1], "start (column 2)", where)
    end = _parse_int(fields[2], "end (column 3)", where)
    if start < 0:
        raise BedFormatError(f"{where}: start must be >= 0, got {start}")
    if start >= end:
        raise BedFormatError(f"{where}: start must be < end, got start={start} end={end}")
    record = {"chrom": chrom, "start": start, "end": end}
    record["name"] = fields[3] if len(fields) > 3 and fields[3] not in ("", ".") else f"{chrom}:{start}-{end}"
    if len(fields) > 4:
        try:
            record["score"] = float(fields[4]) if fields[4] != "." else np.nan
        except ValueError:
            raise BedFormatError(f"{where}: score (column 5) must be a number or '.', got {fields[4]!r}") from None
    if len(fields) > 5:
        if fields[5] not in STRANDS:
            raise BedFormatError(f"{where}: strand (column 6) must be one of + - ., got {fields[5]!r}")
        record["strand"] = fields[5]
    if is_narrowpeak:
        summit = _parse_int(fields[9], "summit offset (narrowPeak column 10)", where)
        if summit != -1 and not 0 <= summit < end - start:
            raise BedFormatError(
                f"{where}: summit offset {summit} lies outside the interval of length {end - start} "
                "(expected 0 <= summit < end - start, or -1 for none)"
            )
        record["summit"] = summit
    return record


def _numbers(values: list[str]) -> bool:
    """Whether every value reads as a number (BED's thickStart, thickEnd, itemRgb "255,0,0" do not all)."""
    try:
        [float(value) for value in values]
    except ValueError:
        return False
    return True


def _narrowpeak_line(fields: list[str]) -> bool:
    """Whether a line has narrowPeak's 10 columns with numbers in columns 7-9."""
    return len(fields) == NARROWPEAK_COLUMNS and _numbers(fields[6:9])


def _is_narrowpeak(path: Path, fields: list[str]) -> bool:
    """Whether a file is narrowPeak: by its name, or by a first line of 10 columns whose 7-9 are numbers.

    A first line of 10 or more columns read as BED is logged as a warning: its column 10 is no summit.
    """
    if "narrowpeak" in path.name.lower():
        if len(fields) < NARROWPEAK_COLUMNS:
            log.warning("%s: named narrowPeak, but its first line has %d columns: read as BED (no summits; windows "
                        "centred on the regions' midpoints)", path, len(fields))
            return False
        log.info("%s: read as narrowPeak by its name (column 10 = summit offset from start)", path)
        return True
    numeric = _numbers(fields[6:9])
    if _narrowpeak_line(fields):
        log.info("%s: 10 columns, 7-9 numeric: read as narrowPeak (column 10 = summit offset from start)", path)
        return True
    if len(fields) >= NARROWPEAK_COLUMNS:
        log.warning("%s: %d columns%s: read as BED, columns 7 on ignored and windows centred on the regions' "
                    "midpoints; a narrowPeak's summits (column 10) are used when the file's name contains "
                    "'narrowPeak' (more than 10 columns allowed, e.g. IDR's output) or its first line has exactly "
                    "10 columns with numbers in columns 7-9", path, len(fields),
                    "" if numeric else ", not all of 7-9 numbers")
    return False


def read_bed(path: str | os.PathLike) -> pd.DataFrame:
    """Read a BED3/BED6/BED6+ or ENCODE narrowPeak file (optionally gzip-compressed).

    ``track``, ``browser`` and ``#`` lines and blank lines are skipped. A file named ``*.narrowPeak``
    (10 or more columns, the rest ignored, as in IDR's output), or whose first line has exactly 10 columns
    with numbers in columns 7-9 (signalValue, pValue, qValue; logged), is read as narrowPeak: column 10 is
    the summit offset from ``start``, with -1 meaning none. Another file of 10 or more columns, or one named
    narrowPeak whose first line has fewer, is read as BED with a warning; a file read as BED by a first line
    of fewer columns is refused at a later narrowPeak line, whose summit would be ignored.

    Parameters
    ----------
    path
        BED or narrowPeak file.

    Returns
    -------
    pandas.DataFrame
        One row per region with ``chrom, start, end, name`` and, where present, ``score``, ``strand``
        and ``summit``. Missing names become ``chrom:start-end``.

    Raises
    ------
    BedFormatError
        If the file is missing, empty, or a line is malformed (the message names file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise BedFormatError(missing_file(path, "BED file"))
    records = []
    is_narrowpeak = None
    try:
        with _open_text(path) as handle:
            for line_number, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith(HEADER_PREFIXES):
                    continue
                fields = line.split("\t")
                if is_narrowpeak is None:
                    is_narrowpeak = _is_narrowpeak(path, fields)
                    first = (line_number, len(fields))
                where = f"{path}:{line_number}"
                if is_narrowpeak and len(fields) < NARROWPEAK_COLUMNS:
                    raise BedFormatError(f"{where}: narrowPeak lines have at least 10 columns, got {len(fields)}")
                if not is_narrowpeak and first[1] < NARROWPEAK_COLUMNS and _narrowpeak_line(fields):
                    raise BedFormatError(f"{where}: a narrowPeak line (10 columns, 7-9 numbers) in a file read as BED "
                                         f"by its line {first[0]} of {first[1]} columns, whose summits (column 10) "
                                         "would be ignored; give the regions in one format")
                records.append(_parse_bed_line(fields, where, is_narrowpeak))
    except (UnicodeDecodeError, OSError, EOFError) as error:
        raise BedFormatError(f"{path}: cannot read as a text BED file ({error})") from None
    if not records:
        raise BedFormatError(f"{path}: no regions found (the file is empty or holds only header lines)")
    frame = pd.DataFrame.from_records(records)
    frame["start"] = frame["start"].astype(np.int64)
    frame["end"] = frame["end"].astype(np.int64)
    if "strand" in frame.columns:  # rows of fewer columns (a BED4 joined to a BED6) have none
        frame["strand"] = frame["strand"].fillna(".")
    return frame


def validate_regions(regions: pd.DataFrame, source: str = "regions", windows: bool = False) -> pd.DataFrame:
    """Check that a regions table has ``chrom, start, end`` with valid coordinates; add ``name`` if absent.

    ``windows=True`` admits a negative start: a window centred near a chromosome start runs off it
    (:func:`resize`) and is padded with N when read.

    Raises
    ------
    BedFormatError
        Naming the first offending row.
    """
    missing = [column for column in ("chrom", "start", "end") if column not in regions.columns]
    if missing:
        raise BedFormatError(f"{source}: missing columns {missing}; expected chrom, start, end")
    if len(regions) == 0:
        raise BedFormatError(f"{source}: no regions")
    regions = regions.reset_index(drop=True).copy()
    for column in ("start", "end"):
        if not pd.api.types.is_integer_dtype(regions[column]):
            raise BedFormatError(f"{source}: column {column!r} must hold integers, got {regions[column].dtype}")
    bad = np.flatnonzero(((regions["start"] < 0).to_numpy() & (not windows))
                         | (regions["start"] >= regions["end"]).to_numpy())
    if bad.size:
        row = regions.iloc[bad[0]]
        raise BedFormatError(
            f"{source}: row {bad[0]} ({row['chrom']}:{row['start']}-{row['end']}) needs "
            f"{'' if windows else '0 <= '}start < end"
        )
    if "name" not in regions.columns:
        regions["name"] = regions["chrom"].astype(str) + ":" + regions["start"].astype(str) + "-" + regions["end"].astype(str)
    return regions


def resize(regions: pd.DataFrame, width: int) -> pd.DataFrame:
    """Centre a window of ``width`` bp on each region's summit (narrowPeak) or midpoint.

    The window may extend past the chromosome ends (negative start); :func:`load_regions` pads such
    windows with N. The original interval is kept in ``region_start``/``region_end``.

    Parameters
    ----------
    regions
        Regions table as returned by :func:`read_bed`.
    width
        Window width in bp, an integer > 0.

    Returns
    -------
    pandas.DataFrame
        Copy of ``regions`` with ``start``/``end`` replaced by the window.
    """
    if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width <= 0:
        raise BedFormatError(f"window width must be a positive number of bp (an integer), got {width!r}")
    regions = validate_regions(regions, windows=True)
    start = regions["start"].to_numpy(np.int64)
    end = regions["end"].to_numpy(np.int64)
    centre = (start + end) // 2
    if "summit" in regions.columns:
        summit = regions["summit"].fillna(-1).to_numpy(np.int64)
        centre = np.where(summit >= 0, start + summit, centre)
    resized = regions.copy()
    if "region_start" not in resized.columns:
        resized["region_start"] = start
        resized["region_end"] = end
    resized["start"] = centre - width // 2
    resized["end"] = resized["start"] + width
    return resized


def one_hot_encode(seqs: str | Sequence[str], dtype: np.dtype | type = np.float32) -> np.ndarray:
    """One-hot encode DNA sequences of equal length.

    Parameters
    ----------
    seqs
        One sequence, or a sequence of sequences of the same length (``str`` or ASCII ``bytes``). Lowercase
        (soft-masked) bases equal uppercase; N and every other character become all-zero columns.
    dtype
        Output dtype: float32 (the package's contract, default) or a compact integer type for storage.

    Returns
    -------
    numpy.ndarray
        ``(4, L)`` for one string, else ``(N, 4, L)``; channels A, C, G, T.
    """
    if isinstance(seqs, (str, bytes)):
        return one_hot_encode([seqs], dtype)[0]
    seqs = [seq.decode("ascii", errors="replace") if isinstance(seq, bytes) else seq for seq in seqs]
    if not seqs:
        raise SequenceError("one_hot_encode: no sequences given")
    wanted = np.dtype(dtype)
    if wanted.kind not in "fiub":
        raise SequenceError(f"one_hot_encode: dtype must be a float, integer or bool type, got {wanted}")
    if wanted == np.float16:  # the encoder writes float32 and the integer types; float16 is a copy of float32
        return one_hot_encode(seqs, np.float32).astype(np.float16)
    length = len(seqs[0])
    for index, seq in enumerate(seqs):
        if len(seq) != length:
            raise SequenceError(
                f"one_hot_encode: all sequences must have the same length; sequence 0 has {length} bp, "
                f"sequence {index} has {len(seq)} bp (resize regions to a fixed width first)"
            )
    out = np.zeros((len(seqs), 4, length), dtype=dtype)
    for index, seq in enumerate(seqs):
        _encode_into(out[index], seq)
    return out


def _encode_into(out: np.ndarray, seq: str) -> int:
    """One-hot encode ``seq`` into the zeroed ``(4, len(seq))`` view ``out``; return its non-ACGT count."""
    return _scatter_one_hot(np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8), _CHANNEL_TABLE, out)


def _missing_chromosomes(regions: pd.DataFrame, sizes: dict[str, int], fasta: Path, on_missing: str) -> np.ndarray:
    """Boolean mask of regions whose chromosome is absent; raise unless ``on_missing == "skip"``."""
    present = regions["chrom"].isin(list(sizes)).to_numpy()
    if present.all():
        return ~present
    missing = sorted(set(regions.loc[~present, "chrom"]))
    names = list(sizes)
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    message = f"{fasta}: chromosomes {missing} of the regions are not in the FASTA (it has: {shown})"
    if on_missing != "skip":
        raise FastaError(message + "; fix the names, or skip such regions (--on-missing skip; on_missing: skip in "
                         "the config)")
    log.warning("%s; skipping %d regions", message, int((~present).sum()))
    return ~present


def past_chromosome_ends(
    regions: pd.DataFrame, skipped: np.ndarray, sizes: dict[str, int], fasta: Path, source: str, on_missing: str,
    can_skip: bool = True,
) -> np.ndarray:
    """Boolean mask of regions (or their windows) starting at or past their chromosome's end.

    Such a region is not on the genome read (a wrong build or a shifted file); raise unless
    ``on_missing == "skip"``. Rows already in ``skipped`` are not checked. ``can_skip``: whether the run
    could skip them (``on_missing: skip``), which the error then suggests; a model is trained on every task
    region and negative.
    """
    size = regions["chrom"].map(sizes).fillna(np.inf).to_numpy(np.float64)
    region_start = regions["region_start" if "region_start" in regions.columns else "start"].to_numpy(np.int64)
    past = ~skipped & ((region_start >= size) | (regions["start"].to_numpy(np.int64) >= size))
    region_end = regions["region_end" if "region_end" in regions.columns else "end"].to_numpy(np.int64)
    overhanging = ~skipped & ~past & (region_end > size)
    if overhanging.any():
        first = regions[overhanging].iloc[0]
        log.warning("%s: %d regions end past the end of their chromosome in %s (first: %s at %s:%d-%d, chromosome "
                    "length %d): read, padded with N where their windows run off it; check the genome build", source,
                    int(overhanging.sum()), fasta, first["name"], first["chrom"],
                    first["region_start" if "region_start" in regions.columns else "start"], region_end[overhanging][0],
                    sizes[first["chrom"]])
    if not past.any():
        return past
    first = regions[past].iloc[0]
    start, end = (first["region_start"], first["region_end"]) if "region_start" in regions.columns else (
        first["start"], first["end"])
    window = "" if (start, end) == (first["start"], first["end"]) else (
        f", its {first['end'] - first['start']} bp window {first['chrom']}:{first['start']}-{first['end']}")
    message = (f"{source}: {int(past.sum())} regions, or their windows, start at or past the end of their chromosome "
               f"in {fasta} (first: {first['name']} at {first['chrom']}:{start}-{end}{window}, chromosome length "
               f"{sizes[first['chrom']]})")
    if on_missing != "skip":
        raise FastaError(message + ("; check the genome build, or skip such regions (--on-missing skip; on_missing: "
                                    "skip in the config)" if can_skip
                                    else "; check the genome build (a model is trained on every task region and "
                                    "negative)"))
    log.warning("%s; skipping them", message)
    return past


def repeated_windows(windows: pd.DataFrame, source: str | os.PathLike) -> int:
    """Count the windows that repeat an earlier window of the table, with a warning naming the first.

    A repeated window (a BED listing a peak twice, or two summits that centre on one window) is explained
    and scanned once per row: its seqlets count twice in motif discovery and its hits appear twice.

    Parameters
    ----------
    windows
        ``chrom, start, end, name`` of each window (after :func:`resize`).
    source
        The regions' file, named in the warning.

    Returns
    -------
    int
        The number of rows whose window an earlier row already has.
    """
    repeated = windows.duplicated(["chrom", "start", "end"], keep="first").to_numpy()
    if repeated.any():
        first = windows.iloc[int(np.flatnonzero(repeated)[0])]
        earlier = windows[(windows["chrom"] == first["chrom"]) & (windows["start"] == first["start"])
                          & (windows["end"] == first["end"])].iloc[0]
        log.warning("%s: %d regions repeat the window of an earlier region (first: %s at %s:%d-%d, as %s): each "
                    "is explained again, so its seqlets count twice in motif discovery and its hits appear twice; "
                    "remove the repeats (e.g. sort -u) unless that is meant", source, int(repeated.sum()),
                    first["name"], first["chrom"], first["start"], first["end"], earlier["name"])
    return int(repeated.sum())



def further_summits(windows: pd.DataFrame, source: str | os.PathLike) -> int:
    """Count the windows centred on a further summit of a peak listed earlier, with a warning naming the first.

    MACS2's ``--call-summits`` lists one peak once per summit. Windows of summits closer than the width
    overlap: the sites between them are explained, found as seqlets and hit once per summit.

    Parameters
    ----------
    windows
        ``chrom, start, end, name, region_start, region_end`` of each window (after :func:`resize`).
    source
        The regions' file, named in the warning.

    Returns
    -------
    int
        The number of rows whose peak (``chrom, region_start, region_end``) an earlier row has, with another
        window that overlaps an earlier one of the peak (rows repeating an earlier window are
        :func:`repeated_windows`; summits farther apart than the width explain disjoint bases).
    """
    if "region_start" not in windows.columns:
        return 0
    peak = ["chrom", "region_start", "region_end"]
    candidates = windows.duplicated(peak, keep=False) & ~windows.duplicated(peak + ["start", "end"])
    further, example = 0, None
    for _, group in windows[candidates].groupby(peak, sort=False):
        starts, ends = group["start"].to_numpy(), group["end"].to_numpy()
        for row in range(1, len(group)):
            overlaps = np.minimum(ends[:row], ends[row]) - np.maximum(starts[:row], starts[row])
            if overlaps.max() > 0:
                further += 1
                if example is None or group.index[row] < example[0].name:
                    example = group.iloc[row], group.iloc[int(overlaps.argmax())], int(overlaps.max())
    if further:
        first, earlier, overlap = example
        log.warning("%s: %d regions are a further summit of a peak listed earlier (first: %s at %s:%d-%d, whose "
                    "window shares %d bp with %s's): the bases their windows share are explained, counted in motif "
                    "discovery and hit once per summit; keep one summit per peak (e.g. its strongest) unless that "
                    "is meant", source, further, first["name"], first["chrom"], first["region_start"],
                    first["region_end"], overlap, earlier["name"])
    return further


def load_regions(
    fasta: str | os.PathLike,
    regions: str | os.PathLike | pd.DataFrame,
    width: int | None = None,
    backend: str = "pyfaidx",
    on_missing: str = "error",
    progress: bool = True,
    report_n: bool = True,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read fixed-width windows of a FASTA file and one-hot encode them, streaming region by region.

    Parameters
    ----------
    fasta
        FASTA file (pysam also reads bgzip-compressed FASTA). Its index is built when missing, beside it
        or, in a read-only folder, in the user's cache folder (see :func:`genomatt.fasta.ensure_fasta_index`).
    regions
        BED/narrowPeak path or a regions table.
    width
        Window width in bp centred on summit or midpoint (see :func:`resize`). ``None`` keeps the
        intervals as they are; they must then all have the same length.
    backend
        ``"pyfaidx"`` (default) or ``"pysam"``; both give identical arrays.
    on_missing
        ``"error"`` (default): a region on a chromosome absent from the FASTA, or starting (or whose
        window starts) past its chromosome's end, is an error naming it. ``"skip"``: such regions are
        dropped with a warning giving their count and recorded in ``regions.attrs["skipped"]``.
        Windows entirely in N are kept and reported in a warning.
    progress
        Show a progress bar.
    report_n
        Warn about windows entirely in N or padded off a chromosome end; off for windows a caller
        judges by their N content itself (background candidates).

    Returns
    -------
    regions : pandas.DataFrame
        The windows (``chrom, start, end, name`` ...) with ``padded_left``/``padded_right`` (bp of N
        added where the window runs off the chromosome) and ``n_bases`` (non-ACGT positions).
    X : numpy.ndarray
        ``(N, 4, L)`` float32 one-hot.
    """
    table = window_table(fasta, regions, width, backend, on_missing)
    X = np.zeros((len(table), 4, int(table["end"].iloc[0] - table["start"].iloc[0])), dtype=np.float32)
    row = 0
    for block in read_window_blocks(table, fasta, backend, progress=progress):
        X[row:row + len(block)] = block
        row += len(block)
    if report_n:
        report_n_windows(table)
    return table, X


def check_window_width(width: int, sizes: Mapping[str, int], fasta: str | os.PathLike, source: str) -> None:
    """Refuse windows of ``width`` bp longer than the whole genome of ``fasta`` (``sizes``; a width of 1e9 failed
    allocating the window store), and warn of windows longer than every chromosome (each mostly N padding, as a
    fixed-width model explained on a FASTA of short loci reads them).

    Raises
    ------
    BedFormatError
        Naming ``source`` (the regions), the width and the genome's length.
    """
    total, longest = sum(sizes.values()), max(sizes.values(), default=0)
    if width > total:
        raise BedFormatError(f"{source}: windows of {width} bp are longer than the whole genome of {fasta} ({total} "
                             "bp): give the width the model takes")
    if width > longest:
        log.warning("%s: windows of %d bp are longer than every chromosome of %s (the longest is %d bp): each is "
                    "mostly N padding", source, width, fasta, longest)


def window_table(
    fasta: str | os.PathLike,
    regions: str | os.PathLike | pd.DataFrame,
    width: int | None = None,
    backend: str = "pyfaidx",
    on_missing: str = "error",
) -> pd.DataFrame:
    """The windows :func:`load_regions` reads, before reading them.

    Parameters are those of :func:`load_regions`. The table has ``padded_left``/``padded_right`` and ``n_bases``,
    which counts the padding until :func:`read_window_blocks` adds each window's non-ACGT bases; the regions
    skipped (``on_missing="skip"``) are in ``attrs["skipped"]``.
    """
    if on_missing not in ("error", "skip"):
        raise FastaError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    source = str(regions) if not isinstance(regions, pd.DataFrame) else "regions"
    if isinstance(regions, pd.DataFrame):
        table = validate_regions(regions, source, windows=True)
    else:
        table = read_bed(regions)
    if width is not None:
        table = resize(table, width)
    lengths = (table["end"] - table["start"]).unique()
    if len(lengths) != 1:
        raise BedFormatError(
            f"{source}: regions have different lengths ({sorted(lengths)[:5]} ...); give a window width"
        )
    fasta = Path(fasta)
    sizes = read_chrom_sizes(fasta, backend)
    if len(table):
        check_window_width(int(lengths[0]), sizes, fasta, source)
    skipped_mask = _missing_chromosomes(table, sizes, fasta, on_missing)
    skipped_mask |= past_chromosome_ends(table, skipped_mask, sizes, fasta, source, on_missing)
    skipped = table[skipped_mask].reset_index(drop=True)
    table = table[~skipped_mask].reset_index(drop=True)
    if len(table) == 0:
        raise FastaError(f"{fasta}: none of the regions of {source} lie on a chromosome of the FASTA")
    starts = table["start"].to_numpy(np.int64)
    chrom_sizes = table["chrom"].map(sizes).to_numpy(np.int64)
    table["padded_left"] = np.maximum(0, -starts)
    table["padded_right"] = np.maximum(0, table["end"].to_numpy(np.int64) - chrom_sizes)
    table["n_bases"] = table["padded_left"] + table["padded_right"]
    table.attrs["skipped"] = skipped
    return table


def read_window_blocks(table: pd.DataFrame, fasta: str | os.PathLike, backend: str = "pyfaidx",
                       block_bytes: int = 64 << 20, progress: bool = True) -> Iterator[np.ndarray]:
    """One-hot of the windows of a :func:`window_table`, in order, about ``block_bytes`` of them at a time (at
    least one window: 4,096 of 1 kb, 85 of 196,608 bp).

    Yields
    ------
    numpy.ndarray
        ``(rows, 4, L)`` float32 one-hot of the next windows. As each block is read, its windows' non-ACGT
        bases are added to ``table["n_bases"]``, which is complete once every block is read.
    """
    length = int(table["end"].iloc[0] - table["start"].iloc[0])
    block_rows = max(1, block_bytes // (4 * length * np.dtype(np.float32).itemsize))
    starts, ends = table["start"].to_numpy(np.int64), table["end"].to_numpy(np.int64)
    padded_left, padded_right = table["padded_left"].to_numpy(), table["padded_right"].to_numpy()
    n_bases = table["n_bases"].to_numpy(np.int64).copy()
    chroms = table["chrom"].tolist()
    reader = FastaReader(Path(fasta), backend)
    try:
        with tqdm(total=len(table), desc="reading regions", unit="region", disable=not progress) as bar:
            for first in range(0, len(table), block_rows):
                rows = range(first, min(first + block_rows, len(table)))
                X = np.zeros((len(rows), 4, length), dtype=np.float32)
                for offset, index in enumerate(rows):
                    fetch_start, fetch_end = starts[index] + padded_left[index], ends[index] - padded_right[index]
                    if fetch_end > fetch_start:
                        seq = reader.fetch(chroms[index], int(fetch_start), int(fetch_end))
                        n_bases[index] += _encode_into(X[offset, :, padded_left[index]:], seq)
                table["n_bases"] = n_bases
                bar.update(len(rows))
                yield X
    finally:
        reader.close()


def report_n_windows(table: pd.DataFrame) -> None:
    """Warn about windows entirely in N and windows padded off a chromosome end (after they are read)."""
    length = int(table["end"].iloc[0] - table["start"].iloc[0])
    all_n = np.flatnonzero(table["n_bases"].to_numpy() == length)
    if all_n.size:
        names = ", ".join(table["name"].iloc[all_n[:5]].astype(str)) + (", ..." if all_n.size > 5 else "")
        log.warning("%d windows hold no A, C, G or T (entirely N): %s", all_n.size, names)
    off_end = int(((table["padded_left"] > 0) | (table["padded_right"] > 0)).sum())
    if off_end:
        log.warning("%d windows run off a chromosome end and were padded with N (see padded_left/right)", off_end)


def decode_one_hot(X: np.ndarray) -> str | list[str]:
    """Turn one-hot back into strings (all-zero columns become ``N``), the inverse of :func:`one_hot_encode`.

    Parameters
    ----------
    X
        ``(N, 4, L)`` one-hot, or ``(4, L)`` for one sequence; channels A, C, G, T.

    Returns
    -------
    str or list of str
        One string for a ``(4, L)`` array, else a list of N strings.

    Raises
    ------
    SequenceError
        If ``X`` is not of one of those shapes, or not one-hot (values other than 0 and 1, or several bases at
        a position).
    """
    X = np.asarray(X)
    if X.ndim == 2 and X.shape[0] == 4:
        return decode_one_hot(X[None])[0]
    if X.ndim != 3 or X.shape[1] != 4:
        raise SequenceError(f"expected one-hot of shape (N, 4, L) or (4, L), got {X.shape}")
    if not (np.isin(X, (0, 1)).all() and X.sum(axis=1).max(initial=0) <= 1):
        raise SequenceError("expected one-hot: 0 and 1 only, at most one base per position (a column of zeros is "
                            "an N); got other values (NaN, fractions) or several bases at a position")
    letters = np.array(list(ALPHABET + "N"))
    index = np.where(X.sum(axis=1) > 0, X.argmax(axis=1), 4)
    return ["".join(row) for row in letters[index]]


def write_bed(regions: pd.DataFrame, path: str | os.PathLike, columns: Iterable[str] = REGION_COLUMNS) -> Path:
    """Write regions as a tab-separated BED file (no header), atomically."""
    from genomatt.atomic import atomic_path

    with atomic_path(path) as tmp:
        regions.loc[:, list(columns)].to_csv(tmp, sep="\t", header=False, index=False)
    return Path(path)
