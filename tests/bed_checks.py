"""Checks that a BED or narrowPeak file we write is valid for bedtools and the UCSC genome browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL_COMMAND = "apt-get install -y bedtools"


def bedtools() -> str:
    """The bedtools command, installed with apt-get where missing and possible; else the test is skipped."""
    if shutil.which("bedtools") is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["bash", "-c", f"apt-get update && {INSTALL_COMMAND}"], env=env, capture_output=True,
                       timeout=1200)
    path = shutil.which("bedtools")
    if path is None:
        pytest.skip(f"bedtools is not installed and cannot be installed here (needs root and apt-get: "
                    f"{INSTALL_COMMAND})")
    return path


def _is_int(text: str) -> bool:
    return re.fullmatch(r"-?\d+", text) is not None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def ucsc_problems(path: Path, narrowpeak: bool = False, extra_columns: int = 0) -> list[str]:
    """Lines of a BED (or narrowPeak) file that the UCSC browser would reject, with the reason.

    ``extra_columns``: the file is BED6+N, whose last N columns are not BED's (the browser reads the first
    six, ``cut -f 1-6``); every other column is checked as BED's.
    """
    problems, widths = [], set()
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        fields = line.split("\t")
        widths.add(len(fields))
        where = f"{path}:{number}"
        if len(fields) < 3 or (narrowpeak and len(fields) != 10):
            problems.append(f"{where}: {len(fields)} columns")
            continue
        chrom, start, end = fields[:3]
        if not chrom or re.search(r"\s", chrom):
            problems.append(f"{where}: chromosome {chrom!r}")
        if not (_is_int(start) and _is_int(end) and 0 <= int(start) < int(end)):
            problems.append(f"{where}: start/end {start}, {end} are not integers with 0 <= start < end")
        if len(fields) > 3 and (not fields[3] or re.search(r"\s", fields[3])):
            problems.append(f"{where}: name {fields[3]!r}")
        if len(fields) > 4 and not (_is_int(fields[4]) and 0 <= int(fields[4]) <= 1000):
            problems.append(f"{where}: score {fields[4]!r} is not an integer in 0-1000")
        if len(fields) > 5 and fields[5] not in ("+", "-", "."):
            problems.append(f"{where}: strand {fields[5]!r}")
        standard = len(fields) - extra_columns
        if extra_columns and standard != 6:
            problems.append(f"{where}: {len(fields)} columns for BED6+{extra_columns}")
        if not narrowpeak and standard > 6:
            # thickStart, thickEnd: integers within the interval (UCSC reads column 7 on as BED's own).
            thick = fields[6:8]
            if not (all(_is_int(value) for value in thick)
                    and int(start) <= int(thick[0]) <= int(thick[-1]) <= int(end)):
                problems.append(f"{where}: thickStart/thickEnd {thick} are not integers within the interval")
        if narrowpeak:
            if not all(_is_number(value) for value in fields[6:9]):
                problems.append(f"{where}: signalValue/pValue/qValue {fields[6:9]} are not numbers")
            peak = fields[9]
            if not (_is_int(peak) and (int(peak) == -1 or 0 <= int(peak) < int(end) - int(start))):
                problems.append(f"{where}: peak {peak!r} is not -1 or an offset inside the interval")
    if len(widths) > 1:
        problems.append(f"{path}: lines have different column counts {sorted(widths)}")
    return problems


def assert_valid_bed(path: str | os.PathLike, narrowpeak: bool = False, extra_columns: int = 0) -> None:
    """bedtools reads the file (sorts and self-intersects it) and every line passes the UCSC rules (those of its
    first six columns for BED6+N, ``extra_columns`` = N)."""
    path = Path(path)
    for command in (["sort", "-i", str(path)], ["intersect", "-u", "-a", str(path), "-b", str(path)]):
        result = subprocess.run([bedtools(), *command], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "rror" not in result.stderr, f"bedtools {command[0]}: {result.stderr}"
    assert ucsc_problems(path, narrowpeak, extra_columns) == []

