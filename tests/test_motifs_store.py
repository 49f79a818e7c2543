import h5py
import numpy as np
import pandas as pd
import pytest
from test_contributions import write_contrib

from genomatt.errors import StoreError
from genomatt.motifs.discovery import MOTIF_SEQLET_COLUMNS, DiscoveredMotif
from genomatt.motifs.seqlets import CALLED_SEQLET_COLUMNS
from genomatt.motifs.store import read_motifs, write_motifs


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


def test_a_motif_name_holding_a_slash_is_one_group(tmp_path):
    names = ["AP-1/JUN.pos.0", "AP-1%2FJUN.pos.0", "..", "PU.1(ETS)/Promoter/Homer"]
    motifs = [DiscoveredMotif(name, "t", "pos", np.full((4, 2), i), np.ones((4, 2)), np.full((4, 2), 0.25), 20, 0, 2)
              for i, name in enumerate(names)]
    path = write_motifs(tmp_path / "m.h5", motifs, *seqlet_tables(0), {})
    with h5py.File(path) as handle:
        assert len(handle["motifs"]) == len(names)
        assert "AP-1%2FJUN.pos.0" in handle["motifs"] and "AP-1%252FJUN.pos.0" in handle["motifs"]
    back = read_motifs(path)[0]
    assert [motif.name for motif in back] == names
    assert [motif.cwm[0, 0] for motif in back] == [0, 1, 2, 3]


def test_motifs_written_under_their_raw_names_are_read_too(tmp_path):
    # As files written before the keys were escaped: "a%b" under its own name, "AP-1/JUN" as nested groups.
    names = ["a%b.pos.0", "AP-1/JUN.pos.0"]
    motifs = [DiscoveredMotif(name, "t", "pos", np.full((4, 2), i), np.ones((4, 2)), np.full((4, 2), 0.25), 20, 0, 2)
              for i, name in enumerate(names)]
    path = write_motifs(tmp_path / "m.h5", motifs, *seqlet_tables(0), {})
    with h5py.File(path, "a") as handle:
        handle["motifs"].move("a%25b.pos.0", "a%b.pos.0")
        handle["motifs"].move("AP-1%2FJUN.pos.0", "AP-1/JUN.pos.0")
    assert [motif.cwm[0, 0] for motif in read_motifs(path)[0]] == [0, 1]
    with h5py.File(path, "a") as handle:
        del handle["motifs"]["a%b.pos.0"]
    with pytest.raises(StoreError, match=r"no /motifs/a%25b.pos.0 of 'a%b.pos.0'"):
        read_motifs(path)


def test_read_motifs_rejects_other_files(tmp_path):
    with pytest.raises(StoreError, match="not a motifs file"):
        read_motifs(write_contrib(tmp_path / "c.h5"))
