import h5py
import numpy as np
import pandas as pd
import pytest

from genomatt.errors import StoreError
from genomatt.motifs.discovery import MOTIF_SEQLET_COLUMNS, DiscoveredMotif
from genomatt.motifs.seqlets import CALLED_SEQLET_COLUMNS
from genomatt.motifs.store import read_contribution_info, read_motifs, read_task_window, write_motifs
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
    info = read_contribution_info(write_contrib(tmp_path / "c.h5"))
    assert info.tasks == ["a", "b"] and info.length == L and len(info.regions) == N
    onehot, hypothetical = read_task_window(info.path, 1, 5, 16)
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
        read_contribution_info(path)
    assert str(path) in str(error.value)


def test_regions_and_arrays_must_agree(tmp_path):
    path = write_contrib(tmp_path / "c.h5")
    with h5py.File(path, "a") as handle:
        del handle["onehot"]
        handle["onehot"] = np.zeros((N + 1, 4, L), np.float32)
        del handle["hypothetical"]
        handle["hypothetical"] = np.zeros((N + 1, T, 4, L), np.float32)
    with pytest.raises(StoreError, match="6 regions but 7 rows"):
        read_contribution_info(path)


def test_not_hdf5_or_missing(tmp_path):
    text = tmp_path / "c.h5"
    text.write_text("not hdf5")
    with pytest.raises(StoreError, match="not a readable HDF5 file"):
        read_contribution_info(text)
    with pytest.raises(StoreError, match="file not found"):
        read_contribution_info(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "bare.h5", "w") as handle:
        handle["onehot"] = np.zeros((1, 4, 5))
    with pytest.raises(StoreError, match="no '/regions' group"):
        read_contribution_info(tmp_path / "bare.h5")


def test_non_finite_contributions(tmp_path):
    hypothetical = np.ones((N, T, 4, L), np.float32)
    hypothetical[2, 1, 0, 3] = np.nan
    path = write_contrib(tmp_path / "c.h5", hypothetical=hypothetical)
    read_task_window(path, 0, 0, L)
    with pytest.raises(StoreError, match="NaN or infinite"):
        read_task_window(path, 1, 0, L)


def seqlet_tables(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    motif_seqlets = pd.DataFrame({
        "motif": ["t.pos.0"] * n, "task": ["t"] * n, "sign": ["pos"] * n, "chrom": ["chr1"] * n,
        "start": np.arange(n) + 10, "end": np.arange(n) + 18, "strand": ["+", "-"][:n] * (n // 2) + ["+"] * (n % 2),
        "region": ["r0"] * n, "score": np.linspace(1, 2, n), "window_start": np.arange(n),
        "window_end": np.arange(n) + 30,
    }, columns=list(MOTIF_SEQLET_COLUMNS))
    called = pd.DataFrame({"task": ["t"] * n, "sign": ["neg"] * n, "chrom": ["chr2"] * n, "start": np.arange(n),
                           "end": np.arange(n) + 20, "region": ["r1"] * n, "score": -np.ones(n)},
                          columns=list(CALLED_SEQLET_COLUMNS))
    return motif_seqlets, called


@pytest.mark.parametrize("n", [0, 3])
def test_motifs_file_round_trip(tmp_path, n):
    rng = np.random.default_rng(n)
    motifs = [DiscoveredMotif(f"t.pos.{i}", "t", "pos", rng.normal(size=(4, 30)).astype(np.float32),
                              rng.normal(size=(4, 30)).astype(np.float32),
                              rng.dirichlet(np.ones(4), size=30).T.astype(np.float32), 40 - i, 3, 25,
                              matches=[{"id": "MA0035.5", "name": "GATA1", "p": 1e-8, "q": 1e-6}])
              for i in range(min(n, 12))]
    motif_seqlets, called = seqlet_tables(n)
    path = write_motifs(tmp_path / "motifs.h5", motifs, motif_seqlets, called, {"seed": 1})
    back, back_seqlets, back_called = read_motifs(path)
    assert [motif.name for motif in back] == [motif.name for motif in motifs]
    for a, b in zip(motifs, back):
        np.testing.assert_array_equal(a.cwm, b.cwm)
        np.testing.assert_array_equal(a.pwm, b.pwm)
        assert (a.n_seqlets, a.trim_start, a.trim_end, a.matches) == (b.n_seqlets, b.trim_start, b.trim_end, b.matches)
    pd.testing.assert_frame_equal(back_seqlets, motif_seqlets, check_dtype=False)
    pd.testing.assert_frame_equal(back_called, called, check_dtype=False)


def test_motif_order_survives_hdf5_name_sorting(tmp_path):
    motifs = [DiscoveredMotif(f"t.pos.{i}", "t", "pos", np.ones((4, 2)), np.ones((4, 2)), np.full((4, 2), 0.25),
                              20 - i, 0, 2) for i in range(12)]
    path = write_motifs(tmp_path / "m.h5", motifs, *seqlet_tables(0), {})
    assert [motif.name for motif in read_motifs(path)[0]] == [f"t.pos.{i}" for i in range(12)]


def test_read_motifs_rejects_other_files(tmp_path):
    with pytest.raises(StoreError, match="not a motifs file"):
        read_motifs(write_contrib(tmp_path / "c.h5"))
