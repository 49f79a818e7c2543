"""Tests of genomatt.shuffle: exact, uniform, reproducible k-let shuffles."""

import itertools
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import chisquare

from genomatt.errors import BedFormatError, ConfigError, SequenceError
from genomatt.genome import one_hot_encode
from genomatt.shuffle import (
    count_distinct_shuffles,
    dinucleotide_shuffle,
    kmer_shuffle,
    references_for_regions,
    region_seed,
)

ALPHABET = "ACGT"


def codes_of(X: np.ndarray) -> np.ndarray:
    """Letter codes (..., L) of one-hot (..., 4, L): 0..3 for ACGT, 4 for N."""
    return np.where(X.sum(axis=-2) == 0, 4, X.argmax(axis=-2))


def text_of(codes: np.ndarray) -> str:
    return "".join("ACGTN"[c] for c in codes)


def random_codes(rng: np.random.Generator, length: int, n_fraction: float) -> np.ndarray:
    """Random letter codes with runs of N covering about ``n_fraction`` of the sequence."""
    codes = rng.integers(0, 4, length)
    n_runs = rng.poisson(n_fraction * length / 5) if n_fraction else 0
    for start in rng.integers(0, length, n_runs):
        codes[start : start + rng.integers(1, 10)] = 4
    return codes


def one_hot_codes(codes: np.ndarray) -> np.ndarray:
    """(..., 4, L) float32 one-hot of letter codes (..., L), 4 for N."""
    return (codes[..., None, :] == np.arange(4)[:, None]).astype(np.float32)


def runs(codes: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each maximal run of ACGT in letter codes (L,)."""
    known = np.concatenate(([False], codes != 4, [False]))
    edges = np.flatnonzero(np.diff(known.astype(np.int8)))
    return list(zip(edges[::2], edges[1::2]))


def klet_counts(codes: np.ndarray, k: int) -> Counter:
    return Counter(tuple(codes[p : p + k]) for p in range(len(codes) - k + 1))


def assert_exact_shuffle(original: np.ndarray, shuffled: np.ndarray, k: int) -> None:
    """Ns in place; every ACGT run keeps its k-let counts and first k - 1 letters."""
    np.testing.assert_array_equal(shuffled == 4, original == 4)
    for start, end in runs(original):
        run, new = original[start:end], shuffled[start:end]
        np.testing.assert_array_equal(new[: k - 1], run[: k - 1])
        assert klet_counts(new, k) == klet_counts(run, k)


def enumerate_klet_shuffles(sequence: str, k: int) -> list[str]:
    """Every sequence with the Ns of ``sequence`` in place and, in each run between them, the
    run's k-let counts and first k - 1 letters."""
    if "N" in sequence:
        per_run = [enumerate_run_shuffles(run, k) if run else [""] for run in sequence.split("N")]
        return ["N".join(parts) for parts in itertools.product(*per_run)]
    return enumerate_run_shuffles(sequence, k)


def enumerate_run_shuffles(sequence: str, k: int) -> list[str]:
    """Every sequence with the k-let counts and first k - 1 letters of ``sequence`` (ACGT only)."""
    remaining = Counter(sequence[p : p + k] for p in range(len(sequence) - k + 1))
    found = []

    def extend(prefix: str) -> None:
        if len(prefix) == len(sequence):
            found.append(prefix)
            return
        context = prefix[len(prefix) - k + 1 :] if k > 1 else ""
        for base in ALPHABET:
            if remaining[context + base]:
                remaining[context + base] -= 1
                extend(prefix + base)
                remaining[context + base] += 1

    extend(sequence[: k - 1])
    return found


# --- exactness --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 3, 7, 64, 333, 1000, 5000])
def test_dinucleotide_shuffle_is_exact_with_ns(length):
    rng = np.random.default_rng(length)
    codes = np.stack([random_codes(rng, length, fraction) for fraction in (0, 0, 0.05, 0.3)])
    codes[-1, : length // 2] = 4  # an N prefix as well
    shuffled = codes_of(dinucleotide_shuffle(one_hot_codes(codes), n=6, random_state=length))
    assert shuffled.shape == (4, 6, length)
    for original, shuffles in zip(codes, shuffled):
        for shuffle in shuffles:
            assert_exact_shuffle(original, shuffle, k=2)
            # N is then a fixed separator, so even the dinucleotides that contain it are kept.
            assert klet_counts(shuffle, 2) == klet_counts(original, 2)


@pytest.mark.parametrize("k,n_letters", [(1, 4), (3, 4), (4, 4), (6, 4), (12, 2)])
def test_kmer_shuffle_is_exact(k, n_letters):
    # k=6 on 5 kb has over 256 distinct 5-mers (the wide vertex path); k=12 numbers vertices by
    # sorting instead of a lookup table, on two letters so that 11-mers repeat and the sequence
    # has other arrangements.
    rng = np.random.default_rng(k)
    codes = np.stack([random_codes(rng, 5000, fraction) for fraction in (0, 0.02)])
    codes[codes < 4] %= n_letters
    shuffled = codes_of(kmer_shuffle(one_hot_codes(codes), k=k, n=3, random_state=k))
    for original, shuffles in zip(codes, shuffled):
        for shuffle in shuffles:
            assert_exact_shuffle(original, shuffle, k=k)
        assert not (shuffles == original).all(), "a 5 kb sequence should not come back unchanged"


def test_exact_on_random_lengths():
    rng = np.random.default_rng(99)
    for length in rng.integers(1, 5001, 12):
        codes = random_codes(rng, int(length), 0.03)
        shuffled = codes_of(dinucleotide_shuffle(one_hot_codes(codes), n=2, random_state=1))
        for shuffle in shuffled:
            assert_exact_shuffle(codes, shuffle, k=2)


def test_k1_is_a_permutation_of_each_run():
    X = one_hot_encode("AACCGGTTNNACGTACGT")
    shuffled = codes_of(kmer_shuffle(X, k=1, n=50, random_state=0))
    original = codes_of(X)
    for shuffle in shuffled:
        assert_exact_shuffle(original, shuffle, k=1)
    assert len({text_of(s) for s in shuffled}) > 40


# --- uniformity -------------------------------------------------------------------------------

UNIFORMITY_CASES = [
    ("ACCCACGATGATG", 2, 27),
    ("GATTACAGATTACA", 2, 90),
    ("CACGTGACGTTA", 2, 24),
    ("AACAACAACCAACAACCAACCA", 3, 20),
    ("AACGT", 1, 60),
    ("AACAGAGTTNNTTCGAACTCNA", 2, 6 * 4),
]


@pytest.mark.parametrize("sequence,k,expected", UNIFORMITY_CASES)
def test_shuffles_are_uniform(sequence, k, expected):
    every = enumerate_klet_shuffles(sequence, k)
    assert len(every) == len(set(every)) == expected
    draws = 150 * expected
    shuffled = codes_of(kmer_shuffle(one_hot_encode(sequence), k=k, n=draws, random_state=2024))
    seen = Counter(text_of(s) for s in shuffled)
    assert set(seen) == set(every), "every shuffle is a valid one and every valid one is reached"
    observed = [seen[s] for s in every]
    assert chisquare(observed).pvalue > 0.01


def test_tangermeme_shuffle_is_not_uniform():
    """Documents why we have our own: tangermeme fixes each letter's last successor."""
    from tangermeme.ersatz import dinucleotide_shuffle as tangermeme_shuffle

    sequence = "ACCCACGATGATG"
    X = torch.from_numpy(one_hot_encode(sequence))[None]
    shuffled = codes_of(tangermeme_shuffle(X, n=5000, random_state=0)[0].numpy())
    reached = {text_of(s) for s in shuffled}
    assert reached < set(enumerate_klet_shuffles(sequence, 2))
    assert len(reached) == 9


# --- counting and degenerate inputs -------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
def test_count_distinct_shuffles_matches_enumeration(k):
    rng = np.random.default_rng(k)
    for _ in range(30):
        sequence = "".join(rng.choice(list(ALPHABET), size=int(rng.integers(1, 11))))
        counted = count_distinct_shuffles(one_hot_encode(sequence), k=k)
        assert counted == len(enumerate_klet_shuffles(sequence, k)), sequence


def test_count_distinct_shuffles_multiplies_over_runs():
    assert count_distinct_shuffles(one_hot_encode("ACCCACGATGATGNNACCCACGATGATG")) == 27 * 27
    counts = count_distinct_shuffles(one_hot_encode(["ACCCACGATGATG", "AAAAAAAAAAAAA"]))
    assert counts.shape == (2,) and list(counts) == [27, 1]


@pytest.mark.parametrize(
    "sequence", ["AAAA", "ACACACA", "ACGT", "A", "NNNN", "ACNNGTNA", "ACGTACGTAC"]
)
def test_degenerate_sequences_return_copies(sequence):
    X = one_hot_encode(sequence)
    assert count_distinct_shuffles(X) == 1
    shuffled = dinucleotide_shuffle(X, n=5, random_state=0)
    np.testing.assert_array_equal(shuffled, np.broadcast_to(X, (5, *X.shape)))


def test_empty_inputs():
    assert dinucleotide_shuffle(np.zeros((3, 4, 0)), n=2).shape == (3, 2, 4, 0)
    assert dinucleotide_shuffle(np.zeros((0, 4, 10)), n=2).shape == (0, 2, 4, 10)


# --- types, shapes and random state -----------------------------------------------------------


def test_shapes_dtypes_and_tensor_round_trip():
    X = one_hot_encode("ACCCACGATGATG")
    single = dinucleotide_shuffle(X, n=4, random_state=1)
    assert single.shape == (4, 4, 13) and single.dtype == np.float32
    batch = dinucleotide_shuffle(X[None], n=4, random_state=1)
    np.testing.assert_array_equal(batch[0], single)

    tensor = dinucleotide_shuffle(torch.from_numpy(X[None]), n=4, random_state=1)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor.numpy()[0], single)

    for dtype in (np.bool_, np.int8, np.float64):
        same = dinucleotide_shuffle(X.astype(dtype), n=4, random_state=1)
        np.testing.assert_array_equal(same, single)


def test_random_state_kinds():
    X = one_hot_codes(np.random.default_rng(0).integers(0, 4, (3, 200)))
    same = dinucleotide_shuffle(X, n=3, random_state=7)
    np.testing.assert_array_equal(same, dinucleotide_shuffle(X, n=3, random_state=7))
    from_generator = dinucleotide_shuffle(X, n=3, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(same, from_generator)
    assert not np.array_equal(same, dinucleotide_shuffle(X, n=3, random_state=8))
    assert dinucleotide_shuffle(X, n=3).shape == (3, 3, 4, 200)


def test_more_shuffles_extend_the_first_ones():
    X = one_hot_codes(np.random.default_rng(0).integers(0, 4, (2, 300)))
    few = kmer_shuffle(X, k=2, n=3, random_state=5)
    many = kmer_shuffle(X, k=2, n=20, random_state=5)
    np.testing.assert_array_equal(many[:, :3], few)


# --- reproducibility by region ------------------------------------------------------------------


def make_regions(n_regions: int, length: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, 10_000_000, n_regions)
    regions = pd.DataFrame(
        {
            "chrom": rng.choice(["chr1", "chr2", "chrX"], n_regions),
            "start": starts,
            "end": starts + length,
            "name": [f"peak{i}" for i in range(n_regions)],
        }
    )
    codes = np.stack([random_codes(rng, length, 0.02) for _ in range(n_regions)])
    return regions, one_hot_codes(codes)


def test_references_do_not_depend_on_order_or_shard():
    regions, X = make_regions(30, 250, seed=3)
    whole = references_for_regions(regions, X, n=8, seed=11)
    assert whole.shape == (30, 8, 4, 250) and whole.dtype == np.float32

    order = np.random.default_rng(0).permutation(len(regions))
    pieces = []
    for shard in np.array_split(order, 4):
        pieces.append(references_for_regions(regions.iloc[shard], X[shard], n=8, seed=11))
    resharded = np.empty_like(whole)
    resharded[order] = np.concatenate(pieces)
    np.testing.assert_array_equal(resharded, whole)

    for original, references in zip(codes_of(X), codes_of(whole)):
        for reference in references:
            assert_exact_shuffle(original, reference, k=2)


def test_references_depend_on_seed_and_coordinates_and_extend_with_n():
    regions, X = make_regions(5, 200, seed=4)
    base = references_for_regions(regions, X, n=6, seed=0)
    assert not np.array_equal(base, references_for_regions(regions, X, n=6, seed=1))
    moved = regions.assign(start=regions["start"] + 1)
    assert not np.array_equal(base, references_for_regions(moved, X, n=6, seed=0))
    np.testing.assert_array_equal(references_for_regions(regions, X, n=2, seed=0), base[:, :2])
    tensor = references_for_regions(regions, torch.from_numpy(X), n=6, seed=0)
    np.testing.assert_array_equal(tensor.numpy(), base)


def test_region_seed_is_stable():
    # A fixed value: references must not change across processes, platforms or releases
    # without notice.
    assert region_seed(0, "chr1", 1000, 2000) == region_seed(0, "chr1", 1000, 2000)
    assert region_seed(0, "chr1", 1000, 2000) != region_seed(1, "chr1", 1000, 2000)
    assert region_seed(0, "chr1", 1000, 2000) == 8267610032812795295


# --- invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5), (4,), (2, 3, 4, 10), (2, 5, 10)])
def test_wrong_shape_is_rejected(shape):
    expected = r"expected one-hot of shape \(N, 4, L\) or \(4, L\), got"
    with pytest.raises(SequenceError, match=expected):
        dinucleotide_shuffle(np.zeros(shape))


def test_non_one_hot_values_are_rejected():
    X = one_hot_codes(np.zeros((2, 10), dtype=int))
    half = X.copy()
    half[1, 2, 7] = 0.5
    with pytest.raises(SequenceError, match="value 0.5 at sequence 1, channel 2, position 7"):
        dinucleotide_shuffle(half)
    two = X.copy()
    two[1, 3, 4] = 1
    with pytest.raises(SequenceError, match="sequence 1, position 4 has more than one channel"):
        dinucleotide_shuffle(two)
    nan = X.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(SequenceError, match="value nan"):
        count_distinct_shuffles(nan)
    with pytest.raises(SequenceError, match="numeric or boolean"):
        dinucleotide_shuffle(np.full((4, 3), "A"))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"k": 0}, "k must be between 1 and 32, got 0"),
        ({"k": -1}, "k must be between 1 and 32"),
        ({"k": 33}, "k must be between 1 and 32"),
        ({"k": 2.0}, "k must be an integer"),
        ({"n": 0}, r"n \(shuffles per sequence\) must be at least 1, got 0"),
        ({"n": True}, "n must be an integer"),
    ],
)
def test_bad_k_and_n_are_rejected(kwargs, message):
    with pytest.raises(SequenceError, match=message):
        kmer_shuffle(one_hot_encode("ACGT"), **kwargs)


@pytest.mark.parametrize("random_state", [-1, "seed", 1.5, np.random.RandomState(0)])
def test_bad_random_state_is_rejected(random_state):
    with pytest.raises(ConfigError, match="random_state must be"):
        dinucleotide_shuffle(one_hot_encode("ACGT"), random_state=random_state)


def test_bad_regions_are_rejected():
    regions, X = make_regions(3, 20, seed=0)
    with pytest.raises(BedFormatError, match="lacks column"):
        references_for_regions(regions.drop(columns="end"), X)
    with pytest.raises(SequenceError, match="regions has 2 rows but X has 3 sequences"):
        references_for_regions(regions.iloc[:2], X)
    with pytest.raises(BedFormatError, match=r"regions start must be whole numbers \(0-based coordinates\); row 1 "
                                             r"has 0.5"):
        references_for_regions(regions.assign(start=[0, 0.5, 10]), X)
    with pytest.raises(SequenceError, match=r"expected one-hot of shape \(N, 4, L\)"):
        references_for_regions(regions, X[0])
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        references_for_regions(regions, X, seed=-3)
