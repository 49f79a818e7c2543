import numpy as np
import pandas as pd
import pytest

from genomatt.errors import MotifError
from genomatt.motifs.discovery import DiscoveredMotif, site_probabilities
from genomatt.motifs.formats import Motif, reverse_complement_matrix, write_meme
from genomatt.motifs.jaspar import fetch_jaspar
from genomatt.motifs.matching import (
    MATCH_COLUMNS,
    compare_motifs,
    load_database,
    match_motifs,
    write_matches_tsv,
)
from genomatt.motifs.trimming import trim_bounds


@pytest.fixture(scope="module")
def jaspar():
    return load_database()


def planted_motif(matrix_id: str, reverse: bool, rng: np.random.Generator) -> DiscoveredMotif:
    """A motif as discovery would report it: base frequencies of 200 sampled instances of a JASPAR matrix
    between 8 background columns on each side, CWM = frequency x information content."""
    probabilities = fetch_jaspar(matrix_id).probabilities
    counts = np.stack([rng.multinomial(200, column) for column in probabilities.T], axis=1)
    background = rng.multinomial(200, [0.29, 0.21, 0.21, 0.29], size=(8,)).T
    pwm = np.concatenate([background, counts, background[:, ::-1]], axis=1) / 200
    if reverse:
        pwm = reverse_complement_matrix(pwm)
    information = 2 + (pwm * np.log2(np.maximum(pwm, 1e-9))).sum(axis=0)
    cwm = (pwm * information).astype(np.float32)
    start, end = trim_bounds(cwm)
    return DiscoveredMotif(f"task.pos.{matrix_id}", "task", "pos", cwm, cwm, pwm.astype(np.float32), 200, start, end)


def test_planted_pwm_derived_motifs_match_their_jaspar_matrix(jaspar):
    rng = np.random.default_rng(0)
    planted = {"MA0035": False, "MA0139": True, "MA0080": False, "MA0466": True}
    motifs = [planted_motif(matrix_id, reverse, rng) for matrix_id, reverse in planted.items()]
    assert all(motif.trim_end - motif.trim_start < motif.width for motif in motifs)
    match_motifs(motifs, jaspar, top=3, threads=2)
    for matrix_id, motif in zip(planted, motifs):
        best = motif.matches[0]
        assert best["id"].split(".")[0] == matrix_id
        assert best["q"] < 0.05 and best["p"] <= best["q"]
        assert len(motif.matches) == 3 and [m["p"] for m in motif.matches] == sorted(m["p"] for m in motif.matches)


@pytest.mark.parametrize(("matrix_id", "core_start"), [("MA0139", 16), ("MA0080", 12), ("MA0466", 11)])
def test_motif_whose_contribution_sits_on_a_few_core_bases_matches_by_its_flanks(jaspar, matrix_id, core_start):
    # Models often put most of a motif's contribution on a few bases; the 0.3 core (4 bp here) matches
    # weakly (q >= 1e-5), while the flanks the model still uses (20% of the largest column) identify it.
    motif = planted_motif(matrix_id, False, np.random.default_rng(3))
    emphasis = np.full(motif.width, 0.2, dtype=np.float32)
    emphasis[:8] = emphasis[-8:] = 0.01
    emphasis[core_start : core_start + 4] = 1.0
    motif.cwm = motif.cwm * emphasis
    motif.trim_start, motif.trim_end = trim_bounds(motif.cwm)
    assert motif.trim_end - motif.trim_start == 4
    match_motifs([motif], jaspar, top=3)
    # Its own matrix, or first a paralog at the same strength (CEBPE before CEBPB, q 2.9e-8 and 5.4e-8).
    own = [match for match in motif.matches if match["id"].split(".")[0] == matrix_id]
    assert own and own[0]["q"] < 1e-7 and own[0]["q"] < 10 * motif.matches[0]["q"]
    assert motif.trimmed_motif().probabilities.shape[1] >= 9


@pytest.mark.parametrize("matrix_id", ["MA0035", "MA0148", "MA0114", "MA0060"])
def test_consensus_seqlets_match_their_matrix_better_with_square_root_pseudocounts(jaspar, matrix_id):
    # A sharply learned motif's seqlets share its consensus: base frequencies of 0 and 1. Taken as they are,
    # they match their own matrix weakly (GATA1 q 0.033) or a paralog first (HNF4A -> HNF4G).
    consensus = np.eye(4)[fetch_jaspar(matrix_id).probabilities.argmax(axis=0)].T
    cwm = consensus.astype(np.float32)
    motif = DiscoveredMotif("task.pos.0", "task", "pos", cwm, cwm, cwm, 200, 0, cwm.shape[1])
    raw = {match["id"].split(".")[0]: match for match in compare_motifs([consensus], jaspar, top=len(jaspar))[0]}
    match_motifs([motif], jaspar, top=1)
    best = motif.matches[0]
    assert best["id"].split(".")[0] == matrix_id
    assert best["q"] < raw[matrix_id]["q"] and best["p"] < raw[matrix_id]["p"]


def test_site_probabilities_add_square_root_pseudocounts():
    frequencies = np.array([[1.0, 0.5], [0.0, 0.5], [0.0, 0.0], [0.0, 0.0]])
    smoothed = site_probabilities(frequencies, 100)
    np.testing.assert_allclose(smoothed[:, 0], [102.5 / 110, 2.5 / 110, 2.5 / 110, 2.5 / 110])
    np.testing.assert_allclose(smoothed[:, 1], [52.5 / 110, 52.5 / 110, 2.5 / 110, 2.5 / 110])
    np.testing.assert_allclose(smoothed.sum(axis=0), 1.0)
    np.testing.assert_array_equal(site_probabilities(frequencies, 0), frequencies)
    # More sites, less smoothing: the pseudocount's share sqrt(N) / (N + sqrt(N)) falls with N.
    assert site_probabilities(frequencies, 10_000)[1, 0] < smoothed[1, 0]


def test_user_meme_file_as_database(tmp_path):
    rng = np.random.default_rng(2)
    motifs = [Motif(f"U{i}", f"user{i}", rng.dirichlet(np.full(4, 0.3), size=8).T) for i in range(30)]
    database = load_database(write_meme(motifs, tmp_path / "user.meme"))
    assert [motif.id for motif in database] == [motif.id for motif in motifs]
    matches = compare_motifs([motifs[7].probabilities[:, 1:7]], database, top=2)
    assert matches[0][0]["id"] == "U7" and matches[0][0]["name"] == "user7"


def test_a_small_database_is_one_logged_warning(caplog, recwarn):
    rng = np.random.default_rng(3)
    motifs = [Motif(f"U{i}", f"user{i}", rng.dirichlet(np.full(4, 0.3), size=8).T) for i in range(5)]
    compare_motifs([motifs[2].probabilities], motifs)
    assert "matching against 5 known motifs: TOMTOM's p-values" in caplog.text
    assert not [warning for warning in recwarn if "tomtom" in str(warning.message)]


def test_matching_rejects_bad_requests(jaspar):
    assert compare_motifs([], jaspar) == []
    with pytest.raises(MotifError, match="at least 1"):
        compare_motifs([np.full((4, 5), 0.25)], jaspar, top=0)
    with pytest.raises(MotifError, match="empty"):
        compare_motifs([np.full((4, 5), 0.25)], [])


@pytest.mark.parametrize("query, message", [
    (np.full((6, 4), 0.25), r"queries\[1\]: expected a \(4, W\) matrix .* got shape \(6, 4\) .*transpose it"),
    (np.full((4, 6), 25.0), r"queries\[1\]: column 1 sums to 100, expected probabilities"),
    (np.full((4, 6), 0.25) - np.eye(4, 6) * 0.5, r"queries\[1\]: matrix values must be finite and non-negative"),
    (np.full((4, 6), np.nan), r"queries\[1\]: matrix values must be finite"),
    (np.full((4, 0), 0.25), r"queries\[1\]: expected a \(4, W\) matrix .*with W >= 1, got shape \(4, 0\)"),
    (np.full((2, 4, 6), 0.25), r"queries\[1\]: expected a \(4, W\) matrix .* got shape \(2, 4, 6\)"),
])
def test_queries_that_are_not_probability_matrices_are_refused_by_index(jaspar, query, message):
    with pytest.raises(MotifError, match=message):
        compare_motifs([np.full((4, 5), 0.25), query], jaspar)


def test_queries_as_one_array_and_known_motifs_are_checked(jaspar):
    stacked = np.stack([fetch_jaspar("MA0035").probabilities] * 2)
    assert [matches[0]["id"] for matches in compare_motifs(stacked, jaspar, top=1)] == ["MA0035.5"] * 2
    counts = Motif("C1", "counts", np.full((4, 5), 10.0))
    with pytest.raises(MotifError, match="known motif C1: column 1 sums to 40"):
        compare_motifs([np.full((4, 5), 0.25)], [counts])


def test_matches_tsv(tmp_path):
    motif = DiscoveredMotif("t.pos.0", "t", "pos", np.ones((4, 3)), np.ones((4, 3)), np.full((4, 3), 0.25), 42, 0, 3,
                            matches=[{"id": "MA1", "name": "A", "p": 1e-6, "q": 1e-4},
                                     {"id": "MA2", "name": "B", "p": 0.01, "q": 0.3}])
    path = tmp_path / "matches.tsv"
    write_matches_tsv([motif], path)
    table = pd.read_csv(path, sep="\t")
    assert list(table.columns) == list(MATCH_COLUMNS)
    assert table["rank"].tolist() == [1, 2] and table["match_id"].tolist() == ["MA1", "MA2"]
    write_matches_tsv([], path)
    assert pd.read_csv(path, sep="\t").empty
