"""The Snakemake workflow: lint, dry run, config validation, and a small full run that is killed and resumed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from genomatt.genome import read_bed
from genomatt.motifs.hits import read_hits
from genomatt.simulate import SimulationSettings, simulate_genome
from genomatt.store import list_arrays, read_array, read_attrs

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE_TIMEOUT = 1500


def snakemake_command(*args: str, config: Path | None = None) -> list[str]:
    """A snakemake call, wrapped in `timeout -k` (snakemake may ignore SIGTERM)."""
    command = ["timeout", "-k", "30", str(SNAKEMAKE_TIMEOUT), sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return command + (["--configfile", str(config)] if config is not None else [])


def environment(*python_path: Path) -> dict[str, str]:
    """The test's environment with this interpreter's scripts (the `genomatt` command) first on PATH, and
    ``python_path`` (where a user's model lives) first on PYTHONPATH."""
    paths = [str(path) for path in python_path] + [os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join(path for path in paths if path)}


def run_snakemake(*args: str, config: Path | None = None, cwd: Path = ROOT,
                  python_path: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(*args, config=config), cwd=cwd, env=environment(*python_path),
                          capture_output=True, text=True)


def rule_blocks(output: str) -> dict[str, list[str]]:
    """The job blocks of a dry run's output, by rule name."""
    blocks: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        match = re.match(r"(?:local)?rule (\w+):", block.strip())
        if match:
            blocks.setdefault(match[1], []).append(block)
    return blocks


@pytest.fixture(scope="module")
def user_data(tmp_path_factory):
    """A user's data as the README's "Use your own data" describes: a FASTA, a narrowPeak of the regions
    to explain, one BED per task (named after the task) and a model of their own (`user_model:build`,
    in a folder put on PYTHONPATH)."""
    folder = tmp_path_factory.mktemp("user_data")
    genome = simulate_genome(folder / "simulated", SimulationSettings(
        seed=3, motifs=("MA2388", "MA0139"), n_chromosomes=3, chromosome_length=60_000, region_width=200,
        n_positive_regions=80, n_negative_regions=20))
    shutil.copy(genome.fasta, folder / "genome.fa")
    regions = read_bed(genome.regions_bed)
    with open(folder / "peaks.narrowPeak", "w") as handle:
        for index, row in regions.iterrows():
            handle.write(f"{row.chrom}\t{row.start}\t{row.end}\tpeak_{index}\t100\t.\t5.0\t-1\t-1\t"
                         f"{(row.end - row.start) // 2}\n")
    for task in ("GATA1", "CTCF"):
        shutil.copy(genome.task_beds[task], folder / f"{task}.bed")
    (folder / "models").mkdir()
    shutil.copy(ROOT / "tests" / "user_model.py", folder / "models" / "user_model.py")
    return folder


def user_config(tmp_path: Path, data: Path, **sample) -> Path:
    """The README's user template (config/user.yaml) pointed at the user's files, as the README says."""
    config = yaml.safe_load((ROOT / "config" / "user.yaml").read_text())
    config["outdir"] = str(tmp_path / "out")
    config["width"] = 200
    config["samples"] = {"k562": {"fasta": str(data / "genome.fa"), "regions": str(data / "peaks.narrowPeak"),
                                  "tasks": [str(data / "GATA1.bed"), str(data / "CTCF.bed")], **sample}}
    config["train"].update({"val_chroms": ["chr2"], "test_chroms": ["chr3"], "epochs": 1, "threads": 1})
    config["attribution"].update({"shards": 2, "references": 4, "device": "cpu"})
    config["motifs"]["threads"] = 1
    path = tmp_path / "my_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def small_config(tmp_path: Path, **sections) -> Path:
    """The default config scaled down to run in about a minute: 2 motifs, 3 short chromosomes, 5 epochs."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["outdir"] = str(tmp_path / "out")
    config["simulate"].update({"motifs": ["MA2388", "MA0139"], "chromosomes": 3, "chromosome_length": 100_000,
                               "positives": 300, "negatives": 100})
    config["train"].update({"val_chroms": ["chr2"], "test_chroms": ["chr3"], "epochs": 5})
    config["attribution"].update({"shards": 3, "references": 8})
    config["motifs"]["threads"] = 1
    for section, values in sections.items():
        config[section].update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_lint_is_clean():
    result = run_snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition" in result.stdout + result.stderr


def test_dry_run_of_default_config(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["outdir"] = str(tmp_path / "out")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", config=path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for rule in ("simulate", "extract", "train", "attribute_shard", "gather_contributions", "motifs", "hits",
                 "report", "all"):
        assert f"rule {rule}:" in output
    assert output.count("rule attribute_shard:") == config["attribution"]["shards"]


def printed_job(tmp_path: Path, section: str, values: dict, rule: str) -> str:
    """The job block of ``rule`` in a printed dry run of the default config with ``values`` set in ``section``."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["outdir"] = str(tmp_path / "out")
    config.setdefault(section, {}).update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", "-p", config=path)
    assert result.returncode == 0, result.stdout + result.stderr
    (block,) = rule_blocks(result.stdout + result.stderr)[rule]
    return block


def test_discovery_filters_reach_genomatt_motifs(tmp_path):
    block = printed_job(tmp_path, "motifs", {"min_strength": 0.2, "min_purity": 0.4, "min_seqlet_share": 0.25},
                        "motifs")
    assert "--min-strength 0.2" in block and "--min-purity 0.4" in block and "--min-seqlet-share 0.25" in block


def test_hit_parameters_of_the_config_reach_genomatt_hits(tmp_path):
    block = printed_job(tmp_path, "hits", {"fdr": 0.01, "min_task_share": 0.2}, "hits")
    assert "--fdr 0.01" in block and "--min-task-share 0.2" in block
    # Keys the config leaves out take the defaults of the schema, the command's own (genomatt/motifs/hit_parameters.py).
    assert "--min-similarity 0.7" in block and "--energy-floor 1.0" in block


@pytest.mark.parametrize("section, rule", [("train", "train"), ("attribution", "attribute_shard"),
                                           ("gather", "gather_contributions"), ("motifs", "motifs"), ("hits", "hits")])
def test_each_stage_takes_its_cluster_resources_from_the_config(tmp_path, section, rule):
    # One attribution shard, so that the rule prints one job.
    shards = {"shards": 1} if section == "attribution" else {}
    block = printed_job(tmp_path, section, {"mem_mb": 64000, "runtime": 720, **shards}, rule)
    assert "mem_mb=64000" in block and "runtime=720" in block, block
    command = next((line for line in block.splitlines() if "genomatt " in line), "")
    assert "--mem-mb" not in command and "--runtime" not in command


def test_training_options_of_the_config_reach_genomatt_train(tmp_path):
    from genomatt.cli.main import build_parser

    architecture = tmp_path / "wide.yaml"
    architecture.write_text("architecture: bpnet\nfilters: 256\nn_layers: 0\nfirst_kernel_size: 15\npooling: max\n")
    # An Ensembl genome's chromosomes are numbers in YAML.
    block = printed_job(tmp_path, "train", {"architecture_config": str(architecture), "learning_rate": 0.001,
                                            "weight_decay": 0.0005, "patience": 10, "val_chroms": [10],
                                            "test_chroms": ["X", 3]}, "train")
    command = next(line for line in block.splitlines() if "genomatt train" in line)
    args = build_parser().parse_args(command.split("genomatt ", 1)[1].split(" >")[0].split())
    assert (args.learning_rate, args.weight_decay, args.patience) == (0.001, 0.0005, 10)
    assert args.architecture_config == str(architecture) and args.architecture is None
    assert (args.val_chroms, args.test_chroms) == (["10"], ["X", "3"])


def test_one_architecture_per_config(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["train"].update({"architecture": "bpnet", "architecture_config": "wide.yaml"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", config=path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "should not be valid under {'required': ['architecture', 'architecture_config']}" in output


def test_simulation_without_a_motif_list_plants_the_default_motifs(tmp_path):
    """config/README.md: `simulate.motifs` left out plants GATA1, TAL1::TCF3, CTCF, SPI1 and CEBPB."""
    from genomatt.cli.main import build_parser
    from genomatt.simulation_settings import DEFAULT_MOTIFS

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["outdir"] = str(tmp_path / "out")
    del config["simulate"]["motifs"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", "-p", config=path)
    assert result.returncode == 0, result.stdout + result.stderr
    (block,) = rule_blocks(result.stdout + result.stderr)["simulate"]
    command = next(line for line in block.splitlines() if "genomatt simulate" in line)
    # The shell expands `$(dirname FILE)`; the folder does not matter here.
    argv = re.sub(r"\$\(dirname (\S+)\)", r"\1", command.split("genomatt ", 1)[1].split(" >")[0]).split()
    assert tuple(build_parser().parse_args(argv).motifs) == DEFAULT_MOTIFS


@pytest.mark.parametrize("path", sorted((ROOT / "bench" / "configs").glob("*.yaml")), ids=lambda path: path.stem)
def test_benchmark_configs_run_as_documented(tmp_path, path):
    # docs/benchmarks.md runs each of these with `snakemake --configfile`; each names that command itself.
    assert f"Run: snakemake --configfile bench/configs/{path.name}" in " ".join(path.read_text().split())
    config = yaml.safe_load(path.read_text())
    config["outdir"] = str(tmp_path / "out")
    copy = tmp_path / path.name
    copy.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", config=copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule report:" in result.stdout + result.stderr


@pytest.mark.parametrize("section, key, value, expected", [
    ("", "width", -5, "instance['width']"),
    ("attribution", "device", "gpu", "instance['attribution']['device']"),
    ("samples", "other", {"fasta": "x.fa"}, "'regions' is a required property"),
    ("samples", "other", {"fasta": "x.fa", "regions": "x.bed"}, "'tasks' is a required property"),
    ("", "atribution", {"device": "cpu"}, "Additional properties are not allowed ('atribution' was unexpected)"),
    ("attribution", "shard", 2, "Additional properties are not allowed ('shard' was unexpected)"),
    ("motifs", "min_purity", 1.5, "instance['motifs']['min_purity']"),
    ("train", "learning_rate", 0, "instance['train']['learning_rate']"),
    # Values the commands refuse are refused by the config, before any job.
    ("hits", "fdr", 1, "instance['hits']['fdr']"),
    ("motifs", "window", 10, "instance['motifs']['window']"),
    ("samples", "other", {"fasta": "x.fa", "regions": "x.bed", "model": "m.pt", "task": ["a"]},
     "Additional properties are not allowed ('task' was unexpected)"),
    # A sample is a folder of outdir, beside logs/ and benchmarks/.
    ("samples", "..", {"fasta": "x.fa", "regions": "x.bed", "model": "m.pt"}, "'..' should not be valid"),
    ("samples", "benchmarks", {"fasta": "x.fa", "regions": "x.bed", "model": "m.pt"},
     "'benchmarks' should not be valid"),
    ("samples", "other", {"fasta": "x.fa", "regions": "x.bed", "model": "m.pt", "labels_column": "name"},
     "'tasks' is a dependency of 'labels_column'"),
])
def test_invalid_config_is_rejected(tmp_path, section, key, value, expected):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    (config[section] if section else config)[key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", config=path)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """A small full run, killed while the model trains, then run again to completion."""
    tmp_path = tmp_path_factory.mktemp("workflow")
    config = small_config(tmp_path)
    out = tmp_path / "out"
    process = subprocess.Popen(snakemake_command(config=config), cwd=ROOT, env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not (out / "logs" / "demo" / "train.log").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "demo" / "model" / "model.pt").exists(), "the run was not killed while training"
    genome_mtime = (out / "simulated" / "genome.fa").stat().st_mtime_ns
    assert run_snakemake("--unlock", config=config).returncode == 0  # a killed snakemake leaves its lock behind
    result = run_snakemake("--rerun-incomplete", config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result.stdout + result.stderr, genome_mtime


@pytest.mark.slow
def test_resume_runs_only_the_missing_work(resumed_run):
    out, log, genome_mtime = resumed_run
    assert (out / "simulated" / "genome.fa").stat().st_mtime_ns == genome_mtime
    assert "rule simulate:" not in log and "rule train:" in log
    assert not list(out.rglob("*.tmp"))


@pytest.mark.slow
def test_outputs_are_complete_and_valid(resumed_run):
    out = resumed_run[0]
    contrib = out / "demo" / "contrib.h5"
    arrays = list_arrays(contrib)
    assert arrays["contrib"] == arrays["hypothetical"] == (300, 2, 4, 200)
    delta = read_array(contrib, "delta")
    prediction = read_array(contrib, "prediction")
    assert (delta <= 1e-4 * np.maximum(1, np.abs(prediction))).all()
    assert read_attrs(contrib)["tasks"] == ["GATA1", "CTCF"]
    assert not (out / "demo" / "shards").exists() or not list((out / "demo" / "shards").iterdir())
    header = (out / "demo" / "hits" / "hits.tsv").read_text().splitlines()[0].split("\t")
    assert header[:3] == ["chr", "start", "end"]
    html = (out / "demo" / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "GATA1" in html
    # The default model pools with a global max: hits are called in its Max SHAP contributions.
    assert arrays["hit_contrib"] == arrays["contrib"] and read_attrs(contrib)["provenance"]["hit_max_rule"] == "shapley"
    assert read_hits(out / "demo" / "hits" / "hits.h5").contributions == "hit_contrib"


@pytest.mark.slow
def test_every_file_of_a_run_is_declared(resumed_run):
    out = resumed_run[0]
    config = out.parent / "config.yaml"
    assert (out / "simulated" / "tasks").is_dir() and list((out / "demo" / "logos").iterdir())
    assert untracked_outputs(out.parent, config) == []


@pytest.mark.slow
@pytest.mark.parametrize("section, key, value, rerun", [
    ("motifs", "jaspar_tax_group", "vertebrates", {"motifs", "hits", "report"}),
    ("attribution", "references", 9, {"attribute_shard", "gather_contributions", "motifs", "hits", "report"}),
    # Training's thread count sets its weights (sums in another order): a model of its own; the batch size sets
    # where the shards are cut and their rounding: contributions of their own. Attribution's threads are a job's
    # resource: no rerun.
    ("train", "threads", 2, {"train", "attribute_shard", "gather_contributions", "motifs", "hits", "report"}),
    ("attribution", "threads", 2, set()),
    ("attribution", "batch_size", 32, {"attribute_shard", "gather_contributions", "motifs", "hits", "report"}),
    # A key written out at its default gives the commands its absence gives.
    ("train", "seed", 0, set()),
    ("motifs", "min_strength", 0.3, set()),
    ("motifs", "jaspar_collection", "CORE", set()),
    ("hits", "min_similarity", 0.7, set()),
])
def test_a_changed_option_reruns_the_stages_it_feeds_and_no_more(resumed_run, tmp_path, section, key, value, rerun):
    config = yaml.safe_load((resumed_run[0].parent / "config.yaml").read_text())
    config[section][key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", config=path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if rerun:
        assert set(rule_blocks(output)) == rerun | {"all"}
    else:
        assert "Nothing to be done" in output, output


@pytest.mark.slow
def test_the_gathered_contributions_record_the_attribution_settings(resumed_run, tmp_path):
    # The shards are temporary: were every shard of a rerun to fail, none would be left to be out of date, and a
    # later run would keep the contributions of the old settings. The gathered file records them itself.
    config = yaml.safe_load((resumed_run[0].parent / "config.yaml").read_text())
    config["attribution"]["references"] += 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("--list-params-changes", config=path)
    assert result.returncode == 0, result.stdout + result.stderr
    changed = {Path(line.strip()).name for line in (result.stdout + result.stderr).splitlines()}
    assert "contrib.h5" in changed, result.stdout


def test_the_config_defaults_are_the_commands_defaults():
    # The schema writes its defaults into the config, and the rules pass them to the commands: they must be the
    # commands' own, or a config that leaves a key out would run with other settings than the docs say.
    from genomatt.cli.main import build_parser
    from genomatt.motifs.hit_parameters import HitParameters

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())["properties"]
    subcommands = next(action for action in build_parser()._actions if action.dest == "command").choices
    command_of = {"train": "train", "motifs": "motifs", "hits": "hits"}
    checked = 0
    for section, command in command_of.items():
        parser = subcommands[command]
        for key, settings in schema[section]["properties"].items():
            if "default" not in settings:
                continue
            if key == "task_regions":
                assert settings["default"] is True
                continue
            assert settings["default"] == parser.get_default(key), f"{section}.{key}"
            checked += 1
    assert checked == 24
    assert {key: value["default"] for key, value in schema["hits"]["properties"].items() if "default" in value} \
        == {key: value for key, value in HitParameters().settings().items() if key != "seed"}



def test_keys_written_out_at_their_defaults_change_no_command(tmp_path):
    # The demo config, then the same with defaults written out in other spellings and orders: 0 for 0.0, 1 for
    # 1.0, the hits keys in another order, the held-out chromosomes and the motifs to plant left out.
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["outdir"] = str(tmp_path / "out")
    written = yaml.safe_load(yaml.safe_dump(config))
    written["train"].update({"weight_decay": 0, "learning_rate": 0.002})
    del written["train"]["val_chroms"], written["train"]["test_chroms"], written["simulate"]["motifs"]
    written["hits"] = {"min_task_share": 0.5, "energy_floor": 1, "fdr": 0.05, "min_similarity": 0.7}
    commands = []
    for name, values in (("demo", config), ("written", written)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(values))
        result = run_snakemake("-n", "-p", config=path)
        assert result.returncode == 0, result.stdout + result.stderr
        commands.append(sorted(line for line in (result.stdout + result.stderr).splitlines()
                               if line.startswith("Shell command: genomatt ")))
    assert commands[0] and commands[0] == commands[1]


def test_a_user_models_targets_and_profile_target_reach_check_and_attribute(tmp_path, user_data):
    # A target by name and one by column index (a YAML number).
    config = yaml.safe_load(user_config(tmp_path, user_data, model="user_model:build", task_names=["GATA1", "CTCF"],
                                        targets=["CTCF", 0]).read_text())
    config["attribution"]["profile_target"] = "held"
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", "-p", config=path, python_path=(user_data / "models",))
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = rule_blocks(result.stdout + result.stderr)
    assert "--targets CTCF 0" in blocks["check"][0]
    assert all("--targets CTCF 0" in block and "--profile-target held" in block for block in blocks["attribute_shard"])


def test_a_user_models_check_reads_its_task_beds_whether_or_not_motifs_use_them(tmp_path, user_data):
    # Switching motifs.task_regions changes what motifs and hits read, not the check, which all else follows; the
    # task BEDs they read are checked again by a rule of their own, which motifs and hits wait for.
    config = yaml.safe_load(user_config(tmp_path, user_data, model="user_model:build",
                                        task_names=["GATA1", "CTCF"]).read_text())
    commands = []
    for task_regions in (True, False):
        config["motifs"]["task_regions"] = task_regions
        path = tmp_path / f"task_regions_{task_regions}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = run_snakemake("-n", "-p", config=path, python_path=(user_data / "models",))
        assert result.returncode == 0, result.stdout + result.stderr
        blocks = rule_blocks(result.stdout + result.stderr)
        command = next(line for line in blocks["check"][0].splitlines() if "genomatt check" in line)
        # Whether the regions must lie in the task regions (as motifs and hits search them) is no trigger of the check.
        assert ("--task-regions-select" in command) == task_regions
        commands.append(" ".join(command.replace("--task-regions-select", "").split()))
        assert ("--task-regions" in blocks["motifs"][0]) == task_regions
        assert ("check_task_regions" in blocks) == task_regions
    assert commands[0] == commands[1] and "GATA1.bed" in commands[0]
    check = next(line for line in blocks_with_task_regions(tmp_path, user_data)["check_task_regions"][0].splitlines()
                 if "genomatt check" in line)
    # It checks the BEDs against the tasks the model's check recorded, without loading the model again.
    assert "GATA1.bed" in check and "--model-checked" in check and "check.json" in check
    assert "--model " not in check and "--task-names" not in check


def blocks_with_task_regions(tmp_path: Path, user_data: Path) -> dict[str, list[str]]:
    result = run_snakemake("-n", "-p", config=tmp_path / "task_regions_True.yaml", python_path=(user_data / "models",))
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = rule_blocks(result.stdout + result.stderr)
    for rule in ("motifs", "hits"):
        assert "task_regions_check.json" in next(line for line in blocks[rule][0].splitlines()
                                                 if line.strip().startswith("input:"))
    return blocks


@pytest.mark.slow
def test_sharded_run_equals_unsharded_attribution(resumed_run, tmp_path):
    out = resumed_run[0]
    unsharded = tmp_path / "unsharded.h5"
    result = subprocess.run(
        [sys.executable, "-m", "genomatt.cli.main", "attribute", "--regions-h5", str(out / "demo" / "regions.h5"),
         "--model", str(out / "demo" / "model" / "model.pt"), "--out", str(unsharded), "--references", "8",
         "--seed", "0", "--device", "cpu", "--hit-max-rule", "shapley"], env=environment(), capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr
    for name in ("hypothetical", "contrib", "hit_contrib", "delta", "prediction"):
        np.testing.assert_array_equal(read_array(unsharded, name), read_array(out / "demo" / "contrib.h5", name))


def test_user_config_is_the_whole_config(tmp_path, user_data):
    result = run_snakemake("-n", config=user_config(tmp_path, user_data))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    jobs = {rule: len(blocks) for rule, blocks in rule_blocks(output).items()}
    assert jobs == {"check": 1, "extract": 1, "check_training": 1, "train": 1, "attribute_shard": 2,
                    "gather_contributions": 1, "motifs": 1, "hits": 1, "report": 1, "all": 1}
    assert "demo" not in output and "simulated" not in output


def test_relative_paths_are_read_from_the_working_directory(tmp_path, user_data):
    # As every Snakemake path: a config in another folder than the data names them relative to where
    # snakemake runs (--directory); elsewhere they are refused before any job, naming key, path and folder.
    data = tmp_path / "data"
    shutil.copytree(user_data, data, ignore=shutil.ignore_patterns("simulated", "models"))
    config = yaml.safe_load(user_config(tmp_path, user_data).read_text())
    config["samples"]["k562"].update(fasta="genome.fa", regions="peaks.narrowPeak", tasks=["GATA1.bed", "CTCF.bed"])
    path = tmp_path / "configs" / "relative.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", config=path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ("the config names files that do not exist: samples.k562.fasta: genome.fa; samples.k562.regions: "
            "peaks.narrowPeak; samples.k562.tasks: GATA1.bed; samples.k562.tasks: CTCF.bed") in output
    assert f"read from the working directory, {ROOT} (where snakemake runs" in output
    result = run_snakemake("-n", "--directory", str(data), config=path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_path_holding_braces_is_refused_naming_its_key(tmp_path, user_data):
    # Snakemake reads {x} in a file name as a wildcard: refused before any job, not a WildcardError.
    braced = tmp_path / "genome{x}"
    shutil.copytree(user_data, braced, ignore=shutil.ignore_patterns("simulated", "models"))
    config = yaml.safe_load(user_config(tmp_path, user_data).read_text())
    config["samples"]["k562"]["fasta"] = str(braced / "genome.fa")
    path = tmp_path / "braced.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", config=path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (f"the config names paths holding {{ or }}, which Snakemake reads as wildcards in file names: "
            f"samples.k562.fasta: {braced}/genome.fa.") in output
    assert "WildcardError" not in output
    result = run_snakemake("-n", "--config", f"outdir={tmp_path}/out{{x}}", config=path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"wildcards in file names: outdir: {tmp_path}/out{{x}}." in output and "WildcardError" not in output


def test_task_name_mismatch_fails_before_attribution(tmp_path, user_data):
    config = user_config(tmp_path, user_data, model="user_model:build")
    result = run_snakemake(config=config, python_path=(user_data / "models",))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule check" in output and "rule attribute_shard" not in output
    log = (tmp_path / "out" / "logs" / "k562" / "check.log").read_text().strip().splitlines()
    assert log[-1] == ("genomatt check: error: user_model:build: the model's tasks ['task_0', 'task_1'] have no task "
                       "BED; the task BEDs name ['GATA1', 'CTCF']. Name each task BED after a task of the model (task "
                       "= file name without suffix; a profile model's profile_<task> and counts_<task> read "
                       "<task>'s), declare the model's task names with task_names, or explain only the tasks "
                       "that have one with targets")
    assert "Traceback" not in "\n".join(log)
    assert not (tmp_path / "out" / "k562" / "regions.h5").exists()


def test_regions_outside_every_task_bed_fail_before_attribution(tmp_path, user_data):
    # Motifs and hits search each task's regions: task BEDs of other peaks failed in motifs, after the attribution.
    beds = []
    for task in ("GATA1", "CTCF"):
        beds.append(tmp_path / f"{task}.bed")
        beds[-1].write_text("chr1\t1\t2\n")
    config = user_config(tmp_path, user_data, model="user_model:build", task_names=["GATA1", "CTCF"],
                         tasks=[str(bed) for bed in beds])
    result = run_snakemake(config=config, python_path=(user_data / "models",))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "rule attribute_shard" not in output
    log = (tmp_path / "out" / "logs" / "k562" / "check.log").read_text()
    assert "lies in the task regions of tasks ['GATA1', 'CTCF']" in log and "Traceback" not in log, log
    assert not (tmp_path / "out" / "k562" / "regions.h5").exists()


def test_slurm_dry_run_asks_gpus_for_the_gpu_jobs(tmp_path, user_data):
    config = yaml.safe_load(user_config(tmp_path, user_data).read_text())
    config["attribution"]["device"] = "cuda"
    path = tmp_path / "cuda.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", "--profile", "workflow/profiles/slurm", config=path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for rule, blocks in rule_blocks(output).items():
        for block in blocks:
            assert ("gpu=1" in block) == (rule in ("train", "attribute_shard", "hits")), block
        assert all("--device cuda" in block for block in blocks) or rule not in ("train", "attribute_shard", "hits")



def test_every_file_of_a_users_model_is_an_input_of_the_jobs_that_read_it(tmp_path, user_data):
    # A model config naming its weights (relative to the config), in a folder whose name holds a colon.
    folder = tmp_path / "run:2024"
    folder.mkdir()
    (folder / "model.yaml").write_text(yaml.safe_dump({"factory": "user_model:build", "weights": "weights.pt",
                                                       "task_names": ["GATA1", "CTCF"]}))
    (folder / "weights.pt").write_bytes(b"")
    config = user_config(tmp_path, user_data, model=str(folder / "model.yaml"))
    result = run_snakemake("-n", config=config, python_path=(user_data / "models",))
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = rule_blocks(result.stdout + result.stderr)
    for rule in ("check", "attribute_shard"):
        (inputs,) = [line for line in blocks[rule][0].splitlines() if line.strip().startswith("input:")]
        assert f"{folder}/model.yaml" in inputs and f"{folder}/weights.pt" in inputs, (rule, inputs)
    # Its weights missing: refused as every configured file is, naming the key (it was Snakemake's missing input).
    (folder / "weights.pt").unlink()
    result = run_snakemake("-n", config=config, python_path=(user_data / "models",))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "MissingInputException" not in output
    assert f"the config names files that do not exist: samples.k562.model (its weights): {folder}/weights.pt" in output


def test_a_meme_file_planted_by_the_simulation_is_its_input(tmp_path):
    meme = tmp_path / "planted.meme"
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n\nMOTIF m\nletter-probability matrix: w= 2\n"
                    "1 0 0 0\n0 1 0 0\n")
    block = printed_job(tmp_path, "simulate", {"motifs": [str(meme), "MA0139"]}, "simulate")
    (inputs,) = [line for line in block.splitlines() if line.strip().startswith("input:")]
    assert str(meme) in inputs
    meme.unlink()
    result = run_snakemake("-n", config=tmp_path / "config.yaml")
    assert result.returncode != 0 and f"simulate.motifs: {meme}" in result.stdout + result.stderr


def test_workflow_runs_as_a_module(tmp_path, user_data):
    """Another workflow imports this one as a module, with its config under a key of its own."""
    config = yaml.safe_load(user_config(tmp_path, user_data).read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"genomatt": config}))
    (tmp_path / "Snakefile").write_text(
        "configfile: 'config.yaml'\n\n\n"
        f"module genomatt:\n    snakefile: '{ROOT / 'Snakefile'}'\n    config: config['genomatt']\n\n\n"
        "use rule * from genomatt as genomatt_*\n\n\n"
        "rule all:\n    input:\n        rules.genomatt_all.input,\n    default_target: True\n")
    result = run_snakemake("-n", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    jobs = {rule: len(blocks) for rule, blocks in rule_blocks(output).items()}
    assert jobs == {"genomatt_check": 1, "genomatt_extract": 1, "genomatt_check_training": 1, "genomatt_train": 1,
                    "genomatt_attribute_shard": 2, "genomatt_gather_contributions": 1, "genomatt_motifs": 1,
                    "genomatt_hits": 1, "genomatt_report": 1, "all": 1}


def test_an_importing_workflow_may_make_the_regions_itself(tmp_path, user_data):
    # A peak caller's rule in the importing workflow writes the regions: no file of the config need exist
    # when the workflow is read.
    config = yaml.safe_load(user_config(tmp_path, user_data).read_text())
    config["samples"]["k562"]["regions"] = "peaks/called.bed"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"genomatt": config}))
    (tmp_path / "Snakefile").write_text(
        "configfile: 'config.yaml'\n\n\n"
        f"module genomatt:\n    snakefile: '{ROOT / 'Snakefile'}'\n    config: config['genomatt']\n\n\n"
        "use rule * from genomatt as genomatt_*\n\n\n"
        "rule all:\n    input:\n        rules.genomatt_all.input,\n    default_target: True\n\n\n"
        f"rule call_peaks:\n    output:\n        'peaks/called.bed'\n    shell:\n"
        f"        'cp {user_data / 'peaks.narrowPeak'} {{output}}'\n")
    result = run_snakemake("-n", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert {"call_peaks", "genomatt_check", "genomatt_report"} <= set(rule_blocks(output))


def test_importing_workflow_keeps_its_own_default_target(tmp_path, user_data):
    config = yaml.safe_load(user_config(tmp_path, user_data).read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"genomatt": config}))
    (tmp_path / "Snakefile").write_text(
        "configfile: 'config.yaml'\n\n\n"
        "rule mine:\n    output:\n        'mine.txt',\n    shell:\n        'touch {output}'\n\n\n"
        f"module genomatt:\n    snakefile: '{ROOT / 'Snakefile'}'\n    config: config['genomatt']\n\n\n"
        "use rule * from genomatt as genomatt_*\n")
    result = run_snakemake("-n", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert {rule: len(blocks) for rule, blocks in rule_blocks(output).items()} == {"mine": 1}


# Folders of one file per task or motif, declared as directory() outputs: --list-untracked lists the files
# inside a declared folder, as it compares file paths only.
DECLARED_FOLDERS = ("simulated/tasks/", "motifs/modisco/", "hits/tracks/", "logos/")


def untracked_outputs(workdir: Path, config: Path) -> list[str]:
    """What `snakemake --list-untracked` lists under the run's outdir, but the files of declared folders."""
    result = run_snakemake("--snakefile", str(ROOT / "Snakefile"), "--list-untracked", config=config, cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
    return [path for path in listed if path.startswith("out/") and not any(folder in path for folder in DECLARED_FOLDERS)]


@pytest.mark.slow
def test_readme_steps_run_a_user_model_to_the_report(tmp_path, user_data):
    """The README's "Use your own data" with a model of the user's own, named with task_names."""
    tasks = [shutil.copy(user_data / f"{task}.bed", tmp_path / f"{task}.bed") for task in ("GATA1", "CTCF")]
    config = user_config(tmp_path, user_data, model="user_model:build", task_names=["GATA1", "CTCF"],
                         tasks=[str(path) for path in tasks])
    result = run_snakemake("--profile", "workflow/profiles/default", config=config,
                           python_path=(user_data / "models",))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = tmp_path / "out"
    assert read_attrs(out / "k562" / "contrib.h5")["tasks"] == ["GATA1", "CTCF"]
    assert (out / "k562" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert {path.name for path in (out / "k562" / "hits" / "tracks").glob("*.bw")} == {"contrib.GATA1.bw",
                                                                                        "contrib.CTCF.bw"}
    benchmarks = sorted(path.stem for path in (out / "benchmarks" / "k562").iterdir())
    assert benchmarks == ["attribute.0", "attribute.1", "check", "check_task_regions", "extract", "gather", "hits",
                          "motifs", "report"]
    assert untracked_outputs(tmp_path, config) == []
    # An edited task BED of a user's model changes where motifs and hits look: it is checked again, and they rerun,
    # not the attribution.
    lines = Path(tasks[0]).read_text().splitlines(keepends=True)
    Path(tasks[0]).write_text("".join(lines[:-1]))
    result = run_snakemake("-n", "--profile", "workflow/profiles/default", config=config,
                           python_path=(user_data / "models",))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert set(rule_blocks(result.stdout + result.stderr)) == {"check_task_regions", "motifs", "hits", "report",
                                                               "all"}, result.stdout[-3000:]
    # So does another task BED of the same task (another file of GATA1's peaks).
    Path(tasks[0]).write_text("".join(lines))
    (tmp_path / "other").mkdir()
    other = yaml.safe_load(config.read_text())
    other["samples"]["k562"]["tasks"] = [str(shutil.copy(tasks[0], tmp_path / "other" / "GATA1.bed")), str(tasks[1])]
    other_config = tmp_path / "other.yaml"
    other_config.write_text(yaml.safe_dump(other))
    result = run_snakemake("-n", "--profile", "workflow/profiles/default", config=other_config,
                           python_path=(user_data / "models",))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert set(rule_blocks(result.stdout + result.stderr)) == {"check_task_regions", "motifs", "hits", "report",
                                                               "all"}, result.stdout[-3000:]
    # A deleted output is made again.
    (out / "k562" / "motifs" / "matches.tsv").unlink()
    result = run_snakemake("-n", "--profile", "workflow/profiles/default", config=config,
                           python_path=(user_data / "models",))
    assert set(rule_blocks(result.stdout + result.stderr)) == {"motifs", "hits", "report", "all"}
    # A line on a chromosome the genome lacks, added to a task BED, stops the run before motifs, naming the BED.
    Path(tasks[0]).write_text("".join(lines) + "chrUnknown\t100\t300\n")
    made = (out / "k562" / "motifs" / "motifs.h5").stat().st_mtime_ns
    result = run_snakemake("--profile", "workflow/profiles/default", config=config,
                           python_path=(user_data / "models",))
    assert result.returncode != 0
    log = (out / "logs" / "k562" / "check_task_regions.log").read_text()
    assert "chrUnknown" in log and "GATA1.bed" in log and "Traceback" not in log, log
    assert (out / "k562" / "motifs" / "motifs.h5").stat().st_mtime_ns == made


@pytest.mark.parametrize("outdir, model", [
    ("{tmp}/out", "{tmp}/out/k562/model/model.pt"),
    ("out", "./out/k562/model/model.pt"),
    ("{tmp}/out", "out/k562/model/model.pt"),
    ("out/", "out/k562/model/model.pt"),
], ids=["as-written", "dot-slash", "relative-beside-absolute-outdir", "outdir-with-trailing-slash"])
def test_a_sample_may_explain_the_model_another_sample_trains(tmp_path, user_data, outdir, model):
    # However the config spells the path of the model the other sample trains, it is that sample's train output.
    config = yaml.safe_load(user_config(tmp_path, user_data, model="train").read_text())
    config["outdir"] = outdir.format(tmp=tmp_path)
    trained = f"{config['outdir']}/k562/model/model.pt"  # the train rule's spelling
    config["samples"]["other_peaks"] = {**config["samples"]["k562"], "model": model.format(tmp=tmp_path)}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", "--directory", str(tmp_path), config=path)
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = rule_blocks(result.stdout + result.stderr)
    assert len(blocks["train"]) == 1 and len(blocks["report"]) == 2
    # Its check and attribution wait for the other sample's training.
    for rule in ("check", "attribute_shard"):
        block = next(block for block in blocks[rule] if "sample=other_peaks" in block)
        assert trained in next(line for line in block.splitlines() if line.strip().startswith("input:")).split(", ")


def test_a_missing_file_under_outdir_is_refused_unless_the_run_makes_it(tmp_path, user_data):
    # Only an output of the run is exempt from the check that the configured files exist, not any path under outdir.
    config = yaml.safe_load(user_config(tmp_path, user_data, model=f"{tmp_path}/out/k562/model/model.pt").read_text())
    config["samples"]["k562"]["fasta"] = f"{tmp_path}/out/genome/hg38.fa"
    path = tmp_path / "missing.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", config=path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (f"the config names files that do not exist: samples.k562.fasta: {tmp_path}/out/genome/hg38.fa; "
            f"samples.k562.model: {tmp_path}/out/k562/model/model.pt. Relative paths") in output


def touch_run(config: Path, *targets: str) -> None:
    """A finished run up to ``targets`` without running a job: each job's outputs and benchmark written empty, then
    marked done with `snakemake --touch` (every job, forced: files with no record need none), which records what a
    later run compares (params, inputs)."""
    result = run_snakemake("-n", *targets, config=config)
    assert result.returncode == 0, result.stdout + result.stderr
    for blocks in rule_blocks(result.stdout + result.stderr).values():
        for line in (line.strip() for block in blocks for line in block.splitlines()):
            key, _, files = line.partition(": ")
            for file in files.split(", ") if key in ("output", "benchmark") else ():
                Path(file).parent.mkdir(parents=True, exist_ok=True)
                Path(file).touch()
    result = run_snakemake("--touch", "--forceall", *targets, config=config)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory, user_data):
    """A config that trains a model on the user's data (regions in a copy of their own), and its run up to the
    trained model and the check, finished: its config, their paths and the regions."""
    tmp_path = tmp_path_factory.mktemp("trained_model")
    regions = tmp_path / "peaks.narrowPeak"
    shutil.copy(user_data / "peaks.narrowPeak", regions)
    config = user_config(tmp_path, user_data, regions=str(regions), on_missing="skip")
    targets = (str(tmp_path / "out" / "k562" / "model" / "model.pt"), str(tmp_path / "out" / "k562" / "check.json"))
    touch_run(config, *targets)
    return config, targets, regions


def changed_config(config: Path, tmp_path: Path, sample: dict | None = None, **sections: dict) -> Path:
    """``config`` with ``sample`` settings of its sample and ``sections`` settings changed."""
    settings = yaml.safe_load(config.read_text())
    settings["samples"]["k562"].update(sample or {})
    for section, values in sections.items():
        settings[section].update(values)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_training_waits_for_the_check_of_what_it_reads_only(trained_model, tmp_path):
    # The check's rerun (the regions edited, another on_missing) retrains nothing: training reads the task BEDs, the
    # FASTA and the train settings, inputs and params of the check it waits for, and of its own.
    config, targets, regions = trained_model
    result = run_snakemake("-n", *targets, config=changed_config(config, tmp_path, {"on_missing": "error"}))
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(rule_blocks(result.stdout + result.stderr)) == {"check"}, result.stdout
    original, mtime = regions.read_text(), regions.stat().st_mtime_ns
    try:
        regions.write_text("".join(original.splitlines(keepends=True)[:-1]))
        result = run_snakemake("-n", *targets, config=config)
        assert result.returncode == 0, result.stdout + result.stderr
        assert set(rule_blocks(result.stdout + result.stderr)) == {"check"}, result.stdout
    finally:
        regions.write_text(original)
        os.utime(regions, ns=(mtime, mtime))
    # A change of the training's own settings in the same run still retrains, after the check of what it reads.
    result = run_snakemake("-n", *targets, config=changed_config(config, tmp_path, {"on_missing": "error"},
                                                                 train={"epochs": 2}))
    blocks = rule_blocks(result.stdout + result.stderr)
    assert set(blocks) == {"check", "train"}, result.stdout
    (train,) = blocks["train"]
    training_check = str(Path(targets[0]).parent / "training_check.json")
    assert training_check in train.split("input: ")[1].splitlines()[0].split(", ")


def test_a_new_batch_size_reruns_every_shard(trained_model, tmp_path):
    # Shard 0 made, shard 1 failed (a GPU out of memory), then a smaller batch: every shard is cut anew, so that
    # the gather takes shards cut alike.
    config, targets, _ = trained_model
    out = Path(targets[0]).parents[1]
    touch_run(config, str(out / "shards" / "contrib.0.h5"))
    result = run_snakemake("-n", str(out / "contrib.h5"),
                           config=changed_config(config, tmp_path, attribution={"batch_size": 32}))
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = rule_blocks(result.stdout + result.stderr)
    assert len(blocks["attribute_shard"]) == 2, result.stdout


def test_a_change_of_device_retrains_nothing(trained_model, tmp_path):
    # A trained model is the model whatever device trained it, as for the attribution and the hits.
    config, targets, _ = trained_model
    result = run_snakemake("-n", *targets, config=changed_config(config, tmp_path, attribution={"device": "cuda"}))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout
