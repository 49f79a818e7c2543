"""Saving artefacts and every way of loading a model, with the errors users meet on bad input."""

import json
import re
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as F

from genomatt import ALPHABET, __version__
from genomatt.errors import ConfigError, ModelError
from genomatt.models import LoadedModel, build_model, content_hash, load, save_model
from genomatt.models.io import _check_on_dummy_batch

LENGTH = 64
CONFIG = {"architecture": "bpnet", "n_tasks": 2, "input_length": LENGTH, "filters": 8, "n_layers": 2}


def one_hot_batch(n: int, length: int = LENGTH) -> torch.Tensor:
    bases = torch.randint(0, 4, (n, length), generator=torch.Generator().manual_seed(1))
    return nn.functional.one_hot(bases, 4).permute(0, 2, 1).float()


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(CONFIG).eval()


class ChannelsLast(nn.Module):
    """A model that wants (N, L, 4) input, as some user models do."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(LENGTH, 3, 5)

    def forward(self, x):
        return self.conv(x).mean(dim=-1)


class ProfileModel(nn.Module):
    """A BPNet/ChromBPNet-style model with a profile head (N, L) and a count head (N, 1)."""

    def __init__(self, filters: int = 4):
        super().__init__()
        self.conv = nn.Conv1d(4, filters, 5, padding=2)
        self.profile = nn.Conv1d(filters, 1, 1)
        self.count = nn.Linear(filters, 1)

    def forward(self, x):
        hidden = torch.relu(self.conv(x))
        return self.profile(hidden).squeeze(1), self.count(hidden.mean(dim=-1))


def test_save_load_round_trip_gives_identical_outputs(model, tmp_path):
    path = tmp_path / "model.pt"
    saved_hash = save_model(model, path, ["GATA1", "CTCF"], training_config={"seed": 3}, test_metrics={"auroc": 0.9})
    loaded = load(path, device="cpu")
    assert isinstance(loaded, LoadedModel)
    X = one_hot_batch(6)
    assert torch.equal(loaded.model(X), model(X))
    assert not loaded.model.training
    assert (loaded.source, loaded.task_names, loaded.input_length) == ("genomatt", ["GATA1", "CTCF"], LENGTH)
    assert loaded.content_hash == saved_hash == content_hash(model)
    assert loaded.output_shapes == [(2,)]
    metadata = loaded.metadata
    assert metadata["alphabet"] == ALPHABET and metadata["channel_order"] == list(ALPHABET)
    assert metadata["genomatt_version"] == __version__
    assert metadata["training_config"] == {"seed": 3} and metadata["test_metrics"] == {"auroc": 0.9}


def test_artefact_holds_plain_data_only(model, tmp_path):
    path = tmp_path / "model.pt"
    save_model(model, path, ["a", "b"])
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "genomatt-model" and payload["architecture"] == model.config


def test_content_hash_depends_on_the_weights_only(model):
    same = build_model(CONFIG)
    same.load_state_dict(model.state_dict())
    assert content_hash(same) == content_hash(model)
    with torch.no_grad():
        same.head.bias[0] += 1e-6
    assert content_hash(same) != content_hash(model)


def test_edited_artefact_is_refused(model, tmp_path):
    path = tmp_path / "model.pt"
    save_model(model, path, ["a", "b"])
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["head.bias"] += 1.0
    torch.save(payload, path)
    with pytest.raises(ModelError, match="do not match the content hash"):
        load(path)


def test_declared_length_must_match_the_data(model, tmp_path):
    path = tmp_path / "model.pt"
    save_model(model, path, ["a", "b"])
    assert load(path, input_length=LENGTH).input_length == LENGTH
    with pytest.raises(ModelError, match=f"expects input length {LENGTH} bp but the data has 100 bp"):
        load(path, input_length=100)


def test_torchscript_file(model, tmp_path):
    path = tmp_path / "scripted.ts"
    torch.jit.script(model).save(str(path))
    loaded = load(path, input_length=LENGTH, device="cpu")
    assert loaded.source == "torchscript"
    assert loaded.task_names == ["task_0", "task_1"]
    X = one_hot_batch(3)
    assert torch.allclose(loaded.model(X), model(X))
    assert loaded.content_hash == content_hash(model)


def test_torchscript_needs_an_input_length(model, tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.trace(model, one_hot_batch(2)).save(str(path))
    with pytest.raises(ModelError, match=r"does not declare its input length; give the width of your regions in bp \(--width"):
        load(path)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_state_dict_with_architecture_config(model, tmp_path, suffix):
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    config = {**CONFIG, "weights": "weights.pt", "task_names": ["x", "y"]}
    config_path = tmp_path / f"model{suffix}"
    config_path.write_text(json.dumps(config) if suffix == ".json" else yaml.safe_dump(config))
    loaded = load(config_path)
    assert (loaded.source, loaded.task_names, loaded.input_length) == ("config", ["x", "y"], LENGTH)
    X = one_hot_batch(3)
    assert torch.equal(loaded.model(X), model(X))


def test_config_with_weights_passed_separately(model, tmp_path):
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump(CONFIG))
    loaded = load(tmp_path / "arch.yaml", weights=tmp_path / "weights.pt")
    assert torch.equal(loaded.model(one_hot_batch(2)), model(one_hot_batch(2)))


def write_user_module(tmp_path, monkeypatch, name: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
            from torch import nn

            def build_classifier(n_outputs=3):
                return nn.Sequential(nn.Conv1d(4, 8, 7, padding=3), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
                                     nn.Flatten(), nn.Linear(8, n_outputs))

            def broken():
                raise RuntimeError("no weights server")

            NOT_A_FACTORY = 3
            """))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_import_spec_with_weights(tmp_path, monkeypatch):
    write_user_module(tmp_path, monkeypatch, "user_models_a")
    from user_models_a import build_classifier

    torch.manual_seed(0)
    reference = build_classifier().eval()
    torch.save(reference.state_dict(), tmp_path / "weights.pt")
    loaded = load("user_models_a:build_classifier", weights=tmp_path / "weights.pt", input_length=50)
    assert loaded.source == "import" and loaded.task_names == ["task_0", "task_1", "task_2"]
    X = one_hot_batch(2, 50)
    assert torch.equal(loaded.model(X), reference(X))


def test_factory_config_passes_kwargs(tmp_path, monkeypatch):
    write_user_module(tmp_path, monkeypatch, "user_models_b")
    config = {"factory": "user_models_b:build_classifier", "kwargs": {"n_outputs": 2}, "input_length": 40}
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(config))
    loaded = load(tmp_path / "model.yaml")
    assert loaded.output_shapes == [(2,)] and loaded.input_length == 40


def test_profile_model_loads_without_task_names(tmp_path, monkeypatch):
    monkeypatch.setattr("builtins.ProfileModelForTest", ProfileModel, raising=False)
    torch.manual_seed(0)
    scripted = torch.jit.script(ProfileModel())
    scripted.save(str(tmp_path / "profile.pt"))
    loaded = load(tmp_path / "profile.pt", input_length=80)
    assert loaded.output_shapes == [(80,), (1,)]
    assert loaded.task_names == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_package_xyz.models:build", "cannot import module 'no_such_package_xyz.models'"),
        ("user_models_c:missing", "has no attribute 'missing'"),
        ("user_models_c:NOT_A_FACTORY", "is not callable"),
        ("user_models_c:broken", "calling the factory with {} failed (RuntimeError: no weights server)"),
        ("not-a-spec", "no such model file (and not an import spec"),
    ],
)
def test_bad_import_specs(tmp_path, monkeypatch, spec, message):
    write_user_module(tmp_path, monkeypatch, "user_models_c")
    with pytest.raises(ModelError, match=re.escape(message)):
        load(spec, input_length=50)


def test_model_that_does_not_take_the_data_says_what_it_expects(tmp_path):
    path = tmp_path / "channels_last.pt"
    torch.jit.script(ChannelsLast()).save(str(path))
    with pytest.raises(ModelError, match=r"fails on one-hot input of shape \(3, 4, 100\).*channels before length"):
        load(path, input_length=100)


class FixedBatch(nn.Module):
    """Reshapes to the batch size it reads, which a trace keeps as its example's."""

    def __init__(self):
        super().__init__()
        self.conv, self.out = nn.Conv1d(4, 2, 5, padding=2), nn.Linear(2 * 40, 1)

    def forward(self, x):
        h = self.conv(x)
        return self.out(h.reshape(int(h.shape[0]), -1))


@pytest.mark.parametrize("example_batch", [1, 2, 4])
def test_a_trace_that_kept_its_example_batch_size_is_refused_at_load(tmp_path, example_batch):
    path = tmp_path / "fixed.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the trace's own warning about int(shape)
        torch.jit.trace(FixedBatch().eval(), one_hot_batch(example_batch, 40)).save(str(path))
    with pytest.raises(ModelError, match=r"shape \(3, 4, 40\).*does not keep its example's batch size"):
        load(path, input_length=40)


class DictOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 2, 5)

    def forward(self, x):
        return {"logits": self.conv(x).mean(-1)}


def test_dict_output_is_refused_with_a_way_out(tmp_path):
    path = tmp_path / "dict.ts"
    torch.jit.script(DictOutput()).save(str(path))
    with pytest.raises(ModelError, match=r"returns a dict \(keys \['logits'\]\); genomatt explains a tensor or a "
                                         r"tuple of tensors: wrap it"):
        load(path, input_length=50)


def test_float64_model_is_run_in_float32(tmp_path, caplog):
    torch.manual_seed(0)
    double = nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten()).double()
    path = tmp_path / "double.ts"
    torch.jit.script(double).save(str(path))
    loaded = load(path, input_length=50)
    assert "the model's parameters are torch.float64; it is run in float32" in caplog.text
    X = one_hot_batch(3, 50)
    torch.testing.assert_close(loaded.model(X), double(X.double()).float())


class CastsItsInput(nn.Module):
    """A float64 model whose forward casts its input to float64."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 3, 5)

    def forward(self, x):
        return self.conv(x.double()).mean(-1)


class CastsToItsWeights(nn.Module):
    """Casts its input to its parameters' type: right in Python, frozen to that type by a trace."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 3, 5)

    def forward(self, x):
        return F.gelu(self.conv(x.to(self.conv.weight.dtype))).mean(-1)


def test_a_half_precision_trace_is_told_to_be_traced_in_float32(tmp_path):
    path = tmp_path / "half.ts"
    torch.jit.trace(CastsToItsWeights().half().eval(), torch.zeros(2, 4, 50)).save(str(path))
    # torch's own words for the type mismatch differ with the CPU's kernels; genomatt's are checked.
    with pytest.raises(ModelError, match=r"parameters were torch.float16\): .*(Half|half).*trace "
                                         r"the model in float32 \(model.float\(\) before torch.jit.trace\) or script"):
        load(path, input_length=50)


def test_a_model_casting_its_input_to_its_own_type_is_told_how_to_run_in_float32(tmp_path):
    path = tmp_path / "casts.ts"
    torch.jit.script(CastsItsInput().double()).save(str(path))
    with pytest.raises(ModelError, match=r"fails once run in float32, as genomatt runs models \(its parameters were "
                                         r"torch.float64\): .*casts values to a type of its own"):
        load(path, input_length=50)


def test_basset_refuses_another_length(tmp_path):
    torch.manual_seed(0)
    model = build_model({"architecture": "basset", "n_tasks": 1, "input_length": 96, "hidden": [8]}).eval()
    path = tmp_path / "scripted.pt"
    torch.jit.script(model).save(str(path))
    assert load(path, input_length=96).task_names == ["task_0"]
    with pytest.raises(ModelError, match=r"fails on one-hot input of shape \(3, 4, 200\)"):
        load(path, input_length=200)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        load(tmp_path / "absent.pt")


@pytest.mark.parametrize("content", [b"", b"not a model at all\n" * 10, b"PK\x03\x04broken zip"])
def test_unreadable_model_file(tmp_path, content):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=re.escape(f"{path}: cannot read model file")):
        load(path)


def test_an_empty_or_cut_short_model_file_is_named_as_such(model, tmp_path):
    # They read "(EOFError: )" and "(OSError: [Errno 22] Invalid argument)".
    whole = tmp_path / "whole.pt"
    save_model(model, whole, ["a", "b"])
    for name, content, told in (("empty.pt", b"", "the file is empty"),
                                ("cut.pt", whole.read_bytes()[: whole.stat().st_size // 2], "the file is cut short")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelError, match=re.escape(f"{tmp_path / name}: cannot read model file: {told}")):
            load(tmp_path / name)


def test_pickled_module_is_refused_with_a_way_out(model, tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    with pytest.raises(ModelError, match="pickled Python objects.*TorchScript"):
        load(path)


def test_a_torch_export_program_is_refused_with_a_way_out(tmp_path):
    model = nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten()).eval()
    path = tmp_path / "exported.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(2, 4, 20),)), path)
    for attempt in (lambda: load(path, input_length=20), lambda: load("torch.nn:Identity", weights=path)):
        with pytest.raises(ModelError, match=re.escape(f"{path}: a torch.export program (.pt2)") + ".*TorchScript"):
            attempt()


def test_bare_state_dict_asks_for_its_architecture(model, tmp_path):
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ModelError, match="holds only weights"):
        load(tmp_path / "weights.pt")


def test_weights_that_do_not_fit_the_config(model, tmp_path):
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    config = {**CONFIG, "n_layers": 3, "weights": "weights.pt"}
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ModelError, match=r"weights do not fit the model of .*missing \['dilated_convs.2.bias'"):
        load(tmp_path / "model.yaml")


def test_weights_of_a_wrapper_or_a_checkpoint_are_told_how_to_fit(model, tmp_path):
    config = {**CONFIG, "weights": "weights.pt"}
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(config))
    # Saved from DataParallel: every name with the prefix 'module.'; the list of missing names says how many more.
    torch.save({f"module.{name}": value for name, value in model.state_dict().items()}, tmp_path / "weights.pt")
    n_names = len(model.state_dict())
    with pytest.raises(ModelError, match=rf"missing \[.*\] and {n_names - 5} more, unexpected \[.*\] and "
                                         rf"{n_names - 5} more; the file's names are the model's with the prefix "
                                         r"'module.'"):
        load(tmp_path / "model.yaml")
    # A training checkpoint: the state dict under 'state_dict'.
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "weights.pt")
    with pytest.raises(ModelError, match=r"found a dict with keys \['state_dict', 'epoch'\]; a training checkpoint "
                                         r".*\(torch.save\(checkpoint\['state_dict'\], 'weights.pt'\)\)"):
        load(tmp_path / "model.yaml")


class WithControl(nn.Module):
    """bpnet-lite's BPNet with control tracks: a second input, None by default."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(6, 2, 5)

    def forward(self, X, X_ctl=None):
        return self.conv(X if X_ctl is None else torch.cat([X, X_ctl], dim=1)).mean(-1)


def test_a_model_taking_other_inputs_is_told_to_be_wrapped():
    with pytest.raises(ModelError, match=r"fails on one-hot input .* Its forward also takes X_ctl=None, which "
                                         r"genomatt leaves at its default; if the model needs them, wrap it"):
        _check_on_dummy_batch(WithControl(), LENGTH, torch.device("cpu"), "with_control")

    class NeedsControl(WithControl):
        def forward(self, X, X_ctl):
            return super().forward(X, X_ctl)

    with pytest.raises(ModelError, match=r"Its forward needs inputs beside the sequence \(X_ctl\), which genomatt "
                                         r"does not give: wrap it"):
        _check_on_dummy_batch(NeedsControl(), LENGTH, torch.device("cpu"), "needs_control")

    # Options of a forward (Enformer's target=None, head=None, ...) are no inputs to name.
    class Options(nn.Module):
        def forward(self, x, target=None, head=None, return_embeddings=False):
            return x @ torch.zeros(5, 2)  # wants (N, L, 4) input

    with pytest.raises(ModelError) as refused:
        _check_on_dummy_batch(Options(), LENGTH, torch.device("cpu"), "options")
    assert "Its forward" not in str(refused.value)


def test_an_output_left_empty_by_a_short_window_is_named():
    # A cropped profile (BPNet's trimming): it failed later, in the profile target's reshape.
    class Cropped(nn.Module):
        def forward(self, x):
            return x[:, :2, 20:-20]

    with pytest.raises(ModelError, match=r"short: output 0 is empty at 30 bp \(shape \(2, 0\) per sequence\)"):
        _check_on_dummy_batch(Cropped(), 30, torch.device("cpu"), "short")


def test_config_without_weights(tmp_path):
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(CONFIG))
    with pytest.raises(ModelError, match="names no weights"):
        load(tmp_path / "model.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n_tasks: 2\n", "either 'architecture'"),
        ("architecture: bpnet\nfactory: a:b\n", "either 'architecture'"),
        ("architecture: bpnet\nn_tasks: 2\ninput_length: 64\nlayers: 3\nweights: w.pt\n", "no parameters ['layers']"),
        ("factory: a:b\nweights: w.pt\nextra: 1\n", "unknown keys ['extra']"),
        ("[unclosed\n", "cannot read model config"),
    ],
)
def test_invalid_model_configs(tmp_path, text, message):
    (tmp_path / "model.yaml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(tmp_path / "model.yaml")


def test_task_names_must_match_the_outputs(model, tmp_path):
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({**CONFIG, "weights": "weights.pt", "task_names": ["only"]}))
    with pytest.raises(ModelError, match=r"1 task names \['only'\] for a model with 2 outputs"):
        load(tmp_path / "model.yaml")


def test_save_refuses_models_it_cannot_rebuild(tmp_path):
    with pytest.raises(ModelError, match="save_model stores genomatt architectures"):
        save_model(ChannelsLast(), tmp_path / "model.pt", ["a", "b", "c"])


def test_save_checks_task_names(model, tmp_path):
    with pytest.raises(ModelError, match="2 outputs but 1 task names"):
        save_model(model, tmp_path / "model.pt", ["a"])
    assert not (tmp_path / "model.pt").exists()


def test_name_tasks_names_the_outputs_of_a_model_that_names_none(tmp_path, monkeypatch):
    from genomatt.models.io import name_tasks

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    loaded = load("user_model:build", input_length=50, device="cpu")
    assert loaded.task_names == ["task_0", "task_1"]
    assert name_tasks(loaded, ["GATA1", "CTCF"], "user_model:build").task_names == ["GATA1", "CTCF"]
    with pytest.raises(ModelError, match=r"user_model:build: 3 task names \['a', 'b', 'c'\] given for a model with 2"):
        name_tasks(loaded, ["a", "b", "c"], "user_model:build")
    with pytest.raises(ModelError, match=r"user_model:build: task names must be unique, and 'A' is given more"):
        name_tasks(loaded, ["A", "A"], "user_model:build")
    config = tmp_path / "model.yaml"
    config.write_text("factory: user_model:build\ntask_names: [bound, open]\n")
    declared = load(config, input_length=50, device="cpu")
    assert name_tasks(declared, ["bound", "open"], str(config)).task_names == ["bound", "open"]
    with pytest.raises(ModelError, match=r"the model names its tasks \['bound', 'open'\], not \['GATA1', 'CTCF'\]"):
        name_tasks(declared, ["GATA1", "CTCF"], str(config))
    config.write_text("factory: user_model:build\ntask_names: [bound, bound]\n")
    with pytest.raises(ModelError, match=r"task names must be unique, and 'bound'"):
        load(config, input_length=50, device="cpu")
