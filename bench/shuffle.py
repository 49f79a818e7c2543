"""Benchmark genomatt's dinucleotide shuffle against tangermeme's, in one run.

    .venv/bin/python bench/shuffle.py [--sequences 1000] [--length 1000] [--shuffles 20]

Both run single-threaded in this process: genomatt's kernel has no threads, tangermeme's is
called with ``n_jobs=1`` and torch (which tangermeme uses around its kernel) is limited to one
thread. Each is run once to compile and warm up, then ``--repeats`` times alternately; the table
shows the median wall-clock, user and system times. A last row gives tangermeme with torch's default
threads, for reference. The script also counts how many of the 27 sequences with the
dinucleotide counts and first letter of ACCCACGATGATG each shuffle reaches in 5,000 draws.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import statistics
import time
from typing import Callable

import numba
import numpy as np
import torch
from tangermeme.ersatz import dinucleotide_shuffle as tangermeme_shuffle

from genomatt.shuffle import count_distinct_shuffles, dinucleotide_shuffle

REACH_SEQUENCE = "ACCCACGATGATG"
REACH_DRAWS = 5000


def random_one_hot(n_sequences: int, length: int, seed: int) -> torch.Tensor:
    """(n_sequences, 4, length) float32 one-hot of uniformly random ACGT."""
    codes = np.random.default_rng(seed).integers(0, 4, (n_sequences, length))
    return torch.from_numpy((codes[:, None, :] == np.arange(4)[:, None]).astype(np.float32))


def one_hot(sequence: str) -> torch.Tensor:
    codes = np.array(["ACGT".index(base) for base in sequence])
    return torch.from_numpy((codes[None, :] == np.arange(4)[:, None]).astype(np.float32))


def cpu_seconds() -> tuple[float, float]:
    """User and system CPU seconds used so far by this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def median_seconds(
    shuffles: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float, float]]:
    """Median wall-clock, user and system seconds of each call after one warm-up, alternating.

    User time is the shuffling itself. System time is mostly the kernel providing fresh pages for
    the output (320 MB at the default size), which varies with the machine's memory state; wall
    time also counts waiting for a core on a shared machine.
    """
    for shuffle in shuffles.values():
        shuffle()
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in shuffles}
    for _ in range(repeats):
        for name, shuffle in shuffles.items():
            wall, (user, system) = time.perf_counter(), cpu_seconds()
            result = shuffle()
            user_after, system_after = cpu_seconds()
            times[name].append(
                (time.perf_counter() - wall, user_after - user, system_after - system)
            )
            del result
    return {
        name: tuple(statistics.median(column) for column in zip(*values))
        for name, values in times.items()
    }


def distinct_reached(shuffle: Callable[[torch.Tensor, int], torch.Tensor]) -> int:
    shuffled = shuffle(one_hot(REACH_SEQUENCE)[None], REACH_DRAWS)[0]
    return len({tuple(row.argmax(0).tolist()) for row in shuffled})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=1000)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--shuffles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    X = random_one_hot(args.sequences, args.length, seed=0)
    n = args.shuffles
    default_torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    single = median_seconds(
        {
            "genomatt": lambda: dinucleotide_shuffle(X, n=n, random_state=0),
            "tangermeme": lambda: tangermeme_shuffle(X, n=n, random_state=0, n_jobs=1),
        },
        args.repeats,
    )
    torch.set_num_threads(default_torch_threads)
    threaded = median_seconds(
        {"tangermeme": lambda: tangermeme_shuffle(X, n=n, random_state=0, n_jobs=1)},
        args.repeats,
    )

    total = args.sequences * n
    print(f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; {args.sequences} sequences x "
          f"{args.length} bp x {n} shuffles, median of {args.repeats}\n")
    print("| implementation | threads | wall s | user s | system s | "
          "sequences·shuffles / s (wall) | speed-up (wall) | speed-up (user + system) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = [
        ("genomatt `dinucleotide_shuffle`", "1", single["genomatt"]),
        ("tangermeme `dinucleotide_shuffle`", "1", single["tangermeme"]),
        ("tangermeme `dinucleotide_shuffle`", f"torch {default_torch_threads}",
         threaded["tangermeme"]),
    ]
    reference_wall, reference_user, reference_system = single["tangermeme"]
    for name, threads, (wall, user, system) in rows:
        print(f"| {name} | {threads} | {wall:.3f} | {user:.3f} | {system:.3f} | "
              f"{total / wall:,.0f} | {reference_wall / wall:.1f}× | "
              f"{(reference_user + reference_system) / (user + system):.1f}× |")

    possible = count_distinct_shuffles(one_hot(REACH_SEQUENCE))
    genomatt_reach = distinct_reached(lambda X, n: dinucleotide_shuffle(X, n=n, random_state=0))
    tangermeme_reach = distinct_reached(lambda X, n: tangermeme_shuffle(X, n=n, random_state=0))
    print(f"\nDistinct shuffles of {REACH_SEQUENCE} reached in {REACH_DRAWS:,} draws "
          f"(of {possible} possible): genomatt {genomatt_reach}, tangermeme {tangermeme_reach}")


if __name__ == "__main__":
    main()
