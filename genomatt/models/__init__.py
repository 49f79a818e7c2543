"""Sequence models: architectures, training from BED files, saving, and loading any model to explain.

>>> from genomatt.models import load
>>> loaded = load("model.pt", input_length=200)
>>> loaded.model(X)  # (N, T) per-task logits for one-hot X of shape (N, 4, 200)
"""

from genomatt.models.architectures import ARCHITECTURES, Basset, BPNet, build_model
from genomatt.models.dataset import TrainingData, build_training_data
from genomatt.models.io import LoadedModel, content_hash, load, save_model
from genomatt.models.metrics import classification_metrics
from genomatt.models.training import TrainingConfig, TrainingResult, fit, predict, train_model

__all__ = [
    "ARCHITECTURES",
    "BPNet",
    "Basset",
    "LoadedModel",
    "TrainingConfig",
    "TrainingData",
    "TrainingResult",
    "build_model",
    "build_training_data",
    "classification_metrics",
    "content_hash",
    "fit",
    "load",
    "predict",
    "save_model",
    "train_model",
]
