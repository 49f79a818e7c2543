"""Exact, uniform and reproducible k-let shuffles of one-hot DNA.

A k-let shuffle of a sequence is another sequence with exactly the same count of every k-let
(k-letter word) and the same first k - 1 letters. Such sequences are the Eulerian trails of the
graph whose vertices are the (k-1)-mers of the sequence and whose edges are its k-lets. We draw
them uniformly with the Altschul–Erickson construction:

1. draw the last exit of every vertex but the final one as a uniformly random spanning
   arborescence directed toward the final vertex (Wilson's loop-erased random walk, which over
   the multigraph weights a tree by the multiplicities of its edges, as uniformity requires);
2. put every vertex's other exits in uniformly random order (Fisher-Yates), its last exit last;
3. walk from the first vertex, leaving each vertex by its next exit in that order.

Every sequence with the same k-let counts and first k - 1 letters is then equally likely. The
field's usual shuffle (deeplift's ``dinuc_shuffle``, tangermeme's ``dinucleotide_shuffle``)
fixes each letter's last successor and so reaches only part of these sequences.

Unknown bases (all-zero columns, ``N``) never move: each maximal run of ACGT between them is
shuffled on its own. This keeps every k-let exact, including those that contain an ``N``, since a
shuffle keeps the first and last k - 1 letters of each run. A run of at most k letters has a single
arrangement and is copied. :func:`count_distinct_shuffles` tells how many distinct
shuffles a sequence has; a count of 1 means its shuffles are all copies of it.

The hot path is compiled with numba and runs on one thread. Each sequence (and, within it, each
run) draws from its own xoshiro256** stream, seeded from one 64-bit seed per sequence, so its
shuffles do not depend on the other sequences in the call, and asking for more shuffles extends
the list without changing the first ones.
"""

from __future__ import annotations

import hashlib
import math
import sys
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from genomatt.errors import BedFormatError, ConfigError, SequenceError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_K",
    "count_distinct_shuffles",
    "dinucleotide_shuffle",
    "kmer_shuffle",
    "references_for_regions",
    "region_seed",
]

# A (k-1)-mer is packed two bits a letter into an int64.
MAX_K = 32

# The code of an unknown base (an all-zero column) in the internal letter codes 0..3 = A, C, G, T.
_UNKNOWN = 4

# Up to this k, the 4**(k-1) possible (k-1)-mers are numbered through a lookup table; above it,
# by sorting the (k-1)-mers of each run.
_TABLE_MAX_K = 9

_MASK32 = np.uint64(0xFFFFFFFF)
_TWO32 = np.uint64(1 << 32)
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)


# ---------------------------------------------------------------------------------------------
# Random numbers: splitmix64 to seed, xoshiro256** to draw (both by Blackman and Vigna). The
# xoshiro state is a tuple of four uint64 passed in and returned, so it stays in registers.
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _splitmix64(x: np.uint64) -> tuple[np.uint64, np.uint64]:
    """Advance splitmix64 state ``x``; return the new state and a well-mixed 64-bit output."""
    x = x + _GOLDEN_GAMMA
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def _seed_stream(seed: np.uint64, stream: int) -> tuple:
    """The xoshiro256** state of stream number ``stream`` of a 64-bit ``seed``.

    Its words are consecutive splitmix64 outputs, which are never all zero, the one state
    xoshiro cannot leave.
    """
    _, x = _splitmix64(seed + np.uint64(stream) * _GOLDEN_GAMMA)
    x, s0 = _splitmix64(x)
    x, s1 = _splitmix64(x)
    x, s2 = _splitmix64(x)
    x, s3 = _splitmix64(x)
    return (s0, s1, s2, s3)


@numba.njit(cache=True)
def _rotl(x: np.uint64, r: int) -> np.uint64:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@numba.njit(cache=True)
def _next_u64(state: tuple) -> tuple:
    """Draw 64 random bits from xoshiro256** ``state``; return them and the next state."""
    s0, s1, s2, s3 = state
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, (s0, s1, s2, s3)


@numba.njit(cache=True)
def _uniform_below(state: tuple, bound: int) -> tuple:
    """Draw an integer uniformly from [0, bound), 1 <= bound < 2**32, without bias (Lemire).

    Returns the integer and the next state.
    """
    b = np.uint64(bound)
    bits, state = _next_u64(state)
    product = (bits >> np.uint64(32)) * b
    if (product & _MASK32) < b:
        # Rejecting the few low products below 2**32 mod bound makes every value equally likely.
        threshold = (_TWO32 - b) % b
        while (product & _MASK32) < threshold:
            bits, state = _next_u64(state)
            product = (bits >> np.uint64(32)) * b
    return np.int64(product >> np.uint64(32)), state


# ---------------------------------------------------------------------------------------------
# The graph of one run: vertices are its (k-1)-mers, edges its k-lets, each edge labelled by the
# letter it appends. A vertex has at most four kinds of exit, one per letter.
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _number_vertices(letters: np.ndarray, k: int, table: np.ndarray, ids: np.ndarray) -> int:
    """Number the distinct (k-1)-mers of ``letters`` (m,) 0..V-1 into ``ids`` (m - k + 2,).

    ``ids[p]`` is the vertex of the (k-1)-mer starting at p. ``table`` is a lookup table of
    4**(k-1) entries, all -1, which is left as it was found; it is empty when k is too large
    for one, and the (k-1)-mers are then sorted instead. Returns V.
    """
    n_on_path = ids.shape[0]
    codes = np.empty(n_on_path, dtype=np.int64)
    # Two bits a letter; rolling the code along the run keeps its last k-1 letters.
    keep = (np.int64(1) << np.int64(2 * (k - 1))) - 1
    code = np.int64(0)
    for p in range(k - 1):
        code = (code << 2) | letters[p]
    codes[0] = code
    for p in range(1, n_on_path):
        code = ((code << 2) | letters[p + k - 2]) & keep
        codes[p] = code

    n_vertices = 0
    if table.shape[0] > 0:
        for p in range(n_on_path):
            if table[codes[p]] < 0:
                table[codes[p]] = n_vertices
                n_vertices += 1
            ids[p] = table[codes[p]]
        for p in range(n_on_path):
            table[codes[p]] = -1
        return n_vertices

    order = np.argsort(codes)
    for rank in range(n_on_path):
        if rank > 0 and codes[order[rank]] != codes[order[rank - 1]]:
            n_vertices += 1
        ids[order[rank]] = n_vertices
    return n_vertices + 1


@numba.njit(cache=True)
def _draw_last_exits(
    state: tuple,
    counts: np.ndarray,
    out_degree: np.ndarray,
    successor: np.ndarray,
    final: int,
    in_tree: np.ndarray,
    last_exit: np.ndarray,
) -> tuple:
    """Draw each vertex's last exit: a uniform arborescence directed to ``final``.

    Wilson's algorithm: from each vertex not yet in the tree, walk at random, leaving a vertex by
    each edge with equal probability, until the tree is reached; only the latest exit taken from
    each vertex is kept, which erases the loops, and the loop-erased path joins the tree.
    ``last_exit[v]`` receives the vertex the last exit of v leads to. Returns the next state.
    """
    n_vertices = in_tree.shape[0]
    in_tree[:] = False
    in_tree[final] = True
    for start in range(n_vertices):
        vertex = start
        while not in_tree[vertex]:
            r, state = _uniform_below(state, out_degree[vertex])
            letter = 0
            while r >= counts[vertex, letter]:
                r -= counts[vertex, letter]
                letter += 1
            last_exit[vertex] = successor[vertex, letter]
            vertex = last_exit[vertex]
        vertex = start
        while not in_tree[vertex]:
            in_tree[vertex] = True
            vertex = last_exit[vertex]
    return state


@numba.njit(cache=True)
def _fisher_yates(state: tuple, values: np.ndarray, begin: int, end: int) -> tuple:
    """Put ``values[begin:end]`` in uniformly random order, in place; return the next state."""
    for q in range(end - 1, begin, -1):
        r, state = _uniform_below(state, q - begin + 1)
        swap = values[begin + r]
        values[begin + r] = values[q]
        values[q] = swap
    return state


@numba.njit(cache=True)
def _order_exits(
    state: tuple, exits: np.ndarray, first_exit: np.ndarray, last_exit: np.ndarray, final: int
) -> tuple:
    """Put each vertex's last exit last and its other exits in uniformly random order.

    ``exits`` (E,) holds the targets of the exits of vertex v in
    ``exits[first_exit[v]:first_exit[v+1]]``, in any order (Fisher-Yates makes the result
    uniform whatever it starts from). Returns the next random state.
    """
    for vertex in range(first_exit.shape[0] - 1):
        begin, end = first_exit[vertex], first_exit[vertex + 1]
        if vertex != final:
            end -= 1
            q = begin
            while exits[q] != last_exit[vertex]:
                q += 1
            exits[q] = exits[end]
            exits[end] = last_exit[vertex]
        state = _fisher_yates(state, exits, begin, end)
    return state


@numba.njit(cache=True)
def _walk(
    exits: np.ndarray,
    first_exit: np.ndarray,
    vertex_letter: np.ndarray,
    first: int,
    cursor: np.ndarray,
    vertex: np.ndarray,
    out: np.ndarray,
) -> None:
    """Follow the ordered exits of several shuffles at once, writing their letters k-1 onwards.

    ``exits`` (W, E) holds the ordered exits of shuffle w in row w; ``out`` (w, m), w <= W,
    receives the last letter of each vertex reached. The walks advance in lockstep because each
    is a chain of dependent memory reads: interleaving independent chains lets the processor
    overlap them. ``cursor`` (W, V) and ``vertex`` (W,) are work space.
    """
    n_walks, length = out.shape
    n_steps = exits.shape[1]
    for w in range(n_walks):
        cursor[w, :] = first_exit[:-1]
        vertex[w] = first
    for p in range(length - n_steps, length):
        for w in range(n_walks):
            at = vertex[w]
            target = exits[w, cursor[w, at]]
            cursor[w, at] += 1
            out[w, p] = vertex_letter[target]
            vertex[w] = target


# Shuffles walked together by _walk; eight hide most of the latency of a walk's memory reads.
_INTERLEAVED_WALKS = 8


@numba.njit(cache=True)
def _shuffle_graph(
    letters: np.ndarray,
    k: int,
    ids: np.ndarray,
    n_vertices: int,
    state: tuple,
    exits: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write ``out.shape[0]`` uniform k-let shuffles of a run of ``letters`` (m,) into ``out``.

    ``ids`` (m - k + 2,) are the vertices along the run (see :func:`_number_vertices`) and
    ``exits`` (W, m - k + 1) is work space whose integer type holds a vertex id; the smallest
    such type keeps the hot loops in the first-level cache.
    """
    n_edges = exits.shape[1]
    counts = np.zeros((n_vertices, 4), dtype=np.int64)
    successor = np.zeros((n_vertices, 4), dtype=exits.dtype)
    vertex_letter = np.empty(n_vertices, dtype=np.uint8)
    vertex_letter[ids[0]] = letters[k - 2]
    for p in range(n_edges):
        letter = letters[p + k - 1]
        counts[ids[p], letter] += 1
        successor[ids[p], letter] = ids[p + 1]
        vertex_letter[ids[p + 1]] = letter
    out_degree = counts.sum(axis=1)
    first_exit = np.zeros(n_vertices + 1, dtype=np.int64)
    first_exit[1:] = np.cumsum(out_degree)

    fill = first_exit[:-1].copy()
    for p in range(n_edges):
        exits[0, fill[ids[p]]] = ids[p + 1]
        fill[ids[p]] += 1
    width = exits.shape[0]
    for w in range(1, width):
        exits[w, :] = exits[0, :]

    first, final = ids[0], ids[n_edges]
    in_tree = np.empty(n_vertices, dtype=np.bool_)
    last_exit = np.empty(n_vertices, dtype=exits.dtype)
    cursor = np.empty((width, n_vertices), dtype=np.int64)
    vertex = np.empty(width, dtype=np.int64)
    n_shuffles = out.shape[0]
    for group in range(0, n_shuffles, width):
        size = min(width, n_shuffles - group)
        for w in range(size):
            state = _draw_last_exits(state, counts, out_degree, successor, final, in_tree,
                                     last_exit)
            state = _order_exits(state, exits[w], first_exit, last_exit, final)
        _walk(exits, first_exit, vertex_letter, first, cursor, vertex, out[group : group + size])


@numba.njit(cache=True)
def _shuffle_run(
    letters: np.ndarray, k: int, seed: np.uint64, stream: int, table: np.ndarray, out: np.ndarray
) -> None:
    """Write ``out.shape[0]`` uniform k-let shuffles of one run of ACGT ``letters`` (m,), m > k.

    ``out`` (n, m) already holds the run in every row; its first k - 1 letters stay. k >= 2.
    """
    n_edges = letters.shape[0] - k + 1
    ids = np.empty(n_edges + 1, dtype=np.int64)
    n_vertices = _number_vertices(letters, k, table, ids)
    state = _seed_stream(seed, stream)
    if n_vertices <= 256:
        exits8 = np.empty((_INTERLEAVED_WALKS, n_edges), dtype=np.uint8)
        _shuffle_graph(letters, k, ids, n_vertices, state, exits8, out)
    else:
        exits32 = np.empty((_INTERLEAVED_WALKS, n_edges), dtype=np.int32)
        _shuffle_graph(letters, k, ids, n_vertices, state, exits32, out)


@numba.njit(cache=True)
def _permute_run(letters: np.ndarray, seed: np.uint64, stream: int, out: np.ndarray) -> None:
    """Write ``out.shape[0]`` uniform permutations of a run of ``letters`` into ``out`` (n, m).

    ``out`` already holds the run in every row; each row is permuted in place.
    """
    state = _seed_stream(seed, stream)
    for i in range(out.shape[0]):
        state = _fisher_yates(state, out[i], 0, out.shape[1])


@numba.njit(cache=True)
def _shuffle_sequence(
    letters: np.ndarray, k: int, seed: np.uint64, table: np.ndarray, out: np.ndarray
) -> None:
    """Write into ``out`` (n, L) the letter codes of n shuffles of ``letters`` (L,).

    The r-th run of ACGT draws from stream r of ``seed``. Unknown bases and runs of at most k
    letters are copied.
    """
    length = letters.shape[0]
    out[:, :] = letters
    stream = 0
    start = 0
    while start < length:
        if letters[start] == _UNKNOWN:
            start += 1
            continue
        end = start
        while end < length and letters[end] != _UNKNOWN:
            end += 1
        if k == 1:
            _permute_run(letters[start:end], seed, stream, out[:, start:end])
        elif end - start > k:
            _shuffle_run(letters[start:end], k, seed, stream, table, out[:, start:end])
        stream += 1
        start = end


@numba.njit(cache=True)
def _fill_one_hot(codes: np.ndarray, out: np.ndarray) -> None:
    """Write into ``out`` (n, 4, L) the one-hot of letter ``codes`` (n, L); 4 (N) is zeros."""
    n_shuffles, length = codes.shape
    for i in range(n_shuffles):
        for channel in range(4):
            for p in range(length):
                out[i, channel, p] = 1.0 if codes[i, p] == channel else 0.0


@numba.njit(cache=True)
def _shuffle_batch(codes: np.ndarray, k: int, n: int, seeds: np.ndarray) -> np.ndarray:
    """One-hot (N, n, 4, L) float32: n shuffles of each sequence of letter ``codes`` (N, L).

    Sequence j draws from ``seeds[j]``. Each sequence is shuffled as letter codes into a small
    buffer, which is still in cache when it is written out as one-hot.
    """
    n_sequences, length = codes.shape
    # Allocated here rather than by numpy, which asks Linux for huge pages for large arrays: on a
    # busy machine, providing those made the call several times slower, and erratic.
    out = np.empty((n_sequences, n, 4, length), dtype=np.float32)
    n_possible = np.int64(1) << np.int64(2 * (k - 1)) if k <= _TABLE_MAX_K else np.int64(0)
    table = np.full(n_possible, -1, dtype=np.int64)
    shuffled = np.empty((n, length), dtype=np.uint8)
    for j in range(n_sequences):
        _shuffle_sequence(codes[j], k, seeds[j], table, shuffled)
        _fill_one_hot(shuffled, out[j])
    return out


# ---------------------------------------------------------------------------------------------
# Input checks and conversions.
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _letter_codes(X: np.ndarray) -> tuple[np.ndarray, bool]:
    """Letter codes (N, L) of one-hot ``X`` (N, 4, L), 4 for an all-zero column.

    Also returns whether ``X`` is one-hot (only 0 and 1, at most one 1 a column). The loop has
    no branch, so it vectorises; a fault is located afterwards by :func:`_one_hot_fault`.
    """
    n_sequences, _, length = X.shape
    codes = np.empty((n_sequences, length), dtype=np.uint8)
    one_hot = True
    for j in range(n_sequences):
        for p in range(length):
            a = np.float64(X[j, 0, p])
            c = np.float64(X[j, 1, p])
            g = np.float64(X[j, 2, p])
            t = np.float64(X[j, 3, p])
            ones = a + c + g + t
            # x * (x - 1) == 0 holds for x = 0 and x = 1 only (not for NaN or infinity).
            binary = (a * (a - 1) == 0) & (c * (c - 1) == 0) & (g * (g - 1) == 0)
            one_hot &= binary & (t * (t - 1) == 0) & (ones <= 1)
            codes[j, p] = np.uint8(_UNKNOWN - _UNKNOWN * ones + c + 2 * g + 3 * t)
    return codes, one_hot


def _one_hot_fault(X: np.ndarray) -> str:
    """Say where ``X`` (N, 4, L), known not to be one-hot, first breaks the rule."""
    not_binary = np.argwhere((X != 0) & (X != 1))
    if len(not_binary):
        sequence, channel, position = not_binary[0]
        return (
            f"X is not one-hot: value {X[sequence, channel, position]} at sequence {sequence}, "
            f"channel {channel}, position {position}; expected only 0 and 1"
        )
    sequence, position = np.argwhere(X.sum(axis=1) > 1)[0]
    return (
        f"X is not one-hot: sequence {sequence}, position {position} has more than one channel "
        "set to 1; expected at most one 1 per column (all zeros for N)"
    )


def as_numpy(values: Any) -> np.ndarray:
    """``values`` (a numpy array, a torch tensor on any device, nested lists) as a numpy array.

    torch is only looked for when already imported: otherwise ``values`` cannot be a tensor.
    """
    return values.detach().cpu().numpy() if _is_tensor(values) else np.asarray(values)


def _is_tensor(values: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(values, torch.Tensor)


def _as_numpy(X: Any) -> tuple[np.ndarray, bool]:
    """``X`` as a numpy array (:func:`as_numpy`), and whether it was a torch tensor."""
    return as_numpy(X), _is_tensor(X)


def _one_hot_codes(X: np.ndarray) -> np.ndarray:
    """Check that ``X`` (N, 4, L) is one-hot and return its letter codes (N, L)."""
    if X.dtype == np.bool_:
        X = X.view(np.uint8)
    if X.dtype == np.float16:  # numba has no half precision
        X = X.astype(np.float32)
    if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
        raise SequenceError(f"expected a numeric or boolean one-hot array, got dtype {X.dtype}")
    codes, one_hot = _letter_codes(X)
    if not one_hot:
        raise SequenceError(_one_hot_fault(X))
    return codes


def _batch_codes(X: Any) -> tuple[np.ndarray, bool, bool]:
    """Letter codes (N, L) of one-hot ``X`` (N, 4, L) or (4, L).

    Returns the codes, whether X was a single sequence, and whether it was a torch tensor.
    """
    array, is_tensor = _as_numpy(X)
    if array.ndim not in (2, 3) or array.shape[-2] != 4:
        raise SequenceError(
            f"expected one-hot of shape (N, 4, L) or (4, L), got {tuple(array.shape)}"
        )
    single = array.ndim == 2
    return _one_hot_codes(array[None] if single else array), single, is_tensor


def _check_k_and_n(k: Any, n: Any) -> None:
    """Raise SequenceError unless k is an integer in 1..MAX_K and n a positive integer."""
    for name, value in (("k", k), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise SequenceError(f"{name} must be an integer, got {value!r}")
    if not 1 <= k <= MAX_K:
        raise SequenceError(f"k must be between 1 and {MAX_K}, got {k}")
    if n < 1:
        raise SequenceError(f"n (shuffles per sequence) must be at least 1, got {n}")


def _seeds_from_random_state(random_state: Any, n_sequences: int) -> np.ndarray:
    """One 64-bit seed per sequence, drawn from ``random_state`` (int, Generator or None)."""
    if random_state is None or isinstance(random_state, (int, np.integer)):
        if isinstance(random_state, bool) or (random_state is not None and random_state < 0):
            raise ConfigError(
                "random_state must be a non-negative integer, a numpy Generator or None, "
                f"got {random_state!r}"
            )
        random_state = np.random.default_rng(random_state)
    if not isinstance(random_state, np.random.Generator):
        raise ConfigError(
            "random_state must be a non-negative integer, a numpy Generator or None, "
            f"got {type(random_state).__name__}"
        )
    return random_state.integers(0, np.iinfo(np.uint64).max, size=n_sequences,
                                 dtype=np.uint64, endpoint=True)


def _shaped_like_input(out: np.ndarray, single: bool, is_tensor: bool) -> Any:
    """``out`` (N, ...) as the caller gave X: without the batch axis for one sequence, as a tensor
    for a tensor."""
    if single:
        out = out[0]
    if is_tensor:
        return sys.modules["torch"].from_numpy(out)
    return out


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------


def kmer_shuffle(X: Any, k: int = 2, n: int = 20, random_state: Any = None) -> Any:
    """Shuffle one-hot sequences uniformly among those with the same k-let counts.

    Each shuffle has exactly the k-let counts of its sequence and the same first k - 1 letters;
    every such sequence is equally likely. Unknown bases (all-zero columns) stay in place and each
    run of ACGT between them is shuffled on its own. ``k=1`` is a uniform permutation of each run.

    Parameters
    ----------
    X : numpy.ndarray or torch.Tensor, shape (N, 4, L) or (4, L)
        One-hot sequences, channels A, C, G, T; values 0 and 1 only, at most one 1 per column.
    k : int, default 2
        Length of the words whose counts are kept, 1 to ``MAX_K`` (32).
    n : int, default 20
        Number of shuffles per sequence, at least 1.
    random_state : int, numpy.random.Generator or None
        Source of randomness. Sequence i draws from the i-th seed taken from it, so the result
        depends on each sequence's position in the batch; use :func:`references_for_regions`
        for references that depend only on a region's coordinates.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (N, n, 4, L) or (n, 4, L), float32
        The shuffles; a tensor (on the CPU) when ``X`` is one. A sequence with a single
        arrangement (see :func:`count_distinct_shuffles`) gets ``n`` copies of itself.

    Raises
    ------
    SequenceError
        If ``X`` has the wrong shape or is not one-hot, or ``k`` or ``n`` is out of range.
    ConfigError
        If ``random_state`` is not a non-negative int, a Generator or None.
    """
    _check_k_and_n(k, n)
    codes, single, is_tensor = _batch_codes(X)
    seeds = _seeds_from_random_state(random_state, codes.shape[0])
    return _shaped_like_input(_shuffle_batch(codes, int(k), int(n), seeds), single, is_tensor)


def dinucleotide_shuffle(X: Any, n: int = 20, random_state: Any = None) -> Any:
    """Shuffle one-hot sequences uniformly, keeping every dinucleotide count and the first letter.

    ``kmer_shuffle`` with ``k=2``; see it for the parameters. Returns (N, n, 4, L) float32, or
    (n, 4, L) for a single sequence (4, L).
    """
    return kmer_shuffle(X, k=2, n=n, random_state=random_state)


def region_seed(seed: int, chrom: str, start: int, end: int) -> int:
    """The 64-bit seed of a region's shuffles: a stable hash of ``(seed, chrom, start, end)``.

    BLAKE2b of the text ``"seed<TAB>chrom<TAB>start<TAB>end"``, so it is the same in every
    process, platform and Python version (unlike the salted built-in ``hash``).
    """
    key = f"{int(seed)}\t{chrom}\t{int(start)}\t{int(end)}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def _region_seeds(regions: pd.DataFrame, seed: int) -> np.ndarray:
    """The :func:`region_seed` of every row of ``regions``, (N,) uint64."""
    missing = [column for column in ("chrom", "start", "end") if column not in regions.columns]
    if missing:
        raise BedFormatError(
            f"regions lacks column(s) {', '.join(missing)}; expected chrom, start, end"
        )
    for column in ("start", "end"):
        try:
            values = np.asarray(regions[column], dtype=float)
        except (TypeError, ValueError):
            values = np.full(len(regions), np.nan)
        fractional = ~np.isfinite(values) | (values != np.round(values))
        if fractional.any():
            row = int(fractional.argmax())
            given = f"{values[row]:g}" if np.isfinite(values[row]) else repr(regions[column].iloc[row])
            raise BedFormatError(f"regions {column} must be whole numbers (0-based coordinates); row {row} has {given}")
    return np.array(
        [
            region_seed(seed, chrom, start, end)
            for chrom, start, end in zip(regions["chrom"], regions["start"], regions["end"])
        ],
        dtype=np.uint64,
    )


def references_for_regions(
    regions: pd.DataFrame, X: Any, n: int = 20, seed: int = 0, k: int = 2
) -> Any:
    """k-let-shuffled references of regions, reproducible from the regions' coordinates alone.

    Region i is shuffled from :func:`region_seed` ``(seed, chrom, start, end)`` of row i, so its
    references are bit-identical whatever the batch, shard or order it comes in, and the first m
    of its references are the same for any ``n >= m``.

    Parameters
    ----------
    regions : pandas.DataFrame
        One row per sequence of ``X``, with columns ``chrom``, ``start``, ``end`` (0-based,
        half-open); other columns are ignored.
    X : numpy.ndarray or torch.Tensor, shape (N, 4, L)
        One-hot sequences of the regions, in the order of the rows.
    n : int, default 20
        References per region.
    seed : int, default 0
        Non-negative run-wide seed.
    k : int, default 2
        Length of the words whose counts are kept.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (N, n, 4, L), float32
        The references, as :func:`kmer_shuffle` draws them.

    Raises
    ------
    BedFormatError
        If ``regions`` lacks a column.
    SequenceError
        If ``X`` is not (N, 4, L) one-hot with one sequence per row, or ``k`` or ``n`` is out of
        range.
    ConfigError
        If ``seed`` is not a non-negative integer.
    """
    _check_k_and_n(k, n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    array, is_tensor = _as_numpy(X)
    if array.ndim != 3 or array.shape[1] != 4:
        raise SequenceError(f"expected one-hot of shape (N, 4, L), got {tuple(array.shape)}")
    if len(regions) != array.shape[0]:
        raise SequenceError(
            f"regions has {len(regions)} rows but X has {array.shape[0]} sequences; "
            "expected one row per sequence"
        )
    seeds = _region_seeds(regions, seed)
    out = _shuffle_batch(_one_hot_codes(array), int(k), int(n), seeds)
    return _shaped_like_input(out, single=False, is_tensor=is_tensor)


# ---------------------------------------------------------------------------------------------
# Counting distinct shuffles.
# ---------------------------------------------------------------------------------------------


def _determinant(matrix: list[list[int]]) -> int:
    """Exact determinant of a square integer matrix (Bareiss' fraction-free elimination)."""
    a = [row[:] for row in matrix]
    size = len(a)
    sign, previous_pivot = 1, 1
    for col in range(size - 1):
        if a[col][col] == 0:
            swap = next((row for row in range(col + 1, size) if a[row][col] != 0), None)
            if swap is None:
                return 0
            a[col], a[swap] = a[swap], a[col]
            sign = -sign
        for row in range(col + 1, size):
            for other in range(col + 1, size):
                a[row][other] = (
                    a[row][other] * a[col][col] - a[row][col] * a[col][other]
                ) // previous_pivot
        previous_pivot = a[col][col]
    return sign * a[-1][-1] if size else 1


def _count_run_shuffles(letters: np.ndarray, k: int) -> int:
    """Number of distinct sequences with the k-let counts and first k-1 letters of ``letters``.

    BEST theorem for trails: the labelled Eulerian trails from s to t number
    tau_t * out(t)! * prod_{v != t} (out(v) - 1)!, where tau_t counts the arborescences directed
    to t (matrix-tree theorem); dividing by prod c(u, x)! over the k-let multiplicities counts
    letter sequences.
    """
    n_edges = letters.shape[0] - k + 1
    if n_edges <= 1:
        return 1
    prefix_codes = np.zeros(n_edges + 1, dtype=np.int64)
    for offset in range(k - 1):
        prefix_codes = prefix_codes * 4 + letters[offset : offset + n_edges + 1]
    ids = np.unique(prefix_codes, return_inverse=True)[1].reshape(-1)
    size = int(ids.max()) + 1
    source, target = ids[:-1], ids[1:]
    out_degree = np.bincount(source, minlength=size)
    laplacian = np.diag(out_degree)
    np.subtract.at(laplacian, (source, target), 1)
    multiplicities = np.unique(source * 4 + letters[k - 1 :], return_counts=True)[1]

    final = ids[-1]
    others = np.arange(size) != final
    trails = _determinant(laplacian[np.ix_(others, others)].tolist())
    trails *= math.factorial(int(out_degree[final]))
    for degree in out_degree[others]:
        trails *= math.factorial(int(degree) - 1)
    for count in multiplicities:
        trails //= math.factorial(int(count))
    return trails


def count_distinct_shuffles(X: Any, k: int = 2) -> Any:
    """Number of distinct k-let shuffles of each sequence, exactly.

    The shuffles of a sequence are drawn uniformly from this many sequences (itself included):
    the product over its ACGT runs of the number of sequences with the run's k-let counts and
    first k - 1 letters. A count of 1 flags a degenerate sequence (e.g. ``AAAA``, ``ACACAC``, or
    runs of at most k letters between Ns) whose shuffles are all copies of it.

    Parameters
    ----------
    X : numpy.ndarray or torch.Tensor, shape (N, 4, L) or (4, L)
        One-hot sequences, as for :func:`kmer_shuffle`.
    k : int, default 2
        Length of the words whose counts are kept.

    Returns
    -------
    numpy.ndarray of Python int, shape (N,), or int for a single sequence
        The exact counts (they grow exponentially with length, hence arbitrary-precision ints).
        Each run costs an exact determinant over its distinct (k-1)-mers: fast for small k (at
        most 4 of them for k = 2), slow for runs with thousands of distinct (k-1)-mers.
    """
    _check_k_and_n(k, 1)
    codes, single, _ = _batch_codes(X)
    counts = np.empty(codes.shape[0], dtype=object)
    for j, sequence in enumerate(codes):
        count = 1
        for run in _acgt_runs(sequence):
            count *= _count_run_shuffles(run, k)
        counts[j] = count
    return counts[0] if single else counts


def _acgt_runs(sequence: np.ndarray) -> list[np.ndarray]:
    """The maximal runs of ACGT letter codes in ``sequence`` (L,), as views."""
    known = np.concatenate(([False], sequence != _UNKNOWN, [False]))
    edges = np.flatnonzero(np.diff(known.astype(np.int8)))
    return [sequence[start:end] for start, end in zip(edges[::2], edges[1::2])]
