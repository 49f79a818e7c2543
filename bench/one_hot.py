"""Benchmark: one-hot encoding and streaming region loading.

1. One-hot encoding of 10,000 random 1,000 bp sequences: genomatt ``one_hot_encode`` (batch and one
   call per sequence) versus ``tangermeme.utils.one_hot_encode`` (one call per sequence, its API),
   same sequences, same process.
2. Peak memory of ``load_regions`` on 10,000 windows of 1,000 bp from the simulated genome, measured in
   a fresh subprocess as peak RSS minus the RSS before the call, compared with the output array's size.

Run: ``.venv/bin/python bench/one_hot.py`` (prints markdown tables).
"""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

N_SEQUENCES = 10_000
LENGTH = 1_000


def best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_encoding() -> None:
    import torch
    from tangermeme.utils import one_hot_encode as tangermeme_one_hot

    from genomatt.genome import one_hot_encode

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    letters = np.array(list("ACGTN"))
    seqs = ["".join(row) for row in letters[rng.choice(5, size=(N_SEQUENCES, LENGTH), p=[0.24] * 4 + [0.04])]]
    ours = one_hot_encode(seqs)
    theirs = np.stack([tangermeme_one_hot(seq, dtype=torch.float32).numpy() for seq in seqs[:100]])
    np.testing.assert_array_equal(ours[:100], theirs)
    rows = [
        ("genomatt one_hot_encode (one batch call)", best_of(lambda: one_hot_encode(seqs))),
        ("genomatt one_hot_encode (one call per sequence)", best_of(lambda: [one_hot_encode(s) for s in seqs])),
        ("genomatt one_hot_encode (one batch call, int8)", best_of(lambda: one_hot_encode(seqs, np.int8))),
        ("tangermeme one_hot_encode (one call per sequence, float32)",
         best_of(lambda: [tangermeme_one_hot(s, dtype=torch.float32) for s in seqs])),
        ("tangermeme one_hot_encode (one call per sequence, int8 default)",
         best_of(lambda: [tangermeme_one_hot(s) for s in seqs])),
    ]
    print(f"\nOne-hot encoding, {N_SEQUENCES:,} x {LENGTH:,} bp (best of 3)\n")
    print("| implementation | seconds | µs per sequence |")
    print("|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {seconds / N_SEQUENCES * 1e6:.1f} |")


MEMORY_PROBE = """
import resource, sys
import numpy as np, pandas as pd
from genomatt.fasta import read_chrom_sizes
from genomatt.genome import load_regions
fasta = sys.argv[1]
sizes = read_chrom_sizes(fasta)
rng = np.random.default_rng(0)
chroms = rng.choice(list(sizes), size={n})
starts = [int(rng.integers(0, sizes[c] - {length})) for c in chroms]
frame = pd.DataFrame({{"chrom": chroms, "start": starts, "end": [s + {length} for s in starts]}})
def rss_mib():
    with open("/proc/self/status") as handle:
        return {{k: int(v.split()[0]) / 1024 for k, v in (l.split(":", 1) for l in handle) if k in ("VmRSS", "VmHWM")}}
before = rss_mib()["VmRSS"]
regions, X = load_regions(fasta, frame, progress=False)
after = rss_mib()
print(before, after["VmHWM"], X.nbytes / 2**20)
"""


def bench_memory() -> None:
    from genomatt.simulate import simulate_genome

    with tempfile.TemporaryDirectory() as folder:
        genome = simulate_genome(folder)
        print(f"\nload_regions peak memory, 1,000 bp windows (fresh process each)\n")
        print("| regions | output array (MiB) | peak RSS increase (MiB) | overhead (MiB) |")
        print("|---:|---:|---:|---:|")
        for n in (2_500, 10_000, 20_000):
            probe = MEMORY_PROBE.format(n=n, length=LENGTH)
            result = subprocess.run([sys.executable, "-c", probe, str(genome.fasta)], capture_output=True, text=True,
                                    check=True)
            before, peak, array = map(float, result.stdout.split())
            print(f"| {n:,} | {array:.1f} | {peak - before:.1f} | {peak - before - array:.1f} |")


if __name__ == "__main__":
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}")
    bench_encoding()
    bench_memory()
