"""Motif records and the MEME motif file format.

A motif matrix is ``(4, W)`` (channels A, C, G, T; positions along the motif), matching the one-hot
contract. Probability matrices (:class:`Motif`) have columns summing to 1; contribution weight matrices
(:class:`CwmMotif`, what hit calling scans) are in the units of the contributions.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genomatt import ALPHABET
from genomatt.atomic import atomic_path
from genomatt.errors import MotifError, missing_file

# Columns whose sum is this far from 1 are renormalised on reading (MEME files often carry rounding).
PROBABILITY_TOLERANCE = 0.1


@dataclass
class Motif:
    """A named motif with a ``(4, W)`` position probability matrix.

    Attributes
    ----------
    id
        Identifier, e.g. a JASPAR matrix ID ``MA0035.5``.
    name
        Human-readable name, e.g. the transcription factor ``GATA1``.
    probabilities
        ``(4, W)`` float64, columns sum to 1.
    sites
        Number of sites the matrix was built from (0 when unknown).
    extra
        Further per-motif annotations (e.g. JASPAR collection, discovered-motif statistics).
    """

    id: str
    name: str
    probabilities: np.ndarray
    sites: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.probabilities.shape[1])

    def log_odds(self, background: np.ndarray | None = None, pseudocount: float = 0.01) -> np.ndarray:
        """Log2-odds matrix ``(4, W)`` against ``background`` (uniform by default)."""
        background = np.full(4, 0.25) if background is None else np.asarray(background, dtype=float)
        smoothed = (self.probabilities + pseudocount) / (1 + 4 * pseudocount)
        return np.log2(smoothed / background[:, None])


@dataclass
class CwmMotif:
    """A motif to find in contribution scores.

    Attributes
    ----------
    name
        Motif name, written in the ``motif_name`` column of the hits.
    cwm
        ``(4, W)`` contribution weight matrix (A, C, G, T); negative for motifs whose contributions are.
    task
        The task whose contributions the motif is scanned in; ``None`` scans every task.
    n_seqlets
        Seqlets the motif was built from (``None`` for motifs of a MEME file).
    pwm
        ``(4, W)`` position probability matrix of the motif's sequences, aligned with ``cwm`` (the seqlets'
        base frequencies, or a MEME motif's probabilities); ``None`` when unknown, and then a hit's
        sequence is not checked against it.

    Raises
    ------
    MotifError
        If ``cwm`` is not a finite ``(4, W)`` matrix with W >= 1 and a non-zero value (a ``(W, 4)`` one, as
        tfmodisco-lite stores its matrices, is told to be transposed), or ``pwm`` is not a finite,
        non-negative matrix of the shape of ``cwm``.
    """

    name: str
    cwm: np.ndarray
    task: str | None = None
    n_seqlets: int | None = None
    pwm: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.cwm = np.asarray(self.cwm)
        source = f"motif {self.name}"
        _check_numeric_matrix(self.cwm, f"{source}: cwm")
        if not np.abs(self.cwm).sum() > 0:
            raise MotifError(f"{source}: cwm is all zero; expected a contribution weight matrix with non-zero values")
        if self.pwm is not None:
            self.pwm = np.asarray(self.pwm)
            _check_numeric_matrix(self.pwm, f"{source}: pwm")
            if self.pwm.shape != self.cwm.shape:
                raise MotifError(f"{source}: pwm has shape {self.pwm.shape}, expected that of its cwm "
                                 f"{self.cwm.shape} (aligned column by column)")
            if (self.pwm < 0).any():
                raise MotifError(f"{source}: pwm has negative values; expected base probabilities")

    @property
    def sign(self) -> int:
        """+1 for a motif of positive contributions, -1 for a negative one."""
        return 1 if self.cwm.sum() >= 0 else -1


def check_motif_shape(matrix: np.ndarray, source: str) -> None:
    """Refuse a matrix that is not ``(4, W)`` with W >= 1; a ``(W, 4)`` one is told to be transposed."""
    if matrix.ndim != 2 or matrix.shape[0] != 4 or matrix.shape[1] == 0:
        hint = (" (a (W, 4) matrix, positions first as tfmodisco-lite stores them? transpose it)"
                if matrix.ndim == 2 and matrix.shape[1] == 4 else "")
        raise MotifError(f"{source}: expected a (4, W) matrix (A, C, G, T rows) with W >= 1, got shape "
                         f"{matrix.shape}{hint}")


def _check_numeric_matrix(matrix: np.ndarray, source: str) -> None:
    """Refuse a matrix that is not numeric, not ``(4, W)`` (:func:`check_motif_shape`) or not finite."""
    if not (np.issubdtype(matrix.dtype, np.number) or matrix.dtype == np.bool_):
        raise MotifError(f"{source}: expected a numeric (4, W) matrix, got dtype {matrix.dtype}")
    check_motif_shape(matrix, source)
    if not np.isfinite(matrix).all():
        raise MotifError(f"{source}: {int((~np.isfinite(matrix)).sum())} values are NaN or infinite; expected "
                         "finite values")


def normalise_columns(matrix: np.ndarray, source: str) -> np.ndarray:
    """Return ``matrix`` with columns scaled to sum to 1; reject negative values or empty columns."""
    matrix = np.asarray(matrix, dtype=float)
    check_motif_shape(matrix, source)
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise MotifError(f"{source}: matrix values must be finite and non-negative")
    sums = matrix.sum(axis=0)
    if (sums <= 0).any():
        raise MotifError(f"{source}: column {int(np.argmin(sums)) + 1} sums to 0")
    return matrix / sums


def probability_matrix(matrix: np.ndarray, source: str) -> np.ndarray:
    """``matrix`` checked as a ``(4, W)`` letter-probability matrix and renormalised.

    Its values must be finite and non-negative and its columns sum to 1 within ``PROBABILITY_TOLERANCE``
    (counts, percentages and contribution weight matrices are refused, not silently rescaled).

    Returns
    -------
    numpy.ndarray
        ``(4, W)`` float64, columns summing to 1.

    Raises
    ------
    MotifError
        Naming ``source``, the first column that is off and what it sums to.
    """
    normalised = normalise_columns(matrix, source)
    sums = np.asarray(matrix, dtype=float).sum(axis=0)
    off = np.flatnonzero(np.abs(sums - 1) > PROBABILITY_TOLERANCE)
    if len(off):
        raise MotifError(f"{source}: column {off[0] + 1} sums to {sums[off[0]]:.4g}, expected probabilities whose "
                         "columns sum to 1 (counts or a contribution weight matrix?)")
    return normalised


def reverse_complement_matrix(matrix: np.ndarray) -> np.ndarray:
    """Reverse complement of a ``(4, W)`` matrix in ACGT order (flip both axes)."""
    return np.ascontiguousarray(np.asarray(matrix)[::-1, ::-1])


_MOTIF_LINE = re.compile(r"^\s*MOTIF\s+(\S+)(?:\s+(\S+))?")
_MATRIX_HEADER = re.compile(r"^letter-probability matrix:(.*)$")


def _check_dna_alphabet(lines: list[str], path: Path) -> None:
    """Refuse a MEME file whose alphabet is not DNA's: ``ALPHABET= ACGT``, or an ``ALPHABET ... END ALPHABET``
    block (MEME 5) whose core symbols are A, C, G and T (its ambiguity codes, ``N = ACGT``, are aliases)."""
    for index, line in enumerate(lines):
        if not line.startswith("ALPHABET"):
            continue
        if line.startswith("ALPHABET="):
            letters = line.split("=", 1)[1].strip().upper()
            if letters not in ("ACGT", ""):
                raise MotifError(f"{path}: only the DNA alphabet ACGT is supported, got {line!r}")
            return
        core = []
        for entry in lines[index + 1:]:
            if entry.startswith("END ALPHABET"):
                break
            # A core symbol, or a complementary pair `A "Adenine" CC0000 ~ T "Thymine" 008000`.
            core += [part.split()[0].upper() for part in entry.split("~") if part.split() and "=" not in part]
        if sorted(core) != list("ACGT"):
            raise MotifError(f"{path}:{index + 1}: only the DNA alphabet ACGT is supported, got {line!r} with "
                             f"core symbols {core}")
        return


_JASPAR_ROW = re.compile(r"^\s*[ACGT]\s*\[", re.IGNORECASE)


def _other_format_hint(lines: list[str]) -> str:
    """How to convert a motif file of another common format to MEME, where ``lines`` look like one; else ``""``.

    JASPAR: ``>MA0035.4 Gata1`` then rows ``A [ 24 51 ... ]`` (or four rows of counts); HOMER: a ``>`` line of
    tab-separated fields (consensus, name, threshold) then one row of 4 values per position; TRANSFAC:
    ``AC``/``ID`` and ``P0`` (or ``PO``) lines.
    """
    content = [line for line in lines if line.strip()]
    if any(line.startswith(("P0 ", "PO ", "P0\t", "PO\t")) for line in content) and \
            any(line.startswith(("AC ", "ID ", "AC\t", "ID\t")) for line in content):
        return "; it looks like a TRANSFAC file: convert it with the MEME suite's transfac2meme"
    if _is_jaspar(lines):
        return ("; it is a JASPAR-format file: read it with read_jaspar or read_motif_file (genomatt's commands "
                "read both)")
    if len(content) < 2 or not content[0].startswith(">"):
        return ""
    if content[0].count("\t") >= 2 and len(content[1].split()) == 4 and _is_number_row(content[1]):
        return "; it looks like a HOMER motif file: convert it to MEME, e.g. with the MEME suite's chen2meme"
    return ""


def _is_jaspar(lines: list[str]) -> bool:
    """Whether ``lines`` are a JASPAR-format file: ``>ID name`` then rows of counts, ``A [ 24 51 ... ]`` or the
    bare numbers (JASPAR's .pfm), or an older .pfm of four rows of counts alone; not HOMER's ``>`` line of
    tab-separated consensus, name and threshold."""
    content = [line.strip() for line in lines if line.strip()]
    if not content:
        return False
    if not content[0].startswith(">"):
        return len(content) == 4 and all(_is_number_row(line) for line in content)
    return (len(content) >= 2 and content[0].count("\t") < 2
            and bool(_JASPAR_ROW.match(content[1]) or _is_number_row(content[1])))


def _row_fault(row: list[float]) -> str:
    """Why a matrix row is no row of letter probabilities, and what it looks like instead."""
    total = sum(row)
    fault = f"a negative value {min(row):g}" if min(row) < 0 else f"probabilities sum to {total:.3f}"
    if min(row) < 0 or total < 0.5:
        return (f"{fault}, expected probabilities summing to 1; a contribution weight matrix? `modisco meme -t CWM` "
                "writes CWMs: give letter probabilities (`modisco meme -t PFM`)")
    if total > 1:
        return f"{fault}, expected 1; counts or percentages? give letter probabilities (each row summing to 1)"
    return f"{fault}, expected 1"


def _is_number_row(line: str) -> bool:
    """Whether ``line`` is a row of numbers (as a matrix row is)."""
    try:
        return bool([float(value) for value in line.split()])
    except ValueError:
        return False


def read_motif_file(path: str | os.PathLike, allow_empty: bool = False) -> list[Motif]:
    """Read every motif of a MEME-format file (:func:`read_meme`) or of a JASPAR-format one (:func:`read_jaspar`).

    ``allow_empty`` as for :func:`read_meme`.
    """
    path = Path(path)
    if not path.is_file():
        raise MotifError(missing_file(path, "motif file"))
    if _is_jaspar(path.read_text(encoding="utf-8-sig", errors="replace").splitlines()):
        return read_jaspar(path)
    return read_meme(path, allow_empty)


def read_jaspar(path: str | os.PathLike) -> list[Motif]:
    """Read every motif of a JASPAR-format file (one matrix, or JASPAR's bundle of many).

    Each motif is a line ``>ID name`` followed by four rows of counts, A, C, G, T, written ``A [ 24 51 ... ]``
    or as bare numbers in that order (JASPAR's ``.pfm``; an older ``.pfm`` of the four rows alone is named by
    the file); the counts become probabilities, and the whitespace in a name ``_``.

    Returns
    -------
    list of Motif
        In file order; ``sites`` is the count of the first column.

    Raises
    ------
    MotifError
        Naming the file and line of a matrix that is not four rows of as many non-negative numbers, or of an ID
        given twice.
    """
    path = Path(path)
    if not path.is_file():
        raise MotifError(missing_file(path, "JASPAR file"))
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    numbered = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    if numbered and not numbered[0][1].startswith(">"):
        if not _is_jaspar(lines):
            raise MotifError(f"{path}: not a JASPAR motif file (a '>ID name' line, then four rows of counts; or the "
                             f"four rows alone, as an older .pfm){_other_format_hint(lines)}")
        # An older .pfm: the four rows of one matrix without a header, named by the file.
        numbered.insert(0, (numbered[0][0], ">" + "_".join(path.stem.split())))
    blocks: list[tuple[int, str, list[tuple[int, str]]]] = []
    for number, line in numbered:
        if line.startswith(">"):
            blocks.append((number, line[1:].strip(), []))
        else:
            blocks[-1][2].append((number, line))
    motifs: list[Motif] = []
    first_line: dict[str, int] = {}
    for number, header, rows in blocks:
        fields = header.split(None, 1)
        if not fields:
            raise MotifError(f"{path}:{number}: a motif header without an ID")
        identifier = fields[0]
        if identifier in first_line:
            raise MotifError(f"{path}:{number}: motif {identifier} is given again (first at line "
                             f"{first_line[identifier]}); give each matrix once")
        first_line[identifier] = number
        if len(rows) != 4:
            raise MotifError(f"{path}:{number}: motif {identifier} has {len(rows)} rows, expected four rows of counts "
                             "(A, C, G, T)")
        counts = []
        for base, (row_number, row) in zip(ALPHABET, rows):
            bracketed = _JASPAR_ROW.match(row)
            if bracketed and row.lstrip()[0].upper() != base:
                raise MotifError(f"{path}:{row_number}: expected the row of {base} (rows A, C, G, T), got {row!r}")
            values = row[bracketed.end():].rstrip("] ") if bracketed else row
            try:
                counts.append([float(value) for value in values.split()])
            except ValueError:
                raise MotifError(f"{path}:{row_number}: expected counts, got {row!r}") from None
        if len({len(row) for row in counts}) != 1:
            raise MotifError(f"{path}:{rows[0][0]}: the rows of motif {identifier} have different lengths "
                             f"{[len(row) for row in counts]}")
        matrix = np.array(counts)
        # A name is one word where motifs are written (MEME's MOTIF line, BED names): spaces become _.
        name = "_".join(fields[1].split()) if len(fields) > 1 else ""
        motifs.append(Motif(identifier, name, normalise_columns(matrix, f"{path}:{rows[0][0]}: motif {identifier}"),
                            int(round(matrix[:, 0].sum()))))
    return motifs


def read_meme(path: str | os.PathLike, allow_empty: bool = False) -> list[Motif]:
    """Read every motif of a MEME-format file (minimal or full MEME output).

    Rows that do not sum exactly to 1 are renormalised; a row off by more than
    ``PROBABILITY_TOLERANCE`` or with a wrong number of values, or more or fewer rows than ``w=`` declares, is
    an error naming the line. ``allow_empty``:
    a file of the MEME header alone (``motifs.meme`` of a run that found no motif) gives no motifs rather
    than an error.

    Returns
    -------
    list of Motif
        In file order; ``probabilities`` is ``(4, W)``.
    """
    path = Path(path)
    if not path.is_file():
        raise MotifError(missing_file(path, "MEME file"))
    # A byte-order mark (files saved by some Windows editors) is not part of the text.
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    if not any(line.startswith("MEME version") for line in lines):
        raise MotifError(f"{path}: not a MEME motif file (no 'MEME version' line){_other_format_hint(lines)}")
    _check_dna_alphabet(lines, path)
    motifs: list[Motif] = []
    first_line: dict[str, int] = {}
    index = 0
    while index < len(lines):
        match = _MOTIF_LINE.match(lines[index])
        index += 1
        if not match:
            continue
        motif_id, name = match.group(1), match.group(2) or match.group(1)
        if motif_id in first_line:
            raise MotifError(f"{path}:{index}: motif {motif_id} is given again (first at line {first_line[motif_id]}); "
                             "each motif needs its own identifier (two files joined twice, or one motif listed "
                             "twice?)")
        first_line[motif_id] = index
        while index < len(lines) and not _MATRIX_HEADER.match(lines[index].strip()):
            if _MOTIF_LINE.match(lines[index]):
                raise MotifError(f"{path}:{index + 1}: motif {motif_id} has no letter-probability matrix")
            index += 1
        if index >= len(lines):
            raise MotifError(f"{path}: motif {motif_id} has no letter-probability matrix")
        header = _MATRIX_HEADER.match(lines[index].strip()).group(1)
        width_match = re.search(r"w=\s*(\d+)", header)
        sites_match = re.search(r"nsites=\s*([\d.eE+]+)", header)
        index += 1
        rows = []
        while index < len(lines) and lines[index].strip() and not lines[index].lstrip().startswith(("MOTIF", "URL")):
            values = lines[index].split()
            try:
                row = [float(value) for value in values]
            except ValueError:
                raise MotifError(f"{path}:{index + 1}: expected 4 probabilities, got {lines[index]!r}") from None
            if len(row) != 4:
                raise MotifError(f"{path}:{index + 1}: expected 4 probabilities (A C G T), got {len(row)}")
            if not all(np.isfinite(row)):
                raise MotifError(f"{path}:{index + 1}: motif {motif_id} has a NaN or infinite value, expected 4 "
                                 f"probabilities, got {lines[index].strip()!r}")
            if min(row) < 0 or abs(sum(row) - 1) > PROBABILITY_TOLERANCE:
                raise MotifError(f"{path}:{index + 1}: motif {motif_id}: {_row_fault(row)}")
            rows.append(row)
            index += 1
            if width_match and len(rows) == int(width_match.group(1)):
                # MEME's full output follows a matrix with other text; a further row of numbers is a wrong w=.
                if index < len(lines) and _is_number_row(lines[index]):
                    raise MotifError(f"{path}:{index + 1}: motif {motif_id} declares w={len(rows)} but has more "
                                     "matrix rows; expected w= to give the number of rows")
                break
        if not rows:
            raise MotifError(f"{path}: motif {motif_id} has an empty matrix")
        if width_match and len(rows) != int(width_match.group(1)):
            raise MotifError(f"{path}: motif {motif_id} declares w={width_match.group(1)} but has {len(rows)} rows")
        matrix = normalise_columns(np.array(rows).T, f"{path}: motif {motif_id}")
        sites = int(float(sites_match.group(1))) if sites_match else 0
        motifs.append(Motif(motif_id, name, matrix, sites))
    if not motifs and not allow_empty:
        raise MotifError(f"{path}: no MOTIF entries found")
    return motifs


def write_meme(motifs: list[Motif], path: str | os.PathLike, background: np.ndarray | None = None) -> Path:
    """Write motifs as a minimal MEME file (version 5), atomically.

    Probabilities are renormalised and printed with 6 decimals, so every row sums to 1 within rounding.
    Each motif is written as ``MOTIF <id> <name>`` (its name left out when empty or its id).

    Raises
    ------
    MotifError
        If a motif's id is empty or holds whitespace, or its name holds whitespace (the MEME format's identifier
        and alternate name are one word each: readers would split them), or ``background`` is not 4
        probabilities (A, C, G, T) summing to 1.
    """
    background = np.full(4, 0.25) if background is None else np.asarray(background, dtype=float)
    if background.shape != (4,) or not np.isfinite(background).all() or (background < 0).any() \
            or abs(background.sum() - 1) > 1e-3:
        raise MotifError(f"background: expected 4 probabilities (A, C, G, T) summing to 1, got "
                         f"{np.round(background, 6).tolist()}")
    for motif in motifs:
        for label, value in (("id", motif.id), ("name", motif.name)):
            if re.search(r"\s", value) or (label == "id" and not value):
                raise MotifError(f"motif {label} {value!r}: a MEME motif's {label} must be one word, without "
                                 "whitespace (readers split the MOTIF line at whitespace); replace the spaces, "
                                 "e.g. by _")
    lines = ["MEME version 5", "", f"ALPHABET= {ALPHABET}", "", "strands: + -", "",
             "Background letter frequencies",
             " ".join(f"{base} {value:.6f}" for base, value in zip(ALPHABET, background)), ""]
    for motif in motifs:
        matrix = normalise_columns(motif.probabilities, f"motif {motif.id}")
        label = motif.id if motif.name in ("", motif.id) else f"{motif.id} {motif.name}"
        lines.append(f"MOTIF {label}")
        lines.append(f"letter-probability matrix: alength= 4 w= {matrix.shape[1]} nsites= {max(motif.sites, 1)} E= 0")
        lines.extend(" ".join(f"{value:.6f}" for value in column) for column in matrix.T)
        lines.append("")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return Path(path)
