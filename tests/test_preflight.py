"""`genomatt check`: the inputs of a run checked in seconds, each problem in one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from genomatt.cli.main import main
from genomatt.errors import GenomattError
from genomatt.fasta import read_chrom_sizes
from genomatt.genome import load_regions, read_bed
from genomatt.preflight import check_inputs

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def user_model(monkeypatch):
    """The import spec of tests/user_model.py, importable as a user's model is (on PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(TESTS))
    return "user_model:build"


def task_beds(genome, *tasks):
    return [str(genome.task_beds[task]) for task in tasks]


def test_summary_of_a_run_to_train(small_genome):
    summary = check_inputs(small_genome.fasta, small_genome.regions_bed, 200,
                           task_beds=task_beds(small_genome, "GATA1", "CTCF"), negatives=small_genome.negatives_bed,
                           meme=small_genome.motifs_meme, val_chroms=["chr2"], test_chroms=["chr3"])
    assert summary["n_regions"] == 120 and summary["skipped_regions"] == 0 and summary["chromosomes"] == 3
    assert list(summary["task_regions"]) == ["GATA1", "CTCF"]
    assert summary["known_motifs"] == 5 and summary["negatives"] == 40
    assert "model" not in summary and summary["holdout"] == {"validation": ["chr2"], "test": ["chr3"]}
    # The defaults, chr4 and chr5, are not in this genome: training would fail on them.
    with pytest.raises(GenomattError, match=r"the default \(chr4\) is not in the genome .*--val-chroms "
                                            r"\(train.val_chroms\)"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=task_beds(small_genome, "GATA1"))


def test_the_check_of_what_training_reads_leaves_the_regions_and_known_motifs_out(small_genome, tmp_path, capsys):
    # Without --regions (the workflow's check_training): a broken regions file is not read, the task BEDs are.
    beds = task_beds(small_genome, "GATA1", "CTCF")
    out = tmp_path / "training_check.json"
    assert main(["check", "--fasta", str(small_genome.fasta), "--width", "200", "--task-regions", *beds,
                 "--val-chroms", "chr2", "--test-chroms", "chr3", "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert "n_regions" not in summary and summary["known_motifs"] == 0
    assert list(summary["task_regions"]) == ["GATA1", "CTCF"] and summary["holdout"]["test"] == ["chr3"]
    missing = tmp_path / "chrUn" / "GATA1.bed"
    missing.parent.mkdir()
    missing.write_text("chrUn\t10\t60\n")
    assert main(["check", "--fasta", str(small_genome.fasta), "--width", "200", "--task-regions", str(missing),
                 "--val-chroms", "chr2", "--test-chroms", "chr3"]) == 2
    assert "chrUn" in capsys.readouterr().err


def test_a_task_without_regions_to_train_or_test_on_is_refused_before_training(small_genome, tmp_path):
    # Training would fail on it after the check passed.
    lines = small_genome.task_beds["GATA1"].read_text().splitlines()
    not_on_chr3 = tmp_path / "NOT_ON_CHR3.bed"
    not_on_chr3.write_text("\n".join(line for line in lines if not line.startswith("chr3\t")) + "\n")
    with pytest.raises(GenomattError, match=r"task NOT_ON_CHR3 has none of its \d+ regions on the test chromosomes "
                                            r"\(chr3\); choose other hold-out chromosomes with --test-chroms"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=[not_on_chr3],
                     val_chroms=["chr2"], test_chroms=["chr3"])
    single = tmp_path / "RARE.bed"
    single.write_text(lines[0] + "\n")
    with pytest.raises(GenomattError, match="task RARE has 1 region: a task needs regions on the training and on"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=[single],
                     val_chroms=["chr2"], test_chroms=["chr3"])


def test_regions_off_the_fasta_are_an_error_or_counted(small_genome, tmp_path):
    bed = tmp_path / "peaks.bed"
    bed.write_text(small_genome.regions_bed.read_text() + "chrUn_1\t10\t60\nchrUn_2\t10\t60\n")
    with pytest.raises(GenomattError, match=re.escape(f"{bed}: 2 regions on chromosomes ['chrUn_1', 'chrUn_2'] "
                                                      f"that are not in {small_genome.fasta}")):
        check_inputs(small_genome.fasta, bed, 200)
    summary = check_inputs(small_genome.fasta, bed, 200, on_missing="skip")
    assert (summary["n_regions"], summary["skipped_regions"]) == (120, 2)


def test_repeated_windows_are_counted_and_named(small_genome, tmp_path, caplog):
    # A peak listed twice, and a second summit centring on the same window, are each explained again.
    lines = small_genome.regions_bed.read_text().splitlines()
    bed = tmp_path / "peaks.bed"
    bed.write_text("\n".join(lines + lines[:2]) + "\n")
    with caplog.at_level("WARNING", logger="genomatt"):
        summary = check_inputs(small_genome.fasta, bed, 200)
    assert summary["repeated_windows"] == 2 and summary["n_regions"] == 122
    first = lines[0].split("\t")
    assert (f"{bed}: 2 regions repeat the window of an earlier region (first: {first[3]} at "
            f"{first[0]}:{first[1]}-{first[2]}, as {first[3]})") in caplog.text
    assert check_inputs(small_genome.fasta, small_genome.regions_bed, 200)["repeated_windows"] == 0
    assert summary["further_summits"] == 0


def test_further_summits_of_one_peak_are_counted_and_named(small_genome, tmp_path, caplog):
    # MACS2 --call-summits: one peak per summit; windows 150 bp apart share 50 bp of a 200 bp width.
    chrom, start, end, name = small_genome.regions_bed.read_text().splitlines()[0].split("\t")[:4]
    start, end = int(start), int(end)
    peak = f"{chrom}\t{start - 200}\t{end + 200}\t{name}"
    rows = [f"{peak}\t0\t.\t5\t-1\t-1\t{summit}" for summit in (100, 250, 250, 400)]
    bed = tmp_path / "peaks.narrowPeak"
    bed.write_text("\n".join(rows) + "\n")
    with caplog.at_level("WARNING", logger="genomatt"):
        summary = check_inputs(small_genome.fasta, bed, 200)
    assert (summary["repeated_windows"], summary["further_summits"]) == (1, 2)
    assert (f"{bed}: 2 regions are a further summit of a peak listed earlier (first: {name} at "
            f"{chrom}:{start - 200}-{end + 200}, whose window shares 50 bp with {name}'s)") in caplog.text
    # Summits farther apart than the width explain disjoint bases: not counted, not warned of ("shares 0 bp").
    caplog.clear()
    bed.write_text("\n".join(f"{peak}\t0\t.\t5\t-1\t-1\t{summit}" for summit in (50, 350)) + "\n")
    with caplog.at_level("WARNING", logger="genomatt"):
        assert check_inputs(small_genome.fasta, bed, 200)["further_summits"] == 0
    assert "further summit" not in caplog.text


def test_regions_and_negatives_past_or_off_the_chromosomes_are_an_error(small_genome, tmp_path, caplog):
    length = read_chrom_sizes(small_genome.fasta)["chr1"]
    bed = tmp_path / "peaks.bed"
    bed.write_text(small_genome.regions_bed.read_text() + f"chr1\t{length + 10}\t{length + 60}\n")
    message = f"{bed}: 1 regions, or their windows, start at or past the end of their chromosome"
    with pytest.raises(GenomattError, match=re.escape(message)):
        check_inputs(small_genome.fasta, bed, 200)
    assert check_inputs(small_genome.fasta, bed, 200, on_missing="skip")["skipped_regions"] == 1
    # Windows longer than the genome: the check refuses them as extract does (it ran out of memory).
    total = sum(read_chrom_sizes(small_genome.fasta).values())
    for check in (lambda: check_inputs(small_genome.fasta, small_genome.regions_bed, total + 1),
                  lambda: load_regions(small_genome.fasta, small_genome.regions_bed, total + 1, progress=False)):
        with pytest.raises(GenomattError, match=rf"windows of {total + 1} bp are longer than the whole genome of "
                                                rf".* \({total} bp\)"):
            check()
    # Longer than every chromosome, not the genome: mostly N padding (a fixed-width model on short loci), warned of.
    longest = max(read_chrom_sizes(small_genome.fasta).values())
    with caplog.at_level("WARNING", logger="genomatt"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, longest + 1, on_missing="skip")
    assert f"windows of {longest + 1} bp are longer than every chromosome" in caplog.text
    negatives = tmp_path / "negatives.bed"
    negatives.write_text("chr9\t10\t60\n")
    with pytest.raises(GenomattError, match=re.escape(f"{negatives}: 1 regions on chromosomes ['chr9']")):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, negatives=negatives)


def test_model_layer_without_a_deeplift_rule_is_refused_by_the_check(small_genome, tmp_path):
    class Sorting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = torch.nn.Conv1d(4, 4, 3, padding=1), torch.nn.Linear(4, 1)

        def forward(self, x):
            return self.out(torch.sort(self.conv(x), dim=-1)[0].mean(-1))

    path = tmp_path / "sorting.ts"
    torch.jit.script(Sorting()).save(str(path))
    with pytest.raises(GenomattError, match=r"cannot compute DeepLIFT through `sort`"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, model=path)


def test_profile_model_targets_must_have_task_beds(small_genome, tmp_path):
    class MultiTaskProfile(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.profile = torch.nn.Conv1d(4, 4, 5, padding=2), torch.nn.Conv1d(4, 2, 5, padding=2)

        def forward(self, x):
            h = torch.relu(self.body(x))
            return self.profile(h), h.mean(-1)[:, :2]

    path = tmp_path / "profile.ts"
    torch.jit.script(MultiTaskProfile()).save(str(path))
    beds = task_beds(small_genome, "GATA1", "CTCF")
    with pytest.raises(GenomattError, match=re.escape(
            "the model's tasks ['profile_0', 'profile_1', 'counts_0', 'counts_1'] have no task BED; the task BEDs "
            "name ['GATA1', 'CTCF']. Name each task BED after a task of the model (task = file name without "
            "suffix; a profile model's profile_<task> and counts_<task> read <task>'s), declare the model's "
            "task names with task_names, or explain only the tasks that have one with targets")):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, model=path, task_beds=beds)
    # Named, each task's profile and count targets read its task BED.
    summary = check_inputs(small_genome.fasta, small_genome.regions_bed, 200, model=path, task_beds=beds,
                           task_names=["GATA1", "CTCF"])
    assert summary["model"]["tasks"] == ["profile_GATA1", "profile_CTCF", "counts_GATA1", "counts_CTCF"]
    with pytest.raises(GenomattError, match=re.escape("3 task names ['GATA1', 'CTCF', 'SPI1'] given for a model "
                                                      "whose heads [(2, 200), (2,)] hold 2 task(s)")):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, model=path, task_beds=beds,
                     task_names=["GATA1", "CTCF", "SPI1"])


def test_user_model_tasks_must_have_task_beds(small_genome, user_model):
    beds = task_beds(small_genome, "GATA1", "CTCF")
    with pytest.raises(GenomattError, match=re.escape("user_model:build: the model's tasks ['task_0', 'task_1'] "
                                                      "have no task BED; the task BEDs name ['GATA1', 'CTCF']")):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=beds, model=user_model)
    summary = check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=beds, model=user_model,
                           task_names=["GATA1", "CTCF"])
    assert summary["model"]["tasks"] == ["GATA1", "CTCF"] and summary["model"]["source"] == "import"


def test_model_that_does_not_take_the_width_is_refused(small_genome, user_model):
    with pytest.raises(GenomattError, match="user_model:build"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 3, model=user_model)


@pytest.mark.parametrize("names, message", [
    (["GATA1"], "1 task names ['GATA1'] given for a model with 2 outputs"),
    # Their modisco files, bigWigs and export folders would be one.
    (["AP-1/JUN", "AP-1_JUN"], "tasks 'AP-1/JUN' and 'AP-1_JUN' would both be written as 'AP-1_JUN'"),
])
def test_task_names_must_fit_the_model(small_genome, user_model, names, message):
    with pytest.raises(GenomattError, match=re.escape(message)):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, model=user_model, task_names=names)


def test_a_task_bed_of_no_task_the_model_explains_is_named(small_genome, user_model, caplog):
    with caplog.at_level("WARNING", logger="genomatt"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, model=user_model,
                     task_names=["GATA1", "CTCF"], targets=["CTCF"], task_beds=task_beds(small_genome, "GATA1", "CTCF"))
    assert "the task BEDs of ['GATA1'] name no task the model explains (['CTCF']); they are not used" in caplog.text


def test_targets_must_be_targets_of_the_model(small_genome, user_model):
    summary = check_inputs(small_genome.fasta, small_genome.regions_bed, 200, model=user_model,
                           task_names=["GATA1", "CTCF"], targets=["CTCF"])
    assert summary["model"]["tasks"] == ["CTCF"]
    with pytest.raises(GenomattError, match=r"--targets: 'SPI1' is neither a task of the model \(GATA1, CTCF\)"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, model=user_model,
                     task_names=["GATA1", "CTCF"], targets=["SPI1"])
    with pytest.raises(GenomattError, match=r"targets \['CTCF'\] choose outputs of a user's model"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, targets=["CTCF"])


def test_task_names_without_a_user_model_are_refused(small_genome):
    with pytest.raises(GenomattError, match="name the outputs of a user's model"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=task_beds(small_genome, "GATA1"),
                     task_names=["GATA1"])


def test_weights_without_a_user_model_are_refused(small_genome, tmp_path):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"")
    with pytest.raises(GenomattError, match="weights .*weights.pt are given without a model"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=task_beds(small_genome, "GATA1"),
                     weights=weights)


def test_regions_none_of_which_lies_in_a_task_region_are_refused_when_the_tasks_select_them(small_genome, user_model,
                                                                                             tmp_path, caplog):
    # Motifs and hits search each task's regions: regions of other peaks failed there, after the attribution.
    beds = task_beds(small_genome, "GATA1", "CTCF")
    names = ["GATA1", "CTCF"]
    summary = check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=beds, model=user_model,
                           task_names=names, task_regions_select=True)
    counts = summary["regions_in_task_regions"]
    assert set(counts) == set(names) and all(count > 0 for count in counts.values())
    ctcf = read_bed(beds[1])
    free = [start for start in range(0, 100_000, 500)
            if not ((ctcf["chrom"] == "chr1") & (ctcf["start"] <= start + 100) & (ctcf["end"] > start + 100)).any()]
    elsewhere = tmp_path / "elsewhere.bed"
    elsewhere.write_text("".join(f"chr1\t{start}\t{start + 200}\n" for start in free[:3]))
    gata = tmp_path / "GATA1.bed"
    gata.write_text("chr1\t1\t2\n")
    with pytest.raises(GenomattError, match=re.escape(f"no region of {elsewhere} lies in the task regions of tasks "
                                                      "['GATA1', 'CTCF']")):
        check_inputs(small_genome.fasta, elsewhere, 200, task_beds=[str(gata), beds[1]], model=user_model,
                     task_names=names, task_regions_select=True)
    # Without the selection (motifs.task_regions: false) they are what the user explains, whatever the task BEDs.
    assert "regions_in_task_regions" not in check_inputs(small_genome.fasta, elsewhere, 200,
                                                         task_beds=[str(gata), beds[1]], model=user_model,
                                                         task_names=names)
    with pytest.raises(GenomattError, match=r"no task BED is given; give them with --task-regions"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, model=user_model, task_names=names,
                     task_regions_select=True)
    # One task without any: warned of, named.
    with caplog.at_level("WARNING", logger="genomatt"):
        counts = check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=[str(gata), beds[1]],
                              model=user_model, task_names=names, task_regions_select=True)["regions_in_task_regions"]
    assert counts["GATA1"] == 0 and counts["CTCF"] > 0
    assert "task GATA1: no region of the contributions lies in the task's regions" in caplog.text


def test_command_writes_the_summary(small_genome, user_model, tmp_path):
    out = tmp_path / "check.json"
    assert main(["check", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
                 "--width", "200", "--task-regions", str(small_genome.tasks_bed), "--labels-column", "name",
                 "--model", user_model, "--task-names", "GATA1", "CTCF", "--jaspar-tax-group", "all",
                 "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["model"]["tasks"] == ["GATA1", "CTCF"] and summary["known_motifs"] > 1000


def test_task_beds_are_checked_again_against_the_checked_model_without_loading_it(small_genome, user_model,
                                                                                  tmp_path, monkeypatch, capsys):
    check = tmp_path / "check.json"
    beds = task_beds(small_genome, "GATA1", "CTCF")
    common = ["check", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed), "--width",
              "200", "--task-regions-select"]
    assert main([*common, "--task-regions", *beds, "--model", user_model, "--task-names", "GATA1", "CTCF",
                 "--meme", str(small_genome.motifs_meme), "--out", str(check)]) == 0
    first = json.loads(check.read_text())

    def no_loading(*args, **kwargs):
        raise AssertionError("the model or the known motifs were loaded again")

    monkeypatch.setattr("genomatt.models.io.load", no_loading)
    monkeypatch.setattr("genomatt.motifs.matching.load_database", no_loading)
    out = tmp_path / "task_regions_check.json"
    assert main([*common, "--task-regions", *beds, "--model-checked", str(check), "--out", str(out)]) == 0
    again = json.loads(out.read_text())
    assert again["model"] == first["model"] and again["regions_in_task_regions"] == first["regions_in_task_regions"]
    assert again["known_motifs"] == 0
    # A task of the model whose BED is gone, named with the model as the first check would.
    capsys.readouterr()
    assert main([*common, "--task-regions", beds[1], "--model-checked", str(check), "--out", str(out)]) == 2
    assert "user_model:build: the model's tasks ['GATA1'] have no task BED" in capsys.readouterr().err
    # A summary of no user's model (a model genomatt trains), or none at all.
    trained = tmp_path / "trained.json"
    trained.write_text(json.dumps({"fasta": "genome.fa"}))
    for path, message in ((trained, "records no user's model"), (tmp_path / "none.json", "check summary not found")):
        assert main([*common, "--task-regions", *beds, "--model-checked", str(path)]) == 2
        assert message in capsys.readouterr().err
    # A user model's task regions only select regions: with on_missing skip, one on a chromosome the genome lacks is
    # skipped here as in the check it follows (it was refused as a model to train's).
    extra = tmp_path / "GATA1.bed"
    extra.write_text(Path(beds[0]).read_text() + "chrZ\t100\t300\n")
    assert main([*common, "--on-missing", "skip", "--task-regions", str(extra), beds[1], "--model-checked",
                 str(check)]) == 0
    with pytest.raises(GenomattError, match="a model checked before is given; the model"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=beds, model=user_model,
                     checked_model=first["model"])


def test_command_reports_a_task_mismatch_in_one_line(small_genome, user_model, tmp_path, capsys):
    out = tmp_path / "check.json"
    assert main(["check", "--fasta", str(small_genome.fasta), "--regions", str(small_genome.regions_bed),
                 "--width", "200", "--task-regions", *task_beds(small_genome, "GATA1", "CTCF"),
                 "--model", user_model, "--meme", str(small_genome.motifs_meme), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genomatt check: error: user_model:build: the model's tasks")
    assert not out.exists()


def test_task_regions_off_the_fasta(small_genome, user_model, tmp_path):
    """An error for a model to train (it reads every task region), whatever on_missing; for a user's model an
    error with on_missing error (the default), counted with skip, and an error where a task keeps none."""
    bed = tmp_path / "GATA1.bed"
    bed.write_text(small_genome.task_beds["GATA1"].read_text() + "chrUn_1\t10\t60\n")
    beds = [bed, small_genome.task_beds["CTCF"]]
    with pytest.raises(GenomattError, match=re.escape(f"{bed}: 1 regions on chromosomes ['chrUn_1']")):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, on_missing="skip", task_beds=beds)
    user = {"model": user_model, "task_names": ["GATA1", "CTCF"]}
    with pytest.raises(GenomattError, match=r"chrUn_1.*skip such regions \(on_missing: skip\)"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=beds, **user)
    summary = check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=beds, on_missing="skip",
                           **user)
    assert summary["task_regions"]["GATA1"] == len(read_bed(small_genome.task_beds["GATA1"]))
    # Chromosomes named otherwise than the FASTA's (1 for chr1): the task would have no region.
    ensembl = tmp_path / "ensembl" / "GATA1.bed"
    ensembl.parent.mkdir()
    ensembl.write_text("".join(line.removeprefix("chr") + "\n"
                               for line in small_genome.task_beds["GATA1"].read_text().splitlines()))
    with pytest.raises(GenomattError, match=r"none of its \d+ regions lies on a chromosome of .*task GATA1 would "
                                            r"have no regions"):
        check_inputs(small_genome.fasta, small_genome.regions_bed, 200, task_beds=[ensembl, beds[1]],
                     on_missing="skip", **user)
