"""The contribution file: its reader, validator and writer."""

import h5py
import numpy as np
import pandas as pd
import pytest

from genomatt.cli.main import main
from genomatt.contributions import contribution_block, read_contributions, write_contributions, writing_contributions
from genomatt.errors import StoreError
from genomatt.motifs.hits import call_hits_in_store
from genomatt.report.html import build_report
from genomatt.store import read_array, read_attrs, write_store
from genomatt.tracks import write_contribution_bigwigs

N, T, L = 6, 2, 30


def write_contrib(path, **changes):
    """A small valid contrib.h5, with arrays replaced (or removed with None) by ``changes``."""
    regions = pd.DataFrame({"chrom": ["chr1"] * N, "start": np.arange(N) * 100, "end": np.arange(N) * 100 + L,
                            "name": [f"r{i}" for i in range(N)]})
    onehot = np.eye(4, dtype=np.float32)[np.random.default_rng(0).integers(4, size=(N, L))].transpose(0, 2, 1)
    arrays = {"onehot": onehot, "hypothetical": np.ones((N, T, 4, L), np.float32)}
    attrs = {"tasks": ["a", "b"]}
    for name, value in changes.items():
        if name == "tasks":
            attrs["tasks"] = value
        elif value is None:
            arrays.pop(name)
        else:
            arrays[name] = value
    return write_store(path, regions, arrays, kind="contributions", attrs=attrs)


def test_valid_contributions(tmp_path):
    info = read_contributions(write_contrib(tmp_path / "c.h5"))
    assert info.tasks == ["a", "b"] and info.length == L and len(info.regions) == N
    onehot, hypothetical = info.read_window(1, 5, 16)
    assert onehot.shape == hypothetical.shape == (N, 4, 11) and onehot.dtype == np.float32


@pytest.mark.parametrize("changes, message", [
    ({"hypothetical": None}, "no '/hypothetical' array"),
    ({"onehot": None}, "no '/onehot' array"),
    ({"hypothetical": np.ones((N, 4, L), np.float32)},
     r"'/hypothetical' has shape \(6, 4, 30\), expected \(N, T, 4, L\)"),
    ({"hypothetical": np.ones((N, T, 4, L + 1), np.float32)}, "to match '/onehot'"),
    ({"onehot": np.ones((N, L, 4), np.float32)}, r"'/onehot' has shape \(6, 30, 4\), expected \(N, 4, L\)"),
    ({"tasks": ["a"]}, "names 1 tasks but '/hypothetical' has 2"),
    ({"tasks": ["a", "a"]}, "not unique"),
])
def test_invalid_contributions_are_clear_errors(tmp_path, changes, message):
    path = write_contrib(tmp_path / "c.h5", **changes)
    with pytest.raises(StoreError, match=message) as error:
        read_contributions(path)
    assert str(path) in str(error.value)


def test_regions_and_arrays_must_agree(tmp_path):
    path = write_contrib(tmp_path / "c.h5")
    with h5py.File(path, "a") as handle:
        del handle["onehot"]
        handle["onehot"] = np.zeros((N + 1, 4, L), np.float32)
        del handle["hypothetical"]
        handle["hypothetical"] = np.zeros((N + 1, T, 4, L), np.float32)
    with pytest.raises(StoreError, match="6 regions but 7 rows"):
        read_contributions(path)
    # A region's coordinates that no longer span its window (a flipped byte): every later coordinate would shift.
    path = write_contrib(tmp_path / "shifted.h5")
    with h5py.File(path, "a") as handle:
        handle["regions/start"][2] -= 4
    with pytest.raises(StoreError, match=r"region 2 \(chr1:196-230\) spans 34 bp, but its window has 30 columns"):
        read_contributions(path)


def test_not_hdf5_or_missing(tmp_path):
    text = tmp_path / "c.h5"
    text.write_text("not hdf5")
    with pytest.raises(StoreError, match="not a readable HDF5 file"):
        read_contributions(text)
    with pytest.raises(StoreError, match="file not found"):
        read_contributions(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "bare.h5", "w") as handle:
        handle["onehot"] = np.zeros((1, 4, 5))
    with pytest.raises(StoreError, match="no '/regions' group"):
        read_contributions(tmp_path / "bare.h5")


def test_non_finite_contributions(tmp_path):
    hypothetical = np.ones((N, T, 4, L), np.float32)
    hypothetical[2, 1, 0, 3] = np.nan
    path = write_contrib(tmp_path / "c.h5", hypothetical=hypothetical)
    contributions = read_contributions(path)
    contributions.read_window(0, 0, L)
    with pytest.raises(StoreError, match="NaN or infinite"):
        contributions.read_window(1, 0, L)


def test_kind_and_tasks_attribute_are_checked(tmp_path):
    regions = pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [L], "name": ["r0"]})
    other = write_store(tmp_path / "regions.h5", regions, {"onehot": np.zeros((1, 4, L), np.float32)})
    with pytest.raises(StoreError, match="kind is 'regions', expected 'contributions'"):
        read_contributions(other)
    with h5py.File(other, "a") as handle:
        del handle.attrs["kind"]
    with pytest.raises(StoreError, match="kind is None, expected 'contributions'"):
        read_contributions(other)
    path = write_contrib(tmp_path / "c.h5")
    with h5py.File(path, "a") as handle:
        del handle.attrs["tasks"]
    with pytest.raises(StoreError, match="no 'tasks' attribute"):
        read_contributions(path)


@pytest.mark.parametrize("changes, message", [
    ({"contrib": np.ones((N, T, 4, L - 1), np.float32)}, r"'/contrib' has shape \(6, 2, 4, 29\), expected \(N, T, 4, L\)"),
    ({"hit_contrib": np.ones((N, T - 1, 4, L), np.float32)},
     r"'/hit_contrib' has shape \(6, 1, 4, 30\), expected \(N, T, 4, L\)"),
    ({"delta": np.ones((N, T + 1), np.float32)}, r"'/delta' has shape \(6, 3\), expected \(N, T\) = \(6, 2\)"),
    ({"prediction": np.ones(N, np.float32)}, r"'/prediction' has shape \(6,\), expected \(N, T\)"),
])
def test_optional_arrays_must_fit_the_file(tmp_path, changes, message):
    with pytest.raises(StoreError, match=message):
        read_contributions(write_contrib(tmp_path / "c.h5", **changes))


def _random_contributions(seed: int, n: int, chrom: str, step: int):
    """Regions of ``n`` windows of L bp every ``step`` bp, with random one-hot, hypothetical, delta and prediction."""
    rng = np.random.default_rng(seed)
    regions = pd.DataFrame({"chrom": [chrom] * n, "start": np.arange(n) * step, "end": np.arange(n) * step + L,
                            "name": [f"r{i}" for i in range(n)]})
    onehot = np.eye(4, dtype=np.float32)[rng.integers(4, size=(n, L))].transpose(0, 2, 1)
    hypothetical = rng.normal(size=(n, T, 4, L)).astype(np.float32)
    delta, prediction = rng.random((n, T)).astype(np.float32), rng.random((n, T)).astype(np.float32)
    return regions, onehot, hypothetical, delta, prediction


def test_arrays_are_read_per_task_and_per_row(tmp_path):
    regions, onehot, hypothetical, delta, prediction = _random_contributions(1, N, "chr1", 100)
    path = write_contributions(tmp_path / "c.h5", regions, ["a", "b"], onehot, hypothetical, delta, prediction,
                               {"method": "test"})
    contributions = read_contributions(path)
    assert contributions.tasks == ["a", "b"] and contributions.length == L
    assert contributions.provenance == {"method": "test"} and contributions.attrs["kind"] == "contributions"
    pd.testing.assert_frame_equal(contributions.regions, regions, check_dtype=False)
    assert np.array_equal(contributions.read_contrib(1), onehot * hypothetical[:, 1])
    assert np.array_equal(contributions.read_contrib(0, 3), onehot[3] * hypothetical[3, 0])
    assert np.array_equal(contributions.read_contrib(0, np.array([1, 4])), (onehot * hypothetical[:, 0])[[1, 4]])
    assert np.array_equal(contributions.read_products(np.array([0, 5])), onehot[[0, 5], None] * hypothetical[[0, 5]])
    assert np.array_equal(contributions.read_onehot(), onehot)
    assert contributions.read_scores("delta").dtype == np.float64
    assert np.array_equal(contributions.read_scores("prediction"), prediction.astype(np.float64))
    contributions.check_tasks(["b"])
    with pytest.raises(StoreError, match=r"tasks \['c'\] are not in the file"):
        contributions.check_tasks(["b", "c"])


def test_arrays_only_some_stages_need_are_required_when_read(tmp_path):
    contributions = read_contributions(write_contrib(tmp_path / "c.h5"))
    assert contributions.read_scores("delta") is None
    with pytest.raises(StoreError, match="no '/contrib' array"):
        contributions.read_contrib(0)


def test_every_stage_refuses_a_bad_file_with_the_same_message(tmp_path, capsys):
    path = write_contrib(tmp_path / "c.h5", tasks=["a", "a"])
    message = f"{path}: task names are not unique: ['a', 'a']"
    for stage in (lambda: call_hits_in_store(path, []), lambda: build_report(path, tmp_path / "r.html"),
                  lambda: write_contribution_bigwigs(path, tmp_path / "genome.fa", tmp_path)):
        with pytest.raises(StoreError) as error:
            stage()
        assert str(error.value) == message
    assert main(["motifs", "--contrib", str(path), "--out", str(tmp_path / "m.h5")]) == 2
    assert message in capsys.readouterr().err


def test_written_block_by_block_equals_written_whole(tmp_path):
    n = 7
    regions, onehot, hypothetical, delta, prediction = _random_contributions(2, n, "chr2", 50)
    whole = write_contributions(tmp_path / "whole.h5", regions, ["a", "b"], onehot, hypothetical, delta, prediction,
                                {"method": "test", "max_delta": float(delta.max())})
    with writing_contributions(tmp_path / "blocks.h5", regions, ["a", "b"], L, {"method": "test"}) as writer:
        for start in range(0, n, 3):
            rows = slice(start, start + 3)
            writer.write(contribution_block(onehot[rows], hypothetical[rows], delta[rows], prediction[rows]))
        writer.provenance["max_delta"] = float(delta.max())
    blocks = read_contributions(tmp_path / "blocks.h5")
    assert blocks.arrays == read_contributions(whole).arrays and blocks.provenance == read_contributions(whole).provenance
    for name in ("onehot", "hypothetical", "contrib", "delta", "prediction"):
        assert read_array(tmp_path / "blocks.h5", name).tobytes() == read_array(whole, name).tobytes()
        assert read_array(tmp_path / "blocks.h5", name).dtype == np.float32
    assert read_attrs(tmp_path / "blocks.h5")["tasks"] == ["a", "b"]
