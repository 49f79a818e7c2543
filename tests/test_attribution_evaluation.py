"""Evaluation of attribution methods: planted-motif recovery, Sensitivity-n, the `genomatt evaluate` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from genomatt.attribution import attribute
from genomatt.attribution.evaluation import (
    EVALUATION_METHODS,
    evaluate_attributions,
    motif_recovery,
    output_drops,
    planted_positions,
    position_scores,
    random_subsets,
    sensitivity_grid,
    sensitivity_n,
)
from genomatt.attribution.evaluation_report import markdown_tables
from genomatt.cli.main import main
from genomatt.errors import ConfigError
from genomatt.genome import load_regions
from genomatt.models.architectures import build_model
from genomatt.motifs.formats import read_meme, reverse_complement_matrix
from genomatt.simulate import task_name

WIDTH = 200


def one_hot(n: int, length: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))].transpose(0, 2, 1).copy())


# --- metrics ----------------------------------------------------------------------------------------


def test_planted_positions_are_placed_in_window_coordinates():
    regions = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "start": [100, 300, 100], "end": [120, 320, 120]})
    truth = pd.DataFrame({
        "chrom": ["chr1", "chr1", "chr1", "chr2", "chr3"],
        "start": [105, 95, 315, 110, 100], "end": [110, 102, 330, 112, 110],
        "task": ["A", "B", "A", "C", "A"],
    })
    planted = planted_positions(regions, truth, ["A", "B"], 20)
    assert planted.shape == (3, 2, 20)
    assert np.flatnonzero(planted[0, 0]).tolist() == [5, 6, 7, 8, 9]
    assert np.flatnonzero(planted[0, 1]).tolist() == [0, 1]        # clipped at the window start
    assert np.flatnonzero(planted[1, 0]).tolist() == list(range(15, 20))  # clipped at the end
    assert not planted[2].any()                                     # task C is not evaluated
    with pytest.raises(ConfigError, match="the truth table has no column task"):
        planted_positions(regions, truth.drop(columns="task"), ["A"], 20)


def test_motif_recovery_scores_a_perfect_and_a_useless_method():
    planted = np.zeros((4, 2, 30), dtype=bool)
    planted[:, 0, 10:15] = True
    perfect = planted.astype(np.float32) * 2.0
    table = motif_recovery(perfect, planted, ["A", "B"])
    first = table.iloc[0]
    assert first["auroc"] == 1.0 and first["auprc"] == 1.0 and first["n_planted"] == 20
    assert first["mean_inside"] == 2.0 and first["mean_outside"] == 0.0
    assert np.isnan(table.iloc[1]["auroc"])                          # no planted position for B
    constant = motif_recovery(np.ones_like(perfect), planted, ["A", "B"]).iloc[0]
    assert constant["auroc"] == 0.5 and constant["auprc"] == pytest.approx(20 / 120)


def test_sensitivity_grid_and_subsets():
    assert sensitivity_grid(200) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert sensitivity_grid(2) == [1]
    subsets = random_subsets(3, 50, [1, 8], 5, random_state=0)
    assert subsets[8].shape == (3, 5, 50) and (subsets[8].sum(axis=2) == 8).all()
    with pytest.raises(ConfigError, match="subset sizes must lie in 1..49"):
        random_subsets(3, 50, [50], 5, random_state=0)


def test_exact_linear_attributions_have_sensitivity_n_of_one():
    # Ancona et al. 2018: on a linear model, gradient × input against the removal baseline
    # predicts every subset's output drop exactly, so the correlation is 1 for every n.
    torch.manual_seed(0)
    length = 40
    model = nn.Sequential(nn.Flatten(), nn.Linear(4 * length, 2)).eval()
    X = one_hot(6, length)
    subsets = random_subsets(6, length, sensitivity_grid(length), 12, random_state=1)
    drops = output_drops(model, X, torch.zeros_like(X), subsets, [0, 1])
    scores = position_scores(X, attribute(model, X, method="gradient_x_input", target=[0, 1]))
    table = sensitivity_n(scores, subsets, drops, ["A", "B"])
    np.testing.assert_allclose(table["correlation"], 1.0, atol=1e-5)
    assert (table["n_sequences"] == 6).all()
    shuffled = sensitivity_n(np.random.default_rng(0).permutation(scores, axis=2), subsets, drops, ["A", "B"])
    assert shuffled["correlation"].mean() < 0.9


# --- a model that knows the planted motifs ----------------------------------------------------------


@pytest.fixture(scope="module")
def scanner(small_genome, tmp_path_factory):
    """The default BPNet shape (one wide convolution, global max pool) with the planted motifs' log-odds
    as filters: it scores each task by its best motif match on either strand."""
    motifs = read_meme(small_genome.motifs_meme)
    tasks = [task_name(motif) for motif in motifs]
    kernel = max(motif.width for motif in motifs) | 1
    config = {"architecture": "bpnet", "n_tasks": len(tasks), "input_length": WIDTH, "filters": 2 * len(tasks),
              "n_layers": 0, "first_kernel_size": kernel, "pooling": "max"}
    model = build_model(config)
    with torch.no_grad():
        model.first_conv.weight.zero_()
        model.head.weight.zero_()
        model.head.bias.zero_()
        for index, motif in enumerate(motifs):
            log_odds = motif.log_odds()
            for strand, matrix in enumerate((log_odds, reverse_complement_matrix(log_odds))):
                filter_index = 2 * index + strand
                model.first_conv.weight[filter_index, :, :motif.width] = torch.from_numpy(matrix.copy()).float()
                model.first_conv.bias[filter_index] = -0.5 * float(log_odds.max(axis=0).sum())
                model.head.weight[index, filter_index] = 1.0
    folder = tmp_path_factory.mktemp("scanner")
    torch.save(model.state_dict(), folder / "weights.pt")
    (folder / "model.yaml").write_text(yaml.safe_dump({**config, "weights": "weights.pt", "task_names": tasks}))
    return model.eval(), tasks, folder / "model.yaml"


def test_a_motif_scanner_is_explained_at_its_motifs(small_genome, scanner):
    model, tasks, _ = scanner
    regions, X = load_regions(small_genome.fasta, small_genome.regions_bed, WIDTH, progress=False)
    regions, X = regions.iloc[:16].reset_index(drop=True), X[:16]
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    evaluation = evaluate_attributions(model, X, regions, truth, tasks, methods=["deeplift", "ism", "saliency"],
                                       n_references=4, n_subsets=8, batch_size=512)
    summary = evaluation.summary.set_index("method")
    assert (summary["status"] == "ok").all()
    # The global max pool credits the best instance of each task only, so weaker copies stay unfound;
    # a task's planted positions are 2–4% of all, the auPRC of a random score.
    for method in ("deeplift", "ism"):
        assert summary.loc[method, "auroc"] > 0.75 and summary.loc[method, "auprc"] > 0.5
    assert summary.loc["deeplift", "mean_inside"] > 10 * abs(summary.loc["deeplift", "mean_outside"])
    assert summary.loc["deeplift", "completeness_max"] < 1e-3
    assert np.isnan(summary.loc["ism", "completeness_max"]) and summary.loc["ism", "ms_per_sequence"] > 0
    assert set(evaluation.recovery["task"]) == set(tasks)
    assert sorted(evaluation.sensitivity["n"].unique()) == sensitivity_grid(WIDTH)
    assert evaluation.scores["deeplift"].shape == (16, len(tasks), WIDTH)


def test_evaluation_refuses_unknown_methods_and_tasks(small_genome, scanner):
    model, tasks, _ = scanner
    X = one_hot(2, WIDTH)
    regions = pd.DataFrame({"chrom": "chr1", "start": [0, 500], "end": [WIDTH, 500 + WIDTH]})
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    with pytest.raises(ConfigError, match="unknown method"):
        evaluate_attributions(model, X, regions, truth, tasks, methods=["lime"])
    with pytest.raises(ConfigError, match="none of the model's tasks"):
        evaluate_attributions(model, X, regions, truth.assign(task="other"), tasks)
    # A table without its columns is named as such, not as one of no planted instances of the model's tasks.
    with pytest.raises(ConfigError, match="the truth table has no column chrom, task"):
        evaluate_attributions(model, X, regions, truth.drop(columns=["chrom", "task"]), tasks)
    # Coordinates that are no 0-based intervals: a float start ended in a traceback from numpy's slicing.
    float_start = truth.astype({"start": float})
    float_start.loc[1, "start"] += 0.5
    with pytest.raises(ConfigError,
                       match=r"the truth table: line 3: start must be a non-negative integer .*got '\d+\.5'"):
        evaluate_attributions(model, X, regions, float_start, tasks)
    with pytest.raises(ConfigError, match=r"line 2: end \d+ is not past start"):
        evaluate_attributions(model, X, regions, truth.assign(end=truth["start"]), tasks)
    with pytest.raises(ConfigError, match="removal must be one of shuffle, n"):
        evaluate_attributions(model, X, regions, truth, tasks, removal="zeros")
    with pytest.raises(ConfigError, match="saliency named more than once"):
        evaluate_attributions(model, X, regions, truth, tasks, methods=["saliency", "ism", "saliency"])
    with pytest.raises(ConfigError, match="options given for occlusion, which is not among the methods evaluated"):
        evaluate_attributions(model, X, regions, truth, tasks, methods=["saliency"],
                              options={"occlusion": {"window": 3}})
    with pytest.raises(ConfigError, match="n_subsets must be an integer >= 3"):
        evaluate_attributions(model, X, regions, truth, tasks, n_subsets=1)
    # A truth table naming the chromosomes otherwise (1 for chr1) places no instance in the regions.
    with pytest.raises(ConfigError, match=r"no planted instance of tasks .* lies in the 2 regions \(chromosomes chr1; "
                                          r"the truth table's: 1"):
        evaluate_attributions(model, X, regions, truth.assign(chrom=truth["chrom"].str.removeprefix("chr")), tasks)


def _evaluate(genome, model_path, out, *options) -> int:
    return main(["evaluate", "--model", str(model_path), "--fasta", str(genome.fasta), "--regions",
                 str(genome.regions_bed), "--truth", str(genome.truth_tsv), "--out-dir", str(out), "--device", "cpu",
                 "--max-regions", "10", "--references", "3", "--subsets", "8", "--batch-size", "512", *options])


def test_the_evaluate_command_writes_tables_and_plots(small_genome, scanner, tmp_path, capsys):
    _, tasks, model_path = scanner
    assert _evaluate(small_genome, model_path, tmp_path, "--methods", "deeplift", "patternnet", "occlusion",
                     "--option", "occlusion.window=10", "--removal", "n") == 0
    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    # A method run with options is named with them (the row of a window-10 occlusion is no default occlusion's).
    assert summary["method"].tolist() == ["deeplift", "patternnet", "occlusion (window=10)"]
    assert (summary["status"] == "ok").all()
    recovery = pd.read_csv(tmp_path / "recovery.tsv", sep="\t")
    assert len(recovery) == 3 * len(tasks)
    assert {"method", "task", "n", "correlation"} <= set(pd.read_csv(tmp_path / "sensitivity_n.tsv", sep="\t"))
    markdown = (tmp_path / "evaluation.md").read_text()
    assert "| deeplift |" in markdown and "Sensitivity-n" in markdown
    assert markdown in capsys.readouterr().out
    record = json.loads((tmp_path / "evaluation.json").read_text())
    assert record["settings"]["removal"] == "n" and record["settings"]["options"] == {"occlusion": {"window": 10}}
    assert len(record["model_sha256"]) == 64 and len(record["regions_evaluated"]) == 10
    for png in ["comparison.png", "methods/deeplift.png", "methods/patternnet.png", "methods/occlusion_window_10_.png"]:
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_a_model_that_names_no_outputs_is_evaluated_with_task_names(small_genome, scanner, tmp_path, capsys, caplog):
    model, tasks, _ = scanner
    scripted = tmp_path / "model.ts"
    torch.jit.script(model).save(str(scripted))
    assert _evaluate(small_genome, scripted, tmp_path / "unnamed", "--methods", "saliency", "--width", str(WIDTH)) == 2
    assert "name the model's outputs after them (--task-names)" in capsys.readouterr().err
    assert _evaluate(small_genome, scripted, tmp_path / "named", "--methods", "saliency", "--width", str(WIDTH),
                     "--task-names", *tasks) == 0
    assert pd.read_csv(tmp_path / "named" / "recovery.tsv", sep="\t")["task"].tolist() == tasks
    # A task of the model without planted instances is named as left out, not dropped silently.
    renamed = [f"{tasks[0]}X", *tasks[1:]]
    with caplog.at_level("WARNING", logger="genomatt"):
        assert _evaluate(small_genome, scripted, tmp_path / "renamed", "--methods", "saliency", "--width", str(WIDTH),
                         "--task-names", *renamed) == 0
    assert f"the model's tasks {tasks[0]}X have no planted instances in the truth table" in caplog.text
    assert pd.read_csv(tmp_path / "renamed" / "recovery.tsv", sep="\t")["task"].tolist() == tasks[1:]


class Gated(nn.Module):
    """A gated CNN: explained by the gradient methods, refused by ε-LRP and PatternNet."""

    def __init__(self, n_tasks: int):
        super().__init__()
        torch.manual_seed(0)
        self.value, self.gate = nn.Conv1d(4, n_tasks, 5, padding=2), nn.Conv1d(4, n_tasks, 5, padding=2)

    def forward(self, x):
        return (self.value(x) * torch.sigmoid(self.gate(x))).mean(dim=2)


def test_a_method_that_cannot_explain_the_model_is_reported(small_genome, scanner):
    _, tasks, _ = scanner
    regions, X = load_regions(small_genome.fasta, small_genome.regions_bed, WIDTH, progress=False)
    evaluation = evaluate_attributions(Gated(len(tasks)), X[:4], regions.iloc[:4], pd.read_csv(small_genome.truth_tsv,
                                       sep="\t"), tasks, methods=["saliency", "epsilon_lrp", "patternnet"],
                                       n_references=2, n_subsets=4)
    summary = evaluation.summary.set_index("method")
    assert summary.loc["saliency", "status"] == "ok"
    assert summary.loc["epsilon_lrp", "status"].startswith("not run: cannot compute epsilon-LRP through `mul`")
    assert summary.loc["patternnet", "status"].startswith(
        "not run: cannot compute the patterns of PatternNet and PatternAttribution through `sigmoid`")
    assert evaluation.recovery["method"].unique().tolist() == ["saliency"]
    assert "| patternnet | not run: cannot compute the patterns of PatternNet" in markdown_tables(evaluation)


def test_the_evaluate_command_refuses_bad_options(small_genome, scanner, tmp_path, capsys):
    _, _, model_path = scanner
    with pytest.raises(SystemExit):
        _evaluate(small_genome, model_path, tmp_path, "--option", "lime.steps=3")
    assert _evaluate(small_genome, model_path, tmp_path, "--methods", "saliency", "--option",
                     "saliency.steps=3") == 2
    assert "saliency has no option 'steps'" in capsys.readouterr().err
    # The evaluation's own references are every method's; a method cannot take others.
    assert _evaluate(small_genome, model_path, tmp_path, "--methods", "integrated_gradients", "--option",
                     "integrated_gradients.n_shuffles=7") == 2
    assert "integrated_gradients: 'n_shuffles' is set by the evaluation for every method" in capsys.readouterr().err


def test_the_evaluate_command_names_a_truth_table_without_its_columns_and_skips_regions_off_the_genome(
        small_genome, scanner, tmp_path, capsys):
    _, tasks, model_path = scanner
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    headless = tmp_path / "headless.tsv"
    truth.to_csv(headless, sep="\t", index=False, header=False)
    assert main(["evaluate", "--model", str(model_path), "--fasta", str(small_genome.fasta), "--regions",
                 str(small_genome.regions_bed), "--truth", str(headless), "--out-dir", str(tmp_path / "e")]) == 2
    error = capsys.readouterr().err
    assert f"{headless}: the truth table has no column chrom, start, end, task" in error, error
    # A region on a chromosome the FASTA lacks: refused with the way out, which the command takes.
    regions = tmp_path / "regions.bed"
    regions.write_text(Path(small_genome.regions_bed).read_text() + "chrOther\t100\t300\n")
    options = ["--model", str(model_path), "--fasta", str(small_genome.fasta), "--regions", str(regions), "--truth",
               str(small_genome.truth_tsv), "--device", "cpu", "--max-regions", "4", "--references", "2",
               "--subsets", "8", "--methods", "saliency"]
    assert main(["evaluate", *options, "--out-dir", str(tmp_path / "refused")]) == 2
    assert "--on-missing skip" in capsys.readouterr().err
    assert main(["evaluate", *options, "--on-missing", "skip", "--out-dir", str(tmp_path / "skipped")]) == 0
    assert (tmp_path / "skipped" / "summary.tsv").is_file()


def test_a_bad_option_value_stops_the_evaluation_before_any_method_runs(small_genome, scanner, caplog):
    model, tasks, _ = scanner
    X = one_hot(2, WIDTH)
    regions = pd.DataFrame({"chrom": "chr1", "start": [0, 500], "end": [WIDTH, 500 + WIDTH]})
    truth = pd.read_csv(small_genome.truth_tsv, sep="\t")
    with caplog.at_level("INFO", logger="genomatt"), pytest.raises(ConfigError, match=(
            "integrated_gradients: steps must be a positive integer, got 'abc'")):
        evaluate_attributions(model, X, regions, truth, tasks, methods=["saliency", "integrated_gradients"],
                              n_references=2, options={"integrated_gradients": {"steps": "abc"}}, device="cpu")
    assert "saliency:" not in caplog.text  # no method ran


@pytest.mark.slow
def test_every_method_runs_through_the_evaluate_command(small_genome, scanner, tmp_path):
    _, _, model_path = scanner
    assert _evaluate(small_genome, model_path, tmp_path, "--option", "integrated_gradients.steps=8") == 0
    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t").set_index("method")
    summary = summary.rename(index={"integrated_gradients (steps=8)": "integrated_gradients"})
    assert summary.index.tolist() == list(EVALUATION_METHODS)
    assert (summary["status"] == "ok").all()
    claimed = ["deeplift", "deeplift_revealcancel", "deeplift_genomics_default", "deeplift_max_shapley",
               "integrated_gradients", "epsilon_lrp"]
    assert summary.loc[claimed, "completeness_max"].notna().all()
    assert summary.drop(index=claimed)["completeness_max"].isna().all()
