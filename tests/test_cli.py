import argparse
import subprocess
import sys

import pytest
import torch

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
    after = subprocess.run(
        [sys.executable, "-m", "genomatt.cli.main", "extract", "--fasta", str(small_genome.fasta), "--bed", str(bed),
         "--width", "10", "--out", str(tmp_path / "x.h5"), "--debug"], capture_output=True, text=True)
    assert after.returncode == 2 and "Traceback" in after.stderr


def test_quiet_before_or_after_the_subcommand_hides_logs_and_progress_bars(small_genome, tmp_path):
    command = [sys.executable, "-m", "genomatt.cli.main"]
    extract = ["extract", "--fasta", str(small_genome.fasta), "--bed", str(small_genome.regions_bed), "--width", "50",
               "--out", str(tmp_path / "x.h5")]
    loud = subprocess.run(command + extract, capture_output=True, text=True)
    assert loud.returncode == 0 and "reading regions" in loud.stderr and "INFO" in loud.stderr
    for argv in (["-q", *extract], [*extract, "-q"], [extract[0], "--quiet", *extract[1:]]):
        quiet = subprocess.run(command + argv, capture_output=True, text=True)
        assert quiet.returncode == 0 and quiet.stderr == "", (argv, quiet.stderr)


def test_simulate_command(tmp_path):
    assert main(["simulate", "--out", str(tmp_path), "--seed", "2", "--chromosomes", "2", "--chromosome-length",
                 "20000", "--positives", "10", "--negatives", "4", "--motifs", "MA0035"]) == 0
    assert (tmp_path / "tasks" / "GATA1.bed").is_file() and (tmp_path / "truth.tsv").is_file()


def device_commands() -> list[tuple[str, list[str]]]:
    """Every subcommand with --device, with a placeholder for each required option."""
    from genomatt.cli.main import build_parser

    parser = build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    commands = []
    for name, subparser in subparsers.choices.items():
        options = {option for action in subparser._actions for option in action.option_strings}
        if "--device" in options:
            required = [action.option_strings[-1] for action in subparser._actions if action.required]
            commands.append((name, [argument for option in required for argument in (option, "1")]))
    return commands


@pytest.mark.parametrize("device, message", [
    ("cuda", "use cpu, or run on a GPU node with a CUDA build of torch"),
    ("cudaa", "device 'cudaa' is not a torch device"),
])
def test_every_command_refuses_a_missing_device_in_one_line(device, message, capsys):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("checks the refusal on a machine without CUDA")
    commands = device_commands()
    assert {name for name, _ in commands} >= {"train", "attribute", "evaluate", "hits"}
    for name, required in commands:
        assert main([name, *required, "--device", device]) == 2, name
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"genomatt {name}: error: device {device!r}"), (name, lines)
        assert message in lines[0]
