"""Genome-browser tracks: bigWig of per-base contributions, BED of motif hits, narrowPeak of regions.

Each task's bigWig is ``contrib.<task>.bw`` with the task name made a file name by
:func:`genomatt.atomic.safe_file_name`, the rule of every file named after a task or motif, so a task name
never reaches into another folder.

Where regions overlap, each base takes its value from the region in whose window it lies closest to
the centre (ties: the region that starts first), because a model sees the most context around the
centre of its input. Every written value is therefore a stored contribution, unchanged.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genomatt.atomic import atomic_path, safe_file_names
from genomatt.contributions import read_contributions
from genomatt.errors import FastaError, StoreError
from genomatt.fasta import read_chrom_sizes
from genomatt.intervals import genome_bases

BED_COLUMNS = ["chr", "start", "end", "motif_name", "score", "strand"]
def contribution_track_paths(tasks: Sequence[str], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Path of each task's bigWig, ``<out_dir>/contrib.<task>.bw`` with :func:`~genomatt.atomic.safe_file_name`.

    Raises
    ------
    OutputError
        If two tasks give the same file name (e.g. ``AP-1/JUN`` and ``AP-1_JUN``), before anything is written.
    """
    return {task: Path(out_dir) / f"contrib.{safe}.bw" for task, safe in safe_file_names(tasks).items()}


def check_regions_on_chromosomes(
    regions: pd.DataFrame, chrom_sizes: dict[str, int], fasta: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
) -> None:
    """Raise unless every region lies on a chromosome of ``chrom_sizes`` and within its length.

    A window that ran off a chromosome end was padded with N when it was read (``padded_left``/
    ``padded_right`` of the table, bp): only its bases read from the genome must lie on the chromosome.
    Without those columns the padding is taken from ``chrom_sizes``, so a window must then only start
    before its chromosome's end (as ``genomatt extract`` requires).

    Parameters
    ----------
    regions
        ``chrom, start, end, name`` of each window (``padded_left``, ``padded_right`` when present).
    chrom_sizes
        Chromosome name → length.
    fasta, source
        The FASTA the sizes were read from and the file of the regions, named in the message when given.

    Raises
    ------
    FastaError
        Naming the missing chromosomes, or the first region past its chromosome's end and that length.
    """
    where, of = (f"{fasta}: " if fasta else ""), (f" of {source}" if source else "")
    missing = sorted(set(regions["chrom"]) - set(chrom_sizes))
    if missing:
        raise FastaError(f"{where}chromosomes {missing} of the regions{of} are not in the FASTA "
                         f"(it has {list(chrom_sizes)[:20]})")
    size = regions["chrom"].map(chrom_sizes).to_numpy(np.int64)
    start, end = regions["start"].to_numpy(np.int64), regions["end"].to_numpy(np.int64)
    recorded = {"padded_left", "padded_right"} <= set(regions.columns)
    if recorded:
        left, right = regions["padded_left"].to_numpy(np.int64), regions["padded_right"].to_numpy(np.int64)
    else:
        left, right = np.maximum(0, -start), np.maximum(0, end - size)
    outside = np.flatnonzero((end - right > size) | (start + left >= size))
    if not outside.size:
        return
    first = outside[0]
    row = regions.iloc[first]
    padding = (f" (padded with N; bases {start[first] + left[first]}-{end[first] - right[first]} read from the genome)"
               if recorded and left[first] + right[first] else "")
    raise FastaError(f"{where}{outside.size} regions{of} do not lie within their chromosome (first: {row['name']} at "
                     f"{row['chrom']}:{start[first]}-{end[first]}{padding}, but {row['chrom']} is {size[first]} bp); "
                     "is this the genome the regions were read from?")


def write_hits_bed(hits: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write hits as BED6 (name = motif, score = 1000 x similarity), one line per distinct hit, atomically.

    A motif scanned in several tasks can be hit at the same place in each; the BED keeps one line. Lines are
    sorted as ``sort -k1,1 -k2,2n`` sorts them, as the seqlet BEDs are, so ``bedtools ... -sorted`` takes both.
    """
    bed = hits[BED_COLUMNS[:4] + ["hit_similarity", "strand"]].copy()
    bed["hit_similarity"] = np.clip(np.round(1000 * bed["hit_similarity"].to_numpy(float)), 0, 1000).astype(int)
    bed = bed.drop_duplicates(subset=["chr", "start", "end", "motif_name", "strand"])
    bed = bed.sort_values(["chr", "start", "end", "motif_name", "strand"], kind="stable")
    with atomic_path(path) as tmp:
        bed.to_csv(tmp, sep="\t", header=False, index=False)
    return Path(path)


def write_regions_narrowpeak(regions: pd.DataFrame, path: str | os.PathLike, signal: np.ndarray | None = None) -> Path:
    """Write the windows of fixed-width regions as ENCODE narrowPeak, atomically, in table order.

    Each line is a region's window clipped to its chromosome (``padded_left``/``padded_right`` of the
    table), with the summit at the window's centre (``L // 2`` from the window start), so that
    Fi-NeMo's ``extract-regions-*`` (which centres an ``L``-wide window on ``start + summit``) reads the
    same bases, row for row: ``chrom, start, end, name, 0, ., signalValue, -1, -1, summit``.

    Parameters
    ----------
    regions
        ``chrom, start, end, name`` of each window (``padded_left``, ``padded_right`` when present).
    path
        Output ``.narrowPeak`` file.
    signal
        ``(N,)`` signalValue of each region (e.g. the model's prediction); -1 (none) when not given.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    start, end = regions["start"].to_numpy(np.int64), regions["end"].to_numpy(np.int64)
    clipped_start, clipped_end = genome_bases(regions)
    peaks = pd.DataFrame({
        "chrom": regions["chrom"].to_numpy(), "start": clipped_start, "end": clipped_end,
        "name": regions["name"].to_numpy(), "score": 0, "strand": ".",
        "signal": np.full(len(regions), -1.0) if signal is None else np.asarray(signal, dtype=np.float64),
        "p": -1, "q": -1, "summit": start + (end - start) // 2 - clipped_start,
    })
    with atomic_path(path) as tmp:
        peaks.to_csv(tmp, sep="\t", header=False, index=False, float_format="%.6g")
    return Path(path)


def _clusters(starts: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
    """Groups of region indices (sorted by start) whose intervals overlap transitively."""
    order = np.argsort(starts, kind="stable")
    reach = np.maximum.accumulate(ends[order])
    breaks = np.flatnonzero(starts[order][1:] >= reach[:-1]) + 1
    return np.split(order, breaks)


def _merge_cluster(
    members: np.ndarray, starts: np.ndarray, ends: np.ndarray, values: np.ndarray, chrom_size: int
) -> tuple[int, np.ndarray]:
    """First base and values of one cluster of overlapping regions, by the nearest-centre rule."""
    first = max(0, int(starts[members].min()))
    last = min(chrom_size, int(ends[members].max()))
    merged = np.zeros(last - first, dtype=np.float32)
    best = np.full(last - first, np.inf)
    for index in members:
        start, end = int(starts[index]), int(ends[index])
        low, high = max(start, first), min(end, last)
        if high <= low:
            continue
        positions = np.arange(low, high)
        distance = np.abs(positions + 0.5 - (start + end) / 2)
        closer = distance < best[low - first : high - first]
        merged[low - first : high - first][closer] = values[index, low - start : high - start][closer]
        best[low - first : high - first][closer] = distance[closer]
    return first, merged


def write_bigwig(
    values: np.ndarray, regions: pd.DataFrame, chrom_sizes: dict[str, int], path: str | os.PathLike
) -> Path:
    """Write per-base values of fixed-width regions as a bigWig, atomically.

    Parameters
    ----------
    values
        ``(N, L)`` float values, one row per region (``regions.end - regions.start == L``).
    regions
        ``chrom, start, end`` of each row (windows may run off chromosome ends, where they were padded;
        those bases are dropped). Each must lie on its chromosome (:func:`check_regions_on_chromosomes`).
    chrom_sizes
        Chromosome name → length, in the order of the bigWig header (FASTA order).
    path
        Output ``.bw`` file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import pyBigWig

    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or len(values) != len(regions):
        raise StoreError(f"{path}: expected ({len(regions)}, L) values, got shape {values.shape}")
    check_regions_on_chromosomes(regions, chrom_sizes)
    with atomic_path(path) as tmp:
        writer = pyBigWig.open(str(tmp), "w")
        try:
            writer.addHeader([(name, int(size)) for name, size in chrom_sizes.items()])
            for chrom in chrom_sizes:
                rows = np.flatnonzero(regions["chrom"].to_numpy() == chrom)
                if not rows.size:
                    continue
                starts = regions["start"].to_numpy(np.int64)[rows]
                ends = regions["end"].to_numpy(np.int64)[rows]
                for members in _clusters(starts, ends):
                    first, merged = _merge_cluster(members, starts, ends, values[rows], chrom_sizes[chrom])
                    if merged.size:
                        writer.addEntries(chrom, first, values=merged, span=1, step=1)
        except RuntimeError as error:
            # libBigWig reports failed writes (a full disk, an I/O error) only as a RuntimeError.
            raise OSError(errno.EIO, f"the bigWig library failed: {error}") from None
        finally:
            writer.close()
        _check_bigwig(tmp, chrom_sizes)
    return Path(path)


def _check_bigwig(path: Path, chrom_sizes: dict[str, int]) -> None:
    """Raise ``OSError`` unless ``path`` reopens as a bigWig of ``chrom_sizes``.

    libBigWig writes its index when the file is closed and only prints a failure there.
    """
    import pyBigWig

    try:
        reader = pyBigWig.open(str(path))
    except RuntimeError:
        reader = None
    try:
        complete = reader is not None and reader.isBigWig() and reader.chroms() == dict(chrom_sizes)
    finally:
        if reader is not None:
            reader.close()
    if not complete:
        raise OSError(errno.EIO, "the bigWig file is incomplete after closing (is the disk full?)")


def write_contribution_bigwigs(
    contrib_path: str | os.PathLike, fasta: str | os.PathLike, out_dir: str | os.PathLike,
    tasks: list[str] | None = None,
) -> dict[str, Path]:
    """Write one bigWig of per-base projected contributions per task (``contrib.<task>.bw``).

    The per-base value is the contribution of the base present (the sum over A, C, G, T of
    ``contrib``). Chromosome sizes come from the FASTA; every region must lie on the FASTA's chromosomes
    (:func:`check_regions_on_chromosomes`). File names are :func:`contribution_track_paths`.

    Returns
    -------
    dict
        Task → written bigWig path.
    """
    contributions = read_contributions(contrib_path)
    contributions.check_tasks(tasks)
    sizes = read_chrom_sizes(fasta)
    check_regions_on_chromosomes(contributions.regions, sizes, fasta, contributions.path)
    paths = contribution_track_paths([task for task in contributions.tasks if not tasks or task in tasks], out_dir)
    written = {}
    for task, path in paths.items():
        per_base = contributions.read_contrib(contributions.tasks.index(task)).sum(axis=1)
        written[task] = write_bigwig(per_base, contributions.regions, sizes, path)
    return written
