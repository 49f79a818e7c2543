"""Training: augmentation, a real learning check on a small simulated genome, determinism, the CLI."""

import json
import logging

import numpy as np
import pytest
import torch

from genomatt.cli.main import main
from genomatt.errors import ConfigError, ModelError
from genomatt.models import TrainingConfig, build_model, build_training_data, content_hash, fit, load, predict
from genomatt.models.training import _validation_rank, augment_batch
from genomatt.simulate import SimulationSettings, simulate_genome

SMALL_MODEL = {"architecture": "bpnet", "filters": 32, "n_layers": 0, "pooling": "max"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Small models train fastest on one thread, and CI machines may be shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    settings = SimulationSettings(
        motifs=("MA0139", "MA0466"), chromosome_length=100_000, n_positive_regions=500, n_negative_regions=100
    )
    return simulate_genome(tmp_path_factory.mktemp("genome"), settings)


@pytest.fixture(scope="module")
def trained(genome, tmp_path_factory):
    """A model trained through the command line, with its metrics."""
    out = tmp_path_factory.mktemp("trained")
    architecture = out / "architecture.yaml"
    architecture.write_text(json.dumps(SMALL_MODEL))
    status = main(
        [
            "--quiet",
            "train",
            "--fasta",
            str(genome.fasta),
            "--task-regions", *[str(bed) for bed in genome.task_beds.values()],
            "--out",
            str(out / "model.pt"),
            "--architecture-config",
            str(architecture),
            "--epochs",
            "8",
            "--learning-rate",
            "0.01",
            "--seed",
            "1",
        ]
    )
    assert status == 0
    return out / "model.pt", json.loads((out / "model.metrics.json").read_text())


def test_augmentation_shifts_within_the_flanks_and_reverse_complements():
    rng = np.random.default_rng(0)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (50, 30))].transpose(0, 2, 1)
    batch = augment_batch(X, width=20, jitter=5, reverse_complement=True, rng=np.random.default_rng(1))
    assert batch.shape == (50, 4, 20) and batch.dtype == np.float32
    seen_flipped = seen_shift = False
    for original, window in zip(X, batch):
        forward = [offset for offset in range(11) if np.array_equal(original[:, offset : offset + 20], window)]
        reverse = [
            offset for offset in range(11) if np.array_equal(original[::-1, offset : offset + 20][:, ::-1], window)
        ]
        assert forward or reverse
        seen_flipped |= bool(reverse) and not forward
        seen_shift |= 5 not in forward + reverse
    assert seen_flipped and seen_shift


def test_augmentation_can_be_turned_off():
    X = np.random.default_rng(0).random((4, 4, 12)).astype(np.float32)
    batch = augment_batch(X, width=12, jitter=0, reverse_complement=False, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(batch, X)


def test_training_learns_the_planted_motifs_on_held_out_chromosomes(trained):
    _, metrics = trained
    assert set(metrics["tasks"]) == {"CTCF", "CEBPB"}
    for task, values in metrics["tasks"].items():
        # Chance is 0.5; the planted motifs are strong enough for a small model to find them.
        assert values["auroc"] > 0.85, (task, values)
        assert values["n_positive"] > 20 and values["n_negative"] > 20
    assert metrics["split"]["test_chroms"] == ["chr5"] and metrics["split"]["validation_chroms"] == ["chr4"]
    history = metrics["history"]
    best_auroc = max(record["validation_auroc"] for record in history)
    assert history[metrics["best_epoch"] - 1]["validation_auroc"] == best_auroc
    assert history[-1]["validation_auroc"] > history[0]["validation_auroc"]


def test_trained_artefact_loads_and_describes_itself(trained):
    path, metrics = trained
    loaded = load(path, input_length=200, device="cpu")
    assert loaded.task_names == ["CTCF", "CEBPB"]
    assert loaded.content_hash == metrics["content_hash"]
    assert loaded.metadata["test_metrics"]["tasks"] == metrics["tasks"]
    training_config = loaded.metadata["training_config"]
    assert training_config["seed"] == 1 and training_config["negatives"] == "gc_matched"
    assert training_config["threads"] == 1  # the CPU threads the weights were computed with (--threads)
    assert (
        training_config["architecture"]["filters"] == SMALL_MODEL["filters"]
        and training_config["architecture"]["input_length"] == 200
    )


def test_training_is_deterministic_for_a_seed(genome):
    data = build_training_data(
        genome.fasta, list(genome.task_beds.values()), 100, jitter=5, negatives="shuffled", progress=False
    )
    config = TrainingConfig(width=100, jitter=5, epochs=2, architecture=SMALL_MODEL, seed=3)
    hashes, histories = [], []
    for _ in range(2):
        torch.manual_seed(config.seed)
        model = build_model({**SMALL_MODEL, "n_tasks": 2, "input_length": 100})
        histories.append(fit(model, data, config, torch.device("cpu"), progress=False))
        hashes.append(content_hash(model))
    assert hashes[0] == hashes[1] and histories[0] == histories[1]
    assert not model.training
    assert predict(model, data.X[:3, :, 5:105]).shape == (3, 2)


def test_weight_decay_shrinks_the_weights(genome):
    data = build_training_data(
        genome.fasta, list(genome.task_beds.values()), 100, jitter=5, negatives="shuffled", progress=False
    )
    norms = {}
    for decay in (0.0, 0.5):
        config = TrainingConfig(width=100, jitter=5, epochs=3, patience=3, architecture=SMALL_MODEL, seed=3,
                                weight_decay=decay)
        torch.manual_seed(config.seed)
        model = build_model({**SMALL_MODEL, "n_tasks": 2, "input_length": 100})
        fit(model, data, config, torch.device("cpu"), progress=False)
        norms[decay] = float(sum((parameter.detach() ** 2).sum() for parameter in model.parameters()))
    assert norms[0.5] < 0.8 * norms[0.0]


def test_training_that_diverges_is_refused_as_such(genome):
    data = build_training_data(genome.fasta, list(genome.task_beds.values())[:2], 100, jitter=5, progress=False)
    config = TrainingConfig(width=100, jitter=5, epochs=2, learning_rate=1e30, architecture=SMALL_MODEL)
    torch.manual_seed(config.seed)
    model = build_model({**SMALL_MODEL, "n_tasks": 2, "input_length": 100})
    with pytest.raises(ModelError, match=r"training diverged: the model's outputs are not finite .*lower the "
                                         r"learning rate"):
        fit(model, data, config, torch.device("cpu"), progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "width must be a positive integer"),
        ({"jitter": -1}, "jitter must be a non-negative integer"),
        ({"width": 100, "jitter": 50}, r"jitter \(50 bp\) must be under half the width \(100 bp\)"),
        ({"learning_rate": 0.0}, "learning_rate must be positive"),
        ({"weight_decay": -0.1}, "weight_decay must be zero or positive"),
        ({"weight_decay": float("nan")}, "weight_decay must be zero or positive"),
        ({"weight_decay": "0.1"}, "weight_decay must be zero or positive"),
        ({"weight_decay": float("inf")}, "weight_decay must be zero or positive and finite"),
        ({"learning_rate": float("inf")}, "learning_rate must be positive and finite"),
        ({"architecture": {"architecture": "bpnet", "n_tasks": 3}}, "come from the data"),
    ],
)
def test_invalid_training_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainingConfig(**kwargs)


def test_cli_reports_a_missing_task_bed(genome, tmp_path, capsys):
    status = main(
        ["train", "--fasta", str(genome.fasta), "--task-regions", str(tmp_path / "GATA1.bed"),
         "--out", str(tmp_path / "m.pt")]
    )
    assert status == 2
    assert f"genomatt train: error: {tmp_path / 'GATA1.bed'}: task BED file not found" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("config, message", [
    ({"architecture": "bpnet", "filter": 16}, "bpnet has no parameters ['filter']; it accepts ['filters', "),
    ({"architecture": "nope"}, "unknown architecture 'nope'"),
])
def test_a_wrong_architecture_config_is_named_before_the_data_is_built(genome, tmp_path, capsys, caplog, config,
                                                                      message):
    architecture = tmp_path / "architecture.yaml"
    architecture.write_text(json.dumps(config))
    with caplog.at_level(logging.INFO, logger="genomatt"):
        status = main(["train", "--fasta", str(genome.fasta), "--task-regions", str(genome.task_beds["CTCF"]),
                       "--architecture-config", str(architecture), "--out", str(tmp_path / "m.pt")])
    assert status == 2
    error = capsys.readouterr().err
    assert f"genomatt train: error: {architecture}: {message}" in error and "input_length" not in error
    assert "training windows" not in caplog.text


def test_cli_refuses_metrics_written_over_the_model(genome, tmp_path, capsys):
    model = tmp_path / "m.pt"
    status = main(["train", "--fasta", str(genome.fasta), "--task-regions", str(genome.task_beds["CTCF"]),
                   "--out", str(model), "--metrics", str(model)])
    assert status == 2
    assert "--metrics and --out are one file" in capsys.readouterr().err
    assert not model.exists()


def test_metrics_json_writes_null_for_a_value_that_is_not_a_number():
    from genomatt.cli.train import _json_numbers

    record = {"history": [{"epoch": 1, "validation_auroc": float("nan")}], "mean_test_auroc": 0.9}
    assert _json_numbers(record) == {"history": [{"epoch": 1, "validation_auroc": None}], "mean_test_auroc": 0.9}


def test_cli_reports_unknown_holdout_chromosomes(genome, tmp_path, capsys):
    bed = str(genome.task_beds["CTCF"])
    status = main(
        ["train", "--fasta", str(genome.fasta), "--task-regions", bed, "--out", str(tmp_path / "m.pt"),
         "--test-chroms", "chr9"]
    )
    assert status == 2
    assert "--test-chroms (train.test_chroms): chromosomes ['chr9'] are not in the genome" in capsys.readouterr().err


def test_early_stopping_ranks_epochs_by_validation_auroc_then_loss():
    calibrated = {"validation_auroc": 0.90, "validation_loss": 0.30}
    better_ranking = {"validation_auroc": 0.93, "validation_loss": 0.35}
    assert _validation_rank(better_ranking) > _validation_rank(calibrated)
    tie = {"validation_auroc": 0.93, "validation_loss": 0.32}
    assert _validation_rank(tie) > _validation_rank(better_ranking)
    # Without a task that has both classes on the validation chromosomes, the loss decides.
    undefined = [{"validation_auroc": float("nan"), "validation_loss": loss} for loss in (0.5, 0.4)]
    assert _validation_rank(undefined[1]) > _validation_rank(undefined[0])
