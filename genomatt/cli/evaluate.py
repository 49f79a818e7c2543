"""``genomatt evaluate``: rank attribution methods on a model by planted-motif recovery and Sensitivity-n."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import yaml

from genomatt.attribution.choices import EVALUATION_METHODS, MIN_SUBSETS, REMOVALS
from genomatt.cli.arguments import add_device_argument, positive_int, seed
from genomatt.errors import ConfigError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="compare attribution methods on a model: planted-motif recovery, Sensitivity-n, completeness, time",
        description="Explain a model on regions with known planted motifs (genomatt simulate) with every chosen "
        "attribution method, and measure how well each method's per-position scores find the planted motif "
        "positions of each task (auROC, auPRC), how well sums of scores predict the output drop when random "
        "positions are removed (Sensitivity-n), the completeness error of the methods that claim it, and the "
        "time per sequence. Writes TSV and markdown tables and PNG plots to --out-dir.",
    )
    parser.add_argument("--model", required=True,
                        help="genomatt model artefact, TorchScript file, model config (.yaml/.json) or "
                        "package.module:factory")
    parser.add_argument("--weights", help="state dict for a model config or import spec")
    parser.add_argument("--task-names", nargs="+", metavar="NAME",
                        help="names of the model's output columns, in order, for a model that names none: each is "
                        "a task of the truth table")
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--regions", required=True, help="BED of the regions to explain")
    parser.add_argument("--on-missing", choices=("error", "skip"), default="error",
                        help="regions on chromosomes absent from the FASTA or starting past a chromosome's end: "
                        "fail (default) or skip (with a count)")
    parser.add_argument("--truth", required=True,
                        help="planted instances, TSV with chrom, start, end, task (truth.tsv of genomatt simulate)")
    parser.add_argument("--out-dir", required=True, help="output folder")
    parser.add_argument("--methods", nargs="+", choices=list(EVALUATION_METHODS), default=list(EVALUATION_METHODS),
                        metavar="METHOD", help=f"methods to compare (default: all of {', '.join(EVALUATION_METHODS)})")
    parser.add_argument("--max-regions", type=positive_int, default=300,
                        help="explain a random sample of this many regions (default %(default)s)")
    parser.add_argument("--width", type=positive_int,
                        help="window width in bp (default: the model's declared input length)")
    parser.add_argument("--references", type=positive_int, default=20,
                        help="dinucleotide shuffles per region for the methods with references (default %(default)s)")
    parser.add_argument("--removal", choices=REMOVALS, default="shuffle",
                        help="Sensitivity-n replaces removed positions with the base of a dinucleotide shuffle "
                        "(default) or with N")
    parser.add_argument("--subsets", type=_subsets, default=64,
                        help=f"random subsets per region and subset size for Sensitivity-n, at least {MIN_SUBSETS} "
                        "(default %(default)s)")
    parser.add_argument("--patterns", help="PatternNet patterns (Patterns.save); default: fitted on every region "
                        "of --regions (sequences only)")
    parser.add_argument("--option", action="append", default=[], metavar="METHOD.NAME=VALUE", type=_method_option,
                        help="an option of one method, e.g. integrated_gradients.steps=20 or occlusion.window=10 "
                        "(repeatable)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of sampling, references and subsets (default %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=128,
                        help="rows per forward pass (default %(default)s)")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def _subsets(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < MIN_SUBSETS:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_SUBSETS} (Sensitivity-n correlates over the subsets "
                                         f"of each size), got {value}")
    return value


def _method_option(text: str) -> tuple[str, str, object]:
    key, separator, value = text.partition("=")
    method, dot, name = key.partition(".")
    if not separator or not dot or method not in EVALUATION_METHODS or not name:
        raise argparse.ArgumentTypeError(f"expected METHOD.NAME=VALUE with METHOD one of "
                                         f"{', '.join(EVALUATION_METHODS)}; got {text!r}")
    return method, name, yaml.safe_load(value)


def _sample(n_regions: int, limit: int, seed: int) -> np.ndarray:
    if n_regions <= limit:
        return np.arange(n_regions)
    return np.sort(np.random.default_rng(seed).choice(n_regions, size=limit, replace=False))


def _read_truth(path: str):
    """The planted instances of ``path``, with the columns the evaluation reads, or a ConfigError naming the file."""
    import pandas as pd

    from genomatt.attribution.evaluation import TRUTH_COLUMNS, check_truth_columns

    try:
        truth = pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as error:  # pandas' parser and empty-data errors are ValueErrors
        raise ConfigError(f"{path}: cannot read the truth table ({error}); expected a TSV with a header line naming "
                          f"{', '.join(TRUTH_COLUMNS)}") from error
    check_truth_columns(truth, path)
    return truth


def run(args: argparse.Namespace) -> None:
    from genomatt.attribution.evaluation import evaluate_attributions
    from genomatt.attribution.evaluation_report import markdown_tables, write_evaluation
    from genomatt.attribution.patterns import Patterns
    from genomatt.genome import load_regions
    from genomatt.models.io import load, name_tasks

    loaded = load(args.model, args.weights, input_length=args.width, device=args.device)
    if args.task_names:
        loaded = name_tasks(loaded, args.task_names, args.model)
    if not loaded.task_names:
        raise ConfigError(f"{args.model}: the model does not return one value per task, (N, T); genomatt evaluate "
                          "explains such models only")
    regions, onehot = load_regions(args.fasta, args.regions, loaded.input_length, on_missing=args.on_missing,
                                   progress=False)
    truth = _read_truth(args.truth)
    chosen = _sample(len(regions), args.max_regions, args.seed)
    options: dict[str, dict] = {}
    for method, name, value in args.option:
        options.setdefault(method, {})[name] = value
    if args.quiet:
        for method in args.methods:
            if EVALUATION_METHODS.get(method, ("",))[0] == "deeplift":
                options.setdefault(method, {}).setdefault("progress", False)
    patterns = Patterns.load(args.patterns) if args.patterns else None
    log.info("evaluating %d methods on %d of %d regions", len(args.methods), len(chosen), len(regions))
    evaluation = evaluate_attributions(
        loaded.model, onehot[chosen], regions.iloc[chosen].reset_index(drop=True), truth, loaded.task_names,
        methods=args.methods, n_references=args.references, removal=args.removal, n_subsets=args.subsets,
        patterns=patterns, X_train=None if patterns is not None else onehot, options=options,
        batch_size=args.batch_size, device=args.device, seed=args.seed,
    )
    provenance = {
        "command": "evaluate",
        "model": str(Path(args.model).resolve()) if Path(args.model).is_file() else str(args.model),
        "weights": str(Path(args.weights).resolve()) if args.weights else None,
        "model_sha256": loaded.content_hash, "fasta": str(Path(args.fasta).resolve()),
        "regions": str(Path(args.regions).resolve()), "truth": str(Path(args.truth).resolve()),
        "patterns": str(Path(args.patterns).resolve()) if args.patterns else None,
        "regions_evaluated": regions.iloc[chosen]["name"].tolist() if "name" in regions else None,
    }
    write_evaluation(evaluation, args.out_dir, provenance)
    print(markdown_tables(evaluation), end="")
    log.info("wrote %s", args.out_dir)
