"""Benchmark: motif hits against the truth table of the simulated genome, next to Fi-NeMo and FIMO.

The methods run in the same process on the same inputs:

- genomatt ``call_hits_in_store`` (greedy non-negative matching pursuit of CWMs on contributions), with the
  default ``HitParameters``, and again without the check of a hit's sequence against the motif's PWM
  (``min_sequence_quantile=0``) to show what that check does;
- Fi-NeMo ``hitcaller.fit_contribs`` (non-negative lasso of CWMs on contributions), its defaults
  (lambda 0.7, trim threshold 0.3, projected contributions and CWMs), on the same CWMs;
- FIMO-style sequence scanning (``memelite.fimo``, p < 1e-4, both strands) of the motifs' PWMs
  (trimmed as in ``motifs.meme``).

genomatt and Fi-NeMo scan the contributions ``genomatt hits`` scans: ``/hit_contrib`` where the file has
them (a model with a global max pool explained under Max SHAP for hits), else ``/contrib``; the methods
``genomatt-contrib`` and ``finemo-contrib`` (not run by default) scan ``/contrib``, the contributions
motifs were discovered in.

Each planted instance is counted once: a hit is scored against the nearest planted instance of the same
motif (centres within 5 bp, or, by the second rule, the hit's centre inside the instance) and the hit
nearest an instance's centre is its true positive; further hits on an instance are false positives
(duplicates). Motifs map to planted motifs by name for a MEME file of the planted motifs, or through their
best known-motif match for a ``motifs.h5`` (the planted matrix or one of its TF family, q < 0.05); hits
of motifs that map to no planted motif are counted apart. Precision is over hits, recall over the
planted instances lying inside the regions; recall is also given apart for instances alone in their region
and for those beside another instance of the same motif (a model that pools with a global max credits one
of two such instances, see docs/models.md).

Run on real pipeline outputs (``--max-regions N``: every method on the same N regions drawn at random;
``--task-regions tasks.bed``: every method scans a task's motifs in the regions positive for the task,
as ``genomatt hits --task-regions`` does)::

    .venv/bin/python bench/hits.py --contrib contrib.h5 --motifs motifs.h5 --truth truth.tsv \
        [--task-regions tasks.bed] [--max-regions 500]

or on synthetic contributions of a simulated genome (no model needed; each task's motifs scanned in its
regions)::

    .venv/bin/python bench/hits.py --synthetic /tmp/bench_hits [--n-positives 2000 --n-negatives 1000] \
        [--width 1000] [--motif-ids MA0080 MA0081 MA1929]

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from planted import planted_matrix

from genomatt.contributions import read_contributions
from genomatt.errors import MotifError
from genomatt.motifs.cwm_motifs import read_cwm_motifs
from genomatt.motifs.formats import CwmMotif, read_meme
from genomatt.motifs.hit_parameters import HitParameters
from genomatt.motifs.hits import call_hits_in_store
from genomatt.motifs.jaspar import DEFAULT_RELEASE
from genomatt.motifs.store import read_motifs
from genomatt.motifs.trimming import trim_bounds
from genomatt.store import h5_member, list_arrays, read_array, read_attrs, read_regions, write_store
from genomatt.task_regions import read_task_regions, task_region_rows

MAX_DISTANCE = 5
FIMO_THRESHOLD = 1e-4
# Fi-NeMo's own defaults (its call-hits options), whatever genomatt's are.
FINEMO_LAMBDA = 0.7
FINEMO_TRIM = 0.3


def file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def planted_name_of(motifs_path: Path, motifs: list[CwmMotif], truth: pd.DataFrame) -> dict[str, str | None]:
    """Map each motif to a planted motif name (None when it stands for none).

    Motifs of a MEME file of the planted motifs map by name; discovered motifs of a ``motifs.h5`` through
    their best known-motif match (the planted matrix or one of its TF family, q < 0.05).
    """
    names = truth.drop_duplicates("motif_id").set_index("motif_id")["motif_name"].to_dict()
    own = truth.drop_duplicates("task").set_index("task")["motif_id"].to_dict()
    if not h5py.is_hdf5(motifs_path):
        by_key = {file_safe(name).upper(): name for name in names.values()}
        return {motif.name: by_key.get(file_safe(motif.name).upper()) for motif in motifs}
    mapping = {}
    with h5py.File(motifs_path, "r") as handle:
        for motif in motifs:
            matches = json.loads(h5_member(handle["motifs"], motif.name).attrs.get("matches", "[]"))
            matrix_id = planted_matrix(matches, names, DEFAULT_RELEASE, own.get(motif.task))
            mapping[motif.name] = names[matrix_id] if matrix_id else None
    return mapping


def read_pwms(motifs_path: Path, motifs: list[CwmMotif]) -> dict[str, np.ndarray]:
    """Position probability matrices ``(4, W)`` for FIMO: a ``motifs.h5`` motif's PWM trimmed as in
    ``motifs.meme`` (the matrices matched against JASPAR), a MEME file's motifs as they are."""
    if h5py.is_hdf5(motifs_path):
        return {motif.name: motif.trimmed_motif().probabilities.astype(np.float64)
                for motif in read_motifs(motifs_path)[0]}
    return {(motif.name or motif.id): motif.probabilities for motif in read_meme(motifs_path)}


def _nearest_site(hits: pd.DataFrame, truth: pd.DataFrame, rule: str) -> np.ndarray:
    """Row of ``truth`` each hit is scored against (-1 for none): the nearest planted instance of the same
    motif whose centre lies within ``MAX_DISTANCE`` bp of the hit's (``rule="distance"``) or that holds the
    hit's centre (``rule="inside"``)."""
    centre = (hits["start"].to_numpy() + hits["end"].to_numpy()) / 2
    site_start, site_end = truth["start"].to_numpy(), truth["end"].to_numpy()
    site_centre = (site_start + site_end) / 2
    matched = np.full(len(hits), -1, dtype=np.int64)
    hit_chrom, hit_name = hits["chr"].to_numpy(), hits["planted"].to_numpy()
    for (chrom, name), site_rows in truth.groupby(["chrom", "motif_name"]).groups.items():
        hit_rows = np.flatnonzero((hit_chrom == chrom) & (hit_name == name))
        if not hit_rows.size:
            continue
        site_rows = np.asarray(site_rows)
        order = site_rows[np.argsort(site_centre[site_rows])]
        sorted_centres = site_centre[order]
        # Sites near a hit: centres within the reach of the longest site of the group.
        reach = max(MAX_DISTANCE, float((site_end[order] - site_start[order]).max()))
        low = np.searchsorted(sorted_centres, centre[hit_rows] - reach, side="left")
        high = np.searchsorted(sorted_centres, centre[hit_rows] + reach, side="right")
        for row, first, last in zip(hit_rows, low, high):
            near = order[first:last]
            if rule == "distance":
                near = near[np.abs(site_centre[near] - centre[row]) <= MAX_DISTANCE]
            else:
                near = near[(site_start[near] <= centre[row]) & (centre[row] < site_end[near])]
            if near.size:
                matched[row] = near[np.argmin(np.abs(site_centre[near] - centre[row]))]
    return matched


def evaluate(hits: pd.DataFrame, truth: pd.DataFrame, mapping: dict[str, str | None], rule: str = "distance") -> dict:
    """Precision, recall and F1 of hits (``chr, start, end, motif_name``) against the truth table.

    Each planted instance is counted once: of the hits scored against one instance, the one nearest its
    centre is a true positive and the others are false positives (duplicates). ``rule`` is ``distance``
    (hit centre within 5 bp of the instance's centre) or ``inside`` (hit centre inside the instance).
    """
    planted = hits["motif_name"].map(mapping)
    unmapped = int(planted.isna().sum())
    hits = hits.assign(planted=planted)[planted.notna()].reset_index(drop=True)
    matched = _nearest_site(hits, truth, rule)
    centre = (hits["start"].to_numpy() + hits["end"].to_numpy()) / 2
    site_centre = ((truth["start"] + truth["end"]) / 2).to_numpy()
    distance = np.where(matched >= 0, np.abs(centre - site_centre[np.maximum(matched, 0)]), np.inf)
    # The hit nearest each instance's centre claims it; ties go to the first hit.
    by_distance = np.lexsort((np.arange(len(hits)), distance))
    claimed = np.zeros(len(truth), dtype=bool)
    true_positive = np.zeros(len(hits), dtype=bool)
    for row in by_distance:
        if matched[row] >= 0 and not claimed[matched[row]]:
            claimed[matched[row]] = true_positive[row] = True
    duplicates = int(((matched >= 0) & ~true_positive).sum())
    tp = int(true_positive.sum())
    precision = tp / len(hits) if len(hits) else float("nan")
    recall = float(claimed.mean()) if len(truth) else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    # An instance is "shared" when its region holds another planted instance of the same motif.
    shared = (truth.groupby(["region", "motif_name"])["start"].transform("size") > 1).to_numpy()
    per_motif = {}
    for name in sorted(truth["motif_name"].unique()):
        mine = hits["planted"].to_numpy() == name
        sites = truth["motif_name"].to_numpy() == name
        p = true_positive[mine].mean() if mine.any() else float("nan")
        r = claimed[sites].mean()
        alone, beside = claimed[sites & ~shared], claimed[sites & shared]
        per_motif[name] = {"hits": int(mine.sum()), "precision": p, "recall": r,
                           "recall_alone": alone.mean() if alone.size else float("nan"),
                           "recall_shared": beside.mean() if beside.size else float("nan"),
                           "n_alone": int(alone.size), "n_shared": int(beside.size)}
    return {"hits": len(hits), "unmapped": unmapped, "tp": tp, "duplicates": duplicates, "precision": precision,
            "recall": recall, "f1": f1, "per_motif": per_motif}


def run_genomatt(contrib_path: Path, motifs: list[CwmMotif], task_rows: dict | None,
                 parameters: HitParameters, hit_contrib: bool = True) -> pd.DataFrame:
    return call_hits_in_store(contrib_path, motifs, parameters, task_rows=task_rows, device="cpu",
                              hit_contrib=hit_contrib).hits


def finemo_cwms(motifs: list[CwmMotif]) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str, int, int]]]:
    """Fi-NeMo's motif preparation (unit norm, both strands, trim mask), padded to one width."""
    width = max(motif.cwm.shape[1] for motif in motifs)
    cwms = np.zeros((2 * len(motifs), 4, width), dtype=np.float32)
    masks = np.zeros((2 * len(motifs), width), dtype=np.int8)
    info = []
    for index, motif in enumerate(motifs):
        w = motif.cwm.shape[1]
        forward = motif.cwm / np.sqrt((motif.cwm**2).sum())
        start, end = trim_bounds(forward, FINEMO_TRIM)
        cwms[2 * index, :, :w] = forward
        cwms[2 * index + 1, :, :w] = forward[::-1, ::-1]
        masks[2 * index, start:end] = 1
        masks[2 * index + 1, w - end : w - start] = 1
        info += [(motif.name, "+", start, end), (motif.name, "-", w - end, w - start)]
    return cwms, masks, info


def run_finemo(contrib_path: Path, motifs: list[CwmMotif], task_rows: dict | None,
               hit_contrib: bool = True) -> pd.DataFrame:
    from finemo import hitcaller

    contributions = read_contributions(contrib_path)
    array = contributions.hit_array if hit_contrib else "contrib"
    regions = contributions.regions
    tables = []
    onehot = contributions.read_onehot().astype(np.int8)
    for index, task in enumerate(contributions.tasks):
        task_motifs = [motif for motif in motifs if motif.task in (None, task)]
        if not task_motifs:
            continue
        cwms, masks, info = finemo_cwms(task_motifs)
        rows = np.arange(len(regions)) if task_rows is None else task_rows[task]
        if not len(rows):
            continue
        contrib = np.ascontiguousarray(contributions.read_contrib(index, array=array)[rows])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hits, _ = hitcaller.fit_contribs(
                cwms, contrib, np.ascontiguousarray(onehot[rows]), masks, False,
                np.full(len(cwms), FINEMO_LAMBDA, dtype=np.float32), device=torch.device("cpu"))
        hits = pd.DataFrame({column: hits[column].to_numpy() for column in hits.columns})
        motif_id = hits["motif_id"].to_numpy()
        region = rows[hits["peak_id"].to_numpy(np.int64)]
        trim_start = np.array([info[m][2] for m in motif_id], dtype=np.int64)
        trim_end = np.array([info[m][3] for m in motif_id], dtype=np.int64)
        start = regions["start"].to_numpy()[region] + hits["hit_start"].to_numpy() + trim_start
        tables.append(pd.DataFrame({
            "chr": regions["chrom"].to_numpy()[region], "start": start, "end": start + trim_end - trim_start,
            "motif_name": [info[m][0] for m in motif_id], "strand": [info[m][1] for m in motif_id],
        }))
    empty = pd.DataFrame(columns=["chr", "start", "end", "motif_name"])
    return pd.concat(tables, ignore_index=True) if tables else empty


def run_fimo(contrib_path: Path, pwms: dict[str, np.ndarray], motif_tasks: dict[str, str | None],
             task_rows: dict | None) -> pd.DataFrame:
    from memelite import fimo

    contributions = read_contributions(contrib_path)
    regions, onehot = contributions.regions, contributions.read_onehot()
    results = fimo(pwms, onehot, threshold=FIMO_THRESHOLD)
    tables = []
    for name, table in zip(pwms, results):
        if task_rows is not None and motif_tasks.get(name) is not None:
            table = table[np.isin(table["sequence_name"].to_numpy(np.int64), task_rows[motif_tasks[name]])]
        region = table["sequence_name"].to_numpy(np.int64)
        start = regions["start"].to_numpy()[region] + table["start"].to_numpy(np.int64)
        tables.append(pd.DataFrame({"chr": regions["chrom"].to_numpy()[region], "start": start,
                                    "end": regions["start"].to_numpy()[region] + table["end"].to_numpy(np.int64),
                                    "motif_name": name, "strand": table["strand"].to_numpy()}))
    return pd.concat(tables, ignore_index=True)


def timed(function, *args) -> tuple[object, float]:
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def prepare_synthetic(folder: Path, positives: int, negatives: int, width: int = 200,
                      motif_ids: list[str] | None = None) -> tuple[Path, Path, Path]:
    """Simulate a genome (default settings but the region counts, width and planted motifs) into ``folder``
    and write synthetic contributions for it and a ``motifs.h5`` of the planted motifs, one per task (as
    discovery would find them)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from synthetic import planted_motifs_h5, synthetic_contributions

    from genomatt.simulate import simulate_genome
    from genomatt.simulation_settings import DEFAULT_MOTIFS, SimulationSettings

    settings = SimulationSettings(n_positive_regions=positives, n_negative_regions=negatives, region_width=width,
                                  motifs=tuple(motif_ids or DEFAULT_MOTIFS),
                                  chromosome_length=max(500_000, 2 * width * (positives + negatives) // 5))
    genome = simulate_genome(folder, settings)
    contrib = synthetic_contributions(genome, folder / "contrib.h5")
    return contrib, planted_motifs_h5(genome, folder / "motifs.h5"), genome.truth_tsv


def subset_store(contrib_path: Path, n_regions: int, folder: Path, seed: int = 0) -> Path:
    """A copy of ``contrib_path`` with ``n_regions`` regions drawn at random (seeded), in file order."""
    regions = read_regions(contrib_path)
    rows = np.sort(np.random.default_rng(seed).choice(len(regions), size=min(n_regions, len(regions)), replace=False))
    attrs = read_attrs(contrib_path)
    arrays = {name: read_array(contrib_path, name, rows) for name in list_arrays(contrib_path)}
    extra = {key: value for key, value in attrs.items() if key not in ("genomatt_version", "created_utc", "kind",
                                                                          "provenance")}
    return write_store(folder / "contrib.subset.h5", regions.iloc[rows].reset_index(drop=True), arrays,
                       kind=attrs["kind"], provenance=attrs["provenance"], attrs=extra)


RULES = {"distance": "±5 bp", "inside": "centre inside"}
METHODS = ("genomatt", "genomatt-no-sequence-check", "genomatt-contrib", "fimo", "finemo", "finemo-contrib")
DEFAULT_METHODS = ("genomatt", "genomatt-no-sequence-check", "fimo", "finemo")


def hit_parameters(assignments: list[str], parser: argparse.ArgumentParser) -> HitParameters:
    """``HitParameters`` with the ``KEY=VALUE`` assignments of ``--set`` (each value cast to the field's type)."""
    defaults = HitParameters()
    overrides = {}
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        if not hasattr(defaults, key) or not value:
            parser.error(f"--set {assignment}: expected KEY=VALUE with KEY one of {list(defaults.settings())}")
        try:
            overrides[key] = type(getattr(defaults, key))(value)
        except ValueError:
            kind = "an integer" if isinstance(getattr(defaults, key), int) else "a number"
            parser.error(f"--set {assignment}: {key} must be {kind}")
    try:
        return dataclasses.replace(defaults, **overrides)
    except MotifError as error:
        parser.error(f"--set: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contrib", type=Path)
    parser.add_argument("--motifs", type=Path, help="motifs.h5 or a MEME file")
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--synthetic", type=Path, help="folder for a simulated genome with synthetic contributions")
    parser.add_argument("--n-positives", type=int, default=2000, help="--synthetic: motif-bearing regions")
    parser.add_argument("--n-negatives", type=int, default=1000, help="--synthetic: background regions")
    parser.add_argument("--width", type=int, default=200, help="--synthetic: region width (bp)")
    parser.add_argument("--motif-ids", nargs="+", help="--synthetic: JASPAR matrix IDs to plant (default: the demo's)")
    parser.add_argument("--task-regions", type=Path,
                        help="tasks.bed of the simulated genome: every method scans a task's motifs in its regions")
    parser.add_argument("--max-regions", type=int, help="run every method on this many regions drawn at random")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(DEFAULT_METHODS),
                        help=f"methods to run (default: {' '.join(DEFAULT_METHODS)})")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="genomatt hits parameters other than the defaults, e.g. min_strength=0.2")
    args = parser.parse_args()
    if args.synthetic:
        args.contrib, args.motifs, args.truth = prepare_synthetic(args.synthetic, args.n_positives, args.n_negatives,
                                                                  args.width, args.motif_ids)
    elif not (args.contrib and args.motifs and args.truth):
        parser.error("give --contrib, --motifs and --truth, or --synthetic")
    if args.max_regions:
        args.contrib = subset_store(args.contrib, args.max_regions, Path(tempfile.mkdtemp(prefix="bench_hits_")))
    contributions = read_contributions(args.contrib)
    tasks, regions = contributions.tasks, contributions.regions
    truth = pd.read_csv(args.truth, sep="\t")
    inside = truth.merge(regions[["chrom", "start", "end", "name"]].rename(
        columns={"start": "region_start", "end": "region_end", "name": "region"}), on=["chrom", "region"], how="left")
    inside = (inside["start"] >= inside["region_start"]) & (inside["end"] <= inside["region_end"])
    truth = truth[inside.to_numpy()].reset_index(drop=True)
    motifs = read_cwm_motifs(args.motifs)
    task_rows = None
    if args.task_regions:
        task_rows = task_region_rows(regions, tasks, read_task_regions([args.task_regions], "name"))
    mapping = planted_name_of(args.motifs, motifs, truth)
    pwms = read_pwms(args.motifs, motifs)

    print(f"{len(regions)} regions of {int((regions['end'] - regions['start']).iloc[0])} bp, {len(tasks)} tasks, "
          f"{len(motifs)} motifs, {len(truth)} planted instances; {platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}\n")
    parameters = hit_parameters(args.set, parser)
    print(f"genomatt hits parameters: {parameters.settings()}\n")
    print("Each planted instance counted once (further hits on it are false positives). Precision / recall / F1 "
          "with a hit's centre within 5 bp of the instance's (±5 bp) or inside the instance (centre inside):\n")
    print("| method | hits | duplicates (±5 bp) | P ±5 bp | R ±5 bp | F1 ±5 bp | P inside | R inside | F1 inside "
          "| seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    results = {}
    motif_tasks = {motif.name: motif.task for motif in motifs}
    runs = {"genomatt": ("genomatt hits", run_genomatt, (args.contrib, motifs, task_rows, parameters)),
            "genomatt-no-sequence-check": ("genomatt hits, no sequence check", run_genomatt,
                                           (args.contrib, motifs, task_rows,
                                            dataclasses.replace(parameters, min_sequence_quantile=0.0))),
            "genomatt-contrib": ("genomatt hits on /contrib", run_genomatt,
                                 (args.contrib, motifs, task_rows, parameters, False)),
            "fimo": ("FIMO (memelite, p < 1e-4)", run_fimo, (args.contrib, pwms, motif_tasks, task_rows)),
            "finemo": ("Fi-NeMo 0.41 (lambda 0.7)", run_finemo, (args.contrib, motifs, task_rows)),
            "finemo-contrib": ("Fi-NeMo 0.41 (lambda 0.7) on /contrib", run_finemo,
                               (args.contrib, motifs, task_rows, False))}
    for name, function, inputs in (runs[method] for method in args.methods):
        hits, seconds = timed(function, *inputs)
        results[name] = {rule: evaluate(hits, truth, mapping, rule) for rule in RULES}
        near, inside_site = results[name]["distance"], results[name]["inside"]
        extra = f" (+{near['unmapped']} of unmapped motifs)" if near["unmapped"] else ""
        print(f"| {name} | {near['hits']}{extra} | {near['duplicates']} | {near['precision']:.3f} | "
              f"{near['recall']:.3f} | {near['f1']:.3f} | {inside_site['precision']:.3f} | "
              f"{inside_site['recall']:.3f} | {inside_site['f1']:.3f} | {seconds:.1f} |", flush=True)
    print("\nPer motif (precision / recall, each instance counted once):\n")
    names = list(next(iter(results.values()))["distance"]["per_motif"])
    print("| method | rule | " + " | ".join(names) + " |")
    print("|---|---|" + "---:|" * len(names))
    for name, by_rule in results.items():
        for rule, label in RULES.items():
            per_motif = by_rule[rule]["per_motif"]
            cells = [f"{per_motif[m]['precision']:.2f} / {per_motif[m]['recall']:.2f}" for m in names]
            print(f"| {name} | {label} | " + " | ".join(cells) + " |")
    print("\nRecall per motif (±5 bp) of instances alone in their region / beside another instance of the same "
          "motif in the region (instances):\n")
    print("| method | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for name, by_rule in results.items():
        per_motif = by_rule["distance"]["per_motif"]
        cells = [f"{per_motif[m]['recall_alone']:.2f} / {per_motif[m]['recall_shared']:.2f} "
                 f"({per_motif[m]['n_alone']} / {per_motif[m]['n_shared']})" for m in names]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
