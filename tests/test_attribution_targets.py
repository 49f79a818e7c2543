"""Profile targets: the named conventions, and agreement with bpnet-lite's ProfileWrapper."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from genomatt.attribution import deep_lift_shap
from genomatt.attribution.targets import head_targets, profile_target, scalar_target
from genomatt.errors import ConfigError, ModelError


def _one_hot(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    bases = np.random.default_rng(seed).integers(0, 4, size=shape)
    return torch.from_numpy(np.eye(4, dtype=np.float32)[bases]).movedim(-1, -2).contiguous()


class ProfileCountModel(nn.Module):
    """BPNet-style heads: profile logits (N, 2 strands, L) and log counts (N, 1)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv1d(4, 8, 9, padding=4)
        self.profile, self.count = nn.Conv1d(8, 2, 5, padding=2), nn.Linear(8, 1)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return self.profile(h), self.count(h.mean(-1))


@pytest.mark.parametrize("convention", ["bpnet", "held"])
def test_profile_conventions_sum_to_their_target(convention):
    torch.manual_seed(0)
    model = ProfileCountModel().eval()
    X, refs = _one_hot((3, 80), 1), _one_hot((3, 4, 80), 2)
    result = deep_lift_shap(model, X, refs, target=profile_target(0, convention), return_delta=True)
    assert float(result.delta.max()) < 1e-5
    with torch.no_grad():
        logits = model(X)[0].flatten(1)
    centred = logits - logits.mean(-1, keepdim=True)
    weights = torch.softmax(centred if convention == "bpnet" else logits, dim=-1)
    torch.testing.assert_close(result.prediction, (weights * centred).sum(-1), rtol=1e-5, atol=1e-6)


def test_bpnet_convention_matches_bpnet_lite_profile_and_count_wrappers():
    bpnet = pytest.importorskip("bpnetlite.bpnet")
    attribute = pytest.importorskip("bpnetlite.attribute")
    torch.manual_seed(0)
    model = bpnet.BPNet(n_filters=8, n_layers=3, n_outputs=2, n_control_tracks=0, verbose=False).eval()
    X, refs = _one_hot((3, 300), 1), _one_hot((3, 4, 300), 2)
    for wrapper, target in ((bpnet.ProfileWrapper, profile_target(0, "bpnet")), (bpnet.CountWrapper, scalar_target(1))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = attribute.deep_lift_shap(wrapper(model), X, references=refs, device="cpu", hypothetical=True,
                                              warning_threshold=1e9)
        ours = deep_lift_shap(model, X, refs, target=target, hypothetical=True)
        scale = float(theirs.abs().max())
        assert float((ours - theirs).abs().max()) <= 1e-5 * max(scale, 1e-3)


def test_one_track_output_gives_a_target_per_track():
    names = [name for name, _ in head_targets([(3, 50)], task_names=["a", "b", "c"])]
    assert names == ["a", "b", "c"]
    assert [name for name, _ in head_targets([(2, 50), (1,)])] == ["profile", "counts"]
    # A single-task profile + count model named by its task; a name per task or the refusal says so.
    assert [name for name, _ in head_targets([(2, 50), (1,)], task_names=["GATA1"])] == ["profile_GATA1",
                                                                                         "counts_GATA1"]
    with pytest.raises(ModelError, match=r"2 task names \['a', 'b'\] given for a model whose heads .* hold 1 task"):
        head_targets([(2, 50), (1,)], task_names=["a", "b"])
    # Two profile tracks beside two counts, given one name: tasks or strands, each is named.
    with pytest.raises(ModelError, match=r"hold 2 task\(s\); its 2 profile tracks beside 2 counts are explained "
                                         r"apart, .* name each \(e.g. GATA1_plus GATA1_minus\)"):
        head_targets([(2, 50), (2,)], task_names=["GATA1"])
    with pytest.raises(ModelError, match=r"name its 3 tracks \(first axis\) or 50 \(last axis\)"):
        head_targets([(3, 50)], task_names=["a", "b"])
    with pytest.raises(ConfigError, match="profile convention"):
        profile_target(0, "shap")


class OnePositionModel(nn.Module):
    """Five tasks of one value each, returned as (N, 1, 5): a global pool keeping its length axis, then a head."""

    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Conv1d(4, 8, 9, padding=4), nn.Linear(8, 5)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)).mean(-1, keepdim=True).transpose(1, 2))


def test_tracks_of_one_position_are_explained_as_their_values(caplog):
    # Named by their last axis, the five tracks of (1, 5) each hold one value: the value is explained (a profile
    # of one position is constant, so its contributions would all be 0).
    torch.manual_seed(0)
    model = OnePositionModel().eval()
    X, refs = _one_hot((3, 80), 1), _one_hot((3, 4, 80), 2)
    targets = head_targets([(1, 5)], task_names=list("abcde"))
    assert [name for name, _ in targets] == list("abcde")
    contributions = X * deep_lift_shap(model, X, refs, target=targets[3][1], hypothetical=True)
    with torch.no_grad():
        expected = model(X)[:, 0, 3] - torch.stack([model(refs[:, r])[:, 0, 3] for r in range(4)]).mean(0)
    torch.testing.assert_close(contributions.sum((1, 2)), expected, rtol=0, atol=1e-5)
    assert float(expected.abs().min()) > 0
    # Unnamed, it is one track of five positions (gReLU's order), and the log says how to name five tasks.
    with caplog.at_level("WARNING", logger="genomatt"):
        assert [name for name, _ in head_targets([(1, 5)])] == ["track_0"]
    assert "here one position of 5 tasks" in caplog.text
    # One track of 25 positions, positions first, named by its one task: a profile, not 25 tasks.
    from genomatt.models.io import explains_columns

    assert explains_columns([(25, 1)]) and not explains_columns([(25, 1)], ["dnase"])
    caplog.clear()
    with caplog.at_level("WARNING", logger="genomatt"):
        assert [name for name, _ in head_targets([(25, 1)], task_names=["dnase"])] == ["dnase"]
    assert "one track of 25 positions (positions first); for 25 tasks of one value each" in caplog.text


class MultiTaskProfileModel(nn.Module):
    """Multi-task BPNet heads: profile logits (N, 3 tasks, 2 strands, L) and log counts (N, 3), one per task."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv1d(4, 8, 9, padding=4)
        self.profile, self.count = nn.Conv1d(8, 6, 5, padding=2), nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return self.profile(h).reshape(len(x), 3, 2, -1), self.count(h.mean(-1))


def test_multi_task_profile_model_is_explained_per_task():
    torch.manual_seed(0)
    model = MultiTaskProfileModel().eval()
    X, refs = _one_hot((3, 80), 1), _one_hot((3, 4, 80), 2)
    targets = dict(head_targets([(3, 2, 80), (3,)]))
    assert list(targets) == ["profile_0", "profile_1", "profile_2", "counts_0", "counts_1", "counts_2"]
    contributions = X * deep_lift_shap(model, X, refs, target=targets["counts_1"], hypothetical=True)
    with torch.no_grad():
        # The plain model: task 1's log counts, against each reference, averaged.
        expected = model(X)[1][:, 1] - torch.stack([model(refs[:, r])[1][:, 1] for r in range(4)]).mean(0)
    torch.testing.assert_close(contributions.sum((1, 2)), expected, rtol=0, atol=1e-5)
    result = deep_lift_shap(model, X, refs, target=targets["profile_2"], return_delta=True)
    assert float(result.delta.abs().max()) < 1e-5
    profile = profile_target(0, "bpnet", 2)
    with torch.no_grad():
        # Task 2's profile alone: its strands and positions, not the other tasks'.
        assert profile((model(X)[0], None)).shape == (3,)
        changed = model(X)[0].clone()
        changed[:, 0] += torch.randn_like(changed[:, 0])
        torch.testing.assert_close(profile((changed, None)), profile((model(X)[0], None)))


class StrandedCountModel(MultiTaskProfileModel):
    """BPNet's multi-task layout: profile logits (N, 3 tasks, 2 strands, L) and log counts (N, 3, 2), one per task
    and strand."""

    def __init__(self):
        super().__init__()
        self.count = nn.Linear(8, 6)

    def forward(self, x):
        profile, counts = super().forward(x)
        return profile, counts.reshape(len(x), 3, 2)


def test_counts_per_task_and_strand_are_explained_per_task():
    # They were read as one task whose profile mixed every task's, and a "profile" of the six count values.
    torch.manual_seed(0)
    model = StrandedCountModel().eval()
    X, refs = _one_hot((3, 80), 1), _one_hot((3, 4, 80), 2)
    named = dict(head_targets([(3, 2, 80), (3, 2)], task_names=["GATA1", "TAL1", "CTCF"]))
    assert list(named) == [f"{head}_{task}" for head in ("profile", "counts") for task in ("GATA1", "TAL1", "CTCF")]
    contributions = X * deep_lift_shap(model, X, refs, target=named["counts_TAL1"], hypothetical=True)
    with torch.no_grad():
        # The plain model: task 1's log counts averaged over its strands, against each reference, averaged.
        expected = model(X)[1][:, 1].mean(-1) - torch.stack([model(refs[:, r])[1][:, 1].mean(-1)
                                                             for r in range(4)]).mean(0)
    torch.testing.assert_close(contributions.sum((1, 2)), expected, rtol=0, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(named["profile_CTCF"](model(X)), profile_target(0, "bpnet", 2)(model(X)))
    # A single task with one count per strand: one name.
    assert [name for name, _ in head_targets([(1, 2, 80), (1, 2)], task_names=["GATA1"])] == ["profile_GATA1",
                                                                                             "counts_GATA1"]


def test_a_track_output_with_as_many_positions_as_tracks_is_refused():
    # (3, 3): three tracks of three bins, read tracks first whatever the model's layout.
    for names in (None, ["DNase", "ATAC", "CAGE"]):
        with pytest.raises(ModelError, match=r"one \(3, 3\) tensor per sequence: as many positions as tracks"):
            head_targets([(3, 3)], task_names=names)


def test_task_names_other_than_the_models_own_are_refused_for_heads_too(tmp_path):
    # A profile + count model config naming its task GATA1, given CTCF: the targets were renamed profile_CTCF.
    import yaml

    from genomatt.attribution.targets import model_targets
    from genomatt.models.io import load

    torch.manual_seed(0)
    torch.save(ProfileCountModel().state_dict(), tmp_path / "weights.pt")
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({
        "factory": "test_attribution_targets:ProfileCountModel", "weights": "weights.pt", "input_length": 80,
        "task_names": ["GATA1"]}))
    loaded = load(tmp_path / "model.yaml", input_length=80)
    assert model_targets(loaded, "model.yaml")[2] == ["profile_GATA1", "counts_GATA1"]
    assert model_targets(loaded, "model.yaml", ["GATA1"])[2] == ["profile_GATA1", "counts_GATA1"]
    with pytest.raises(ModelError, match=r"model.yaml: the model names its tasks \['GATA1'\], not \['CTCF'\]"):
        model_targets(loaded, "model.yaml", ["CTCF"])


def test_a_multi_task_models_targets_are_chosen_by_head_or_task():
    shapes = [(3, 2, 80), (3,)]
    names = ["GATA1", "TAL1", "CTCF"]

    def chosen(requested):
        return [name for name, _ in head_targets(shapes, requested, task_names=names)]

    assert chosen(["CTCF"]) == ["profile_CTCF", "counts_CTCF"]
    assert chosen(["counts"]) == ["counts_GATA1", "counts_TAL1", "counts_CTCF"]
    assert chosen(["counts_TAL1", "TAL1"]) == ["counts_TAL1", "profile_TAL1"]
    with pytest.raises(ConfigError, match="'SPI1' is neither a target of the model"):
        chosen(["SPI1"])


def test_task_names_that_cannot_name_a_models_heads_are_refused():
    # Per-task heads (profile, counts, profile, counts) given one name: every head was labelled with it.
    with pytest.raises(ModelError, match=r"heads .* are several profile or count heads, not one task's"):
        head_targets([(2, 80), (1,), (2, 80), (1,)], task_names=["CTCF"])
    # A task named as another's target would be: profile_CTCF's regions were CTCF's profile's.
    with pytest.raises(ModelError, match=r"task names \['profile_CTCF'\] begin with profile_ or counts_"):
        head_targets([(2, 2, 80), (2,)], task_names=["CTCF", "profile_CTCF"])
