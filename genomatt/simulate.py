"""The embedded default: a synthetic genome with planted JASPAR motif instances and its truth table.

This is the simulated-genomics setting of the DeepLIFT paper made concrete. The background is a
first-order Markov chain with human-like dinucleotide frequencies (about 41% GC, CpG depleted). Regions
of fixed width are laid out on the chromosomes; each motif-bearing region receives instances of a random
subset of the motifs, each instance sampled base by base from the motif's position probability matrix
and placed on a random strand without overlapping other instances. Each motif is one task: a region is
positive for the task if it contains the motif. Background regions without planted motifs are written as
negatives.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from genomatt import ALPHABET, __version__
from genomatt.atomic import atomic_path, make_output_folder
from genomatt.errors import ConfigError
from genomatt.motifs.formats import Motif, reverse_complement_matrix, write_meme
from genomatt.motifs.jaspar import resolve_motifs
from genomatt.simulation_settings import SimulationSettings

log = logging.getLogger(__name__)


# P(next base | current base), rows and columns in ACGT order: human-like, CpG depleted, ~41% GC.
BACKGROUND_TRANSITIONS = np.array(
    [
        [0.33, 0.17, 0.24, 0.26],
        [0.35, 0.26, 0.05, 0.34],
        [0.29, 0.21, 0.26, 0.24],
        [0.22, 0.20, 0.25, 0.33],
    ]
)
FASTA_LINE_WIDTH = 60


@dataclass
class SimulatedGenome:
    """Paths and summary of a simulated genome written by :func:`simulate_genome`."""

    fasta: Path
    regions_bed: Path
    negatives_bed: Path
    task_beds: dict[str, Path]
    tasks_bed: Path
    truth_tsv: Path
    motifs_meme: Path
    manifest: Path
    settings: SimulationSettings = field(default_factory=SimulationSettings)


def task_name(motif: Motif) -> str:
    """File-safe task name of a motif (``TAL1::TCF3`` → ``TAL1_TCF3``)."""
    return _file_safe(motif.name) or _file_safe(motif.id)


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def task_names(motifs: list[Motif]) -> list[str]:
    """The task of each motif: :func:`task_name`, followed by the matrix ID where names repeat.

    JASPAR has several matrices of one factor (CTCF: MA0139, MA1929, MA1930); planted together, each is
    its own task (``CTCF_MA0139_2``, ``CTCF_MA1929_1``).

    Raises
    ------
    ConfigError
        If one matrix is given twice.
    """
    ids = [motif.id for motif in motifs]
    repeated = sorted({f"{motif.id} ({motif.name})" for motif in motifs if ids.count(motif.id) > 1})
    if repeated:
        raise ConfigError(f"simulation: motifs {', '.join(repeated)} are given more than once; give each matrix once")
    names = [task_name(motif) for motif in motifs]
    return [f"{name}_{_file_safe(motif.id)}" if names.count(name) > 1 else name for name, motif in zip(names, motifs)]


@numba.njit(cache=True)
def _markov_chain(uniforms: np.ndarray, cumulative: np.ndarray, first: int) -> np.ndarray:
    codes = np.empty(uniforms.size, dtype=np.uint8)
    state = first
    for index in range(uniforms.size):
        row = cumulative[state]
        state = 3
        for base in range(3):
            if uniforms[index] < row[base]:
                state = base
                break
        codes[index] = state
    return codes


def sample_background(length: int, rng: np.random.Generator) -> np.ndarray:
    """Background sequence codes (0..3 for A, C, G, T) of ``length`` bases from the Markov chain."""
    cumulative = np.cumsum(BACKGROUND_TRANSITIONS, axis=1)
    return _markov_chain(rng.random(length), cumulative, int(rng.integers(4)))


def sample_instance(motif: Motif, rng: np.random.Generator) -> np.ndarray:
    """Codes of one instance sampled column by column from the motif's probabilities."""
    cumulative = np.cumsum(motif.probabilities, axis=0)
    draws = rng.random(motif.width)
    return np.minimum((draws[None, :] > cumulative).sum(axis=0), 3).astype(np.uint8)


def _choose_tiles(settings: SimulationSettings, rng: np.random.Generator) -> pd.DataFrame:
    """Non-overlapping region slots spread over the chromosomes, separated by at least one width."""
    width = settings.region_width
    tiles_per_chromosome = settings.chromosome_length // (2 * width)
    needed = settings.n_positive_regions + settings.n_negative_regions
    available = tiles_per_chromosome * settings.n_chromosomes
    if needed > available:
        raise ConfigError(
            f"simulation: {needed} regions of {width} bp do not fit on {settings.n_chromosomes} chromosomes of "
            f"{settings.chromosome_length} bp (at most {available}); lengthen the chromosomes or ask for fewer regions"
        )
    chosen = np.sort(rng.choice(available, size=needed, replace=False))
    chrom_index = chosen // tiles_per_chromosome
    starts = (chosen % tiles_per_chromosome) * 2 * width + width // 2
    order = rng.permutation(needed)
    return pd.DataFrame(
        {
            "chrom": [f"chr{i + 1}" for i in chrom_index],
            "start": starts.astype(np.int64),
            "end": (starts + width).astype(np.int64),
            "positive": order < settings.n_positive_regions,
        }
    )


def _plant_region(
    sequence: np.ndarray, offset: int, motifs: list[Motif], settings: SimulationSettings, rng: np.random.Generator
) -> list[dict]:
    """Plant motif instances into ``sequence[offset:offset+width]``; return their truth records."""
    while True:
        present = rng.random(len(motifs)) < settings.motif_probability
        if present.any():
            break
    instances = []
    for motif_index in np.flatnonzero(present):
        copies = 1 + int(rng.random() < settings.second_instance_probability)
        instances.extend([motif_index] * copies)
    occupied = np.zeros(settings.region_width, dtype=bool)
    records = []
    for motif_index in rng.permutation(instances):
        motif = motifs[motif_index]
        low, high = settings.edge_margin, settings.region_width - settings.edge_margin - motif.width
        free = [p for p in range(low, high + 1) if not occupied[p : p + motif.width].any()]
        if not free:
            continue
        position = int(rng.choice(free))
        occupied[position : position + motif.width] = True
        strand = "+" if rng.random() < 0.5 else "-"
        codes = sample_instance(motif, rng)
        if strand == "-":
            codes = (3 - codes)[::-1]
        sequence[offset + position : offset + position + motif.width] = codes
        records.append({"offset": position, "width": motif.width, "strand": strand, "motif": int(motif_index)})
    return records


def instance_score(codes: np.ndarray, motif: Motif, strand: str) -> float:
    """Log2-odds score (uniform background) of an instance's codes under its motif, read on its strand."""
    matrix = motif.log_odds() if strand == "+" else reverse_complement_matrix(motif.log_odds())
    return float(matrix[codes, np.arange(codes.size)].sum())


def _write_fasta(chromosomes: dict[str, np.ndarray], path: Path) -> None:
    """Write the genome FASTA and its ``.fai`` index, both atomically."""
    letters = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    index_lines = []
    offset = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        for name, codes in chromosomes.items():
            header = f">{name}\n".encode()
            handle.write(header)
            offset += len(header)
            text = letters[codes].tobytes()
            lines = b"\n".join(text[i : i + FASTA_LINE_WIDTH] for i in range(0, len(text), FASTA_LINE_WIDTH)) + b"\n"
            handle.write(lines)
            index_lines.append(f"{name}\t{codes.size}\t{offset}\t{FASTA_LINE_WIDTH}\t{FASTA_LINE_WIDTH + 1}\n")
            offset += len(lines)
    with atomic_path(f"{path}.fai") as tmp:
        tmp.write_text("".join(index_lines))


def _write_table(frame: pd.DataFrame, path: Path, header: bool) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", header=header, index=False)


def simulate_genome(out_dir: str | os.PathLike, settings: SimulationSettings | None = None) -> SimulatedGenome:
    """Write a synthetic genome with planted motifs, its region BEDs and truth table.

    Parameters
    ----------
    out_dir
        Output folder (created). Files: ``genome.fa`` (+ ``.fai``), ``regions.bed`` (all motif-bearing
        regions), ``tasks/<task>.bed`` (regions containing each motif), ``tasks.bed`` (the same as one BED4 whose
        name column is the task), ``negatives.bed`` (background regions),
        ``truth.tsv`` (every planted instance), ``motifs.meme`` (the planted motifs), ``manifest.json``.
    settings
        Simulation parameters; the defaults give the embedded demo genome. Deterministic for a seed.

    Returns
    -------
    SimulatedGenome
        Paths of everything written.
    """
    settings = settings or SimulationSettings()
    for name, least in (("n_chromosomes", 1), ("chromosome_length", 1), ("n_positive_regions", 1),
                        ("n_negative_regions", 0)):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"simulation: {name} must be an integer of at least {least}, got {value!r}")
    if settings.region_width < 2 * settings.edge_margin + 1:
        raise ConfigError(f"simulation: region_width {settings.region_width} is too small for edge margins")
    out = Path(out_dir)
    make_output_folder(out)
    motifs = resolve_motifs(list(settings.motifs), settings.jaspar_release)
    widest = max(motif.width for motif in motifs)
    if widest > settings.region_width - 2 * settings.edge_margin:
        raise ConfigError(f"simulation: a motif of {widest} bp does not fit in regions of {settings.region_width} bp")
    tasks = task_names(motifs)
    rng = np.random.default_rng(settings.seed)
    log.info("simulating %d chromosomes of %d bp", settings.n_chromosomes, settings.chromosome_length)
    chromosomes = {
        f"chr{i + 1}": sample_background(settings.chromosome_length, rng) for i in range(settings.n_chromosomes)
    }
    tiles = _choose_tiles(settings, rng)
    truth, regions, negatives = [], [], []
    for tile in tiles.itertuples(index=False):
        if not tile.positive:
            negatives.append((tile.chrom, tile.start, tile.end))
            continue
        name = f"region_{len(regions)}"
        records = _plant_region(chromosomes[tile.chrom], tile.start, motifs, settings, rng)
        labels = {task: 0 for task in tasks}
        for record in records:
            motif, task = motifs[record["motif"]], tasks[record["motif"]]
            start = tile.start + record["offset"]
            codes = chromosomes[tile.chrom][start : start + record["width"]]
            labels[task] = 1
            truth.append(
                {"chrom": tile.chrom, "start": start, "end": start + record["width"], "strand": record["strand"],
                 "motif_id": motif.id, "motif_name": motif.name, "task": task, "region": name,
                 "score": round(instance_score(codes, motif, record["strand"]), 4)}
            )
        regions.append({"chrom": tile.chrom, "start": tile.start, "end": tile.end, "name": name, **labels})
    region_table = pd.DataFrame(regions)
    region_table["score"] = 0
    region_table["strand"] = "."
    bed_columns = ["chrom", "start", "end", "name", "score", "strand"]
    negative_table = pd.DataFrame(negatives, columns=["chrom", "start", "end"])
    negative_table["name"] = [f"background_{i}" for i in range(len(negative_table))]
    truth_table = pd.DataFrame(truth).sort_values(["chrom", "start"]).reset_index(drop=True)

    fasta = out / "genome.fa"
    _write_fasta(chromosomes, fasta)
    ordered = region_table.sort_values(["chrom", "start"])
    _write_table(ordered[bed_columns], out / "regions.bed", header=False)
    task_beds = {}
    for task in tasks:
        task_beds[task] = out / "tasks" / f"{task}.bed"
        _write_table(ordered.loc[ordered[task] == 1, bed_columns], task_beds[task], header=False)
    labelled = pd.concat([ordered.loc[ordered[task] == 1, ["chrom", "start", "end"]].assign(task=task) for task in tasks])
    _write_table(labelled.sort_values(["chrom", "start", "task"]), out / "tasks.bed", header=False)
    _write_table(negative_table.sort_values(["chrom", "start"]), out / "negatives.bed", header=False)
    _write_table(truth_table, out / "truth.tsv", header=True)
    write_meme(motifs, out / "motifs.meme")
    manifest = {
        "genomatt_version": __version__,
        "settings": {**asdict(settings), "motifs": list(settings.motifs)},
        "tasks": {task: {"motif_id": m.id, "motif_name": m.name, "bed": f"tasks/{task}.bed",
                         "regions": int(region_table[task].sum())} for task, m in zip(tasks, motifs)},
        "n_regions": len(region_table),
        "n_negatives": len(negative_table),
        "n_instances": len(truth_table),
    }
    with atomic_path(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    log.info("planted %d instances of %d motifs in %d regions", len(truth_table), len(motifs), len(region_table))
    return SimulatedGenome(fasta, out / "regions.bed", out / "negatives.bed", task_beds, out / "tasks.bed", out / "truth.tsv",
                           out / "motifs.meme", out / "manifest.json", settings)
