"""Synthetic contribution files for testing hit calling, tracks and the report without a trained model.

Contributions are what an ideal model of the simulated genome would give: at every planted instance,
the hypothetical contribution of each base is the planted motif's logo height (probability times
information content, read on the instance's strand) scaled by how good the instance is; elsewhere
Laplace noise. Each task sees the instances of its own motif, and those of the other motifs at
``leakage`` times their strength, as multi-task models share features.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from genomatt.genome import load_regions
from genomatt.motifs.formats import Motif, read_meme, reverse_complement_matrix
from genomatt.simulate import SimulatedGenome, task_name
from genomatt.store import write_store


def logo_heights(motif: Motif) -> np.ndarray:
    """``(4, W)`` probabilities times per-position information content (bits)."""
    probabilities = motif.probabilities
    entropy = -(probabilities * np.log2(np.clip(probabilities, 1e-12, 1))).sum(axis=0)
    return probabilities * (2 - entropy)


def synthetic_contributions(
    genome: SimulatedGenome, out: str | Path, include_negatives: bool = True, noise: float = 0.03,
    leakage: float = 0.25, seed: int = 0,
) -> Path:
    """Write a ``contrib.h5`` (schema of ``genomatt attribute``) for the regions of a simulated genome.

    Parameters
    ----------
    genome
        A genome written by :func:`genomatt.simulate.simulate_genome`.
    out
        Output HDF5 path.
    include_negatives
        Also explain the background regions (which hold no planted instance).
    noise
        Scale of the Laplace background of the hypothetical contributions.
    leakage
        Strength of other motifs' instances in a task, relative to their own task.
    seed
        Seed of the noise and of the per-instance scale.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    rng = np.random.default_rng(seed)
    beds = [pd.read_csv(genome.regions_bed, sep="\t", header=None).iloc[:, :4]]
    if include_negatives:
        beds.append(pd.read_csv(genome.negatives_bed, sep="\t", header=None).iloc[:, :4])
    table = pd.concat(beds, ignore_index=True)
    table.columns = ["chrom", "start", "end", "name"]
    regions, onehot = load_regions(genome.fasta, table, progress=False)
    motifs = read_meme(genome.motifs_meme)
    tasks = [task_name(motif) for motif in motifs]
    heights = {task: logo_heights(motif) for task, motif in zip(tasks, motifs)}
    n, _, length = onehot.shape
    hypothetical = rng.laplace(0, noise, (n, len(tasks), 4, length)).astype(np.float32)
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    row_of = {name: index for index, name in enumerate(regions["name"])}
    best_score = truth.groupby("task")["score"].transform("max")
    for site, relative in zip(truth.itertuples(index=False), (truth["score"] / best_score).to_numpy()):
        row = row_of[site.region]
        offset = site.start - int(regions.at[row, "start"])
        matrix = heights[site.task] if site.strand == "+" else reverse_complement_matrix(heights[site.task])
        scale = float(np.clip(relative, 0.2, 1.0) * rng.uniform(0.7, 1.3))
        strength = np.where(np.array(tasks) == site.task, 1.0, leakage)
        hypothetical[row, :, :, offset : offset + matrix.shape[1]] += (strength * scale)[:, None, None] * matrix
    contrib = onehot[:, None] * hypothetical
    delta = np.abs(rng.normal(0, 1e-4, (n, len(tasks)))).astype(np.float32)
    prediction = contrib.sum(axis=(2, 3)).astype(np.float32)
    provenance = {"command": "synthetic", "method": "deeplift", "rule": "rescale", "n_references": 10,
                  "seed": seed, "model": "synthetic", "model_sha256": "0" * 64,
                  "note": json.dumps({"noise": noise, "leakage": leakage})}
    write_store(out, regions, {"onehot": onehot, "hypothetical": hypothetical, "contrib": contrib,
                               "delta": delta, "prediction": prediction},
                kind="contributions", provenance=provenance, attrs={"tasks": tasks})
    return Path(out)


def planted_motifs_h5(genome: SimulatedGenome, out: str | Path, n_motifs: int | None = None,
                      provenance: dict | None = None) -> Path:
    """Write a ``motifs.h5`` whose motifs are the planted motifs, as discovery would find them.

    Each motif ``<task>.pos.0`` has the planted motif's logo heights as CWM, a mean-centred copy as
    hypothetical CWM, its probabilities as PWM, and a best known-motif match naming the planted motif.
    ``n_motifs`` keeps the first motifs only (0 gives a file with no motifs); ``provenance`` is added to the
    file's.
    """
    from genomatt.motifs.discovery import MOTIF_SEQLET_COLUMNS, DiscoveredMotif
    from genomatt.motifs.seqlets import CALLED_SEQLET_COLUMNS
    from genomatt.motifs.store import write_motifs

    motifs = []
    for index, motif in enumerate(read_meme(genome.motifs_meme)[:n_motifs]):
        heights = logo_heights(motif).astype(np.float32)
        task = task_name(motif)
        motifs.append(DiscoveredMotif(
            name=f"{task}.pos.0", task=task, sign="pos", cwm=heights,
            hypothetical_cwm=(heights - heights.mean(axis=0)).astype(np.float32),
            pwm=motif.probabilities.astype(np.float32), n_seqlets=100 - 10 * index, trim_start=0,
            trim_end=motif.width, matches=[{"id": motif.id, "name": motif.name, "p": 1e-7, "q": 1e-5}]))
    return write_motifs(out, motifs, pd.DataFrame(columns=list(MOTIF_SEQLET_COLUMNS)),
                        pd.DataFrame(columns=list(CALLED_SEQLET_COLUMNS)),
                        {"command": "synthetic", **(provenance or {})})
