import json

import numpy as np
import pandas as pd
import pytest
from bed_checks import assert_valid_bed

from genomatt.errors import ConfigError, MotifError
from genomatt.genome import load_regions, read_bed
from genomatt.motifs.jaspar import fetch_jaspar
from genomatt.simulate import SimulationSettings, instance_score, sample_background, simulate_genome
from genomatt.motifs.formats import read_meme


def test_every_bed_is_valid_for_bedtools_and_ucsc(small_genome):
    beds = [small_genome.regions_bed, small_genome.negatives_bed, small_genome.tasks_bed,
            *small_genome.task_beds.values()]
    for bed in beds:
        assert_valid_bed(bed)


def best_background_scores(motif, rng, n=20_000):
    """Best score of each random background window of the motif's width, both strands."""
    codes = sample_background(n * motif.width, rng).reshape(n, motif.width)
    plus = np.array([instance_score(c, motif, "+") for c in codes])
    minus = np.array([instance_score(c, motif, "-") for c in codes])
    return np.maximum(plus, minus)


def test_outputs_and_manifest(small_genome):
    manifest = json.loads(small_genome.manifest.read_text())
    assert set(manifest["tasks"]) == {"GATA1", "TAL1_TCF3", "CTCF", "Spi1", "CEBPB"}
    assert small_genome.fasta.with_suffix(".fa.fai").is_file()
    regions = read_bed(small_genome.regions_bed)
    negatives = read_bed(small_genome.negatives_bed)
    assert len(regions) == 120 and len(negatives) == 40
    assert len(set(zip(regions.chrom, regions.start)) & set(zip(negatives.chrom, negatives.start))) == 0
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    assert list(truth.columns[:8]) == ["chrom", "start", "end", "strand", "motif_id", "motif_name", "task", "region"]
    labelled = read_bed(small_genome.tasks_bed)
    for task, bed in small_genome.task_beds.items():
        in_task = read_bed(bed)
        assert set(in_task["name"]) == set(truth.loc[truth.task == task, "region"])
        same = labelled.loc[labelled["name"] == task, ["chrom", "start", "end"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(same, in_task[["chrom", "start", "end"]].reset_index(drop=True))
    assert [m.name for m in read_meme(small_genome.motifs_meme)] == ["GATA1", "TAL1::TCF3", "CTCF", "Spi1", "CEBPB"]


def test_planted_sites_lie_inside_regions_and_do_not_overlap(small_genome):
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    regions = read_bed(small_genome.regions_bed).set_index("name")
    assert (truth.start.to_numpy() >= regions.loc[truth.region, "start"].to_numpy()).all()
    assert (truth.end.to_numpy() <= regions.loc[truth.region, "end"].to_numpy()).all()
    for _, group in truth.groupby("region"):
        group = group.sort_values("start")
        assert (group.start.to_numpy()[1:] >= group.end.to_numpy()[:-1]).all()


def test_planted_sites_score_high_under_their_own_pwm(small_genome):
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    rng = np.random.default_rng(1)
    for motif_id, group in truth.groupby("motif_id"):
        motif = fetch_jaspar(motif_id)
        _, X = load_regions(small_genome.fasta, group[["chrom", "start", "end"]], progress=False)
        codes = X.argmax(axis=1)
        scores = np.array([instance_score(c, motif, s) for c, s in zip(codes, group.strand)])
        np.testing.assert_allclose(scores, group.score, atol=1e-3)
        threshold = np.quantile(best_background_scores(motif, rng), 0.99)
        # Instances are sampled from the PWM, so most (not all) beat the background's 99th percentile.
        assert np.mean(scores > threshold) >= 0.8, motif_id


def test_deterministic_for_a_seed(tmp_path):
    settings = SimulationSettings(seed=3, n_chromosomes=2, chromosome_length=20_000, n_positive_regions=20,
                                  n_negative_regions=5, motifs=("MA0035",))
    first = simulate_genome(tmp_path / "a", settings)
    second = simulate_genome(tmp_path / "b", settings)
    other = simulate_genome(tmp_path / "c", SimulationSettings(**{**settings.__dict__, "seed": 4}))
    for name in ("genome.fa", "truth.tsv", "regions.bed", "negatives.bed"):
        assert (first.fasta.parent / name).read_bytes() == (second.fasta.parent / name).read_bytes()
    assert first.fasta.read_bytes() != other.fasta.read_bytes()


def test_background_gc_and_cpg_depletion():
    codes = sample_background(200_000, np.random.default_rng(0))
    gc = np.isin(codes, [1, 2]).mean()
    cpg = np.mean((codes[:-1] == 1) & (codes[1:] == 2))
    expected_cpg = np.mean(codes == 1) * np.mean(codes == 2)
    assert 0.38 < gc < 0.44
    assert cpg < 0.4 * expected_cpg


def test_invalid_settings(tmp_path):
    with pytest.raises(ConfigError, match="do not fit"):
        simulate_genome(tmp_path, SimulationSettings(n_chromosomes=1, chromosome_length=1000))
    with pytest.raises(MotifError, match="no JASPAR motif 'NOT_A_TF'"):
        simulate_genome(tmp_path, SimulationSettings(motifs=("NOT_A_TF",)))
    # Negative counts gave fewer regions than the manifest said, and no positives a traceback.
    for name, value, least in (("n_negative_regions", -3, 0), ("n_positive_regions", 0, 1)):
        with pytest.raises(ConfigError, match=f"{name} must be an integer of at least {least}, got {value}"):
            simulate_genome(tmp_path, SimulationSettings(**{name: value}))


@pytest.mark.parametrize("option, value", [("--n-negatives", "-3"), ("--n-positives", "0"), ("--region-width", "-1")])
def test_the_command_refuses_counts_below_their_least(tmp_path, capsys, option, value):
    from genomatt.cli.main import main

    with pytest.raises(SystemExit):
        main(["simulate", "--out-dir", str(tmp_path / "g"), option, value])
    assert f"argument {option}" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_matrices_of_one_factor_are_tasks_named_by_their_ids(tmp_path):
    # JASPAR holds several CTCF matrices; planted together each is its own task, its own task BED and
    # MEME motif, and the truth names the task of each site.
    settings = SimulationSettings(seed=1, n_chromosomes=2, chromosome_length=40_000, n_positive_regions=30,
                                  n_negative_regions=5, motifs=("MA0139.2", "MA1929.1", "MA0035"))
    genome = simulate_genome(tmp_path / "ctcf", settings)
    assert list(genome.task_beds) == ["CTCF_MA0139_2", "CTCF_MA1929_1", "GATA1"]
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    assert set(truth["task"]) == set(genome.task_beds)
    for task, motif_id in (("CTCF_MA0139_2", "MA0139.2"), ("CTCF_MA1929_1", "MA1929.1")):
        assert set(truth.loc[truth["task"] == task, "motif_id"]) == {motif_id}
    assert [motif.id for motif in read_meme(genome.motifs_meme)] == ["MA0139.2", "MA1929.1", "MA0035.5"]
    with pytest.raises(ConfigError, match=r"motifs MA0035.5 \(GATA1\) are given more than once"):
        simulate_genome(tmp_path / "twice", SimulationSettings(motifs=("MA0035", "MA0035")))
