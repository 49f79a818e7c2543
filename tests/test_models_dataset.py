"""Training data: task BEDs, labels, negatives, chromosome hold-out."""

import numpy as np
import pandas as pd
import pytest

from genomatt.errors import ConfigError, FastaError
from genomatt.fasta import read_chrom_sizes
from genomatt.intervals import overlaps_any
from genomatt.models.dataset import build_training_data, label_windows, positive_windows
from genomatt.models.negatives import gc_content, gc_matched_negatives, shuffled_negatives
from genomatt.models.splits import assign_splits, holdout_chromosomes
from genomatt.simulate import SimulationSettings, simulate_genome
from genomatt.task_regions import read_task_regions


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    settings = SimulationSettings(
        motifs=("MA0139", "MA0466"), chromosome_length=40_000, n_positive_regions=120, n_negative_regions=40
    )
    return simulate_genome(tmp_path_factory.mktemp("genome"), settings)


def write_bed(path, rows):
    path.write_text("".join("\t".join(str(field) for field in row) + "\n" for row in rows))
    return path


def test_windows_are_labelled_by_their_centre(tmp_path):
    tasks = {
        "A": pd.DataFrame({"chrom": ["chr1"], "start": [100], "end": [200], "name": ["a"]}),
        "B": pd.DataFrame({"chrom": ["chr1"], "start": [140], "end": [400], "name": ["b"]}),
    }
    windows = positive_windows(tasks, 50)
    assert windows[["start", "end"]].values.tolist() == [[125, 175], [245, 295]]
    assert label_windows(windows, tasks).tolist() == [[1, 1], [0, 1]]


def test_a_region_ending_at_its_chromosome_end_is_not_called_past_it(genome, tmp_path, caplog):
    sizes = read_chrom_sizes(genome.fasta)
    rows = [line.split("\t")[:3] for line in genome.task_beds["CTCF"].read_text().splitlines()]
    # A region ending exactly at chr3's end: valid, though its window runs off the chromosome.
    bed = write_bed(tmp_path / "CTCF.bed", rows + [["chr3", sizes["chr3"] - 50, sizes["chr3"]]])
    with caplog.at_level("WARNING", logger="genomatt"):
        data = build_training_data(genome.fasta, [bed, genome.task_beds["CEBPB"]], 200, progress=False)
    assert "past the end of their chromosome" not in caplog.text
    assert list(data.regions.columns) == ["chrom", "start", "end", "name", "source", "split"]


def test_holdout_defaults_and_errors():
    genome_chroms = ["chr1", "chr2", "chr3", "chr4", "chr5"]
    assert holdout_chromosomes(genome_chroms) == (["chr4"], ["chr5"])
    assert holdout_chromosomes(genome_chroms, ["chr1"], ["chr2", "chr3"]) == (["chr1"], ["chr2", "chr3"])
    with pytest.raises(ConfigError, match=r"default \(chr4\) is not in the genome .* --val-chroms"):
        holdout_chromosomes(["2L", "2R", "3L"])
    with pytest.raises(ConfigError, match=r"--test-chroms \(train.test_chroms\): chromosomes \[.chrX.\] are not in "
                                         r"the genome"):
        holdout_chromosomes(genome_chroms, test_chroms=["chrX"])
    with pytest.raises(ConfigError, match=r"chromosomes \['4'\] are not in the genome \(it has chr1, chr2, chr3, chr4, "
                                         r"chr5\); did you mean chr4\?"):
        holdout_chromosomes(genome_chroms, validation_chroms=["4"])
    with pytest.raises(ConfigError, match="both validation and test"):
        holdout_chromosomes(genome_chroms, ["chr1"], ["chr1"])
    assert assign_splits(np.array(["chr1", "chr4", "chr5"]), ["chr4"], ["chr5"]).tolist() == [
        "train",
        "validation",
        "test",
    ]


def test_shuffled_negatives_keep_dinucleotide_counts():
    rng = np.random.default_rng(0)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (3, 60))].transpose(0, 2, 1)
    shuffled = shuffled_negatives(X, random_state=1)
    assert shuffled.shape == X.shape and not np.array_equal(shuffled, X)
    dinucleotides = lambda one_hot: np.einsum("nil,njl->nij", one_hot[:, :, :-1], one_hot[:, :, 1:])
    np.testing.assert_array_equal(dinucleotides(shuffled), dinucleotides(X))


def test_gc_matched_negatives_avoid_positives_and_match_gc(genome):
    data = build_training_data(genome.fasta, list(genome.task_beds.values()), 200, jitter=10, progress=False)
    positives = data.regions[data.regions["source"] == "positive"]
    negatives = data.regions[data.regions["source"] == "gc_matched"]
    assert positives.groupby("chrom").size().to_dict() == negatives.groupby("chrom").size().to_dict()
    every_task_region = pd.concat(
        [
            pd.read_csv(bed, sep="\t", header=None, names=["chrom", "start", "end"], usecols=[0, 1, 2])
            for bed in genome.task_beds.values()
        ]
    )
    widened = (negatives["start"] - 10, negatives["end"] + 10)
    assert not overlaps_any(negatives["chrom"].to_numpy(), *widened, every_task_region).any()
    centre = slice(10, 210)
    positive_gc = gc_content(data.X[(data.regions["source"] == "positive").to_numpy(), :, centre])
    negative_gc = gc_content(data.X[(data.regions["source"] == "gc_matched").to_numpy(), :, centre])
    assert abs(np.median(positive_gc) - np.median(negative_gc)) < 0.02
    assert data.labels[(data.regions["source"] == "gc_matched").to_numpy()].sum() == 0


def test_negatives_that_cannot_match_the_positives_gc_are_named(genome, caplog):
    # Positives at 90% GC in a 41% GC genome: the nearest bins with candidates are far off, and a model
    # would learn GC.
    positives = positive_windows(read_task_regions(list(genome.task_beds.values())), 200)
    with caplog.at_level("WARNING", logger="genomatt"):
        gc_matched_negatives(genome.fasta, positives, np.full(len(positives), 0.9), positives, 200, random_state=5)
    assert "the GC-matched negatives hold 0." in caplog.text and "against the positives' 0.900" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="genomatt"):
        gc_matched_negatives(genome.fasta, positives, np.full(len(positives), 0.4), positives, 200, random_state=5)
    assert "GC-matched negatives hold" not in caplog.text


def test_too_few_gc_matched_negatives_are_refused(tmp_path, caplog):
    # 20 positives of 200 bp in 6 kb: background for a few negatives only.
    random = np.random.default_rng(2)
    sequence = "".join(random.choice(list("ACGT"), 6000))
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chr1\n" + "\n".join(sequence[i:i + 60] for i in range(0, len(sequence), 60)) + "\n")
    positives = pd.DataFrame({"chrom": ["chr1"] * 20, "start": np.arange(20) * 290 + 50})
    positives["end"] = positives["start"] + 200
    with pytest.raises(ConfigError, match=r"only \d+ background windows of 200 bp clear of the task regions for 20 "
                                          r"positive windows .*--negatives shuffled"):
        gc_matched_negatives(fasta, positives, np.full(20, 0.5), positives, 200, random_state=1)


def test_gc_matched_negatives_are_seeded(genome):
    positives = positive_windows(read_task_regions(list(genome.task_beds.values())), 200)
    gc = np.full(len(positives), 0.4)
    first = gc_matched_negatives(genome.fasta, positives, gc, positives, 200, random_state=5)
    second = gc_matched_negatives(genome.fasta, positives, gc, positives, 200, random_state=5)
    pd.testing.assert_frame_equal(first, second)


def test_training_data_shapes_labels_and_splits(genome):
    data = build_training_data(
        genome.fasta, list(genome.task_beds.values()), 100, jitter=5, negatives="shuffled", progress=False
    )
    assert data.task_names == ["CTCF", "CEBPB"]
    assert data.X.shape == (len(data.regions), 4, 110) and data.labels.shape == (len(data.regions), 2)
    shuffled = (data.regions["source"] == "shuffled").to_numpy()
    assert shuffled.sum() == (~shuffled).sum() and data.labels[shuffled].sum() == 0
    assert data.labels[~shuffled].max(axis=1).min() == 1
    assert set(data.regions["split"]) == {"train", "validation", "test"}
    X_test, y_test = data.split("test")
    assert len(X_test) == (data.regions["chrom"] == "chr5").sum() == len(y_test)


def test_bed_negatives_are_labelled_like_every_window(genome, tmp_path):
    negatives = pd.read_csv(genome.negatives_bed, sep="\t", header=None).iloc[:, :3]
    # A region 5 bp off a CTCF peak: its window's centre lies in the peak.
    positive = pd.read_csv(genome.task_beds["CTCF"], sep="\t", header=None).iloc[:1, :3]
    positive[[1, 2]] += 5
    bed = tmp_path / "background.bed"
    pd.concat([negatives, positive]).to_csv(bed, sep="\t", header=False, index=False)
    data = build_training_data(genome.fasta, list(genome.task_beds.values()), 200, negatives=str(bed), progress=False)
    from_bed = data.regions["source"] == "bed"
    assert from_bed.sum() == len(negatives) + 1
    assert data.labels[from_bed.to_numpy(), 0].sum() == 1


def test_bed_negatives_overlapping_a_task_region_off_centre_are_counted(genome, tmp_path, caplog):
    negatives = pd.read_csv(genome.negatives_bed, sep="\t", header=None).iloc[:, :3]
    # A window 150 bp off a CTCF peak of 200 bp: it overlaps the peak by 50 bp, its centre outside it.
    shifted = pd.read_csv(genome.task_beds["CTCF"], sep="\t", header=None).iloc[:1, :3]
    shifted[[1, 2]] += (shifted[2] - shifted[1]).iloc[0] // 2 + 50
    bed = tmp_path / "background.bed"
    pd.concat([negatives, shifted]).to_csv(bed, sep="\t", header=False, index=False)
    with caplog.at_level("WARNING", logger="genomatt"):
        data = build_training_data(genome.fasta, list(genome.task_beds.values()), 200, negatives=str(bed),
                                   progress=False)
    assert f"{bed}: 1 negative windows overlap a task's region without their centre in it" in caplog.text
    assert data.labels[(data.regions["source"] == "bed").to_numpy()].sum() == 0


def test_a_negatives_bed_of_positive_windows_alone_is_refused(genome):
    with pytest.raises(ConfigError, match=r"CTCF.bed: every one of its windows is a positive window"):
        build_training_data(genome.fasta, list(genome.task_beds.values()), 200,
                            negatives=str(genome.task_beds["CTCF"]), progress=False)


def test_identical_windows_of_a_negatives_bed_are_kept_once(genome, tmp_path):
    # The negatives twice, and a copy of a positive's region: each window once, the copy as the positive.
    negatives = pd.read_csv(genome.negatives_bed, sep="\t", header=None).iloc[:, :3]
    positive = pd.read_csv(genome.task_beds["CTCF"], sep="\t", header=None).iloc[:1, :3]
    bed = tmp_path / "background.bed"
    pd.concat([negatives, negatives, positive]).to_csv(bed, sep="\t", header=False, index=False)
    data = build_training_data(genome.fasta, list(genome.task_beds.values()), 200, negatives=str(bed), progress=False)
    assert (data.regions["source"] == "bed").sum() == len(negatives)
    assert not data.regions.duplicated(["chrom", "start", "end"]).any()


def test_unknown_negatives(genome):
    with pytest.raises(ConfigError, match="negatives 'gc-matched': expected gc_matched or shuffled or a BED file"):
        build_training_data(genome.fasta, list(genome.task_beds.values()), 200, negatives="gc-matched")


def test_task_without_test_positives(genome, tmp_path):
    beds = [
        write_bed(tmp_path / "NOT_ON_CHR5.bed", [("chr1", 1000, 1200), ("chr4", 1000, 1200)]),
        write_bed(tmp_path / "EVERYWHERE.bed", [("chr1", 3000, 3200), ("chr4", 3000, 3200), ("chr5", 3000, 3200)]),
    ]
    with pytest.raises(ConfigError, match=r"task NOT_ON_CHR5 has no positive regions on the test chromosomes \(chr5\)"):
        build_training_data(genome.fasta, beds, 200, negatives="shuffled", progress=False)
    with pytest.raises(ConfigError, match=r"no regions on the test chromosomes \(chr5\)"):
        build_training_data(genome.fasta, beds[:1], 200, negatives="shuffled", progress=False)


def test_a_task_of_one_region_is_refused_for_what_it_is(genome, tmp_path):
    beds = [write_bed(tmp_path / "RARE.bed", [("chr1", 1000, 1200)]), genome.task_beds["CTCF"]]
    with pytest.raises(ConfigError, match="task RARE has 1 positive window: a task needs positives on the training "
                                          "and on the test chromosomes; give it more regions, or leave it out"):
        build_training_data(genome.fasta, beds, 200, negatives="shuffled", progress=False)


def test_one_labelled_bed_equals_one_bed_per_task(genome):
    per_task = build_training_data(
        genome.fasta, list(genome.task_beds.values()), 200, negatives="shuffled", progress=False
    )
    labelled = build_training_data(
        genome.fasta, [genome.tasks_bed], 200, labels_column="name", negatives="shuffled", progress=False
    )
    assert sorted(labelled.task_names) == sorted(per_task.task_names)

    def labels_by_window(data):
        frame = pd.DataFrame(data.labels, columns=data.task_names)[sorted(data.task_names)]
        keys = data.regions[["chrom", "start", "end", "source"]].astype(str).agg(":".join, axis=1)
        return frame.set_index(keys).sort_index()

    pd.testing.assert_frame_equal(labels_by_window(labelled), labels_by_window(per_task))


def test_windows_off_a_chromosome_end_are_padded_with_n(genome, tmp_path):
    # Peaks in the first and last bases of a chromosome (chrM, small contigs): their windows run off it.
    chr2_length = read_chrom_sizes(genome.fasta)["chr2"]
    beds = [
        write_bed(tmp_path / "EDGES.bed", [("chr2", 10, 50), ("chr2", chr2_length - 30, chr2_length),
                                           *[(f"chr{c}", 3000, 3200) for c in (1, 4, 5)]]),
        genome.task_beds["CTCF"],
    ]
    data = build_training_data(genome.fasta, beds, 300, jitter=5, negatives="shuffled", progress=False)
    positive = data.regions["source"] == "positive"
    first = (positive & (data.regions["start"] == -120)).to_numpy()
    last = (positive & (data.regions["end"] == chr2_length + 135)).to_numpy()
    assert first.sum() == last.sum() == 1
    assert data.X.shape[2] == 310
    assert data.X[first][0, :, :125].sum() == 0 and data.X[first][0, :, 125:].sum(axis=0).min() == 1
    assert data.X[last][0, :, -140:].sum() == 0 and data.X[last][0, :, :-140].sum(axis=0).min() == 1


def test_positive_windows_in_an_assembly_gap_are_left_out(genome, tmp_path, caplog):
    # A task region inside a run of N: background windows that N-rich are refused, so is the positive, or
    # N alone would mark positives.
    import pyfaidx

    with pyfaidx.Fasta(str(genome.fasta)) as records:
        sequences = {name: str(records[name]) for name in records.keys()}
    sequences["chr1"] = sequences["chr1"][:5000] + "N" * 2000 + sequences["chr1"][7000:]
    fasta = tmp_path / "gapped.fa"
    fasta.write_text("".join(f">{name}\n{sequence}\n" for name, sequence in sequences.items()))
    beds = [write_bed(tmp_path / "GAP.bed", [("chr1", 5900, 6100), *[(f"chr{c}", 3000, 3200) for c in (1, 4, 5)]]),
            genome.task_beds["CTCF"]]
    with caplog.at_level("WARNING", logger="genomatt"):
        data = build_training_data(fasta, beds, 200, negatives="shuffled", progress=False)
    assert "positive windows are more than 10% unknown bases (N) in the genome and are left out, as background " \
           "windows are (first: chr1:5900-6100)" in caplog.text
    positives = data.regions[data.regions["source"] == "positive"]
    assert not ((positives["chrom"] == "chr1") & (positives["start"] == 5900)).any()


def test_task_and_negative_beds_off_the_genome_are_named(genome, tmp_path):
    past = write_bed(tmp_path / "PAST.bed", [("chr1", 3000, 3200), ("chr1", 10_000_000, 10_000_100)])
    with pytest.raises(FastaError, match=rf"{past}: 1 regions, or their windows, start at or past the end of their "
                                         r"chromosome .*; check the "
                                         r"genome build \(a model is trained on every task region"):
        build_training_data(genome.fasta, [past], 200, negatives="shuffled", progress=False)
    beds = [write_bed(tmp_path / "OFF.bed", [("chr1", 3000, 3200), ("chr9", 3000, 3200)]), genome.task_beds["CTCF"]]
    with pytest.raises(FastaError, match=rf"{tmp_path / 'OFF.bed'}: 1 regions on chromosomes \['chr9'\] that are "
                                         r"not in .*; fix the names \(a model is trained on every task region"):
        build_training_data(genome.fasta, beds, 200, negatives="shuffled", progress=False)
    negatives = write_bed(tmp_path / "background.bed", [("chrUn", 10, 300)])
    with pytest.raises(FastaError, match=rf"{negatives}: 1 regions on chromosomes \['chrUn'\]"):
        build_training_data(genome.fasta, [genome.task_beds["CTCF"]], 200, negatives=str(negatives), progress=False)


def test_background_candidates_in_assembly_gaps_are_dropped_without_a_warning_each(tmp_path, caplog):
    # Telomeres and a gap of N: candidate windows there are judged by their N content and left out quietly.
    random = np.random.default_rng(2)
    sequence = "N" * 5000 + "".join(random.choice(list("ACGT"), 20_000)) + "N" * 5000
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chr1\n" + "\n".join(sequence[i:i + 60] for i in range(0, len(sequence), 60)) + "\n")
    positives = pd.DataFrame({"chrom": ["chr1"] * 20, "start": np.arange(20) * 900 + 6000})
    positives["end"] = positives["start"] + 200
    with caplog.at_level("WARNING", logger="genomatt"):
        negatives = gc_matched_negatives(fasta, positives, np.full(20, 0.5), positives, 200, random_state=1)
    assert len(negatives) == 20
    assert ((negatives["start"] >= 5000) & (negatives["end"] <= 25_000)).all()
    assert "hold no A, C, G or T" not in caplog.text
