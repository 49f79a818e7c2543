"""DeepLIFT / DeepSHAP engine: exactness, agreement with the field's tools, refusals, options."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genomatt.attribution import DeepLiftShapResult, deep_lift_shap, hold_at_sequence, hypothetical_contributions
from genomatt.attribution.deeplift import probe_rules
from genomatt.errors import ConfigError, ModelError, NonFiniteError, SequenceError

LENGTH = 96
N_SEQUENCES = 4
N_REFERENCES = 5


# --- test models ----------------------------------------------------------------------------------
# Module-based (every nonlinearity its own module, used once) so the hook-based peers handle them.


class BPNetLike(nn.Module):
    """Dilated residual CNN with a global-average count head, as in BPNet."""

    def __init__(self, channels: int = 12, n_layers: int = 4, n_outputs: int = 2):
        super().__init__()
        self.stem = nn.Conv1d(4, channels, 11, padding=5)
        self.stem_relu = nn.ReLU()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, 3, padding=2**i, dilation=2**i) for i in range(1, n_layers + 1)
        )
        self.relus = nn.ModuleList(nn.ReLU() for _ in range(n_layers))
        self.head = nn.Linear(channels, n_outputs)

    def forward(self, x):
        h = self.stem_relu(self.stem(x))
        for conv, relu in zip(self.convs, self.relus):
            h = h + relu(conv(h))
        return self.head(h.mean(-1))


class BassetLike(nn.Module):
    """Conv + eval BatchNorm + ReLU + non-overlapping max pools, then dense layers, as in Basset."""

    def __init__(self, n_outputs: int = 3):
        super().__init__()
        self.conv1, self.bn1, self.relu1, self.pool1 = nn.Conv1d(4, 12, 9, padding=4), nn.BatchNorm1d(12), nn.ReLU(), nn.MaxPool1d(4)
        self.conv2, self.bn2, self.relu2, self.pool2 = nn.Conv1d(12, 12, 5, padding=2), nn.BatchNorm1d(12), nn.ReLU(), nn.MaxPool1d(4)
        self.flatten = nn.Flatten()
        self.fc, self.relu3, self.out = nn.Linear(12 * (LENGTH // 16), 16), nn.ReLU(), nn.Linear(16, n_outputs)

    def forward(self, x):
        h = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        h = self.pool2(self.relu2(self.bn2(self.conv2(h))))
        return self.out(self.relu3(self.fc(self.flatten(h))))


class FunctionalNet(nn.Module):
    """Nonlinearities called as functions, which module hooks never see."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(4, 8, 7, padding=3), nn.Conv1d(8, 8, 5, padding=2)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.max_pool1d(h, 2)
        h = torch.sigmoid(self.conv2(h)) * 2.0 + h.tanh()
        return self.out(F.elu(h).exp().mean(-1))


class ReusedReLUNet(nn.Module):
    """One nn.ReLU object called at three places."""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1, self.conv2, self.conv3 = (nn.Conv1d(4 if i == 0 else 8, 8, 5, padding=2) for i in range(3))
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        h = self.relu(self.conv1(x))
        h = self.relu(self.conv2(h)) + h
        h = self.relu(self.conv3(h))
        return self.out(h.mean(-1))


class OverlappingPoolNet(nn.Module):
    """MaxPool1d(kernel 3, stride 1): one input can win several windows."""

    def __init__(self):
        super().__init__()
        self.conv1, self.relu1, self.pool1 = nn.Conv1d(4, 8, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool1d(3, stride=1)
        self.conv2, self.relu2, self.pool2 = nn.Conv1d(8, 8, 3), nn.ReLU(), nn.MaxPool1d(4, stride=2)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        h = self.pool1(self.relu1(self.conv1(x)))
        h = self.pool2(self.relu2(self.conv2(h)))
        return self.out(torch.amax(h, dim=-1))


class InPlaceNet(nn.Module):
    """In-place ReLUs and additions, a 2-D max pool and a max over the length axis."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(4, 8, 5, padding=2), nn.Conv1d(8, 8, 3, padding=1)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        h = self.conv1(x)
        h.relu_()
        skip = h
        h = self.conv2(h)
        F.relu(h, inplace=True)
        h += skip
        h = F.max_pool2d(h.unsqueeze(2), (1, 3)).squeeze(2)
        return self.out(h.max(dim=-1).values)


class GatedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.value, self.gate = nn.Conv1d(4, 8, 5, padding=2), nn.Conv1d(4, 8, 5, padding=2)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        h = self.value(x) * torch.sigmoid(self.gate(x))
        return self.out(h.mean(-1))


class AttentionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv1d(4, 8, 5, padding=2)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        h = self.embed(x).transpose(1, 2)
        weights = torch.softmax(h @ h.transpose(1, 2), dim=-1)
        return self.out((weights @ h).mean(1))


class HyenaLike(nn.Module):
    """HyenaDNA's operator: projections, a short depthwise convolution, gates, and a long convolution by FFT
    whose filter an MLP of the positions makes (a constant of the input)."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.in_proj = nn.Conv1d(4, 3 * width, 1)
        self.short = nn.Conv1d(3 * width, 3 * width, 3, padding=2, groups=3 * width)
        self.filter = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, width))
        self.bias = nn.Parameter(torch.randn(width))
        self.out = nn.Linear(width, 2)

    def forward(self, x):
        length = x.shape[-1]
        u = self.short(self.in_proj(x))[..., :length]
        x1, x2, v = u.split(u.shape[1] // 3, dim=1)
        t = torch.linspace(0, 1, length, device=x.device)[:, None]
        k = (self.filter(torch.cat([t, torch.sin(6.0 * t), torch.cos(6.0 * t)], dim=-1)) * torch.exp(-3.0 * t)).t()
        fft_size = 2 * length
        k_f = torch.fft.rfft(k, n=fft_size) / fft_size
        v_f = torch.fft.rfft(v * x1, n=fft_size)
        y = torch.fft.irfft(v_f * k_f, n=fft_size, norm="forward")[..., :length] + v * x1 * self.bias[:, None]
        return self.out(F.gelu(y * x2).mean(-1))


class MambaLike(nn.Module):
    """A Mamba block with the reference selective scan (mamba_ssm's ``selective_scan_ref``, as Caduceus runs
    without its CUDA kernel): input-dependent step sizes and state matrices, a three-operand einsum, and a
    recurrence of products over the positions."""

    def __init__(self, width: int = 6, states: int = 3, rank: int = 2):
        super().__init__()
        self.in_proj = nn.Linear(4, 2 * width)
        self.conv = nn.Conv1d(width, width, 4, groups=width, padding=3)
        self.x_proj = nn.Linear(width, rank + 2 * states)
        self.dt_proj = nn.Linear(rank, width)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, states + 1).float()).repeat(width, 1))
        self.D = nn.Parameter(torch.ones(width))
        self.out = nn.Linear(width, 1)
        self.sizes = [rank, states, states]

    def forward(self, x):
        length = x.shape[-1]
        u, z = self.in_proj(x.transpose(1, 2)).transpose(1, 2).chunk(2, dim=1)
        u = F.silu(self.conv(u)[..., :length])
        dt, B, C = torch.split(self.x_proj(u.transpose(1, 2)), self.sizes, dim=-1)
        delta = F.softplus(self.dt_proj(dt)).transpose(1, 2)
        delta_A = torch.exp(torch.einsum("bdl,dn->bdln", delta, -torch.exp(self.A_log)))
        delta_B_u = torch.einsum("bdl,bln,bdl->bdln", delta, B, u)
        state = x.new_zeros(x.shape[0], u.shape[1], self.sizes[1])
        ys = []
        for i in range(length):
            state = delta_A[:, :, i] * state + delta_B_u[:, :, i]
            ys.append(torch.einsum("bdn,bn->bd", state, C[:, i]))
        y = (torch.stack(ys, dim=2) + u * self.D[:, None]) * F.silu(z)
        return self.out(y.mean(-1))


class AdaptiveMaxPoolNet(nn.Module):
    """Adaptive max pools as a layer and as torch's own function, which returns values and indices (as aten's
    does, which a TorchScript graph of either calls)."""

    def __init__(self):
        super().__init__()
        self.conv, self.pool, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.AdaptiveMaxPool1d(4), nn.Linear(40, 2)

    def forward(self, x):
        h = F.relu(self.conv(x))
        values, _ = torch.adaptive_max_pool1d(h, 1)
        return self.out(torch.cat([self.pool(h), values], dim=-1).flatten(1))


class MinPoolNet(nn.Module):
    """Minima over the positions (a min pool) as amin and as torch.min with values and indices."""

    def __init__(self):
        super().__init__()
        self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(16, 2)

    def forward(self, x):
        h = torch.tanh(self.conv(x))
        return self.out(torch.cat([h.amin(-1), torch.min(h, dim=2, keepdim=True)[0].squeeze(-1)], dim=1))


class LinearModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4 * LENGTH, 1)

    def forward(self, x):
        return self.linear(x.flatten(1))


def _initialised(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights, and random running statistics so batch norm is not the identity."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            nn.init.normal_(module.weight, std=1.0 / np.sqrt(module.weight[0].numel()))
            if module.bias is not None:
                nn.init.normal_(module.bias, std=0.1)
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.normal_(std=0.3)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(module.weight, 1.0, 0.3)
            nn.init.normal_(module.bias, std=0.1)
    return model.eval()


def _one_hot(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    bases = rng.integers(0, 4, size=shape)
    return torch.from_numpy(np.eye(4, dtype=np.float32)[bases]).movedim(-1, -2).contiguous()


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences (N, 4, L) and references (N, R, 4, L) shared by the agreement tests."""
    return _one_hot((N_SEQUENCES, LENGTH), 1), _one_hot((N_SEQUENCES, N_REFERENCES, LENGTH), 2)


def _delta(model: nn.Module, X: torch.Tensor, refs: torch.Tensor, **options) -> torch.Tensor:
    return deep_lift_shap(model, X, refs, return_delta=True, **options).delta


def _summation_error(model: nn.Module, X: torch.Tensor, refs: torch.Tensor, target: int = 0, **options) -> float:
    """Max over regions and references of |f(x) − f(ref) − Σ m · (x − ref)|, one reference at a time."""
    worst = 0.0
    with torch.no_grad():
        out_x = model(X)[:, target]
    for k in range(refs.shape[1]):
        ref = refs[:, k : k + 1]
        hyp = deep_lift_shap(model, X, ref, target=target, hypothetical=True, **options)
        with torch.no_grad():
            out_ref = model(ref[:, 0])[:, target]
        summed = (X * hyp).sum(dim=(1, 2))
        worst = max(worst, float((out_x - out_ref - summed).abs().max()))
    return worst


# --- exactness ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_class", [BPNetLike, BassetLike, FunctionalNet, ReusedReLUNet, OverlappingPoolNet, InPlaceNet,
                                         HyenaLike, MambaLike, AdaptiveMaxPoolNet, MinPoolNet])
def test_summation_to_delta_at_float_precision(model_class, data):
    X, refs = data
    model = _initialised(model_class())
    assert float(_delta(model, X, refs).max()) < 1e-5
    # Independently of the engine's own delta: sum the returned contributions for each reference.
    assert _summation_error(model, X, refs[:, :2]) < 1e-5


@pytest.mark.parametrize("max_rule", ["shapley", "cross_max"])
@pytest.mark.parametrize("model_class", [BassetLike, OverlappingPoolNet, FunctionalNet, InPlaceNet])
def test_fused_cpu_kernels_match_the_torch_rules(model_class, max_rule, data, monkeypatch):
    from genomatt.attribution import kernels

    X, refs = data
    model = _initialised(model_class())
    fused = deep_lift_shap(model, X, refs, hypothetical=True, max_rule=max_rule)
    monkeypatch.setattr(kernels, "usable", lambda *tensors: False)
    torch.testing.assert_close(deep_lift_shap(model, X, refs, hypothetical=True, max_rule=max_rule), fused,
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("fused", [True, False])
def test_rescale_falls_back_to_the_derivative_where_the_difference_vanishes(fused, monkeypatch):
    from genomatt.attribution import kernels, rules

    if not fused:
        monkeypatch.setattr(kernels, "usable", lambda *tensors: False)
    z_in = torch.tensor([[0.5, -1.0, 2.0]])
    z_ref = torch.tensor([[0.5, 1.0, 2.0 + 1e-8], [1.5, -1.0, 0.0]])
    multiplier = rules.rescale_multiplier(z_in, z_ref, torch.sigmoid(z_in), torch.sigmoid(z_ref),
                                          lambda: torch.sigmoid(z_in) * (1 - torch.sigmoid(z_in)))
    slope = torch.sigmoid(z_in) * (1 - torch.sigmoid(z_in))
    secant = (torch.sigmoid(z_in) - torch.sigmoid(z_ref)) / (z_in - z_ref)
    magnitude = torch.maximum(z_in.abs(), z_ref.abs()).clamp(max=1.0)
    expected = torch.where((z_in - z_ref).abs() <= rules.SECANT_FALLBACK * magnitude, slope, secant)
    torch.testing.assert_close(multiplier, expected)
    assert multiplier[0, 0] == slope[0, 0] and multiplier[1, 1] == slope[0, 1]


@pytest.mark.parametrize("fused", [True, False])
def test_rescale_keeps_the_secant_of_a_function_steep_near_zero(fused, monkeypatch):
    # log of the tiny sums a logsumexp shifted by its group's maximum makes: differences of 1e-9 are large
    # for values of 1e-8, where the derivative (1e8 against a secant of 6.9e7) would break the sum.
    from genomatt.attribution import kernels, rules

    if not fused:
        monkeypatch.setattr(kernels, "usable", lambda *tensors: False)
    z_in, z_ref = torch.tensor([[1e-8, 3e-30]], dtype=torch.float64), torch.tensor([[2e-8, 3e-30]], dtype=torch.float64)
    multiplier = rules.rescale_multiplier(z_in, z_ref, torch.log(z_in), torch.log(z_ref), lambda: 1 / z_in)
    assert multiplier[0, 0] == pytest.approx(float((np.log(1e-8) - np.log(2e-8)) / (1e-8 - 2e-8)), rel=1e-9)
    assert multiplier[0, 1] == pytest.approx(1 / 3e-30)  # no difference at all: the derivative


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode",
                         [(3, 3, 0, 1, False), (3, 1, 0, 1, False), (4, 2, 1, 1, True), (3, 2, 1, 2, False),
                          (5, 5, 2, 1, True)])
def test_fused_max_pool_matches_torch(kernel, stride, padding, dilation, ceil_mode):
    from genomatt.attribution import kernels, rules

    torch.manual_seed(0)
    b = 2
    z = torch.relu(torch.randn(b + b * 3, 5, 37))
    z[b:b + 3, 1] = z[0, 1]
    out, indices = F.max_pool1d_with_indices(z, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    fused = kernels.max_pool1d_cross_max(z, b, kernel, stride, padding, dilation, ceil_mode)
    assert torch.equal(fused[0], out) and torch.equal(fused[1], indices)
    expected = rules._cross_max_coefficients(z[:b], out[:b], indices[:b], rules.pairs(z[b:], b),
                                             rules.pairs(out[b:], b), rules.pairs(indices[b:], b))
    assert torch.equal(fused[2], expected[0]) and torch.equal(fused[3], expected[1])


def test_prediction_is_the_model_output(data):
    X, refs = data
    model = _initialised(BassetLike())
    result = deep_lift_shap(model, X, refs, target=2, return_delta=True)
    with torch.no_grad():
        torch.testing.assert_close(result.prediction, model(X)[:, 2])


def test_linear_model_contributions_are_difference_times_weight(data):
    X, refs = data
    model = _initialised(LinearModel())
    weight = model.linear.weight.detach().reshape(4, LENGTH)
    contributions = deep_lift_shap(model, X, refs)
    expected = (weight * (X.unsqueeze(1) - refs)).sum(dim=2).mean(dim=1)
    torch.testing.assert_close(contributions.sum(dim=1), expected, rtol=0, atol=1e-6)
    hypothetical = deep_lift_shap(model, X, refs, hypothetical=True)
    expected_hypothetical = (weight - (weight * refs).sum(dim=2, keepdim=True)).mean(dim=1)
    torch.testing.assert_close(hypothetical, expected_hypothetical, rtol=0, atol=1e-6)


class BiasFreeReLUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.relu1 = nn.Conv1d(4, 8, 7, padding=3, bias=False), nn.ReLU()
        self.pool = nn.MaxPool1d(2)
        self.conv2, self.relu2 = nn.Conv1d(8, 8, 5, padding=2, bias=False), nn.ReLU()
        self.fc, self.relu3 = nn.Linear(8 * LENGTH // 2, 8, bias=False), nn.ReLU()
        self.out = nn.Linear(8, 1, bias=False)

    def forward(self, x):
        h = self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x)))))
        return self.out(self.relu3(self.fc(h.flatten(1))))


def test_rescale_equals_gradient_times_input_for_bias_free_relu_net_and_zero_reference(data):
    # Ancona et al. (ICLR 2018), Prop. 3: with ReLU (and max pooling) and a zero reference, every
    # hidden unit of the reference is 0 when the network has no biases, so each secant
    # relu(z) / z equals the gradient 1[z > 0]; hence Rescale = gradient × input.
    X, _ = data
    model = _initialised(BiasFreeReLUNet())
    zero = torch.zeros(X.shape[0], 1, 4, LENGTH)
    hypothetical = deep_lift_shap(model, X, zero, hypothetical=True)
    inputs = X.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(inputs)[:, 0].sum(), inputs)
    torch.testing.assert_close(hypothetical, gradient, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(deep_lift_shap(model, X, zero), gradient * X, rtol=1e-5, atol=1e-7)


# --- agreement with independent implementations ----------------------------------------------------


@pytest.mark.parametrize("model_class", [BPNetLike, BassetLike])
@pytest.mark.parametrize("hypothetical", [False, True])
def test_agrees_with_tangermeme(model_class, hypothetical, data):
    from tangermeme.deep_lift_shap import deep_lift_shap as tangermeme_deep_lift_shap

    X, refs = data
    model = _initialised(model_class())
    ours = deep_lift_shap(model, X, refs, target=1, hypothetical=hypothetical)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = tangermeme_deep_lift_shap(model, X, references=refs, target=1, hypothetical=hypothetical,
                                           device="cpu", batch_size=16)
    assert float((ours - theirs).abs().max()) < 1e-5
    assert float(ours.abs().max()) > 1e-3


@pytest.mark.parametrize("model_class", [BPNetLike, BassetLike])
def test_agrees_with_shap_deep_explainer(model_class, data):
    import shap

    X, refs = data
    model = _initialised(model_class())
    ours = deep_lift_shap(model, X, refs, target=1)
    for i in range(X.shape[0]):
        explainer = shap.DeepExplainer(model, refs[i])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.asarray(explainer.shap_values(X[i : i + 1], check_additivity=False))[0, ..., 1]
        # shap reports m · (x − ref) per channel; the contribution of a position is its sum, which
        # genomatt places on the observed base.
        theirs = torch.from_numpy(values).float().sum(dim=0)
        assert float((ours[i].sum(dim=0) - theirs).abs().max()) < 1e-5


def _captum_hypothetical(multipliers, inputs, baselines):
    return tuple(hypothetical_contributions(m, b) for m, b in zip(multipliers, baselines))


def test_agrees_with_captum_on_bpnet_like(data):
    from captum.attr import DeepLiftShap

    X, refs = data
    model = _initialised(BPNetLike())
    ours = deep_lift_shap(model, X, refs, target=1, hypothetical=True)
    for i in range(X.shape[0]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = DeepLiftShap(model).attribute(X[i : i + 1], refs[i], target=1,
                                                   custom_attribution_func=_captum_hypothetical)
        assert float((ours[i] - theirs[0]).abs().max()) < 1e-5


def test_exact_where_captum_max_pool_rule_is_not(data):
    from captum.attr import DeepLiftShap

    X, refs = data
    model = _initialised(BassetLike())
    with torch.no_grad():
        output_change = (model(X)[:, 1:2] - model(refs.flatten(0, 1))[:, 1].reshape(X.shape[0], -1)).abs().max()
    ours = _delta(model, X, refs, target=1)
    captum_delta = []
    for i in range(X.shape[0]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, delta = DeepLiftShap(model).attribute(X[i : i + 1], refs[i], target=1, return_convergence_delta=True)
        captum_delta.append(delta.abs().max())
    assert float(ours.max()) < 1e-5
    assert float(max(captum_delta)) > 0.1 * float(output_change)


# --- refusals -------------------------------------------------------------------------------------


def test_operation_without_a_rule_is_refused_with_its_location(data):
    class ErfinvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(8, 1)

        def forward(self, x):
            return self.out(torch.erfinv(0.5 * torch.tanh(self.conv(x))).mean(-1))

    X, refs = data
    with pytest.raises(ModelError) as error:
        deep_lift_shap(_initialised(ErfinvNet()), X, refs)
    message = str(error.value)
    assert "`erfinv` called in the forward of the model (ErfinvNet)" in message
    assert "test_attribution_deeplift.py:" in message
    assert "rules={'erfinv': ...}" in message


class _StraightThrough(torch.autograd.Function):
    """A custom Function whose backward is not its forward's derivative."""

    @staticmethod
    def forward(ctx, h):
        return torch.tanh(h)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _Branchy(nn.Module):
    """Two conv branches; ``kind`` says how the second one hides from autograd."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.a, self.b = nn.Conv1d(4, 8, 5, padding=2), nn.Conv1d(4, 8, 5, padding=2)
        if kind == "script_module":
            self.scripted = torch.jit.script(nn.Sequential(nn.Conv1d(4, 8, 5, padding=2), nn.ReLU()))
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        h = torch.relu(self.a(x))
        if self.kind == "function":
            g = _StraightThrough.apply(self.b(x))
        elif self.kind == "no_grad":
            with torch.no_grad():
                g = torch.sigmoid(self.b(x))
        elif self.kind == "inference_mode":
            with torch.inference_mode():
                g = torch.sigmoid(self.b(x)).clone()
        elif self.kind == "script_function":
            g = _scripted_softsign(self.b(x))
        else:
            g = self.scripted(x)
        return self.out((h + g).mean(-1))


@torch.jit.script
def _scripted_softsign(h: torch.Tensor) -> torch.Tensor:
    return h / (1 + h.abs())


@pytest.mark.parametrize("kind, named", [
    ("function", r"`tanh` called in the forward of the model \(_Branchy\).*custom torch.autograd.Function _StraightThrough"),
    ("no_grad", r"`conv1d` called .*test_attribution_deeplift.py:\d+ \(`g = torch.sigmoid\(self.b\(x\)\)`\).*autograd disabled"),
    ("inference_mode", r"`conv1d` called .*autograd disabled"),
    ("script_function", r"`add` called .*operations genomatt did not see"),
    ("script_module", r"module 'scripted' of the model is a TorchScript module"),
])
def test_operations_hidden_from_the_rules_are_refused_before_output(kind, named, data):
    # Each of these gave contributions off by 7e-4 to 1.5e-2 with only a warning.
    X, refs = data
    with pytest.raises(ModelError, match=named):
        deep_lift_shap(_initialised(_Branchy(kind)), X, refs)


def test_wrong_input_channels_say_what_the_model_expects(data):
    X, refs = data
    model = nn.Sequential(nn.Conv1d(5, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(1))
    with pytest.raises(ModelError, match=r"module '0' \(Conv1d\).*expects 5 input channels and got 4"):
        deep_lift_shap(model, X, refs)


def test_wrong_sequence_length_says_what_the_model_expects(data):
    X, refs = data
    with pytest.raises(ModelError, match=r"`linear`.*expects 384 input features and got 256"):
        deep_lift_shap(_initialised(LinearModel()), X[:, :, :64], refs[:, :, :, :64])


def test_batch_mixing_model_is_refused(data):
    class Centred(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 4, 3, padding=1)

        def forward(self, x):
            h = self.conv(x)
            return (h - h.mean(0)).mean(-1)

    X, refs = data
    with pytest.raises(ModelError, match="other sequences in its batch"):
        deep_lift_shap(Centred(), X, refs)


def test_a_min_over_an_axis_is_minus_the_max_of_the_negated_values(data):
    class NegatedMax(MinPoolNet):
        def forward(self, x):
            h = torch.tanh(self.conv(x))
            return self.out(torch.cat([-(-h).amax(-1), -torch.max(-h, dim=2)[0]], dim=1))

    X, refs = data
    minimum, negated = _initialised(MinPoolNet()), _initialised(NegatedMax())
    for max_rule in ("cross_max", "shapley"):
        torch.testing.assert_close(deep_lift_shap(minimum, X, refs, max_rule=max_rule),
                                   deep_lift_shap(negated, X, refs, max_rule=max_rule), rtol=0, atol=1e-7)


def test_a_model_whose_output_depends_on_the_batch_size_is_refused_as_such(data):
    class BatchSized(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 4, 3, padding=1)

        def forward(self, x):
            # The same for batches of 1 and 2 (the plain check's), another value in the explained batch.
            return self.conv(x).mean(-1) + (x.shape[0] > 4)

    X, refs = data
    with pytest.raises(ModelError, match=r"output for a sequence changes with the size of its batch .* --batch-size"):
        deep_lift_shap(BatchSized(), X, refs)


def test_a_tensor_whose_batch_is_on_neither_of_its_first_axes_says_where_the_batch_must_be(data):
    class BatchLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(8, 1)

        def forward(self, x):
            return self.out(torch.relu(self.conv(x).permute(2, 1, 0)).amax(0).T)

    X, refs = data
    with pytest.raises(ModelError, match=r"`relu` .*: its input has \d+ rows where the batch has \d+; DeepLIFT "
                                         r"pairs rows, so .*genomatt finds the batch on axis 0, or on axis 1"):
        deep_lift_shap(BatchLast(), X, refs)


def test_a_random_forward_is_refused_as_such(data):
    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 4, 3, padding=1), nn.Linear(4, 1)

        def forward(self, x):
            h = self.conv(x)
            return self.out((h + 0.1 * torch.randn_like(h)).mean(-1))

    X, refs = data
    with pytest.raises(ModelError, match="changes from one run to the next"):
        deep_lift_shap(Noisy(), X, refs)


@pytest.mark.parametrize("n_tasks", [2, 3])
def test_an_output_with_its_tasks_first_is_refused_as_such(n_tasks, data):
    # A stray transpose: (tasks, N) is deterministic; its first axis simply does not follow the batch.
    class TasksFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(8, n_tasks)

        def forward(self, x):
            return self.out(torch.relu(self.conv(x)).mean(-1)).T

    X, refs = data
    with pytest.raises(ModelError, match=rf"output's first axis is not the batch axis: its size does not follow the "
                                         rf"number of sequences \(an output of shape \({n_tasks}, 1\) for 1 sequence "
                                         rf"and \({n_tasks}, 2\) for 2\); expected \(N, ...\)"):
        deep_lift_shap(_initialised(TasksFirst()), X, refs)


def test_a_layer_held_outside_the_registered_modules_is_named_so(data):
    # model.eval() does not reach a BatchNorm held in a plain list: it stays in training mode.
    class Unregistered(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(8, 1)
            self.norms = [nn.BatchNorm1d(8)]

        def forward(self, x):
            return self.out(torch.relu(self.norms[0](self.conv(x))).mean(-1))

    X, refs = data
    with pytest.raises(ModelError, match=r"`batch_norm` called in a BatchNorm1d that is not a registered submodule "
                                         r"of the model \(held in a plain list or dict\? hold it in nn.ModuleList"):
        deep_lift_shap(Unregistered(), X, refs)


def test_a_mask_from_a_comparison_of_input_dependent_values_is_refused_with_the_way_out(data):
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(8, 1)

        def forward(self, x):
            h = self.conv(x)
            return self.out(torch.where(h > 0, h, 0.1 * h).mean(-1))

    X, refs = data
    with pytest.raises(ModelError, match=r"`gt` .*: it compares input-dependent values.*F.leaky_relu\(h, a\)"):
        deep_lift_shap(Masked(), X, refs)


def test_a_copy_of_input_dependent_values_outside_autograd_is_refused(data):
    class Copied(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(8, 1)

        def forward(self, x):
            h = torch.relu(self.conv(x))
            return self.out((h + h.new_tensor(h)).mean(-1))

    X, refs = data
    with pytest.raises(ModelError, match=r"`new_tensor` .*copies input-dependent values into a new tensor"):
        deep_lift_shap(Copied(), X, refs)


class SequenceFirstNet(nn.Module):
    """DanQ-style: conv, nn.LSTM and nn.TransformerEncoderLayer in torch's default sequence-first layout
    (L, N, C), ReLU, softmax attention pooling, logsumexp and a max over the positions (axis 0); or the same
    layers batch-first."""

    def __init__(self, batch_first: bool):
        super().__init__()
        self.batch_first = batch_first
        self.conv = nn.Conv1d(4, 8, 5, padding=2)
        self.lstm = nn.LSTM(8, 4, bidirectional=True, batch_first=batch_first)
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=batch_first)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = h.permute(0, 2, 1) if self.batch_first else h.permute(2, 0, 1)
        h = torch.relu(self.lstm(self.encoder(h))[0])
        positions = 1 if self.batch_first else 0
        # Attention pooling and a max over the positions, gated by a sigmoid product.
        pooled = (torch.softmax(h, dim=positions) * h).sum(positions) + torch.logsumexp(h, positions)
        return self.out(pooled * torch.sigmoid(h.amax(positions)))


@pytest.mark.parametrize("equation", ["bcl,bdl,bel->bcde", "bcl,cd,bdl,bel->bde", "bcl,bdl,bel->lb"])
def test_an_einsum_of_three_input_dependent_operands_is_explained_in_pairs(equation, data):
    # Three tensors that depend on the input, with a constant among them or the batch moved in the output.
    class ThreeWay(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(4, 3, 5, padding=2), nn.Conv1d(4, 3, 5, padding=2)
            self.c = nn.Conv1d(4, 3, 5, padding=2)
            self.weight = nn.Parameter(torch.randn(3, 3))

        def forward(self, x):
            a, b, c = torch.tanh(self.a(x)), torch.tanh(self.b(x)), torch.tanh(self.c(x))
            operands = (a, self.weight, b, c) if "cd" in equation.split(",") else (a, b, c)
            out = torch.einsum(equation, *operands)
            return (out.t() if equation.endswith("lb") else out).flatten(1).sum(-1, keepdim=True)

    X, refs = data
    model = _initialised(ThreeWay())
    assert float(_delta(model, X, refs).max()) < 1e-5
    assert _summation_error(model, X, refs[:, :2]) < 1e-5


class NormalisationNet(nn.Module):
    """A normalisation of one kind between a convolution and a pooled head."""

    KINDS = ("group_norm", "instance_norm", "instance_norm_running", "hand_written_layer_norm", "var", "norm_p1",
             "norm_p3", "vector_norm", "normalize", "normalize_positions")

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.conv, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.Linear(8, 1)
        self.group = nn.GroupNorm(2, 8)
        self.instance = nn.InstanceNorm1d(8, affine=True, track_running_stats=kind == "instance_norm_running")

    def forward(self, x):
        h = self.conv(x)
        if self.kind == "group_norm":
            h = self.group(h)
        elif self.kind.startswith("instance_norm"):
            h = self.instance(h)
        elif self.kind == "hand_written_layer_norm":  # the Annotated Transformer's LayerNorm
            t = h.transpose(1, 2)
            h = ((t - t.mean(-1, keepdim=True)) / (t.std(-1, keepdim=True) + 1e-6)).transpose(1, 2)
        elif self.kind == "var":
            h = h * h.var(-1, keepdim=True).expand_as(h) + torch.var(h, 1, False, True)
        elif self.kind == "norm_p1":
            h = h / (h.norm(p=1, dim=1, keepdim=True) + 1)
        elif self.kind == "norm_p3":
            h = h / (h.norm(p=3, dim=1, keepdim=True) + 1)
        elif self.kind == "vector_norm":
            h = h * torch.linalg.vector_norm(h, dim=-1)[..., None]
        elif self.kind == "normalize":
            h = F.normalize(h, dim=1)
        else:
            h = F.normalize(h, dim=-1)
        return self.out(torch.tanh(h).mean(-1))


@pytest.mark.parametrize("kind", NormalisationNet.KINDS)
def test_normalisations_sum_to_the_plain_model_difference(kind, data):
    X, refs = data
    model = _initialised(NormalisationNet(kind))
    if kind == "instance_norm_running":
        model.instance.running_mean.normal_(std=0.3)
        model.instance.running_var.uniform_(0.5, 2.0)
    assert float(_delta(model, X, refs).max()) < 1e-5
    assert _summation_error(model, X, refs[:, :2]) < 1e-5


@pytest.mark.parametrize("export", ["script", "trace"])
@pytest.mark.parametrize("kind", ["group_norm", "instance_norm", "hand_written_layer_norm", "normalize"])
def test_scripted_normalisations_equal_their_python_class(kind, export, data):
    X, refs = data
    model = _initialised(NormalisationNet(kind))
    exported = torch.jit.script(model) if export == "script" else torch.jit.trace(model, X)
    torch.testing.assert_close(deep_lift_shap(exported, X, refs, hypothetical=True),
                               deep_lift_shap(model, X, refs, hypothetical=True), rtol=0, atol=1e-6)


def test_a_sharp_logsumexp_sums_when_another_reference_holds_the_groups_maximum():
    # A trained attention or motif-scan pool: logsumexp of sharp logits. One reference holds the motif, so the
    # group's shift (its maximum) leaves the other pairs' sums at 1e-14 or so, where log is steep.
    motif = "ACGTACGT"

    class ScanPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 1, len(motif), bias=False)
            with torch.no_grad():
                self.conv.weight[:] = 8.0 * _sequence(motif)[0]

        def forward(self, x):
            return torch.logsumexp(self.conv(x)[:, 0], dim=-1, keepdim=True)

    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("ACGT"), 100)) for _ in range(2)]
    holding = texts[1][:40] + motif * 3 + texts[1][64:]
    X = _sequence("".join(rng.choice(list("ACGT"), 100)))
    refs = torch.cat([_sequence(holding), _sequence(texts[0])])[None]
    model = ScanPool().eval()
    result = deep_lift_shap(model, X, refs, return_delta=True)
    with torch.no_grad():
        expected = model(X)[0, 0] - model(refs[0])[:, 0].mean()
    assert float(result.attributions.sum()) == pytest.approx(float(expected), abs=1e-4)
    assert float(result.delta.max()) < 1e-4


class SpectrumNet(nn.Module):
    """The magnitude of a Fourier transform: |z| of complex values."""

    def __init__(self):
        super().__init__()
        self.conv, self.out = nn.Conv1d(4, 4, 5, padding=2), nn.Linear(4, 1)

    def forward(self, x):
        return self.out(torch.fft.rfft(self.conv(x), dim=-1).abs().mean(-1))


def test_the_magnitude_of_a_fourier_transform_sums_to_the_plain_model_difference(data):
    X, refs = data
    model = _initialised(SpectrumNet())
    assert float(_delta(model, X, refs).max()) < 1e-5
    assert _summation_error(model, X, refs[:, :2]) < 1e-5


class ConvolvedNet(nn.Module):
    """Two convolutions of the input, then ``head`` of the two: one output per sequence."""

    def __init__(self, head: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.head = head
        self.a, self.b = nn.Conv1d(4, 4, 5, padding=2), nn.Conv1d(4, 4, 5, padding=2)

    def forward(self, x):
        return self.head(self.a(x), self.b(x))


@pytest.mark.parametrize("head, error, message", [
    # exp(log(relu(a))) is relu(a), finite; its log is -inf wherever relu(a) is 0.
    (lambda a, b: torch.exp(torch.log(torch.relu(a))).mean(dim=(1, 2))[:, None], NonFiniteError,
     r"though the model's outputs are finite: a value inside the model is infinite.*log\(x \+ 1e-6\)"),
    (lambda a, b: torch.exp(torch.fft.rfft(a, dim=-1)).real.mean(dim=(1, 2))[:, None], ModelError,
     r"`exp`.*its operand is complex.*take \.real, \.imag or \.abs\(\)"),
    (lambda a, b: a.norm(p=float("inf"), dim=1).mean(-1, keepdim=True), ModelError,
     r"`norm`.*only finite p > 0 is supported, not p=inf.*abs\(\)\.amax"),
    (lambda a, b: torch.einsum("bcl,bcl->lb", a, b).sum(0)[:, None], ModelError,
     r"`einsum`.*output of shape \(96, 24\) does not.*permute its result"),
    (lambda a, b: torch.einsum("...l,...l,...l->...", a, a, b).sum(-1, keepdim=True), ModelError,
     r"`einsum`.*more than two input-dependent tensors with an ellipsis"),
], ids=["log_of_zero", "nonlinear_of_complex", "infinity_norm", "product_moving_the_batch", "einsum_ellipsis"])
def test_what_no_rule_can_take_is_refused_with_the_way_out(head, error, message, data):
    X, refs = data
    model = _initialised(ConvolvedNet(head))
    with torch.no_grad():
        assert torch.isfinite(model(X)).all()
    with pytest.raises(error, match=message):
        deep_lift_shap(model, X, refs)


def test_an_output_the_plain_model_makes_infinite_is_refused_as_non_finite(data):
    # a / (1 - a) at an A the sequences and their references share: +inf for the plain model, NaN under the
    # rules (0 / 0 of the multipliers); the same refusal as every other method's, not a difference of the rules.
    X, refs = data
    X, refs = X.clone(), refs.clone()
    X[:, :, 0], refs[..., 0] = torch.tensor([1.0, 0, 0, 0]), torch.tensor([1.0, 0, 0, 0])

    class Infinite(nn.Module):
        def forward(self, x):
            a = x[:, 0, 0]
            return torch.stack([a / (1 - a) + x.sum((1, 2)), x.sum((1, 2))], 1)

    with pytest.raises(NonFiniteError, match="NaN or infinite"):
        deep_lift_shap(Infinite(), X, refs)


def test_sequence_first_layers_are_explained_as_their_batch_first_twins(data):
    # Each rule brings the batch of a sequence-first tensor to the front: the same contributions as the
    # batch-first model with the same weights, summing to the plain model's output difference.
    X, refs = data
    torch.manual_seed(4)
    sequence_first = SequenceFirstNet(batch_first=False).eval()
    batch_first = SequenceFirstNet(batch_first=True).eval()
    batch_first.load_state_dict(sequence_first.state_dict())
    result = deep_lift_shap(sequence_first, X, refs, hypothetical=True, return_delta=True)
    torch.testing.assert_close(result.attributions, deep_lift_shap(batch_first, X, refs, hypothetical=True),
                               rtol=0, atol=1e-6)
    with torch.no_grad():
        expected = sequence_first(X)[:, 0] - torch.stack([sequence_first(refs[:, k])[:, 0]
                                                          for k in range(refs.shape[1])], 1).mean(1)
    summed = (X * result.attributions).sum(dim=(1, 2))
    assert float((summed - expected).abs().max()) < 1e-5


class EnumArgumentsNet(nn.Module):
    """Operations whose TorchScript nodes hold a dtype or memory format as an integer, and ELU's alpha
    before its other scalars."""

    def __init__(self):
        super().__init__()
        self.conv, self.out = nn.Conv1d(4, 8, 9, padding=4), nn.Linear(8, 2)

    def forward(self, x):
        h = F.elu(self.conv(x), 0.5).transpose(1, 2).contiguous().transpose(1, 2)
        h = h.float() + F.celu(h).to(torch.float32)
        return self.out(h.mean(-1))


class UpsamplingNet(nn.Module):
    """A U-Net's decoder: nearest and linear upsampling, interpolation, skip concatenation, and an input moved to
    its device (a trace records aten::to with a layout)."""

    def __init__(self):
        super().__init__()
        self.down, self.mid = nn.Conv1d(4, 6, 5, stride=2, padding=2), nn.Conv1d(6, 6, 3, padding=1)
        self.nearest, self.linear = nn.Upsample(scale_factor=2), nn.Upsample(scale_factor=2, mode="linear")
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        x = x.to(x.device).float()
        h = F.gelu(self.down(x))
        up = self.nearest(F.gelu(self.mid(h))) + self.linear(h)
        resized = F.interpolate(h, size=x.shape[-1], mode="linear", align_corners=True)
        return self.out(torch.cat([up, resized, x], dim=1).mean(-1))


@pytest.mark.parametrize("export", ["script", "trace"])
@pytest.mark.parametrize("model_class", [ReusedReLUNet, InPlaceNet, BassetLike, EnumArgumentsNet, HyenaLike,
                                         UpsamplingNet, AdaptiveMaxPoolNet, MinPoolNet])
def test_torchscript_model_is_explained_by_walking_its_graph(model_class, export, data):
    X, refs = data
    model = _initialised(model_class())
    exported = torch.jit.script(model) if export == "script" else torch.jit.trace(model, X)
    expected = deep_lift_shap(model, X, refs, hypothetical=True)
    torch.testing.assert_close(deep_lift_shap(exported, X, refs, hypothetical=True), expected, rtol=0, atol=1e-6)


def test_torchscript_operation_without_a_rule_is_refused_with_its_source_line(data):
    class Sorting(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 4, 3, padding=1), nn.Linear(4, 1)

        def forward(self, x):
            return self.out(torch.sort(self.conv(x), dim=-1)[0].mean(-1))

    X, refs = data
    with pytest.raises(ModelError, match=r"`sort`.*TorchScript node aten::sort at .*test_attribution_deeplift.py"):
        deep_lift_shap(torch.jit.script(_initialised(Sorting())), X, refs)


def test_training_mode_model_is_run_in_eval_mode_and_restored(data):
    X, refs = data
    model = _initialised(BassetLike()).train()
    # Fine-tuning with a frozen batch norm: each module keeps its own flag.
    model.bn1.eval()
    flags = [module.training for module in model.modules()]
    expected = deep_lift_shap(_initialised(BassetLike()), X, refs)
    torch.testing.assert_close(deep_lift_shap(model, X, refs), expected)
    assert [module.training for module in model.modules()] == flags and not model.bn1.training


def test_a_torchscript_model_in_eval_mode_stays_in_eval_mode(data):
    X, refs = data
    scripted = torch.jit.script(_initialised(BassetLike()).eval())
    deep_lift_shap(scripted, X, refs)
    assert not any(module.training for module in scripted.modules())
    with pytest.raises(SequenceError):
        deep_lift_shap(scripted, X[:, :, :10], refs)
    assert not any(module.training for module in scripted.modules())


@pytest.mark.parametrize("bad", [torch.zeros(2, 5, LENGTH), torch.zeros(4, LENGTH)])
def test_bad_sequence_shape_is_a_sequence_error(bad):
    with pytest.raises(SequenceError, match=r"\(N, 4, L\)"):
        deep_lift_shap(_initialised(LinearModel()), bad, torch.zeros(2, 1, 4, LENGTH))


def test_bad_reference_shape_is_a_sequence_error(data):
    X, refs = data
    with pytest.raises(SequenceError, match=r"\(N, R, 4, L\)"):
        deep_lift_shap(_initialised(LinearModel()), X, refs[:2])


def test_bad_options_are_config_errors(data):
    X, refs = data
    model = _initialised(LinearModel())
    with pytest.raises(ConfigError):
        deep_lift_shap(model, X, refs, batch_size=0)
    with pytest.raises(ConfigError):
        deep_lift_shap(model, X, refs, rule="gradient")
    with pytest.raises(ConfigError, match="max_rule must be one of cross_max, shapley"):
        deep_lift_shap(model, X, refs, max_rule="argmax")
    with pytest.raises(ConfigError):
        deep_lift_shap(model, X, refs, target="first")


# --- the delta check ------------------------------------------------------------------------------


def test_delta_above_tolerance_raises_or_warns_when_not_strict(data):
    X, refs = data
    model = _initialised(BPNetLike())
    with pytest.raises(ModelError, match="summation-to-delta fails"):
        deep_lift_shap(model, X, refs, delta_tolerance=1e-30)
    with pytest.warns(RuntimeWarning, match="summation-to-delta fails"):
        deep_lift_shap(model, X, refs, delta_tolerance=1e-30, strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deep_lift_shap(model, X, refs, strict=True)


def test_delta_failure_names_the_region_when_regions_are_given(data):
    """With coordinates, the failing region is named by them, not by its row in the call (a block of a run)."""
    X, _ = data
    starts = np.arange(len(X)) * 500 + 1000
    regions = pd.DataFrame({"chrom": "chr4", "start": starts, "end": starts + X.shape[2],
                            "name": [f"peak_{i}" for i in range(len(X))]})
    model = _initialised(BPNetLike())
    with pytest.raises(ModelError, match=rf"\(first: peak_0 \(chr4:1000-{1000 + X.shape[2]}\); largest error"):
        deep_lift_shap(model, X, n_shuffles=2, regions=regions, delta_tolerance=1e-30)
    with pytest.warns(RuntimeWarning, match=r"\(first: chr4:1000-"):
        deep_lift_shap(model, X, n_shuffles=2, regions=regions.drop(columns="name"), delta_tolerance=1e-30,
                       strict=False)


# --- options --------------------------------------------------------------------------------------


def test_result_does_not_depend_on_batch_size(data):
    X, refs = data
    model = _initialised(BassetLike())
    reference = deep_lift_shap(model, X, refs, batch_size=1000)
    for batch_size in (3, 2 * N_REFERENCES + 1):
        torch.testing.assert_close(deep_lift_shap(model, X, refs, batch_size=batch_size), reference,
                                   rtol=1e-5, atol=1e-7)


def test_list_target_stacks_one_result_per_target_after_the_region_axis(data):
    X, refs = data
    model = _initialised(BassetLike())
    result = deep_lift_shap(model, X, refs, target=[2, 0], return_delta=True)
    assert isinstance(result, DeepLiftShapResult)
    assert result.attributions.shape == (N_SEQUENCES, 2, 4, LENGTH)
    assert result.delta.shape == (N_SEQUENCES, 2)
    for k, column in enumerate([2, 0]):
        torch.testing.assert_close(result.attributions[:, k], deep_lift_shap(model, X, refs, target=column))


def test_callable_target_reduces_a_profile_head(data):
    class ProfileNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.relu = nn.Conv1d(4, 8, 9, padding=4), nn.ReLU()
            self.profile, self.count = nn.Conv1d(8, 2, 5, padding=2), nn.Linear(8, 1)

        def forward(self, x):
            h = self.relu(self.body(x))
            return self.profile(h), self.count(h.mean(-1))

    X, refs = data
    model = _initialised(ProfileNet())
    result = deep_lift_shap(model, X, refs, target=lambda out: out[0].sum(dim=(1, 2)), return_delta=True)
    assert result.attributions.shape == (N_SEQUENCES, 4, LENGTH)
    assert float(result.delta.max()) < 1e-4
    with pytest.raises(ModelError, match="callable target"):
        deep_lift_shap(model, X, refs)


def test_generated_references_are_the_dinucleotide_shuffles(data):
    from genomatt.shuffle import dinucleotide_shuffle

    X, _ = data
    model = _initialised(BPNetLike())
    generated = deep_lift_shap(model, X, n_shuffles=3, random_state=5, batch_size=4)
    explicit = deep_lift_shap(model, X, dinucleotide_shuffle(X, n=3, random_state=5))
    torch.testing.assert_close(generated, explicit, rtol=1e-5, atol=1e-7)


def test_region_references_follow_the_coordinates_not_the_rows(data):
    import pandas as pd

    from genomatt.shuffle import references_for_regions

    X, refs = data
    model = _initialised(BPNetLike())
    starts = np.arange(N_SEQUENCES) * 500
    regions = pd.DataFrame({"chrom": "chr2", "start": starts, "end": starts + LENGTH})
    done = []
    result = deep_lift_shap(model, X, n_shuffles=3, random_state=7, regions=regions, batch_size=3,
                            on_block=done.append)
    explicit = deep_lift_shap(model, X, references_for_regions(regions, X, n=3, seed=7), batch_size=3)
    torch.testing.assert_close(result, explicit, rtol=0, atol=0)
    assert done == [1, 2, 3, 4]
    # Another order and batch size: each region keeps its references.
    order = [3, 1, 0, 2]
    reordered = deep_lift_shap(model, X[order], n_shuffles=3, random_state=7, regions=regions.iloc[order],
                               batch_size=6)
    torch.testing.assert_close(reordered, result[order], rtol=1e-5, atol=1e-7)
    with pytest.raises(ConfigError, match="pass references=None with regions"):
        deep_lift_shap(model, X, refs, regions=regions)
    with pytest.raises(SequenceError, match="regions has 2 rows but X has 4 sequences"):
        deep_lift_shap(model, X, regions=regions.iloc[:2])
    with pytest.raises(ConfigError, match="regions must be a pandas DataFrame"):
        deep_lift_shap(model, X, regions="chr2")


def test_numpy_input_and_callable_references(data):
    X, refs = data
    model = _initialised(BPNetLike())

    def first_references(block, n, random_state):
        start = int(np.flatnonzero((X == block[0]).all(dim=(1, 2)).numpy())[0])
        return refs[start : start + block.shape[0], :n]

    result = deep_lift_shap(model, X.numpy(), first_references, n_shuffles=N_REFERENCES, batch_size=N_REFERENCES)
    torch.testing.assert_close(result, deep_lift_shap(model, X, refs))


def test_autocast_bfloat16_keeps_delta_small(data):
    X, refs = data
    model = _initialised(BPNetLike())
    result = deep_lift_shap(model, X, refs, autocast=torch.bfloat16, return_delta=True)
    exact = deep_lift_shap(model, X, refs)
    assert result.attributions.dtype == torch.float32
    assert float((result.attributions - exact).abs().max()) < 0.1 * float(exact.abs().max())


# --- RevealCancel ---------------------------------------------------------------------------------


class MinimumNet(nn.Module):
    """min(a, b) = a − relu(a − b), the example of DeepLIFT paper section 3.5.3 (a, b = channels A, C)."""

    def __init__(self):
        super().__init__()
        self.difference = nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            self.difference.weight.copy_(torch.tensor([[1.0, -1.0, 0.0, 0.0]]))
        self.relu = nn.ReLU()

    def forward(self, x):
        z = x[:, :, 0]
        return z[:, :1] - self.relu(self.difference(z))


def test_reveal_cancel_splits_credit_where_rescale_gives_it_all_to_one_input():
    X = torch.tensor([[[3.0], [1.0], [0.0], [0.0]]])
    zero = torch.zeros(1, 1, 4, 1)
    rescale = deep_lift_shap(MinimumNet(), X, zero, rule="rescale")
    reveal_cancel = deep_lift_shap(MinimumNet(), X, zero, rule="revealcancel")
    # Rescale: relu(3 − 1) = 2 is credited 3 to a and −1 to b, so min = 1 all goes to b.
    torch.testing.assert_close(rescale[0, :2, 0], torch.tensor([0.0, 1.0]))
    # RevealCancel: the positive (3) and negative (−1) terms each get their average effect.
    torch.testing.assert_close(reveal_cancel[0, :2, 0], torch.tensor([0.5, 0.5]))


# --- the max over a whole axis: Shapley values (Max SHAP) or cross-max --------------------------------


def _enumerated_max_shapley(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Shapley values of v(S) = max(x_i for i in S, r_j otherwise), by enumerating every coalition."""
    n = len(x)
    value = lambda members: max(x[j] if j in members else r[j] for j in range(n))  # noqa: E731
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for coalition in itertools.combinations(others, size):
                phi[i] += weight * (value(set(coalition) | {i}) - value(set(coalition)))
    return phi


@pytest.mark.parametrize("seed", range(30))
def test_max_shapley_values_equal_the_enumerated_shapley_values(seed):
    from genomatt.attribution.rules import max_shapley_values

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    x, r = rng.normal(size=n), rng.normal(size=n)
    if seed % 2:  # ReLU outputs: ties at zero
        x, r = np.maximum(x, 0), np.maximum(r, 0)
    if seed % 3 == 0:
        x[0] = r[0]
    if seed % 5 == 0 and n > 1:
        x[1] = x[0]
    got = max_shapley_values(torch.tensor(x)[None], torch.tensor(r)[None])[0].numpy()
    np.testing.assert_allclose(got, _enumerated_max_shapley(x, r), atol=1e-12)
    assert abs(got.sum() - (x.max() - r.max())) < 1e-12


class GlobalMaxNet(nn.Module):
    """A GATA detector (one 4 bp filter), ReLU, a global max pool and a linear output."""

    def __init__(self, length: int = LENGTH):
        super().__init__()
        self.conv, self.relu, self.pool = nn.Conv1d(4, 1, 4), nn.ReLU(), nn.MaxPool1d(length - 3)
        self.out = nn.Linear(1, 1)
        with torch.no_grad():
            self.conv.weight.copy_(2.0 * torch.eye(4)[:, [2, 0, 3, 0]].unsqueeze(0) - 1.0)  # G A T A
            self.conv.bias.fill_(-3.0)
            self.out.weight.fill_(1.5)
            self.out.bias.fill_(0.2)

    def forward(self, x):
        return self.out(self.pool(self.relu(self.conv(x))).flatten(1))


def _sequence(text: str) -> torch.Tensor:
    return torch.eye(4)[["ACGT".index(base) for base in text]].T.unsqueeze(0)


@pytest.mark.parametrize("fused", [True, False])
def test_shapley_max_credits_both_copies_of_a_motif_where_cross_max_credits_one(fused, monkeypatch):
    from genomatt.attribution import kernels

    if not fused:
        monkeypatch.setattr(kernels, "usable", lambda *tensors: False)
    text = "CCGATACCCCGATACC"
    model, X = GlobalMaxNet(len(text)), _sequence(text)
    refs = torch.stack([_sequence("CCCCCCCCCCCCCCCC"), _sequence("CCGATCCCCCCCCCCC")], dim=1)
    sites = [slice(2, 6), slice(10, 14)]
    for max_rule in ("shapley", "cross_max"):
        result = deep_lift_shap(model, X, refs, max_rule=max_rule, return_delta=True)
        assert float(result.delta.max()) < 1e-6
        per_site = [float(result.attributions[0, :, site].sum()) for site in sites]
        with torch.no_grad():
            change = float(model(X)[0, 0] - model(refs[0]).mean())
        assert sum(per_site) == pytest.approx(change, abs=1e-5)
        if max_rule == "shapley":
            # Against the all-C reference both copies reach the max (1.5 × 5 each way): half each; against
            # the one with GATC, each copy's gain over it is shared the same way.
            assert per_site[0] == pytest.approx(per_site[1], abs=1e-5)
            assert per_site[0] > 0.4 * change
        else:
            assert per_site[0] == pytest.approx(change, abs=1e-5)
            assert per_site[1] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("model_class", [InPlaceNet, OverlappingPoolNet])
def test_both_max_rules_sum_to_delta(model_class, data):
    X, refs = data
    model = _initialised(model_class())
    shapley = deep_lift_shap(model, X, refs, max_rule="shapley", return_delta=True)
    cross_max = deep_lift_shap(model, X, refs, max_rule="cross_max", return_delta=True)
    assert float(shapley.delta.max()) < 1e-5 and float(cross_max.delta.max()) < 1e-5
    for max_rule in ("shapley", "cross_max"):
        assert _summation_error(model, X, refs[:, :2], max_rule=max_rule) < 1e-5
    # Each of these ends in a max over the whole length, where the rules differ.
    assert float((shapley.attributions - cross_max.attributions).abs().max()) > 1e-4
    assert probe_rules(model, X.shape[-1]).whole_axis_max


@pytest.mark.parametrize("pool, whole", [
    (lambda h: F.adaptive_max_pool1d(h, 1), True),
    (lambda h: F.adaptive_max_pool2d(h.unsqueeze(2), (1, None)).squeeze(2).amax(-1, keepdim=True), True),
    (lambda h: F.max_pool1d(h, h.shape[-1] - 1), False),
])
def test_max_rule_applies_where_one_window_spans_the_input(pool, whole):
    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv1d(4, 1, 4), nn.Linear(1, 1)
            detector = GlobalMaxNet(16)
            self.conv.load_state_dict(detector.conv.state_dict())
            self.out.load_state_dict(detector.out.state_dict())

        def forward(self, x):
            return self.out(pool(torch.relu(self.conv(x))).amax(-1))

    model = Pooled()
    X = _sequence("CCGATACCCCGATACC")
    refs = _sequence("CCCCCCCCCCCCCCCC").unsqueeze(1)
    assert probe_rules(model, 16).whole_axis_max is whole
    shapley = deep_lift_shap(model, X, refs, max_rule="shapley", return_delta=True)
    cross_max = deep_lift_shap(model, X, refs, max_rule="cross_max", return_delta=True)
    assert float(shapley.delta.max()) < 1e-6 and float(cross_max.delta.max()) < 1e-6
    sites = [float(shapley.attributions[0, :, 2:6].sum()), float(shapley.attributions[0, :, 10:14].sum())]
    if whole:
        assert sites[0] == pytest.approx(sites[1], abs=1e-5)
    else:
        # One window of 12 of the 13 positions is not the whole input: cross-max, one site credited.
        torch.testing.assert_close(shapley.attributions, cross_max.attributions)
        assert abs(sites[1]) < 1e-6 < sites[0]


def test_whole_axis_max_probe_names_a_model_that_fails_on_the_input():
    model = nn.Sequential(nn.Conv1d(5, 2, 3), nn.AdaptiveMaxPool1d(1), nn.Flatten())
    with pytest.raises(ModelError, match=r"failed at `conv1d` called in module '0'.*expects 5 input channels and got 4"):
        probe_rules(model, 16)


def test_windowed_max_pools_keep_cross_max_under_either_rule(data):
    X, refs = data
    model = _initialised(BassetLike())
    assert not probe_rules(model, X.shape[-1]).whole_axis_max
    torch.testing.assert_close(deep_lift_shap(model, X, refs, max_rule="shapley", hypothetical=True),
                               deep_lift_shap(model, X, refs, max_rule="cross_max", hypothetical=True))


@pytest.mark.parametrize("model_class", [BPNetLike, BassetLike, ReusedReLUNet])
def test_reveal_cancel_sums_to_delta_and_differs_from_rescale(model_class, data):
    X, refs = data
    model = _initialised(model_class())
    reveal_cancel = deep_lift_shap(model, X, refs, rule="revealcancel", return_delta=True)
    assert float(reveal_cancel.delta.max()) < 1e-5
    rescale = deep_lift_shap(model, X, refs)
    assert float((reveal_cancel.attributions - rescale).abs().max()) > 1e-4


class _PostSumReLUNet(nn.Module):
    """A ResNet-style block: the second ReLU takes a residual sum, not a layer's output."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.out = nn.Conv1d(4, 6, 5, padding=2), nn.Conv1d(6, 6, 3, padding=1), nn.Linear(6, 1)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = torch.relu(h + self.conv2(h))
        return self.out(h.mean(-1))


def test_rule_probe_names_the_nonlinearities_reveal_cancel_cannot_take(data):
    X, refs = data
    model = _initialised(_PostSumReLUNet())
    probe = probe_rules(model, LENGTH, "revealcancel")
    assert len(probe.sites("revealcancel")) == 1 and len(probe.sites("rescale")) == 1
    assert "torch.relu(h + self.conv2(h))" in probe.sites("rescale")[0]
    assert [rule for rule, _ in probe_rules(model, LENGTH).rule_sites] == ["rescale", "rescale"]
    # The nonlinearity the probe names takes Rescale: its RevealCancel contributions differ from Rescale's
    # only through the first ReLU.
    assert float(deep_lift_shap(model, X, refs, rule="revealcancel", return_delta=True).delta.max()) < 1e-5
    # Under genomics_default only the ReLU after the dense layer takes RevealCancel.
    basset = probe_rules(_initialised(BassetLike()), LENGTH, "genomics_default")
    assert [rule for rule, _ in basset.rule_sites] == ["rescale", "rescale", "revealcancel"]
    assert "relu3" in basset.sites("revealcancel")[0]
    with pytest.raises(ConfigError, match="rule must be one of"):
        probe_rules(model, LENGTH, "reveal")


def test_cpu_kernels_leave_torch_thread_count_as_set():
    # numba's OpenMP layer resets the OpenMP thread count it shares with torch when it starts; a fresh
    # process is needed, as it starts once per process.
    script = (
        "import torch\n"
        "from genomatt.attribution import deep_lift_shap\n"
        "from genomatt.models import BPNet\n"
        "model = BPNet(n_tasks=2, input_length=100)\n"
        "X = torch.zeros(2, 4, 100); X[:, 0] = 1\n"
        "torch.set_num_threads(1)\n"
        "deep_lift_shap(model, X, n_shuffles=2, target=0, device='cpu')\n"
        "print(torch.get_num_threads())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1"


class _ProfileModel(nn.Module):
    """A BPNet-like profile head: per-position logits (N, L)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 9, padding=4)
        self.out = nn.Conv1d(8, 1, 5, padding=2)

    def forward(self, x):
        return self.out(torch.relu(self.conv(x)))[:, 0]


def test_detached_profile_weights_are_constants_of_the_explained_sequence():
    # The profile target of BPNet/ChromBPNet: mean-centred logits weighted by their softmax, the weights
    # held constant. They are held at the explained sequence's values for its references too, so the
    # batched result equals explaining each sequence with its weights given as a fixed tensor.
    torch.manual_seed(0)
    model = _ProfileModel().eval()
    X = torch.zeros(3, 4, 60)
    X[:, torch.randint(0, 4, (60,)), torch.arange(60)] = 1
    references = torch.zeros(3, 8, 4, 60)
    references.scatter_(2, torch.randint(0, 4, (3, 8, 1, 60)), 1.0)

    def profile(logits):
        centred = logits - logits.mean(dim=-1, keepdim=True)
        return (torch.softmax(hold_at_sequence(logits), dim=-1) * centred).sum(dim=-1)

    batched = deep_lift_shap(model, X, references=references, target=profile, batch_size=9, return_delta=True)
    assert batched.delta.abs().max() < 1e-4
    with torch.no_grad():
        logits = model(X)
    weights = torch.softmax(logits, dim=-1)
    expected = (weights * (logits - logits.mean(dim=-1, keepdim=True))).sum(dim=-1)
    torch.testing.assert_close(batched.prediction, expected, atol=1e-5, rtol=1e-5)
    for i in range(len(X)):
        def fixed(logits, w=weights[i]):
            return ((logits - logits.mean(dim=-1, keepdim=True)) * w).sum(dim=-1)

        single = deep_lift_shap(model, X[i : i + 1], references=references[i : i + 1], target=fixed)
        np.testing.assert_allclose(batched.attributions[i].numpy(), single[0].numpy(), atol=1e-5)


# --- RevealCancel against the original DeepLIFT rules ----------------------------------------------------


class DenseNet(nn.Module):
    """Dense layers with ReLUs on the flattened one-hot sequence (Linear → ReLU → Linear → ReLU → Linear)."""

    def __init__(self, length: int = 12):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(4 * length, 10), nn.Linear(10, 6), nn.Linear(6, 1)

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x.flatten(1))))))


def _pseudocount_near_zero(tensor: np.ndarray, threshold: float = 1e-7) -> np.ndarray:
    """deeplift.util.pseudocount_near_zero: ± threshold added where |tensor| < threshold / 2."""
    near_zero = np.abs(tensor) < 0.5 * threshold
    return tensor + threshold * near_zero * np.where(tensor >= 0, 1.0, -1.0)


def _original_reveal_cancel_multipliers(model: DenseNet, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Input multipliers of the original DeepLIFT RevealCancel rules (deeplift 0.6: Dense layer split
    into positive and negative contributions, RevealCancel ReLU, inputs with zero difference taking
    0.5 (m+ + m−) · W), in float64 numpy, one reference."""
    layers = [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
              for m in (model.fc1, model.fc2, model.out)]
    relu = lambda z: np.maximum(z, 0.0)  # noqa: E731
    inputs, refs, splits = [x.reshape(-1).astype(np.float64)], [reference.reshape(-1).astype(np.float64)], []
    for depth, (weight, bias) in enumerate(layers):
        a, a0 = inputs[-1], refs[-1]
        delta = a - a0
        up, down = np.clip(weight, 0, None), np.clip(weight, None, 0)
        positive = up @ (delta * (delta > 0)) + down @ (delta * (delta < 0))
        negative = up @ (delta * (delta < 0)) + down @ (delta * (delta > 0))
        z, z0 = weight @ a + bias, weight @ a0 + bias
        splits.append((delta, up, down, z0, positive, negative, z))
        if depth < len(layers) - 1:
            inputs.append(relu(z))
            refs.append(relu(z0))
    m_positive = m_negative = np.ones(1)
    for depth in reversed(range(len(layers))):
        delta, up, down, z0, positive, negative, z = splits[depth]
        if depth < len(layers) - 1:
            # RevealCancel at the ReLU after this layer, then the layer's positive and negative parts.
            gain_positive = 0.5 * (relu(z0 + positive) - relu(z0)) + 0.5 * (relu(z) - relu(z0 + negative))
            gain_negative = 0.5 * (relu(z0 + negative) - relu(z0)) + 0.5 * (relu(z) - relu(z0 + positive))
            m_positive = m_out * gain_positive / _pseudocount_near_zero(positive)
            m_negative = m_out * gain_negative / _pseudocount_near_zero(negative)
        else:
            m_positive = m_negative = np.ones(1)
        m_out = ((delta > 0) * (up.T @ m_positive + down.T @ m_negative)
                 + (delta < 0) * (down.T @ m_positive + up.T @ m_negative)
                 + (delta == 0) * 0.5 * ((up + down).T @ (m_positive + m_negative)))
    return m_out.reshape(x.shape)


def test_reveal_cancel_equals_the_original_deeplift_rules_on_a_dense_model():
    # One-hot inputs match their reference at most positions (difference zero), where the original
    # gives 0.5 (m+ + m−) · W; so do hidden units off at both the sequence and the reference.
    torch.manual_seed(4)
    model = _initialised(DenseNet(), seed=4)
    X, references = _one_hot((3, 12), 21), _one_hot((3, 2, 12), 22)
    ours = deep_lift_shap(model, X, references, rule="revealcancel", hypothetical=True, return_delta=True)
    assert float(ours.delta.max()) < 1e-5
    for i in range(3):
        expected = np.mean([hypothetical_contributions(
            torch.from_numpy(_original_reveal_cancel_multipliers(model, X[i].numpy(), references[i, k].numpy())),
            references[i, k].double()).numpy() for k in range(2)], axis=0)
        np.testing.assert_allclose(ours.attributions[i].numpy(), expected, atol=1e-5)


def test_genomics_default_is_rescale_after_convolutions_and_reveal_cancel_after_dense_layers(data):
    X, refs = data
    convolutional = _initialised(BPNetLike())
    torch.testing.assert_close(deep_lift_shap(convolutional, X, refs, rule="genomics_default"),
                               deep_lift_shap(convolutional, X, refs))
    dense = _initialised(DenseNet(LENGTH))
    torch.testing.assert_close(deep_lift_shap(dense, X, refs, rule="genomics_default"),
                               deep_lift_shap(dense, X, refs, rule="revealcancel"))
    mixed = _initialised(BassetLike())
    result = deep_lift_shap(mixed, X, refs, rule="genomics_default", return_delta=True)
    assert float(result.delta.max()) < 1e-5
    for other in ("rescale", "revealcancel"):
        assert float((result.attributions - deep_lift_shap(mixed, X, refs, rule=other)).abs().max()) > 1e-5


def test_layer_that_ignores_eval_mode_is_refused_naming_the_cause(data):
    X, refs = data
    model = nn.Sequential(nn.Conv1d(4, 8, 5, padding=2), nn.BatchNorm1d(8, track_running_stats=False), nn.ReLU(),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 1))
    with pytest.raises(ModelError, match=r"`batch_norm`.*training mode .* with the model in eval mode.*"
                                         r"track_running_stats=False"):
        deep_lift_shap(model, X, refs)


class _SequenceFirstLSTM(nn.Module):
    """Convolution, pooling to L // 2 positions, then an LSTM over (positions, batch, channels)."""

    def __init__(self):
        super().__init__()
        self.conv, self.lstm, self.out = nn.Conv1d(4, 8, 5, padding=2), nn.LSTM(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = F.max_pool1d(torch.relu(self.conv(x)), 2).permute(2, 0, 1)
        output, _ = self.lstm(h)
        return self.out(torch.tanh(output).mean(0))


def test_a_tensor_whose_axis_has_the_batchs_size_is_explained_in_passes_of_another_size():
    # One sequence and 20 references make 21 rows; pooled to 21 positions, the sequence-first LSTM's input is
    # (21, 21, 8): read as batch-first, rows would be paired with positions.
    torch.manual_seed(0)
    model = _SequenceFirstLSTM().eval()
    X = _one_hot((1, 42), 3)
    refs = _one_hot((1, 20, 42), 4)
    result = deep_lift_shap(model, X, refs, target=[0, 1], return_delta=True)
    with torch.no_grad():
        change = model(X) - model(refs[0]).mean(dim=0, keepdim=True)
    np.testing.assert_allclose(result.attributions.sum(dim=(2, 3)), change, rtol=1e-4, atol=1e-6)
    # Passes of 1 + 10 rows see no coincidence, and give the same numbers.
    halves = deep_lift_shap(model, X, refs, target=[0, 1], batch_size=10)
    np.testing.assert_allclose(halves, result.attributions, rtol=1e-5, atol=1e-8)


def test_a_pair_whose_output_has_the_batchs_size_is_explained_against_copies_of_its_reference():
    # One sequence, one reference: 2 rows, and an output of 2 columns (a softplus head): (2, 2).
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2), nn.Softplus())
    X, refs = _one_hot((1, 30), 5), _one_hot((1, 1, 30), 6)
    model(X)
    model.eval()
    result = deep_lift_shap(model, X, refs, target=[0, 1], return_delta=True)
    with torch.no_grad():
        change = model(X) - model(refs[0])
    np.testing.assert_allclose(result.attributions.sum(dim=(2, 3)), change, rtol=1e-4, atol=1e-6)
    assert result.delta.max() < 1e-5


def test_a_model_of_half_precision_parameters_is_told_to_run_in_float32(data):
    X, refs = data
    model = _initialised(BassetLike()).to(torch.bfloat16)
    with pytest.raises(ModelError, match=r"the model's parameters are bfloat16, which keep about three digits: "
                                         r"explain model.float\(\)"):
        deep_lift_shap(model, X, refs)
    assert deep_lift_shap(model.float(), X, refs, return_delta=True).delta.max() < 1e-4


def test_a_references_callable_that_fails_is_named_with_how_it_is_called(data):
    from genomatt.shuffle import dinucleotide_shuffle

    X, _ = data

    def int_seeds_only(sequences, n=20, random_state=None):
        # As tangermeme's dinucleotide_shuffle: a seed, not a numpy Generator.
        if random_state is not None and not isinstance(random_state, int):
            raise ValueError("random_state must be None, an integer, or one integer per sequence.")
        return dinucleotide_shuffle(sequences, n, random_state)

    model = _initialised(BassetLike())
    with pytest.raises(ConfigError, match=r"the references callable .*int_seeds_only failed \(ValueError: "
                                          r"random_state must be None.*\); genomatt calls it as references\(X, "
                                          r"n=n_shuffles, random_state=numpy.random.Generator\)"):
        deep_lift_shap(model, X, references=int_seeds_only, n_shuffles=2)
    wrapped = deep_lift_shap(model, X, n_shuffles=2, return_delta=True, references=lambda sequences, n, random_state:
                             int_seeds_only(sequences, n=n, random_state=int(random_state.integers(2**31))))
    assert wrapped.delta.max() < 1e-4


def test_explained_inside_inference_mode_as_outside(data):
    from genomatt.attribution import attribute

    X, refs = data
    model = _initialised(BassetLike())
    expected = deep_lift_shap(model, X, refs)
    with torch.inference_mode():
        inside = deep_lift_shap(model, X.clone(), refs.clone())
        for method in ("saliency", "integrated_gradients", "epsilon_lrp"):
            assert attribute(model, X.clone(), method, target=0).shape == X.shape, method
    torch.testing.assert_close(inside, expected)


def test_a_model_made_inside_inference_mode_is_refused_with_the_way_out(data):
    import copy

    from genomatt.attribution import attribute

    X, refs = data
    with torch.inference_mode():
        model = _initialised(BassetLike())
    flags = [p.requires_grad for p in model.parameters()]
    message = r"the model's tensor '\S+' was made inside torch.inference_mode\(\), .* explain copy.deepcopy\(model\)"
    with pytest.raises(ModelError, match=message):
        deep_lift_shap(model, X, refs)
    with pytest.raises(ModelError, match=message):
        attribute(model, X, "saliency", target=0)
    assert [p.requires_grad for p in model.parameters()] == flags  # the model is left as it was
    ordinary = copy.deepcopy(model)
    torch.testing.assert_close(deep_lift_shap(ordinary, X, refs), deep_lift_shap(_initialised(BassetLike()), X, refs))


def test_a_torchscript_model_loaded_inside_inference_mode_is_told_to_load_again(data, tmp_path):
    import copy

    X, refs = data
    torch.jit.script(_initialised(BassetLike())).save(tmp_path / "model.pt")
    with torch.inference_mode():
        scripted = torch.jit.load(tmp_path / "model.pt")
    with pytest.raises(ModelError, match=r"'\S+' was made inside torch.inference_mode\(\), .*; load it again outside "
                                         r"inference_mode"):
        deep_lift_shap(scripted, X, refs)
    # Its copy's parameters are computed from the inference tensors: no leaves, and no copy helps.
    with pytest.raises(ModelError, match=r"tensor '\S+' is computed from another tensor, not a leaf .*; load it "
                                         r"again outside inference_mode"):
        deep_lift_shap(copy.deepcopy(scripted), X, refs)


@pytest.mark.parametrize("random_state", [-1, 1.5, "0"])
def test_a_seed_that_is_no_seed_is_a_config_error(data, random_state):
    X, _ = data
    with pytest.raises(ConfigError, match="random_state must be None, an integer of at least 0 or a numpy Generator"):
        deep_lift_shap(_initialised(BassetLike()), X, n_shuffles=2, random_state=random_state)


def test_a_compiled_model_is_explained_as_the_module_it_compiles(data):
    X, refs = data
    model = _initialised(BassetLike())
    expected = deep_lift_shap(model, X, refs)
    torch.testing.assert_close(deep_lift_shap(torch.compile(model), X, refs), expected)


def test_a_target_callable_of_the_wrong_shape_is_told_the_rows_it_gets(data):
    X, refs = data
    with pytest.raises(ModelError, match=r"the target callable returned \(\d+, 3\); expected one scalar per row of the "
                                         r"model's output, \(\d+,\) \(its batch holds the sequences and their "
                                         r"references\)"):
        deep_lift_shap(_initialised(BassetLike()), X, refs, target=lambda output: output)


class _OffsetProfile(nn.Module):
    """A profile head whose logits carry an offset (a multinomial loss leaves its bias free), and a count."""

    def __init__(self, offset: float):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(4, 16, 21, padding=10), nn.ReLU())
        self.profile, self.count, self.offset = nn.Conv1d(16, 1, 25, padding=12), nn.Linear(16, 1), offset

    def forward(self, x):
        h = self.body(x)
        return self.profile(h).squeeze(1) + self.offset, self.count(h.mean(dim=-1))


@pytest.mark.parametrize("autocast", [None, torch.bfloat16])
def test_a_nearly_flat_profile_of_offset_logits_passes_the_delta_check(autocast):
    # The profile target centres logits near 10: f is about 1e-3, the rounding of the logits about 1e-6, so the
    # tolerance must follow the outputs the target reduces, not f alone.
    from genomatt.attribution.targets import profile_target

    torch.manual_seed(0)
    X = _one_hot((12, 200), 7)
    # Under bfloat16 (the logits round by 0.06) the contributions stray from float32's, which is checked apart.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = deep_lift_shap(_OffsetProfile(10.0).eval(), X, n_shuffles=4, target=profile_target(0, "bpnet"),
                                autocast=autocast, return_delta=True, random_state=0, strict=autocast is None)
    assert result.prediction.abs().median() < 0.05
    assert float(result.delta.max()) < (1e-5 if autocast is None else 5e-2) * 10


def test_contributions_under_autocast_far_from_float32_are_refused(data):
    # The nearly flat profile above: under bfloat16 its delta check passes (outputs and contributions round
    # alike), but its contributions are far from float32's, which the first sequences are also explained in.
    from genomatt.attribution.targets import profile_target

    torch.manual_seed(0)
    X = _one_hot((12, 200), 7)
    model, target = _OffsetProfile(10.0).eval(), profile_target(0, "bpnet")
    exact = deep_lift_shap(model, X, n_shuffles=4, target=target, random_state=0)
    with pytest.raises(ModelError, match=r"under autocast bfloat16 the contributions of the first 12 sequences are "
                                         r"\d+% away from float32's .* explain it in float32"):
        deep_lift_shap(model, X, n_shuffles=4, target=target, random_state=0, autocast=torch.bfloat16)
    with pytest.warns(RuntimeWarning, match="away from float32's"):
        reduced = deep_lift_shap(model, X, n_shuffles=4, target=target, random_state=0, autocast=torch.bfloat16,
                                 strict=False)
    assert float(torch.linalg.norm(reduced * X - exact * X) / torch.linalg.norm(exact * X)) > 0.2
    # Only the first autocast_check sequences are compared; none with 0.
    assert torch.isfinite(deep_lift_shap(model, X, n_shuffles=4, target=target, random_state=0,
                                         autocast=torch.bfloat16, autocast_check=0)).all()
    with pytest.raises(ConfigError, match="autocast_check must be a non-negative integer, got -1"):
        deep_lift_shap(model, X, n_shuffles=4, target=target, autocast=torch.bfloat16, autocast_check=-1)
    # Outputs that overflow float16 are non-finite, and said so, not "away from float32's".
    overflowing = nn.Sequential(nn.Conv1d(4, 4, 5), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 1))
    with torch.no_grad():
        overflowing[-1].weight.mul_(1e6)
    with pytest.raises(NonFiniteError):
        deep_lift_shap(overflowing, X, n_shuffles=2, autocast=torch.float16)
    # The references are those of a float32 run: checking the first sequences does not shift the shuffles.
    from genomatt.shuffle import dinucleotide_shuffle

    X, _ = data
    model = _initialised(BPNetLike())
    generated = deep_lift_shap(model, X, n_shuffles=3, random_state=5, autocast=torch.bfloat16, batch_size=3)
    given = deep_lift_shap(model, X, dinucleotide_shuffle(X, n=3, random_state=5), autocast=torch.bfloat16,
                           batch_size=3)
    torch.testing.assert_close(generated, given)


def test_a_vmap_inside_the_model_is_named_in_the_refusal():
    # borzoi-pytorch's relative shift runs under torch.vmap, whose operations the rules do not see.
    class Shifted(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 3, 5)

        def forward(self, x):
            h = self.conv(x)
            return (h + torch.vmap(lambda row: torch.roll(row, 1, dims=-1))(h)).mean(-1)

    with pytest.raises(ModelError, match=r"through `add` .* a torch.vmap or other torch.func transform"):
        deep_lift_shap(Shifted(), _one_hot((2, 40), 3), n_shuffles=2)
