"""``genomatt train``: train a sequence model from a genome and task BED files, save it and its metrics."""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import yaml

from genomatt.atomic import atomic_path
from genomatt.cli.arguments import add_device_argument, seed
from genomatt.errors import ConfigError
from genomatt.models.training_config import ARCHITECTURE_NAMES, FROM_THE_DATA, TrainingConfig

log = logging.getLogger(__name__)

_DEFAULTS = TrainingConfig()


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a sequence CNN on task BED files and save it as one model artefact",
        description="Train a multi-task classifier (one task per BED file, or per label of one BED) on windows "
        "of the genome, hold out chromosomes for validation (early stopping) and test (auROC/auPRC per task), "
        "and write the model artefact (--out) and its metrics (--metrics).",
    )
    parser.add_argument("--fasta", required=True, help="genome FASTA (indexed or indexable)")
    parser.add_argument(
        "--task-regions",
        nargs="+",
        required=True,
        metavar="BED",
        help="positive regions of each task: one BED per task (task = file name without suffix), or one BED "
        "with --labels-column",
    )
    parser.add_argument(
        "--labels-column",
        metavar="COLUMN",
        help="with one --task-regions BED: the column naming each region's task, one of its first six by name "
        "(e.g. 'name', BED column 4)",
    )
    parser.add_argument(
        "--negatives",
        default=_DEFAULTS.negatives,
        metavar="gc_matched|shuffled|BED",
        help="GC-matched genomic background, dinucleotide shuffles of the positives, or a BED of "
        "negative regions (default: %(default)s)",
    )
    parser.add_argument("--out", required=True, help="model artefact to write (.pt)")
    parser.add_argument("--metrics", help="metrics JSON to write (default: the --out path with .metrics.json)")
    parser.add_argument("--width", type=int, default=_DEFAULTS.width, help="input length in bp (default: %(default)s)")
    parser.add_argument(
        "--jitter",
        type=int,
        default=_DEFAULTS.jitter,
        help="maximum random shift of training windows in bp (default: %(default)s)",
    )
    parser.add_argument(
        "--val-chroms",
        nargs="+",
        metavar="CHROM",
        default=["chr4"],
        help="validation chromosomes (default: chr4)",
    )
    parser.add_argument(
        "--test-chroms", nargs="+", metavar="CHROM", default=["chr5"], help="test chromosomes (default: chr5)"
    )
    architecture = parser.add_mutually_exclusive_group()
    architecture.add_argument(
        "--architecture",
        choices=sorted(ARCHITECTURE_NAMES),
        help="architecture with its default parameters (default: "
        f"{_DEFAULTS.architecture['architecture']} with {_parameters_text(_DEFAULTS.architecture)})",
    )
    architecture.add_argument(
        "--architecture-config", metavar="FILE", help="YAML/JSON mapping with 'architecture:' and its parameters"
    )
    parser.add_argument("--epochs", type=int, default=_DEFAULTS.epochs, help="maximum epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size, help="(default: %(default)s)")
    parser.add_argument(
        "--learning-rate", type=float, default=_DEFAULTS.learning_rate, help="Adam step size (default: %(default)s)"
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=_DEFAULTS.weight_decay,
        help="L2 penalty on the weights, as Adam's weight_decay (0 turns it off; default: %(default)s)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=_DEFAULTS.patience,
        help="stop after this many epochs without a higher mean validation auROC (default: %(default)s)",
    )
    parser.add_argument("--no-reverse-complement", action="store_true", help="do not augment with reverse complements")
    parser.add_argument("--seed", type=seed, default=_DEFAULTS.seed, help="random seed (default: %(default)s)")
    add_device_argument(parser)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default: %(default)s; the default model is too small to gain from more)",
    )
    parser.set_defaults(func=run)


def _parameters_text(architecture: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in architecture.items() if key != "architecture") or "its defaults"


def _architecture(args: argparse.Namespace) -> dict:
    if args.architecture is not None:
        return {"architecture": args.architecture}
    if args.architecture_config is None:
        return dict(_DEFAULTS.architecture)
    path = Path(args.architecture_config)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read architecture config ({error})") from None
    if not isinstance(config, dict) or "architecture" not in config:
        raise ConfigError(
            f"{path}: expected a mapping with 'architecture' (one of {sorted(ARCHITECTURE_NAMES)}) and its parameters"
        )
    # Named with the file, before the training data is built: a misspelt parameter.
    from genomatt.models.architectures import architecture_parameters

    try:
        accepted = set(architecture_parameters(config["architecture"])) - set(FROM_THE_DATA)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    unknown = sorted(set(config) - accepted - {"architecture", *FROM_THE_DATA})
    if unknown:
        raise ConfigError(f"{path}: {config['architecture']} has no parameters {unknown}; it accepts "
                          f"{sorted(accepted)}")
    return config


def run(args: argparse.Namespace) -> None:
    import torch

    from genomatt.models import save_model, train_model

    if args.threads <= 0:
        raise ConfigError(f"--threads must be a positive integer, got {args.threads}")
    metrics_path = Path(args.metrics) if args.metrics else Path(args.out).with_suffix(".metrics.json")
    if metrics_path.resolve() == Path(args.out).resolve():
        raise ConfigError(f"--metrics and --out are one file, {args.out}: the metrics would overwrite the model")
    torch.set_num_threads(args.threads)
    config = TrainingConfig(
        width=args.width,
        jitter=args.jitter,
        negatives=args.negatives,
        validation_chroms=args.val_chroms,
        test_chroms=args.test_chroms,
        architecture=_architecture(args),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        patience=args.patience,
        reverse_complement=not args.no_reverse_complement,
        seed=args.seed,
    )
    result = train_model(
        args.fasta, args.task_regions, config, labels_column=args.labels_column, device=args.device,
        progress=not args.quiet,
    )
    content_hash = save_model(
        result.model, args.out, result.task_names, training_config=result.training_config, test_metrics=result.metrics
    )
    with atomic_path(metrics_path) as tmp:
        record = {"model": str(args.out), "content_hash": content_hash, **result.metrics}
        tmp.write_text(json.dumps(_json_numbers(record), indent=2, allow_nan=False) + "\n")
    log.info("wrote %s (test auROC %.3f on average) and %s", args.out, result.metrics["mean_test_auroc"], metrics_path)


def _json_numbers(value):
    """``value`` with every NaN or infinite float made None (JSON's null), e.g. the validation auROC of an
    epoch whose validation windows hold one class, so that any JSON reader takes the file."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_numbers(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_numbers(item) for item in value]
    return value
