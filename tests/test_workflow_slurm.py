"""The workflow on a real one-node SLURM cluster (started by `.ci/run` via tests/slurm/local-slurm.sh)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from genomatt.store import list_arrays
from test_workflow import run_snakemake, small_config


def slurm_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return result.returncode == 0 and "idle" in result.stdout


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not slurm_is_up(), reason="no SLURM cluster reachable: start one with "
                       "`bash tests/slurm/local-slurm.sh up --fake-gpu` (as root; .ci/run does this)"),
]


def test_workflow_runs_on_slurm(tmp_path):
    config = small_config(tmp_path)
    result = run_snakemake("--profile", "workflow/profiles/slurm", config=config)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert output.count("has been submitted with SLURM jobid") == 2  # simulate and extract ran as cluster jobs
    assert list_arrays(tmp_path / "out" / "demo" / "regions.h5") == {"onehot": (60, 4, 200)}
