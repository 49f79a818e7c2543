"""The contribution file: its reader, validator and writer."""

import h5py
import numpy as np
import pandas as pd
import pytest

from genomatt.contributions import read_contributions
from genomatt.errors import StoreError
from genomatt.store import write_store

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
