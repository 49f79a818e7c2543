import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from bed_checks import assert_valid_bed
from synthetic import planted_motifs_h5, synthetic_contributions

from genomatt.cli.attribute import export_interop
from genomatt.cli.main import main
from genomatt.contributions import contribution_tasks, write_contributions
from genomatt.errors import MotifError, OutputError, StoreError
from genomatt.motifs.cwm_motifs import logo_heights, read_cwm_motifs, select_motifs
from genomatt.motifs.finemo import modisco_pattern
from genomatt.motifs.formats import CwmMotif, read_meme, reverse_complement_matrix
from genomatt.motifs.hit_calling import (call_hits, contribution_strength, importance_threshold, pwm_log_odds,
                                         sequence_score_threshold)
from genomatt.motifs.hit_parameters import HitParameters
from genomatt.motifs.hits import (
    FINEMO_COLUMNS,
    HIT_COLUMNS,
    call_hits_in_store,
    read_hits,
    write_hits,
)
from genomatt.motifs.trimming import trim_bounds
from genomatt.simulate import task_name
from genomatt.store import read_regions

MAX_DISTANCE = 5


@pytest.fixture(scope="module")
def contrib_h5(small_genome, tmp_path_factory):
    return synthetic_contributions(small_genome, tmp_path_factory.mktemp("contrib") / "contrib.h5")


@pytest.fixture(scope="module")
def motifs_h5(small_genome, tmp_path_factory):
    return planted_motifs_h5(small_genome, tmp_path_factory.mktemp("motifs") / "motifs.h5")


@pytest.fixture(scope="module")
def discovered_calls(contrib_h5, motifs_h5):
    return call_hits_in_store(contrib_h5, read_cwm_motifs(motifs_h5), device="cpu")


def recovery(hits: pd.DataFrame, truth: pd.DataFrame, planted_name: dict[str, str]) -> tuple[float, float]:
    """Precision over hits and recall over planted sites (same motif, centres within 5 bp)."""
    hit_centre = (hits["start"] + hits["end"]).to_numpy() / 2
    site_centre = (truth["start"] + truth["end"]).to_numpy() / 2
    hit_ok = np.zeros(len(hits), bool)
    site_ok = np.zeros(len(truth), bool)
    for index, hit in enumerate(hits.itertuples()):
        close = ((truth["chrom"].to_numpy() == hit.chr)
                 & (truth["motif_name"].to_numpy() == planted_name[hit.motif_name])
                 & (np.abs(site_centre - hit_centre[index]) <= MAX_DISTANCE))
        hit_ok[index] = close.any()
        site_ok |= close
    return hit_ok.mean(), site_ok.mean()


def test_recovers_planted_sites_with_discovered_motifs(discovered_calls, motifs_h5, small_genome):
    planted_motifs = read_meme(small_genome.motifs_meme)
    motifs = read_cwm_motifs(motifs_h5)
    assert [m.task for m in motifs] == [task_name(m) for m in planted_motifs]
    calls = discovered_calls
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    planted = {f"{task_name(m)}.pos.0": m.name for m in planted_motifs}
    precision, recall = recovery(calls.hits, truth, planted)
    assert precision >= 0.95 and recall >= 0.9
    # Each motif is scanned in its own task only.
    assert (calls.hits["task"] + ".pos.0" == calls.hits["motif_name"]).all()
    assert list(calls.hits.columns) == HIT_COLUMNS
    assert (calls.hits["hit_similarity"] >= 0.7).all()
    tasks = [m.task for m in motifs]
    assert set(calls.qc["task"]) == set(tasks) and len(calls.qc) == 160 * len(tasks)


def test_recovers_planted_sites_with_meme_motifs_in_every_task(contrib_h5, small_genome):
    motifs = read_cwm_motifs(small_genome.motifs_meme)
    assert all(motif.task is None for motif in motifs)
    calls = call_hits_in_store(contrib_h5, motifs, device="cpu")
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    precision, recall = recovery(calls.hits, truth, {m.name: m.name for m in motifs})
    assert precision >= 0.95 and recall >= 0.95
    assert calls.hits["task"].nunique() == 5


def test_negatives_have_almost_no_hits(discovered_calls):
    calls = discovered_calls
    negative = calls.hits["peak_name"].str.startswith("background_")
    assert negative.sum() <= 2
    qc = calls.qc.set_index(["name", "task"])
    assert qc.loc[("region_0", "CEBPB"), "explained_fraction"] > 0.8


def _planted_array(strand: str, offset: int = 30, length: int = 80, seed: int = 0):
    """One region with a single instance of a CWM planted on ``strand`` and faint noise elsewhere."""
    rng = np.random.default_rng(seed)
    cwm = np.zeros((4, 8))
    consensus = [0, 2, 2, 3, 1, 0, 3, 2]  # AGGTCATG: not a palindrome
    cwm[consensus, np.arange(8)] = [1.0, 0.8, 1.2, 0.9, 1.1, 0.7, 1.0, 0.9]
    onehot = np.zeros((1, 4, length), np.float32)
    onehot[0, rng.integers(0, 4, length), np.arange(length)] = 1
    site = cwm if strand == "+" else reverse_complement_matrix(cwm)
    onehot[0, :, offset : offset + 8] = (site > 0).astype(np.float32)
    hypothetical = rng.normal(0, 0.01, (1, 4, length)).astype(np.float32)
    hypothetical[0, :, offset : offset + 8] += site
    return cwm, onehot * hypothetical, onehot


@pytest.mark.parametrize(("strand", "offset"), [("+", 30), ("-", 30), ("+", 0), ("-", 72)])
def test_one_site_gives_one_hit_on_its_strand(strand, offset):
    cwm, contrib, onehot = _planted_array(strand, offset)
    contrib = np.repeat(contrib, 40, axis=0)  # enough windows for the permutation null
    onehot = np.repeat(onehot, 40, axis=0)
    # A wider second motif pads the filters, so a site at either region end tests the padding.
    other = CwmMotif("wide", logo_heights(np.full((4, 12), 0.25)) + np.eye(4)[:, np.arange(12) % 4])
    hits, qc, thresholds = call_hits(contrib, onehot, [CwmMotif("m", cwm), other], device="cpu")
    assert len(hits) == 40 and (hits["strand"] == strand).all() and (hits["offset"] == offset).all()
    assert np.allclose(hits["similarity"], 1.0, atol=0.01)
    assert np.isfinite(thresholds["importance_threshold"][0]) and (hits["motif"] == 0).all()
    assert (qc["explained_fraction"] > 0.99).all()


@pytest.mark.parametrize("damage", ["half", "nan", "two bases"])
def test_a_one_hot_that_is_not_one_is_refused(damage):
    cwm, contrib, onehot = _planted_array("+")
    if damage == "half":
        onehot *= 0.5
    elif damage == "nan":
        onehot[0, 0, 33] = np.nan
    else:
        onehot[0, :, 33] = 1
    with pytest.raises(MotifError, match="the one-hot sequences must hold 0 and 1 only, at most one base per position"):
        call_hits(contrib, onehot, [CwmMotif("m", cwm)], device="cpu")


def test_a_motif_that_can_have_no_hit_changes_no_other_motifs_hits():
    # A motif with no candidate passing the FDR (here one of no site) is left out of the pursuit, as most of a
    # JASPAR file's are in any one task; the other motifs' hits are those of a scan without it.
    cwm, contrib, onehot = _planted_array("+")
    contrib, onehot = np.repeat(contrib, 20, axis=0), np.repeat(onehot, 20, axis=0)
    absent = np.zeros((4, 12))
    absent[[2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 1, 1], np.arange(12)] = 1.0  # GGCCGGCCGGCC: nowhere in these regions
    alone, qc_alone, _ = call_hits(contrib, onehot, [CwmMotif("m", cwm)], device="cpu")
    both, qc_both, thresholds = call_hits(contrib, onehot, [CwmMotif("absent", absent), CwmMotif("m", cwm)],
                                          device="cpu")
    assert np.isinf(thresholds["importance_threshold"][0]) and len(alone) == 20
    pd.testing.assert_frame_equal(both, alone.assign(motif=1))
    pd.testing.assert_frame_equal(qc_both, qc_alone)


@pytest.mark.parametrize("batch_size", [0, 2.5, None, True])
def test_a_batch_size_that_is_no_count_is_refused(batch_size):
    cwm, contrib, onehot = _planted_array("+")
    with pytest.raises(MotifError, match=r"batch_size must be an integer >= 1, got"):
        call_hits(contrib, onehot, [CwmMotif("m", cwm)], batch_size=batch_size, device="cpu")


def test_hypothetical_contributions_are_projected_with_a_warning(caplog):
    cwm, contrib, onehot = _planted_array("+")
    contrib, onehot = np.repeat(contrib, 20, axis=0), np.repeat(onehot, 20, axis=0)
    hypothetical = contrib + (1 - onehot) * np.random.default_rng(1).normal(0, 0.3, contrib.shape).astype(np.float32)
    projected, _, _ = call_hits(contrib, onehot, [CwmMotif("m", cwm)], device="cpu")
    with caplog.at_level("WARNING", logger="genomatt"):
        given, _, _ = call_hits(hypothetical, onehot, [CwmMotif("m", cwm)], device="cpu")
    pd.testing.assert_frame_equal(given, projected)
    assert len(projected) == 20
    assert [record.getMessage().split(":")[1] for record in caplog.records] == [
        " hypothetical contributions? Hits are called in their projection on the sequences (contributions x one-hot)"]


def test_overlapping_strand_copies_of_a_palindrome_give_one_hit():
    cwm = np.zeros((4, 6))
    cwm[[1, 0, 2, 1, 3, 2], np.arange(6)] = 1.0  # CAGCTG, its own reverse complement
    length = 60
    onehot = np.zeros((30, 4, length), np.float32)
    rng = np.random.default_rng(3)
    onehot[:, rng.integers(0, 4, length), np.arange(length)] = 1
    onehot[:, :, 20:26] = cwm
    contrib = onehot * (cwm.sum(axis=0).max() * np.pad(cwm, ((0, 0), (20, length - 26)))[None]
                        + rng.normal(0, 0.01, (30, 4, length))).astype(np.float32)
    hits, _, _ = call_hits(contrib, onehot, [CwmMotif("ebox", cwm)], device="cpu")
    assert len(hits) == 30 and (hits["offset"] == 20).all()


def test_min_strength_drops_a_faint_copy_beside_strong_sites():
    # A faint exact copy (5% of the strong sites' contribution) is motif-shaped, so the plain cosine takes it;
    # at less than a fifth of the task's typical site it is no hit.
    cwm, contrib, onehot = _planted_array("+", 10)
    onehot[0, :, 50:58] = (cwm > 0).astype(np.float32)
    contrib[0, :, 50:58] = 0.05 * cwm
    contrib, onehot = np.repeat(contrib, 40, axis=0), np.repeat(onehot, 40, axis=0)
    plain, _, _ = call_hits(contrib, onehot, [CwmMotif("m", cwm)], HitParameters(energy_floor=0.0, min_strength=0.0),
                            device="cpu")
    strong, _, thresholds = call_hits(contrib, onehot, [CwmMotif("m", cwm, task="t")], device="cpu")
    assert sorted(plain["offset"].unique()) == [10, 50] and len(plain) == 80
    assert set(strong["offset"]) == {10} and len(strong) == 40
    assert thresholds["min_coefficient"][0] == pytest.approx(0.2 * thresholds["strength"][0])
    # A motif of no task (a MEME file's) takes the reference of the contributions: the same here.
    taskless, _, thresholds = call_hits(contrib, onehot, [CwmMotif("m", cwm)], device="cpu")
    pd.testing.assert_frame_equal(taskless, strong)
    assert thresholds["min_coefficient"][0] == pytest.approx(0.2 * contribution_strength(contrib, [8])[0])
    for option, value in (("energy_floor", -1.0), ("min_strength", 1.0)):
        with pytest.raises(MotifError, match=option):
            call_hits(contrib, onehot, [CwmMotif("m", cwm)], HitParameters(**{option: value}), device="cpu")


def test_motif_shaped_contribution_on_a_poor_sequence_match_is_no_hit():
    # The model's contribution lies on the motif's four outer bases; its four inner bases are as conserved in
    # the sequences (the PWM) but carry little contribution. At 10 every region has the motif; at 50 the outer
    # bases match and the inner four do not: the contributions there still look like the CWM (cosine 0.94), as
    # a model's response to a partial match does, but the sequence is no instance of the motif.
    consensus = np.array([0, 2, 2, 3, 1, 0, 3, 2])
    cwm = np.zeros((4, 8))
    cwm[consensus, np.arange(8)] = [1.0, 1.0, 0.35, 0.35, 0.35, 0.35, 1.0, 1.0]
    pwm = np.full((4, 8), 0.02)
    pwm[consensus, np.arange(8)] = 0.94
    rng = np.random.default_rng(5)
    n, length = 40, 80
    onehot = np.zeros((n, 4, length), np.float32)
    onehot[:, rng.integers(0, 4, length), np.arange(length)] = 1
    onehot[:, :, 10:18] = np.eye(4)[:, consensus]
    partial = consensus.copy()
    partial[2:6] = (consensus[2:6] + 1) % 4
    onehot[:, :, 50:58] = np.eye(4)[:, partial]
    hypothetical = rng.normal(0, 0.01, (n, 4, length)) + np.pad(cwm, ((0, 0), (10, length - 18)))
    hypothetical[:, :, 50:58] += cwm
    contrib = (onehot * hypothetical).astype(np.float32)
    motif = CwmMotif("m", cwm, pwm=pwm)
    unchecked, _, _ = call_hits(contrib, onehot, [motif], HitParameters(min_sequence_quantile=0.0), device="cpu")
    checked, _, thresholds = call_hits(contrib, onehot, [motif], device="cpu")
    assert sorted(unchecked["offset"].unique()) == [10, 50] and len(unchecked) == 2 * n
    assert set(checked["offset"]) == {10} and len(checked) == n
    assert thresholds["min_sequence_score"][0] == pytest.approx(
        sequence_score_threshold(pwm, HitParameters().min_sequence_quantile))
    # A motif without a PWM (a CWM alone) is not checked.
    no_pwm, _, no_pwm_thresholds = call_hits(contrib, onehot, [CwmMotif("m", cwm)], device="cpu")
    assert sorted(no_pwm["offset"].unique()) == [10, 50] and no_pwm_thresholds["min_sequence_score"][0] == -np.inf


def test_the_sequence_threshold_is_the_quantile_of_the_pwms_own_sequences():
    rng = np.random.default_rng(0)
    pwm = rng.dirichlet(np.full(4, 0.5), size=10).T
    log_odds = pwm_log_odds(pwm)
    draws = np.stack([rng.choice(4, size=40_000, p=pwm[:, column]) for column in range(10)], axis=1)
    scores = log_odds[draws, np.arange(10)].sum(axis=1)
    for quantile in (0.01, 0.05, 0.2):
        threshold = sequence_score_threshold(pwm, quantile)
        assert (scores < threshold).mean() <= quantile <= (scores <= threshold + 0.1).mean() + 0.005
    assert sequence_score_threshold(pwm, 0.0) == -np.inf
    # A deterministic core: its own sequence passes, one mismatch does not.
    exact = np.eye(4)[:, [0, 1, 2, 3]]
    threshold = sequence_score_threshold(exact, 0.02)
    assert pwm_log_odds(exact)[[0, 1, 2, 3], np.arange(4)].sum() >= threshold
    assert pwm_log_odds(exact)[[1, 1, 2, 3], np.arange(4)].sum() < threshold


def test_task_rows_restrict_the_regions_scanned(contrib_h5, motifs_h5):
    regions = read_regions(contrib_h5)
    tasks = contribution_tasks(contrib_h5)
    rows = {task: np.arange(index, len(regions), 3) for index, task in enumerate(tasks)}
    calls = call_hits_in_store(contrib_h5, read_cwm_motifs(motifs_h5), device="cpu", task_rows=rows)
    assert len(calls.hits)
    for task, group in calls.hits.groupby("task"):
        assert set(group["peak_id"]) <= set(rows[task])
        assert (regions["name"].to_numpy()[group["peak_id"]] == group["peak_name"]).all()
    assert len(calls.qc) == sum(len(r) for r in rows.values())
    for task, group in calls.qc.groupby("task"):
        assert (group["peak_id"].to_numpy() == rows[task]).all()
        assert (regions["name"].to_numpy()[rows[task]] == group["name"].to_numpy()).all()


def test_the_scan_is_counted_in_the_log(contrib_h5, motifs_h5, caplog):
    # A task scanned against a large motif set takes minutes: the log counts its region scans (two per
    # region of each task, thresholds then hits) and ends at the total.
    regions = read_regions(contrib_h5)
    tasks = contribution_tasks(contrib_h5)
    rows = {task: np.arange(index, len(regions), 2) for index, task in enumerate(tasks)}
    with caplog.at_level("INFO", logger="genomatt"):
        call_hits_in_store(contrib_h5, read_cwm_motifs(motifs_h5), device="cpu", task_rows=rows, batch_size=7,
                           progress=False)
    total = 2 * sum(len(r) for r in rows.values())
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("hits: ")]
    assert lines and lines[-1].startswith(f"hits: {total}/{total} region scans (100%)")


def test_no_signal_gives_no_hits():
    rng = np.random.default_rng(1)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (50, 100))].transpose(0, 2, 1)
    contrib = onehot * rng.normal(0, 0.05, (50, 4, 100)).astype(np.float32)
    motif = CwmMotif("m", logo_heights(np.full((4, 8), 0.1) + np.eye(4)[:, [0, 1, 2, 3, 0, 1, 2, 3]] * 0.6))
    hits, qc, thresholds = call_hits(contrib, onehot, [motif], device="cpu")
    assert len(hits) <= 1
    assert (qc["n_hits"] == np.bincount(hits["region"], minlength=50)).all()


def test_an_unreachable_fdr_is_named_in_a_warning(contrib_h5, motifs_h5, caplog):
    # The null count is incremented by one, so an FDR below 1 / (candidates) cannot be kept: no hits, and
    # the log says which motifs and what to change rather than leaving an empty table to explain itself.
    motifs = read_cwm_motifs(motifs_h5)
    with caplog.at_level("WARNING", logger="genomatt"):
        calls = call_hits_in_store(contrib_h5, motifs, HitParameters(fdr=1e-6), device="cpu")
    assert calls.hits.empty
    warned = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warned) == len(contribution_tasks(contrib_h5))
    assert all("false discovery rate at 1e-06" in message and "hits.fdr" in message for message in warned)
    assert {motif.name for motif in motifs} <= {name for message in warned for name in motifs_named(message)}
    caplog.clear()
    with caplog.at_level("WARNING", logger="genomatt"):
        assert len(call_hits_in_store(contrib_h5, motifs, device="cpu").hits)
    assert not [record for record in caplog.records if "false discovery rate" in record.getMessage()]


def motifs_named(message: str) -> list[str]:
    """The motif names a warning of an unreachable FDR lists (between "no hit of " and ":")."""
    return message.split("no hit of ", 1)[1].split(": ", 1)[0].split(", ")


def test_no_motifs_gives_empty_tables(contrib_h5, tmp_path):
    calls = call_hits_in_store(contrib_h5, [], device="cpu")
    assert calls.hits.empty and list(calls.hits.columns) == HIT_COLUMNS
    paths = write_hits(calls, tmp_path)
    assert paths["tsv"].read_text().splitlines() == ["\t".join(FINEMO_COLUMNS)]
    assert paths["bed"].read_text() == ""
    assert read_hits(paths["h5"]).hits.empty


def test_written_outputs_follow_finemo_columns_and_round_trip(discovered_calls, tmp_path):
    calls = discovered_calls
    paths = write_hits(calls, tmp_path, {"command": "test"})
    table = pd.read_csv(paths["tsv"], sep="\t")
    assert list(table.columns) == FINEMO_COLUMNS
    assert len(table) == len(calls.hits) > 0
    assert (table["end"] - table["start"] > 0).all()
    assert (table["start"] >= table["start_untrimmed"]).all() and (table["end"] <= table["end_untrimmed"]).all()
    assert_valid_bed(paths["bed"])
    bed = pd.read_csv(paths["bed"], sep="\t", header=None)
    assert bed.shape[1] == 6 and bed[4].between(700, 1000).all()
    back = read_hits(paths["h5"])
    pd.testing.assert_frame_equal(back.hits, calls.hits, check_dtype=False)
    assert set(back.cwms) == {m for m in calls.cwms}
    assert back.settings["fdr"] == 0.05 and back.contributions == calls.contributions == "contrib"
    qc = pd.read_csv(paths["qc"], sep="\t")
    assert len(qc) == len(calls.qc) and qc["n_hits"].sum() == len(table)
    # Fi-NeMo's report matches each motif's seqlets in modisco/<task>.h5 by its tfmodisco-lite pattern.
    motif_data = pd.read_csv(tmp_path / "motif_data.tsv", sep="\t")
    assert set(motif_data["motif_name"]) == set(calls.cwms)
    for name, pattern in zip(motif_data["motif_name"], motif_data["motif_name_orig"]):
        sign, index = name.rsplit(".", 2)[1:]
        assert pattern == f"{sign}_patterns.pattern_{index}"
    assert modisco_pattern("CTCF_MA0139.2", ["GATA1", "CTCF"]) == "CTCF_MA0139.2"


def test_trim_and_threshold_helpers():
    cwm = np.zeros((4, 10))
    cwm[0, 2:7] = [0.2, 1.0, 0.9, 0.5, 0.1]
    assert trim_bounds(cwm, 0.3) == (3, 6)
    assert importance_threshold(np.array([5.0, 4.0, 0.1]), np.array([0.2]), 0.5) == 4.0
    assert importance_threshold(np.array([0.2]), np.array([0.3, 0.4]), 0.05) == float("inf")


def test_invalid_inputs_raise_clear_errors(tmp_path, contrib_h5, small_genome):
    motif = CwmMotif("m", np.ones((4, 5)))
    with pytest.raises(MotifError, match=r"contributions must be \(N, 4, L\)"):
        call_hits(np.zeros((2, 3, 10)), np.zeros((2, 3, 10)), [motif])
    with pytest.raises(MotifError, match="min_similarity"):
        call_hits(np.zeros((2, 4, 10)), np.zeros((2, 4, 10)), [motif], HitParameters(min_similarity=1.5))
    with pytest.raises(MotifError, match="wider"):
        call_hits(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), [motif])
    with pytest.raises(MotifError, match="NaN"):
        call_hits(np.full((2, 4, 10), np.nan), np.zeros((2, 4, 10)), [motif])
    with pytest.raises(MotifError, match="not found"):
        read_cwm_motifs(tmp_path / "none.meme")
    with pytest.raises(MotifError, match="absent"):
        call_hits_in_store(contrib_h5, [CwmMotif("x", np.ones((4, 5)), task="nope")])
    with pytest.raises(StoreError, match="not in the file"):
        call_hits_in_store(contrib_h5, [motif], tasks=["nope"])
    regions_only = tmp_path / "regions.h5"
    assert main(["extract", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
                 "--width", "50", "--out", str(regions_only)]) == 0
    with pytest.raises(StoreError, match="expected 'contributions'"):
        call_hits_in_store(regions_only, [motif])
    with h5py.File(tmp_path / "bad.h5", "w") as handle:
        handle.create_group("motifs")
    with pytest.raises(StoreError, match="not a motifs file"):
        read_cwm_motifs(tmp_path / "bad.h5")


def test_hits_command(contrib_h5, motifs_h5, small_genome, tmp_path, capsys):
    out = tmp_path / "hits"
    assert main(["hits", "--contrib", str(contrib_h5), "--motifs", str(motifs_h5), "--out-dir", str(out),
                 "--fasta", str(small_genome.fasta), "--tasks", "GATA1", "--device", "cpu"]) == 0
    assert {p.name for p in out.iterdir()} == {
        "hits.tsv", "hits_genomatt.tsv", "hits.bed", "hits.h5", "regions_qc.tsv", "contrib.GATA1.bw",
        "motif_data.tsv", "motif_cwms.npy", "parameters.json"}
    assert set(pd.read_csv(out / "hits_genomatt.tsv", sep="\t")["task"]) == {"GATA1"}
    assert main(["hits", "--contrib", str(contrib_h5), "--motifs", str(motifs_h5), "--out-dir", str(out),
                 "--fdr", "2"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "genomatt hits: error: --fdr must be in (0, 1), got 2.0"


def test_hits_command_with_task_regions(contrib_h5, motifs_h5, small_genome, tmp_path):
    out = tmp_path / "hits"
    assert main(["hits", "--contrib", str(contrib_h5), "--motifs", str(motifs_h5), "--out-dir", str(out),
                 "--task-regions", str(small_genome.tasks_bed), "--labels-column", "name", "--tasks", "CTCF",
                 "--device", "cpu"]) == 0
    hits = pd.read_csv(out / "hits.tsv", sep="\t")
    tasks = pd.read_csv(small_genome.tasks_bed, sep="\t", header=None, names=["chrom", "start", "end", "task"])
    ctcf = tasks[tasks["task"] == "CTCF"]
    regions = read_regions(contrib_h5).merge(ctcf, on=["chrom", "start", "end"])
    tasks_of_hits = set(pd.read_csv(out / "hits_genomatt.tsv", sep="\t")["task"])
    assert len(hits) and tasks_of_hits == {"CTCF"} and set(hits["peak_name"]) <= set(regions["name"])
    qc = pd.read_csv(out / "regions_qc.tsv", sep="\t")
    assert set(qc["name"]) == set(regions["name"])


def _one_motif_regions(n: int, length: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))].transpose(0, 2, 1).copy()
    hypothetical = rng.laplace(0, 0.02, (n, 4, length)).astype(np.float32)
    return rng, onehot, hypothetical


def _plant(onehot, hypothetical, row, at, matrix, strength):
    onehot[row, :, at : at + matrix.shape[1]] = (matrix == matrix.max(axis=0)).astype(np.float32)
    hypothetical[row, :, at : at + matrix.shape[1]] += strength * matrix


def test_hits_do_not_depend_on_region_width():
    # Each 1 kb region holds, in its central 200 bp, a strong site and a faint motif-shaped response (4% of
    # the strong sites, as weak off-target responses of a model). Cutting the central 200 bp must not change
    # the hits: the thresholds come from the sites and the background per position, not the region's mean.
    cwm = np.zeros((4, 10))
    cwm[[0, 2, 3, 0, 3, 1, 0, 2, 2, 3], np.arange(10)] = [0.4, 0.8, 1.2, 1.0, 1.1, 0.9, 0.7, 0.5, 0.4, 0.3]
    rng, onehot, hypothetical = _one_motif_regions(60, 1000)
    for row in range(60):
        for at, strength in ((420 + row % 20, rng.uniform(0.5, 1.0)), (520 + row % 30, 0.04)):
            site = cwm if (row + at) % 2 else reverse_complement_matrix(cwm)
            _plant(onehot, hypothetical, row, at, site, strength)
    contrib = onehot * hypothetical
    motif = [CwmMotif("m", cwm)]
    wide, _, _ = call_hits(contrib, onehot, motif, device="cpu")
    narrow, _, _ = call_hits(contrib[:, :, 400:600], onehot[:, :, 400:600], motif, device="cpu")
    assert len(narrow) == 60 and (narrow["offset"] < 450).all()
    assert list(zip(wide["region"], wide["offset"] - 400, wide["strand"])) == list(
        zip(narrow["region"], narrow["offset"], narrow["strand"]))


def test_a_site_with_a_palindromic_core_gives_one_hit():
    # AAGATCTT: the core GATC is its own reverse complement but, as in any discovered CWM, its two strands'
    # weights differ, so the fit of one strand leaves a residual that the other strand matches.
    cwm = np.zeros((4, 8))
    bases = [0, 0, 2, 0, 3, 1, 3, 3]
    cwm[bases, np.arange(8)] = [0.15, 0.2, 1.0, 0.3, 1.0, 0.3, 0.2, 0.15]
    rng, onehot, hypothetical = _one_motif_regions(200, 100, seed=5)
    onehot[:, :, 40:48] = np.eye(4)[:, bases]
    site = onehot[:, :, 40:48] * np.array([0.2, 0.2, 1, 1, 1, 1, 0.2, 0.2])
    hypothetical[:, :, 40:48] += site * rng.uniform(0.2, 1.3, (200, 1, 1))
    hits, qc, _ = call_hits(onehot * hypothetical, onehot, [CwmMotif("gatc", cwm)], device="cpu")
    assert len(hits) >= 150 and hits["region"].is_unique
    assert (hits["offset"] == 40).all() and (hits["width"] == 8).all()
    # The site's contribution is counted once.
    site_sum = (onehot * hypothetical)[hits["region"], :, 40:48].sum(axis=(1, 2))
    assert np.allclose(hits["contribution"], site_sum, rtol=1e-4)


@pytest.mark.parametrize("strand", ["+", "-"])
def test_a_long_motif_hit_spans_its_whole_site(strand):
    # A 33 bp motif whose strongest 12 bp (the scanned core) lie 7.5 bp off its centre, as CTCF with its
    # upstream module: the hit spans the motif as discovered, so it is centred on the site.
    rng = np.random.default_rng(2)
    bases = rng.integers(0, 4, 33)
    weights = np.full(33, 0.25)
    weights[3:15] = 1.0
    cwm = np.zeros((4, 33))
    cwm[bases, np.arange(33)] = weights
    rng, onehot, hypothetical = _one_motif_regions(60, 200, seed=3)
    site = cwm if strand == "+" else reverse_complement_matrix(cwm)
    for row in range(60):
        _plant(onehot, hypothetical, row, 80 + row % 5, site, rng.uniform(0.6, 1.0))
    hits, _, _ = call_hits(onehot * hypothetical, onehot, [CwmMotif("ctcf", cwm)], device="cpu")
    assert len(hits) == 60 and (hits["strand"] == strand).all()
    assert (hits["offset"] == 80 + hits["region"] % 5).all() and (hits["width"] == 33).all()


def test_select_motifs_by_name_and_size():
    counts = (("GATA1.pos.0", 300), ("GATA1.pos.1", 20), ("CTCF.pos.0", 200))
    motifs = [CwmMotif(name, np.ones((4, 5)), "t", n) for name, n in counts] + [CwmMotif("MA0139.2", np.ones((4, 5)))]
    names = lambda chosen: [m.name for m in chosen]  # noqa: E731
    assert names(select_motifs(motifs)) == [m.name for m in motifs]
    assert names(select_motifs(motifs, include=["GATA1.*"])) == ["GATA1.pos.0", "GATA1.pos.1"]
    assert names(select_motifs(motifs, exclude=["*.pos.1", "MA*"])) == ["GATA1.pos.0", "CTCF.pos.0"]
    assert names(select_motifs(motifs, min_seqlets=100)) == ["GATA1.pos.0", "CTCF.pos.0", "MA0139.2"]
    with pytest.raises(MotifError, match=r"--include patterns \['GATA2\*'\] match no motif"):
        select_motifs(motifs, include=["GATA2*"])


def test_hits_command_includes_and_excludes_motifs(contrib_h5, motifs_h5, tmp_path, capsys):
    out = tmp_path / "hits"
    assert main(["hits", "--contrib", str(contrib_h5), "--motifs", str(motifs_h5), "--out-dir", str(out),
                 "--exclude", "GATA1.*", "CTCF.*", "--min-strength", "0.3", "--device", "cpu"]) == 0
    hits = pd.read_csv(out / "hits.tsv", sep="\t")
    assert len(hits) and not hits["motif_name"].str.match("GATA1|CTCF").any()
    assert read_hits(out / "hits.h5").settings["min_strength"] == 0.3
    assert main(["hits", "--contrib", str(contrib_h5), "--motifs", str(motifs_h5), "--out-dir", str(out),
                 "--include", "nope"]) == 2
    assert "match no motif" in capsys.readouterr().err


def _two_motifs() -> tuple[np.ndarray, np.ndarray]:
    """Two CWMs of 10 bp, "m" and "other", of different sequences."""
    cwm = np.zeros((4, 10))
    cwm[[0, 2, 3, 0, 3, 1, 0, 2, 2, 3], np.arange(10)] = [0.4, 0.8, 1.2, 1.0, 1.1, 0.9, 0.7, 0.5, 0.4, 0.3]
    other = np.zeros((4, 10))
    other[[1, 1, 3, 2, 2, 0, 1, 3, 3, 1], np.arange(10)] = 1.0
    return cwm, other


def _two_task_store(path, onehot: np.ndarray, hypothetical: np.ndarray, tasks: list[str]):
    """A contrib.h5 of regions of 200 bp, 1 kb apart on chr1, with these arrays and task names."""
    from genomatt.store import write_store

    n = len(onehot)
    regions = pd.DataFrame({"chrom": "chr1", "start": np.arange(n) * 1000, "end": np.arange(n) * 1000 + 200,
                            "name": [f"r{row}" for row in range(n)]})
    return write_store(path, regions,
                       {"onehot": onehot, "hypothetical": hypothetical, "contrib": onehot[:, None] * hypothetical},
                       kind="contributions", provenance={"command": "test"}, attrs={"tasks": tasks})


def _site_and_echo_store(path, echo: float = 0.25, own: float = 1.0) -> tuple[Path, np.ndarray, np.ndarray]:
    """Task "a" driven by the sites of motif "m"; task "b" responding to them at ``echo`` of that and driven by
    its own sites, of motif "other", at ``own`` of a's strength: 80 regions, one site of each."""
    cwm, other = _two_motifs()
    rng, onehot, noise_a = _one_motif_regions(80, 200, seed=4)
    noise_b = rng.laplace(0, 0.02, noise_a.shape).astype(np.float32)
    hypothetical = np.stack([noise_a, noise_b], axis=1)  # (N, 2, 4, L)
    for row in range(80):
        strength = rng.uniform(0.6, 1.0)
        _plant(onehot, hypothetical[:, 0], row, 50, cwm, strength)
        hypothetical[row, 1, :, 50:60] += echo * strength * cwm
        _plant(onehot, hypothetical[:, 1], row, 130, other, own * rng.uniform(0.6, 1.0))
    return _two_task_store(path, onehot, hypothetical, ["a", "b"]), cwm, other


def test_a_site_driving_another_task_is_no_hit_of_the_task(tmp_path):
    # Scanned in both tasks (as a MEME motif is), each site is a hit of task "a" only.
    path, cwm, other = _site_and_echo_store(tmp_path / "contrib.h5")
    motifs = [CwmMotif("m", cwm), CwmMotif("other", other)]
    every = call_hits_in_store(path, motifs, HitParameters(min_task_share=0.0), device="cpu").hits
    assert set(every.loc[every["motif_name"] == "m", "task"]) == {"a", "b"}
    calls = call_hits_in_store(path, motifs, device="cpu")
    by_motif = calls.hits.groupby("motif_name")["task"].agg(set).to_dict()
    assert by_motif == {"m": {"a"}, "other": {"b"}}
    assert (calls.hits.groupby(["motif_name", "task"]).size() == 80).all()
    assert calls.qc["n_hits"].sum() == len(calls.hits)
    with pytest.raises(MotifError, match="min_task_share"):
        call_hits_in_store(path, motifs, HitParameters(min_task_share=2.0), device="cpu")
    # A stronger motif of task "b" that has no hit in it (a JASPAR matrix that passes no other threshold)
    # leaves b's scale to its strongest motif with hits: b keeps its hits.
    from genomatt.contributions import read_contributions
    from genomatt.motifs.hits import task_share

    ghost = pd.DataFrame({"motif_name": ["ghost"], "task": ["b"], "strength": [1e9]})
    share = task_share(read_contributions(path), every, calls.motifs)
    with_ghost = task_share(read_contributions(path), every, pd.concat([calls.motifs, ghost], ignore_index=True))
    np.testing.assert_array_equal(with_ghost, share)
    assert (share[(every["task"] == "b").to_numpy() & (every["motif_name"] == "other").to_numpy()] >= 0.5).all()


def test_a_weakly_learned_task_does_not_take_the_hits_of_the_factor_it_echoes(tmp_path):
    # Task "b" learned its own motif weakly (its sites at 0.15 of a's) and responds to a's sites at 0.4 of a's:
    # measured on the scale of its own weak hits alone, that echo would outweigh task "a" at a's own sites.
    path, cwm, other = _site_and_echo_store(tmp_path / "contrib.h5", echo=0.4, own=0.15)
    calls = call_hits_in_store(path, [CwmMotif("m", cwm, task="a"), CwmMotif("other", other, task="b")], device="cpu")
    counts = calls.hits.groupby("motif_name").size().to_dict()
    assert counts.get("m", 0) == 80 and counts.get("other", 0) > 40


def test_a_motif_file_without_a_tasks_own_motif_gives_no_hits_of_its_echo_there(tmp_path):
    # A MEME file holding only the motif of task "a" is scanned in task "b" too, where that motif is the
    # strongest scanned: its echo there is measured against b's own contributions, not against itself.
    path, cwm, _ = _site_and_echo_store(tmp_path / "contrib.h5")
    calls = call_hits_in_store(path, [CwmMotif("m", cwm)], device="cpu")
    assert calls.hits.groupby("task").size().to_dict() == {"a": 80}
    # Not a fifth of the echo's own strength there, but of the task's strongest sites.
    thresholds = calls.motifs.set_index("task")
    assert thresholds.loc["b", "min_coefficient"] > 3 * 0.2 * thresholds.loc["b", "strength"]


def test_a_consensus_matrix_that_no_site_matches_is_named_as_such(tmp_path, caplog):
    # A matrix of 0 and 1 (an IUPAC consensus written as MEME) admits only its one sequence; a base that the
    # planted sites never have leaves it no hit, for the sequence check, not for the false discovery rate.
    path, cwm, _ = _site_and_echo_store(tmp_path / "contrib.h5")
    consensus = (cwm > 0).astype(float)
    consensus[:, 0] = [0.0, 0.0, 0.0, 1.0] if consensus[3, 0] == 0 else [1.0, 0.0, 0.0, 0.0]
    with caplog.at_level("WARNING", logger="genomatt"):
        calls = call_hits_in_store(path, [CwmMotif("hard", cwm, pwm=consensus)], tasks=["a"], device="cpu")
    assert calls.hits.empty
    assert [record.getMessage() for record in caplog.records] == [
        "task a: no hit of hard: the sequence check admits only the matrix's one best sequence (columns of "
        "probability 0 and 1, a consensus?); give the matrix with pseudocounts, or turn the check off with "
        "--min-sequence-quantile 0"]
    assert len(call_hits_in_store(path, [CwmMotif("hard", cwm, pwm=consensus)], HitParameters(min_sequence_quantile=0),
                                  tasks=["a"], device="cpu").hits) == 80


def test_a_consensus_matrix_left_without_hits_by_few_regions_is_not_blamed_on_its_sequence_check(tmp_path, caplog):
    # The planted sites all are the matrix's one sequence: in 3 regions no candidate can keep the FDR, with or
    # without the sequence check, so the log names the FDR (a discovered motif's core is often of 0 and 1).
    path, cwm, _ = _site_and_echo_store(tmp_path / "contrib.h5")
    motif = CwmMotif("sites", cwm, pwm=(cwm > 0).astype(float))
    assert len(call_hits_in_store(path, [motif], tasks=["a"], device="cpu").hits) == 80
    with caplog.at_level("WARNING", logger="genomatt"):
        calls = call_hits_in_store(path, [motif], tasks=["a"], task_rows={"a": np.arange(3)}, device="cpu")
    assert calls.hits.empty
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 and "no candidate keeps the false discovery rate" in messages[0], messages


def test_a_task_with_no_motif_to_scan_has_no_qc_rows(tmp_path):
    # As a task left out of tasks: with only task a's motif (e.g. --include), task b's regions were not scanned.
    path, cwm, _ = _site_and_echo_store(tmp_path / "contrib.h5")
    calls = call_hits_in_store(path, [CwmMotif("a.pos.0", cwm, task="a")], device="cpu")
    assert set(calls.qc["task"]) == set(calls.motifs["task"]) == set(calls.hits["task"]) == {"a"}
    assert len(calls.qc) == 80


def test_hits_of_a_window_padded_past_a_chromosome_start_lie_on_the_chromosome(tmp_path):
    # Region 0's window starts 52 bp before chr1 (padded with N there, as extract records): its site at window
    # columns 50-60 is a hit on chr1's bases 0-8 alone, which BED files and genome browsers take.
    from genomatt.store import write_store

    cwm, _ = _two_motifs()
    _, onehot, noise = _one_motif_regions(40, 200, seed=3)
    for row in range(40):
        _plant(onehot, noise, row, 50, cwm, 1.0)
    starts = np.arange(40) * 1000 - 52
    regions = pd.DataFrame({"chrom": "chr1", "start": starts, "end": starts + 200,
                            "name": [f"r{row}" for row in range(40)], "padded_left": [52] + [0] * 39,
                            "padded_right": 0})
    path = write_store(tmp_path / "contrib.h5", regions, {"onehot": onehot, "hypothetical": noise[:, None],
                                                          "contrib": (onehot * noise)[:, None]},
                       kind="contributions", provenance={"command": "test"}, attrs={"tasks": ["a"]})
    hits = call_hits_in_store(path, [CwmMotif("m", cwm)], device="cpu").hits.set_index("peak_id")
    assert hits.loc[0, "start"] == 0 and hits.loc[0, "end"] == 8
    assert (hits.loc[1:, "start"] == starts[1:] + 50).all() and (hits.loc[1:, "end"] == starts[1:] + 60).all()


def test_the_two_heads_of_one_task_keep_their_hits(tmp_path):
    # A profile model's one task: its profile target answers motif "m" most and "other" at 0.4 of that; its
    # count target, on three times the scale, the reverse. The heads are not rival tasks (each on the scale of
    # its strongest motif, "other" would drive the counts 2.5 times as much as the profile): every site is a
    # hit of both heads.
    cwm, other = _two_motifs()
    rng, onehot, noise = _one_motif_regions(60, 200, seed=5)
    hypothetical = np.stack([noise, 3 * rng.laplace(0, 0.02, noise.shape).astype(np.float32)], axis=1)
    for row in range(60):
        strength = rng.uniform(0.8, 1.0)
        _plant(onehot, hypothetical[:, 0], row, 50, cwm, strength)
        hypothetical[row, 1, :, 50:60] += 3 * 0.4 * strength * cwm
        _plant(onehot, hypothetical[:, 1], row, 130, 3 * other, strength)
        hypothetical[row, 0, :, 130:140] += 0.4 * strength * other
    path = _two_task_store(tmp_path / "contrib.h5", onehot, hypothetical, ["profile_x", "counts_x"])
    hits = call_hits_in_store(path, [CwmMotif("m", cwm), CwmMotif("other", other)], device="cpu").hits
    assert (hits.groupby(["task", "motif_name"]).size() == 60).all() and len(hits) == 4 * 60


def test_the_algorithm_loads_no_file_reader():
    # hit_calling takes arrays and returns tables; reading contrib.h5 and motif files is its driver's job.
    code = ("import sys, genomatt.motifs.hit_calling; print(sorted(name for name in ('genomatt.store', "
            "'genomatt.contributions', 'genomatt.motifs.store', 'genomatt.motifs.cwm_motifs', 'genomatt.motifs.hits') "
            "if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


PALINDROMIC_CORE = [1, 1, 0, 1, 1, 3, 0, 2, 2, 3, 2, 2]  # CCACCTAGGTGG, its own reverse complement
MODULE = [3, 2, 1, 0, 2, 3, 3, 1]  # TGCAGTTC, conserved upstream of the core but carrying little contribution


def _module_motif(core: list[int], core_weights: np.ndarray, with_pwm: bool = True) -> CwmMotif:
    """A 20 bp motif: the 8 bp module (in its span, outside its scanned core) then the 12 bp core."""
    bases = np.array(MODULE + core)
    cwm = np.zeros((4, 20))
    cwm[bases, np.arange(20)] = np.concatenate([np.full(8, 0.2), core_weights])
    pwm = np.full((4, 20), 0.02)
    pwm[bases, np.arange(20)] = 0.94
    return CwmMotif("ctcf", cwm, pwm=pwm if with_pwm else None)


def _ambiguous_sites(motif: CwmMotif, strand: str, contribution: np.ndarray, n: int = 60):
    """Regions of 100 bp with the motif's whole site (module and core) on ``strand`` at 40-60 and
    ``contribution`` (``(4, 12)``, on the forward strand's columns) on its core only."""
    rng, onehot, hypothetical = _one_motif_regions(n, 100, seed=4)
    site = (motif.pwm if motif.pwm is not None else np.abs(motif.cwm)).copy()
    site = site if strand == "+" else reverse_complement_matrix(site)
    onehot[:, :, 40:60] = (site == site.max(axis=0)).astype(np.float32)
    core = slice(48, 60) if strand == "+" else slice(40, 52)
    hypothetical[:, :, core] += contribution * rng.uniform(0.6, 1.0, (n, 1, 1))
    return onehot * hypothetical, onehot


@pytest.mark.parametrize("strand", ["+", "-"])
def test_the_sequence_over_the_span_orients_a_palindromic_core(strand):
    # The core CCACCTAGGTGG reads the same on both strands and the contributions lie on it alone, shaped as
    # the forward core's CWM: the forward strand fits best (cosine 1) and the reverse nearly as well (0.9),
    # so the contributions cannot tell the site's orientation. The module's sequence beside the core can: the
    # hit takes the strand whose span holds it and lies on the site (40-60), not 8 bp off it on the other
    # strand.
    core_weights = np.array([1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.6, 0.6, 0.5, 0.5])
    motif = _module_motif(PALINDROMIC_CORE, core_weights)
    forward_core = motif.cwm[:, 8:]
    contrib, onehot = _ambiguous_sites(motif, strand, forward_core)
    hits, _, _ = call_hits(contrib, onehot, [motif], device="cpu")
    assert len(hits) == 60 and hits["region"].is_unique
    assert (hits["strand"] == strand).all()
    assert (hits["offset"] == 40).all() and (hits["width"] == 20).all()
    # A motif without a PWM has no sequence to orient it: the contributions decide, as the forward fit.
    cwm_only = _module_motif(PALINDROMIC_CORE, core_weights, with_pwm=False)
    hits, _, _ = call_hits(contrib, onehot, [cwm_only], device="cpu")
    assert len(hits) == 60 and (hits["strand"] == "+").all()
    assert (hits["offset"] == (40 if strand == "+" else 32)).all()


def test_contributions_that_tell_the_strands_apart_keep_their_orientation():
    # A core that is no palindrome (AGGTCATGCTTA) on the reverse strand, its contributions following the
    # reverse core, with the module's sequence on the wrong side (where the forward strand's span would hold
    # it): the contributions decide the orientation, the sequence over the span does not overturn it.
    core = [0, 2, 2, 3, 1, 0, 3, 2, 1, 3, 3, 0]
    core_weights = np.array([1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.6, 0.6, 0.5, 0.5])
    motif = _module_motif(core, core_weights)
    contrib, onehot = _ambiguous_sites(motif, "-", reverse_complement_matrix(motif.cwm[:, 8:]))
    onehot[:, :, 32:40] = np.eye(4, dtype=np.float32)[:, MODULE]
    contrib[:, :, 32:40] = 0.0
    hits, _, _ = call_hits(contrib, onehot, [motif], device="cpu")
    assert len(hits) == 60 and (hits["strand"] == "-").all() and (hits["offset"] == 40).all()
    # A palindromic core whose contributions fall off steeply along the forward core: the reverse strand still
    # passes (cosine 0.78) but explains 61% of what the forward fit does, beyond ORIENTATION_TOLERANCE, so the
    # contributions decide for the forward strand although the module's sequence lies on the reverse side.
    steep = _module_motif(PALINDROMIC_CORE, np.array([1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.4, 0.4]))
    contrib, onehot = _ambiguous_sites(steep, "-", steep.cwm[:, 8:])
    hits, _, _ = call_hits(contrib, onehot, [steep], device="cpu")
    assert len(hits) == 60 and (hits["strand"] == "+").all() and (hits["offset"] == 32).all()


def test_hits_scan_the_contributions_for_hits_where_the_file_holds_them(tmp_path, capsys):
    # Two sites per region; /contrib credits the first only (as cross-max credits a global max pool's argmax),
    # /hit_contrib both (as Max SHAP does). Hits are called in /hit_contrib unless told otherwise.
    from genomatt.store import write_store

    cwm = np.zeros((4, 10))
    cwm[[0, 2, 3, 0, 3, 1, 0, 2, 2, 3], np.arange(10)] = [0.4, 0.8, 1.2, 1.0, 1.1, 0.9, 0.7, 0.5, 0.4, 0.3]
    rng, onehot, noise = _one_motif_regions(60, 200, seed=5)
    hypothetical, for_hits = noise.copy(), noise.copy()
    for row in range(60):
        strength = rng.uniform(0.6, 1.0)
        _plant(onehot, hypothetical, row, 40, cwm, strength)
        _plant(onehot, for_hits, row, 40, cwm, strength / 2)
        _plant(onehot, for_hits, row, 130, cwm, strength / 2)
    regions = pd.DataFrame({"chrom": "chr1", "start": np.arange(60) * 1000, "end": np.arange(60) * 1000 + 200,
                            "name": [f"r{row}" for row in range(60)]})
    arrays = {"onehot": onehot, "hypothetical": hypothetical[:, None], "contrib": (onehot * hypothetical)[:, None],
              "hit_contrib": (onehot * for_hits)[:, None]}
    path = write_store(tmp_path / "contrib.h5", regions, arrays, kind="contributions",
                       provenance={"command": "test", "hit_max_rule": "shapley"}, attrs={"tasks": ["a"]})
    motifs = [CwmMotif("m", cwm)]
    offsets = {}
    for hit_contrib in (True, False):
        calls = call_hits_in_store(path, motifs, device="cpu", hit_contrib=hit_contrib)
        assert calls.contributions == ("hit_contrib" if hit_contrib else "contrib")
        offsets[hit_contrib] = np.sort((calls.hits["start"] - calls.hits["peak_id"] * 1000).unique())
    np.testing.assert_array_equal(offsets[True], [40, 130])
    np.testing.assert_array_equal(offsets[False], [40])
    # The command scans /hit_contrib, and says so in hits.h5; --no-hit-contrib scans /contrib.
    meme = tmp_path / "m.meme"
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n\nMOTIF m\nletter-probability matrix: alength= 4 w= 10\n"
                    + "".join(" ".join(f"{p:.3f}" for p in column) + "\n"
                              for column in ((cwm == cwm.max(axis=0)) * 0.97 + 0.01).T))
    for option, array, sites in (("--hit-contrib", "hit_contrib", 120), ("--no-hit-contrib", "contrib", 60)):
        out = tmp_path / array
        assert main(["hits", "--contrib", str(path), "--motifs", str(meme), "--out-dir", str(out), option]) == 0
        back = read_hits(out / "hits.h5")
        assert back.contributions == array and len(back.hits) == sites


def test_a_task_without_regions_is_skipped(contrib_h5, motifs_h5):
    tasks = contribution_tasks(contrib_h5)
    regions = read_regions(contrib_h5)
    rows = {task: np.arange(index, len(regions), 3) for index, task in enumerate(tasks)}
    rows[tasks[0]] = np.array([], dtype=np.int64)
    calls = call_hits_in_store(contrib_h5, read_cwm_motifs(motifs_h5), device="cpu", task_rows=rows)
    # As for a task left out of --tasks: no hit, QC or threshold row names it; the others are scanned.
    assert len(calls.hits) and set(calls.hits["task"]) <= set(tasks[1:])
    assert set(calls.qc["task"]) == set(calls.motifs["task"]) == set(tasks[1:])

    hits, qc, thresholds = call_hits(np.zeros((0, 4, 50)), np.zeros((0, 4, 50)), read_cwm_motifs(motifs_h5),
                                     device="cpu")
    assert hits.empty and qc.empty and thresholds.empty


def _task_beds(small_genome, folder, renamed: dict[str, str]) -> list[str]:
    """Each task's BED of the simulated genome in ``folder``, with chromosome names prefixed by ``renamed[task]``
    ("" drops "chr": ``1`` for ``chr1``)."""
    folder.mkdir()
    paths = []
    for task, prefix in renamed.items():
        text = small_genome.task_beds[task].read_text()
        (folder / f"{task}.bed").write_text(text if prefix is None else text.replace("chr", prefix))
        paths.append(str(folder / f"{task}.bed"))
    return paths


def test_hits_command_skips_a_task_none_of_whose_regions_is_explained(contrib_h5, motifs_h5, small_genome, tmp_path,
                                                                       caplog):
    beds = _task_beds(small_genome, tmp_path / "tasks", {"GATA1": None, "CTCF": ""})
    out = tmp_path / "hits"
    with caplog.at_level("WARNING", logger="genomatt"):
        assert main(["hits", "--contrib", str(contrib_h5), "--motifs", str(motifs_h5), "--out-dir", str(out),
                     "--task-regions", *beds, "--tasks", "GATA1", "CTCF", "--device", "cpu"]) == 0
    assert "task CTCF: no region of the contributions lies in the task's regions" in caplog.text
    calls = read_hits(out / "hits.h5")
    assert len(calls.hits) and set(calls.hits["task"]) == set(calls.qc["task"]) == set(calls.motifs["task"]) == {
        "GATA1"}
    assert set(pd.read_csv(out / "hits_genomatt.tsv", sep="\t")["task"]) == {"GATA1"}
    assert set(pd.read_csv(out / "regions_qc.tsv", sep="\t")["task"]) == {"GATA1"}
    # The report reads the hits of the tasks scanned, with the skipped task's discovered motif beside them.
    report = tmp_path / "report.html"
    assert main(["report", "--contrib", str(contrib_h5), "--motifs", str(motifs_h5), "--hits", str(out / "hits.h5"),
                 "--out", str(report)]) == 0
    assert report.is_file()


def test_hits_command_refuses_task_regions_that_hold_no_region(contrib_h5, motifs_h5, small_genome, tmp_path, capsys):
    beds = _task_beds(small_genome, tmp_path / "tasks", {"GATA1": "", "CTCF": "chrom"})
    out = tmp_path / "hits"
    assert main(["hits", "--contrib", str(contrib_h5), "--motifs", str(motifs_h5), "--out-dir", str(out),
                 "--task-regions", *beds, "--tasks", "GATA1", "CTCF", "--device", "cpu"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"genomatt hits: error: {beds[0]}, {beds[1]}: no region of {contrib_h5} lies in the task "
                            "regions of tasks ['GATA1', 'CTCF']")
    assert error.endswith("do the BEDs name the chromosomes as the regions do (['chr1', 'chr2', 'chr3'])?")
    assert not out.exists()


def test_motifs_command_refuses_task_regions_that_hold_no_region(contrib_h5, small_genome, tmp_path, capsys):
    tasks = contribution_tasks(contrib_h5)
    beds = _task_beds(small_genome, tmp_path / "tasks", dict.fromkeys(tasks, ""))
    out = tmp_path / "motifs" / "motifs.h5"
    assert main(["motifs", "--contrib", str(contrib_h5), "--out", str(out), "--task-regions", *beds]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"genomatt motifs: error: {', '.join(beds)}: no region of {contrib_h5} lies in the task "
                            f"regions of tasks {tasks}")
    assert not out.parent.exists()


def test_hits_command_checks_the_genome_of_the_tracks_before_scanning(contrib_h5, motifs_h5, small_genome, tmp_path,
                                                                       capsys):
    fasta = tmp_path / "short.fa"
    fasta.write_text("".join(f">{chrom}\n{'A' * 1000}\n" for chrom in ("chr1", "chr2", "chr3")))
    out = tmp_path / "hits"
    assert main(["hits", "--contrib", str(contrib_h5), "--motifs", str(motifs_h5), "--out-dir", str(out),
                 "--fasta", str(fasta), "--device", "cpu"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"genomatt hits: error: {fasta}: ") and f"of {contrib_h5} do not lie within" in error
    assert "is 1000 bp); is this the genome the regions were read from?" in error
    assert not out.exists()


def test_commands_refuse_tasks_whose_file_names_clash_before_writing(small_genome, tmp_path, capsys):
    regions = pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [40], "name": ["r0"]})
    onehot = np.eye(4, dtype=np.float32)[:, np.arange(40) % 4][None]
    contrib = write_contributions(tmp_path / "contrib.h5", regions, ["AP-1/JUN", "AP-1_JUN"], onehot,
                                  np.ones((1, 2, 4, 40), np.float32), np.zeros((1, 2)), np.zeros((1, 2)), {})
    out = tmp_path / "hits"
    assert main(["hits", "--contrib", str(contrib), "--motifs", str(small_genome.motifs_meme), "--out-dir", str(out),
                 "--fasta", str(small_genome.fasta), "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "genomatt hits: error: tasks 'AP-1/JUN' and 'AP-1_JUN' would both be written as 'AP-1_JUN' "
        "(in file names each run of characters other than A-Z a-z 0-9 _ . - becomes _, and so does a leading dot); "
        "rename one")
    assert not out.exists()
    # Nor do the attribution export and motif discovery write one task's files over the other's.
    assert main(["motifs", "--contrib", str(contrib), "--out", str(tmp_path / "motifs" / "motifs.h5"),
                 "--meme", str(small_genome.motifs_meme)]) == 2
    assert "would both be written as 'AP-1_JUN'" in capsys.readouterr().err
    assert not (tmp_path / "motifs").exists()
    with pytest.raises(OutputError, match="would both be written as 'AP-1_JUN'"):
        export_interop(tmp_path / "interop", contrib)


def test_meme_motifs_sharing_a_name_are_named_by_name_and_id(tmp_path):
    from genomatt.motifs.formats import Motif, write_meme

    rng = np.random.default_rng(0)
    matrices = [rng.dirichlet(np.ones(4), size=8).T for _ in range(3)]
    database = write_meme([Motif("MA0139.2", "CTCF", matrices[0]), Motif("MA1929.2", "CTCF", matrices[1]),
                           Motif("MA0035.5", "Gata1", matrices[2])], tmp_path / "jaspar.meme")
    assert [motif.name for motif in read_cwm_motifs(database)] == ["CTCF_MA0139.2", "CTCF_MA1929.2", "Gata1"]
    # HOMER's names hold '/', which Fi-NeMo's report would take for folders.
    homer = write_meme([Motif("1", "CTCF(Zf)/CD4+-CTCF-ChIP-Seq/Homer", matrices[0])], tmp_path / "homer.meme")
    assert [motif.name for motif in read_cwm_motifs(homer)] == ["CTCF(Zf)_CD4+-CTCF-ChIP-Seq_Homer"]
    twice = write_meme([Motif("MA0139.2", "CTCF", matrices[0]), Motif("MA0139.2", "CTCF", matrices[1])],
                       tmp_path / "twice.meme")
    with pytest.raises(MotifError, match=r"twice.meme:\d+: motif MA0139.2 is given again"):
        read_cwm_motifs(twice)


def test_nan_contributions_in_a_store_are_named_by_file_task_and_region(tmp_path):
    cwm, _ = _two_motifs()
    rng, onehot, noise = _one_motif_regions(6, 200, seed=2)
    hypothetical = np.stack([noise, noise], axis=1)
    hypothetical[3, 1, 2, 17] = np.nan
    path = _two_task_store(tmp_path / "contrib.h5", onehot, hypothetical, ["a", "b"])
    with pytest.raises(StoreError, match=r"contrib.h5: /contrib of task b holds NaN or infinite values in 1 regions "
                                         r"\(first: r3 at chr1:3000-3200\)"):
        call_hits_in_store(path, [CwmMotif("m", cwm)], device="cpu")


def test_a_task_without_contributions_is_said_so_not_told_to_raise_the_fdr(tmp_path, caplog):
    cwm, _ = _two_motifs()
    rng, onehot, noise = _one_motif_regions(6, 200, seed=2)
    hypothetical = np.stack([noise, np.zeros_like(noise)], axis=1)
    path = _two_task_store(tmp_path / "contrib.h5", onehot, hypothetical, ["a", "flat"])
    with caplog.at_level("WARNING", logger="genomatt"):
        calls = call_hits_in_store(path, [CwmMotif("m", cwm)], device="cpu")
    assert "task flat: its contributions are zero in all 6 regions scanned" in caplog.text
    assert "task flat: no hit of m" not in caplog.text and not (calls.hits["task"] == "flat").any()
    # A region without hits explains nothing, whatever the rounding of its residual.
    from genomatt.motifs.hit_calling import _region_qc

    contrib = np.random.default_rng(0).normal(size=(2, 4, 30)).astype(np.float32)
    total = (contrib.astype(np.float64) ** 2).sum(axis=(1, 2))
    qc = _region_qc(contrib, total * (1 - 1e-15), np.array([0, 1]))
    assert qc["explained_fraction"].iloc[0] == 0 and qc["explained_fraction"].iloc[1] > 0


def test_the_motif_table_keeps_integer_columns_when_a_task_has_no_motif(tmp_path):
    import h5py

    cwm, _ = _two_motifs()
    rng, onehot, noise = _one_motif_regions(6, 200, seed=2)
    path = _two_task_store(tmp_path / "contrib.h5", onehot, np.stack([noise, noise], axis=1), ["a", "b"])
    calls = call_hits_in_store(path, [CwmMotif("m", cwm, task="a")], device="cpu")
    written = write_hits(calls, tmp_path / "hits")["h5"]
    with h5py.File(written) as handle:
        assert {name: handle["motifs"][name].dtype.kind for name in ("width", "trim_start", "trim_end")} == \
            {"width": "i", "trim_start": "i", "trim_end": "i"}
