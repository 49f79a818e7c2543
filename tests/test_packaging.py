"""What ships: the wheel (command, package, license) and the workflow's conda environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_license_file_matches_the_metadata():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_wheel_carries_the_package_command_and_license(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "--wheel-dir", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("genomatt-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        archive.extractall(tmp_path / "unpacked")
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert "genomatt = genomatt.cli.main:main" in entry_points
    packaged = {name for name in names if name.startswith("genomatt/") and name.endswith(".py")}
    in_tree = {str(path.relative_to(ROOT)) for path in (ROOT / "genomatt").rglob("*.py")}
    assert packaged == in_tree
    # The unpacked wheel alone runs the command (the workflow itself is run from the source tree, see README).
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "unpacked")}
    shown = subprocess.run([sys.executable, "-c", "import genomatt, sys; from genomatt.cli.main import main; "
                            "print(genomatt.__file__); sys.exit(main(['hits', '--help']))"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(str(tmp_path / "unpacked")) and "--min-similarity" in shown.stdout


def test_conda_env_installs_from_the_workflow_folder_wherever_snakemake_runs(tmp_path):
    """The workflow used as a module, run with --directory elsewhere: the environment's pip requirement
    names the workflow's own folder, and pip (dry run) installs genomatt from it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    wrapper = tmp_path / "Snakefile"
    wrapper.write_text(
        "import os\n\n"
        "module genomatt:\n"
        f"    snakefile: {str(ROOT / 'Snakefile')!r}\n"
        "    config: config\n\n"
        "use rule * from genomatt as genomatt_*\n\n"
        # What conda and pip see when snakemake makes the environment: the spec with variables expanded.
        "with open('env_spec.yaml', 'w') as handle:\n"
        f"    handle.write(os.path.expandvars(open({str(ROOT / 'envs' / 'genomatt.yaml')!r}).read()))\n")
    env = {**os.environ, "PWD": str(tmp_path)}
    dry_run = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(wrapper), "--directory", str(elsewhere),
                              "--configfile", str(ROOT / "config" / "config.yaml"), "-n", "--cores", "1"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert dry_run.returncode == 0, dry_run.stdout + dry_run.stderr
    spec = yaml.safe_load((elsewhere / "env_spec.yaml").read_text())
    (pip_section,) = [entry for entry in spec["dependencies"] if isinstance(entry, dict)]
    (requirement,) = pip_section["pip"]
    assert requirement == f"genomatt[workflow] @ file://{ROOT}"
    report = tmp_path / "pip.json"
    resolved = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation",
                               "--ignore-installed", "--quiet", "--report", str(report), requirement],
                              cwd=elsewhere, capture_output=True, text=True, timeout=600)
    assert resolved.returncode == 0, resolved.stderr
    (install,) = json.loads(report.read_text())["install"]
    assert install["metadata"]["name"] == "genomatt" and install["download_info"]["url"] == f"file://{ROOT}"
