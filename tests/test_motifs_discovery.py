import dataclasses
import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from motif_contributions import (
    SHORT_REGION_SETTINGS,
    overlap_fraction,
    two_motif_contributions,
    write_planted_contributions,
)

from genomatt.contributions import read_contributions
from genomatt.errors import MotifError, NonFiniteError, SequenceError
from genomatt.motifs.discovery import (
    MIN_MOTIF_SEQLETS,
    MOTIF_SEQLET_COLUMNS,
    DiscoverySettings,
    _simple_patterns,
    composite_of,
    discover_motifs,
    resolve_window,
)
from genomatt.motifs.formats import Motif, read_meme, write_meme
from genomatt.motifs.seqlets import CALLED_SEQLET_COLUMNS, SeqletGeometry, call_seqlets, seqlet_geometry
from genomatt.simulate import simulate_genome


@pytest.fixture(scope="module")
def contributions(tmp_path_factory):
    genome, path = two_motif_contributions(tmp_path_factory.mktemp("two_motifs"))
    return read_contributions(path), pd.read_csv(genome.truth_tsv, sep="\t")


def discover(info, task, window=None, **settings):
    start, width = resolve_window(window, info.length)
    onehot, hypothetical = info.read_window(info.tasks.index(task), start, start + width)
    return discover_motifs(onehot, hypothetical, info.regions, task, start, DiscoverySettings(threads=2, **settings))


@pytest.fixture(scope="module")
def ctcf_task(contributions):
    return discover(contributions[0], "CTCF")


def test_positive_and_negative_motifs_with_seqlets_at_planted_sites(ctcf_task, contributions):
    truth = contributions[1]
    names = [motif.name for motif in ctcf_task.motifs]
    assert "CTCF.pos.0" in names and "CTCF.neg.0" in names
    for motif in ctcf_task.motifs:
        seqlets = ctcf_task.motif_seqlets[ctcf_task.motif_seqlets["motif"] == motif.name]
        assert len(seqlets) == motif.n_seqlets
        planted = truth[truth["motif_name"] == ("CTCF" if motif.sign == "pos" else "GATA1")]
        assert overlap_fraction(seqlets, planted) >= 0.8
        assert np.sign(seqlets["score"]).eq(1 if motif.sign == "pos" else -1).mean() > 0.9
        assert motif.cwm.shape == motif.pwm.shape == motif.hypothetical_cwm.shape == (4, motif.width)
        np.testing.assert_allclose(motif.pwm.sum(axis=0), 1, atol=1e-5)
        assert 0 <= motif.trim_start < motif.trim_end <= motif.width
    counts = [motif.n_seqlets for motif in ctcf_task.motifs if motif.sign == "neg"]
    assert counts == sorted(counts, reverse=True)


def test_seqlet_tables_are_in_genome_coordinates(ctcf_task, contributions):
    info = contributions[0]
    seqlets = ctcf_task.motif_seqlets
    assert list(seqlets.columns) == list(MOTIF_SEQLET_COLUMNS)
    assert list(ctcf_task.called_seqlets.columns) == list(CALLED_SEQLET_COLUMNS)
    regions = info.regions.set_index("name")
    for table in (seqlets, ctcf_task.called_seqlets):
        assert (table["chrom"].to_numpy() == regions.loc[table["region"], "chrom"].to_numpy()).all()
        assert (table["start"].to_numpy() >= regions.loc[table["region"], "start"].to_numpy()).all()
        assert (table["end"].to_numpy() <= regions.loc[table["region"], "end"].to_numpy()).all()
    # The core lies inside the motif's full window, on the seqlet's strand.
    assert ((seqlets["window_start"] <= seqlets["start"]) & (seqlets["end"] <= seqlets["window_end"])).all()
    motif = ctcf_task.motifs[0]
    one = seqlets[seqlets["motif"] == motif.name]
    forward, reverse = one[one["strand"] == "+"], one[one["strand"] == "-"]
    assert (forward["start"] - forward["window_start"] == motif.trim_start).all()
    assert (reverse["window_end"] - reverse["end"] == motif.trim_start).all()


def test_no_seqlets_gives_an_empty_result_and_says_why(contributions, caplog):
    with caplog.at_level(logging.INFO, logger="genomatt"):
        result = discover(contributions[0], "noise")
    assert result.motifs == [] and len(result.motif_seqlets) == 0
    assert list(result.motif_seqlets.columns) == list(MOTIF_SEQLET_COLUMNS)
    assert "fewer than the 100 needed for discovery; no pos motifs" in caplog.text


@pytest.mark.parametrize("error", [ValueError("Input contains NaN."),
                                   BaseException("Could not construct partition: Cannot accept NaN weights.")])
def test_a_failure_inside_tfmodisco_lite_names_the_task_and_the_way_out(contributions, monkeypatch, error):
    import modiscolite.tfmodisco

    def failing(**options):
        raise error

    monkeypatch.setattr(modiscolite.tfmodisco, "TFMoDISco", failing)
    with pytest.raises(MotifError, match=r"task GATA1: tfmodisco-lite failed on the task's \d+ positive and \d+ "
                                         r"negative seqlets \(\w+: .*NaN.*\).*motifs.window"):
        discover(contributions[0], "GATA1")


def test_contributions_of_exactly_zero_inside_the_window_are_warned_of_and_named(contributions, monkeypatch, caplog):
    # A model whose max pools credit few positions: runs of 40 bp without contribution inside every region.
    import modiscolite.tfmodisco

    info = contributions[0]
    start, width = resolve_window(None, info.length)
    onehot, hypothetical = info.read_window(info.tasks.index("GATA1"), start, start + width)
    silent = hypothetical.copy()
    silent[:, :, 20:60] = 0
    silent[:, :, 120:160] = 0

    def failing(**options):
        raise ValueError("Input contains NaN.")

    monkeypatch.setattr(modiscolite.tfmodisco, "TFMoDISco", failing)
    with caplog.at_level(logging.WARNING, logger="genomatt"), pytest.raises(
            MotifError, match=r"\d+% of the positions in the window carry none: a narrower window .* max pools credit"):
        discover_motifs(onehot, silent, info.regions, "GATA1", start, DiscoverySettings(threads=2))
    assert f"task GATA1: {round(100 * 80 / width)}% of the positions of the regions' windows carry exactly zero" \
        in caplog.text
    assert "at A, C, G or T (a model whose max pools" in caplog.text and "at N bases" not in caplog.text
    # Zeros at N bases (padding, gaps) are named as such, not blamed on the model.
    caplog.clear()
    padded = onehot.copy()
    padded[:, :, 20:60] = 0
    with caplog.at_level(logging.WARNING, logger="genomatt"), pytest.raises(MotifError):
        discover_motifs(padded, silent, info.regions, "GATA1", start, DiscoverySettings(threads=2))
    share = round(100 * 40 / width)
    assert f"exactly zero contribution ({share}% at N bases (padding past chromosome ends" in caplog.text
    assert f"; {round(100 * 40 / width)}% at A, C, G or T" in caplog.text


@pytest.mark.parametrize("window", [151, 99])
def test_odd_and_short_windows(contributions, window):
    info, truth = contributions
    result = discover(info, "GATA1", window=window)
    assert result.window_size == window and result.window_start == info.length // 2 - window // 2
    assert result.motifs and result.motifs[0].name == "GATA1.pos.0"
    seqlets = result.motif_seqlets
    regions = info.regions.set_index("name").loc[seqlets["region"]]
    assert (seqlets["window_start"].to_numpy() >= regions["start"].to_numpy() + result.window_start).all()
    assert (seqlets["window_end"].to_numpy() <= regions["start"].to_numpy() + result.window_start + window).all()
    assert overlap_fraction(seqlets, truth[truth["motif_name"] == "GATA1"]) >= 0.8


def test_short_regions(tmp_path):
    genome = simulate_genome(tmp_path, SHORT_REGION_SETTINGS)
    info = read_contributions(write_planted_contributions(genome, tmp_path / "c.h5", {"GATA1": {"GATA1": 0.5}}))
    result = discover(info, "GATA1", window=35)
    assert result.geometry.core + 2 * result.geometry.flank < 35
    assert result.motifs and result.motifs[0].name == "GATA1.pos.0"
    assert overlap_fraction(result.motif_seqlets, pd.read_csv(genome.truth_tsv, sep="\t")) >= 0.8


def test_seqlet_cap_samples_regions_at_random_with_a_seed(contributions, caplog):
    info = contributions[0]
    with caplog.at_level(logging.INFO, logger="genomatt"):
        first = discover(info, "GATA1", max_seqlets=150, seed=1)
    assert "clustering 150 of" in caplog.text
    used = first.motif_seqlets["region"].unique()
    rows = info.regions.index[info.regions["name"].isin(used)]
    # File order would take the first ~40% of the regions; a random order spreads over all of them.
    assert rows.max() > 0.8 * len(info.regions)
    again = discover(info, "GATA1", max_seqlets=150, seed=1)
    pd.testing.assert_frame_equal(first.motif_seqlets, again.motif_seqlets)


def test_resolve_window(caplog):
    assert resolve_window(None, 200) == (0, 200)
    assert resolve_window(151, 200) == (25, 151)
    assert resolve_window(150, 201) == (25, 150)
    with caplog.at_level(logging.WARNING, logger="genomatt"):
        assert resolve_window(500, 200) == (0, 200)
    assert "longer than the 200 bp regions" in caplog.text
    with pytest.raises(MotifError, match="too short"):
        resolve_window(10, 200)


def test_discovery_refuses_fewer_than_one_thread():
    with pytest.raises(MotifError, match="at least 1"):
        DiscoverySettings(threads=0)


@pytest.mark.parametrize("seed", [-1, 1.5, None, True, "0"])
def test_discovery_seed_must_be_a_non_negative_integer(seed):
    with pytest.raises(MotifError, match=f"seed must be an integer >= 0, got {seed!r}"):
        DiscoverySettings(seed=seed)
    assert DiscoverySettings(seed=np.int64(3)).seed == 3


@pytest.fixture(scope="module")
def small_window(contributions):
    """One-hot, hypothetical and regions of the first 40 regions' GATA1 contributions (too few for motifs)."""
    info = contributions[0]
    onehot, hypothetical = info.read_window(info.tasks.index("GATA1"), 0, info.length)
    return onehot[:40], hypothetical[:40], info.regions.iloc[:40].reset_index(drop=True)


@pytest.mark.parametrize("layout, message", [
    (lambda contrib: contrib.transpose(0, 2, 1), r"got \(40, 200, 4\); length before channels, \(N, L, 4\)"),
    (lambda contrib: contrib[0], r"got \(4, 200\); one region's \(4, L\) track\? give it as \[track\]"),
])
def test_seqlets_need_contributions_of_shape_n_4_l(small_window, layout, message):
    onehot, hypothetical, _ = small_window
    with pytest.raises(SequenceError, match=r"contributions: expected an array of shape \(N, 4, L\).* " + message):
        call_seqlets(layout(onehot * hypothetical), seqlet_geometry(200))


def test_non_finite_contributions_are_refused_naming_the_region_row_and_position(small_window):
    onehot, hypothetical, regions = small_window
    contrib = onehot * hypothetical
    contrib[3, 0, 10] = np.nan
    contrib[5, 2, 7] = np.inf
    with pytest.raises(NonFiniteError, match=r"contributions: NaN or infinite at 2 position\(s\) in 2 of 40 regions "
                                             r"\(first: region row 3, position 10\)") as caught:
        call_seqlets(contrib, seqlet_geometry(200))
    assert caught.value.rows == [3, 5]
    # Discovery names the row of the caller's arrays, not of its shuffled region order.
    for index, name in enumerate(("one-hot", "hypothetical contributions")):
        arrays = [onehot.copy(), hypothetical.copy()]
        arrays[index][31, 1, 150] = np.nan
        with pytest.raises(NonFiniteError, match=f"task GATA1: {name}: NaN .*region row 31, position 150"):
            discover_motifs(*arrays, regions, "GATA1")


@pytest.mark.parametrize("call, message", [
    (lambda contrib: call_seqlets(contrib, seqlet_geometry(200), target_fdr=0.0),
     r"target_fdr must be in \(0, 1\), got 0.0"),
    (lambda contrib: call_seqlets(contrib, seqlet_geometry(200), target_fdr=1.0), r"target_fdr .* got 1.0"),
    (lambda contrib: call_seqlets(contrib, seqlet_geometry(200), target_fdr=-0.1), r"target_fdr .* got -0.1"),
    (lambda contrib: SeqletGeometry(core=0), "SeqletGeometry core must be an integer >= 1, got 0"),
    (lambda contrib: SeqletGeometry(core=-3), "core must be an integer >= 1, got -3"),
    (lambda contrib: SeqletGeometry(flank=-1), "SeqletGeometry flank must be an integer >= 0, got -1"),
    (lambda contrib: SeqletGeometry(trim=2.5), "SeqletGeometry trim must be an integer >= 1, got 2.5"),
    (lambda contrib: seqlet_geometry(0), r"window must be a positive integer \(bp\), got 0"),
    (lambda contrib: seqlet_geometry(-10), "window must be a positive integer .* got -10"),
    (lambda contrib: seqlet_geometry(150.5), "window must be a positive integer .* got 150.5"),
])
def test_seqlet_arguments_out_of_range_are_refused(small_window, call, message):
    onehot, hypothetical, _ = small_window
    with pytest.raises(MotifError, match=message):
        call(onehot * hypothetical)


def test_discovery_takes_torch_tensors_and_lists_and_names_missing_region_columns(small_window):
    import torch

    onehot, hypothetical, regions = small_window
    expected = discover_motifs(onehot, hypothetical, regions, "GATA1").called_seqlets
    assert len(expected) > 0
    for arrays in ((torch.from_numpy(onehot), torch.from_numpy(hypothetical)),
                   (onehot.tolist(), hypothetical.tolist())):
        pd.testing.assert_frame_equal(discover_motifs(*arrays, regions, "GATA1").called_seqlets, expected)
    with pytest.raises(MotifError, match="task GATA1: regions must be a table with columns chrom, start and name, "
                                         "got one without name"):
        discover_motifs(onehot, hypothetical, regions[["chrom", "start", "end"]], "GATA1")


def test_patterns_much_weaker_than_the_tasks_strongest_are_dropped(tmp_path, caplog):
    # The task responds strongly to CTCF and a little to GATA1 sites (as a model's task to other factors'
    # sites in its regions): the weak GATA1 pattern is no motif of the task unless asked for.
    from motif_contributions import TWO_MOTIF_SETTINGS

    genome = simulate_genome(tmp_path, TWO_MOTIF_SETTINGS)
    path = write_planted_contributions(genome, tmp_path / "contrib.h5", {"mixed": {"CTCF": 0.6, "GATA1": 0.2}})
    info = read_contributions(path)
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    every = discover(info, "mixed", min_strength=0.0)
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.discovery"):
        strong = discover(info, "mixed")
    gata = truth[truth["motif_name"] == "GATA1"]
    on_gata = [overlap_fraction(every.motif_seqlets[every.motif_seqlets["motif"] == m.name], gata) > 0.5
               for m in every.motifs]
    assert any(on_gata)
    assert [m.name for m in strong.motifs] == [m.name for m, gata_motif in zip(every.motifs, on_gata)
                                                 if not gata_motif]
    assert "dropped: strength" in caplog.text
    assert sum(len(patterns) for patterns in strong.patterns.values()) == len(strong.motifs)
    with pytest.raises(MotifError, match="min_strength"):
        DiscoverySettings(min_strength=1.0)


def _logo(rng, width):
    probabilities = rng.dirichlet(np.full(4, 0.3), size=width).T
    return probabilities * (2 + (probabilities * np.log2(probabilities + 1e-12)).sum(axis=0))


def test_composite_of_two_motifs_side_by_side():
    rng = np.random.default_rng(0)
    first, second = _logo(rng, 8), _logo(rng, 10)
    composite = np.zeros((4, 30))
    composite[:, 4:12] = first
    composite[:, 15:25] = 0.7 * second[::-1, ::-1]
    composite += rng.normal(0, 0.02, composite.shape)
    parts = {"first": first, "second": second}
    assert set(composite_of(composite, parts)) == {"first", "second"}
    # A motif alone, or one of them with an unknown neighbour, is no composite.
    alone = np.zeros((4, 30))
    alone[:, 10:18] = first
    assert composite_of(alone, parts) is None
    unknown = composite.copy()
    unknown[:, 15:25] = _logo(rng, 10)
    assert composite_of(unknown, parts) is None


def test_composite_patterns_are_dropped_and_their_parts_kept(caplog):
    rng = np.random.default_rng(1)
    first, second = _logo(rng, 8), _logo(rng, 10)

    def pattern(cwm, n):
        return SimpleNamespace(contrib_scores=cwm.T, seqlets=[None] * n)

    padded = [np.pad(first, ((0, 0), (11, 11))), np.pad(second, ((0, 0), (10, 10)))]
    composite = np.zeros((4, 30))
    composite[:, 3:11], composite[:, 16:26] = first, second
    patterns = {"pos": [pattern(padded[0], 300), pattern(padded[1], 200), pattern(composite, 25)], "neg": []}
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.discovery"):
        kept = _simple_patterns(patterns, "task")
    assert kept["pos"] == patterns["pos"][:2] and kept["neg"] == []
    assert "pos pattern 2 (25 seqlets) dropped: a composite of pos pattern" in caplog.text


def test_two_patterns_that_explain_each_other_leave_one_motif(caplog):
    # A pattern (114 seqlets) was a "composite" of a smaller one (20 seqlets) twice, which was a small variant of it:
    # each was dropped for the other, and the task had no motif. One core twice is the motif itself (a palindrome,
    # a homodimer), so the larger is kept and the smaller dropped as its variant; a composite of two different
    # patterns keeps its parts, whichever has more seqlets.
    rng = np.random.default_rng(3)
    site, other = _logo(rng, 6), _logo(rng, 6)

    def pattern(cwm, n):
        return SimpleNamespace(contrib_scores=cwm.T, seqlets=[None] * n)

    pair, single, second = np.zeros((4, 30)), np.zeros((4, 30)), np.zeros((4, 30))
    pair[:, 5:11], pair[:, 17:23], single[:, 12:18], second[:, 12:18] = site, site[::-1, ::-1], site, other
    patterns = {"pos": [pattern(pair, 114), pattern(single, 20)], "neg": []}
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.discovery"):
        kept = _simple_patterns(patterns, "task")
    assert kept["pos"] == [patterns["pos"][0]]
    assert "pos pattern 1 (20 seqlets) dropped: a small variant of pos pattern 0" in caplog.text
    assert composite_of(pair, {"site": single[:, 12:18]}) is None
    # Nor is it a composite of two patterns of the half-site (tfmodisco-lite splitting one cluster in two).
    again = np.zeros((4, 30))
    again[:, 11:17] = 0.9 * site + rng.normal(0, 0.02, site.shape)
    assert composite_of(pair, {"site": single[:, 12:18], "again": again[:, 11:17]}) is None
    split = [pattern(pair, 114), pattern(single, 20), pattern(again, 15)]
    assert _simple_patterns({"pos": split, "neg": []}, "task")["pos"][0] is split[0]
    caplog.clear()
    two = pair.copy()
    two[:, 17:23] = other
    patterns = {"pos": [pattern(two, 114), pattern(single, 20), pattern(second, 22)], "neg": []}
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.discovery"):
        kept = _simple_patterns(patterns, "task")
    assert kept["pos"] == patterns["pos"][1:]
    assert "pos pattern 0 (114 seqlets) dropped: a composite of pos pattern" in caplog.text
    assert "pattern 1 (20 seqlets) dropped" not in caplog.text and "pattern 2 (22 seqlets) dropped" not in caplog.text


def test_a_pattern_that_is_another_again_is_dropped_whatever_its_seqlet_count(caplog):
    # One motif found twice, on opposite strands and with a flank of other strength (tfmodisco-lite splitting one
    # cluster), at 315 and 440 seqlets: more than SMALL_SHARE of each other, yet the same motif.
    rng = np.random.default_rng(2)
    motif, other = _logo(rng, 9), _logo(rng, 9)

    def pattern(cwm, n):
        return SimpleNamespace(contrib_scores=cwm.T, seqlets=[None] * n)

    again = np.pad(motif[::-1, ::-1], ((0, 0), (12, 9)))
    again[:, 11] = 0.1 * motif[:, 0]
    patterns = {"pos": [pattern(np.pad(motif, ((0, 0), (10, 11))), 440), pattern(again, 315),
                        pattern(np.pad(other, ((0, 0), (10, 11))), 300)], "neg": []}
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.discovery"):
        kept = _simple_patterns(patterns, "task")
    assert kept["pos"] == [patterns["pos"][0], patterns["pos"][2]]
    assert "pos pattern 1 (315 seqlets) dropped: pos pattern 0, which has more seqlets, explains 0.9 of its CWM" \
        in caplog.text


def test_a_planted_composite_leaves_its_sites_to_its_two_motifs(tmp_path, caplog):
    # GATA1 and CTCF planted alone, and side by side (3 bp apart) as one composite site as often as each:
    # tfmodisco-lite finds the composite as a pattern of its own, which is two known motifs, not a third.
    from motif_contributions import TWO_MOTIF_SETTINGS

    base = simulate_genome(tmp_path / "base", TWO_MOTIF_SETTINGS)
    gata, ctcf = read_meme(base.motifs_meme)
    composite = Motif("COMPOSITE", "GATA_CTCF",
                      np.concatenate([gata.probabilities, np.full((4, 3), 0.25), ctcf.probabilities], axis=1))
    write_meme([composite], tmp_path / "composite.meme")
    settings = dataclasses.replace(TWO_MOTIF_SETTINGS, n_positive_regions=400,
                                   motifs=("MA0035", "MA0139", str(tmp_path / "composite.meme")))
    genome = simulate_genome(tmp_path / "genome", settings)
    path = write_planted_contributions(genome, tmp_path / "contrib.h5",
                                       {"mixed": {"GATA1": 0.5, "CTCF": 0.5, "GATA_CTCF": 0.5}})
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.discovery"):
        result = discover(read_contributions(path), "mixed", min_strength=0.0, seed=3)
    assert "dropped: a composite of" in caplog.text
    on_site = {name: [overlap_fraction(result.motif_seqlets[result.motif_seqlets["motif"] == motif.name],
                                       truth[truth["motif_name"] == name]) for motif in result.motifs]
               for name in ("GATA1", "CTCF", "GATA_CTCF")}
    assert max(on_site["GATA1"]) > 0.9 and max(on_site["CTCF"]) > 0.9
    assert max(on_site["GATA_CTCF"]) < 0.5


def test_a_motifs_weak_seqlets_are_dropped_and_its_matrices_rebuilt(tmp_path, caplog):
    # Besides its planted CTCF sites the task responds weakly (a sixteenth to a third as much) to further CTCF
    # sites, as a model does to partial matches in long regions: those weak seqlets join the CTCF pattern
    # unless the motif keeps only seqlets contributing at least half as much as its median seqlet.
    from motif_contributions import TWO_MOTIF_SETTINGS, planted_contributions

    genome = simulate_genome(tmp_path, TWO_MOTIF_SETTINGS)
    regions, onehot, hypothetical = planted_contributions(genome, {"CTCF": {"CTCF": 0.5}}, noise=0.01)
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    ctcf = truth[truth["motif_name"] == "CTCF"]
    motif = next(motif for motif in read_meme(genome.motifs_meme) if motif.name == "CTCF")
    columns = np.maximum(motif.log_odds(), -2.0)
    width = columns.shape[1]
    rng = np.random.default_rng(0)
    onehot, hypothetical = onehot.copy(), hypothetical[:, 0].copy()
    starts = regions["start"].to_numpy()
    occupied = [set() for _ in range(len(regions))]
    row_of = dict(zip(regions["name"], range(len(regions))))
    for site in truth.itertuples():
        occupied[row_of[site.region]].update(range(site.start - starts[row_of[site.region]] - width,
                                                   site.end - starts[row_of[site.region]] + 1))
    decoys = []
    for row in rng.choice(len(regions), size=len(regions) // 2, replace=False):
        free = [offset for offset in range(10, onehot.shape[2] - width - 10) if offset not in occupied[row]]
        if free:
            offset = int(rng.choice(free))
            bases = [rng.choice(4, p=column / column.sum()) for column in motif.probabilities.T]
            onehot[row, :, offset : offset + width] = np.eye(4, dtype=np.float32)[:, bases]
            hypothetical[row, :, offset : offset + width] += rng.uniform(0.03, 0.15) * columns
            decoys.append((regions["chrom"].iloc[row], starts[row] + offset, starts[row] + offset + width))
    decoy_table = pd.DataFrame(decoys, columns=["chrom", "start", "end"])

    def run(**settings):
        return discover_motifs(onehot, hypothetical, regions, "CTCF", 0, DiscoverySettings(threads=2, **settings))

    every = run(min_seqlet_share=0.0)
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.discovery"):
        typical = run()
    for result, on_decoys in ((every, 0.15), (typical, None)):
        found = result.motifs[0]
        seqlets = result.motif_seqlets[result.motif_seqlets["motif"] == found.name]
        pattern = result.patterns["pos"][0]
        assert found.n_seqlets == len(seqlets) == len(pattern.seqlets)
        if pattern.subclusters is not None:
            assert len(pattern.subclusters) == len(pattern.seqlets)
            assert sum(len(sub.seqlets) for sub in pattern.subcluster_to_subpattern.values()) == len(pattern.seqlets)
        # The motif's matrices are the means over exactly its seqlets.
        np.testing.assert_allclose(found.cwm, np.mean([s.contrib_scores for s in pattern.seqlets], axis=0).T,
                                   rtol=1e-5, atol=1e-6)
        if on_decoys is not None:
            assert overlap_fraction(seqlets, decoy_table) > on_decoys
    kept = typical.motif_seqlets[typical.motif_seqlets["motif"] == typical.motifs[0].name]
    assert overlap_fraction(kept, decoy_table) < 0.02
    assert overlap_fraction(kept, ctcf) > 0.95
    assert "seqlets dropped: their cores contribute under 0.5 of the median seqlet's" in caplog.text
    with pytest.raises(MotifError, match="min_seqlet_share"):
        DiscoverySettings(min_seqlet_share=1.0)


def test_a_pattern_left_with_fewer_seqlets_than_a_motif_needs_is_dropped(tmp_path, caplog):
    # Two motifs planted in 70 regions: tfmodisco-lite finds each from 35-42 seqlets. Keeping only the
    # seqlets at least 0.99 of the median leaves one of them under the 20 seqlets tfmodisco-lite itself
    # asks of a pattern, and such a remnant is no motif: it is dropped, and the log says so.
    from motif_contributions import TWO_MOTIF_SETTINGS

    genome = simulate_genome(tmp_path / "genome", dataclasses.replace(TWO_MOTIF_SETTINGS, n_positive_regions=70))
    info = read_contributions(write_planted_contributions(genome, tmp_path / "contrib.h5",
                                                          {"A": {"GATA1": 0.5, "CTCF": 0.5}}))
    onehot, hypothetical = info.read_window(0, 0, info.length)

    def run(share):
        settings = DiscoverySettings(threads=2, min_seqlets=10, min_seqlet_share=share, seed=0)
        return discover_motifs(onehot, hypothetical, info.regions, "A", 0, settings)

    every = run(0.0)
    assert len(every.motifs) == 2 and all(motif.n_seqlets >= MIN_MOTIF_SEQLETS for motif in every.motifs)
    with caplog.at_level(logging.INFO, logger="genomatt.motifs.discovery"):
        strict = run(0.99)
    assert len(strict.motifs) == 1 and strict.motifs[0].n_seqlets >= MIN_MOTIF_SEQLETS
    assert f"seqlets left, fewer than the {MIN_MOTIF_SEQLETS} a motif needs" in caplog.text
    assert set(strict.motif_seqlets["motif"]) == {strict.motifs[0].name}
