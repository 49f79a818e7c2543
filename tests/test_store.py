import h5py
import numpy as np
import pandas as pd
import pytest

from genomatt import __version__
from genomatt.errors import StoreError
from genomatt.store import (gather_stores, list_arrays, read_array, read_attrs, read_regions, shard_rows,
                            write_store)


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


def test_shard_rows_cover_every_row_once():
    for n, shards in [(10, 3), (2, 5), (0, 2), (7, 1)]:
        rows = [shard_rows(n, i, shards) for i in range(shards)]
        covered = np.concatenate([np.arange(n)[r] for r in rows])
        np.testing.assert_array_equal(covered, np.arange(n))
        sizes = [r.stop - r.start for r in rows]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(StoreError, match="0 <= shard < n_shards"):
        shard_rows(10, 3, 3)


def test_gather_equals_unsharded(tmp_path):
    regions = regions_frame(7)
    data = np.random.default_rng(1).random((7, 2, 4, 3)).astype(np.float32)
    whole = write_store(tmp_path / "whole.h5", regions, {"contrib": data}, kind="contributions",
                        provenance={"seed": 1}, attrs={"tasks": ["a", "b"]})
    parts = []
    for i in range(3):
        rows = shard_rows(7, i, 3)
        parts.append(write_store(tmp_path / f"part{i}.h5", regions.iloc[rows].reset_index(drop=True),
                                 {"contrib": data[rows]}, kind="contributions",
                                 provenance={"seed": 1, "shard": [i, 3]}, attrs={"tasks": ["a", "b"]}))
    gathered = gather_stores(parts, tmp_path / "gathered.h5")
    np.testing.assert_array_equal(read_array(gathered, "contrib"), read_array(whole, "contrib"))
    pd.testing.assert_frame_equal(read_regions(gathered), read_regions(whole))
    a, b = read_attrs(gathered), read_attrs(whole)
    for attrs in (a, b):
        attrs.pop("created_utc")
    assert a == b
    other = write_store(tmp_path / "other.h5", regions, {"onehot": data}, kind="contributions")
    with pytest.raises(StoreError, match="differ from the first shard"):
        gather_stores([parts[0], other], tmp_path / "bad.h5")
