"""DeepLIFT rules for the field's models (attention, gating, GRU, layer norm, softmax) and the rule registry.

Every model is explained against references and checked against the plain model run on its own: the
contributions of each (sequence, reference) pair must sum to f(x) − f(reference) within 1e-4 relative.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genomatt.attribution import deep_lift_shap
from genomatt.attribution.interception import is_varying, mark_varying, operation_name
from genomatt.attribution.registry import elementwise
from genomatt.errors import ConfigError, ModelError

LENGTH = 64


def _one_hot(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    bases = np.random.default_rng(seed).integers(0, 4, size=shape)
    return torch.from_numpy(np.eye(4, dtype=np.float32)[bases]).movedim(-1, -2).contiguous()


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return _one_hot((3, LENGTH), 11), _one_hot((3, 4, LENGTH), 12)


def _relative_summation_error(model: nn.Module, X: torch.Tensor, refs: torch.Tensor, **options) -> float:
    """Largest |Σ contributions − (f(x) − f(ref))| / max(1, |f|) over pairs, f the plain model."""
    model.eval()
    with torch.no_grad():
        out_x = model(X)[:, 0]
        out_ref = model(refs.flatten(0, 1))[:, 0].reshape(refs.shape[:2])
    worst = 0.0
    for k in range(refs.shape[1]):
        hyp = deep_lift_shap(model, X, refs[:, k : k + 1], hypothetical=True, **options)
        error = ((X * hyp).sum(dim=(1, 2)) - (out_x - out_ref[:, k])).abs()
        scale = torch.maximum(out_x.abs(), out_ref[:, k].abs()).clamp(min=1.0)
        worst = max(worst, float((error / scale).max()))
    return worst


# --- models of the field, written with the operations their packages use -----------------------------


class GatedNet(nn.Module):
    """Gated convolution (WaveNet/GLU-style): value × sigmoid(gate)."""

    def __init__(self):
        super().__init__()
        self.value, self.gate = nn.Conv1d(4, 8, 5, padding=2), nn.Conv1d(4, 8, 5, padding=2)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        return self.out((self.value(x) * torch.sigmoid(self.gate(x))).mean(-1))


class GluNet(GatedNet):
    """The same gated convolution as one conv and F.glu over its channel halves (nn.GLU)."""

    def __init__(self):
        super().__init__()
        self.both = nn.Conv1d(4, 16, 5, padding=2)
        with torch.no_grad():
            self.both.weight.copy_(torch.cat([self.value.weight, self.gate.weight]))
            self.both.bias.copy_(torch.cat([self.value.bias, self.gate.bias]))

    def forward(self, x):
        return self.out(F.glu(self.both(x), dim=1).mean(-1))


class TransformerBlock(nn.Module):
    """A pre-norm transformer encoder block over a conv stem, as in gReLU's and Borzoi's transformer
    towers: LayerNorm, multi-head self-attention (softmax of q·kᵀ/√d), residuals, a GELU MLP."""

    def __init__(self, channels: int = 16, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.stem = nn.Conv1d(4, channels, 7, padding=3)
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.qkv, self.proj = nn.Linear(channels, 3 * channels), nn.Linear(channels, channels)
        self.mlp = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Dropout(0.1),
                                 nn.Linear(2 * channels, channels))
        self.out = nn.Linear(channels, 2)

    def forward(self, x):
        h = self.stem(x).transpose(1, 2)
        b, length, channels = h.shape
        q, k, v = self.qkv(self.norm1(h)).reshape(b, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(channels // self.heads), dim=-1)
        h = h + self.proj((attention @ v).transpose(1, 2).reshape(b, length, channels))
        h = h + self.mlp(self.norm2(h))
        return self.out(h.mean(1))


class EnformerAttentionBlock(nn.Module):
    """Enformer's attention block: LayerNorm, multi-head attention whose logits add content (q + u)·k
    and relative-position (q + v)·r terms (Transformer-XL style, relative position features projected
    to keys), softmax, residual, then a ReLU feed-forward block."""

    def __init__(self, channels: int = 16, heads: int = 2, key_size: int = 8, length: int = LENGTH // 4):
        super().__init__()
        self.heads, self.key_size = heads, key_size
        self.stem = nn.Conv1d(4, channels, 9, padding=4)
        self.pool = nn.AvgPool1d(4)
        self.norm, self.ff_norm = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.q = nn.Linear(channels, heads * key_size, bias=False)
        self.k = nn.Linear(channels, heads * key_size, bias=False)
        self.v = nn.Linear(channels, heads * key_size, bias=False)
        self.r = nn.Linear(6, heads * key_size, bias=False)
        self.content_bias = nn.Parameter(0.1 * torch.randn(1, heads, 1, key_size))
        self.position_bias = nn.Parameter(0.1 * torch.randn(1, heads, 1, key_size))
        self.o = nn.Linear(heads * key_size, channels)
        self.ff = nn.Sequential(nn.Linear(channels, 2 * channels), nn.ReLU(), nn.Linear(2 * channels, channels))
        distances = torch.arange(-length + 1, length, dtype=torch.float32)
        self.register_buffer("positions", torch.stack(
            [torch.exp(-distances.abs() / scale) for scale in (1.0, 3.0, 9.0)]
            + [torch.sign(distances) * torch.exp(-distances.abs() / scale) for scale in (1.0, 3.0, 9.0)], dim=-1))
        self.out = nn.Linear(channels, 1)

    def _split(self, h):
        return h.reshape(h.shape[0], h.shape[1], self.heads, self.key_size).transpose(1, 2)

    def forward(self, x):
        h = self.pool(F.gelu(self.stem(x))).transpose(1, 2)
        b, length, _ = h.shape
        normed = self.norm(h)
        q = self._split(self.q(normed)) * self.key_size ** -0.5
        k, v = self._split(self.k(normed)), self._split(self.v(normed))
        r = self.r(self.positions).reshape(-1, self.heads, self.key_size).transpose(0, 1)
        content = torch.einsum("bhik,bhjk->bhij", q + self.content_bias, k)
        relative = torch.einsum("bhik,hdk->bhid", q + self.position_bias, r)
        # Relative shift: logit (i, j) takes the term of distance j − i.
        index = (torch.arange(length)[None, :] - torch.arange(length)[:, None]) + length - 1
        relative = torch.gather(relative, -1, index.expand(b, self.heads, length, length))
        attention = torch.softmax(content + relative, dim=-1)
        attended = (attention @ v).transpose(1, 2).reshape(b, length, -1)
        h = h + self.o(attended)
        h = h + self.ff(self.ff_norm(h))
        return self.out(h.mean(1))


class GRUNet(nn.Module):
    """A GRU over pooled convolutional features (the GRU equations of torch.nn.GRU, step by step)."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.stem, self.cell = nn.Conv1d(4, channels, 5, padding=2), nn.GRUCell(channels, channels)
        self.out = nn.Linear(channels, 1)

    def forward(self, x):
        steps = F.max_pool1d(torch.relu(self.stem(x)), 8).transpose(1, 2)
        w_ir, w_iz, w_in = self.cell.weight_ih.chunk(3)
        w_hr, w_hz, w_hn = self.cell.weight_hh.chunk(3)
        b_ir, b_iz, b_in = self.cell.bias_ih.chunk(3)
        b_hr, b_hz, b_hn = self.cell.bias_hh.chunk(3)
        h = steps.new_zeros(x.shape[0], w_ir.shape[0])
        for t in range(steps.shape[1]):
            step = steps[:, t]
            r = torch.sigmoid(F.linear(step, w_ir, b_ir) + F.linear(h, w_hr, b_hr))
            z = torch.sigmoid(F.linear(step, w_iz, b_iz) + F.linear(h, w_hz, b_hz))
            n = torch.tanh(F.linear(step, w_in, b_in) + r * F.linear(h, w_hn, b_hn))
            h = (1 - z) * n + z * h
        return self.out(h)


class CountHeadNet(nn.Module):
    """ChromBPNet-style count head: logsumexp of a profile, a softmax-pooled track, ratios, maxima."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv1d(4, 8, 9, padding=4)
        self.profile, self.other = nn.Conv1d(8, 2, 5, padding=2), nn.Conv1d(8, 2, 5, padding=2)
        self.norm = nn.LayerNorm(LENGTH)

    def forward(self, x):
        h = F.silu(self.body(x))
        profile, other = self.profile(h), self.other(h)
        counts = torch.logsumexp(profile.flatten(1), dim=-1)
        pooled = (F.softmax(other, dim=-1) * profile).sum(dim=(1, 2))
        ratio = (F.softplus(profile) / (1 + F.elu(other).exp())).mean(dim=(1, 2))
        extreme = torch.maximum(profile, other).amax(dim=-1).sum(-1)
        normed = self.norm(profile).square().mean(dim=(1, 2))
        return torch.stack([counts + pooled + ratio + extreme + normed,
                            F.log_softmax(profile, dim=-1)[:, 0, 0]], dim=1)


def _seeded(model_class):
    torch.manual_seed(3)
    return model_class().eval()


@pytest.mark.parametrize("model_class", [GatedNet, GluNet, TransformerBlock, EnformerAttentionBlock, GRUNet,
                                         CountHeadNet])
def test_models_of_the_field_sum_to_the_plain_models_output_difference(model_class, data):
    X, refs = data
    model = _seeded(model_class)
    assert _relative_summation_error(model, X, refs) < 1e-4
    result = deep_lift_shap(model, X, refs, return_delta=True)
    assert float(result.delta.max()) < 1e-4
    with torch.no_grad():
        torch.testing.assert_close(result.prediction, model(X)[:, 0], rtol=1e-5, atol=1e-6)


def test_product_rule_is_the_two_factor_shapley_split():
    # y = a · b with a = [A at position 0] and b = [C at position 1]; the sequence has both (a = b = 1),
    # the reference neither (a0 = b0 = 0): Δy = 1 splits as ½ (b + b0) Δa = ½ to a and ½ (a + a0) Δb = ½
    # to b (gradient × input would give 1 to each, twice the difference).
    class Product(nn.Module):
        def forward(self, x):
            return (x[:, 0, 0] * x[:, 1, 1]).unsqueeze(1)

    X = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    reference = torch.tensor([[[[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]])
    contributions = deep_lift_shap(Product(), X, reference)
    torch.testing.assert_close(contributions[0, 0, 0], torch.tensor(0.5))
    torch.testing.assert_close(contributions[0, 1, 1], torch.tensor(0.5))
    assert float(contributions.sum()) == pytest.approx(1.0)


def test_model_detach_is_explained_through_as_the_model_computes(data):
    # The function a model computes does not change with detach(); its contributions must sum to it.
    class DetachedGate(nn.Module):
        def __init__(self):
            super().__init__()
            self.value, self.gate = nn.Conv1d(4, 8, 5, padding=2), nn.Conv1d(4, 8, 5, padding=2)
            self.out = nn.Linear(8, 1)

        def forward(self, x):
            return self.out((self.value(x) * torch.sigmoid(self.gate(x)).detach()).mean(-1))

    X, refs = data
    assert _relative_summation_error(_seeded(DetachedGate), X, refs) < 1e-4


# --- the registry --------------------------------------------------------------------------------------


class ErfinvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(8, 1)

    def forward(self, x):
        return self.out(torch.erfinv(0.5 * torch.tanh(self.conv(x))).mean(-1))


def test_user_rule_explains_an_operation_genomatt_has_no_rule_for(data):
    X, refs = data
    model = _seeded(ErfinvNet)
    with pytest.raises(ModelError, match="`erfinv`"):
        deep_lift_shap(model, X, refs)
    assert _relative_summation_error(model, X, refs, rules={"erfinv": elementwise}) < 1e-4


def test_a_user_rule_may_shift_by_a_constant_of_each_sequence_and_its_references(data):
    # log Σ exp(z) as c + log Σ exp(z − c), c the largest value of the group (mode.group_constant): the shift
    # cancels in every (sequence, reference) difference, so Rescale at exp and log sums exactly. A per-row shift
    # would not cancel.
    X, refs = data

    def shifted_logsumexp(mode, func, args, kwargs):
        z, dim = args[0], args[1]
        shift = mode.group_constant(z.detach().amax(dim=dim, keepdim=True))
        shifted = z - shift
        mark_varying(shifted)
        total = mode.rescale(shifted, torch.exp).sum(dim=dim, keepdim=True)
        mark_varying(total)
        out = (mode.rescale(total, torch.log) + shift).squeeze(dim)
        mark_varying(out)
        return out

    class LogSumExpPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 3, 5), nn.Linear(3, 1)

        def forward(self, x):
            return self.out(torch.logsumexp(self.conv(x), -1))

    model = _seeded(LogSumExpPool)
    assert _relative_summation_error(model, X, refs, rules={"logsumexp": shifted_logsumexp}) < 1e-4


def test_wrong_user_rule_is_caught_by_the_delta_against_the_plain_model(data):
    # A rule whose multipliers are the plain gradient keeps the values but not summation-to-delta.
    def gradient_rule(mode, func, args, kwargs):
        out = func(*args, **kwargs)
        mark_varying(out)
        return out

    X, refs = data
    with pytest.raises(ModelError, match="summation-to-delta fails"):
        deep_lift_shap(_seeded(ErfinvNet), X, refs, rules={"erfinv": gradient_rule})
    # The same wrong rule in a model whose outputs are far below 1 misses by as large a share of them.
    small = _seeded(ErfinvNet)
    with torch.no_grad():
        small.out.weight.mul_(1e-3)
        small.out.bias.mul_(1e-3)
    with pytest.raises(ModelError, match="summation-to-delta fails"):
        deep_lift_shap(small, X, refs, rules={"erfinv": gradient_rule})
    # Its right rule passes at that scale.
    assert deep_lift_shap(small, X, refs, rules={"erfinv": elementwise}, return_delta=True).delta.max() < 1e-9


class ThresholdNet(nn.Module):
    """nn.Threshold as DeepSEA's PyTorch ports use it; F.threshold is defined as torch's `_threshold`."""

    def __init__(self):
        super().__init__()
        self.conv, self.threshold, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Threshold(0.1, -0.5), nn.Linear(8, 1)

    def forward(self, x):
        return self.out(self.threshold(self.conv(x)).mean(-1))


def test_a_function_defined_under_a_private_name_takes_the_rule_of_its_public_name(data):
    X, refs = data
    model = _seeded(ThresholdNet)
    assert _relative_summation_error(model, X, refs) < 1e-4
    torch.testing.assert_close(deep_lift_shap(torch.jit.trace(model, X), X, refs, hypothetical=True),
                               deep_lift_shap(model, X, refs, hypothetical=True), rtol=0, atol=1e-6)
    # A user rule replaces it, and a refusal names it, by the public name.
    def refusing_rule(mode, func, args, kwargs):
        raise mode.refuse("a test refuses it")

    with pytest.raises(ModelError, match=r"through `threshold` called in module 'threshold' \(Threshold\)"):
        deep_lift_shap(model, X, refs, rules={"threshold": refusing_rule})
    functions = {name: getattr(F, name) for name in dir(F) if not name.startswith("_")}
    private = [name for name, function in functions.items() if callable(function) and not isinstance(function, type)
               and getattr(function, "__name__", name).startswith("_")]
    assert "threshold" in private
    assert all(operation_name(getattr(F, name)) == name for name in private)


class BesideALargeColumnNet(ErfinvNet):
    """ErfinvNet's output (column 0, the target) beside a column of 1e4 (another task)."""

    def forward(self, x):
        small = super().forward(x)
        return torch.cat([small, small + 1e4], dim=1)


class BesideALargeHeadNet(ErfinvNet):
    """ErfinvNet's output (head 0, the target) beside a head of 1e4."""

    def forward(self, x):
        small = super().forward(x)
        return small, small + 1e4


@pytest.mark.parametrize("model_class, target", [(BesideALargeColumnNet, 0),
                                                 (BesideALargeHeadNet, lambda output: output[0][:, 0])])
def test_wrong_user_rule_is_caught_beside_large_outputs_the_target_does_not_read(model_class, target, data):
    # The tolerance follows the outputs the target reads: 1e4 elsewhere in the model's outputs loosens nothing.
    def gradient_rule(mode, func, args, kwargs):
        out = func(*args, **kwargs)
        mark_varying(out)
        return out

    X, refs = data
    model = _seeded(model_class)
    with pytest.raises(ModelError, match="summation-to-delta fails"):
        deep_lift_shap(model, X, refs, target=target, rules={"erfinv": gradient_rule})
    assert deep_lift_shap(model, X, refs, target=target, rules={"erfinv": elementwise},
                          return_delta=True).delta.max() < 1e-6


def test_user_rule_that_changes_values_is_refused(data):
    def doubling_rule(mode, func, args, kwargs):
        out = 2 * func(*args, **kwargs)
        mark_varying(out)
        return out

    X, refs = data
    with pytest.raises(ModelError, match="differs from its plain output"):
        deep_lift_shap(_seeded(ErfinvNet), X, refs, rules={"erfinv": doubling_rule})


def test_user_rules_must_be_callables_by_name(data):
    X, refs = data
    with pytest.raises(ConfigError, match="rules must map operation names"):
        deep_lift_shap(_seeded(ErfinvNet), X, refs, rules={"erfinv": "rescale"})


class TorchTransformerNet(nn.Module):
    """torch's own nn.TransformerEncoderLayer (nn.MultiheadAttention, LayerNorm, GELU) over a conv stem."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.stem = nn.Conv1d(4, channels, 5, padding=2)
        self.encoder = nn.TransformerEncoderLayer(channels, 4, 32, dropout=0.1, activation="gelu", batch_first=True)
        self.out = nn.Linear(channels, 1)

    def forward(self, x):
        return self.out(self.encoder(self.stem(x).transpose(1, 2)).mean(1))


class PreNormTorchTransformerNet(TorchTransformerNet):
    """The same with the layer norms first and a ReLU feed-forward block."""

    def __init__(self, channels: int = 16):
        super().__init__(channels)
        self.encoder = nn.TransformerEncoderLayer(channels, 4, 32, dropout=0.1, activation="relu", batch_first=True,
                                                  norm_first=True)


# TorchScript cannot script TransformerBlock (it unpacks a tensor into q, k, v); it is traced. Traced
# under no_grad in eval mode, torch's own encoder layer records its fused operations.
@pytest.mark.parametrize("model_class, export", [
    (TransformerBlock, "trace"), (EnformerAttentionBlock, "script"), (EnformerAttentionBlock, "trace"),
    (GRUNet, "script"), (GRUNet, "trace"), (TorchTransformerNet, "script"), (TorchTransformerNet, "trace"),
    (PreNormTorchTransformerNet, "script"), (PreNormTorchTransformerNet, "trace"),
])
def test_torchscript_exports_are_explained_as_their_python_class(model_class, export, data):
    X, refs = data
    model = _seeded(model_class)
    with torch.no_grad():
        exported = torch.jit.script(model) if export == "script" else torch.jit.trace(model, X)
    expected = deep_lift_shap(model, X, refs, hypothetical=True)
    torch.testing.assert_close(deep_lift_shap(exported, X, refs, hypothetical=True), expected, rtol=0, atol=1e-6)


class OptionalControlNet(nn.Module):
    """bpnet-lite's BPNet.forward(X, X_ctl=None): a control track added when it is given."""

    def __init__(self):
        super().__init__()
        self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(8, 1)

    def forward(self, x, control: Optional[torch.Tensor] = None, weight: float = 2.0):
        h = F.relu(self.conv(x))
        if control is not None:
            h = h + control
        return self.out(weight * h.mean(-1))


class RequiredControlNet(OptionalControlNet):
    def forward(self, x, control: torch.Tensor):
        return self.out(F.relu(self.conv(x) + control).mean(-1))


def _assert_scripted_equals_python(model: nn.Module, X: torch.Tensor, refs: torch.Tensor) -> None:
    """The model's TorchScript script is explained as its Python class is."""
    expected = deep_lift_shap(model, X, refs, hypothetical=True)
    torch.testing.assert_close(deep_lift_shap(torch.jit.script(model), X, refs, hypothetical=True), expected,
                               rtol=0, atol=1e-6)


def test_a_scripted_forward_is_explained_with_the_defaults_of_the_arguments_it_is_not_given(data):
    X, refs = data
    _assert_scripted_equals_python(_seeded(OptionalControlNet), X, refs)
    with pytest.raises(ModelError, match=r"forward needs its argument 'control' \(Tensor\), which has no default"):
        deep_lift_shap(torch.jit.script(_seeded(RequiredControlNet)), X, refs)


class InPlaceGatedNet(GatedNet):
    """The gated convolution with its products written in place, as gated blocks often are."""

    def __init__(self, kind: str = "imul"):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        h, gate = self.value(x), torch.sigmoid(self.gate(x))
        if self.kind == "imul":
            h *= gate
        elif self.kind == "mul_":
            h.mul_(gate)
        else:
            h.div_(1 / gate)
        return self.out(h.mean(-1))


@pytest.mark.parametrize("kind", ["imul", "mul_", "div_"])
def test_in_place_products_of_two_input_dependent_tensors_are_explained(kind, data):
    X, refs = data
    torch.manual_seed(3)
    model = InPlaceGatedNet(kind).eval()
    assert _relative_summation_error(model, X, refs) < 1e-4
    torch.testing.assert_close(deep_lift_shap(model, X, refs, hypothetical=True),
                               deep_lift_shap(_seeded(GatedNet), X, refs, hypothetical=True), rtol=0, atol=1e-6)


def test_glu_is_explained_as_the_gate_written_out(data):
    X, refs = data
    torch.testing.assert_close(deep_lift_shap(_seeded(GluNet), X, refs, hypothetical=True),
                               deep_lift_shap(_seeded(GatedNet), X, refs, hypothetical=True), rtol=0, atol=1e-6)


class IndexedNet(nn.Module):
    """Tensor indexing (a relative-position bias gathered from a table, every other position kept) and a
    convolution with padding="same", as DeepSTARR's Keras ports write it: aten::index and
    aten::_convolution_mode in a trace."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 9, padding="same")
        self.table = nn.Parameter(torch.randn(8, 2 * LENGTH - 1))
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        positions = torch.arange(x.shape[2])
        bias = torch.softmax(self.table[:, positions[None, :] - positions[:, None] + x.shape[2] - 1], dim=-1)
        h = torch.einsum("ncl,clm->ncm", F.relu(self.conv(x)), bias)
        return self.out(h[:, :, torch.arange(0, x.shape[2], 2)].mean(-1))


@pytest.mark.parametrize("export", ["script", "trace"])
def test_tensor_indexing_and_same_padding_exports_are_explained_as_their_python_class(export, data):
    X, refs = data
    model = _seeded(IndexedNet)
    with torch.no_grad():
        exported = torch.jit.script(model) if export == "script" else torch.jit.trace(model, X)
    expected = deep_lift_shap(model, X, refs, hypothetical=True)
    assert _relative_summation_error(model, X, refs) < 1e-4
    torch.testing.assert_close(deep_lift_shap(exported, X, refs, hypothetical=True), expected, rtol=0, atol=1e-6)


def test_a_traced_refusal_names_the_node_and_the_models_line(data):
    X, refs = data
    exported = torch.jit.trace(_seeded(ErfinvNet), X)
    with pytest.raises(ModelError, match=r"`erfinv` called at the model's TorchScript node aten::erfinv at "
                                         r"\S*test_attribution_registry.py\(\d+\): forward"):
        deep_lift_shap(exported, X, refs)


class ScaledAttentionNet(nn.Module):
    """Self-attention written out, its scores scaled by math.sqrt of the head size: in a script, aten::sqrt of a
    float."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.stem = nn.Conv1d(4, channels, 5, padding=2)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, 1)

    def forward(self, x):
        h = torch.relu(self.stem(x)).transpose(1, 2)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scores = q @ k.transpose(1, 2) / math.sqrt(float(q.shape[-1]))
        return self.out((torch.softmax(scores, dim=-1) @ v).mean(1))


def test_a_scripted_function_of_a_number_is_computed_as_a_number(data):
    X, refs = data
    _assert_scripted_equals_python(_seeded(ScaledAttentionNet), X, refs)


class WeightedAttentionNet(TorchTransformerNet):
    """nn.MultiheadAttention called with its default need_weights=True, whose Python path folds the heads into
    the batch axis."""

    def __init__(self, channels: int = 16):
        super().__init__(channels)
        self.attention = nn.MultiheadAttention(channels, 2, batch_first=True)

    def forward(self, x):
        h = self.stem(x).transpose(1, 2)
        return self.out(self.attention(h, h, h)[0].mean(1))


@pytest.mark.parametrize("export", ["script", "trace"])
def test_torch_code_inlined_into_a_graph_is_refused_with_the_python_class_as_the_way_out(export, data):
    X, refs = data
    model = _seeded(WeightedAttentionNet)
    assert _relative_summation_error(model, X, refs) < 1e-4
    exported = torch.jit.script(model) if export == "script" else torch.jit.trace(model, X, check_trace=False)
    with pytest.raises(ModelError, match=r"TorchScript node aten::bmm .*; the operation is torch's own "
                                         r"multi_head_attention_forward \(torch/nn/functional.py, line \d+\) inlined "
                                         r"into the graph, .* "
                                         r"model.load_state_dict\(torch.jit.load\(path\).state_dict\(\)\)"):
        deep_lift_shap(exported, X, refs)


class BilinearNet(nn.Module):
    """nn.Bilinear, for which no rule exists in the Python class either."""

    def __init__(self):
        super().__init__()
        self.bilinear = nn.Bilinear(4, 4, 1)

    def forward(self, x):
        h = x.mean(-1)
        return self.bilinear(h, h)


@pytest.mark.parametrize("export", ["script", "trace"])
def test_a_refusal_in_torch_code_of_one_operation_is_not_sent_to_the_python_class(export, data):
    X, refs = data
    model = _seeded(BilinearNet)
    with pytest.raises(ModelError) as python_refusal:
        deep_lift_shap(model, X, refs)
    exported = torch.jit.script(model) if export == "script" else torch.jit.trace(model, X)
    with pytest.raises(ModelError, match="bilinear") as refusal:
        deep_lift_shap(exported, X, refs)
    assert "inlined into the graph" not in str(refusal.value) and "bilinear" in str(python_refusal.value)


class FusedRecurrentNet(nn.Module):
    """torch's own nn.GRU / nn.LSTM (two layers, bidirectional) over pooled convolutional features."""

    def __init__(self, kind: str):
        super().__init__()
        self.stem = nn.Conv1d(4, 8, 5, padding=2)
        layer = nn.GRU if kind == "gru" else nn.LSTM
        self.recurrent = layer(8, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(12, 1)

    def forward(self, x):
        steps = F.avg_pool1d(torch.relu(self.stem(x)), 8).transpose(1, 2)
        return self.out(self.recurrent(steps)[0][:, -1])


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_torch_recurrent_layers_sum_to_the_plain_output_difference(kind, data):
    X, refs = data
    torch.manual_seed(5)
    assert _relative_summation_error(FusedRecurrentNet(kind).eval(), X, refs) < 1e-4


@pytest.mark.parametrize("export", ["script", "trace"])
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_torch_recurrent_layers_exported_are_explained_as_their_python_class(kind, export, data):
    X, refs = data
    torch.manual_seed(5)
    model = FusedRecurrentNet(kind).eval()
    with torch.no_grad():
        exported = torch.jit.script(model) if export == "script" else torch.jit.trace(model, X)
    expected = deep_lift_shap(model, X, refs, hypothetical=True)
    torch.testing.assert_close(deep_lift_shap(exported, X, refs, hypothetical=True), expected, rtol=0, atol=1e-6)


def test_composite_user_rule_from_the_documentation(data):
    # docs/methods/deeplift.md: torch.addcmul(x, a, b, value=v) = x + v · a · b.
    def addcmul(mode, func, args, kwargs):
        x, a, b = args[:3]
        product = mode.product(torch.mul, a, b) if is_varying(a) and is_varying(b) else a * b
        out = x + kwargs.get("value", 1) * product
        mark_varying(out)
        return out

    class FiLMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.gate = nn.Conv1d(4, 8, 5, padding=2), nn.Conv1d(4, 8, 5, padding=2)
            self.out = nn.Linear(8, 1)

        def forward(self, x):
            h = self.conv(x)
            return self.out(torch.addcmul(h, torch.tanh(h), torch.sigmoid(self.gate(x)), value=0.5).mean(-1))

    X, refs = data
    with pytest.raises(ModelError, match="`addcmul`"):
        deep_lift_shap(_seeded(FiLMNet), X, refs)
    assert _relative_summation_error(_seeded(FiLMNet), X, refs, rules={"addcmul": addcmul}) < 1e-4


class FusedAttentionNet(nn.Module):
    """Self-attention through F.scaled_dot_product_attention, with an additive position bias."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.stem, self.qkv = nn.Conv1d(4, channels, 5, padding=2), nn.Linear(channels, 3 * channels)
        self.bias = nn.Parameter(0.1 * torch.randn(LENGTH, LENGTH))
        self.out = nn.Linear(channels, 1)

    def forward(self, x):
        q, k, v = self.qkv(self.stem(x).transpose(1, 2)).unsqueeze(1).chunk(3, dim=-1)
        return self.out(F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias)[:, 0].mean(1))


def test_scaled_dot_product_attention_sums_to_the_plain_output_difference(data):
    X, refs = data
    assert _relative_summation_error(_seeded(FusedAttentionNet), X, refs) < 1e-4


class CausalAttentionNet(nn.Module):
    """Causal self-attention three ways: torch's is_causal, an additive mask of -inf, and a hand-written softmax
    over scores whose future positions are filled with -inf (a padding mask's way, too)."""

    def __init__(self, kind: str, channels: int = 8):
        super().__init__()
        self.kind = kind
        self.stem, self.qkv = nn.Conv1d(4, channels, 5, padding=2), nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, 1)

    def forward(self, x):
        q, k, v = self.qkv(self.stem(x).transpose(1, 2)).unsqueeze(1).chunk(3, dim=-1)
        future = torch.ones(x.shape[-1], x.shape[-1], dtype=torch.bool).triu(1)
        if self.kind == "is_causal":
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif self.kind == "additive":
            mask = torch.zeros(future.shape).masked_fill(future, float("-inf"))
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            scores = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).masked_fill(future, float("-inf"))
            attended = torch.softmax(scores, dim=-1) @ v
        return self.out(attended[:, 0].mean(1))


@pytest.mark.parametrize("kind", ["is_causal", "additive", "masked_fill"])
def test_causal_attention_with_masks_of_minus_infinity_sums_to_the_plain_output_difference(kind, data):
    X, refs = data
    model = _seeded(functools.partial(CausalAttentionNet, kind))
    with torch.no_grad():
        torch.testing.assert_close(model(X), _seeded(functools.partial(CausalAttentionNet, "masked_fill"))(X))
    assert _relative_summation_error(model, X, refs) < 1e-4


class SharpLogitsNet(nn.Module):
    """Softmax, log_softmax or logsumexp over the positions of a motif scan scoring +scale per matching base and
    -scale per mismatch (a trained attention pool): a sequence with the motif and a reference far from it have
    largest logits 12 · scale apart."""

    MOTIF = "GATAAG"

    def __init__(self, kind: str, scale: float):
        super().__init__()
        self.kind = kind
        self.logit = nn.Conv1d(4, 1, len(self.MOTIF), bias=False)
        self.feature, self.out = nn.Conv1d(4, 4, 7, padding=3), nn.Linear(4, 1)
        with torch.no_grad():
            motif = torch.eye(4)[["ACGT".index(base) for base in self.MOTIF]].T
            self.logit.weight[:] = scale * (2 * motif - 1)

    def forward(self, x):
        z = self.logit(x)
        h = F.relu(self.feature(x))[..., :z.shape[-1]]
        if self.kind == "softmax":
            pooled = (h * torch.softmax(z, dim=-1)).sum(-1)
        elif self.kind == "log_softmax":
            pooled = (h * F.log_softmax(z, dim=-1)).mean(-1)
        else:
            pooled = h.mean(-1) + torch.logsumexp(z, dim=-1)
        return self.out(pooled)


@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("autocast, scale", [(None, 10.0), (torch.float16, 2.0), (torch.bfloat16, 2.0)])
def test_exponential_normalisations_are_exact_however_far_a_reference_lies_below_its_sequence(kind, autocast, scale,
                                                                                                data):
    # Gaps of 120 (float32) and 24 (float16, bfloat16): a sum shifted by the largest value of a sequence and all its references
    # is 0 for a poly-C reference, whose log is -inf, where the plain model is finite.
    X, refs = data
    X = X.clone()
    X[:, :, 20:26] = torch.eye(4)[["ACGT".index(base) for base in SharpLogitsNet.MOTIF]].T
    refs = refs.clone()
    refs[:, 0] = torch.eye(4)[1][:, None]
    torch.manual_seed(3)
    model = SharpLogitsNet(kind, scale).eval()
    context = torch.autocast("cpu", dtype=autocast) if autocast else torch.autocast("cpu", enabled=False)
    with torch.no_grad(), context:
        assert torch.isfinite(model(refs.flatten(0, 1))).all() and torch.isfinite(model(X)).all()
    if autocast is None:
        assert _relative_summation_error(model, X, refs) < 1e-4
    else:
        assert torch.isfinite(deep_lift_shap(model, X, refs, autocast=autocast)).all()


@pytest.mark.parametrize("model_class", [TorchTransformerNet, PreNormTorchTransformerNet])
def test_torch_transformer_encoder_layer_sums_to_the_plain_output_difference(model_class, data):
    X, refs = data
    assert _relative_summation_error(_seeded(model_class), X, refs) < 1e-4
