import numpy as np
import pandas as pd
import pytest
from motif_contributions import overlap_fraction, planted_contributions

from genomatt.motifs.seqlets import (
    FULL_GEOMETRY_WINDOW,
    SeqletGeometry,
    call_seqlets,
    seqlet_geometry,
    to_genome,
    write_bed,
)


@pytest.fixture(scope="module")
def planted(small_genome):
    """Regions, one-hot and one task's contributions marking every planted instance of every motif."""
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    regions, onehot, hypothetical = planted_contributions(
        small_genome, {"all": {name: 0.5 for name in truth["motif_name"].unique()}})
    return regions, onehot, hypothetical[:, 0], truth


def test_geometry_is_tfmodisco_lite_for_long_windows_and_scaled_for_short_ones():
    assert seqlet_geometry(FULL_GEOMETRY_WINDOW) == seqlet_geometry(1000) == SeqletGeometry(20, 5, 30, 10)
    assert seqlet_geometry(100) == SeqletGeometry(core=10, flank=2, trim=15, pattern_flank=5)
    short = seqlet_geometry(40)
    assert short == SeqletGeometry(core=6, flank=1, trim=10, pattern_flank=2)
    assert seqlet_geometry(20).core >= 6 and seqlet_geometry(20).flank >= 1


def test_seqlets_of_windows_padded_past_a_chromosome_end_lie_on_the_chromosome():
    # chrM is 16,569 bp: a window at its start was padded with 20 N, one at its end with 31.
    regions = pd.DataFrame({"chrom": ["chrM", "chrM"], "start": [-20, 16400], "end": [180, 16600],
                            "name": ["first", "last"], "padded_left": [20, 0], "padded_right": [0, 31]})
    seqlets = pd.DataFrame({"example": [0, 1, 1], "start": [2, 150, 100], "end": [22, 170, 120]})
    placed = to_genome(seqlets, regions, window_start=0)
    assert placed[["start", "end"]].values.tolist() == [[0, 2], [16550, 16569], [16500, 16520]]


def test_seqlets_point_at_planted_sites_in_genome_coordinates(planted):
    regions, onehot, hypothetical, truth = planted
    seqlets, threshold = call_seqlets(onehot * hypothetical, SeqletGeometry())
    assert threshold > 0 and len(seqlets) > 0.5 * len(truth)
    assert set(seqlets["sign"]) == {"pos"}
    placed = to_genome(seqlets, regions, window_start=0)
    assert overlap_fraction(placed, truth) > 0.9
    # The score is the contribution sum over the core, read back at the genome coordinates.
    first = placed.iloc[0]
    row = int(np.flatnonzero(regions["name"] == first["region"])[0])
    offset = int(regions["start"].iloc[row])
    expected = (onehot[row] * hypothetical[row])[:, first["start"] - offset : first["end"] - offset].sum()
    assert first["score"] == pytest.approx(expected, rel=1e-5)
    assert first["chrom"] == regions["chrom"].iloc[row]


def test_window_offset_shifts_genome_coordinates(planted):
    regions, onehot, hypothetical, truth = planted
    start = 37
    seqlets, _ = call_seqlets((onehot * hypothetical)[:, :, start : start + 121], SeqletGeometry())
    assert overlap_fraction(to_genome(seqlets, regions, window_start=start), truth) > 0.9
    assert overlap_fraction(to_genome(seqlets, regions, window_start=0), truth) < 0.5


def test_negative_contributions_give_negative_seqlets(planted):
    regions, onehot, hypothetical, _ = planted
    seqlets, _ = call_seqlets(-(onehot * hypothetical), SeqletGeometry())
    assert len(seqlets) > 0 and set(seqlets["sign"]) == {"neg"} and (seqlets["score"] < 0).all()


def mostly_positive() -> np.ndarray:
    contrib = np.abs(np.random.default_rng(0).normal(size=(50, 4, 100))).astype(np.float32) + 0.1
    contrib[0, 0, :30] = -5
    return contrib


@pytest.mark.parametrize("contrib", [
    np.zeros((30, 4, 100), np.float32),
    np.ones((30, 4, 100), np.float32),
    np.abs(np.random.default_rng(0).normal(size=(30, 4, 100))).astype(np.float32),
    mostly_positive(),
    np.zeros((30, 4, 20), np.float32),
], ids=["zeros", "constant", "one-signed", "almost-one-signed", "shorter-than-a-seqlet"])
def test_untestable_tracks_give_no_seqlets(contrib):
    seqlets, threshold = call_seqlets(contrib, SeqletGeometry())
    assert len(seqlets) == 0 and np.isnan(threshold)
    assert list(seqlets.columns) == ["example", "start", "end", "sign", "score"]


def test_noise_gives_next_to_no_seqlets():
    noise = np.random.default_rng(1).normal(size=(500, 4, 200)).astype(np.float32)
    onehot = np.eye(4, dtype=np.float32)[np.random.default_rng(2).integers(4, size=(500, 200))].transpose(0, 2, 1)
    seqlets, _ = call_seqlets(onehot * noise, SeqletGeometry())
    # tfmodisco-lite's 3% floor of passing windows would give ~3,000 here; the FDR alone gives almost none.
    assert len(seqlets) < 20


def test_bed_is_sorted_bed6_with_ucsc_scores(tmp_path):
    table = pd.DataFrame({"chrom": ["chr2", "chr1"], "start": [5, 9], "end": [15, 19], "motif": ["a", "b"],
                          "score": [1.23456789, -2.0], "strand": ["+", "-"]})
    lines = write_bed(table, tmp_path / "s.bed", name="motif").read_text().splitlines()
    assert lines == ["#chrom\tstart\tend\tname\tscore\tstrand\tcontribution",
                     "chr1\t9\t19\tb\t1000\t-\t-2", "chr2\t5\t15\ta\t617\t+\t1.23457"]
    # Contributions of a model whose outputs are small keep their values (six significant digits).
    tiny = write_bed(table.assign(score=table["score"] * 1e-8), tmp_path / "t.bed", name="motif").read_text()
    assert [line.split("\t")[6] for line in tiny.splitlines()[1:]] == ["-2e-08", "1.23457e-08"]
    unstranded = write_bed(table.drop(columns="strand"), tmp_path / "u.bed", name="motif").read_text()
    assert unstranded.splitlines()[1].split("\t")[5] == "."


def test_a_task_whose_sums_fit_no_null_is_named(caplog):
    with caplog.at_level("WARNING", logger="genomatt"):
        seqlets, threshold = call_seqlets(np.zeros((3, 4, 200), np.float32), seqlet_geometry(200), task="flat")
    assert len(seqlets) == 0 and np.isnan(threshold)
    assert "task flat: the windowed contribution sums cannot be fitted by a null" in caplog.text
