"""Motifs to scan for hits (:class:`~genomatt.motifs.formats.CwmMotif`): read from a ``motifs.h5`` or a MEME
file, and chosen by name and size.

A discovered motif (``motifs.h5``) brings its CWM and task; a MEME motif (e.g. from JASPAR) has no CWM, so
its logo heights stand in for one and it is scanned in every task.
"""

from __future__ import annotations

import logging
import os
from fnmatch import fnmatchcase
from pathlib import Path

import h5py
import numpy as np

from genomatt.errors import MotifError, missing_file
from genomatt.motifs.formats import CwmMotif, read_motif_file
from genomatt.motifs.store import read_motifs

log = logging.getLogger(__name__)


def logo_heights(probabilities: np.ndarray) -> np.ndarray:
    """Letter heights of a sequence logo: probabilities times information content (bits).

    Parameters
    ----------
    probabilities
        ``(4, W)`` position probability matrix, columns summing to 1.

    Returns
    -------
    numpy.ndarray
        ``(4, W)`` float64, each column summing to its information content (0 to 2 bits).
    """
    probabilities = np.asarray(probabilities, dtype=float)
    entropy = -(probabilities * np.log2(np.clip(probabilities, 1e-12, 1))).sum(axis=0)
    return probabilities * (2 - entropy)


def _is_tfmodisco_lite(path: Path) -> bool:
    """Whether the HDF5 file at ``path`` is tfmodisco-lite's results (its ``pos_patterns``/``neg_patterns``)."""
    try:
        with h5py.File(path, "r") as handle:
            return handle.attrs.get("kind") != "motifs" and ("pos_patterns" in handle or "neg_patterns" in handle)
    except OSError:
        return False


def read_cwm_motifs(path: str | os.PathLike) -> list[CwmMotif]:
    """Motifs to scan from a ``motifs.h5`` (discovered CWMs) or a MEME or JASPAR-format file (known motifs).

    A known motif has no CWM: its logo heights (:func:`logo_heights`) stand in for one, and it is
    scanned in every task. It is named by its name (its ID where it has none), each ``/`` made ``_``; motifs
    sharing a name are named ``<name>_<ID>``.

    Returns
    -------
    list of CwmMotif
        In file order; empty for a ``motifs.h5`` in which no motif was found.

    Raises
    ------
    MotifError
        If the file is missing, is tfmodisco-lite's results file, or holds an invalid motif (see
        :class:`~genomatt.motifs.formats.CwmMotif` and :func:`~genomatt.motifs.formats.read_meme`, whose errors
        name a contribution weight matrix, counts or another motif format where the file holds one).
    """
    path = Path(path)
    if not path.is_file():
        raise MotifError(missing_file(path, "motif file"))
    # Fields of each motif: name, CWM, task, seqlets, PWM.
    if h5py.is_hdf5(path):
        if _is_tfmodisco_lite(path):
            raise MotifError(f"{path}: a tfmodisco-lite results file (pos_patterns/neg_patterns), not a motifs file: "
                             "`genomatt hits --motifs` takes the motifs.h5 that genomatt motifs writes beside its "
                             "modisco folder, or a MEME file (`modisco meme -t PFM` writes one from this file)")
        fields = [(motif.name, np.asarray(motif.cwm, dtype=float), motif.task, motif.n_seqlets,
                   np.asarray(motif.pwm, dtype=float)) for motif in read_motifs(path)[0]]
    else:
        meme = read_motif_file(path, allow_empty=True)
        # A database may give one name to several matrices (JASPAR: CTCF MA0139, MA1929, MA1930): those are
        # named by name and ID. HOMER's names hold '/' (CTCF(Zf)/CD4+-CTCF-ChIP-Seq/Homer), which Fi-NeMo's
        # report would read as folders in the file names it makes from a motif's name: it becomes '_'.
        names = [(motif.name or motif.id).replace("/", "_") for motif in meme]
        fields = [(name if names.count(name) == 1 else f"{name}_{motif.id}", logo_heights(motif.probabilities), None,
                   None, np.asarray(motif.probabilities, dtype=float)) for name, motif in zip(names, meme)]
    try:
        motifs = [CwmMotif(*values) for values in fields]
    except MotifError as error:
        raise MotifError(f"{path}: {error}") from None
    names = [motif.name for motif in motifs]
    if len(set(names)) != len(names):
        raise MotifError(f"{path}: motif names must be distinct, got duplicates of "
                         f"{sorted({n for n in names if names.count(n) > 1})}")
    return motifs

def select_motifs(
    motifs: list[CwmMotif], include: list[str] | None = None, exclude: list[str] | None = None,
    min_seqlets: int = 0,
) -> list[CwmMotif]:
    """The motifs to scan, chosen by name and size (as Fi-NeMo's ``-I``/``-E``).

    Parameters
    ----------
    motifs
        Motifs in file order.
    include, exclude
        Shell-style name patterns (``fnmatch``, e.g. ``GATA1.pos.*``): keep only motifs matching one of
        ``include`` (all when ``None``), then drop those matching one of ``exclude``.
    min_seqlets
        Drop discovered motifs built from fewer seqlets (MEME motifs, which have no count, stay).

    Returns
    -------
    list of CwmMotif
        The kept motifs, in file order.

    Raises
    ------
    MotifError
        If a pattern of ``include`` or ``exclude`` matches no motif (a misspelt name would otherwise go
        unnoticed).
    """
    names = [motif.name for motif in motifs]
    for option, patterns in (("include", include), ("exclude", exclude)):
        unmatched = [p for p in patterns or [] if not any(fnmatchcase(name, p) for name in names)]
        if unmatched:
            raise MotifError(f"--{option} patterns {unmatched} match no motif (motifs: {names})")
    kept = [m for m in motifs if include is None or any(fnmatchcase(m.name, p) for p in include)]
    kept = [m for m in kept if not any(fnmatchcase(m.name, p) for p in exclude or [])]
    small = [m.name for m in kept if m.n_seqlets is not None and m.n_seqlets < min_seqlets]
    if small:
        log.info("motifs %s have fewer than %d seqlets; not scanned", small, min_seqlets)
    return [m for m in kept if m.name not in small]
