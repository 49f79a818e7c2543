import subprocess
import sys

import pytest

from genomatt import __version__
from genomatt.cli.main import main
from genomatt.store import list_arrays, read_attrs, read_regions


def test_version_and_help(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out
    assert main([]) == 2


def test_extract_writes_store(small_genome, tmp_path):
    out = tmp_path / "x.h5"
    assert main(["extract", "--fasta", str(small_genome.fasta), "--bed", str(small_genome.regions_bed),
                 "--width", "100", "--out", str(out)]) == 0
    assert list_arrays(out) == {"onehot": (120, 4, 100)}
    assert len(read_regions(out)) == 120
    assert read_attrs(out)["provenance"]["width"] == 100


def test_errors_print_one_line_and_exit_2(tmp_path, small_genome):
    bed = tmp_path / "bad.bed"
    bed.write_text("chr1\t5\t2\n")
    result = subprocess.run(
        [sys.executable, "-m", "genomatt.cli.main", "extract", "--fasta", str(small_genome.fasta), "--bed", str(bed),
         "--width", "10", "--out", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"genomatt extract: error: {bed}:1: start must be < end, got start=5 end=2"
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.h5").exists()
    debug = subprocess.run(
        [sys.executable, "-m", "genomatt.cli.main", "--debug", "extract", "--fasta", str(small_genome.fasta),
         "--bed", str(bed), "--width", "10", "--out", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_simulate_command(tmp_path):
    assert main(["simulate", "--out", str(tmp_path), "--seed", "2", "--chromosomes", "2", "--chromosome-length",
                 "20000", "--positives", "10", "--negatives", "4", "--motifs", "MA0035"]) == 0
    assert (tmp_path / "tasks" / "GATA1.bed").is_file() and (tmp_path / "truth.tsv").is_file()
