"""A user's model outside genomatt, loaded by import spec (``user_model:build``) in tests."""

from __future__ import annotations

import torch
from torch import nn


def build(n_tasks: int = 2) -> nn.Module:
    """A tiny CNN: one-hot ``(N, 4, L)`` to ``(N, n_tasks)`` logits, for any L of at least 5 bp.

    Its weights are seeded, so every process (each attribution shard) builds the same model, as it
    would load the same trained weights.
    """
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(4, 8, 5), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(8, n_tasks))
