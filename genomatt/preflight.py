"""Checks of a run's inputs that take seconds, made before the hours of attribution.

:func:`check_inputs` reads every input a run will use (FASTA index, regions, task BEDs, negatives,
known motifs, the user's model at the data's width) and raises the first problem as one
:class:`~genomatt.errors.GenomattError` naming the file and what was expected. It returns a summary
of what it found, which ``genomatt check`` writes as JSON.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from genomatt.errors import ConfigError, FastaError, missing_file

log = logging.getLogger(__name__)


def check_inputs(
    fasta: str | os.PathLike,
    regions: str | os.PathLike | None,
    width: int,
    *,
    on_missing: str = "error",
    task_beds: Sequence[str | os.PathLike] | None = None,
    labels_column: str | None = None,
    task_names: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    model: str | None = None,
    weights: str | os.PathLike | None = None,
    negatives: str | os.PathLike | None = None,
    meme: str | os.PathLike | None = None,
    jaspar: tuple[str, str, str | None] | None = None,
    val_chroms: Sequence[str] | None = None,
    test_chroms: Sequence[str] | None = None,
    task_regions_select: bool = False,
    checked_model: Mapping | None = None,
) -> dict:
    """Check every input of a run; raise the first problem found.

    Parameters
    ----------
    fasta
        Genome FASTA (indexed if it has no index yet).
    regions
        BED/narrowPeak of the regions to explain; None checks the other inputs only (what training reads).
    width
        Window width in bp the regions are explained at.
    on_missing
        ``"error"``: regions on chromosomes absent from the FASTA are an error; ``"skip"``: they are
        counted and reported, as ``genomatt extract --on-missing skip`` drops them. Task regions on
        such chromosomes are an error for a model to train (it reads them all), and counted for a
        user's model (they only select regions).
    task_beds, labels_column
        Task BEDs (one per task, task = file name; or one with a labels column), as given to
        ``--task-regions`` of ``genomatt train``/``motifs``/``hits``.
    task_names
        Names of a user model's tasks (``genomatt attribute --task-names``).
    targets
        The targets of a user's model to explain (``genomatt attribute --targets``); default all.
    model, weights
        A user's model (file, config or ``package.module:factory``) and its weights; loaded on the CPU
        and run on a dummy batch of ``width`` bp. Without a model (one that ``genomatt train`` will
        make) the tasks are the task BEDs' names.
    val_chroms, test_chroms
        For a model to train: its held-out chromosomes (``genomatt train --val-chroms/--test-chroms``;
        ``None``: the default, which must then be in the genome).
    negatives
        BED of training negatives, when the run uses one.
    meme, jaspar
        Known motifs the de novo motifs will be matched against: a MEME file, or a JASPAR
        ``(release, collection, tax_group)`` (tax group None: every taxon).
    task_regions_select
        The task BEDs also choose each task's regions for motifs and hits (``--task-regions`` of
        ``genomatt motifs``/``hits``; the workflow's ``motifs.task_regions``): with ``regions``, each task's
        count of regions whose window centre lies in its task regions is reported, a task without any warned
        of, and regions none of which lies in any task's regions refused, as motifs would refuse them after
        the attribution.
    checked_model
        A user's model as an earlier check recorded it (its summary's ``"model"``, with ``spec`` and the
        ``tasks`` it explains): the task BEDs are checked against its tasks, and the model is not loaded again.

    Returns
    -------
    dict
        What was checked: chromosomes, regions (and skipped regions), tasks with their region counts,
        the model's source, hash and tasks, and the number of known motifs.

    Raises
    ------
    GenomattError
        The first problem found, naming the file and what was expected.
    """
    from genomatt.fasta import read_chrom_sizes
    from genomatt.genome import read_bed
    from genomatt.task_regions import check_task_beds, count_missing_chromosomes

    if width < 1:
        raise ConfigError(f"width must be a positive number of bp, got {width}")
    if on_missing not in ("error", "skip"):
        raise ConfigError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    if task_regions_select and not task_beds:
        raise ConfigError("task regions select each task's regions (--task-regions-select), but no task BED is "
                          "given; give them with --task-regions")
    if not Path(fasta).is_file():
        raise FastaError(missing_file(fasta, "FASTA file"))
    sizes = read_chrom_sizes(fasta)
    summary = {"fasta": str(fasta), "chromosomes": len(sizes), "width": width}
    if regions is not None:
        checked, windows = _check_regions(regions, fasta, sizes, width, on_missing)
        summary.update(checked)
    # Training reads every task region from the FASTA; a user's model only places regions in them.
    trained = model is None and checked_model is None
    tasks = check_task_beds(task_beds, labels_column, sizes, fasta, on_missing, trained=trained) if task_beds else None
    if tasks is not None:
        summary["task_regions"] = tasks
    if negatives is not None:
        negative_regions = read_bed(negatives)
        count_missing_chromosomes(negative_regions, sizes, fasta, negatives, "error", can_skip=False)
        summary["negatives"] = len(negative_regions)
    if checked_model is not None:
        if model is not None or weights is not None or task_names or targets:
            raise ConfigError("a model checked before is given; the model, its weights, task names and targets were "
                              "checked with it and are not given again")
        if tasks is None:
            raise ConfigError("a model checked before is given to check its task BEDs, but no task BED is given; give "
                              "them with --task-regions")
        _check_task_beds_match(checked_model["spec"], list(checked_model["tasks"]), tasks)
        summary["model"] = dict(checked_model)
    elif model is not None:
        summary["model"] = _check_model(model, weights, width, task_names, targets, tasks)
    elif targets:
        raise ConfigError(f"targets {list(targets)} choose outputs of a user's model; a model that genomatt "
                          "trains is explained for every task")
    elif task_names:
        raise ConfigError(f"task names {list(task_names)} name the outputs of a user's model; a model that "
                          "genomatt trains takes its task names from its task BEDs")
    elif weights is not None:
        raise ConfigError(f"weights {weights} are given without a model, and genomatt would train a new one: "
                          "set model to the model config or package.module:factory the weights belong to")
    if task_regions_select and regions is not None and tasks is not None:
        explained = summary["model"]["tasks"] if "model" in summary else list(tasks)
        summary["regions_in_task_regions"] = _regions_in_task_regions(windows, regions, task_beds, labels_column,
                                                                      explained)
    if model is None and checked_model is None and task_beds:
        from genomatt.models.splits import holdout_chromosomes
        from genomatt.task_regions import read_task_regions

        validation, test = holdout_chromosomes(sizes, val_chroms, test_chroms)
        summary["holdout"] = {"validation": validation, "test": test}
        _check_task_holdout(read_task_regions(list(task_beds), labels_column), validation, test)
    summary["known_motifs"] = _check_known_motifs(meme, jaspar)
    return summary


def _check_regions(regions: str | os.PathLike, fasta: str | os.PathLike, sizes: dict[str, int], width: int,
                   on_missing: str) -> tuple[dict, pd.DataFrame]:
    """The regions' part of the summary (how many can be read, those skipped, repeated windows and summits), and
    the windows of those on the FASTA's chromosomes."""
    from genomatt.genome import check_window_width, further_summits, read_bed, repeated_windows, resize
    from genomatt.task_regions import count_missing_chromosomes

    table = read_bed(regions)
    check_window_width(width, sizes, fasta, str(regions))
    skipped = count_missing_chromosomes(table, sizes, fasta, regions, on_missing)
    skipped += _count_past_chromosome_ends(table, sizes, fasta, regions, width, on_missing)
    if skipped == len(table):
        raise FastaError(f"{regions}: none of its {len(table)} regions can be read from {fasta} (each is on a "
                         "chromosome it lacks, or its window starts past the chromosome's end; see the warnings above)")
    windows = resize(table, width)
    summary = {"regions": str(regions), "n_regions": len(table) - skipped, "skipped_regions": skipped,
               "repeated_windows": repeated_windows(windows, regions),
               "further_summits": further_summits(windows, regions)}
    return summary, windows[windows["chrom"].isin(list(sizes))].reset_index(drop=True)


def _regions_in_task_regions(windows: pd.DataFrame, regions: str | os.PathLike,
                             task_beds: Sequence[str | os.PathLike], labels_column: str | None,
                             tasks: Sequence[str]) -> dict[str, int]:
    """Each explained task's count of the ``windows`` of ``regions`` whose centre lies in its task regions, as
    motifs and hits will select them; refuse regions of which none lies in any task's."""
    from genomatt.task_regions import read_task_regions, task_region_rows

    rows = task_region_rows(windows, list(tasks), read_task_regions(list(task_beds), labels_column))
    if not any(len(found) for found in rows.values()):
        raise ConfigError(f"{', '.join(map(str, task_beds))}: no region of {regions} lies in the task regions of "
                          f"tasks {list(tasks)} (a region's window centre must lie in one), so motifs and hits, which "
                          "search each task's regions, would find none after the attribution; give task BEDs of "
                          "these regions' peaks, or search every region for every task (motifs.task_regions: false "
                          "in the workflow; genomatt motifs and hits without --task-regions)")
    return {task: int(len(found)) for task, found in rows.items()}


def _check_task_holdout(tasks: dict[str, pd.DataFrame], validation: Sequence[str], test: Sequence[str]) -> None:
    """Refuse a task that training could not learn and test: its regions must lie on the training and on the
    test chromosomes (a task without validation regions is only left out of early stopping, and told)."""
    for task, table in tasks.items():
        on_test = int(table["chrom"].isin(test).sum())
        on_validation = int(table["chrom"].isin(validation).sum())
        on_train = len(table) - on_test - on_validation
        if len(table) < 2:
            raise ConfigError(f"task {task} has {len(table)} region: a task needs regions on the training and on the "
                              "test chromosomes; give it more regions, or leave it out")
        for count, split, chroms, option in ((on_test, "test", test, "--test-chroms (train.test_chroms)"),
                                              (on_train, "training", None, None)):
            if not count:
                where = f" ({', '.join(chroms)})" if chroms else ""
                way_out = f"choose other hold-out chromosomes with {option}" if option else \
                    "choose hold-out chromosomes that leave it some"
                raise ConfigError(f"task {task} has none of its {len(table)} regions on the {split} "
                                  f"chromosomes{where}; {way_out}")
        if not on_validation:
            log.warning("task %s has no regions on the validation chromosomes (%s): early stopping will not "
                        "follow it", task, ", ".join(validation))


def _count_past_chromosome_ends(table: pd.DataFrame, sizes: dict[str, int], fasta: str | os.PathLike,
                                source: str | os.PathLike, width: int, on_missing: str) -> int:
    """Regions on the FASTA's chromosomes whose interval or window starts past the chromosome's end (an error
    unless ``on_missing`` is skip), as reading them would find."""
    from genomatt.genome import past_chromosome_ends, resize

    absent = ~table["chrom"].isin(list(sizes)).to_numpy()
    return int(past_chromosome_ends(resize(table, width), absent, sizes, Path(fasta), str(source), on_missing).sum())


def _check_model(spec: str, weights: str | os.PathLike | None, width: int, task_names: Sequence[str] | None,
                 targets: Sequence[str] | None, tasks: dict[str, int] | None) -> dict:
    from genomatt.atomic import safe_file_names
    from genomatt.attribution.targets import model_targets
    from genomatt.models.io import load
    from genomatt.task_regions import check_task_names

    loaded = load(spec, weights, input_length=width, device="cpu")
    loaded, _, names, explained = model_targets(loaded, spec, task_names, targets)
    check_task_names(names, f"{spec} (its task names, task_names or targets)")
    safe_file_names(names)  # each task's files (modisco, bigWig, export) are its own
    _check_deeplift(loaded.model, width, explained)
    if tasks is not None:
        _check_task_beds_match(spec, names, tasks)
    return {"spec": spec, "source": loaded.source, "tasks": names, "content_hash": loaded.content_hash,
            "output_shapes": [list(shape) for shape in loaded.output_shapes]}


def read_checked_model(path: str | os.PathLike) -> dict:
    """The user's model as the check summary ``path`` (``genomatt check --out``) records it, for ``checked_model``.

    Raises
    ------
    ConfigError
        If the file is missing, is no check summary, or records no user's model (a model genomatt trains).
    """
    import json

    if not Path(path).is_file():
        raise ConfigError(missing_file(path, "check summary"))
    try:
        record = json.loads(Path(path).read_text()).get("model")
    except (ValueError, AttributeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not a check summary written by 'genomatt check --out' ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("tasks"), list) or "spec" not in record:
        raise ConfigError(f"{path}: the check summary records no user's model with its tasks; give --model (a model "
                          "that genomatt trains takes its tasks from the task BEDs)")
    return record


def _check_task_beds_match(spec: str, names: list[str], tasks: dict[str, int]) -> None:
    """Refuse a task of the model ``spec`` (its explained task ``names``) without a task BED; warn of task BEDs that
    name none of them."""
    from genomatt.task_regions import target_task

    missing = [name for name in names if target_task(name, tasks) is None]
    if missing:
        raise ConfigError(
            f"{spec}: the model's tasks {missing} have no task BED; the task BEDs name {list(tasks)}. Name "
            "each task BED after a task of the model (task = file name without suffix; a profile model's "
            "profile_<task> and counts_<task> read <task>'s), declare the model's task names with "
            "task_names, or explain only the tasks that have one with targets")
    unused = [task for task in tasks if not any(target_task(name, [task]) for name in names)]
    if unused:
        log.warning("%s: the task BEDs of %s name no task the model explains (%s); they are not used", spec,
                    unused, names)


def _check_deeplift(model, width: int, targets: list) -> None:
    """Explain one random sequence against one shuffle of it, each target, so that a layer without a DeepLIFT
    rule is refused now, naming it, and not in the first batch of the attribution jobs."""
    import numpy as np

    from genomatt.attribution import deep_lift_shap

    onehot = np.eye(4, dtype=np.float32)[np.random.default_rng(0).integers(0, 4, width)].T[None]
    for target in targets:
        deep_lift_shap(model, onehot, n_shuffles=1, target=target, device="cpu", random_state=0, progress=False)


def _check_known_motifs(meme: str | os.PathLike | None, jaspar: tuple[str, str, str | None] | None) -> int:
    from genomatt.motifs.matching import load_database

    if meme is None and jaspar is None:
        return 0
    release, collection, tax_group = jaspar if jaspar is not None else (None, None, None)
    motifs = load_database(meme, release, collection, tax_group)
    if not motifs:
        raise ConfigError(f"{meme}: no motifs to match against")
    return len(motifs)
