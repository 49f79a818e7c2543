import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest
from motif_contributions import (
    TWO_MOTIF_SETTINGS,
    overlap_fraction,
    planted_contributions,
    write_planted_contributions,
)

from genomatt.contributions import read_contributions
from genomatt.motifs.discovery import DiscoverySettings, resolve_window
from genomatt.motifs.formats import Motif, read_meme, write_meme
from genomatt.motifs.purity import core_effects, seqlet_purity
from genomatt.motifs.task_discovery import discover_task_motifs
from genomatt.simulate import simulate_genome
from genomatt.store import write_store


def test_seqlet_purity_is_a_sites_effect_on_its_task_over_its_largest_effect(tmp_path):
    # Task A's sites at 5-10 of regions 0-3 drive A (1.0 per base, B 0.1); at regions 4-9 they are B's sites
    # (A 0.25, B 1.0). A negative site at 12-16 represses B and activates A: B's own, of purity 1.
    n, length = 10, 20
    regions = pd.DataFrame({"chrom": "chr1", "start": np.arange(n) * 100, "end": np.arange(n) * 100 + length,
                            "name": [f"region_{i}" for i in range(n)]})
    onehot = np.zeros((n, 4, length), np.float32)
    onehot[:, 0] = 1
    hypothetical = np.zeros((n, 2, 4, length), np.float32)
    hypothetical[:4, 0, :, 5:10], hypothetical[:4, 1, :, 5:10] = 1.0, 0.1
    hypothetical[4:, 0, :, 5:10], hypothetical[4:, 1, :, 5:10] = 0.25, 1.0
    hypothetical[:, 0, :, 12:16], hypothetical[:, 1, :, 12:16] = 1.0, -1.0
    path = write_store(tmp_path / "contrib.h5", regions,
                       {"onehot": onehot, "hypothetical": hypothetical, "contrib": onehot[:, None] * hypothetical},
                       kind="contributions", provenance={"command": "test"}, attrs={"tasks": ["A", "B"]})
    info = read_contributions(path)
    rows = np.arange(n)[::-1]
    effects = core_effects(info, rows, np.full(n, 5), np.full(n, 10))
    expected = np.where(rows[:, None] < 4, [5.0, 0.5], [1.25, 5.0])
    np.testing.assert_allclose(effects, expected, rtol=1e-6)
    purity = seqlet_purity(effects, 0)
    np.testing.assert_allclose(purity, np.where(rows < 4, 1.0, 0.25), rtol=1e-6)
    assert np.median(purity) == pytest.approx(0.25)
    negative = -core_effects(info, np.arange(n), np.full(n, 12), np.full(n, 16))
    np.testing.assert_allclose(seqlet_purity(negative, 1), 1.0)
    assert seqlet_purity(np.array([[-1.0, -2.0]]), 0) == 1.0


def test_a_motif_keeps_only_the_seqlets_that_drive_its_own_task(tmp_path, caplog):
    # One matrix (GATA1) planted under three names, as two factors with one motif would be. Task A's own sites
    # are GATA1 and OWN; it also responds, 0.7 as much, to OTHER, the sites of task B, which drive B three
    # times as much as A. tfmodisco-lite cannot tell the three apart, so A's one pattern holds all of them;
    # the motif passes task purity (two thirds of its seqlets are A's) but is rebuilt without OTHER's seqlets.
    base = simulate_genome(tmp_path / "base", TWO_MOTIF_SETTINGS)
    gata = next(motif for motif in read_meme(base.motifs_meme) if motif.name == "GATA1")
    copies = [Motif(f"COPY{index}", name, gata.probabilities) for index, name in enumerate(("OWN", "OTHER"))]
    for motif in copies:
        write_meme([motif], tmp_path / f"{motif.name}.meme")
    settings = dataclasses.replace(TWO_MOTIF_SETTINGS, n_positive_regions=400,
                                   motifs=("MA0035", *(str(tmp_path / f"{motif.name}.meme") for motif in copies)))
    genome = simulate_genome(tmp_path / "genome", settings)
    tasks = {"A": {"GATA1": 0.5, "OWN": 0.5, "OTHER": 0.35}, "B": {"OTHER": 1.05}}
    info = read_contributions(write_planted_contributions(genome, tmp_path / "contrib.h5", tasks))
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    start, width = resolve_window(None, info.length)

    def on_sites(discoveries, names):
        seqlets = next(discovery for discovery in discoveries if discovery.task == "A").motif_seqlets
        seqlets = seqlets[seqlets["motif"] == "A.pos.0"]
        return overlap_fraction(seqlets, truth[truth["motif_name"].isin(names)]), len(seqlets)

    kept_all = discover_task_motifs(info, start, width, DiscoverySettings(threads=2, min_purity=0.0, seed=1))
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.purity"):
        pure = discover_task_motifs(info, start, width, DiscoverySettings(threads=2, seed=1))
    other_before, n_before = on_sites(kept_all, ["OTHER"])
    other_after, n_after = on_sites(pure, ["OTHER"])
    own_after, _ = on_sites(pure, ["GATA1", "OWN"])
    assert other_before > 0.2
    assert other_after < 0.05 and own_after > 0.9
    assert n_after < n_before
    assert "A.pos.0: " in caplog.text and "seqlets dropped: they drive another task over 2 times as much as " \
        "their own (mostly B)" in caplog.text
    task_a = next(discovery for discovery in pure if discovery.task == "A")
    motif = next(motif for motif in task_a.motifs if motif.name == "A.pos.0")
    # Every output of the rebuilt motif describes the kept seqlets.
    assert motif.n_seqlets == n_after == len(task_a.patterns["pos"][0].seqlets)
    assert motif.cwm.sum() == pytest.approx(task_a.patterns["pos"][0].contrib_scores.sum(), rel=1e-5)
    # Task B's motif is its own sites, untouched.
    task_b = next(discovery for discovery in pure if discovery.task == "B")
    seqlets_b = task_b.motif_seqlets[task_b.motif_seqlets["motif"] == "B.pos.0"]
    assert overlap_fraction(seqlets_b, truth[truth["motif_name"] == "OTHER"]) > 0.9
    assert "task B: motif" not in caplog.text


def test_a_motif_left_with_fewer_seqlets_than_a_motif_needs_is_dropped(tmp_path, caplog):
    # GATA1 and CTCF drive task A; task B answers 26 of the 58 CTCF sites three times as strongly. A's CTCF
    # motif passes task purity (most of its seqlets are A's own), but rebuilt from those it keeps 19 seqlets,
    # under the 20 a motif needs: it is dropped, and A keeps its GATA1 motif alone.
    genome = simulate_genome(tmp_path / "genome", dataclasses.replace(TWO_MOTIF_SETTINGS, n_positive_regions=70))
    regions, onehot, hypothetical = planted_contributions(genome, {"A": {"GATA1": 0.5, "CTCF": 0.5}, "B": {}})
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    row_of = dict(zip(regions["name"], range(len(regions))))
    for site in truth[truth["motif_name"] == "CTCF"].head(26).itertuples():
        row = row_of[site.region]
        offset = site.start - int(regions["start"].iloc[row])
        hypothetical[row, 1, :, offset : offset + site.end - site.start] = \
            3 * hypothetical[row, 0, :, offset : offset + site.end - site.start]
    path = write_store(tmp_path / "contrib.h5", regions,
                       {"onehot": onehot, "hypothetical": hypothetical, "contrib": onehot[:, None] * hypothetical},
                       kind="contributions", provenance={"command": "test"}, attrs={"tasks": ["A", "B"]})
    info = read_contributions(path)
    start, width = resolve_window(None, info.length)

    def task_a(min_purity):
        settings = DiscoverySettings(threads=2, min_seqlets=10, min_seqlet_share=0.0, min_purity=min_purity, seed=0)
        return next(found for found in discover_task_motifs(info, start, width, settings) if found.task == "A")

    assert len(task_a(0.0).motifs) == 2
    with caplog.at_level(logging.INFO, logger="genomatt"):
        pure = task_a(0.5)
    assert "seqlets left, fewer than the 20 a motif needs" in caplog.text
    assert [motif.name for motif in pure.motifs] == ["A.pos.0"]
    assert overlap_fraction(pure.motif_seqlets, truth[truth["motif_name"] == "GATA1"]) > 0.9


def test_the_two_heads_of_one_task_are_not_rivals(tmp_path, caplog):
    # A profile model's one task: its profile target and its count target both explain GATA1 and CTCF, the
    # count target on a scale ten times the profile's. Heads of one task are not other tasks: the profile
    # target keeps its motifs. Two tasks' profiles are still compared: task B's profile sees A's CTCF sites
    # at a fifth of A's profile and keeps no motif of them.
    genome = simulate_genome(tmp_path / "genome", TWO_MOTIF_SETTINGS)
    tasks = {"profile_A": {"GATA1": 0.5, "CTCF": 0.5}, "counts_A": {"GATA1": 5.0, "CTCF": 5.0},
             "profile_B": {"CTCF": 0.1}}
    info = read_contributions(write_planted_contributions(genome, tmp_path / "contrib.h5", tasks))
    start, width = resolve_window(None, info.length)
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.purity"):
        found = {discovery.task: discovery for discovery in
                 discover_task_motifs(info, start, width, DiscoverySettings(threads=2, seed=1))}
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    for target in ("profile_A", "counts_A"):
        seqlets = found[target].motif_seqlets
        planted = {name for motif in found[target].motifs for name in ("GATA1", "CTCF")
                   if overlap_fraction(seqlets[seqlets["motif"] == motif.name], truth[truth["motif_name"] == name]) > 0.9}
        assert len(found[target].motifs) == 2 and planted == {"GATA1", "CTCF"}
    assert not found["profile_B"].motifs
    assert "task profile_B: motif" in caplog.text and "dropped as a motif of task profile_A" in caplog.text
