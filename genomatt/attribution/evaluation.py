"""Ranking attribution methods on one model: planted-motif recovery, Sensitivity-n, completeness, time.

* **Planted-motif recovery** (the simulated-genomics experiment of the DeepLIFT paper): on regions
  with known planted motif instances, how well each method's per-position score separates the
  positions of a task's planted instances from every other position — auROC and auPRC, and the
  mean score inside and outside the instances.
* **Sensitivity-n** (Ancona et al., 2018): remove random subsets of n positions and correlate the
  drop of the output with the sum of the attributions over the subset. A method whose scores add
  up like the model's output changes correlates well; n runs over a log grid, since a method can be
  good for single positions and poor for large subsets, or the reverse.
* **Completeness** (summation-to-delta) error of the methods that claim it, and the time each
  method takes per sequence.

The per-position score of a method is its attribution at the observed base, the sum over channels
of ``X * attributions``: a contribution for the contribution methods, the observed base's value of
the map for saliency and PatternNet.
"""

from __future__ import annotations

import logging
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import Tensor, nn

from genomatt.attribution.choices import EVALUATION_METHODS, MIN_SUBSETS, REMOVALS
from genomatt.attribution.inputs import as_sequences, check_batch_size
from genomatt.attribution.methods import attribute, method_options
from genomatt.attribution.outputs import explained
from genomatt.attribution.patterns import Patterns, fit_patterns
from genomatt.errors import ConfigError, ModelError
from genomatt.shuffle import references_for_regions

log = logging.getLogger(__name__)

CLAIMS_COMPLETENESS = ("deeplift", "integrated_gradients", "epsilon_lrp")
TAKES_REFERENCES = ("deeplift", "integrated_gradients", "occlusion")
NEEDS_PATTERNS = ("patternnet", "patternattribution")
SHARED_OPTIONS = ("references", "n_shuffles", "random_state", "patterns", "X_train")
"""Options the evaluation sets for every method alike, refused in a method's own options."""
TRUTH_COLUMNS = ("chrom", "start", "end", "task")
RECOVERY_COLUMNS = ["method", "task", "auroc", "auprc", "mean_inside", "mean_outside", "n_planted"]
SENSITIVITY_COLUMNS = ["method", "task", "n", "correlation", "n_sequences"]
SUMMARY_COLUMNS = ["method", "auroc", "auprc", "mean_inside", "mean_outside", "sensitivity_n", "completeness_max",
                   "completeness_median", "ms_per_sequence", "status"]
_REMOVED_PER_BLOCK = 4096


# --- planted-motif recovery -----------------------------------------------------------------------


def check_truth_columns(truth: pd.DataFrame, where: str = "the truth table") -> None:
    """Refuse a truth table without the columns :data:`TRUTH_COLUMNS`, naming ``where`` (its file) and its header,
    or with coordinates that are not 0-based half-open integer intervals, naming the first such line (of a file
    read with its header line)."""
    missing = [column for column in TRUTH_COLUMNS if column not in truth.columns]
    if missing:
        raise ConfigError(f"{where}: the truth table has no column {', '.join(missing)} (its header: "
                          f"{', '.join(map(str, truth.columns[:8]))}); expected a TSV with a header line naming "
                          f"{', '.join(TRUTH_COLUMNS)}, as truth.tsv of genomatt simulate")
    coordinates = {column: pd.to_numeric(truth[column], errors="coerce") for column in ("start", "end")}
    for column, values in coordinates.items():
        bad = np.flatnonzero((values.isna() | (values % 1 != 0) | (values < 0)).to_numpy())
        if len(bad):
            raise ConfigError(f"{where}: line {bad[0] + 2}: {column} must be a non-negative integer (0-based), got "
                              f"'{truth[column].iloc[bad[0]]}'")
    empty = np.flatnonzero((coordinates["end"] <= coordinates["start"]).to_numpy())
    if len(empty):
        row = truth.iloc[empty[0]]
        raise ConfigError(f"{where}: line {empty[0] + 2}: end {row['end']} is not past start {row['start']}; expected "
                          "0-based half-open intervals (end > start)")


def planted_positions(regions: pd.DataFrame, truth: pd.DataFrame, tasks: Sequence[str], length: int) -> np.ndarray:
    """Which positions of each region lie in a planted instance of each task's motif.

    Parameters
    ----------
    regions : pandas.DataFrame
        Windows with ``chrom``, ``start``, ``end`` (0-based, half-open), each ``length`` bp.
    truth : pandas.DataFrame
        Planted instances with ``chrom``, ``start``, ``end`` and ``task`` (``truth.tsv`` of
        :func:`genomatt.simulate.simulate_genome`); instances of other tasks are ignored.
    tasks : sequence of str
        Task of each output axis.
    length : int
        Window width in bp (L).

    Returns
    -------
    numpy.ndarray, shape (N, T, L), bool
    """
    check_truth_columns(truth)
    planted = np.zeros((len(regions), len(tasks), length), dtype=bool)
    task_index = {task: index for index, task in enumerate(tasks)}
    truth = truth[truth["task"].isin(task_index)]
    by_chrom = {chrom: group for chrom, group in truth.groupby("chrom")}
    for row, (chrom, start, end) in enumerate(zip(regions["chrom"], regions["start"], regions["end"])):
        sites = by_chrom.get(chrom)
        if sites is None:
            continue
        inside = sites[(sites["start"] < end) & (sites["end"] > start)]
        for site_start, site_end, task in zip(inside["start"], inside["end"], inside["task"]):
            planted[row, task_index[task], max(site_start, start) - start:min(site_end, end) - start] = True
    return planted


def position_scores(X: Tensor | np.ndarray, attributions: Tensor | np.ndarray) -> np.ndarray:
    """The attribution of the observed base at each position.

    Parameters
    ----------
    X : shape (N, 4, L)
    attributions : shape (N, T, 4, L)

    Returns
    -------
    numpy.ndarray, shape (N, T, L), float32
    """
    return (np.asarray(X, dtype=np.float32)[:, None] * np.asarray(attributions, dtype=np.float32)).sum(axis=2)


def motif_recovery(scores: np.ndarray, planted: np.ndarray, tasks: Sequence[str]) -> pd.DataFrame:
    """auROC and auPRC of per-position scores for the planted positions of each task.

    Parameters
    ----------
    scores, planted : numpy.ndarray, shape (N, T, L)
        Per-position scores (higher = more important) and the planted positions.
    tasks : sequence of str

    Returns
    -------
    pandas.DataFrame
        One row per task: ``task, auroc, auprc, mean_inside, mean_outside, n_planted``; NaN where
        a task has no planted position (or only planted positions).
    """
    rows = []
    for index, task in enumerate(tasks):
        labels, values = planted[:, index].ravel(), scores[:, index].ravel().astype(np.float64)
        n_planted = int(labels.sum())
        separable = 0 < n_planted < labels.size
        rows.append({
            "task": task,
            "auroc": roc_auc_score(labels, values) if separable else np.nan,
            "auprc": average_precision_score(labels, values) if separable else np.nan,
            "mean_inside": values[labels].mean() if n_planted else np.nan,
            "mean_outside": values[~labels].mean() if n_planted < labels.size else np.nan,
            "n_planted": n_planted,
        })
    return pd.DataFrame(rows)


# --- Sensitivity-n --------------------------------------------------------------------------------


def sensitivity_grid(length: int) -> list[int]:
    """Subset sizes n = 1, 2, 4, ... below ``length`` (removing all positions leaves no randomness)."""
    return [2**power for power in range(int(np.log2(max(length - 1, 1))) + 1)]


def random_subsets(n_sequences: int, length: int, sizes: Sequence[int], n_subsets: int,
                   random_state: int | np.random.Generator | None) -> dict[int, np.ndarray]:
    """``n_subsets`` random subsets of ``n`` positions per sequence, for every n in ``sizes``.

    Returns
    -------
    dict of int to numpy.ndarray, shape (N, K, L), bool
    """
    rng = np.random.default_rng(random_state)
    subsets = {}
    for size in sizes:
        if not 0 < size < length:
            raise ConfigError(f"Sensitivity-n subset sizes must lie in 1..{length - 1}, got {size}")
        order = rng.random((n_sequences, n_subsets, length)).argsort(axis=2)
        subsets[size] = order < size
    return subsets


def output_drops(model: nn.Module, X: Tensor, removal: Tensor, subsets: Mapping[int, np.ndarray],
                 columns: Sequence[int], batch_size: int = 128,
                 device: str | torch.device | None = None) -> dict[int, np.ndarray]:
    """f(x) − f(x with the subset's positions replaced by ``removal``), per subset and task.

    Parameters
    ----------
    model : torch.nn.Module
        Returns ``(B, n_outputs)``.
    X, removal : Tensor, shape (N, 4, L)
        Sequences and what replaces a removed position (a shuffle of each sequence, or zeros for N).
    subsets : dict of int to numpy.ndarray, shape (N, K, L), bool
        Per subset size n, K random subsets of n positions of each sequence.
    columns : sequence of int
        The output columns (tasks) whose drops are measured.
    batch_size : int, default 128
        Rows per forward pass.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.

    Returns
    -------
    dict of int to numpy.ndarray, shape (N, K, T)
    """
    drops = {}
    with explained(model, list(columns), device) as model_ready:
        values = model_ready.values(X, batch_size)
        for size, mask in subsets.items():
            mask = torch.from_numpy(mask)
            # Blocks of sequences keep the removed copies to a few thousand sequences at a time.
            block = max(1, _REMOVED_PER_BLOCK // mask.shape[1])
            changed = torch.cat([
                model_ready.values(torch.where(mask[first:first + block, :, None, :], removal[first:first + block, None],
                                               X[first:first + block, None]).reshape(-1, *X.shape[1:]), batch_size)
                for first in range(0, X.shape[0], block)
            ]).reshape(*mask.shape[:2], -1)
            drops[size] = (values[:, None] - changed).numpy()
    return drops


def sensitivity_n(scores: np.ndarray, subsets: Mapping[int, np.ndarray], drops: Mapping[int, np.ndarray],
                  tasks: Sequence[str]) -> pd.DataFrame:
    """Pearson correlation of the summed attributions of each subset with the output drop.

    The correlation is taken over the K subsets of one sequence, then averaged over sequences
    (sequences where either side is constant are left out).

    Returns
    -------
    pandas.DataFrame
        ``task, n, correlation, n_sequences``, one row per task and subset size.
    """
    rows = []
    for size, mask in subsets.items():
        summed = np.einsum("nkl,ntl->nkt", mask.astype(np.float64), scores.astype(np.float64))
        drop = drops[size].astype(np.float64)
        summed -= summed.mean(axis=1, keepdims=True)
        drop = drop - drop.mean(axis=1, keepdims=True)
        denominator = np.sqrt((summed**2).sum(axis=1) * (drop**2).sum(axis=1))
        scale = np.maximum(np.abs(summed).max(axis=1), 1e-30) * np.maximum(np.abs(drop).max(axis=1), 1e-30)
        defined = denominator > 1e-9 * scale
        correlation = np.where(defined, (summed * drop).sum(axis=1) / np.where(defined, denominator, 1.0), np.nan)
        for index, task in enumerate(tasks):
            values = correlation[:, index]
            kept = ~np.isnan(values)
            rows.append({"task": task, "n": size, "correlation": values[kept].mean() if kept.any() else np.nan,
                         "n_sequences": int(kept.sum())})
    return pd.DataFrame(rows)


# --- the whole evaluation -------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Every measurement of :func:`evaluate_attributions`.

    Attributes
    ----------
    tasks : list of str
    recovery : pandas.DataFrame
        ``method, task, auroc, auprc, mean_inside, mean_outside, n_planted``.
    sensitivity : pandas.DataFrame
        ``method, task, n, correlation, n_sequences``.
    summary : pandas.DataFrame
        One row per method, named with the options given to it (``occlusion (window=10)``): means
        over tasks of ``auroc, auprc, mean_inside, mean_outside``; the
        mean Sensitivity-n correlation over tasks and n (``sensitivity_n``); ``completeness_max``
        and ``completeness_median`` where the method claims completeness; ``ms_per_sequence``
        (all tasks); ``status`` (``ok``, or why the method could not run).
    scores : dict of str to numpy.ndarray, shape (N, T, L)
        Per-position scores of each method that ran.
    planted : numpy.ndarray, shape (N, T, L), bool
    settings : dict
        The settings of the run, for the record.
    """

    tasks: list[str]
    recovery: pd.DataFrame
    sensitivity: pd.DataFrame
    summary: pd.DataFrame
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    planted: np.ndarray | None = None
    settings: dict = field(default_factory=dict)


def _check_options(methods: Sequence[str], options: Mapping[str, Mapping]) -> None:
    unknown = sorted(set(methods) - set(EVALUATION_METHODS)) + sorted(set(options) - set(EVALUATION_METHODS))
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; expected some of {', '.join(EVALUATION_METHODS)}")
    repeated = sorted({name for name in methods if list(methods).count(name) > 1})
    if repeated:
        raise ConfigError(f"method(s) {', '.join(repeated)} named more than once; name each method once")
    unused = sorted(set(options) - set(methods))
    if unused:
        raise ConfigError(f"options given for {', '.join(unused)}, which is not among the methods evaluated "
                          f"({', '.join(methods)})")
    for name, given in options.items():
        accepted = method_options(EVALUATION_METHODS[name][0])
        invalid = sorted(set(given) - set(accepted))
        if invalid:
            raise ConfigError(f"{name} has no option {', '.join(map(repr, invalid))}; its options are: "
                              f"{', '.join(accepted) or 'none'}")
        shared = sorted(set(given) & set(SHARED_OPTIONS))
        if shared:
            raise ConfigError(f"{name}: {', '.join(map(repr, shared))} is set by the evaluation for every method "
                              "alike (the same references of each region, --references and --seed; the patterns, "
                              "--patterns), so that the methods are compared on one footing")


def _check_option_values(model: nn.Module, X: Tensor, methods: Sequence[str], references: Tensor,
                         patterns: Patterns | None, options: Mapping[str, Mapping], columns: list[int],
                         batch_size: int, device: str | torch.device | None) -> None:
    """Run each method on the first sequence, so that an option value it refuses stops the evaluation before
    any method runs on the regions; a method that cannot explain the model is left to the run, which
    reports it as not run."""
    for name in methods:
        method, arguments = _method_arguments(name, references[:1], patterns, options)
        if method in NEEDS_PATTERNS and patterns is None:
            continue  # their patterns could not be fitted: reported when the method's turn comes
        try:
            attribute(model, X[:1], method=method, target=columns, batch_size=batch_size, device=device, **arguments)
        except ConfigError as error:
            raise ConfigError(f"{name}: {error}") from None
        except ModelError:
            pass


def _method_arguments(name: str, references: Tensor, patterns: Patterns | None,
                      options: Mapping[str, Mapping]) -> tuple[str, dict]:
    """The :func:`~genomatt.attribution.attribute` method of ``name`` and its options."""
    method, arguments = EVALUATION_METHODS[name]
    arguments = dict(arguments)
    if method in TAKES_REFERENCES:
        arguments["references"] = references
    if method in NEEDS_PATTERNS:
        arguments["patterns"] = patterns
    arguments.update(options.get(name, {}))
    return method, arguments


def _patterns_for(model: nn.Module, methods: Sequence[str], patterns: Patterns | None, X_train: Tensor | np.ndarray,
                  batch_size: int, device: str | torch.device | None,
                  ) -> tuple[Patterns | None, float | None, ModelError | None]:
    """The patterns, fitted once (and timed apart from the methods) when a pattern method needs them."""
    if patterns is not None or not any(EVALUATION_METHODS[name][0] in NEEDS_PATTERNS for name in methods):
        return patterns, None, None
    started = time.perf_counter()
    try:
        patterns = fit_patterns(model, X_train, batch_size=batch_size, device=device)
    except ModelError as error:
        return None, None, error
    seconds = time.perf_counter() - started
    log.info("fitted PatternNet patterns on %d sequences in %.1f s", patterns.n_sequences, seconds)
    return patterns, seconds, None


def _run_method(model: nn.Module, X: Tensor, name: str, method: str, arguments: dict, columns: list[int],
                batch_size: int, device: str | torch.device | None) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Attributions ``(N, T, 4, L)``, completeness errors ``(N, T)`` or None, and seconds taken."""
    claims = method in CLAIMS_COMPLETENESS
    started = time.perf_counter()
    result = attribute(model, X, method=method, target=columns, batch_size=batch_size, device=device,
                       return_delta=claims, **arguments)
    seconds = time.perf_counter() - started
    log.info("%s: %.1f s for %d sequences", name, seconds, X.shape[0])
    if claims:
        return result.attributions.numpy(), result.delta.numpy(), seconds
    return result.numpy(), None, seconds


def evaluate_attributions(
    model: nn.Module,
    X: Tensor | np.ndarray,
    regions: pd.DataFrame,
    truth: pd.DataFrame,
    task_names: Sequence[str],
    methods: Sequence[str] = tuple(EVALUATION_METHODS),
    n_references: int = 20,
    removal: str = "shuffle",
    n_subsets: int = 64,
    patterns: Patterns | None = None,
    X_train: Tensor | np.ndarray | None = None,
    options: Mapping[str, Mapping] | None = None,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> Evaluation:
    """Evaluate attribution methods on regions with known planted motifs.

    Parameters
    ----------
    model : torch.nn.Module
        Returns ``(B, n_outputs)``, one column per name of ``task_names``.
    X : Tensor or numpy.ndarray, shape (N, 4, L)
        One-hot sequences of ``regions``.
    regions : pandas.DataFrame
        ``chrom``, ``start``, ``end`` of each sequence: they seed its references and place the
        truth.
    truth : pandas.DataFrame
        Planted instances (``truth.tsv``: ``chrom, start, end, task``, ...).
    task_names : sequence of str
        Task of each model output; tasks without planted instances are not evaluated.
    methods : sequence of str
        Keys of :data:`EVALUATION_METHODS` (default: all).
    n_references : int, default 20
        Dinucleotide shuffles per region for the methods that take references, seeded by the
        region's coordinates (:func:`genomatt.shuffle.references_for_regions`), shared by all.
    removal : {"shuffle", "n"}
        What replaces a removed position in Sensitivity-n: the base of the first of those
        shuffles at that position (stays within the sequence composition the model was trained
        on), or ``N`` (an all-zero column, as the zero baseline of Ancona et al.).
    n_subsets : int, default 64
        Random subsets per sequence and subset size, at least :data:`MIN_SUBSETS`.
    patterns : Patterns, optional
        For PatternNet and PatternAttribution; otherwise fitted once on ``X_train``, or on ``X``,
        before the methods run (the time is recorded in ``settings["pattern_fitting_seconds"]``).
    X_train : Tensor or numpy.ndarray, shape (M, 4, L), optional
        Sequences to fit the patterns on when ``patterns`` is not given.
    options : dict of str to dict, optional
        Extra options per method name, e.g. ``{"integrated_gradients": {"steps": 20}}``.
    batch_size : int, default 128
        Rows per forward pass.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    seed : int, default 0
        Seed of the references and of the random subsets.

    Returns
    -------
    Evaluation
    """
    X = as_sequences(X)
    batch_size = check_batch_size(batch_size)
    options = dict(options or {})
    _check_options(methods, options)
    if removal not in REMOVALS:
        raise ConfigError(f"removal must be one of {', '.join(REMOVALS)}, got {removal!r}")
    if len(regions) != X.shape[0]:
        raise ConfigError(f"{len(regions)} regions for {X.shape[0]} sequences; expected one region per sequence")
    if isinstance(n_subsets, bool) or not isinstance(n_subsets, numbers.Integral) or n_subsets < MIN_SUBSETS:
        raise ConfigError(f"n_subsets must be an integer >= {MIN_SUBSETS} (Sensitivity-n correlates over the subsets "
                          f"of each size), got {n_subsets!r}")
    check_truth_columns(truth)
    columns = _evaluated_columns(task_names, truth)
    tasks = [task_names[index] for index in columns]
    length = X.shape[2]
    planted = planted_positions(regions, truth, tasks, length)
    if not planted.any():
        shown = ", ".join(map(str, pd.unique(truth["chrom"])[:5]))
        raise ConfigError(f"no planted instance of tasks {', '.join(tasks)} lies in the {len(regions)} regions "
                          f"(chromosomes {', '.join(map(str, pd.unique(regions['chrom'])[:5]))}; the truth table's: "
                          f"{shown}); are the truth table and the regions of one genome, with its chromosome names?")
    references = torch.as_tensor(references_for_regions(regions, X, n=n_references, seed=seed))
    removed = references[:, 0] if removal == "shuffle" else torch.zeros_like(X)
    subsets = random_subsets(X.shape[0], length, sensitivity_grid(length), n_subsets, seed)
    given_patterns = patterns is not None
    patterns, pattern_seconds, pattern_error = _patterns_for(model, methods, patterns, X if X_train is None else X_train,
                                                             batch_size, device)
    _check_option_values(model, X, methods, references, patterns, options, columns, batch_size, device)
    drops = output_drops(model, X, removed, subsets, columns, batch_size, device)

    recovery, sensitivity, summary, scores = [], [], [], {}
    for name in methods:
        method, arguments = _method_arguments(name, references, patterns, options)
        label = _label(name, options.get(name, {}))
        try:
            if method in NEEDS_PATTERNS and pattern_error is not None:
                raise pattern_error
            attributions, delta, seconds = _run_method(model, X, name, method, arguments, columns, batch_size, device)
        except ModelError as error:
            log.warning("%s could not run on this model: %s", label, error)
            summary.append({"method": label, "status": f"not run: {error}"})
            continue
        scores[label] = position_scores(X, attributions)
        recovery.append(motif_recovery(scores[label], planted, tasks).assign(method=label))
        sensitivity.append(sensitivity_n(scores[label], subsets, drops, tasks).assign(method=label))
        summary.append(_summary_row(label, recovery[-1], sensitivity[-1], delta, 1000 * seconds / X.shape[0]))
    settings = {
        "methods": list(methods), "n_regions": int(X.shape[0]), "length": int(length), "tasks": tasks,
        "n_references": n_references, "removal": removal, "n_subsets": n_subsets, "subset_sizes": list(subsets),
        "options": {name: dict(value) for name, value in options.items()}, "seed": seed, "batch_size": batch_size,
        "patterns": "given" if given_patterns else "fitted" if pattern_seconds is not None else None,
        "pattern_fitting_seconds": pattern_seconds,
    }
    return Evaluation(tasks, _table(recovery, RECOVERY_COLUMNS), _table(sensitivity, SENSITIVITY_COLUMNS),
                      pd.DataFrame(summary).reindex(columns=SUMMARY_COLUMNS), scores, planted, settings)


def _label(name: str, options: Mapping) -> str:
    """A method's row: its name, with the options given to it that change its scores
    (``deeplift (rule=revealcancel)``)."""
    shown = ", ".join(f"{key}={value}" for key, value in options.items() if key != "progress")
    return f"{name} ({shown})" if shown else name


def _evaluated_columns(task_names: Sequence[str], truth: pd.DataFrame) -> list[int]:
    """Output columns whose task has planted instances in the truth table."""
    present = set(truth["task"]) if "task" in truth.columns else set()
    columns = [index for index, task in enumerate(task_names) if task in present]
    if not columns:
        raise ConfigError(f"none of the model's tasks ({', '.join(task_names)}) has planted instances in the truth "
                          f"table (its tasks: {', '.join(sorted(map(str, present))) or 'none'}); name the model's "
                          "outputs after them (--task-names)")
    left_out = [task for task in task_names if task not in present]
    if left_out:
        log.warning("the model's tasks %s have no planted instances in the truth table (its tasks: %s): they are not "
                    "evaluated", ", ".join(left_out), ", ".join(sorted(map(str, present))))
    return columns


def _summary_row(name: str, recovered: pd.DataFrame, sensitive: pd.DataFrame, delta: np.ndarray | None,
                 ms_per_sequence: float) -> dict:
    """One method's means over tasks, its completeness error and its time."""
    return {
        "method": name, **recovered[["auroc", "auprc", "mean_inside", "mean_outside"]].mean().to_dict(),
        "sensitivity_n": sensitive["correlation"].mean(),
        "completeness_max": float(delta.max()) if delta is not None else np.nan,
        "completeness_median": float(np.median(delta)) if delta is not None else np.nan,
        "ms_per_sequence": ms_per_sequence, "status": "ok",
    }


def _table(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
