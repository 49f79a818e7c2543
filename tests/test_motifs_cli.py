import logging

import h5py
import numpy as np
import pandas as pd
import pytest
from bed_checks import assert_valid_bed
from motif_contributions import overlap_fraction, two_motif_contributions, write_planted_contributions

from genomatt.cli.main import main
from genomatt.motifs.formats import read_meme, write_meme
from genomatt.motifs.jaspar import DEFAULT_RELEASE, fetch_jaspar_collection
from genomatt.motifs.store import read_motifs
from genomatt.store import read_attrs, read_regions

SEQLET_BED = ["chrom", "start", "end", "name", "score", "strand", "contribution"]


def read_seqlet_bed(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", comment="#", header=None, names=SEQLET_BED)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``genomatt motifs`` on the two-motif contributions, matched against JASPAR."""
    folder = tmp_path_factory.mktemp("motifs_cli")
    genome, contrib = two_motif_contributions(folder)
    out = folder / "out" / "motifs.h5"
    assert main(["motifs", "--contrib", str(contrib), "--out", str(out), "--threads", "2", "--seed", "3"]) == 0
    return out, contrib, pd.read_csv(genome.truth_tsv, sep="\t")


def test_planted_motifs_are_found_and_matched(run):
    out, _, _ = run
    motifs = {motif.name: motif for motif in read_motifs(out)[0]}
    for name, matrix_id in (("GATA1.pos.0", "MA0035"), ("CTCF.pos.0", "MA0139"), ("CTCF.neg.0", "MA0035")):
        best = motifs[name].matches[0]
        assert best["id"].split(".")[0] == matrix_id and best["q"] < 0.05
    matches = pd.read_csv(out.parent / "matches.tsv", sep="\t")
    assert set(matches["motif"]) == set(motifs)
    best = matches[matches["rank"] == 1].set_index("motif")
    assert best.loc["CTCF.pos.0", "match_name"] == "CTCF"
    assert len(read_meme(out.parent / "motifs.meme")) == len(motifs)


def test_seqlet_beds_point_at_planted_sites(run):
    out, _, truth = run
    seqlets = read_seqlet_bed(out.parent / "seqlets.bed")
    _, table, called = read_motifs(out)
    assert len(seqlets) == len(table) and set(seqlets["strand"]) == {"+", "-"}
    for motif, planted in (("GATA1.pos.0", "GATA1"), ("CTCF.pos.0", "CTCF"), ("CTCF.neg.0", "GATA1")):
        assert overlap_fraction(seqlets[seqlets["name"] == motif], truth[truth["motif_name"] == planted]) >= 0.8
    called_bed = read_seqlet_bed(out.parent / "called_seqlets.bed")
    assert len(called_bed) == len(called) and set(called_bed["name"]) >= {"GATA1.pos", "CTCF.pos", "CTCF.neg"}
    assert (called_bed["strand"] == ".").all()
    assert_valid_bed(out.parent / "seqlets.bed", extra_columns=1)
    assert_valid_bed(out.parent / "called_seqlets.bed", extra_columns=1)
    for bed, scores in ((seqlets, table["score"]), (called_bed, called["score"])):
        assert bed["score"].between(0, 1000).all() and bed["score"].max() == 1000
        assert sorted(bed["contribution"]) == pytest.approx(sorted(scores), rel=1e-5)  # six significant digits
        assert (bed["contribution"] < 0).any()


def test_modisco_files_are_read_by_tfmodisco_lite(run, tmp_path):
    from modiscolite import io, report
    from modiscolite.util import MemeDataType

    out, contrib, _ = run
    motifs = [motif for motif in read_motifs(out)[0] if motif.task == "CTCF"]
    path = out.parent / "modisco" / "CTCF.h5"
    io.write_meme_from_h5(path, MemeDataType.PFM, tmp_path / "pfm.meme", is_quiet=True)
    pfms = read_meme(tmp_path / "pfm.meme")
    assert [m.id for m in pfms] == [f"{m.sign}_patterns.pattern_{m.name.split('.')[-1]}" for m in motifs]
    for motif, pfm in zip(motifs, pfms):
        np.testing.assert_allclose(pfm.probabilities, motif.pwm, atol=1e-5)
    io.convert_new_to_old(path, tmp_path / "old.h5")
    database = write_meme(fetch_jaspar_collection(), tmp_path / "jaspar.meme")
    report.report_motifs(path, tmp_path / "report", "./", database, False, top_n_matches=1, ttl=True)
    assert "CTCF" in (tmp_path / "report" / "motifs.html").read_text()


def test_modisco_coordinates_give_the_genome_coordinates(run):
    """As Fi-NeMo reads them: region of example_idx, plus window offset, plus seqlet start."""
    out, contrib, _ = run
    regions = read_regions(contrib)
    _, table, _ = read_motifs(out)
    with h5py.File(out.parent / "modisco" / "GATA1.h5", "r") as handle:
        seqlets = handle["pos_patterns/pattern_0/seqlets"]
        offset = regions["start"].to_numpy()[seqlets["example_idx"][:]] + handle.attrs["window_start"]
        starts = sorted(zip(regions["name"].to_numpy()[seqlets["example_idx"][:]], offset + seqlets["start"][:]))
        assert handle.attrs["window_size"] == 200
    ours = table[table["motif"] == "GATA1.pos.0"]
    assert starts == sorted(zip(ours["region"], ours["window_start"]))


def test_modisco_coordinates_hold_when_a_task_is_discovered_off_centre(run, tmp_path):
    # Columns of no contribution on one side only (no site near that edge) make the discovery window off-centre;
    # Fi-NeMo centres the window it reads (L // 2 - W // 2), and found none of the seqlets there.
    from genomatt.motifs.store import centred_window

    _, contrib, _ = run
    shifted = tmp_path / "c.h5"
    shifted.write_bytes(contrib.read_bytes())
    with h5py.File(shifted, "a") as handle:
        for name in ("hypothetical", "contrib"):
            if name in handle:
                handle[name][:, :, :, :24] = 0
    out = tmp_path / "out" / "motifs.h5"
    assert main(["motifs", "--contrib", str(shifted), "--out", str(out), "--threads", "2", "--seed", "3"]) == 0
    regions = read_regions(shifted)
    _, table, _ = read_motifs(out)
    with h5py.File(out.parent / "modisco" / "GATA1.h5", "r") as handle:
        size, start = int(handle.attrs["window_size"]), int(handle.attrs["window_start"])
        seqlets = handle["pos_patterns/pattern_0/seqlets"]
        offset = regions["start"].to_numpy()[seqlets["example_idx"][:]] + start
        starts = sorted(zip(regions["name"].to_numpy()[seqlets["example_idx"][:]], offset + seqlets["start"][:]))
    assert start == 200 // 2 - size // 2 and start <= 24 and size >= 200 - 24
    assert starts == sorted(zip(table.loc[table["motif"] == "GATA1.pos.0", "region"],
                                table.loc[table["motif"] == "GATA1.pos.0", "window_start"]))
    assert centred_window(10, 180, 200) == (10, 180) and centred_window(24, 176, 200) == (1, 199)
    assert centred_window(19, 281, 300) == (1, 299)


def test_task_regions_restrict_each_tasks_discovery(run, tmp_path, caplog):
    """Each task's motifs come from its own regions; modisco example indices stay rows of contrib.h5."""
    _, contrib, _ = run
    regions = read_regions(contrib)
    gata_rows = np.arange(0, len(regions), 2)
    labelled = pd.concat([regions.iloc[gata_rows].assign(task="GATA1"), regions.assign(task="CTCF"),
                          pd.DataFrame({"chrom": ["chrZ"], "start": [0], "end": [100], "task": ["noise"]}),
                          regions.iloc[:3].assign(task="unused")])
    bed = tmp_path / "tasks.bed"
    labelled[["chrom", "start", "end", "task"]].to_csv(bed, sep="\t", header=False, index=False)
    out = tmp_path / "out" / "motifs.h5"
    with caplog.at_level(logging.INFO, logger="genomatt"):
        assert main(["motifs", "--contrib", str(contrib), "--out", str(out), "--threads", "2", "--seed", "3",
                     "--task-regions", str(bed), "--labels-column", "name"]) == 0
    assert "task noise: no region of the contributions lies in the task's regions" in caplog.text
    assert "cannot be fitted" not in caplog.text
    motifs, table, called = read_motifs(out)
    assert {"GATA1.pos.0", "CTCF.pos.0"} <= {motif.name for motif in motifs}
    gata_regions = set(regions["name"].iloc[gata_rows])
    assert set(table.loc[table["task"] == "GATA1", "region"]) <= gata_regions
    assert set(called.loc[called["task"] == "GATA1", "region"]) <= gata_regions
    with h5py.File(out.parent / "modisco" / "GATA1.h5", "r") as handle:
        examples = handle["pos_patterns/pattern_0/seqlets/example_idx"][:]
    assert set(regions["name"].to_numpy()[examples]) <= gata_regions
    assert set(np.unique(examples)) <= set(gata_rows)
    # How many regions each task searched, for the report to tell a task not searched from one without a motif.
    assert read_attrs(out)["provenance"]["regions_searched"] == {"GATA1": len(gata_rows), "CTCF": len(regions),
                                                                 "noise": 0}


def test_task_regions_must_name_every_task(run, tmp_path, capsys):
    _, contrib, _ = run
    regions = read_regions(contrib)
    bed = tmp_path / "GATA1.bed"
    regions[["chrom", "start", "end"]].to_csv(bed, sep="\t", header=False, index=False)
    out = tmp_path / "m.h5"
    assert main(["motifs", "--contrib", str(contrib), "--out", str(out), "--task-regions", str(bed)]) == 2
    assert "no task regions for tasks ['CTCF', 'noise']" in capsys.readouterr().err and not out.exists()


def test_no_motifs_gives_empty_valid_outputs(tmp_path, small_genome, caplog):
    contrib = write_planted_contributions(small_genome, tmp_path / "c.h5", {"quiet": {}})
    out = tmp_path / "out" / "motifs.h5"
    with caplog.at_level(logging.INFO, logger="genomatt"):
        assert main(["motifs", "--contrib", str(contrib), "--out", str(out), "--window", "500"]) == 0
    assert "no motifs were found in any task" in caplog.text and "using the whole regions" in caplog.text
    motifs, seqlets, _ = read_motifs(out)
    assert motifs == [] and seqlets.empty
    assert (out.parent / "seqlets.bed").read_text() == "#chrom\tstart\tend\tname\tscore\tstrand\tcontribution\n"
    assert pd.read_csv(out.parent / "matches.tsv", sep="\t").empty
    with h5py.File(out.parent / "modisco" / "quiet.h5", "r") as handle:
        assert "pos_patterns" not in handle and handle.attrs["window_size"] == 200


def test_invalid_contributions_exit_with_a_message(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    assert main(["motifs", "--contrib", str(bad), "--out", str(tmp_path / "m.h5")]) == 2
    assert f"{bad}: not a readable HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "m.h5").exists()


def test_a_task_name_unfit_for_motif_ids_is_refused_before_discovery(tmp_path, small_genome, capsys):
    contrib = write_planted_contributions(small_genome, tmp_path / "c.h5", {"C/EBP beta": {"GATA1": 0.5}})
    assert main(["motifs", "--contrib", str(contrib), "--out", str(tmp_path / "out" / "m.h5")]) == 2
    error = capsys.readouterr().err
    assert f"{contrib} (its tasks): task names ['C/EBP beta'] hold whitespace" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_every_planted_motif_of_the_default_genome_is_discovered_and_matched(tmp_path):
    """Acceptance on planted contributions: each of the five default motifs drives its own task, and the
    best match of its task's first motif is its JASPAR matrix or one of the same TF family."""
    from pyjaspar import jaspardb

    from genomatt.simulate import SimulationSettings, simulate_genome, task_name

    database = jaspardb(release=DEFAULT_RELEASE)

    genome = simulate_genome(tmp_path, SimulationSettings(n_positive_regions=1000, n_negative_regions=0))
    planted = read_meme(genome.motifs_meme)
    tasks = {task_name(motif): {motif.name: 0.5} for motif in planted}
    contrib = write_planted_contributions(genome, tmp_path / "contrib.h5", tasks)
    out = tmp_path / "out" / "motifs.h5"
    # Every taxon: the default GATA1 matrix (MA2388) is JASPAR's plant one.
    assert main(["motifs", "--contrib", str(contrib), "--out", str(out), "--threads", "2",
                 "--jaspar-tax-group", "all"]) == 0
    motifs, seqlets, _ = read_motifs(out)
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    for motif in planted:
        best = [m for m in motifs if m.task == task_name(motif) and m.sign == "pos"][0]
        match = best.matches[0]
        family = set(database.fetch_motif_by_id(motif.id).tf_family)
        assert match["id"] == motif.id or family & set(database.fetch_motif_by_id(match["id"]).tf_family)
        assert match["q"] < 0.05
        own = seqlets[seqlets["motif"] == best.name]
        assert overlap_fraction(own, truth[truth["motif_id"] == motif.id]) >= 0.8


def test_bad_database_fails_before_discovery(tmp_path, small_genome, capsys):
    contrib = write_planted_contributions(small_genome, tmp_path / "c.h5", {"GATA1": {"GATA1": 0.5}})
    args = ["motifs", "--contrib", str(contrib), "--out", str(tmp_path / "out" / "m.h5")]
    assert main(args + ["--meme", str(tmp_path / "missing.meme")]) == 2
    assert "missing.meme: motif file not found" in capsys.readouterr().err
    assert main(args + ["--jaspar-release", "JASPAR1999"]) == 2
    assert "unknown JASPAR release" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        main(args + ["--threads", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_other_tasks_motifs_are_not_reported_as_a_tasks_own(tmp_path, caplog):
    # Task GATA1 responds to CTCF sites at 0.4 of task CTCF's response, as a multi-task model's task does to
    # the sites driving its other tasks: the CTCF pattern found in task GATA1 is task CTCF's motif.
    from motif_contributions import TWO_MOTIF_SETTINGS

    from genomatt.simulate import simulate_genome

    genome = simulate_genome(tmp_path, TWO_MOTIF_SETTINGS)
    contrib = write_planted_contributions(genome, tmp_path / "contrib.h5",
                                          {"GATA1": {"GATA1": 0.5, "CTCF": 0.2}, "CTCF": {"CTCF": 0.5}})
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    ctcf_sites = truth[truth["motif_name"] == "CTCF"]
    gata_sites = truth[truth["motif_name"] == "GATA1"]

    def discovered(purity: str):
        out = tmp_path / purity / "motifs.h5"
        assert main(["motifs", "--contrib", str(contrib), "--out", str(out), "--seed", "3", "--min-strength", "0",
                     "--min-purity", purity]) == 0
        motifs, seqlets, _ = read_motifs(out)
        return {motif.name: motif.task for motif in motifs}, seqlets

    def on(sites, seqlets, name):
        return overlap_fraction(seqlets[seqlets["motif"] == name], sites) > 0.5

    every, every_seqlets = discovered("0")
    assert any(task == "GATA1" and on(ctcf_sites, every_seqlets, name) for name, task in every.items())
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.purity"):
        pure, seqlets = discovered("0.5")
    assert not any(task == "GATA1" and on(ctcf_sites, seqlets, name) for name, task in pure.items())
    assert on(gata_sites, seqlets, "GATA1.pos.0") and on(ctcf_sites, seqlets, "CTCF.pos.0")
    assert "dropped as a motif of task CTCF" in caplog.text
    # Motifs are numbered without gaps and their seqlets carry the new names.
    assert set(seqlets["motif"]) == set(pure)
    with h5py.File(tmp_path / "0.5" / "modisco" / "GATA1.h5") as handle:
        assert len(handle["pos_patterns"]) == sum(name.startswith("GATA1.pos.") for name in pure)
