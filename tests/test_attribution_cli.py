"""``genomatt attribute``: contrib.h5 schema, region-seeded references, shards, interop exports."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
import tracemalloc

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from genomatt.attribution import deep_lift_shap
from genomatt.attribution.deeplift import sequences_per_batch
from genomatt.cli import attribute
from genomatt.cli.main import main
from genomatt.contributions import read_contributions
from genomatt.errors import NonFiniteError
from genomatt.models.architectures import build_model
from genomatt.shuffle import references_for_regions
from genomatt.store import StoreWriter, gather_stores, read_array, read_attrs, read_regions, write_store

LENGTH = 64
TASKS = ["GATA1", "CTCF"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A regions store of 7 random regions and a small BPNet config with weights."""
    folder = tmp_path_factory.mktemp("attribute")
    rng = np.random.default_rng(3)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (7, LENGTH))].transpose(0, 2, 1).copy()
    starts = np.arange(7) * 1000
    regions = pd.DataFrame({"chrom": "chr1", "start": starts, "end": starts + LENGTH,
                            "name": [f"region_{i}" for i in range(7)]})
    write_store(folder / "regions.h5", regions, {"onehot": onehot})
    config = {"architecture": "bpnet", "n_tasks": 2, "input_length": LENGTH, "filters": 8, "n_layers": 2}
    torch.manual_seed(0)
    model = build_model(config)
    torch.save(model.state_dict(), folder / "weights.pt")
    (folder / "model.yaml").write_text(yaml.safe_dump({**config, "weights": "weights.pt", "task_names": TASKS}))
    return folder, regions, onehot, model.eval()


def _attribute(folder, out, *options) -> None:
    argv = ["attribute", "--regions-h5", str(folder / "regions.h5"), "--model", str(folder / "model.yaml"),
            "--out", str(out), "--references", "3", "--device", "cpu", *options]
    assert main(argv) == 0


def test_writes_the_contribution_schema(inputs, caplog):
    folder, regions, onehot, model = inputs
    out = folder / "contrib.h5"
    with caplog.at_level(logging.INFO, logger="genomatt"):
        _attribute(folder, out)
    assert any(record.getMessage().startswith("attribute: 7/7 regions (100%), ") for record in caplog.records)
    hypothetical = read_array(out, "hypothetical")
    assert hypothetical.shape == (7, 2, 4, LENGTH)
    np.testing.assert_array_equal(read_array(out, "contrib"), onehot[:, None] * hypothetical)
    np.testing.assert_array_equal(read_array(out, "onehot"), onehot)
    assert read_array(out, "delta").shape == (7, 2) and read_array(out, "delta").max() < 1e-5
    with torch.no_grad():
        np.testing.assert_allclose(read_array(out, "prediction"), model(torch.from_numpy(onehot)).numpy(), rtol=1e-5)
    attrs = read_attrs(out)
    assert attrs["kind"] == "contributions" and list(attrs["tasks"]) == TASKS
    assert attrs["provenance"]["n_references"] == 3 and len(attrs["provenance"]["model_sha256"]) == 64
    pd.testing.assert_frame_equal(read_regions(out), regions)
    # The references are those of references_for_regions: seeded by each region's coordinates.
    refs = references_for_regions(regions, onehot, n=3, seed=0)
    expected = deep_lift_shap(model, onehot, refs, target=[0, 1], hypothetical=True)
    np.testing.assert_allclose(hypothetical, expected.numpy(), rtol=1e-5, atol=1e-7)


def _global_max_model(folder):
    """A BPNet config with a global max pool (where the max rules differ), its weights beside it."""
    config = {"architecture": "bpnet", "n_tasks": 2, "input_length": LENGTH, "filters": 8, "n_layers": 0,
              "pooling": "max"}
    torch.manual_seed(1)
    model = build_model(config).eval()
    torch.save(model.state_dict(), folder / "max_weights.pt")
    (folder / "max_model.yaml").write_text(yaml.safe_dump({**config, "weights": "max_weights.pt", "task_names": TASKS}))
    return model


def test_max_rule_reaches_the_engine_and_the_provenance(inputs):
    folder, regions, onehot, _ = inputs
    model = _global_max_model(folder)
    refs = references_for_regions(regions, onehot, n=3, seed=0)
    for max_rule in ("shapley", "cross_max"):
        out = folder / f"contrib_{max_rule}.h5"
        assert main(["attribute", "--regions-h5", str(folder / "regions.h5"), "--model", str(folder / "max_model.yaml"),
                     "--out", str(out), "--references", "3", "--device", "cpu", "--max-rule", max_rule]) == 0
        assert read_attrs(out)["provenance"]["max_rule"] == max_rule
        expected = deep_lift_shap(model, onehot, refs, target=[0, 1], hypothetical=True, max_rule=max_rule)
        np.testing.assert_allclose(read_array(out, "hypothetical"), expected.numpy(), rtol=1e-5, atol=1e-7)
    assert not np.allclose(read_array(folder / "contrib_shapley.h5", "contrib"),
                           read_array(folder / "contrib_cross_max.h5", "contrib"))


def test_reveal_cancel_that_applies_nowhere_is_said_and_recorded(inputs, tmp_path, caplog):
    # BPNet's ReLUs all follow convolutions: RevealCancel takes each, and genomics_default (RevealCancel after
    # dense layers only) takes none, so its contributions are those of Rescale.
    folder, *_ = inputs
    _attribute(folder, tmp_path / "rescale.h5")
    _attribute(folder, tmp_path / "revealcancel.h5", "--rule", "revealcancel")
    with caplog.at_level(logging.INFO, logger="genomatt"):
        _attribute(folder, tmp_path / "genomics.h5", "--rule", "genomics_default")
    taken = {name: read_attrs(tmp_path / f"{name}.h5")["provenance"].get("rule_taken")
             for name in ("rescale", "revealcancel", "genomics")}
    assert taken["rescale"] is None
    assert taken["revealcancel"]["rescale"] == 0 and taken["revealcancel"]["revealcancel"] > 0
    assert taken["genomics"] == {"revealcancel": 0, "rescale": taken["revealcancel"]["revealcancel"]}
    assert any(record.levelno == logging.WARNING and "none of the model's" in record.getMessage()
               and "those of --rule rescale" in record.getMessage() for record in caplog.records)
    np.testing.assert_allclose(read_array(tmp_path / "genomics.h5", "contrib"),
                               read_array(tmp_path / "rescale.h5", "contrib"), rtol=1e-5, atol=1e-7)
    assert not np.allclose(read_array(tmp_path / "revealcancel.h5", "contrib"),
                           read_array(tmp_path / "rescale.h5", "contrib"))


def test_hit_max_rule_writes_the_contributions_hits_read(inputs, tmp_path, caplog):
    folder, regions, onehot, _ = inputs
    model = _global_max_model(folder)
    options = ("--model", str(folder / "max_model.yaml"))
    plain, shapley, both = tmp_path / "plain.h5", tmp_path / "shapley.h5", tmp_path / "both.h5"
    _attribute(folder, plain, *options)
    _attribute(folder, shapley, *options, "--max-rule", "shapley")
    _attribute(folder, both, *options, "--hit-max-rule", "shapley", "--batch-size", "6")
    provenance = read_attrs(both)["provenance"]
    assert provenance["max_rule"] == "cross_max" and provenance["hit_max_rule"] == "shapley"
    assert read_attrs(plain)["provenance"]["hit_max_rule"] is None and "hit_contrib" not in read_contributions(plain).arrays
    # /contrib is the cross-max run's, /hit_contrib the Max SHAP run's; the recorded error is the larger of the two.
    for name in ("onehot", "hypothetical", "contrib", "prediction"):
        np.testing.assert_allclose(read_array(both, name), read_array(plain, name), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(read_array(both, "hit_contrib"), read_array(shapley, "contrib"), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(read_array(both, "delta"),
                               np.maximum(read_array(plain, "delta"), read_array(shapley, "delta")), atol=1e-7)
    assert read_contributions(both).hit_array == "hit_contrib"
    # Summation-to-delta of /hit_contrib against the plain model: f(x) - mean over references of f(reference).
    refs = references_for_regions(regions, onehot, n=3, seed=0)
    with torch.no_grad():
        f_x = model(torch.from_numpy(onehot)).numpy()
        f_refs = model(torch.from_numpy(refs.reshape(-1, 4, LENGTH))).numpy().reshape(7, 3, 2).mean(axis=1)
    np.testing.assert_allclose(read_array(both, "hit_contrib").sum(axis=(2, 3)), f_x - f_refs, atol=1e-4)
    assert not np.allclose(read_array(both, "hit_contrib"), read_array(both, "contrib"))
    # Shards with /hit_contrib gather into the unsharded file.
    shards = [tmp_path / f"shard{i}.h5" for i in range(2)]
    for i, shard in enumerate(shards):
        _attribute(folder, shard, *options, "--hit-max-rule", "shapley", "--batch-size", "6", "--shard", f"{i}/2")
    gather_stores(shards, tmp_path / "gathered.h5")
    np.testing.assert_array_equal(read_array(tmp_path / "gathered.h5", "hit_contrib"), read_array(both, "hit_contrib"))
    # A model without a max over a whole axis: both rules give the same numbers, so nothing more is written.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="genomatt"):
        _attribute(folder, tmp_path / "no_max.h5", "--hit-max-rule", "shapley")
    assert "hit_contrib" not in read_contributions(tmp_path / "no_max.h5").arrays
    assert read_attrs(tmp_path / "no_max.h5")["provenance"]["hit_max_rule"] is None
    assert any("takes no max over a whole axis" in record.getMessage() for record in caplog.records)


ARRAYS = ("onehot", "hypothetical", "contrib", "delta", "prediction")


@pytest.fixture
def written_blocks(monkeypatch):
    """The rows of each block the contribution writer receives, in order."""
    blocks = []
    write = StoreWriter.write

    def recording(self, arrays):
        blocks.append(len(arrays["onehot"]))
        write(self, arrays)

    monkeypatch.setattr(StoreWriter, "write", recording)
    return blocks


def _block_of(monkeypatch, regions: int, tasks: int) -> None:
    """Make attribute's blocks ``regions`` regions of ``tasks`` tasks of LENGTH bp."""
    monkeypatch.setattr(attribute, "BLOCK_BYTES", regions * tasks * 4 * LENGTH * 4)


def test_blocks_give_the_numbers_of_one_call_over_the_shard(inputs, tmp_path, monkeypatch, written_blocks):
    """Explained and written 3 regions at a time (7 = 3 + 3 + 1), the file is bit for bit the one-call result."""
    folder, regions, onehot, model = inputs
    whole = tmp_path / "whole.h5"
    _attribute(folder, whole, "--batch-size", "3")
    assert written_blocks == [7]
    _block_of(monkeypatch, 3, len(TASKS))
    blocks = tmp_path / "blocks.h5"
    _attribute(folder, blocks, "--batch-size", "3")
    assert written_blocks == [7, 3, 3, 1]
    for name in ARRAYS:
        assert read_array(blocks, name).tobytes() == read_array(whole, name).tobytes(), name
    assert read_attrs(blocks)["provenance"] == read_attrs(whole)["provenance"]
    read_contributions(blocks)
    # The one-call result is deep_lift_shap over the whole shard, as attribute computed it before blocks.
    expected = deep_lift_shap(model, onehot, n_shuffles=3, target=[0, 1], hypothetical=True, batch_size=3,
                              device="cpu", regions=regions, return_delta=True)
    for name, array in zip(("hypothetical", "delta", "prediction"), expected):
        np.testing.assert_array_equal(read_array(blocks, name), array.numpy())
    assert read_attrs(blocks)["provenance"]["max_delta"] == float(expected.delta.max())
    # A shard's blocks read its own rows of the one-hot.
    shard = tmp_path / "shard.h5"
    _block_of(monkeypatch, 2, len(TASKS))
    _attribute(folder, shard, "--batch-size", "3", "--shard", "1/2")
    assert written_blocks[4:] == [2, 1]
    for name in ARRAYS:
        np.testing.assert_array_equal(read_array(shard, name), read_array(whole, name)[4:7])


def test_heads_in_blocks_and_their_exports_equal_one_block(inputs, tmp_path, monkeypatch, written_blocks):
    (tmp_path / "profile_models_cli.py").write_text(PROFILE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["attribute", "--regions-h5", str(inputs[0] / "regions.h5"), "--model", "profile_models_cli:build",
            "--references", "4", "--batch-size", "4", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "whole.h5")]) == 0
    _block_of(monkeypatch, 3, 2)
    export = tmp_path / "export"
    assert main([*argv, "--out", str(tmp_path / "blocks.h5"), "--export-dir", str(export)]) == 0
    assert written_blocks == [7, 3, 3, 1]
    for name in ARRAYS:
        assert read_array(tmp_path / "blocks.h5", name).tobytes() == read_array(tmp_path / "whole.h5", name).tobytes()
    onehot, hypothetical = (read_array(tmp_path / "blocks.h5", name) for name in ("onehot", "hypothetical"))
    for index, head in enumerate(["profile", "counts"]):
        np.testing.assert_array_equal(np.load(export / head / "ohe.npz")["arr_0"], onehot)
        np.testing.assert_array_equal(np.load(export / head / "shap.npz")["arr_0"], hypothetical[:, index])
        with h5py.File(export / head / "scores.h5") as handle:
            np.testing.assert_array_equal(handle["projected_shap/seq"][()], onehot * hypothetical[:, index])


def test_an_empty_shard_writes_an_empty_file(inputs, tmp_path):
    folder, *_ = inputs
    out, export = tmp_path / "contrib.7.h5", tmp_path / "export"
    _attribute(folder, out, "--shard", "7/8", "--export-dir", str(export))
    contributions = read_contributions(out)
    assert len(contributions.regions) == 0 and contributions.tasks == TASKS
    assert contributions.arrays["hypothetical"] == (0, 2, 4, LENGTH) and contributions.arrays["delta"] == (0, 2)
    assert contributions.provenance["max_delta"] == 0.0 and contributions.provenance["shard"]["rows"] == [7, 7]
    assert np.load(export / "CTCF" / "shap.npz")["arr_0"].shape == (0, 4, LENGTH)


def test_memory_is_one_block_not_the_shard(inputs, tmp_path, monkeypatch):
    """Twenty times the regions, about the same peak of Python-allocated memory (one-hot, contributions)."""
    folder, *_ = inputs
    rng = np.random.default_rng(6)
    _block_of(monkeypatch, 32, len(TASKS))
    peaks = {}
    # The first run also imports what the command uses; it is not measured.
    for n in (60, 60, 1200):
        onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, LENGTH))].transpose(0, 2, 1).copy()
        starts = np.arange(n) * 100
        regions = pd.DataFrame({"chrom": "chr3", "start": starts, "end": starts + LENGTH,
                                "name": [f"r{i}" for i in range(n)]})
        write_store(tmp_path / f"regions{n}.h5", regions, {"onehot": onehot})
        argv = ["attribute", "--regions-h5", str(tmp_path / f"regions{n}.h5"), "--model", str(folder / "model.yaml"),
                "--out", str(tmp_path / f"contrib{n}.h5"), "--references", "2", "--device", "cpu", "--quiet"]
        tracemalloc.start()
        assert main(argv) == 0
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # Holding the 1,200 regions' one-hot, hypothetical and actual contributions would take 6 MB (the
    # contributions computed by torch are not traced, the one-hot and their product with it are).
    whole = 1200 * (4 + 2 * len(TASKS) * 4) * LENGTH * 4
    assert peaks[1200] - peaks[60] < whole / 4, peaks


@pytest.mark.parametrize("batch_size", [64, 6])
def test_shards_gather_into_the_unsharded_file(inputs, batch_size):
    # Same references whatever the shard, and shards cut between the batches of one run over every region (2
    # regions per batch of 6 with 3 references: 7 regions in shards of 4, 2 and 1, not 3, 2 and 2): the same numbers.
    folder, *_ = inputs
    batch = ("--batch-size", str(batch_size))
    _attribute(folder, folder / "whole.h5", *batch)
    for shard in range(3):
        _attribute(folder, folder / f"shard{shard}.h5", "--shard", f"{shard}/3", *batch)
    unit = sequences_per_batch(batch_size, 3)
    starts = [read_attrs(folder / f"shard{shard}.h5")["provenance"]["shard"]["rows"][0] for shard in range(3)]
    assert all(start % unit == 0 or start == 7 for start in starts)  # 7 regions: an empty shard starts at the end
    gather_stores([folder / f"shard{shard}.h5" for shard in range(3)], folder / "gathered.h5")
    pd.testing.assert_frame_equal(read_regions(folder / "gathered.h5"), read_regions(folder / "whole.h5"))
    for name in ("onehot", "hypothetical", "contrib", "prediction", "delta"):
        np.testing.assert_array_equal(read_array(folder / "gathered.h5", name), read_array(folder / "whole.h5", name))


def test_targets_by_name_and_interop_exports(inputs):
    folder, _, onehot, _ = inputs
    out, export = folder / "ctcf.h5", folder / "export"
    _attribute(folder, out, "--targets", "CTCF", "--export-dir", str(export))
    assert list(read_attrs(out)["tasks"]) == ["CTCF"]
    hypothetical = read_array(out, "hypothetical")[:, 0]
    np.testing.assert_array_equal(np.load(export / "CTCF" / "ohe.npz")["arr_0"], onehot)
    np.testing.assert_array_equal(np.load(export / "CTCF" / "shap.npz")["arr_0"], hypothetical)
    with h5py.File(export / "CTCF" / "scores.h5") as handle:
        np.testing.assert_array_equal(handle["raw/seq"][()], onehot)
        np.testing.assert_array_equal(handle["shap/seq"][()], hypothetical)
        np.testing.assert_array_equal(handle["projected_shap/seq"][()], onehot * hypothetical)
    peaks = pd.read_csv(export / "CTCF" / "regions.narrowPeak", sep="\t", header=None)
    prediction = read_array(out, "prediction")[:, 0]
    assert peaks[3].tolist() == [f"region_{i}" for i in range(7)] and (peaks[9] == LENGTH // 2).all()
    np.testing.assert_allclose(peaks[6], prediction, rtol=1e-5)


def test_unknown_target_is_a_clear_error(inputs, capsys):
    folder, *_ = inputs
    argv = ["attribute", "--regions-h5", str(folder / "regions.h5"), "--model", str(folder / "model.yaml"),
            "--out", str(folder / "bad.h5"), "--targets", "SPI1", "--device", "cpu"]
    assert main(argv) == 2
    assert ("'SPI1' is neither a task of the model (GATA1, CTCF) nor an output index from 0 to 1 (or -1 for the "
            "last)") in capsys.readouterr().err
    # One target twice (by name and by index) would give a file every later command refuses.
    assert main(argv[:-3] + ["CTCF", "1", "--device", "cpu"]) == 2
    assert "task 'CTCF' is given more than once (['CTCF', 'CTCF'])" in capsys.readouterr().err
    assert not (folder / "bad.h5").exists()


PROFILE_MODULE = '''
import torch
from torch import nn


class Profile(nn.Module):
    """A BPNet/ChromBPNet-style model: profile logits (N, L) and log counts (N, 1)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(4, 6, 7, padding=3)
        self.profile = nn.Conv1d(6, 1, 1)
        self.count = nn.Linear(6, 1)

    def forward(self, x):
        hidden = torch.relu(self.conv(x))
        return self.profile(hidden).squeeze(1), self.count(hidden.mean(dim=-1))


def build():
    return Profile()
'''


def test_profile_and_count_heads_are_explained(inputs, tmp_path, monkeypatch):
    (tmp_path / "profile_models_cli.py").write_text(PROFILE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    h5 = inputs[0] / "regions.h5"
    out = tmp_path / "contrib.h5"
    assert main(["attribute", "--regions-h5", str(h5), "--model", "profile_models_cli:build", "--out", str(out),
                 "--references", "4"]) == 0
    attrs = read_attrs(out)
    assert list(attrs["tasks"]) == ["profile", "counts"]
    delta = read_array(out, "delta")
    assert delta.shape[1] == 2 and delta.max() < 1e-4
    # The count head alone gives the same contributions as in the two-head run.
    single = tmp_path / "counts.h5"
    assert main(["attribute", "--regions-h5", str(h5), "--model", "profile_models_cli:build", "--out", str(single),
                 "--references", "4", "--targets", "counts"]) == 0
    np.testing.assert_allclose(read_array(single, "hypothetical")[:, 0], read_array(out, "hypothetical")[:, 1],
                               atol=1e-6)
    assert main(["attribute", "--regions-h5", str(h5), "--model", "profile_models_cli:build", "--out", str(single),
                 "--targets", "shape"]) == 2


WRAPPED_MODULE = '''
import torch
from torch import nn


class Wrapped(nn.Module):
    def __init__(self, wrap):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.out, self.wrap = nn.Conv1d(4, 6, 5), nn.Linear(6, 2), wrap

    def forward(self, x):
        logits = self.out(torch.relu(self.conv(x)).amax(-1))
        return self.wrap(logits)


def bare():
    return Wrapped(lambda logits: logits)


def one_tuple():
    return Wrapped(lambda logits: (logits,))


def one_list():
    return Wrapped(lambda logits: [logits])
'''


def test_a_model_returning_its_logits_in_a_tuple_of_one_is_explained_as_the_logits(inputs, tmp_path, monkeypatch):
    (tmp_path / "wrapped_models_cli.py").write_text(WRAPPED_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    h5 = inputs[0] / "regions.h5"
    written = {}
    for factory in ("bare", "one_tuple", "one_list"):
        written[factory] = tmp_path / f"{factory}.h5"
        assert main(["attribute", "--regions-h5", str(h5), "--model", f"wrapped_models_cli:{factory}", "--out",
                     str(written[factory]), "--references", "3", "--task-names", "a", "b"]) == 0
    for factory in ("one_tuple", "one_list"):
        for name in ("hypothetical", "prediction", "delta"):
            np.testing.assert_array_equal(read_array(written[factory], name), read_array(written["bare"], name))


def test_torchscript_export_equals_the_python_class(inputs, tmp_path):
    # A user's TorchScript file is explained by walking its graph with the same rules.
    folder, regions, onehot, model = inputs
    scripted = tmp_path / "bpnet.torchscript.pt"
    torch.jit.script(model).save(str(scripted))
    from_class, from_script = tmp_path / "class.h5", tmp_path / "script.h5"
    _attribute(folder, from_class)
    assert main(["attribute", "--regions-h5", str(folder / "regions.h5"), "--model", str(scripted), "--out",
                 str(from_script), "--references", "3", "--device", "cpu"]) == 0
    for name in ("hypothetical", "prediction"):
        np.testing.assert_allclose(read_array(from_script, name), read_array(from_class, name), rtol=0, atol=1e-5)
    assert read_array(from_script, "delta").max() < 1e-5


class _TrackModel(torch.nn.Module):
    """gReLU-style outputs: (N, T, L_out) profiles, or (N, T, 1) with ``bins=1``."""

    def __init__(self, bins: int):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 6, 7, padding=3)
        self.head = torch.nn.Conv1d(6, 2, 1)
        self.pool = torch.nn.AdaptiveAvgPool1d(bins)

    def forward(self, x):
        return self.pool(self.head(torch.relu(self.conv(x))))


@pytest.mark.parametrize("bins, tasks", [(1, ["task_0", "task_1"]), (8, ["track_0", "track_1"])])
def test_track_outputs_are_explained_per_track(bins, tasks, inputs, tmp_path):
    folder, _, onehot, _ = inputs
    torch.manual_seed(2)
    model = _TrackModel(bins).eval()
    path = tmp_path / "tracks.pt"
    torch.jit.script(model).save(str(path))
    out = tmp_path / "tracks.h5"
    assert main(["attribute", "--regions-h5", str(folder / "regions.h5"), "--model", str(path), "--out", str(out),
                 "--references", "3", "--device", "cpu"]) == 0
    assert list(read_attrs(out)["tasks"]) == tasks
    assert read_array(out, "hypothetical").shape == (7, 2, 4, LENGTH)
    assert read_array(out, "delta").max() < 1e-4
    if bins == 1:
        with torch.no_grad():
            np.testing.assert_allclose(read_array(out, "prediction"), model(torch.from_numpy(onehot))[:, :, 0],
                                       rtol=1e-5, atol=1e-6)


class _LengthFirstTrackModel(torch.nn.Module):
    """Enformer/Basenji-style output: a track model's (N, bins, tracks), positions first."""

    def __init__(self, tracks_first: _TrackModel):
        super().__init__()
        self.tracks_first = tracks_first

    def forward(self, x):
        return self.tracks_first(x).transpose(1, 2)


def test_a_length_first_track_model_is_explained_per_named_track(inputs, tmp_path, caplog):
    folder = inputs[0]
    torch.manual_seed(2)
    tracks_first = _TrackModel(8).eval()
    path = tmp_path / "tracks_last.pt"
    torch.jit.script(_LengthFirstTrackModel(tracks_first).eval()).save(str(path))
    torch.jit.script(tracks_first).save(str(tmp_path / "tracks_first.pt"))
    out, first = tmp_path / "last.h5", tmp_path / "first.h5"
    command = ["attribute", "--regions-h5", str(folder / "regions.h5"), "--references", "3", "--device", "cpu"]
    with caplog.at_level("WARNING", logger="genomatt"):
        assert main([*command, "--model", str(path), "--out", str(tmp_path / "unnamed.h5")]) == 0
    # Unnamed, the 8 bins are read as tracks, and the log says so and what to do.
    assert list(read_attrs(tmp_path / "unnamed.h5")["tasks"]) == [f"track_{t}" for t in range(8)]
    assert "explained as 8 tracks of 2 positions" in caplog.text and "--task-names with 2 names" in caplog.text
    assert main([*command, "--model", str(path), "--out", str(out), "--task-names", "DNase", "CAGE"]) == 0
    assert main([*command, "--model", str(tmp_path / "tracks_first.pt"), "--out", str(first)]) == 0
    # The same tracks as the tracks-first model's, whose outputs are its transpose.
    assert list(read_attrs(out)["tasks"]) == ["DNase", "CAGE"]
    np.testing.assert_allclose(read_array(out, "hypothetical"), read_array(first, "hypothetical"), rtol=0, atol=1e-6)
    assert read_array(out, "delta").max() < 1e-4


OVERFLOW_MODULE = """
import torch
from torch import nn


class Overflow(nn.Module):
    \"\"\"1e37 per A: finite for most sequences, infinite for one with more than 34 A of 64.\"\"\"

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[1e37, 0.0, 0.0, 0.0]]))
            self.linear.bias.zero_()

    def forward(self, x):
        return self.linear(x.sum(dim=-1))


def build():
    return Overflow()
"""


@pytest.fixture
def overflowing(inputs, tmp_path, monkeypatch):
    """Regions 2 and 5 all A, on which the Overflow model's output is infinite; its import spec."""
    (tmp_path / "overflow_models_cli.py").write_text(OVERFLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    _, regions, onehot, _ = inputs
    onehot = onehot.copy()
    onehot[[2, 5]] = 0
    onehot[[2, 5], 0] = 1
    h5 = write_store(tmp_path / "regions.h5", regions, {"onehot": onehot})
    return h5, onehot, "overflow_models_cli:build"


@pytest.mark.parametrize("strict", [False, True])
def test_non_finite_outputs_are_an_error_naming_the_regions(overflowing, tmp_path, capsys, strict):
    h5, _, model = overflowing
    out = tmp_path / "out" / "contrib.h5"
    argv = ["attribute", "--regions-h5", str(h5), "--model", model, "--out", str(out), "--references", "3",
            "--device", "cpu"] + (["--strict"] if strict else [])
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"genomatt attribute: error: {model}: the model's outputs or contributions are NaN or infinite "
                     "for 2 of 7 regions: region_2 (chr1:2000-2064), region_5 (chr1:5000-5064); nothing was written")
    assert not out.parent.exists()


def test_a_failure_in_a_later_block_leaves_nothing(overflowing, tmp_path, capsys, monkeypatch, written_blocks):
    h5, _, model = overflowing
    out = tmp_path / "out" / "contrib.h5"
    argv = ["attribute", "--regions-h5", str(h5), "--model", model, "--out", str(out), "--references", "3",
            "--batch-size", "3", "--device", "cpu"]
    _block_of(monkeypatch, 2, 1)
    assert main(argv) == 2
    # Rows 0-1 were written; the block of rows 2-3 failed, named by the shard's rows.
    assert written_blocks == [2]
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"genomatt attribute: error: {model}: the model's outputs or contributions are NaN or infinite "
                     "for 1 of the first 4 of 7 regions: region_2 (chr1:2000-2064); nothing was written")
    assert not out.parent.exists()


def test_an_interrupted_run_leaves_nothing(inputs, tmp_path, monkeypatch):
    folder, *_ = inputs
    write = StoreWriter.write

    def interrupted(self, arrays):
        if self.rows_written:
            raise KeyboardInterrupt
        write(self, arrays)

    monkeypatch.setattr(StoreWriter, "write", interrupted)
    _block_of(monkeypatch, 3, len(TASKS))
    out = tmp_path / "out" / "contrib.h5"
    argv = ["attribute", "--regions-h5", str(folder / "regions.h5"), "--model", str(folder / "model.yaml"),
            "--out", str(out), "--references", "3", "--device", "cpu", "--batch-size", "3"]
    assert main(argv) == 130  # Ctrl-C's exit status
    assert not out.parent.exists()


def test_non_finite_contributions_name_their_rows(overflowing):
    from overflow_models_cli import build

    _, onehot, _ = overflowing
    with pytest.raises(NonFiniteError, match=r"NaN or infinite for 2 of 7 sequences \(rows 2, 5\)") as info:
        deep_lift_shap(build().eval(), onehot, n_shuffles=2, target=0, strict=False)
    assert info.value.rows == [2, 5]


def _hundred_regions(h5):
    """A regions store of 100 random windows of LENGTH bp, enough to stop an attribution run part-way."""
    rng = np.random.default_rng(5)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (100, LENGTH))].transpose(0, 2, 1).copy()
    starts = np.arange(100) * 1000
    return write_store(h5, pd.DataFrame({"chrom": "chr2", "start": starts, "end": starts + LENGTH,
                                         "name": [f"r{i}" for i in range(100)]}), {"onehot": onehot})


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(inputs, tmp_path):
    """A shard killed while explaining, run again, equals a shard never interrupted, array for array."""
    folder, *_ = inputs
    h5 = _hundred_regions(tmp_path / "regions.h5")
    argv = ["--regions-h5", str(h5), "--model", str(folder / "model.yaml"), "--references", "8", "--device", "cpu",
            "--batch-size", "8", "--shard", "1/2"]
    killed = tmp_path / "killed" / "contrib.1.h5"
    process = subprocess.Popen([sys.executable, "-m", "genomatt.cli.main", "attribute", *argv, "--out", str(killed)],
                               stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if "explaining" in line:
            break
    process.kill()
    process.wait()
    # Blocks are written as they are explained: a killed run leaves at most its temporary file, which the
    # next run of the same output removes; never a contrib.1.h5.
    left = list(killed.parent.iterdir()) if killed.parent.exists() else []
    assert all(path.name.startswith(".contrib.1.h5.") and path.suffix == ".tmp" for path in left), left
    killed.parent.mkdir(exist_ok=True)
    (killed.parent / ".contrib.1.h5.k1ll3d00.tmp").write_bytes(b"\x89HDF partial")
    assert main(["attribute", *argv, "--out", str(killed)]) == 0
    assert [path.name for path in killed.parent.iterdir()] == ["contrib.1.h5"]
    uninterrupted = tmp_path / "uninterrupted.h5"
    assert main(["attribute", *argv, "--out", str(uninterrupted)]) == 0
    for name in ("onehot", "hypothetical", "contrib", "delta", "prediction"):
        np.testing.assert_array_equal(read_array(killed, name), read_array(uninterrupted, name))
    pd.testing.assert_frame_equal(read_regions(killed), read_regions(uninterrupted))
    assert read_attrs(killed)["provenance"] == read_attrs(uninterrupted)["provenance"]


@pytest.mark.slow
def test_a_terminated_run_removes_what_it_was_writing(inputs, tmp_path):
    """SIGTERM (a cancelled cluster job) ends the command as an error: exit 143, a message, no file left."""
    folder, *_ = inputs
    h5 = _hundred_regions(tmp_path / "regions.h5")
    out = tmp_path / "terminated" / "contrib.h5"
    process = subprocess.Popen(
        [sys.executable, "-m", "genomatt.cli.main", "attribute", "--regions-h5", str(h5), "--model",
         str(folder / "model.yaml"), "--references", "2000", "--device", "cpu", "--batch-size", "8", "--out", str(out)],
        stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.parent.exists() and list(out.parent.glob(".contrib.h5.*.tmp"))):  # blocks being written
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    # Thousands of references per region: the run is still explaining when the signal arrives.
    process.send_signal(signal.SIGTERM)
    try:
        rest = process.communicate(timeout=60)[1]
    finally:
        process.kill()
    assert process.returncode == 143
    assert "terminated (SIGTERM)" in rest
    assert not (out.parent.exists() and list(out.parent.iterdir()))


def test_a_model_file_given_relative_is_recorded_by_its_absolute_path(inputs, monkeypatch):
    folder, *_ = inputs
    monkeypatch.chdir(folder)
    assert main(["attribute", "--regions-h5", "regions.h5", "--model", "model.yaml", "--out", "relative.h5",
                 "--references", "2", "--device", "cpu"]) == 0
    assert read_attrs(folder / "relative.h5")["provenance"]["model"] == str((folder / "model.yaml").resolve())
