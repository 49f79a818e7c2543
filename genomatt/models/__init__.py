"""Sequence models: architectures, training from BED files, saving, and loading any model to explain.

>>> from genomatt.models import load
>>> loaded = load("model.pt", input_length=200)
>>> loaded.model(X)  # (N, T) per-task logits for one-hot X of shape (N, 4, 200)

The names below are imported from their modules on first use, so that importing a light module of this
package (:mod:`genomatt.models.training_config`) does not load torch.
"""

from genomatt import names_of_modules

_MODULES = {
    "ARCHITECTURES": "architectures",
    "BPNet": "architectures",
    "Basset": "architectures",
    "LoadedModel": "io",
    "TrainingConfig": "training_config",
    "TrainingData": "dataset",
    "TrainingResult": "training",
    "build_model": "architectures",
    "build_training_data": "dataset",
    "classification_metrics": "metrics",
    "content_hash": "io",
    "fit": "training",
    "load": "io",
    "one_hot_embedding": "tokens",
    "predict": "training",
    "save_model": "io",
    "train_model": "training",
}

__all__ = list(_MODULES)
__getattr__ = names_of_modules(__name__, _MODULES)
