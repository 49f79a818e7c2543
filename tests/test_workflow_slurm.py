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
    # Attribution shards ask for a GPU as they do with `attribution.device: cuda`; the test cluster
    # advertises a fake one, so this checks that such jobs are scheduled, while the work runs on the CPU.
    result = run_snakemake("--profile", "workflow/profiles/slurm", "--set-resources", "attribute_shard:gpu=1",
                           config=config)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    # simulate, check, extract, check_training, train, 3 attribution shards, gather, motifs, hits, report: all
    # cluster jobs
    assert output.count("has been submitted with SLURM jobid") == 12
    assert list_arrays(tmp_path / "out" / "demo" / "contrib.h5")["contrib"] == (300, 2, 4, 200)
    assert (tmp_path / "out" / "demo" / "report.html").is_file()
