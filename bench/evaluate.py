"""Attribution methods compared on the default model of the simulated demo genome.

Simulates the default genome, trains the default model with `genomatt.models.train_model` (or
loads --model), and runs `evaluate_attributions` with every method on regions of the test
chromosome (chr5, never seen in training), with patterns fitted on the training chromosomes'
regions. Prints the markdown tables of `genomatt evaluate` and the machine they were measured on.

Usage: .venv/bin/python bench/evaluate.py [--max-regions 200] [--model model.pt] [--workdir DIR]
       [--methods deeplift deeplift_revealcancel ...]
"""

from __future__ import annotations

import argparse
import datetime
import logging
import platform
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genomatt.attribution import fit_patterns
from genomatt.attribution.evaluation import EVALUATION_METHODS, evaluate_attributions
from genomatt.attribution.evaluation_report import markdown_tables, write_evaluation
from genomatt.genome import load_regions
from genomatt.models import TrainingConfig, load, save_model, train_model
from genomatt.simulate import simulate_genome

TEST_CHROMOSOME = "chr5"
TRAINING_CHROMOSOMES = ("chr1", "chr2", "chr3")


def model_path(genome, workdir: Path, given: str | None) -> Path:
    """The model to explain: --model, or the default model trained once into the work folder."""
    if given:
        return Path(given)
    path = workdir / "model.pt"
    if not path.exists():
        result = train_model(genome.fasta, list(genome.task_beds.values()), TrainingConfig(), device="cpu",
                             progress=False)
        save_model(result.model, path, result.task_names, result.training_config, result.metrics)
    return path


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-regions", type=int, default=200, help="test-chromosome regions to explain")
    parser.add_argument("--model", help="model to explain (default: train the default model)")
    parser.add_argument("--methods", nargs="+", choices=list(EVALUATION_METHODS), default=list(EVALUATION_METHODS),
                        help="methods to compare (default: all)")
    parser.add_argument("--workdir", help="folder for the genome, model and results (default: a temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(args.workdir or temporary)
        genome = simulate_genome(workdir / "genome")
        loaded = load(model_path(genome, workdir, args.model), device="cpu")
        regions, X = load_regions(genome.fasta, genome.regions_bed, loaded.input_length, progress=False)
        on_test = np.flatnonzero(regions["chrom"].to_numpy() == TEST_CHROMOSOME)
        size = min(args.max_regions, len(on_test))
        chosen = np.sort(np.random.default_rng(0).choice(on_test, size=size, replace=False))
        training = regions["chrom"].isin(TRAINING_CHROMOSOMES).to_numpy()
        patterns = fit_patterns(loaded.model, X[training], device="cpu")
        started = datetime.datetime.now(datetime.timezone.utc)
        evaluation = evaluate_attributions(
            loaded.model, X[chosen], regions.iloc[chosen].reset_index(drop=True), pd.read_csv(genome.truth_tsv, sep="\t"),
            loaded.task_names, methods=args.methods, patterns=patterns, batch_size=256, device="cpu",
        )
        write_evaluation(evaluation, workdir / "evaluation", {"model_sha256": loaded.content_hash})
    print(f"{started:%Y-%m-%d %H:%M} UTC, {cpu_name()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}, "
          f"{len(chosen)} regions of {TEST_CHROMOSOME}, {len(evaluation.tasks)} tasks, patterns from "
          f"{int(training.sum())} training regions, model {loaded.content_hash[:12]}")
    print()
    print(markdown_tables(evaluation))


if __name__ == "__main__":
    main()
