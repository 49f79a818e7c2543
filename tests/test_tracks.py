import subprocess

import h5py
import numpy as np
import pandas as pd
import pyBigWig
import pytest
from bed_checks import assert_valid_bed, bedtools, ucsc_problems
from synthetic import synthetic_contributions

from genomatt.contributions import write_contributions
from genomatt.errors import FastaError, OutputError, StoreError
from genomatt.fasta import read_chrom_sizes
from genomatt.store import read_regions
from genomatt.atomic import safe_file_name
from genomatt.tracks import (
    write_bigwig,
    write_contribution_bigwigs,
    write_hits_bed,
    write_regions_narrowpeak,
)


@pytest.fixture(scope="module")
def contrib_h5(small_genome, tmp_path_factory):
    return synthetic_contributions(small_genome, tmp_path_factory.mktemp("contrib") / "contrib.h5")


def test_bigwig_values_equal_stored_contributions(contrib_h5, small_genome, tmp_path):
    written = write_contribution_bigwigs(contrib_h5, small_genome.fasta, tmp_path)
    regions = read_regions(contrib_h5)
    with h5py.File(contrib_h5) as handle:
        tasks = [str(t) for t in handle.attrs["tasks"]]
        per_base = handle["contrib"][()].sum(axis=2)  # (N, T, L)
    assert set(written) == set(tasks)
    rng = np.random.default_rng(0)
    sizes = read_chrom_sizes(small_genome.fasta)
    for task_index, task in enumerate(tasks):
        with pyBigWig.open(str(written[task])) as track:
            assert track.chroms() == sizes
            for row in rng.choice(len(regions), 20, replace=False):
                start, chrom = int(regions.at[row, "start"]), regions.at[row, "chrom"]
                for offset in rng.choice(per_base.shape[-1], 10, replace=False):
                    value = track.values(chrom, start + int(offset), start + int(offset) + 1)[0]
                    assert value == pytest.approx(per_base[row, task_index, offset], abs=1e-6)


def test_overlapping_regions_take_the_value_nearest_a_centre(tmp_path):
    regions = pd.DataFrame({"chrom": ["c", "c"], "start": [0, 6], "end": [10, 16]})
    values = np.stack([np.full(10, 1.0), np.full(10, 2.0)])
    path = write_bigwig(values, regions, {"c": 30}, tmp_path / "t.bw")
    with pyBigWig.open(str(path)) as track:
        got = np.array(track.values("c", 0, 16))
    # Bases 6..9 lie in both windows; centres are at 5 and 11, so 6, 7 go to the first and 8, 9 to the second.
    assert got.tolist() == [1.0] * 8 + [2.0] * 8


def test_windows_off_the_chromosome_end_are_clipped(tmp_path):
    regions = pd.DataFrame({"chrom": ["c", "c"], "start": [-3, 15], "end": [7, 25]})
    values = np.arange(20, dtype=float).reshape(2, 10)
    path = write_bigwig(values, regions, {"c": 20, "d": 5}, tmp_path / "t.bw")
    with pyBigWig.open(str(path)) as track:
        assert track.values("c", 0, 7) == pytest.approx(list(range(3, 10)))
        assert track.values("c", 15, 20) == pytest.approx(list(range(10, 15)))


def test_invalid_track_inputs(tmp_path, contrib_h5, small_genome):
    regions = pd.DataFrame({"chrom": ["chrX"], "start": [0], "end": [4]})
    with pytest.raises(FastaError, match="chrX"):
        write_bigwig(np.zeros((1, 4)), regions, {"chr1": 100}, tmp_path / "t.bw")
    with pytest.raises(StoreError, match="expected"):
        write_bigwig(np.zeros((2, 4)), regions, {"chrX": 100}, tmp_path / "t.bw")
    with pytest.raises(StoreError, match="not in the file"):
        write_contribution_bigwigs(contrib_h5, small_genome.fasta, tmp_path, tasks=["nope"])
    assert not (tmp_path / "t.bw").exists()


def test_hits_bed_keeps_one_line_per_distinct_hit(tmp_path):
    hits = pd.DataFrame({"chr": ["c", "c", "c"], "start": [5, 5, 40], "end": [12, 12, 47],
                         "motif_name": ["m", "m", "m"], "hit_similarity": [0.91, 0.88, 0.75],
                         "strand": ["+", "+", "-"], "task": ["a", "b", "a"]})
    path = write_hits_bed(hits, tmp_path / "hits.bed")
    assert path.read_text().splitlines() == ["c\t5\t12\tm\t910\t+", "c\t40\t47\tm\t750\t-"]
    assert_valid_bed(path)


def test_hits_bed_is_sorted_as_bedtools_sorted_inputs_must_be(tmp_path):
    # Hits in the order of the regions, as a peak file sorted by signal gives them.
    hits = pd.DataFrame({"chr": ["chr3", "chr3", "chr1", "chr10", "chr2"], "start": [50, 8, 70, 5, 9],
                         "end": [57, 15, 77, 12, 16], "motif_name": ["m"] * 5, "hit_similarity": [0.9] * 5,
                         "strand": ["+"] * 5})
    path = write_hits_bed(hits, tmp_path / "hits.bed")
    assert [tuple(line.split("\t")[:2]) for line in path.read_text().splitlines()] == [
        ("chr1", "70"), ("chr10", "5"), ("chr2", "9"), ("chr3", "8"), ("chr3", "50")]
    seqlets = tmp_path / "seqlets.bed"
    seqlets.write_text("chr1\t60\t80\ts\t0\t+\nchr3\t0\t20\ts\t0\t+\n")
    result = subprocess.run([bedtools(), "intersect", "-sorted", "-u", "-a", str(path), "-b", str(seqlets)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert [line.split("\t")[:2] for line in result.stdout.splitlines()] == [["chr1", "70"], ["chr3", "8"]]


def test_bed_checks_catch_what_ucsc_rejects(tmp_path):
    bad = tmp_path / "bad.bed"
    bad.write_text("chr1\t5\t10\tseqlet\t-0.25\t+\nchr1\t10\t5\tx y\t1001\t*\n")
    problems = ucsc_problems(bad)
    assert len(problems) == 5 and "score '-0.25'" in problems[0]
    good = tmp_path / "good.narrowPeak"
    good.write_text("#header\nchr1\t0\t10\tpeak\t0\t.\t1.5\t-1\t-1\t5\n")
    assert_valid_bed(good, narrowpeak=True)


def test_regions_narrowpeak_centres_the_summit_and_clips_padding(tmp_path):
    regions = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "start": [-30, 100, 900], "end": [70, 200, 1000],
                            "name": ["a", "b", "c"], "padded_left": [30, 0, 0], "padded_right": [0, 0, 40]})
    path = write_regions_narrowpeak(regions, tmp_path / "regions.narrowPeak", np.array([0.5, -1.25, 2.0]))
    assert_valid_bed(path, narrowpeak=True)
    peaks = pd.read_csv(path, sep="\t", header=None)
    assert peaks[1].tolist() == [0, 100, 900] and peaks[2].tolist() == [70, 200, 960]
    # Fi-NeMo centres its window on start + summit: the window of the table, row for row.
    assert (peaks[1] + peaks[9] - 50).tolist() == [-30, 100, 900]
    assert peaks[6].tolist() == [0.5, -1.25, 2.0] and peaks[3].tolist() == ["a", "b", "c"]


def test_a_region_off_its_chromosome_is_refused_but_a_padded_window_is_not(tmp_path):
    # A window that ran off a chromosome end was padded with N: only the bases read from the genome count.
    padded = pd.DataFrame({"chrom": ["c", "c"], "start": [-3, 15], "end": [7, 25], "name": ["a", "b"],
                           "padded_left": [3, 0], "padded_right": [0, 5]})
    assert write_bigwig(np.ones((2, 10)), padded, {"c": 20}, tmp_path / "t.bw").is_file()
    (tmp_path / "t.bw").unlink()
    # Not on this genome: the windows read unpadded (from a longer chromosome), one starting past the end, and the
    # padded windows on a chromosome shorter than the one they were read from.
    unpadded = padded.assign(padded_right=0)
    past_end = pd.DataFrame({"chrom": ["c"], "start": [25], "end": [35], "name": ["far"]})
    cases = ((unpadded, 20, r"b at c:15-25"), (past_end, 20, r"far at c:25-35"),
             (padded, 12, r"b at c:15-25 \(padded with N; bases 15-20 read from the genome\)"))
    for regions, size, named in cases:
        with pytest.raises(FastaError, match=rf"^1 regions do not lie within their chromosome \(first: {named}, but "
                                             rf"c is {size} bp\); is this the genome the regions were read from\?$"):
            write_bigwig(np.ones((len(regions), 10)), regions, {"c": size}, tmp_path / "t.bw")
    assert not (tmp_path / "t.bw").exists()


def test_contribution_tracks_refuse_a_genome_shorter_than_the_regions(contrib_h5, small_genome, tmp_path):
    sizes = read_chrom_sizes(small_genome.fasta)
    regions = read_regions(contrib_h5)
    chrom = regions.at[0, "chrom"]
    short = int(regions.loc[regions["chrom"] == chrom, "start"].max())  # the last region starts past it
    fasta = tmp_path / "short.fa"
    fasta.write_text("".join(f">{name}\n{'A' * (short if name == chrom else size)}\n" for name, size in sizes.items()))
    with pytest.raises(FastaError) as error:
        write_contribution_bigwigs(contrib_h5, fasta, tmp_path / "tracks")
    message = str(error.value)
    assert message.startswith(f"{fasta}: ") and f"of {contrib_h5} do not lie within their chromosome" in message
    assert f"{chrom} is {short} bp" in message and message.endswith("is this the genome the regions were read from?")
    assert not (tmp_path / "tracks").exists()


def _named_tasks_contrib(path, tasks: list[str]):
    regions = pd.DataFrame({"chrom": ["c", "c"], "start": [0, 20], "end": [10, 30], "name": ["r0", "r1"]})
    onehot = np.tile(np.eye(4, dtype=np.float32)[:, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]], (2, 1, 1))
    hypothetical = np.ones((2, len(tasks), 4, 10), np.float32)
    zeros = np.zeros((2, len(tasks)), np.float32)
    return write_contributions(path, regions, tasks, onehot, hypothetical, zeros, zeros, {})


def test_track_file_names_are_the_cleaned_task_names_of_the_motifs_command(tmp_path):
    names = ("AP-1/JUN", "..", ".", "", "a..b", "../x", ".x")
    assert [safe_file_name(task) for task in names] == ["AP-1_JUN", "__", "_", "_", "a..b", "___x", "_x"]
    tasks = ["AP-1/JUN", "../up", "GATA1", "a b:c"]
    contrib = _named_tasks_contrib(tmp_path / "contrib.h5", tasks)
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">c\n" + "ACGT" * 10 + "\n")
    out = tmp_path / "out" / "tracks"
    written = write_contribution_bigwigs(contrib, fasta, out)
    assert {task: path.name for task, path in written.items()} == {
        "AP-1/JUN": "contrib.AP-1_JUN.bw", "../up": "contrib.___up.bw", "GATA1": "contrib.GATA1.bw",
        "a b:c": "contrib.a_b_c.bw"}
    # Every track lies in the folder.
    assert sorted(path.name for path in (tmp_path / "out").rglob("*") if path.is_file()) == sorted(
        path.name for path in written.values())
    assert all(path.parent == out and path.name == f"contrib.{safe_file_name(task)}.bw" for task, path in written.items())
    with pyBigWig.open(str(written["AP-1/JUN"])) as track:
        assert track.values("c", 0, 2) == pytest.approx([1.0, 1.0])


def test_tasks_whose_track_names_clash_are_refused_before_writing(tmp_path):
    contrib = _named_tasks_contrib(tmp_path / "contrib.h5", ["AP-1/JUN", "AP-1_JUN"])
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">c\n" + "ACGT" * 10 + "\n")
    with pytest.raises(OutputError, match=r"tasks 'AP-1/JUN' and 'AP-1_JUN' would both be written as 'AP-1_JUN'"):
        write_contribution_bigwigs(contrib, fasta, tmp_path / "tracks")
    assert not (tmp_path / "tracks").exists()
