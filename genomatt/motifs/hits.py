"""Hit calling over a contribution file, and the hit outputs.

:func:`call_hits_in_store` is the file driver of the algorithm (:func:`genomatt.motifs.hit_calling.call_hits`):
it reads each task's contributions from a ``contrib.h5``, scans the task's motifs in the task's regions,
places the hits in genome coordinates, and, across tasks, keeps a hit only where its site drives its own
task at least ``min_task_share`` as much as the task it drives most, each task on the scale of its own
hits (:func:`task_share`), so a task does not take the sites of factors that drive its other tasks.
:func:`write_hits` writes ``hits.tsv`` (Fi-NeMo's columns), ``hits_genomatt.tsv``, ``hits.bed``,
``hits.h5``, ``regions_qc.tsv`` and Fi-NeMo's companion files; :func:`read_hits` reads ``hits.h5``.
The parameters are a :class:`~genomatt.motifs.hit_parameters.HitParameters`.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from genomatt import __version__
from genomatt.atomic import atomic_hdf5, atomic_path
from genomatt.contributions import PER_REGION_SCORES, Contributions, read_contributions
from genomatt.errors import MotifError, StoreError, missing_file
from genomatt.intervals import genome_bases
from genomatt.motifs.finemo import finemo_coefficient, write_finemo_motifs
from genomatt.motifs.formats import CwmMotif
from genomatt.motifs.hit_calling import (admits_one_sequence, call_hits, contribution_scale, empty_hits,
                                         empty_thresholds, motif_span)
from genomatt.motifs.hit_parameters import DEFAULT_BATCH_SIZE, HitParameters
from genomatt.motifs.trimming import trim_bounds
from genomatt.progress import ProgressLog
from genomatt.store import h5_key, h5_member, read_table, write_table
from genomatt.tracks import write_hits_bed
from genomatt.task_regions import comparable_targets

log = logging.getLogger(__name__)

# Fi-NeMo's hits.tsv columns, in its order: hits.tsv holds exactly these.
FINEMO_COLUMNS = [
    "chr", "start", "end", "start_untrimmed", "end_untrimmed", "motif_name", "hit_coefficient",
    "hit_coefficient_global", "hit_similarity", "hit_correlation", "hit_importance", "hit_importance_sq",
    "strand", "peak_name", "peak_id",
]
# Ours, in hits_genomatt.tsv (row for row with hits.tsv, after the columns that identify a hit).
EXTRA_COLUMNS = ["task", "hit_amplitude", "hit_contribution"]
HIT_COLUMNS = FINEMO_COLUMNS + EXTRA_COLUMNS
EXTRA_FILE_COLUMNS = ["chr", "start", "end", "motif_name", "strand", "peak_id"] + EXTRA_COLUMNS
QC_COLUMNS = ["chrom", "start", "end", "name", "peak_id", "task", "n_hits", "contribution", "global_scale",
              "explained_fraction", "delta", "prediction"]


@dataclass
class HitCalls:
    """Hits and per-region quality control of one hit-calling run.

    Attributes
    ----------
    hits
        One row per hit, columns :data:`HIT_COLUMNS` (Fi-NeMo's ``hits.tsv`` columns, then ours).
    qc
        One row per region and task, columns :data:`QC_COLUMNS`.
    motifs
        The motifs scanned, with their trim bounds and importance thresholds (one row per motif and task).
    cwms
        Motif name → the ``(4, W)`` CWM scanned (untrimmed, as given).
    settings
        The parameters of the run (:meth:`HitParameters.settings`, as recorded in ``hits.h5``).
    contributions
        The array of the ``contrib.h5`` the hits were called in: ``contrib`` or ``hit_contrib``.
    """

    hits: pd.DataFrame
    qc: pd.DataFrame
    motifs: pd.DataFrame
    cwms: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    contributions: str = "contrib"


def _motifs_for_task(motifs: list[CwmMotif], task: str) -> list[CwmMotif]:
    return [motif for motif in motifs if motif.task in (None, task)]


def _check_finite(contrib: np.ndarray, regions: pd.DataFrame, what: str) -> None:
    """Refuse contributions ``(N, 4, L)`` holding NaN or infinite values, naming ``what`` and the first region."""
    bad = np.flatnonzero(~np.isfinite(contrib).all(axis=(1, 2)))
    if bad.size:
        row = regions.iloc[bad[0]]
        raise StoreError(f"{what} holds NaN or infinite values in {bad.size} regions (first: {row['name']} at "
                         f"{row['chrom']}:{row['start']}-{row['end']}); explain them again with genomatt attribute")


def _listed(names: list[str], shown: int = 10) -> str:
    """The first ``shown`` names, and how many more (a JASPAR file has thousands)."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _consensus_motifs(contrib: np.ndarray, onehot: np.ndarray, motifs: list[CwmMotif], thresholds: pd.DataFrame,
                      names: list[str], parameters: HitParameters, batch_size: int,
                      device: str | torch.device | None) -> list[str]:
    """Of the motifs ``names`` (none of whose candidates keeps the FDR), those whose sequence check admits only
    the best sequence of their matrix and would have hits without it (before the task-share filter): its check,
    not the data, leaves them without hits."""
    by_name = {motif.name: motif for motif in motifs}
    rows = thresholds.drop_duplicates("motif_name").set_index("motif_name")
    suspects = [by_name[name] for name in names if by_name[name].pwm is not None and admits_one_sequence(
        by_name[name].pwm[:, rows.loc[name, "trim_start"] : rows.loc[name, "trim_end"]],
        rows.loc[name, "min_sequence_score"])]
    if not suspects:
        return []
    hits, _, _ = call_hits(contrib, onehot, suspects, replace(parameters, min_sequence_quantile=0.0), batch_size,
                           device)
    return [suspects[index].name for index in sorted(set(hits["motif"]))]


def call_hits_in_store(
    contrib_path: str | os.PathLike,
    motifs: list[CwmMotif],
    parameters: HitParameters | None = None,
    tasks: list[str] | None = None,
    task_rows: Mapping[str, np.ndarray] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    hit_contrib: bool = True,
    progress: bool = True,
) -> HitCalls:
    """Call hits in every task of a ``contrib.h5`` and place them in genome coordinates.

    Each motif is scanned in the contributions of its own task (the one it was discovered in) or,
    for motifs without a task (MEME/JASPAR motifs), in every task, by :func:`call_hits` with ``parameters``
    (:class:`HitParameters`; its defaults when ``None``), ``batch_size`` and ``device``; then the hits whose
    :func:`task_share` is under ``parameters.min_task_share`` are dropped (0 keeps all). ``tasks`` restricts
    the tasks scanned, and ``task_rows`` (task → sorted rows of the regions table, e.g. from
    :func:`genomatt.task_regions.task_region_rows`) the regions scanned for each task (hits, thresholds
    and QC then cover those regions only). A task with no rows, or with no motif to scan (of its own or
    of no task), is skipped, as one left out of ``tasks``: no hit, QC or threshold row names it. The
    contributions scanned are the file's ``/hit_contrib`` where it
    has them and ``hit_contrib`` is true (a model with a global max pool explained under Max SHAP for hits,
    ``genomatt attribute --hit-max-rule``), else ``/contrib``. The regions scanned are counted in the log
    (every 30 s) and, with ``progress`` on a terminal, in a progress bar.

    Returns
    -------
    HitCalls
        Hits with Fi-NeMo's columns then ``task`` and ``hit_contribution``; per-region QC.
    """
    parameters = parameters or HitParameters()
    contributions = read_contributions(contrib_path)
    contrib_path, all_tasks, regions = contributions.path, contributions.tasks, contributions.regions
    contributions.check_tasks(tasks)
    unmatched = [m.name for m in motifs if m.task is not None and m.task not in all_tasks]
    if unmatched:
        raise MotifError(f"motifs {unmatched} belong to tasks absent from {contrib_path} (it has {all_tasks})")
    scores = {name: contributions.read_scores(name) for name in PER_REGION_SCORES}
    array = contributions.hit_array if hit_contrib else "contrib"
    if array != "contrib":
        log.info("scanning /%s: the contributions under max rule %s", array,
                 contributions.provenance.get("hit_max_rule"))
    # Each task's contribution at its typical strongest sites (contribution_scale, at the motifs' typical span), a
    # floor of its scale for the task share: a task that learned its own motif weakly, whose strongest response is
    # to another factor's sites, would otherwise take the hits of that factor's task.
    scale_width = int(np.median([np.diff(motif_span(motif.cwm, trim_bounds(motif.cwm, parameters.trim_threshold)))
                                 for motif in motifs])) if motifs else 0
    contribution_scales = {}
    scanned_tasks = []
    for task_index, task in enumerate(all_tasks):
        if tasks and task not in tasks:
            continue
        rows = np.arange(len(regions)) if task_rows is None else np.asarray(task_rows[task], dtype=np.int64)
        if not rows.size:
            log.info("task %s: no region to scan; it has no hits, QC or threshold rows", task)
        elif not _motifs_for_task(motifs, task):
            log.info("task %s: no motif to scan; it has no hits, QC or threshold rows", task)
        else:
            scanned_tasks.append((task_index, task, rows))
    # Each region of a task is scanned twice: for the thresholds, then for the hits.
    total = sum(2 * len(rows) for _, _, rows in scanned_tasks)
    progress_log = ProgressLog(total, "hits", "region scans", log)
    hit_tables, qc_tables, motif_tables = [], [], []
    with tqdm(total=total, unit="region scan", desc="hits", disable=None if progress else True) as bar:

        def advance(done: int) -> None:
            """Record ``done`` more region scans in the log and the bar."""
            bar.update(done)
            progress_log.advance_to(progress_log.done + done)

        for task_index, task, rows in scanned_tasks:
            task_motifs = _motifs_for_task(motifs, task)
            contrib, onehot = contributions.read_contrib(task_index, array=array), contributions.read_onehot()
            if task_rows is not None:
                contrib, onehot = contrib[rows], onehot[rows]
            scanned = regions.iloc[rows].reset_index(drop=True)
            _check_finite(contrib, scanned, f"{contrib_path}: /{array} of task {task}")
            if parameters.min_task_share > 0:
                contribution_scales[task] = contribution_scale(contrib, scale_width)
            hits, qc, thresholds = call_hits(contrib, onehot, task_motifs, parameters, batch_size, device,
                                             advance)
            log.info("task %s: %d hits of %d motifs in %d regions", task, len(hits), len(task_motifs), len(scanned))
            unreachable = thresholds.loc[np.isinf(thresholds["importance_threshold"]), "motif_name"].tolist()
            consensus = _consensus_motifs(contrib, onehot, task_motifs, thresholds, unreachable, parameters,
                                          batch_size, device)
            if consensus:
                log.warning("task %s: no hit of %s: the sequence check admits only the matrix's one best sequence "
                            "(columns of probability 0 and 1, a consensus?); give the matrix with pseudocounts, or "
                            "turn the check off with --min-sequence-quantile 0", task, _listed(consensus))
                unreachable = [name for name in unreachable if name not in consensus]
            if unreachable and not contrib.any():
                log.warning("task %s: its contributions are zero in all %d regions scanned (the model's output for "
                            "it does not depend on the sequence there); no hits", task, len(scanned))
            elif unreachable:
                log.warning("task %s: no hit of %s: in these %d regions no candidate keeps the false discovery rate "
                            "at %g against the permutation null; raise the FDR (--fdr, config hits.fdr) or scan more "
                            "regions", task, _listed(unreachable), len(scanned), parameters.fdr)
            # peak_id is the row of the regions table of the contribution file.
            hit_tables.append(_genome_hits(hits, scanned, task_motifs, qc, task, thresholds["cwm_scale"].to_numpy(),
                                           parameters).assign(
                peak_id=lambda table: rows[table["peak_id"].to_numpy(np.int64)]))
            qc = pd.concat([scanned[["chrom", "start", "end", "name"]], qc], axis=1)
            qc["peak_id"] = rows
            qc["task"] = task
            for name, values in scores.items():
                qc[name] = np.full(len(rows), np.nan) if values is None else values[rows, task_index]
            qc_tables.append(qc[QC_COLUMNS])
            thresholds.insert(1, "task", task)
            motif_tables.append(thresholds)
    hits = (pd.concat(hit_tables, ignore_index=True) if hit_tables
            else _genome_hits(empty_hits(), regions, [], None, "", np.array([]), parameters))
    qc = pd.concat(qc_tables, ignore_index=True) if qc_tables else pd.DataFrame(columns=QC_COLUMNS)
    if parameters.min_task_share > 0 and len(hits):
        taskless = {task for _, task, _ in scanned_tasks
                    if any(motif.task is None for motif in _motifs_for_task(motifs, task))}
        share = task_share(contributions, hits, pd.concat(motif_tables, ignore_index=True), array,
                           contribution_scales, taskless)
        kept = share >= parameters.min_task_share
        log.info("%d of %d hits dropped: their site contributes more, for its task's scale, to another task "
                 "(task share under %g)", int((~kept).sum()), len(hits), parameters.min_task_share)
        hits = hits[kept].reset_index(drop=True)
        counts = hits.groupby(["peak_id", "task"]).size()
        qc["n_hits"] = [int(counts.get((row, task), 0)) for row, task in zip(qc["peak_id"], qc["task"])]
    chrom_order = {chrom: index for index, chrom in enumerate(pd.unique(regions["chrom"]))}
    hits = hits.sort_values(["chr", "start", "motif_name", "strand"], key=lambda c: c.map(chrom_order)
                            if c.name == "chr" else c, kind="stable").reset_index(drop=True)
    motif_table = pd.concat(motif_tables, ignore_index=True) if motif_tables else empty_thresholds()
    return HitCalls(hits, qc, motif_table, {motif.name: motif.cwm for motif in motifs}, parameters.settings(), array)


def task_share(contributions: Contributions, hits: pd.DataFrame, motifs: pd.DataFrame,
               array: str = "contrib", scales: Mapping[str, float] | None = None,
               taskless: Collection[str] = ()) -> np.ndarray:
    """How much each hit's site drives its own task, relative to the task it drives most, in (0, 1].

    The contribution of the hit's span is summed in every task and divided by that task's scale: the median
    absolute ``hit_contribution`` of the hits of the task's strongest motif among those with hits in it
    (largest ``strength``), or the task's contribution at its typical strongest sites (``scales``) where that is
    larger; a task with neither has no scale and is left out. The share is the own task's value over the
    largest. A site of another factor that a task responds to only a little (as multi-task models do to sites
    that drive their other tasks) has a small share. A profile model's targets are compared head with head
    (:func:`genomatt.task_regions.comparable_targets`): one task's ``profile_<task>`` and ``counts_<task>``
    never take each other's hits.

    Parameters
    ----------
    contributions
        The ``contrib.h5`` the hits were called in (:func:`genomatt.contributions.read_contributions`).
    hits
        Hits with ``start``, ``end``, ``peak_id``, ``task`` and ``hit_contribution``.
    motifs
        The motifs table of the run (``motif_name``, ``task``, ``strength``).
    array
        The contributions the hits were called in: ``contrib`` or ``hit_contrib``.
    scales
        Task → its contribution at its typical strongest sites (:func:`genomatt.motifs.hit_calling.
        contribution_scale`): the floor of its scale, and the scale itself of a task in ``taskless``.
    taskless
        Tasks scanned with motifs of no task (a MEME or JASPAR file), which may lack the task's own motif, so
        that the strongest of them may be the echo of another task's factor: their hits give no scale.

    Returns
    -------
    numpy.ndarray
        ``(H,)`` share of each hit (1 where only its own task has a scale, or its own task has none).
    """
    regions, tasks = contributions.regions, contributions.tasks
    # The strongest of the task's motifs that have hits in it: a motif without hits gives no scale.
    found = motifs.merge(hits[["task", "motif_name"]].drop_duplicates(), on=["task", "motif_name"])
    strongest_motif = found.sort_values("strength", kind="stable").groupby("task")["motif_name"].last()
    own_motif = hits["motif_name"].to_numpy() == strongest_motif.reindex(hits["task"]).to_numpy()
    scale = hits[own_motif].assign(size=hits["hit_contribution"].abs()).groupby("task")["size"].median()
    scale = scale[~scale.index.isin(list(taskless))].to_dict()
    for task, floor in (scales or {}).items():
        scale[task] = max(scale.get(task, 0.0), floor)
    scale = pd.Series(scale, dtype=np.float64)
    rows, row_of_hit = np.unique(hits["peak_id"].to_numpy(np.int64), return_inverse=True)
    offset = hits["start"].to_numpy(np.int64) - regions["start"].to_numpy(np.int64)[hits["peak_id"].to_numpy(np.int64)]
    width = (hits["end"] - hits["start"]).to_numpy(np.int64)
    driven = np.full((len(hits), len(tasks)), np.nan)
    for index, task in enumerate(tasks):
        if not scale.get(task, 0) > 0:
            continue
        per_base = contributions.read_contrib(index, rows, array).sum(axis=1, dtype=np.float64)  # (R, L)
        cumulative = np.pad(per_base.cumsum(axis=1), ((0, 0), (1, 0)))
        span = cumulative[row_of_hit, offset + width] - cumulative[row_of_hit, offset]
        driven[:, index] = np.abs(span) / scale[task]
    own_index = np.array([tasks.index(task) for task in hits["task"]], dtype=np.int64)
    own = driven[np.arange(len(hits)), own_index]
    # Compared only with the tasks that rival the hit's own (not its own task's other head).
    rivals = comparable_targets(tasks)[own_index]
    strongest = np.where(np.isnan(driven) | ~rivals, -np.inf, driven).max(axis=1)
    # A hit of a task without a scale is not compared (share 1), never dropped for want of one.
    return np.divide(own, strongest, out=np.ones(len(hits)), where=(strongest > 0) & ~np.isnan(own))


def _genome_hits(hits: pd.DataFrame, regions: pd.DataFrame, motifs: list[CwmMotif], qc: pd.DataFrame | None,
                 task: str, core_norms: np.ndarray, parameters: HitParameters) -> pd.DataFrame:
    region = hits["region"].to_numpy(np.int64)
    region_start = regions["start"].to_numpy(np.int64)[region]
    scale = qc["global_scale"].to_numpy()[region] if qc is not None else np.ones(len(hits))
    # A hit spans bases read from the genome, not a window's N padding past a chromosome end.
    low, high = (bound[region] for bound in genome_bases(regions))
    start = np.clip(region_start + hits["offset"].to_numpy(np.int64), low, high)
    end = np.clip(region_start + hits["offset"].to_numpy(np.int64) + hits["width"].to_numpy(np.int64), low, high)
    start_untrimmed = region_start + hits["offset_untrimmed"].to_numpy(np.int64)
    names = np.array([motif.name for motif in motifs], dtype=object)
    motif_index = hits["motif"].to_numpy(np.int64)
    full_norms = np.array([np.sqrt((motif.cwm**2).sum()) for motif in motifs])
    norm_ratio = full_norms[motif_index] / np.asarray(core_norms, dtype=float)[motif_index]
    # Fi-NeMo's lasso solution for an isolated hit at the motif's lambda in motif_data.tsv (min_similarity on its
    # similarity scale, whose CWM has unit norm over its whole width): 0 for the few hits near the threshold that
    # Fi-NeMo's energy floor, unlike ours, puts under lambda.
    coefficient_global = finemo_coefficient(hits["core_dot"].to_numpy(), norm_ratio,
                                            hits["core_importance_sq"].to_numpy(), scale, parameters.energy_floor,
                                            parameters.min_similarity / norm_ratio)
    table = pd.DataFrame({
        "chr": regions["chrom"].to_numpy()[region],
        "start": start, "end": end,
        "start_untrimmed": start_untrimmed,
        "end_untrimmed": start_untrimmed + hits["width_untrimmed"].to_numpy(np.int64),
        "motif_name": names[motif_index] if len(hits) else np.array([], dtype=object),
        "hit_coefficient": np.divide(coefficient_global, scale**2, out=np.zeros(len(hits)), where=scale > 0),
        "hit_coefficient_global": coefficient_global,
        "hit_similarity": hits["similarity"].to_numpy(), "hit_correlation": hits["similarity"].to_numpy(),
        "hit_importance": hits["importance"].to_numpy(), "hit_importance_sq": hits["importance_sq"].to_numpy(),
        "strand": hits["strand"].to_numpy(),
        "peak_name": regions["name"].to_numpy()[region],
        "peak_id": region,
        "task": task, "hit_amplitude": hits["coefficient"].to_numpy(),
        "hit_contribution": hits["contribution"].to_numpy(),
    })
    return table[HIT_COLUMNS]


def write_hits(calls: HitCalls, out_dir: str | os.PathLike, provenance: dict | None = None) -> dict[str, Path]:
    """Write the hit tables, tracks and Fi-NeMo's companion files into ``out_dir``, each atomically.

    ``hits.tsv`` holds exactly Fi-NeMo's columns; ``hits_genomatt.tsv`` ours, row for row. With
    ``motif_data.tsv``, ``motif_cwms.npy`` and ``parameters.json`` the folder reads as a Fi-NeMo
    ``call-hits`` output (``finemo report``, ``collapse-hits``).

    Returns
    -------
    dict
        ``{"tsv", "extra", "bed", "h5", "qc", "motif_data", "motif_cwms", "parameters"}`` → written path.
    """
    out = Path(out_dir)
    paths = {"tsv": out / "hits.tsv", "extra": out / "hits_genomatt.tsv", "bed": out / "hits.bed",
             "h5": out / "hits.h5", "qc": out / "regions_qc.tsv"}
    for key, columns in (("tsv", FINEMO_COLUMNS), ("extra", EXTRA_FILE_COLUMNS)):
        with atomic_path(paths[key]) as tmp:
            calls.hits[columns].to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    write_hits_bed(calls.hits, paths["bed"])
    with atomic_path(paths["qc"]) as tmp:
        calls.qc.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    _write_hits_h5(calls, paths["h5"], provenance or {})
    paths.update(write_finemo_motifs(calls, out))
    return paths


def _write_hits_h5(calls: HitCalls, path: Path, provenance: dict) -> None:
    with atomic_hdf5(path) as handle:
        handle.attrs["genomatt_version"] = __version__
        handle.attrs["created_utc"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        handle.attrs["kind"] = "hits"
        handle.attrs["provenance"] = json.dumps({**provenance, "settings": calls.settings,
                                                 "contributions": calls.contributions}, sort_keys=True, default=str)
        for name, table in (("hits", calls.hits), ("qc", calls.qc), ("motifs", calls.motifs)):
            write_table(handle.create_group(name), table)
        cwms = handle.create_group("cwms")
        cwms.attrs["names"] = json.dumps(list(calls.cwms))
        for name, cwm in calls.cwms.items():
            cwms.create_dataset(h5_key(name), data=np.asarray(cwm, dtype=np.float32))


def read_hits(path: str | os.PathLike) -> HitCalls:
    """Read a ``hits.h5`` written by :func:`write_hits`."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(missing_file(path, "hits file"))
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise StoreError(f"{path}: not a readable HDF5 file ({error})") from None
    with handle:
        if handle.attrs.get("kind") != "hits" or any(name not in handle for name in ("hits", "qc", "motifs", "cwms")):
            raise StoreError(f"{path}: not a genomatt hits.h5 (expected kind 'hits' with /hits, /qc, /motifs, /cwms)")
        tables = {name: read_table(handle[name]) for name in ("hits", "qc", "motifs")}
        cwms = {name: h5_member(handle["cwms"], name)[()] for name in json.loads(handle["cwms"].attrs["names"])}
        provenance = json.loads(handle.attrs["provenance"])
    return HitCalls(tables["hits"], tables["qc"], tables["motifs"], cwms, provenance.get("settings", {}),
                    provenance.get("contributions", "contrib"))
