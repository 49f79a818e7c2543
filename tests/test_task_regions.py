"""Task regions: task BED files, task names, and the rows each task uses."""

import logging
import re

import numpy as np
import pandas as pd
import pytest

from genomatt.errors import BedFormatError, ConfigError, MotifError
from genomatt.task_regions import (
    check_task_names,
    comparable_targets,
    read_task_regions,
    target_task,
    task_name_from_path,
    task_region_rows,
)


def write_bed(path, rows):
    path.write_text("".join("\t".join(str(field) for field in row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("GATA1.bed", "GATA1"),
        ("peaks/CTCF.narrowPeak.gz", "CTCF"),
        ("TAL1_TCF3.bed.gz", "TAL1_TCF3"),
        ("a.b.bed", "a.b"),
    ],
)
def test_task_names_are_file_names_without_suffixes(name, task):
    assert task_name_from_path(name) == task


def test_missing_task_bed(tmp_path):
    with pytest.raises(BedFormatError, match=re.escape(f"{tmp_path / 'GATA1.bed'}: task BED file not found")):
        read_task_regions([tmp_path / "GATA1.bed"])


def test_empty_task_bed(tmp_path):
    (tmp_path / "GATA1.bed").write_text("track name=empty\n")
    with pytest.raises(BedFormatError, match="no regions found"):
        read_task_regions([tmp_path / "GATA1.bed"])


def test_two_beds_for_one_task(tmp_path):
    first = write_bed(tmp_path / "CTCF.bed", [("chr1", 0, 10)])
    (tmp_path / "other").mkdir()
    second = write_bed(tmp_path / "other" / "CTCF.bed.gz".removesuffix(".gz"), [("chr1", 0, 10)])
    with pytest.raises(ConfigError, match="two BED files give task 'CTCF'"):
        read_task_regions([first, second])


def test_labels_column_splits_one_bed_into_tasks(tmp_path):
    bed = write_bed(tmp_path / "all.bed", [("chr1", 0, 10, "A"), ("chr1", 20, 30, "B"), ("chr1", 20, 30, "A")])
    tasks = read_task_regions([bed], labels_column="name")
    assert list(tasks) == ["A", "B"]
    assert tasks["A"]["start"].tolist() == [0, 20]


@pytest.mark.parametrize(
    ("rows", "column", "error", "message"),
    [
        ([("chr1", 0, 10)], "name", BedFormatError, "has no task name in column 4"),
        ([("chr1", 0, 10, "A")], "label", ConfigError, "no labels column 'label'"),
    ],
)
def test_labels_column_errors(tmp_path, rows, column, error, message):
    bed = write_bed(tmp_path / "all.bed", rows)
    with pytest.raises(error, match=message):
        read_task_regions([bed], labels_column=column)


def test_labels_column_takes_one_bed(tmp_path):
    beds = [write_bed(tmp_path / f"{name}.bed", [("chr1", 0, 10, "A")]) for name in "xy"]
    with pytest.raises(ConfigError, match="one BED file holding every task"):
        read_task_regions(beds, labels_column="name")


def test_task_region_rows_take_regions_centred_in_a_task_region(caplog):
    regions = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "start": [0, 100, 0], "end": [50, 150, 50],
                            "name": ["a", "b", "c"]})
    task_regions = {"t1": pd.DataFrame({"chrom": ["chr1"], "start": [120], "end": [130]}),
                    "t2": pd.DataFrame({"chrom": ["chr3"], "start": [0], "end": [10]}),
                    "extra": pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [10]})}
    with caplog.at_level(logging.INFO, logger="genomatt"):
        rows = task_region_rows(regions, ["t1", "t2"], task_regions)
    assert rows["t1"].tolist() == [1] and rows["t2"].tolist() == []
    assert "no region of the contributions lies in the task's regions" in caplog.text and "['extra']" in caplog.text
    # t2's regions lie on a chromosome the regions do not name: said, as a BED of another naming would be.
    assert "task regions lie on chromosomes chr3, none of which the regions name: they name chr1, chr2" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="genomatt"):
        task_region_rows(regions, ["t1"], {"t1": pd.DataFrame({"chrom": ["chr2"], "start": [120], "end": [130]})})
    assert "nothing is searched for it" in caplog.text and "none of which the regions name" not in caplog.text
    with pytest.raises(MotifError, match=r"no task regions for tasks \['t3'\]"):
        task_region_rows(regions, ["t1", "t3"], task_regions)


def test_a_profile_models_targets_use_their_tasks_regions():
    regions = pd.DataFrame({"chrom": ["chr1", "chr1"], "start": [0, 100], "end": [50, 150], "name": ["a", "b"]})
    task_regions = {"GATA1": pd.DataFrame({"chrom": ["chr1"], "start": [120], "end": [130]}),
                    "counts": pd.DataFrame({"chrom": ["chr1"], "start": [20], "end": [30]})}
    assert target_task("profile_GATA1", task_regions) == "GATA1"
    assert target_task("counts", task_regions) == "counts"  # a task of that name is its own
    assert target_task("profile_CTCF", task_regions) is None and target_task("shape_GATA1", task_regions) is None
    rows = task_region_rows(regions, ["profile_GATA1", "counts_GATA1"], task_regions)
    assert rows["profile_GATA1"].tolist() == rows["counts_GATA1"].tolist() == [1]


def test_targets_are_compared_head_with_head_and_never_within_one_task():
    targets = ["profile_A", "counts_A", "profile_B", "counts_B"]
    expected = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(comparable_targets(targets), expected)
    np.testing.assert_array_equal(comparable_targets(["profile", "counts"]), np.eye(2, dtype=bool))
    assert comparable_targets(["GATA1", "CTCF", "track_0"]).all()


def test_task_names_that_cannot_name_motifs_and_bed_fields_are_refused(tmp_path):
    spaced = tmp_path / "TF one.bed"
    spaced.write_text("chr1\t10\t20\n")
    with pytest.raises(ConfigError, match=r"task names \['TF one'\] hold whitespace or a double quote"):
        read_task_regions([spaced])
    labelled = tmp_path / "labelled.bed"
    labelled.write_text('chr1\t10\t20\tGATA1\nchr1\t30\t40\tTAL1 "b"\n')
    with pytest.raises(ConfigError, match=r"labelled.bed \(labels column name\): task names \['TAL1 \"b\"'\]"):
        read_task_regions([labelled], "name")
    with pytest.raises(ConfigError, match=r"--targets: task 'CTCF' is given more than once \(\['CTCF', 'CTCF'\]\)"):
        check_task_names(["CTCF", "CTCF"], "--targets")
    check_task_names(["TAL1::TCF3", "AP-1/JUN", "profile_GATA1"], "fine")
