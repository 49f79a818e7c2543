"""Compare two result folders of the workflow, file by file, and list every difference.

Shows that a change to the code changes no output: run the workflow before and after (e.g. ``make demo``,
then copy ``results/demo`` aside) and compare the two folders::

    python bench/compare_runs.py BEFORE_DIR AFTER_DIR

HDF5 files are compared dataset by dataset (values exactly, NaN equal to NaN, dtype and shape) and
attribute by attribute; JSON files as data; every other file byte for byte. What records when or how
long a run was, not what it computed, is skipped: the keys ``created_utc`` and ``training_seconds``, logs,
Snakemake benchmarks and
bookkeeping, the HTML report (it prints the run's time), SVG logos (matplotlib writes the date and random
clip ids; the PNG of the same logo is compared) and ``model.pt`` (it records when it was saved; the
weights' ``content_hash`` in ``model.metrics.json`` is compared). Exit status 0 when the folders hold the same outputs, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np

SKIPPED_FOLDERS = {"logs", "benchmarks", ".snakemake"}
SKIPPED_NAMES = {".snakemake_timestamp", "report.html", "model.pt"}
SKIPPED_SUFFIXES = {".svg"}
TIME_KEYS = {"created_utc", "training_seconds"}


def output_files(root: Path) -> set[str]:
    """Relative paths of the files of ``root`` that are outputs to compare."""
    files = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        skipped = path.name in SKIPPED_NAMES or path.suffix in SKIPPED_SUFFIXES or SKIPPED_FOLDERS & set(relative.parts)
        if path.is_file() and not skipped:
            files.add(relative.as_posix())
    return files


def _same_values(left: object, right: object) -> bool:
    left_array, right_array = np.asarray(left), np.asarray(right)
    if left_array.shape != right_array.shape or left_array.dtype != right_array.dtype:
        return False
    if left_array.dtype.kind in "fc":
        return bool(np.array_equal(left_array, right_array, equal_nan=True))
    if left_array.dtype.names:
        return all(_same_values(left_array[name], right_array[name]) for name in left_array.dtype.names)
    return bool(np.array_equal(left_array, right_array))


def _without_times(value: object) -> object:
    if isinstance(value, dict):
        return {key: _without_times(item) for key, item in value.items() if key not in TIME_KEYS}
    if isinstance(value, list):
        return [_without_times(item) for item in value]
    return value


def _attribute_differences(name: str, left: h5py.AttributeManager, right: h5py.AttributeManager) -> list[str]:
    differences = []
    for key in sorted((set(left) | set(right)) - TIME_KEYS):
        if key not in left or key not in right:
            differences.append(f"{name}: attribute {key!r} only in {'after' if key in right else 'before'}")
            continue
        left_value, right_value = left[key], right[key]
        if isinstance(left_value, str) and left_value.startswith("{"):
            try:
                same = _without_times(json.loads(left_value)) == _without_times(json.loads(right_value))
            except (json.JSONDecodeError, TypeError):
                same = left_value == right_value
        else:
            same = _same_values(left_value, right_value)
        if not same:
            differences.append(f"{name}: attribute {key!r} differs")
    return differences


def hdf5_differences(left_path: Path, right_path: Path) -> list[str]:
    """Every dataset, group or attribute that differs between two HDF5 files."""
    differences: list[str] = []
    with h5py.File(left_path, "r") as left, h5py.File(right_path, "r") as right:
        left_names: list[str] = []
        right_names: list[str] = []
        left.visit(left_names.append)
        right.visit(right_names.append)
        differences += _attribute_differences("/", left.attrs, right.attrs)
        for name in sorted(set(left_names) | set(right_names)):
            if name not in left or name not in right:
                differences.append(f"{name}: only in {'after' if name in right else 'before'}")
                continue
            left_item, right_item = left[name], right[name]
            if isinstance(left_item, h5py.Dataset) and not _same_values(left_item[()], right_item[()]):
                differences.append(f"{name}: values differ")
            differences += _attribute_differences(name, left_item.attrs, right_item.attrs)
    return differences


def file_differences(left: Path, right: Path) -> list[str]:
    """What differs between two files of the same relative path (empty when they hold the same output)."""
    if left.suffix == ".h5":
        return hdf5_differences(left, right)
    if left.suffix == ".json":
        same = _without_times(json.loads(left.read_text())) == _without_times(json.loads(right.read_text()))
        return [] if same else ["content differs"]
    return [] if left.read_bytes() == right.read_bytes() else ["bytes differ"]


def compare_runs(before: Path, after: Path) -> list[str]:
    """One line per difference between two result folders; empty when their outputs are the same."""
    before_files, after_files = output_files(before), output_files(after)
    lines = [f"{name}: only in before" for name in sorted(before_files - after_files)]
    lines += [f"{name}: only in after" for name in sorted(after_files - before_files)]
    for name in sorted(before_files & after_files):
        lines += [f"{name}: {difference}" for difference in file_differences(before / name, after / name)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="result folder of the first run")
    parser.add_argument("after", type=Path, help="result folder of the second run")
    arguments = parser.parse_args(argv)
    for folder in (arguments.before, arguments.after):
        if not folder.is_dir():
            parser.error(f"{folder}: not a folder (expected a result folder of the workflow, e.g. results/demo)")
    differences = compare_runs(arguments.before, arguments.after)
    compared = len(output_files(arguments.before) & output_files(arguments.after))
    if not compared:
        parser.error(f"{arguments.before} and {arguments.after} hold no output files in common to compare")
    for line in differences:
        print(line)
    print(f"{compared} files compared, {len(differences)} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
