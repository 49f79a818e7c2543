"""The attribution methods behind `attribute`: the papers' identities, agreement with captum, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genomatt.attribution import METHODS, Patterns, attribute, deep_lift_shap, fit_patterns
from genomatt.attribution.gradients import quadrature
from genomatt.errors import ConfigError, ModelError, SequenceError

LENGTH = 24


def one_hot(n: int, length: int = LENGTH, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))].transpose(0, 2, 1).copy())


def cnn(n_outputs: int = 2, seed: int = 0) -> nn.Module:
    """Conv → ReLU → MaxPool → Linear, the family every method supports."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(4, 6, 5, padding=2), nn.ReLU(), nn.MaxPool1d(4), nn.Flatten(),
                         nn.Linear(6 * (LENGTH // 4), n_outputs)).eval()


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4 * LENGTH, 2)).eval()


class SmoothNet(nn.Module):
    """A smooth nonlinear model, whose path integrals converge steadily."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv, self.act, self.head = nn.Conv1d(4, 6, 5, padding=2), nn.Softplus(), nn.Linear(6, 1)
        with torch.no_grad():  # strongly curved, so that few steps leave a visible error
            self.conv.weight.mul_(6.0)
            self.head.weight.mul_(3.0)

    def forward(self, x):
        return self.head(torch.tanh(self.act(self.conv(x))).mean(-1))


def zeros(n: int) -> torch.Tensor:
    return torch.zeros(n, 1, 4, LENGTH)


def method_options(method: str, X: torch.Tensor) -> dict:
    return {
        "deeplift": {"n_shuffles": 3}, "integrated_gradients": {"n_shuffles": 3, "steps": 8},
        "occlusion": {"n_shuffles": 2, "window": 3}, "patternnet": {"X_train": X},
        "patternattribution": {"X_train": X},
    }.get(method, {})


# --- the papers' identities -------------------------------------------------------------------------


def test_linear_model_gradient_x_input_equals_deeplift_ig_and_lrp_with_a_zero_reference():
    model, X = linear_model(), one_hot(5)
    expected = attribute(model, X, method="gradient_x_input", target=1)
    results = {
        "deeplift": attribute(model, X, target=1, references=zeros(5)),
        "integrated_gradients": attribute(model, X, method="integrated_gradients", target=1, references=zeros(5),
                                          steps=3),
        "epsilon_lrp": attribute(model, X, method="epsilon_lrp", target=1, epsilon=1e-9),
    }
    for name, result in results.items():
        torch.testing.assert_close(result, expected, atol=1e-5, rtol=1e-5, msg=name)
    weights = model[1].weight[1].detach().reshape(4, LENGTH)
    hypothetical = attribute(model, X, method="integrated_gradients", target=1, references=zeros(5), hypothetical=True)
    torch.testing.assert_close(hypothetical, weights.expand(5, 4, LENGTH), atol=1e-5, rtol=1e-5)


def test_epsilon_lrp_tends_to_gradient_x_input_in_a_relu_network():
    model, X = cnn(), one_hot(6)
    expected = attribute(model, X, method="gradient_x_input", target=[0, 1])
    close = attribute(model, X, method="epsilon_lrp", target=[0, 1], epsilon=1e-7)
    far = attribute(model, X, method="epsilon_lrp", target=[0, 1], epsilon=1.0)
    torch.testing.assert_close(close, expected, atol=1e-4, rtol=1e-4)
    assert (far - expected).abs().max() > 1e-3


@pytest.mark.parametrize("integration", ["riemann", "gauss_legendre"])
def test_integrated_gradients_completeness_error_shrinks_with_steps(integration):
    X = one_hot(4)
    errors = [float(attribute(SmoothNet(), X, method="integrated_gradients", steps=steps, integration=integration,
                              n_shuffles=3, return_delta=True).delta.max()) for steps in (1, 2, 4, 8)]
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] < 1e-3 < errors[0]


def test_integrated_gradients_contributions_sum_to_the_output_difference():
    model, X = SmoothNet(), one_hot(3)
    references = one_hot(6, seed=5).reshape(3, 2, 4, LENGTH)
    result = attribute(model, X, method="integrated_gradients", references=references, steps=64, return_delta=True)
    with torch.no_grad():
        difference = model(X)[:, 0] - model(references.reshape(6, 4, LENGTH)).reshape(3, 2).mean(1)
    torch.testing.assert_close(result.attributions.sum(dim=(1, 2)), difference, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(result.prediction, model(X)[:, 0].detach())


def test_quadrature_rules_integrate_exactly_what_they_should():
    alphas, weights = quadrature(3, "gauss_legendre")
    assert float((weights * alphas**5).sum()) == pytest.approx(1 / 6, abs=1e-6)
    alphas, weights = quadrature(4, "riemann")
    torch.testing.assert_close(alphas, torch.tensor([0.125, 0.375, 0.625, 0.875]))
    assert float((weights * alphas).sum()) == pytest.approx(0.5)


def test_ism_scores_are_exact_output_differences():
    model, X = cnn(), one_hot(3)
    X[1, :, 7] = 0  # an N: all four bases are edits there
    scores = attribute(model, X, method="ism", target=1, hypothetical=True)
    with torch.no_grad():
        baseline = model(X)[:, 1]
        for i in range(3):
            for position in range(LENGTH):
                edited = X[i].repeat(4, 1, 1)
                edited[:, :, position] = torch.eye(4)
                exact = model(edited)[:, 1]
                observed = int(X[i, :, position].argmax()) if X[i, :, position].any() else None
                torch.testing.assert_close(scores[i, :, position] - scores[i, :, position].mean(),
                                           exact - exact.mean(), atol=1e-5, rtol=1e-5)
                if observed is not None:
                    torch.testing.assert_close(scores[i, :, position] - scores[i, observed, position],
                                               exact - baseline[i], atol=1e-5, rtol=1e-5)


def test_ism_skips_identity_edits_and_honours_the_window():
    model, X = cnn(), one_hot(2)
    rows = []
    hook = model[0].register_forward_hook(lambda module, inputs, output: rows.append(inputs[0].shape[0]))
    scores = attribute(model, X, method="ism", hypothetical=True, start=5, end=9, batch_size=1000)
    hook.remove()
    # Three edits of four positions per sequence, the sequences, and the first row alone (the check that rows
    # do not mix).
    assert sum(rows) == 2 * 3 * 4 + 2 + 1
    assert scores[..., :5].abs().max() == 0 and scores[..., 9:].abs().max() == 0
    assert scores[..., 5:9].abs().max() > 0


def test_patternnet_recovers_the_signal_where_the_gradient_does_not():
    # Kindermans et al. 2018, Fig. 2: x = a_s·y + a_d·ε, and the model y = wᵀx must cancel the
    # distractor, so w is orthogonal to a_d and points away from the signal direction a_s.
    rng = np.random.default_rng(0)
    n = 4000
    signal_direction = np.array([1.0, 0.0, 0.0, 0.0])
    distractor_direction = np.array([1.0, 1.0, 0.0, 0.0])
    y, epsilon = rng.normal(size=n), rng.normal(size=n)
    X = (np.outer(y, signal_direction) + np.outer(epsilon, distractor_direction)).astype(np.float32)[:, :, None]
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -1.0, 0.0, 0.0]]))
    X = torch.from_numpy(X)
    torch.testing.assert_close(model(X)[:, 0], torch.from_numpy(y).float(), atol=1e-5, rtol=1e-5)

    patterns = fit_patterns(model, X)
    torch.testing.assert_close(patterns.patterns[0], torch.tensor([[1.0, 0.0, 0.0, 0.0]]), atol=0.03, rtol=0)
    explained = X[:50]
    estimate = attribute(model, explained, method="patternnet", patterns=patterns, hypothetical=True)[:, :, 0]
    true_signal = torch.from_numpy(np.outer(y[:50], signal_direction)).float()
    gradient = attribute(model, explained, method="gradient_x_input", hypothetical=True)[:, :, 0]

    def cosine(a, b):
        return nn.functional.cosine_similarity(a, b, dim=1)

    assert cosine(estimate, true_signal).min() > 0.99
    assert cosine(gradient, true_signal).abs().max() < 0.75
    relevance = attribute(model, explained, method="patternattribution", patterns=patterns, hypothetical=True)
    torch.testing.assert_close(relevance.sum(dim=(1, 2)), model(explained)[:, 0].detach(), atol=0.05, rtol=0.05)


def test_patterns_fold_batch_norm_into_the_convolution_before_it(tmp_path):
    torch.manual_seed(3)
    with_norm = nn.Sequential(nn.Conv1d(4, 5, 3, padding=1), nn.BatchNorm1d(5), nn.ReLU(), nn.MaxPool1d(2),
                              nn.Flatten(), nn.Dropout(0.5), nn.Linear(5 * LENGTH // 2, 2))
    with torch.no_grad():
        with_norm[1].running_mean.uniform_(-0.2, 0.2)
        with_norm[1].running_var.uniform_(0.5, 2.0)
        with_norm[1].weight.uniform_(0.5, 1.5)
        with_norm[1].bias.uniform_(-0.2, 0.2)
    with_norm.eval()
    folded = nn.Sequential(nn.Conv1d(4, 5, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                           nn.Linear(5 * LENGTH // 2, 2)).eval()
    norm = with_norm[1]
    scale = norm.weight / (norm.running_var + norm.eps).sqrt()
    with torch.no_grad():
        folded[0].weight.copy_(with_norm[0].weight * scale[:, None, None])
        folded[0].bias.copy_((with_norm[0].bias - norm.running_mean) * scale + norm.bias)
        folded[4].load_state_dict(with_norm[6].state_dict())
    X, X_train = one_hot(4), one_hot(64, seed=2)
    torch.testing.assert_close(with_norm(X), folded(X), atol=1e-5, rtol=1e-5)
    patterns = fit_patterns(with_norm, X_train)
    assert patterns.layers == ("0+1", "6")
    for method in ("patternnet", "patternattribution"):
        torch.testing.assert_close(attribute(with_norm, X, method=method, patterns=patterns, target=[0, 1]),
                                   attribute(folded, X, method=method, X_train=X_train, target=[0, 1]),
                                   atol=1e-4, rtol=1e-4)
    patterns.save(tmp_path / "patterns.pt")
    loaded = Patterns.load(tmp_path / "patterns.pt")
    assert loaded.layers == patterns.layers and loaded.model_hash == patterns.model_hash
    torch.testing.assert_close(attribute(with_norm, X, method="patternnet", patterns=loaded),
                               attribute(with_norm, X, method="patternnet", patterns=patterns))


def test_pattern_methods_follow_residual_sums_and_both_strands():
    from genomatt.models.architectures import build_model

    torch.manual_seed(0)
    model = build_model({"architecture": "bpnet", "n_tasks": 2, "input_length": LENGTH, "filters": 4, "n_layers": 2,
                         "pooling": "max", "strand_average": True}).eval()
    X, X_train = one_hot(3), one_hot(32, seed=6)
    patterns = fit_patterns(model, X_train)
    assert patterns.layers == ("first_conv", "dilated_convs.0", "dilated_convs.1", "head")
    for method in ("patternnet", "patternattribution"):
        forward = attribute(model, X, method=method, patterns=patterns, hypothetical=True, target=[0, 1])
        reverse = attribute(model, X.flip(1, 2), method=method, patterns=patterns, hypothetical=True, target=[0, 1])
        # The model averages both strands, so its explanation of the reverse complement is the
        # reverse complement of its explanation.
        torch.testing.assert_close(reverse, forward.flip(2, 3), atol=1e-5, rtol=1e-5)
    assert attribute(Residual(), X, method="patternnet", X_train=X_train).abs().max() > 0


def test_two_component_patterns_use_the_active_regime_only():
    model, X_train = cnn(), one_hot(64, seed=4)
    linear, two_component = fit_patterns(model, X_train, "linear"), fit_patterns(model, X_train)
    assert (linear.patterns[0] - two_component.patterns[0]).abs().max() > 1e-3
    # The output layer feeds no ReLU, so both estimators agree there.
    torch.testing.assert_close(linear.patterns[1], two_component.patterns[1])


def test_a_relu_after_the_max_pool_gates_the_layer_as_one_before_it():
    # relu(max_pool(y)) is max_pool(relu(y)): the same function, so the same two-component patterns (they were the
    # linear estimator's when the pool came first).
    relu_first = cnn()
    pool_first = nn.Sequential(relu_first[0], relu_first[2], relu_first[1], *relu_first[3:]).eval()
    X_train = one_hot(64, seed=4)
    expected, patterns = fit_patterns(relu_first, X_train), fit_patterns(pool_first, X_train)
    torch.testing.assert_close(patterns.patterns[0], expected.patterns[0])
    assert (patterns.patterns[0] - fit_patterns(pool_first, X_train, "linear").patterns[0]).abs().max() > 1e-3


# --- one contract for every method ----------------------------------------------------------------


@pytest.mark.parametrize("method", [name for name in METHODS if name != "occlusion"])
def test_contributions_are_the_hypothetical_scores_at_the_observed_base(method):
    model, X = cnn(), one_hot(3)
    options = method_options(method, X)
    contributions = attribute(model, X, method=method, target=[1, 0], **options)
    hypothetical = attribute(model, X, method=method, target=[1, 0], hypothetical=True, **options)
    assert contributions.shape == (3, 2, 4, LENGTH) and contributions.dtype == torch.float32
    torch.testing.assert_close(contributions, X.unsqueeze(1) * hypothetical)
    torch.testing.assert_close(attribute(model, X, method=method, target=0, **options), contributions[:, 1])


def test_deeplift_through_attribute_is_deep_lift_shap():
    model, X = cnn(), one_hot(3)
    for rule in ("rescale", "revealcancel"):
        result = attribute(model, X, rule=rule, n_shuffles=4, return_delta=True)
        expected = deep_lift_shap(model, X, n_shuffles=4, rule=rule, return_delta=True)
        torch.testing.assert_close(result.attributions, expected.attributions)
        torch.testing.assert_close(result.delta, expected.delta)


def test_a_callable_target_and_numpy_input_are_accepted():
    model, X = cnn(), one_hot(3)
    total = attribute(model, X.numpy(), method="gradient_x_input", target=lambda out: out.sum(dim=1))
    parts = attribute(model, X, method="gradient_x_input", target=[0, 1])
    torch.testing.assert_close(total, parts.sum(dim=1))
    occluded = attribute(model, X, method="occlusion", window=4, n_shuffles=2, target=lambda out: out[:, 1])
    torch.testing.assert_close(occluded, attribute(model, X, method="occlusion", window=4, n_shuffles=2, target=1))


def test_results_do_not_depend_on_the_batch_size():
    model, X = cnn(), one_hot(5)
    for method in ("integrated_gradients", "occlusion", "ism", "epsilon_lrp", "patternnet"):
        options = method_options(method, X)
        torch.testing.assert_close(attribute(model, X, method=method, batch_size=7, **options),
                                   attribute(model, X, method=method, batch_size=500, **options),
                                   atol=1e-5, rtol=1e-5, msg=method)


class BatchCentred(nn.Module):
    """Subtracts the batch's mean activation: each sequence's output depends on the others in its batch."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.head = nn.Conv1d(4, 6, 5, padding=2), nn.Linear(6, 2)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.head((h - h.mean(0, keepdim=True)).mean(-1))


@pytest.mark.parametrize("method", ["saliency", "gradient_x_input", "integrated_gradients", "occlusion", "ism",
                                    "epsilon_lrp", "patternnet", "patternattribution"])
def test_a_model_mixing_the_sequences_of_a_batch_is_refused(method):
    X = one_hot(5)
    options = method_options(method, X)
    with pytest.raises(ModelError, match="changes with the other sequences in its batch .* depend on batch_size"):
        attribute(BatchCentred().eval(), X, method=method, **options)


class MasksItsInput(nn.Module):
    """Sets its input's first bases to 0 (in place, or in a copy) before a Conv → ReLU → MaxPool → Linear."""

    def __init__(self, in_place: bool):
        super().__init__()
        self.inner, self.in_place = cnn(), in_place

    def forward(self, x):
        if not self.in_place:
            x = x.clone()
        x[..., :3] = 0
        return self.inner(x)


class InATupleOfOne(nn.Module):
    """Returns the logits of :func:`cnn` as ``(logits,)``, or as a list of one."""

    def __init__(self, wrap):
        super().__init__()
        self.inner, self.wrap = cnn(), wrap

    def forward(self, x):
        return self.wrap(self.inner(x))


@pytest.mark.parametrize("method", list(METHODS))
def test_a_model_returning_a_tuple_of_one_is_explained_as_its_tensor(method):
    X = one_hot(4)
    options = method_options(method, X)
    expected = attribute(cnn(), X, method=method, **options)
    for wrap in (lambda logits: (logits,), lambda logits: [logits]):
        torch.testing.assert_close(attribute(InATupleOfOne(wrap).eval(), X, method=method, **options), expected,
                                   rtol=0, atol=0)


@pytest.mark.parametrize("method", list(METHODS))
def test_a_model_writing_into_its_input_in_place_is_explained_as_it_runs(method):
    X = one_hot(4)
    options = method_options(method, X)
    options["hypothetical"] = method != "occlusion"  # the scores of all four bases where a method has them
    expected = attribute(MasksItsInput(in_place=False).eval(), X, method=method, **options)
    given = X.clone()
    scores = attribute(MasksItsInput(in_place=True).eval(), given, method=method, **options)
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-6)
    assert torch.equal(given, X)


def test_rounding_of_a_half_precision_model_is_no_mixing_of_rows():
    # Kernels may change with the batch size, and their rounding with them: 0.5% on an output of a float16 model
    # is rounding, on a float32 model's a change the other rows made.
    from genomatt.attribution.outputs import refuse_mixed_rows

    alone = torch.tensor([[2.0, -1.0]])
    batched = [torch.tensor([[2.01, -1.0], [0.5, 0.3]])]
    refuse_mixed_rows([alone], lambda: [alone], batched, "attribution", torch.float16)
    with pytest.raises(ModelError, match="changes with the other sequences in its batch"):
        refuse_mixed_rows([alone], lambda: [alone], batched, "attribution", torch.float32)


# --- agreement with captum ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def captum_attr():
    return pytest.importorskip("captum.attr")


@pytest.mark.parametrize(("ours", "theirs"), [("riemann", "riemann_middle"), ("gauss_legendre", "gausslegendre")])
def test_integrated_gradients_agree_with_captum(captum_attr, ours, theirs):
    model, X = cnn(), one_hot(4)
    expected = captum_attr.IntegratedGradients(model).attribute(X, baselines=0.0, target=1, n_steps=20, method=theirs)
    result = attribute(model, X, method="integrated_gradients", target=1, references=zeros(4), steps=20,
                       integration=ours)
    assert (result - expected).abs().max() < 1e-5


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_saliency_and_gradient_x_input_agree_with_captum(captum_attr):
    model, X = cnn(), one_hot(4)
    saliency = captum_attr.Saliency(model).attribute(X, target=0, abs=True)
    assert (attribute(model, X, method="saliency", hypothetical=True) - saliency).abs().max() < 1e-5
    gradient_x_input = captum_attr.InputXGradient(model).attribute(X, target=1)
    assert (attribute(model, X, method="gradient_x_input", target=1) - gradient_x_input).abs().max() < 1e-5


@pytest.mark.parametrize(("window", "stride"), [(3, 1), (5, 3)])
def test_occlusion_agrees_with_captum(captum_attr, window, stride):
    model, X = cnn(), one_hot(4)
    expected = captum_attr.Occlusion(model).attribute(X, sliding_window_shapes=(4, window), strides=(1, stride),
                                                      baselines=0.0, target=1)
    result = attribute(model, X, method="occlusion", target=1, window=window, stride=stride, references=zeros(4))
    assert (result - X * expected).abs().max() < 1e-5


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "options", "message"), [
    ("lime", {}, "unknown attribution method 'lime'"),
    ("saliency", {"steps": 4}, "saliency has no option 'steps'; its options are: none"),
    ("ism", {"references": None}, "ism has no option 'references'"),
    ("occlusion", {"hypothetical": True}, "occlusion has no hypothetical scores"),
    ("ism", {"return_delta": True}, "ism does not claim completeness"),
    ("integrated_gradients", {"steps": 0}, "steps must be a positive integer"),
    ("integrated_gradients", {"integration": "simpson"}, "integration must be one of gauss_legendre, riemann"),
    ("epsilon_lrp", {"epsilon": 0}, "epsilon must be a positive finite number"),
    ("occlusion", {"window": LENGTH + 1}, f"window ({LENGTH + 1} bp) is longer than the sequences"),
    ("ism", {"start": 10, "end": 5}, "start and end must be positions"),
    ("patternnet", {}, "patternnet needs signal patterns fitted on training sequences"),
    ("patternnet", {"target": lambda out: out.sum(1), "X_train": one_hot(4)}, "target must be an int"),
    ("saliency", {"batch_size": 0}, "batch_size must be a positive integer"),
    ("gradient_x_input", {"target": "GATA1"}, "target must be an int"),
])
def test_invalid_options_are_refused_clearly(method, options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        attribute(cnn(), one_hot(2), method=method, **options)


def test_wrong_shapes_are_refused():
    with pytest.raises(SequenceError, match=r"X must have shape \(N, 4, L\)"):
        attribute(cnn(), torch.zeros(2, LENGTH, 4), method="saliency")
    with pytest.raises(SequenceError, match="references must have shape"):
        attribute(cnn(), one_hot(2), method="integrated_gradients", references=torch.zeros(2, 4, LENGTH))


def test_patterns_of_another_model_are_refused():
    patterns = fit_patterns(cnn(seed=0), one_hot(8))
    with pytest.raises(ConfigError, match="the patterns were fitted for model"):
        attribute(cnn(seed=1), one_hot(2), method="patternnet", patterns=patterns)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.relu, self.conv2, self.head = nn.Conv1d(4, 4, 3, padding=1), nn.ReLU(), \
            nn.Conv1d(4, 4, 3, padding=1), nn.Linear(4, 1)

    def forward(self, x):
        h = self.relu(self.conv1(x))
        return self.head((h + self.conv2(h)).mean(-1))


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.value, self.gate = nn.Conv1d(4, 2, 3, padding=1), nn.Conv1d(4, 2, 3, padding=1)

    def forward(self, x):
        return (self.value(x) * torch.sigmoid(self.gate(x))).sum(dim=(1, 2)).unsqueeze(1)


def test_models_outside_a_methods_assumptions_are_refused():
    with pytest.raises(ModelError, match="cannot compute the patterns of PatternNet and PatternAttribution through "
                       "`sigmoid` .* defined for ReLU networks"):
        attribute(Gated(), one_hot(2), method="patternnet", X_train=one_hot(4))
    with pytest.raises(ModelError, match="cannot compute epsilon-LRP through `mul`"):
        attribute(Gated(), one_hot(2), method="epsilon_lrp")
    with pytest.raises(ModelError, match="a batch norm is supported only as an nn.BatchNorm1d module directly after"):
        attribute(nn.Sequential(nn.Conv1d(4, 3, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.Flatten(), nn.Linear(3 * 22, 1)),
                  one_hot(2), method="patternattribution", X_train=one_hot(4))
    # The gradient methods explain it all the same.
    assert attribute(Gated(), one_hot(2), method="integrated_gradients", n_shuffles=2, steps=4).shape == (2, 4, LENGTH)


class _CustomTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return torch.tanh(z)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * (1 - torch.tanh(z) ** 2)


class _WithCustomFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv1d(4, 3, 3, padding=1), nn.Linear(3, 1)

    def forward(self, x):
        return self.head(_CustomTanh.apply(self.conv(x)).mean(-1))


@pytest.mark.parametrize("method", ["epsilon_lrp", "patternnet", "patternattribution"])
def test_parts_the_modified_gradient_methods_cannot_see_are_refused(method):
    # Their rules apply to the operations they see; a TorchScript submodule or a custom autograd Function ran with the
    # plain gradient (ε-LRP differed from the same model in Python by more than its scores).
    options = {"X_train": one_hot(8)} if method.startswith("pattern") else {}
    model = cnn()
    model[1] = torch.jit.script(model[1])
    with pytest.raises(ModelError, match="module '1' of the model is a TorchScript module"):
        attribute(model, one_hot(2), method=method, **options)
    with pytest.raises(ModelError, match="on a TorchScript model, which runs its operations outside Python"):
        attribute(torch.jit.script(cnn()), one_hot(2), method=method, **options)
    if method == "epsilon_lrp":
        with pytest.raises(ModelError, match="autograd disabled .*custom torch.autograd.Function _CustomTanh"):
            attribute(_WithCustomFunction().eval(), one_hot(2), method=method)


def test_pattern_attribution_names_itself_in_refusals():
    model = nn.Sequential(nn.Conv1d(4, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 22, 1)).eval()
    patterns = fit_patterns(model, one_hot(8))
    gated = nn.Sequential(model[0], nn.Sigmoid(), *model[2:]).eval()
    with pytest.raises(ModelError, match="cannot compute PatternAttribution through `sigmoid`"):
        attribute(gated, one_hot(2), method="patternattribution", patterns=patterns)


def test_the_package_exports_attribute_and_one_result_type():
    import genomatt.attribution as attribution

    assert {"attribute", "deep_lift_shap", "AttributionResult", "DeepLiftShapResult"} <= set(attribution.__all__)
    assert attribution.DeepLiftShapResult is attribution.AttributionResult
    X = one_hot(2)
    result = attribute(Residual(), X, method="deeplift", n_shuffles=2, return_delta=True)
    assert type(result) is attribution.AttributionResult


def test_modified_gradient_modes_do_not_derive_from_the_deeplift_mode():
    from genomatt.attribution.interception import DeepLiftMode, InterceptionMode, ModifiedGradientMode

    assert issubclass(DeepLiftMode, InterceptionMode) and issubclass(ModifiedGradientMode, InterceptionMode)
    assert not issubclass(ModifiedGradientMode, DeepLiftMode)
    assert not hasattr(ModifiedGradientMode, "layout")



# --- the same bad input refused by every method --------------------------------------------------------


class LogOfNegative(nn.Module):
    """A model whose output is NaN for every sequence."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.head = nn.Conv1d(4, 6, 5, padding=2), nn.Linear(6, 1)

    def forward(self, x):
        return torch.log(self.head(torch.relu(self.conv(x)).mean(-1)) - 100)


@pytest.mark.parametrize("method", list(METHODS))
def test_nan_input_and_nan_output_are_refused_by_every_method(method):
    X = one_hot(3)
    bad = X.clone()
    bad[1, 2, 5] = float("nan")
    with pytest.raises(SequenceError, match=r"X holds 1 NaN or infinite values \(first: nan at sequence 1, channel 2, "
                                            r"position 5\)"):
        attribute(cnn(), bad, method=method, **method_options(method, X))
    if method.startswith("pattern"):
        return  # their X_train is refused as X is; a model's NaN output reaches them only through it
    with pytest.raises(ModelError, match="NaN or infinite"):
        attribute(LogOfNegative(), X, method=method, **method_options(method, X))


def test_option_values_of_numpy_types_are_taken_and_unusable_ones_refused():
    model, X = cnn(), one_hot(3)
    torch.testing.assert_close(attribute(model, X, method="saliency", target=np.int64(1)),
                               attribute(model, X, method="saliency", target=1))
    torch.testing.assert_close(attribute(model, X, method="epsilon_lrp", epsilon=np.float32(0.5)),
                               attribute(model, X, method="epsilon_lrp", epsilon=0.5))
    torch.testing.assert_close(attribute(model, X, method="ism", start=np.int64(2), end=np.int64(9)),
                               attribute(model, X, method="ism", start=2, end=9))
    assert attribute(model, X, target=np.int64(1), n_shuffles=2).shape == X.shape
    with pytest.raises(ConfigError, match="epsilon must be a positive finite number, got inf"):
        attribute(model, X, method="epsilon_lrp", epsilon=float("inf"))
    with pytest.raises(ConfigError, match=r"stride \(5 bp\) is longer than the window \(3 bp\)"):
        attribute(model, X, method="occlusion", window=3, stride=5)


def test_methods_that_run_the_model_elsewhere_refuse_a_value_held_at_the_sequence():
    # The 'held' profile convention holds softmax weights at the explained sequence's value; along IG's path, or at
    # ISM's and occlusion's edited sequences, they would be held at each of those instead, a different function
    # (ISM flipped the sign of a base's score).
    from genomatt.attribution.targets import profile_target

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(4, 2, 5, padding=2)).eval()
    X = one_hot(2)
    with pytest.raises(ConfigError, match="integrated gradients cannot hold a value at the explained sequence's"):
        attribute(model, X, method="integrated_gradients", target=profile_target(0, "held"), n_shuffles=2, steps=4)
    for method, name, options in (("ism", "in silico mutagenesis", {}),
                                  ("occlusion", "occlusion", {"window": 3, "stride": 3, "n_shuffles": 2})):
        with pytest.raises(ConfigError, match=f"{name} cannot hold a value .* runs the model on"):
            attribute(model, X, method=method, target=profile_target(0, "held"), **options)
        assert torch.isfinite(attribute(model, X, method=method, target=profile_target(0, "bpnet"), **options)).all()
    bpnet = attribute(model, X, method="integrated_gradients", target=profile_target(0, "bpnet"), n_shuffles=2,
                      steps=4, return_delta=True)
    assert torch.isfinite(bpnet.attributions).all()
    # At the sequence itself (saliency), holding the weights there is what the target means.
    assert torch.isfinite(attribute(model, X, method="saliency", target=profile_target(0, "held"))).all()


def test_a_modified_gradient_refusal_names_what_it_supports_and_the_methods_that_do():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv, self.head = nn.Conv1d(4, 6, 5, padding=2), nn.Linear(6, 1)

        def forward(self, x):
            return self.head(torch.softmax(self.conv(x), dim=-1).sum(-1))

    with pytest.raises(ModelError) as error:
        attribute(Attention(), one_hot(2), method="epsilon_lrp")
    message = str(error.value)
    assert "no epsilon-LRP rule is known for it (explain such a model with deeplift" in message
    assert "rules=" not in message and "softmax, layer norm and recurrent layers have no rule here" in message


def test_pattern_methods_on_a_model_with_several_outputs_say_so():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv, self.count = nn.Conv1d(4, 6, 5, padding=2), nn.Linear(6, 1)

        def forward(self, x):
            h = torch.relu(self.conv(x))
            return h.sum(1), self.count(h.mean(-1))

    X = one_hot(3)
    with pytest.raises(ModelError, match="the model returns tuple; PatternNet and PatternAttribution explain columns"):
        attribute(TwoHeads(), X, method="patternnet", X_train=X)
