"""Training a sequence model on labelled windows: augmentation, Adam, early stopping, evaluation."""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from genomatt import __version__
from genomatt.errors import ModelError
from genomatt.models.architectures import build_model
from genomatt.models.training_config import TrainingConfig
from genomatt.models.dataset import TrainingData, build_training_data
from genomatt.device import resolve_device
from genomatt.models.metrics import classification_metrics, mean_auroc

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """A trained model and how it did.

    Attributes
    ----------
    model
        The model with the weights of the epoch with the highest mean validation auROC, in eval mode.
    task_names
        One name per output.
    metrics
        Test metrics per task (``tasks``), split sizes, training history and time, as written to
        the metrics JSON.
    training_config
        Inputs (FASTA, BEDs, labels column), the :class:`TrainingConfig` and the model's full
        architecture config, as stored in the model artefact.
    """

    model: nn.Module
    task_names: list[str]
    metrics: dict
    training_config: dict


def augment_batch(
    X: np.ndarray, width: int, jitter: int, reverse_complement: bool, rng: np.random.Generator
) -> np.ndarray:
    """Randomly shifted and reverse-complemented training windows.

    Parameters
    ----------
    X
        ``(B, 4, width + 2 * jitter)`` one-hot windows with flanks.
    width
        Output length L.
    jitter
        Flank on each side; each window is shifted by a uniform offset in ``[-jitter, jitter]``.
    reverse_complement
        Reverse-complement each window with probability 1/2 (ACGT order: flip channels and length).
    rng
        Random generator.

    Returns
    -------
    numpy.ndarray
        ``(B, 4, width)`` float32.
    """
    offsets = rng.integers(0, 2 * jitter + 1, size=len(X))
    positions = offsets[:, None] + np.arange(width)[None, :]
    batch = np.take_along_axis(X, positions[:, None, :].repeat(X.shape[1], axis=1), axis=2)
    if reverse_complement:
        flip = rng.random(len(X)) < 0.5
        batch[flip] = batch[flip, ::-1, ::-1]
    return np.ascontiguousarray(batch, dtype=np.float32)


def predict(
    model: nn.Module, X: np.ndarray, batch_size: int = 256, device: str | torch.device | None = None
) -> np.ndarray:
    """Model outputs for one-hot sequences, in batches, without gradients.

    Parameters
    ----------
    model
        Module mapping ``(B, 4, L)`` to ``(B, T)``; used in its current mode.
    X
        ``(N, 4, L)`` one-hot.
    batch_size
        Sequences per forward pass.
    device
        Where the model is; its first parameter's device by default.

    Returns
    -------
    numpy.ndarray
        ``(N, T)`` float32.
    """
    if device is None:
        device = next(model.parameters()).device
    outputs = []
    with torch.no_grad():
        for begin in range(0, len(X), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(X[begin : begin + batch_size], dtype=np.float32)).to(device)
            outputs.append(model(batch).float().cpu().numpy())
    return np.concatenate(outputs)


def _centre(X: np.ndarray, jitter: int) -> np.ndarray:
    return X[:, :, jitter : X.shape[2] - jitter]


def _evaluate(
    model: nn.Module, X: np.ndarray, y: np.ndarray, task_names: Sequence[str], batch_size: int, device: torch.device
) -> tuple[float, dict]:
    """Mean binary cross-entropy and per-task metrics of the model on ``(X, y)``.

    Raises
    ------
    ModelError
        If the model's outputs are not finite: its training diverged.
    """
    model.eval()
    scores = predict(model, X, batch_size, device)
    if not np.isfinite(scores).all():
        raise ModelError("training diverged: the model's outputs are not finite (NaN or infinite); lower the "
                         "learning rate (or the weight decay)")
    loss = nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(scores), torch.from_numpy(y)).item()
    return loss, classification_metrics(y, scores, task_names)


def _train_epoch(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    X: np.ndarray,
    y: np.ndarray,
    config: TrainingConfig,
    rng: np.random.Generator,
    device: torch.device,
    progress: bool,
) -> float:
    """One pass over the training windows in random order; return the mean training loss."""
    model.train()
    order = rng.permutation(len(X))
    total, count = 0.0, 0
    batches = range(0, len(X), config.batch_size)
    for begin in tqdm(batches, desc="batches", unit="batch", leave=False, disable=not progress):
        index = np.sort(order[begin : begin + config.batch_size])
        batch = augment_batch(X[index], config.width, config.jitter, config.reverse_complement, rng)
        inputs = torch.from_numpy(batch).to(device)
        targets = torch.from_numpy(y[index]).to(device)
        optimiser.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(inputs), targets)
        loss.backward()
        optimiser.step()
        total += loss.item() * len(index)
        count += len(index)
    return total / count


def _validation_rank(record: dict) -> tuple[float, float]:
    """Order of epochs for early stopping: mean validation auROC, then lower validation loss.

    The loss decides alone when no task has both classes on the validation chromosomes (auROC NaN).
    """
    auroc = record["validation_auroc"]
    return (auroc if np.isfinite(auroc) else -np.inf, -record["validation_loss"])


def fit(
    model: nn.Module,
    data: TrainingData,
    config: TrainingConfig,
    device: torch.device,
    progress: bool = True,
) -> list[dict]:
    """Train with Adam on the ``train`` split, stopping early on the ``validation`` auROC.

    The model ends with the weights of its best validation epoch (highest auROC averaged over tasks,
    the metric the model is judged by; the validation loss also rewards confident calibration, and
    on wide windows it stops improving epochs before the ranking does), in eval mode.

    Parameters
    ----------
    model
        Module mapping ``(B, 4, width)`` to logits ``(B, T)``, already on ``device``.
    data
        Windows, labels and split (see :func:`build_training_data`).
    config
        Training settings.
    device
        Where to train.
    progress
        Show a progress bar with loss and validation metrics per epoch.

    Returns
    -------
    list of dict
        Per epoch: ``epoch``, ``loss``, ``validation_loss``, ``validation_auroc`` (mean over tasks).
    """
    rng = np.random.default_rng(config.seed)
    X_train, y_train = data.split("train")
    X_validation, y_validation = data.split("validation")
    X_validation = _centre(X_validation, data.jitter)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    best_rank, best_state, epochs_without_gain = None, None, 0
    history = []
    epochs = tqdm(range(1, config.epochs + 1), desc="training", unit="epoch", disable=not progress)
    for epoch in epochs:
        loss = _train_epoch(model, optimiser, X_train, y_train, config, rng, device, progress)
        validation_loss, validation_metrics = _evaluate(
            model, X_validation, y_validation, data.task_names, 4 * config.batch_size, device
        )
        record = {
            "epoch": epoch,
            "loss": loss,
            "validation_loss": validation_loss,
            "validation_auroc": mean_auroc(validation_metrics),
        }
        history.append(record)
        epochs.set_postfix(
            loss=f"{loss:.4f}", val_loss=f"{validation_loss:.4f}", val_auROC=f"{record['validation_auroc']:.4f}"
        )
        if not progress:  # the progress bar shows the same numbers; log lines would break it
            log.info(
                "epoch %d: loss %.4f, validation loss %.4f, validation auROC %.4f",
                epoch,
                loss,
                validation_loss,
                record["validation_auroc"],
            )
        if best_rank is None or _validation_rank(record) > best_rank:
            best_rank, best_state, epochs_without_gain = _validation_rank(record), copy.deepcopy(model.state_dict()), 0
        else:
            epochs_without_gain += 1
            if epochs_without_gain >= config.patience:
                log.info("validation auROC has not improved for %d epochs; stopping", config.patience)
                break
    model.load_state_dict(best_state)
    model.eval()
    return history


def train_model(
    fasta: str | os.PathLike,
    beds: Sequence[str | os.PathLike],
    config: TrainingConfig | None = None,
    labels_column: str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> TrainingResult:
    """Train a sequence model from a genome and task BED files; evaluate it on the test chromosomes.

    Parameters
    ----------
    fasta
        Genome FASTA.
    beds
        One BED/narrowPeak per task (task = file name without suffix), or one BED with
        ``labels_column``.
    config
        Training settings (defaults: :class:`TrainingConfig`).
    labels_column
        Column naming each region's task when ``beds`` is a single file (``name`` for column 4).
    device
        Where to train; the GPU when there is one, else the CPU, by default.
    progress
        Show progress bars.

    Returns
    -------
    TrainingResult
        The model (best validation epoch, eval mode), task names, and test metrics: auROC and
        auPRC per task on the test chromosomes.
    """
    config = config or TrainingConfig()
    device = resolve_device(device)
    started = time.perf_counter()
    data = build_training_data(
        fasta,
        beds,
        config.width,
        labels_column=labels_column,
        negatives=config.negatives,
        jitter=config.jitter,
        validation_chroms=config.validation_chroms,
        test_chroms=config.test_chroms,
        seed=config.seed,
        progress=progress,
    )
    torch.manual_seed(config.seed)
    model = build_model(
        {**config.architecture, "n_tasks": len(data.task_names), "input_length": config.width}, source="training config"
    ).to(device)
    history = fit(model, data, config, device, progress)
    X_test, y_test = data.split("test")
    test_loss, test_metrics = _evaluate(
        model, _centre(X_test, data.jitter), y_test, data.task_names, 4 * config.batch_size, device
    )
    best = max(history, key=_validation_rank)
    split_sizes = data.regions.groupby("split").size().to_dict()
    metrics = {
        "tasks": test_metrics,
        "test_loss": test_loss,
        "mean_test_auroc": mean_auroc(test_metrics),
        "split": {
            "validation_chroms": sorted(set(data.regions.loc[data.regions["split"] == "validation", "chrom"])),
            "test_chroms": sorted(set(data.regions.loc[data.regions["split"] == "test", "chrom"])),
            **{f"n_{split}": int(size) for split, size in split_sizes.items()},
        },
        "epochs_trained": len(history),
        "best_epoch": best["epoch"],
        "history": history,
        "training_seconds": round(time.perf_counter() - started, 1),
        "device": str(device),
        "genomatt_version": __version__,
    }
    for task, values in test_metrics.items():
        log.info("test %s: auROC %.4f, auPRC %.4f", task, values["auroc"], values["auprc"])
    training_config = {
        "fasta": str(fasta),
        "beds": [str(bed) for bed in beds],
        "labels_column": labels_column,
        **dataclasses.asdict(config),
        "architecture": dict(model.config),
        # CPU threads change the order of floating-point sums, and so the weights of a CPU run.
        "threads": torch.get_num_threads(),
    }
    return TrainingResult(model, data.task_names, metrics, training_config)
