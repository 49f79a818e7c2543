import h5py
import numpy as np
import pandas as pd
import pytest

from genomatt import __version__
from genomatt.errors import StoreError
from genomatt.store import list_arrays, read_array, read_attrs, read_regions, write_store


def regions_frame(n=5):
    return pd.DataFrame({
        "chrom": ["chr1"] * n, "start": np.arange(n) * 10, "end": np.arange(n) * 10 + 8,
        "name": [f"r{i}" for i in range(n)], "score": np.linspace(0, 1, n), "flag": [True] * n,
    })


def test_round_trip_with_provenance(tmp_path):
    regions = regions_frame()
    onehot = np.random.default_rng(0).random((5, 4, 8)).astype(np.float32)
    path = write_store(tmp_path / "x.h5", regions, {"onehot": onehot}, provenance={"seed": np.int64(3), "width": 8},
                       attrs={"tasks": ["a", "b"]})
    pd.testing.assert_frame_equal(read_regions(path), regions, check_dtype=False)
    np.testing.assert_array_equal(read_array(path, "onehot"), onehot)
    np.testing.assert_array_equal(read_array(path, "onehot", slice(1, 3)), onehot[1:3])
    attrs = read_attrs(path)
    assert attrs["genomatt_version"] == __version__ and attrs["kind"] == "regions"
    assert attrs["provenance"] == {"seed": 3, "width": 8}
    assert attrs["tasks"] == ["a", "b"]
    assert list_arrays(path) == {"onehot": (5, 4, 8)}
    with h5py.File(path) as handle:
        assert handle["onehot"].chunks is not None


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "x.h5"
    with pytest.raises(StoreError, match="has 3 rows for 5 regions"):
        write_store(target, regions_frame(), {"bad": np.zeros((3, 4))})
    assert list(tmp_path.iterdir()) == []


def test_existing_file_untouched_when_write_fails(tmp_path):
    target = write_store(tmp_path / "x.h5", regions_frame(), {})
    before = target.read_bytes()
    with pytest.raises(StoreError):
        write_store(target, regions_frame().drop(columns="name"), {})
    assert target.read_bytes() == before


def test_read_errors(tmp_path):
    with pytest.raises(StoreError, match="file not found"):
        read_regions(tmp_path / "none.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(StoreError, match="not a readable HDF5 file"):
        read_regions(text)
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["x"] = 1
    with pytest.raises(StoreError, match="not a genomatt file"):
        read_regions(tmp_path / "other.h5")
    path = write_store(tmp_path / "x.h5", regions_frame(), {"onehot": np.zeros((5, 4, 2))})
    with pytest.raises(StoreError, match=r"no array 'contrib' \(it has: \['onehot'\]\)"):
        read_array(path, "contrib")
