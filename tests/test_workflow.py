"""The Snakemake workflow: lint, dry run and a small real run of the default config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genomatt.store import list_arrays

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE_TIMEOUT = 900


def run_snakemake(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    """Run snakemake from the repository root, wrapped in `timeout -k` (snakemake may ignore SIGTERM)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = ["timeout", "-k", "30", str(SNAKEMAKE_TIMEOUT), sys.executable, "-m", "snakemake", "--cores", "2", *args]
    if config is not None:
        command += ["--configfile", str(config)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


def small_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["outdir"] = str(tmp_path / "out")
    config["simulate"].update({"chromosomes": 2, "chromosome_length": 40_000, "positives": 60, "negatives": 20})
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
    for rule in ("simulate", "extract", "all"):
        assert f"rule {rule}:" in output


def test_invalid_config_is_rejected(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["width"] = -5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", config=path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "instance['width']" in output and "minimum" in output


@pytest.mark.slow
def test_small_run_of_default_config(tmp_path):
    config = small_config(tmp_path)
    result = run_snakemake(config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert list_arrays(tmp_path / "out" / "demo" / "regions.h5") == {"onehot": (60, 4, 200)}
