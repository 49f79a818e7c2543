import tracemalloc

import h5py
import numpy as np
import pandas as pd
import pytest
from faults import damage_chunk

from genomatt import __version__
from genomatt.errors import StoreError
from genomatt.store import (content_sha256, gather_stores, list_arrays, read_array, read_attrs, read_regions,
                            shard_record, shard_rows, write_store, writing_store)


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


def test_content_hash_is_the_same_for_the_same_content_written_twice(tmp_path):
    regions = regions_frame()
    onehot = np.random.default_rng(0).random((5, 4, 8)).astype(np.float32)
    first = write_store(tmp_path / "a.h5", regions, {"onehot": onehot}, provenance={"seed": 3})
    second = write_store(tmp_path / "b.h5", regions, {"onehot": onehot}, provenance={"seed": 3})
    with h5py.File(second, "a") as handle:
        handle.attrs["created_utc"] = "2000-01-01T00:00:00+00:00"
    assert first.read_bytes() != second.read_bytes()
    assert content_sha256(first) == content_sha256(second)
    changed = onehot.copy()
    changed[4, 0, 7] += 1
    renamed = regions.assign(name=[f"r{i}" for i in range(4)] + ["other"])
    for other in (write_store(tmp_path / "c.h5", regions, {"onehot": changed}, provenance={"seed": 3}),
                  write_store(tmp_path / "d.h5", renamed, {"onehot": onehot}, provenance={"seed": 3}),
                  write_store(tmp_path / "e.h5", regions, {"onehot": onehot}, provenance={"seed": 4})):
        assert content_sha256(other) != content_sha256(first)


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


def _layout(path):
    """Every dataset's shape, dtype and storage settings, and the root attributes but the time."""
    def values(dataset):
        data = dataset[()]
        return data.tolist() if data.dtype == object else data.tobytes()

    with h5py.File(path) as handle:
        datasets = {}
        handle.visititems(lambda name, item: datasets.update({name: (
            item.shape, item.dtype, item.chunks, item.compression, item.compression_opts, item.fletcher32,
            values(item))}) if isinstance(item, h5py.Dataset) else None)
        attrs = {key: value for key, value in handle.attrs.items() if key != "created_utc"}
    return datasets, attrs


@pytest.mark.parametrize("n, block", [(600, 250), (600, 256), (5, 2), (0, 3)])
def test_writing_block_by_block_equals_one_write(tmp_path, n, block):
    """The streamed file has write_store's layout and bytes, whatever the block and N (0 too)."""
    regions = regions_frame(n)
    rng = np.random.default_rng(4)
    arrays = {"x": rng.random((n, 2, 4, 7)).astype(np.float32), "d": rng.random((n, 2)).astype(np.float32)}
    whole = write_store(tmp_path / "whole.h5", regions, arrays, kind="k", provenance={"a": 1}, attrs={"tasks": ["u"]})
    layout = {name: (array.shape[1:], array.dtype) for name, array in arrays.items()}
    with writing_store(tmp_path / "blocks.h5", regions, layout, kind="k", provenance={"a": 0},
                       attrs={"tasks": ["u"]}) as writer:
        for start in range(0, n, block):
            writer.write({name: array[start:start + block] for name, array in arrays.items()})
        writer.provenance["a"] = 1
    datasets, _ = _layout(tmp_path / "blocks.h5")
    assert datasets == _layout(whole)[0] and _layout(tmp_path / "blocks.h5")[1] == _layout(whole)[1]
    # Chunks of 256 rows, gzip level 1 and Fletcher-32, as docs/formats.md states (none for an empty array).
    assert datasets["x"][2:6] == (((min(n, 256), 2, 4, 7), "gzip", 1, True) if n else (None, None, None, False))
    pd.testing.assert_frame_equal(read_regions(tmp_path / "blocks.h5"), read_regions(whole))
    # A block that ends inside a chunk leaves no stale copy of that chunk behind.
    assert (tmp_path / "blocks.h5").stat().st_size <= whole.stat().st_size * 1.05 + 4096


@pytest.mark.parametrize("failure", [KeyboardInterrupt, StoreError])
def test_a_streamed_write_that_fails_midway_leaves_nothing(tmp_path, failure):
    regions = regions_frame(600)
    out = tmp_path / "new" / "x.h5"
    with pytest.raises(failure):
        with writing_store(out, regions, {"x": ((4, 8), np.float32)}) as writer:
            writer.write({"x": np.zeros((300, 4, 8), np.float32)})
            assert any(path.name.endswith(".tmp") for path in out.parent.iterdir())
            raise failure("stopped")
    assert not out.parent.exists()


def test_a_streamed_write_refuses_wrong_blocks_and_missing_rows(tmp_path):
    regions = regions_frame(5)
    layout = {"x": ((4, 8), np.float32), "d": ((), np.float32)}
    block = {"x": np.zeros((2, 4, 8), np.float32), "d": np.zeros(2, np.float32)}
    for bad, message in [({"x": block["x"]}, r"must hold the arrays \['d', 'x'\]"),
                         ({**block, "d": np.zeros(3, np.float32)}, "differ in rows"),
                         ({**block, "x": np.zeros((2, 4, 9), np.float32)}, r"rows of shape \(4, 9\), expected \(4, 8\)"),
                         ({"x": np.zeros((6, 4, 8)), "d": np.zeros(6)}, "rows 0-6 pass the file's 5 regions")]:
        with pytest.raises(StoreError, match=message), writing_store(tmp_path / "x.h5", regions, layout) as writer:
            writer.write(bad)
    with pytest.raises(StoreError, match="2 of 5 rows written; the file is incomplete"):
        with writing_store(tmp_path / "x.h5", regions, layout) as writer:
            writer.write(block)
    assert list(tmp_path.iterdir()) == []


def test_shard_rows_cover_every_row_once():
    for n, shards in [(10, 3), (2, 5), (0, 2), (7, 1)]:
        rows = [shard_rows(n, i, shards) for i in range(shards)]
        covered = np.concatenate([np.arange(n)[r] for r in rows])
        np.testing.assert_array_equal(covered, np.arange(n))
        sizes = [r.stop - r.start for r in rows]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(StoreError, match="0 <= shard < n_shards"):
        shard_rows(10, 3, 3)


@pytest.mark.parametrize("n, shards, unit", [(400, 2, 42), (400, 7, 42), (10, 3, 4), (5, 4, 3), (0, 2, 8), (9, 1, 4)])
def test_shards_are_cut_between_batches(n, shards, unit):
    rows = [shard_rows(n, i, shards, unit) for i in range(shards)]
    np.testing.assert_array_equal(np.concatenate([np.arange(n)[r] for r in rows]), np.arange(n))
    # Every cut at a batch boundary of one run over all the rows; batches per shard differ by at most one.
    assert all(r.start % unit == 0 or r.start == n for r in rows)
    batches = [-(-(r.stop - r.start) // unit) for r in rows]
    assert max(batches) - min(batches) <= 1
    assert shard_record(1 % shards, shards, n, unit)["rows"] == [rows[1 % shards].start, rows[1 % shards].stop]


RUN = {"seed": 1, "n_references": 8, "rule": "rescale", "model_sha256": "ab" * 32, "h5_sha256": "cd" * 32}


def _shard_files(folder, data, regions, count=3, unit=1, **changes):
    """Shard files of one run, cut at multiples of ``unit`` rows; ``changes`` maps a shard index to provenance
    entries that differ."""
    paths = []
    for index in range(count):
        rows = shard_rows(len(regions), index, count, unit)
        provenance = {**RUN, "max_delta": float(index), "shard": shard_record(index, count, len(regions), unit),
                      **changes.get(f"shard{index}", {})}
        paths.append(write_store(folder / f"part{index}.h5", regions.iloc[rows].reset_index(drop=True),
                                 {"contrib": data[rows]}, kind="contributions", provenance=provenance,
                                 attrs={"tasks": ["a", "b"]}))
    return paths


@pytest.fixture
def shards(tmp_path):
    regions = regions_frame(7)
    data = np.random.default_rng(1).random((7, 2, 4, 3)).astype(np.float32)
    whole = write_store(tmp_path / "whole.h5", regions, {"contrib": data}, kind="contributions",
                        provenance={**RUN, "max_delta": 2.0}, attrs={"tasks": ["a", "b"]})
    return whole, _shard_files(tmp_path, data, regions), data, regions


def test_gather_equals_unsharded(shards, tmp_path):
    whole, parts, data, regions = shards
    gathered = gather_stores(parts, tmp_path / "gathered.h5")
    np.testing.assert_array_equal(read_array(gathered, "contrib"), read_array(whole, "contrib"))
    pd.testing.assert_frame_equal(read_regions(gathered), read_regions(whole))
    a, b = read_attrs(gathered), read_attrs(whole)
    for attrs in (a, b):
        attrs.pop("created_utc")
    # The gathered file names its shards; the rest, the largest max_delta included, is the unsharded run's.
    assert a["provenance"].pop("gathered") == {"count": 3, "files": [str(path.resolve()) for path in parts]}
    assert a == b
    other = write_store(tmp_path / "other.h5", regions.iloc[2:5], {"onehot": data[2:5]}, kind="contributions",
                        provenance={**RUN, "shard": shard_record(1, 3, 7)}, attrs={"tasks": ["a", "b"]})
    with pytest.raises(StoreError, match="differ from the first shard"):
        gather_stores([parts[0], other, parts[2]], tmp_path / "bad.h5")


def test_gather_sorts_shards_given_out_of_order(shards, tmp_path):
    whole, parts, *_ = shards
    gathered = gather_stores([parts[2], parts[0], parts[1]], tmp_path / "gathered.h5")
    np.testing.assert_array_equal(read_array(gathered, "contrib"), read_array(whole, "contrib"))
    pd.testing.assert_frame_equal(read_regions(gathered), read_regions(whole))


def test_gather_copies_blocks_of_rows_not_whole_arrays(tmp_path):
    regions = regions_frame(3000)
    data = np.random.default_rng(2).random((3000, 4, 100)).astype(np.float32)
    parts = _shard_files(tmp_path, data, regions)
    tracemalloc.start()
    gathered = gather_stores(parts, tmp_path / "gathered.h5")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(read_array(gathered, "contrib"), data)
    # Concatenating in memory would hold the whole array (4.8 MB) at least once.
    assert peak < data.nbytes / 3

def test_gather_refuses_a_missing_shard(shards, tmp_path):
    _, parts, *_ = shards
    with pytest.raises(StoreError, match=r"gathered.h5: cannot gather: shards \[1\] of 3 are missing"):
        gather_stores([parts[0], parts[2]], tmp_path / "gathered.h5")


def test_gather_refuses_a_duplicated_shard(shards, tmp_path):
    _, parts, *_ = shards
    copy = tmp_path / "copy.h5"
    copy.write_bytes(parts[1].read_bytes())
    with pytest.raises(StoreError, match=r"copy.h5: shard 1 of 3 is given twice \(also .*part1.h5\)"):
        gather_stores([parts[0], parts[1], copy, parts[2]], tmp_path / "gathered.h5")


@pytest.mark.parametrize("key, value", [("seed", 2), ("n_references", 20), ("rule", "revealcancel"),
                                        ("model_sha256", "ef" * 32), ("h5_sha256", "01" * 32)])
def test_gather_refuses_shards_of_another_run(shards, tmp_path, key, value):
    whole, _, data, regions = shards
    folder = tmp_path / "mixed"
    folder.mkdir()
    parts = _shard_files(folder, data, regions, shard2={key: value})
    with pytest.raises(StoreError, match=rf"part2.h5: {key} = .* differs from .*part0.h5's .*different runs"):
        gather_stores(parts, tmp_path / "gathered.h5")


def test_gather_refuses_shards_of_another_count(shards, tmp_path):
    _, parts, data, regions = shards
    folder = tmp_path / "four"
    folder.mkdir()
    fourth = _shard_files(folder, data, regions, count=4)[3]
    with pytest.raises(StoreError, match=r"four/part3.h5: shard 3 of 4 over 7 regions, but .*part0.h5 is a shard "
                                         r"of 3"):
        gather_stores([*parts, fourth], tmp_path / "gathered.h5")


def test_gather_refuses_shards_cut_in_batches_of_another_size(shards, tmp_path):
    # A shard made again with another --batch-size: its rows overlap the others' (here rows 0-4 and 4-7 against
    # 0-3 and 3-5), which gathered would duplicate or drop regions.
    _, parts, data, regions = shards
    folder = tmp_path / "batches"
    folder.mkdir()
    other = _shard_files(folder, data, regions, count=3, unit=2)
    with pytest.raises(StoreError, match=r"part1.h5: cut in batches of 2 regions, but .*part0.h5 in batches of 1 "
                                         r"\(another --batch-size or --references\)"):
        gather_stores([parts[0], other[1], other[2]], tmp_path / "gathered.h5")
    assert not (tmp_path / "gathered.h5").exists()


def test_gather_refuses_shards_whose_rows_do_not_follow_each_other(shards, tmp_path):
    _, parts, data, regions = shards
    folder = tmp_path / "gap"
    folder.mkdir()
    # Shard 1's record moved one row on: the shards would skip row 3 and give row 6 twice.
    moved = {**shard_record(1, 3, 7), "rows": [4, 6]}
    gap = write_store(folder / "part1.h5", regions.iloc[4:6].reset_index(drop=True), {"contrib": data[4:6]},
                      kind="contributions", provenance={**RUN, "max_delta": 1.0, "shard": moved},
                      attrs={"tasks": ["a", "b"]})
    with pytest.raises(StoreError, match=r"part1.h5: shard 1 covers rows 4-6, but the shards before it end at row 3"):
        gather_stores([parts[0], gap, parts[2]], tmp_path / "gathered.h5")


def test_gather_refuses_a_file_that_is_not_a_shard(shards, tmp_path):
    whole, parts, *_ = shards
    with pytest.raises(StoreError, match=r"whole.h5: no shard record"):
        gather_stores([parts[0], whole], tmp_path / "gathered.h5")


def test_damaged_chunk_is_a_store_error(tmp_path):
    data = np.random.default_rng(0).random((600, 4, 50)).astype(np.float32)
    path = write_store(tmp_path / "x.h5", regions_frame(600), {"contrib": data})
    damage_chunk(path, "contrib")
    with pytest.raises(StoreError, match=r"x.h5: cannot read array 'contrib' .*damaged"):
        read_array(path, "contrib")
