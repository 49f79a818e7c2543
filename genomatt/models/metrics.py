"""Per-task classification metrics: area under the ROC and precision-recall curves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def classification_metrics(labels: np.ndarray, scores: np.ndarray, task_names: Sequence[str]) -> dict[str, dict]:
    """auROC and auPRC of each task.

    Parameters
    ----------
    labels
        ``(N, T)`` 0/1 labels.
    scores
        ``(N, T)`` model outputs (logits or probabilities; only their order matters).
    task_names
        ``T`` task names.

    Returns
    -------
    dict
        ``{task: {"auroc", "auprc", "n_positive", "n_negative"}}``. A task whose labels hold one
        class only gets ``None`` for both areas (they are undefined).
    """
    metrics = {}
    for index, task in enumerate(task_names):
        task_labels = labels[:, index]
        n_positive = int(task_labels.sum())
        n_negative = int(len(task_labels) - n_positive)
        defined = n_positive > 0 and n_negative > 0
        metrics[task] = {
            "auroc": float(roc_auc_score(task_labels, scores[:, index])) if defined else None,
            "auprc": float(average_precision_score(task_labels, scores[:, index])) if defined else None,
            "n_positive": n_positive,
            "n_negative": n_negative,
        }
    return metrics


def mean_auroc(metrics: dict[str, dict]) -> float:
    """Mean auROC over the tasks where it is defined (NaN if none)."""
    values = [task["auroc"] for task in metrics.values() if task["auroc"] is not None]
    return float(np.mean(values)) if values else float("nan")
