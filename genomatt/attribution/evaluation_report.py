"""Writing an :class:`~genomatt.attribution.evaluation.Evaluation`: TSV tables, markdown and PNG plots.

Files in the output folder::

    summary.tsv        one row per method (means over tasks, Sensitivity-n, completeness, time)
    recovery.tsv       planted-motif recovery per method and task
    sensitivity_n.tsv  Sensitivity-n correlation per method, task and subset size n
    evaluation.md      the summary, auPRC per task and Sensitivity-n per n as markdown tables
    evaluation.json    settings and provenance
    comparison.png     auPRC per task and Sensitivity-n curves of all methods
    methods/<m>.png    per method: precision-recall curve and Sensitivity-n curve of each task (the method's row
                       name, options included, as a file name)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve

from genomatt import __version__
from genomatt.atomic import atomic_path, safe_file_names
from genomatt.attribution.evaluation import Evaluation

# Task and method names are drawn as they are: a `$` in one is no mathtext.
_PLAIN_TEXT = matplotlib.rc_context({"text.parse_math": False})


def _number(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _error(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2g}"


def markdown_tables(evaluation: Evaluation) -> str:
    """The summary, auPRC per task and Sensitivity-n per subset size, as markdown."""
    lines = ["| method | auROC | auPRC | mean score inside / outside | Sensitivity-n r | completeness error (max) "
             "| ms / sequence |", "|---|---:|---:|---:|---:|---:|---:|"]
    for row in evaluation.summary.itertuples(index=False):
        if row.status != "ok":
            lines.append(f"| {row.method} | {row.status} | | | | | |")
            continue
        lines.append(f"| {row.method} | {_number(row.auroc)} | {_number(row.auprc)} | "
                     f"{_number(row.mean_inside, 4)} / {_number(row.mean_outside, 4)} | {_number(row.sensitivity_n)} | "
                     f"{_error(row.completeness_max)} | {_number(row.ms_per_sequence, 1)} |")
    tables = ["\n".join(lines)]
    if len(evaluation.recovery):
        auprc = evaluation.recovery.pivot(index="method", columns="task", values="auprc")
        auprc = auprc.reindex(index=evaluation.recovery["method"].unique(), columns=evaluation.tasks)
        tables.append(_frame_table(auprc, "auPRC of planted positions", _number))
        curve = evaluation.sensitivity.groupby(["method", "n"], sort=False)["correlation"].mean().unstack("n")
        curve = curve.reindex(index=evaluation.sensitivity["method"].unique())
        tables.append(_frame_table(curve, "Sensitivity-n r (mean over tasks), n =", _number))
    return "\n\n".join(tables) + "\n"


def _frame_table(frame: pd.DataFrame, title: str, format_value) -> str:
    header = f"| method | {' | '.join(str(column) for column in frame.columns)} |"
    lines = [f"{title}:", "", header, "|---|" + "---:|" * len(frame.columns)]
    for method, values in frame.iterrows():
        lines.append(f"| {method} | {' | '.join(format_value(value) for value in values)} |")
    return "\n".join(lines)


@_PLAIN_TEXT
def write_evaluation(evaluation: Evaluation, folder: str | os.PathLike, provenance: dict | None = None) -> Path:
    """Write the tables, markdown, provenance and plots of an evaluation into ``folder``; return it."""
    folder = Path(folder)
    for name, frame in (("summary", evaluation.summary), ("recovery", evaluation.recovery),
                        ("sensitivity_n", evaluation.sensitivity)):
        with atomic_path(folder / f"{name}.tsv") as tmp:
            frame.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(folder / "evaluation.md") as tmp:
        tmp.write_text(markdown_tables(evaluation))
    record = {"genomatt_version": __version__, "settings": evaluation.settings, **(provenance or {})}
    with atomic_path(folder / "evaluation.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str))
    if len(evaluation.recovery):
        _comparison_plot(evaluation, folder / "comparison.png")
        for method, safe in safe_file_names(list(evaluation.scores), "methods").items():
            _method_plot(evaluation, method, folder / "methods" / f"{safe}.png")
    return folder


def _save(figure: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def _comparison_plot(evaluation: Evaluation, path: Path) -> None:
    methods = list(evaluation.scores)
    figure = Figure(figsize=(13, 0.4 * len(methods) + 3))
    left, right = figure.subplots(1, 2)
    markers = "osD^v<>pP*X"
    for index, task in enumerate(evaluation.tasks):
        rows = evaluation.recovery[evaluation.recovery["task"] == task].set_index("method").reindex(methods)
        left.scatter(rows["auprc"], range(len(methods)), marker=markers[index % len(markers)], label=task)
    means = evaluation.recovery.groupby("method")["auprc"].mean().reindex(methods)
    left.scatter(means, range(len(methods)), marker="|", s=400, color="black", label="mean")
    left.set_yticks(range(len(methods)), methods)
    left.invert_yaxis()
    left.set_xlabel("auPRC of planted motif positions")
    left.legend(fontsize="small")
    curves = evaluation.sensitivity.groupby(["method", "n"], sort=False)["correlation"].mean()
    for method in methods:
        curve = curves[method]
        right.plot(curve.index, curve.values, marker="o", label=method)
    right.set_xscale("log", base=2)
    right.set_xlabel("positions removed, n")
    right.set_ylabel("Sensitivity-n: Pearson r (mean over tasks)")
    right.legend(fontsize="small")
    _save(figure, path)


def _method_plot(evaluation: Evaluation, method: str, path: Path) -> None:
    figure = Figure(figsize=(11, 4))
    left, right = figure.subplots(1, 2)
    scores = evaluation.scores[method]
    for index, task in enumerate(evaluation.tasks):
        labels = evaluation.planted[:, index].ravel()
        if 0 < labels.sum() < labels.size:
            precision, recall, _ = precision_recall_curve(labels, scores[:, index].ravel())
            left.plot(recall, precision, label=task)
        curve = evaluation.sensitivity[(evaluation.sensitivity["method"] == method)
                                       & (evaluation.sensitivity["task"] == task)]
        right.plot(curve["n"], curve["correlation"], marker="o", label=task)
    left.set_xlabel("recall")
    left.set_ylabel("precision")
    left.set_title(f"{method}: planted motif positions")
    left.legend(fontsize="small")
    right.set_xscale("log", base=2)
    right.set_xlabel("positions removed, n")
    right.set_ylabel("Pearson r")
    right.set_title(f"{method}: Sensitivity-n")
    right.axhline(0, color="grey", linewidth=0.5)
    right.legend(fontsize="small")
    _save(figure, path)

