"""DeepLIFT/DeepSHAP on models built from the field's own packages (gReLU, enformer-pytorch).

Each model is built small from its package's class, with random weights, and explained against
dinucleotide-shuffled references. The check is summation-to-delta against the model run plainly,
outside genomatt: the contributions of one region sum to f(x) − mean f(reference). Models run in
float64, so the check measures the rules rather than float32 rounding of the small output
differences of randomly initialised models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from enformer_pytorch import Enformer
from enformer_pytorch.modeling_enformer import Attention
from grelu.model import models as grelu_models
from torch import nn

from genomatt.attribution import deep_lift_shap
from genomatt.cli.main import main
from genomatt.shuffle import dinucleotide_shuffle, references_for_regions
from genomatt.store import read_array, write_store

N_SHUFFLES = 3
RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def _seeded_weights():
    """Each model is built with the same random weights on every run."""
    torch.manual_seed(0)


def _one_hot(n: int, length: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    bases = torch.randint(0, 4, (n, length), generator=generator)
    return nn.functional.one_hot(bases, 4).permute(0, 2, 1).float()


def _randomize_zero_weights(model: nn.Module) -> None:
    """Give random values to weight matrices initialised to zero.

    enformer-pytorch starts its attention's output projection at zero, which would make the whole
    attention block a no-op and the test blind to it.
    """
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1 and not parameter.any():
                fan_in = parameter[0].numel()
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in**0.5)


def _assert_sums_to_plain_delta(model: nn.Module, length: int, n_tasks: int = 2) -> None:
    """Explain every task of ``model`` and compare Σ contributions with the plain model's delta."""
    _randomize_zero_weights(model)
    model.eval().double()
    X = _one_hot(2, length, seed=1)
    references = torch.as_tensor(dinucleotide_shuffle(X, n=N_SHUFFLES, random_state=2))
    targets = list(range(n_tasks))
    attributions = deep_lift_shap(model, X, references=references, target=targets, progress=False)
    assert attributions.shape == (2, n_tasks, 4, length)

    with torch.no_grad():
        f_x = model(X.double()).reshape(2, n_tasks)
        f_ref = model(references.reshape(-1, 4, length).double()).reshape(2, N_SHUFFLES, n_tasks)
    expected = f_x - f_ref.mean(dim=1)
    total = attributions.sum(dim=(2, 3))
    scale = (f_x.unsqueeze(1) - f_ref).abs().mean(dim=1)
    assert scale.min() > 1e-5, "the references must move the output for the check to mean anything"
    relative = (total - expected).abs() / scale
    assert relative.max() <= RELATIVE_TOLERANCE, f"relative summation-to-delta error {relative.max():.2e}"


def test_grelu_conv_model_with_batch_norm_residuals_and_pooling():
    model = grelu_models.ConvModel(
        n_tasks=2, stem_channels=8, channel_init=8, n_conv=2, norm=True, residual=True,
        pool_func="max", pool_size=2,
    )
    _assert_sums_to_plain_delta(model, length=200)


def test_grelu_dilated_conv_model():
    model = grelu_models.DilatedConvModel(n_tasks=2, channels=8, n_conv=3)
    _assert_sums_to_plain_delta(model, length=200)


def test_grelu_conv_gru_model_with_layer_norm_feed_forward():
    model = grelu_models.ConvGRUModel(
        n_tasks=2, stem_channels=8, channel_init=8, n_conv=2, pool_func="max", pool_size=8,
        n_gru=1, gru_norm=True,
    )
    _assert_sums_to_plain_delta(model, length=200)


def test_grelu_conv_transformer_model():
    model = grelu_models.ConvTransformerModel(
        n_tasks=2, stem_channels=8, channel_init=8, n_conv=1, pool_func="max", pool_size=4,
        n_transformers=1, n_heads=2,
    )
    _assert_sums_to_plain_delta(model, length=200)


def test_enformer_pytorch_attention_with_relative_positions():
    """enformer-pytorch's own multi-head attention: relative positional logits and shift."""
    dim = 12
    model = nn.Sequential(
        nn.Conv1d(4, dim, kernel_size=7, padding=3),
        nn.GELU(),
        _ChannelsLast(),
        Attention(dim, heads=2, dim_key=4, dim_value=dim // 2, num_rel_pos_features=dim // 2),
        _MeanOverPositions(),
        nn.Linear(dim, 2),
    )
    _assert_sums_to_plain_delta(model, length=200)


def test_enformer_pytorch_enformer_at_small_size():
    """The whole Enformer: attention-pooling conv tower, transformer, crop, softplus track head."""
    enformer = Enformer.from_hparams(
        dim=48, depth=1, heads=2, attn_dim_key=4, output_heads={"human": 2}, target_length=16,
        num_downsamples=3, dim_divisible_by=16,
    )
    _assert_sums_to_plain_delta(_MeanOverTracks(enformer), length=256)


@pytest.mark.slow
def test_grelu_enformer_model_at_small_size():
    model = grelu_models.EnformerModel(
        n_tasks=2, n_conv=3, channels=384, n_transformers=1, n_heads=2, key_len=4
    )
    _assert_sums_to_plain_delta(model, length=128)


def test_grelu_borzoi_model_at_small_size():
    model = grelu_models.BorzoiModel(
        n_tasks=2, stem_channels=8, init_channels=32, channels=64, n_conv=3, n_transformers=1,
        n_heads=2, key_len=4, value_len=4, n_pos_features=8,
    )
    _assert_sums_to_plain_delta(model, length=256)


@pytest.mark.slow
def test_grelu_model_from_the_command_line(tmp_path):
    """A gReLU model given as ``factory:`` with its weights; its (N, tasks, 1) output is explained."""
    kwargs = {"n_tasks": 2, "stem_channels": 8, "channel_init": 8, "n_conv": 1, "pool_func": "max",
              "pool_size": 4, "n_transformers": 1, "n_heads": 2}
    model = grelu_models.ConvTransformerModel(**kwargs).eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({
        "factory": "grelu.model.models:ConvTransformerModel", "kwargs": kwargs, "weights": "weights.pt",
        "input_length": 200, "task_names": ["a", "b"],
    }))
    onehot = _one_hot(3, 200, seed=4).numpy()
    regions = pd.DataFrame({"chrom": "chr1", "start": [0, 1000, 2000], "end": [200, 1200, 2200],
                            "name": ["r0", "r1", "r2"]})
    write_store(tmp_path / "regions.h5", regions, {"onehot": onehot})

    argv = ["attribute", "--regions-h5", str(tmp_path / "regions.h5"), "--model", str(tmp_path / "model.yaml"),
            "--out", str(tmp_path / "contrib.h5"), "--references", "3", "--device", "cpu"]
    assert main(argv) == 0
    hypothetical = read_array(tmp_path / "contrib.h5", "hypothetical")
    assert hypothetical.shape == (3, 2, 4, 200)
    references = references_for_regions(regions, onehot, n=3, seed=0)
    expected = deep_lift_shap(model, onehot, references, target=[0, 1], hypothetical=True, progress=False)
    np.testing.assert_allclose(hypothetical, expected.numpy(), rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        np.testing.assert_allclose(read_array(tmp_path / "contrib.h5", "prediction"),
                                   model(torch.from_numpy(onehot))[..., 0].numpy(), rtol=1e-5)


class _ChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class _MeanOverPositions(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


class _MeanOverTracks(nn.Module):
    """Enformer takes (N, L, 4) and returns (N, bins, tracks) per head: one value per track."""

    def __init__(self, enformer: nn.Module):
        super().__init__()
        self.enformer = enformer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enformer(x.transpose(1, 2), head="human").mean(dim=1)
