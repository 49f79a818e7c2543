import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from faults import damage_chunk, entries, mounted_tmpfs
from synthetic import planted_motifs_h5, synthetic_contributions

from genomatt import __version__
from genomatt.cli.main import main
from genomatt.models.architectures import build_model
from genomatt.motifs.cwm_motifs import read_cwm_motifs
from genomatt.motifs.hits import call_hits_in_store, read_hits, write_hits
from genomatt.store import list_arrays, read_array, read_attrs, read_regions, write_store


def test_version_and_help(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out
    assert main([]) == 2


def test_extract_writes_store(small_genome, tmp_path):
    out = tmp_path / "x.h5"
    assert main(["extract", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
                 "--width", "100", "--out", str(out)]) == 0
    assert list_arrays(out) == {"onehot": (120, 4, 100)}
    assert len(read_regions(out)) == 120
    assert read_attrs(out)["provenance"]["width"] == 100


def test_extract_writes_the_windows_a_block_at_a_time(small_genome, tmp_path, monkeypatch):
    # It held every window in memory (300,000 regions of 1 kb are 4.8 GB); blocks of 7 rows give the same file.
    import genomatt.genome
    from genomatt.genome import load_regions

    regions = tmp_path / "regions.bed"
    # A window run off the chromosome's start: its padding and N count are in the table written after the blocks.
    regions.write_text(small_genome.regions_bed.read_text() + "chr1\t0\t10\tedge\n")
    table, onehot = load_regions(small_genome.fasta, regions, 100, progress=False)
    blocks = []
    reader = genomatt.genome.read_window_blocks

    def small_blocks(table, fasta, backend="pyfaidx", block_bytes=64 << 20, progress=True):
        for block in reader(table, fasta, backend, 7 * 4 * 100 * 4, progress):
            blocks.append(len(block))
            yield block

    monkeypatch.setattr(genomatt.genome, "read_window_blocks", small_blocks)
    out = tmp_path / "x.h5"
    assert main(["extract", "--fasta", str(small_genome.fasta), "--regions", str(regions), "--width", "100",
                 "--out", str(out)]) == 0
    assert max(blocks) == 7 and sum(blocks) == 121
    np.testing.assert_array_equal(read_array(out, "onehot"), onehot)
    written = read_regions(out)
    assert written["n_bases"].tolist() == table["n_bases"].tolist() and written["n_bases"].iloc[-1] == 45
    assert written["padded_left"].iloc[-1] == 45


def test_errors_print_one_line_and_exit_2(tmp_path, small_genome):
    bed = tmp_path / "bad.bed"
    bed.write_text("chr1\t5\t2\n")
    result = subprocess.run(
        [sys.executable, "-m", "genomatt.cli.main", "extract", "--fasta", str(small_genome.fasta),
         "--regions", str(bed), "--width", "10", "--out", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"genomatt extract: error: {bed}:1: start must be < end, got start=5 end=2"
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.h5").exists()
    debug = subprocess.run(
        [sys.executable, "-m", "genomatt.cli.main", "--debug", "extract", "--fasta", str(small_genome.fasta),
         "--regions", str(bed), "--width", "10", "--out", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    after = subprocess.run(
        [sys.executable, "-m", "genomatt.cli.main", "extract", "--fasta", str(small_genome.fasta),
         "--regions", str(bed), "--width", "10", "--out", str(tmp_path / "x.h5"), "--debug"],
        capture_output=True, text=True)
    assert after.returncode == 2 and "Traceback" in after.stderr


def test_quiet_before_or_after_the_subcommand_hides_logs_and_progress_bars(small_genome, tmp_path):
    command = [sys.executable, "-m", "genomatt.cli.main"]
    extract = ["extract", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
               "--width", "50", "--out", str(tmp_path / "x.h5")]
    loud = subprocess.run(command + extract, capture_output=True, text=True)
    assert loud.returncode == 0 and "reading regions" in loud.stderr and "INFO" in loud.stderr
    for argv in (["-q", *extract], [*extract, "-q"], [extract[0], "--quiet", *extract[1:]]):
        quiet = subprocess.run(command + argv, capture_output=True, text=True)
        assert quiet.returncode == 0 and quiet.stderr == "", (argv, quiet.stderr)


def test_simulate_command(tmp_path):
    assert main(["simulate", "--out-dir", str(tmp_path), "--seed", "2", "--n-chromosomes", "2", "--chromosome-length",
                 "20000", "--n-positives", "10", "--n-negatives", "4", "--plant", "MA0035"]) == 0
    assert (tmp_path / "tasks" / "GATA1.bed").is_file() and (tmp_path / "truth.tsv").is_file()


ROOT = Path(__file__).resolve().parents[1]
HEAVY_MODULES = ("torch", "numba", "sklearn", "h5py", "pandas")
COMMANDS = ("simulate", "check", "extract", "train", "attribute", "evaluate", "gather", "motifs", "hits", "report")


def modules_loaded_by(argv: list[str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Build the parser and run ``genomatt ARGV`` in a new process; the heavy libraries it loaded."""
    code = ("import json, sys\n"
            "from genomatt.cli.main import build_parser, main\n"
            "build_parser()\n"
            "try:\n"
            f"    main({argv!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print(json.dumps(sorted(set({HEAVY_MODULES!r}) & set(sys.modules))), file=sys.stderr)\n")
    # Run from the repository root, so that `python -c` imports this checkout's genomatt.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    return result, json.loads(result.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], *([command, "--help"] for command in COMMANDS),
                                  ["attribute", "--regions", "r.h5", "--model", "m.pt", "--out", "c.h5"]])
def test_help_and_argument_errors_load_no_heavy_library(argv):
    """The parser of every subcommand is built, and --help or a wrong option answered, without torch,
    numba, scikit-learn, h5py or pandas: each command imports those in its run."""
    result, loaded = modules_loaded_by(argv)
    assert "usage: genomatt" in result.stdout + result.stderr, result.stderr
    assert loaded == [], (argv, loaded)


def test_the_command_list_is_every_subcommand():
    from genomatt.cli.main import build_parser

    subparsers = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    assert tuple(subparsers.choices) == COMMANDS


def test_the_readme_option_table_names_each_option_s_commands():
    """README.md's table "An option means one thing in every command that has it" lists, for each option,
    exactly the commands whose parser has it."""
    options = option_actions()
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (`--[^|]+) \| [^|]+ \| ([a-z, ]+) \|$", readme, flags=re.MULTILINE)
    assert len(rows) > 10
    for names, commands in rows:
        listed = set(commands.split(", "))
        for option in re.findall(r"`(--[a-z0-9-]+)`", names):
            assert option in options, option
            if listed != {"several"}:
                # A row of two options lists the commands of either.
                assert set(options[option]) <= listed, (option, sorted(options[option]))
        if listed != {"several"}:
            having = set().union(*(options[option] for option in re.findall(r"`(--[a-z0-9-]+)`", names)))
            assert having == listed, (names, sorted(having))


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


def option_actions() -> dict[str, dict[str, argparse.Action]]:
    """Each option of every subcommand: option -> {command: its action}."""
    from genomatt.cli.main import build_parser

    subparsers = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    options: dict[str, dict[str, argparse.Action]] = {}
    for name, subparser in subparsers.choices.items():
        for action in subparser._actions:
            for option in action.option_strings:
                options.setdefault(option, {})[name] = action
    return options


def _kind(action: argparse.Action) -> str:
    """What an option takes: a flag, a number, or text (a path, a name), one or several."""
    if action.nargs == 0:
        return "flag"
    number = action.type in (int, float) or getattr(action.type, "__name__", "") == "positive_int"
    return ("number" if number else "text") + ("s" if action.nargs in ("+", "*") else "")


def test_an_option_means_one_thing_in_every_command():
    options = option_actions()
    for option, commands in options.items():
        kinds = {command: _kind(action) for command, action in commands.items()}
        assert len(set(kinds.values())) == 1, (option, kinds)
    for option in ("--regions", "--task-regions", "--negatives"):
        for command, action in options[option].items():
            assert action.type is None and "BED" in f"{action.metavar} {action.help}", (option, command)
    assert set(options["--regions"]) == {"check", "extract", "evaluate"}
    for command, action in options["--out-dir"].items():
        assert "folder" in action.help, command
    for command, action in options["--out"].items():
        assert "folder" not in action.help.split(";")[0], command
    assert set(options["--out-dir"]) == {"simulate", "evaluate", "hits"}
    assert {command for command, action in options["--contrib"].items() if "contrib" in action.help} == {
        "motifs", "hits", "report"}
    assert not {"--bed", "--h5", "--export", "--positives", "--chromosomes"} & set(options)


@pytest.mark.parametrize("argv, message", [
    (["extract", "--fasta", "g.fa", "--bed", "r.bed", "--width", "10", "--out", "r.h5"], "required: --regions"),
    (["attribute", "--regions", "r.h5", "--model", "m.pt", "--out", "c.h5"], "required: --regions-h5"),
    (["evaluate", "--model", "m.pt", "--fasta", "g.fa", "--regions", "r.bed", "--truth", "t.tsv", "--out", "e"],
     "required: --out-dir"),
    (["simulate", "--out", "sim"], "required: --out-dir"),
    (["report", "--contrib", "c.h5", "--out", "r.html", "--regions", "2"], "unrecognized arguments: --regions 2"),
    (["train", "--fasta", "g.fa", "--bed", "a.bed", "--out", "m.pt"], "required: --task-regions"),
])
def test_an_old_or_abbreviated_option_name_is_an_argparse_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


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


@pytest.fixture(scope="module")
def run_files(small_genome, tmp_path_factory):
    """Inputs of every stage from the small genome: regions, a model, contributions, shards, motifs, hits."""
    folder = tmp_path_factory.mktemp("run_files")
    regions = folder / "regions.h5"
    assert main(["-q", "extract", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
                 "--width", "200", "--out", str(regions)]) == 0
    config = {"architecture": "bpnet", "n_tasks": 2, "input_length": 200, "filters": 8, "n_layers": 2}
    torch.manual_seed(0)
    torch.save(build_model(config).state_dict(), folder / "weights.pt")
    (folder / "model.yaml").write_text(yaml.safe_dump({**config, "weights": "weights.pt"}))
    contrib = synthetic_contributions(small_genome, folder / "contrib.h5")
    motifs = planted_motifs_h5(small_genome, folder / "motifs.h5")
    hits = write_hits(call_hits_in_store(contrib, read_cwm_motifs(motifs), device="cpu"), folder / "hits")["h5"]
    shards = []
    for index in range(2):
        shards.append(folder / f"contrib.{index}.h5")
        assert main(["-q", "attribute", "--regions-h5", str(regions), "--model", str(folder / "model.yaml"), "--out",
                     str(shards[-1]), "--references", "2", "--device", "cpu", "--shard", f"{index}/2"]) == 0
    return {"fasta": small_genome.fasta, "bed": small_genome.regions_bed, "meme": small_genome.motifs_meme,
            "regions": regions, "model": folder / "model.yaml", "contrib": contrib, "motifs": motifs, "hits": hits,
            "shards": shards}


def run_command(*argv: str) -> subprocess.CompletedProcess:
    """Run ``genomatt -q ARGV`` in a new process (a crash there is a failed test, not a crashed session)."""
    return subprocess.run([sys.executable, "-m", "genomatt.cli.main", "-q", *map(str, argv)],
                          capture_output=True, text=True)


def run_in_process(capsys, *argv: str) -> subprocess.CompletedProcess:
    """Run ``genomatt -q ARGV`` in this process; its exit status and standard error."""
    capsys.readouterr()
    status = main(["-q", *map(str, argv)])
    return subprocess.CompletedProcess(argv, status, "", capsys.readouterr().err)


def assert_one_line_error(result: subprocess.CompletedProcess, command: str, pattern: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("genomatt ")]
    assert len(errors) == 1 and re.fullmatch(rf"genomatt {command}: error: {pattern}", errors[0]), result.stderr


def full_disk_commands(files, disk):
    return {
        "extract": ["extract", "--fasta", files["fasta"], "--regions", files["bed"], "--width", "200",
                    "--out", disk / "regions.h5"],
        "attribute": ["attribute", "--regions-h5", files["regions"], "--model", files["model"], "--out",
                      disk / "contrib.h5", "--references", "2", "--device", "cpu", "--export-dir", disk / "interop"],
        "gather": ["gather", "--inputs", *files["shards"], "--out", disk / "contrib.h5"],
        "motifs": ["motifs", "--contrib", files["contrib"], "--out", disk / "motifs" / "motifs.h5",
                   "--meme", files["meme"], "--max-seqlets", "300"],
        "hits": ["hits", "--contrib", files["contrib"], "--motifs", files["motifs"], "--out-dir", disk / "hits",
                 "--fasta", files["fasta"], "--device", "cpu"],
        "report": ["report", "--contrib", files["contrib"], "--motifs", files["motifs"], "--hits", files["hits"],
                   "--out", disk / "report" / "report.html"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("command", ["extract", "attribute", "gather", "motifs", "hits", "report"])
def test_full_disk_is_one_line_and_leaves_nothing(run_files, tmp_path, command):
    with mounted_tmpfs(tmp_path / "disk", size="2m", free=48 * 1024) as disk:
        result = run_command(*full_disk_commands(run_files, disk)[command])
        assert_one_line_error(result, command, r"\S+: cannot write \(No space left on device\); nothing was "
                                               r"written under this name")
        assert entries(disk) == []


@pytest.mark.slow
@pytest.mark.parametrize("command", ["extract", "gather", "hits", "report"])
def test_read_only_output_folder_is_one_line(run_files, tmp_path, command):
    with mounted_tmpfs(tmp_path / "disk", read_only=True) as disk:
        result = run_command(*full_disk_commands(run_files, disk)[command])
        assert_one_line_error(result, command, r"\S+: cannot write \(Read-only file system\); nothing was "
                                               r"written under this name")


def test_extract_refuses_or_skips_regions_past_a_chromosome_end(small_genome, tmp_path, capsys):
    bed = tmp_path / "regions.bed"
    bed.write_text("chr1\t100\t300\tinside\nchr1\t70000\t70100\tpast_end\nchr2\t59900\t60050\tacross_end\n")
    out = tmp_path / "regions.h5"
    result = run_in_process(capsys, "extract", "--fasta", small_genome.fasta, "--regions", bed, "--width", "100",
                            "--out", out)
    assert_one_line_error(result, "extract", rf"{bed}: 1 regions, or their windows, start at or past the end of "
                                             rf"their chromosome in {small_genome.fasta} \(first: past_end at "
                                             r"chr1:70000-70100, chromosome length 60000\); .*")
    assert list(tmp_path.iterdir()) == [bed]
    assert main(["extract", "--fasta", str(small_genome.fasta), "--regions", str(bed), "--width", "100",
                 "--out", str(out), "--on-missing", "skip"]) == 0
    assert read_regions(out)["name"].tolist() == ["inside", "across_end"]
    assert read_attrs(out)["provenance"]["skipped_regions"] == [["chr1", 70000, 70100, "past_end"]]


def test_the_next_run_removes_temporary_files_of_a_killed_write(small_genome, tmp_path):
    stale = tmp_path / ".regions.h5.k1ll3d00.tmp"
    stale.write_bytes(b"\x89HDF partial")
    assert main(["extract", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
                 "--width", "100", "--out", str(tmp_path / "regions.h5")]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["regions.h5"]


@pytest.mark.parametrize("other", ["reordered", "fewer"])
def test_report_refuses_hits_of_another_run(run_files, tmp_path, capsys, other):
    contrib = run_files["contrib"]
    rows = np.arange(len(read_regions(contrib)))[::-1] if other == "reordered" else np.arange(100)
    other_contrib = write_store(
        tmp_path / "other" / "contrib.h5", read_regions(contrib).iloc[rows].reset_index(drop=True),
        {name: read_array(contrib, name)[rows] for name in list_arrays(contrib)}, kind="contributions",
        provenance=read_attrs(contrib)["provenance"], attrs={"tasks": read_attrs(contrib)["tasks"]})
    out = tmp_path / "out" / "report.html"
    result = run_in_process(capsys, "report", "--contrib", other_contrib, "--hits", run_files["hits"], "--out", out)
    assert_one_line_error(result, "report", rf"{run_files['hits']}: not made from {other_contrib}: \d+ of \d+ "
                                            r"\w+( \w+)?s lie outside the region they name .*; give the files of one run")
    assert not (tmp_path / "out").exists()


def test_motifs_refuses_a_damaged_contribution_file(run_files, tmp_path, capsys):
    contrib = tmp_path / "contrib.h5"
    contrib.write_bytes(run_files["contrib"].read_bytes())
    damage_chunk(contrib, "hypothetical", chunk=0)
    result = run_in_process(capsys, "motifs", "--contrib", contrib, "--out", tmp_path / "out" / "motifs.h5",
                         "--meme", run_files["meme"])
    assert_one_line_error(result, "motifs", rf"{contrib}: cannot read the contributions of task 0 \(.*\); the file "
                                            r"is damaged, write it again")
    assert not (tmp_path / "out").exists() or entries(tmp_path / "out") == []


@pytest.mark.parametrize("fasta", ["missing", "other_chromosomes"])
def test_hits_checks_the_fasta_before_writing(run_files, tmp_path, capsys, fasta):
    path = tmp_path / "genome.fa"
    if fasta == "other_chromosomes":
        path.write_text(">chrX\nACGTACGTAC\n")
    result = run_in_process(capsys, "hits", "--contrib", run_files["contrib"], "--motifs", run_files["motifs"],
                            "--out-dir", tmp_path / "hits", "--fasta", path, "--device", "cpu")
    pattern = (r"\S+genome.fa: FASTA file not found" if fasta == "missing" else
               rf"{path}: chromosomes \['chr1', 'chr2', 'chr3'\] of the regions of \S+ are not in the FASTA .*")
    assert_one_line_error(result, "hits", pattern)
    assert not (tmp_path / "hits").exists()


@pytest.mark.parametrize("option", ["--fasta", "--regions", "--meme"])
def test_a_folder_given_as_a_file_is_named_as_one(small_genome, tmp_path, capsys, option):
    # It said "not found", of a path that exists.
    files = {"--fasta": str(small_genome.fasta), "--regions": str(small_genome.regions_bed),
             "--meme": str(small_genome.motifs_meme)}
    folder = tmp_path / "data"
    folder.mkdir()
    arguments = [value for name, path in {**files, option: str(folder)}.items() for value in (name, path)]
    assert main(["check", *arguments, "--width", "200"]) == 2
    assert f"{folder}: a folder, not a" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "duplicated", "other_seed", "out_of_order"])
def test_gather_command_checks_its_shards(run_files, tmp_path, capsys, case):
    first, second = run_files["shards"]
    if case == "other_seed":
        second = tmp_path / "seed1" / "contrib.1.h5"
        assert main(["-q", "attribute", "--regions-h5", str(run_files["regions"]), "--model", str(run_files["model"]),
                     "--out", str(second), "--references", "2", "--device", "cpu", "--shard", "1/2",
                     "--seed", "1"]) == 0
    inputs = {"missing": [second], "duplicated": [first, first, second], "other_seed": [first, second],
              "out_of_order": [second, first]}[case]
    out = tmp_path / "out" / "contrib.h5"
    result = run_in_process(capsys, "gather", "--inputs", *inputs, "--out", out)
    if case == "out_of_order":
        assert result.returncode == 0
        assert read_regions(out).equals(read_regions(run_files["regions"]))
        assert read_attrs(out)["provenance"]["gathered"]["files"] == [str(first), str(second)]
        return
    pattern = {"missing": rf"{out}: cannot gather: shards \[0\] of 2 are missing \(given shards \[1\]\)",
               "duplicated": rf"{first}: shard 0 of 2 is given twice \(also {first}\)",
               "other_seed": rf"{second}: seed = 1 differs from {first}'s 0; shards of different runs cannot be "
                             r"gathered"}[case]
    assert_one_line_error(result, "gather", pattern)
    assert not out.parent.exists()


def test_a_command_restores_the_sigterm_handler_it_replaced(tmp_path, capsys):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert main(["gather", "--inputs", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "out.h5")]) == 2
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_inside_a_library_callback_is_one_line_too(small_genome, tmp_path, monkeypatch, capsys):
    # Ctrl-C while h5py calls the Python file object it writes through comes out as h5py's own errors.
    import genomatt.cli.extract as extract_command

    def interrupted_in_h5py(args):
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as error:
                raise SystemError("_GuardedFile.flush returned a result with an exception set") from error
        except SystemError:
            raise RuntimeError("Can't decrement id ref count (unable to close file)") from None

    monkeypatch.setattr(extract_command, "run", interrupted_in_h5py)
    status = main(["extract", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
                   "--width", "200", "--out", str(tmp_path / "regions.h5")])
    assert status == 130
    assert capsys.readouterr().err.strip() == "genomatt extract: interrupted; its outputs were removed (earlier versions put back)"

    def failing(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(extract_command, "run", failing)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["extract", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
              "--width", "200", "--out", str(tmp_path / "regions.h5")])


def test_ctrl_c_is_one_line_and_leaves_nothing(small_genome, tmp_path, monkeypatch, capsys):
    import genomatt.cli.extract as extract_command
    from genomatt.atomic import atomic_path

    def interrupted(args):
        with atomic_path(args.out) as tmp:
            tmp.write_text("part")
        raise KeyboardInterrupt

    monkeypatch.setattr(extract_command, "run", interrupted)
    out = tmp_path / "regions.h5"
    status = main(["extract", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
                   "--width", "200", "--out", str(out)])
    assert status == 130
    assert capsys.readouterr().err.strip() == "genomatt extract: interrupted; its outputs were removed (earlier versions put back)"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [
    ["motifs", "--contrib", "{missing}", "--out", "{blocked}/motifs.h5"],
    ["hits", "--contrib", "{missing}", "--motifs", "{missing}", "--out-dir", "{blocked}/hits"],
    ["train", "--fasta", "{missing}", "--task-regions", "{missing}", "--out", "{blocked}/model.pt"],
    ["report", "--contrib", "{missing}", "--motifs", "{missing}", "--out", "{blocked}/sub/report.html"],
])
def test_an_output_that_could_not_be_written_is_refused_before_any_work(tmp_path, capsys, command):
    # The output folder cannot be made (a file stands where it would be): refused before reading any input,
    # where the command would have failed only at its end.
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    argv = [part.format(missing=tmp_path / "missing", blocked=blocked) for part in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"genomatt {command[0]}: error: {blocked}/" in err
    assert f": cannot write: {blocked} is a file, where a folder is needed" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["blocked"]


@pytest.mark.parametrize("command, output", [
    (["motifs", "--contrib", "{contrib}", "--out", "{contrib}", "--meme", "{meme}"], "--out"),
    (["report", "--contrib", "{contrib}", "--out", "{contrib}"], "--out"),
    (["extract", "--fasta", "{fasta}", "--regions", "{regions}", "--width", "100", "--out", "{fasta}"], "--out"),
])
def test_an_output_that_would_replace_an_input_is_refused_before_any_work(run_files, small_genome, tmp_path, capsys,
                                                                          command, output):
    contrib, fasta = tmp_path / "contrib.h5", tmp_path / "genome.fa"
    contrib.write_bytes(run_files["contrib"].read_bytes())
    fasta.write_bytes(small_genome.fasta.read_bytes())
    before = {path.name: path.read_bytes() for path in (contrib, fasta)}
    names = {"contrib": contrib, "meme": run_files["meme"], "fasta": fasta, "regions": small_genome.regions_bed}
    argv = [part.format(**names) for part in command]
    replaced = argv[argv.index(output) + 1]
    result = run_in_process(capsys, *argv)
    assert_one_line_error(result, command[0], rf"{output} {replaced} is also the input --\S+ {replaced}: writing it "
                                              r"would replace that input; choose another output path")
    assert {path.name: path.read_bytes() for path in (contrib, fasta)} == before


def test_an_output_folder_holding_an_input_under_an_outputs_name_keeps_the_input(run_files, tmp_path, capsys):
    out = tmp_path / "hits"
    out.mkdir()
    contrib = out / "hits.h5"
    contrib.write_bytes(run_files["contrib"].read_bytes())
    result = run_in_process(capsys, "hits", "--contrib", contrib, "--motifs", run_files["motifs"], "--out-dir", out,
                            "--device", "cpu")
    assert_one_line_error(result, "hits", rf"{contrib}: is also an input of this command, which writing it would "
                                          r"replace; nothing was written under this name .*")
    assert contrib.read_bytes() == run_files["contrib"].read_bytes()
    assert sorted(path.name for path in out.iterdir()) == ["hits.h5"]


@pytest.mark.parametrize("name", ["motifs.meme", "matches.tsv", "seqlets.bed"])
def test_motifs_refuses_an_out_named_as_another_of_its_outputs(run_files, tmp_path, capsys, monkeypatch, name):
    def discover(*args, **kwargs):
        raise AssertionError("discovery ran")

    monkeypatch.setattr("genomatt.motifs.task_discovery.discover_task_motifs", discover)
    result = run_in_process(capsys, "motifs", "--contrib", run_files["contrib"], "--out", tmp_path / name,
                            "--meme", run_files["meme"])
    assert_one_line_error(result, "motifs", rf"--out {tmp_path / name}: genomatt motifs writes another of its "
                                            r"outputs under this name in that folder .*")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_hits_run_leaves_an_earlier_runs_outputs_as_they_were(run_files, small_genome, tmp_path, capsys):
    out = tmp_path / "hits"
    arguments = ["hits", "--contrib", run_files["contrib"], "--motifs", run_files["motifs"], "--out-dir", out,
                 "--device", "cpu"]
    assert run_in_process(capsys, *arguments).returncode == 0
    earlier = {path.name: path.read_bytes() for path in out.iterdir()}
    # Its tracks cannot be written (a folder where the first task's bigWig goes), after the hit tables were.
    task = read_attrs(run_files["contrib"])["tasks"][0]
    (out / f"contrib.{task}.bw" / "sub").mkdir(parents=True)
    result = run_in_process(capsys, *arguments, "--fasta", small_genome.fasta)
    assert result.returncode == 2 and f"contrib.{task}.bw" in result.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == earlier


def test_motifs_refuses_a_known_motif_file_under_an_outputs_name_before_discovery(run_files, tmp_path, capsys,
                                                                                    monkeypatch):
    # A MEME file downloaded as motifs.meme into the folder of --out: motifs writes its own motifs.meme there.
    meme = tmp_path / "motifs.meme"
    meme.write_bytes(run_files["meme"].read_bytes())

    def discover(*args, **kwargs):
        raise AssertionError("discovery ran")

    monkeypatch.setattr("genomatt.motifs.task_discovery.discover_task_motifs", discover)
    result = run_in_process(capsys, "motifs", "--contrib", run_files["contrib"], "--out", tmp_path / "motifs.h5",
                            "--meme", meme)
    assert_one_line_error(result, "motifs", rf"{meme}: is also an input of this command, which writing it would "
                                            r"replace; nothing was written under this name .*")
    assert meme.read_bytes() == run_files["meme"].read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["motifs.meme"]


@pytest.mark.parametrize("given", ["motifs", "hits"])
def test_report_refuses_motifs_or_hits_of_tasks_the_contributions_lack(run_files, tmp_path, capsys, given):
    # Contributions of the last task only (attribute --targets), with the motifs and hits of every task.
    contrib = run_files["contrib"]
    tasks = read_attrs(contrib)["tasks"]
    arrays = {name: read_array(contrib, name) for name in list_arrays(contrib)}
    kept = {name: array[:, -1:] if array.ndim == 4 or name in ("delta", "prediction") else array
            for name, array in arrays.items()}
    fewer = write_store(tmp_path / "fewer" / "contrib.h5", read_regions(contrib), kept, kind="contributions",
                        provenance=read_attrs(contrib)["provenance"], attrs={"tasks": tasks[-1:]})
    out = tmp_path / "out" / "report.html"
    result = run_in_process(capsys, "report", "--contrib", fewer, f"--{given}", run_files[given], "--out", out)
    missing = sorted({*tasks[:-1]} & ({m.task for m in read_cwm_motifs(run_files["motifs"])} if given == "motifs"
                                     else set(read_hits(run_files["hits"]).qc["task"])))
    assert_one_line_error(result, "report", rf"{run_files[given]}: {given} of tasks {re.escape(str(missing))} that "
                                            rf"{fewer} does not hold \(it holds {re.escape(str(tasks[-1:]))}\); give "
                                            r"the files of one run")
    assert not out.exists()


@pytest.mark.parametrize("command", ["simulate", "train", "attribute", "motifs", "hits", "evaluate"])
def test_a_negative_seed_is_refused_when_parsed(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--seed", "-1"])
    assert exit_info.value.code == 2
    assert f"genomatt {command}: error: argument --seed: a seed must be at least 0, got -1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([command, "--seed", str(2**64)])
    assert (f"genomatt {command}: error: argument --seed: a seed must be at most 9223372036854775807 (2^63 - 1), "
            f"got {2**64}") in capsys.readouterr().err


@pytest.mark.parametrize("command, option, expected", [
    ("hits", "--min-similarity", r"\(0, 1\]"), ("hits", "--min-task-share", r"\[0, 1\]"),
    ("motifs", "--min-purity", r"\[0, 1\]"), ("motifs", "--min-strength", r"\[0, 1\)"),
    ("motifs", "--max-seqlets", r"at least 100, the fewest seqlets of a sign that are clustered, got 2: no motif "
                                r"could be found"),
])
def test_a_setting_out_of_range_is_named_as_its_option(run_files, tmp_path, capsys, command, option, expected):
    out = ["--out-dir", tmp_path / "hits", "--motifs", run_files["motifs"]] if command == "hits" else [
        "--out", tmp_path / "motifs.h5", "--meme", run_files["meme"]]
    result = run_in_process(capsys, command, "--contrib", run_files["contrib"], *out, option, "2")
    message = expected if expected.startswith("at least") else rf"in {expected}, got 2.0"
    assert_one_line_error(result, command, rf"{option} must be {message}")


def test_a_negative_count_of_seqlets_is_refused_when_parsed(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["hits", "--min-seqlets", "-5"])
    assert exit_info.value.code == 2
    assert "genomatt hits: error: argument --min-seqlets: must be at least 0, got -5" in capsys.readouterr().err


def _meme(path, names):
    rows = "\n".join(["0.7 0.1 0.1 0.1", "0.1 0.7 0.1 0.1", "0.1 0.1 0.7 0.1", "0.1 0.1 0.1 0.7"] * 2)
    path.write_text("MEME version 4\n\nALPHABET= ACGT\n\n" + "".join(
        f"MOTIF {name}\nletter-probability matrix: alength= 4 w= 8\n{rows}\n\n" for name in names))
    return path


def test_hits_refuses_motif_names_that_share_a_file_name(run_files, tmp_path, capsys):
    meme = _meme(tmp_path / "known.meme", ["TAL1::TCF3", "TAL1_TCF3"])
    result = run_in_process(capsys, "hits", "--contrib", run_files["contrib"], "--motifs", meme, "--out-dir",
                            tmp_path / "hits", "--device", "cpu")
    assert_one_line_error(result, "hits", r"motifs 'TAL1::TCF3' and 'TAL1_TCF3' would both be written as 'TAL1_TCF3' "
                                          r".*; rename one")
    assert not (tmp_path / "hits").exists()


def test_hits_says_when_its_filters_leave_no_motif(run_files, tmp_path, caplog):
    meme = _meme(tmp_path / "known.meme", ["A", "B"])
    with caplog.at_level("WARNING", logger="genomatt"):
        assert main(["hits", "--contrib", str(run_files["contrib"]), "--motifs", str(meme), "--out-dir",
                     str(tmp_path / "hits"), "--exclude", "A", "B", "--device", "cpu"]) == 0
    assert (f"{meme}: no motif is left by --include, --exclude and --min-seqlets; writing empty hit tables"
            in caplog.text)


def test_hits_says_when_no_motif_is_of_the_tasks_asked_for(run_files, small_genome, tmp_path, caplog):
    one_task = planted_motifs_h5(small_genome, tmp_path / "one.h5", n_motifs=1)
    (motif_task,) = {motif.task for motif in read_cwm_motifs(one_task)}
    other = next(task for task in read_attrs(run_files["contrib"])["tasks"] if task != motif_task)
    with caplog.at_level("WARNING", logger="genomatt"):
        assert main(["hits", "--contrib", str(run_files["contrib"]), "--motifs", str(one_task),
                     "--out-dir", str(tmp_path / "hits"), "--tasks", other, "--device", "cpu"]) == 0
    assert f"no motif of tasks {[other]} (its motifs are of tasks {[motif_task]})" in caplog.text


@pytest.mark.parametrize("command", ["check", "motifs", "hits"])
def test_a_labels_column_without_task_regions_is_refused(command, tmp_path, capsys):
    result = run_in_process(capsys, command, "--labels-column", "name", *{
        "check": ["--fasta", tmp_path / "g.fa", "--regions", tmp_path / "r.bed", "--width", "100"],
        "motifs": ["--contrib", tmp_path / "c.h5", "--out", tmp_path / "m.h5"],
        "hits": ["--contrib", tmp_path / "c.h5", "--motifs", tmp_path / "m.h5", "--out-dir", tmp_path / "h"]}[command])
    assert_one_line_error(result, command, r"--labels-column names the task column of a --task-regions BED, and none "
                                           r"is given")
