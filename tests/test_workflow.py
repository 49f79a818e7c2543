"""The Snakemake workflow: lint, dry run, config validation, and a small full run that is killed and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from genomatt.store import list_arrays, read_array, read_attrs

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE_TIMEOUT = 1500


def snakemake_command(*args: str, config: Path | None = None) -> list[str]:
    """A snakemake call from the repository root, wrapped in `timeout -k` (snakemake may ignore SIGTERM)."""
    command = ["timeout", "-k", "30", str(SNAKEMAKE_TIMEOUT), sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return command + (["--configfile", str(config)] if config is not None else [])


def environment() -> dict[str, str]:
    """The test's environment with this interpreter's scripts (the `genomatt` command) first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run_snakemake(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(*args, config=config), cwd=ROOT, env=environment(), capture_output=True,
                          text=True)


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


@pytest.mark.parametrize("section, key, value, expected", [
    ("", "width", -5, "instance['width']"),
    ("attribution", "device", "gpu", "instance['attribution']['device']"),
    ("samples", "other", {"fasta": "x.fa"}, "'regions' is a required property"),
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


@pytest.mark.slow
def test_sharded_run_equals_unsharded_attribution(resumed_run, tmp_path):
    out = resumed_run[0]
    unsharded = tmp_path / "unsharded.h5"
    result = subprocess.run(
        [sys.executable, "-m", "genomatt.cli.main", "attribute", "--h5", str(out / "demo" / "regions.h5"),
         "--model", str(out / "demo" / "model" / "model.pt"), "--out", str(unsharded), "--references", "8",
         "--seed", "0", "--device", "cpu"], env=environment(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ("hypothetical", "contrib", "delta", "prediction"):
        np.testing.assert_array_equal(read_array(unsharded, name), read_array(out / "demo" / "contrib.h5", name))
