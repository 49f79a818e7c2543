"""``genomatt check``: check every input of a run in seconds, before the long steps start."""

from __future__ import annotations

import argparse
import json
import logging

from genomatt.atomic import atomic_path
from genomatt.motifs.jaspar import DEFAULT_RELEASE

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check a run's inputs (files, chromosomes, task names, model at the width) before it starts",
        description="Check, in seconds, what the later steps would find wrong after hours: that every file "
        "exists and parses, that the chromosomes of the regions, task BEDs and negatives are in the FASTA and "
        "the regions' windows start on them, that a user's model loads, takes windows of --width bp and has a "
        "DeepLIFT rule for every layer (one random sequence explained against one shuffle), that its task names "
        "(or --task-names) each have a task BED (and with --task-regions-select, that some regions lie in the task "
        "regions), that a model to train has its held-out chromosomes in the "
        "genome, and that the known motifs load. The first problem is reported "
        "in one line (exit status 2); with --out, a JSON summary of what was checked is written.",
    )
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--regions", help="BED/narrowPeak of the regions to explain; without it (a check of what "
                        "training reads) the regions and, unless --meme is given, the known motifs are not checked")
    parser.add_argument("--width", type=int, required=True, help="window width in bp")
    parser.add_argument("--on-missing", choices=("error", "skip"), default="error",
                        help="regions on chromosomes absent from the FASTA or starting past a chromosome's end: "
                        "an error (default), or counted and skipped as by 'genomatt extract --on-missing skip'")
    parser.add_argument("--task-regions", nargs="+", metavar="BED",
                        help="task BEDs: one per task (task = file name), or one with --labels-column")
    parser.add_argument("--labels-column", help="with one --task-regions BED, the column naming each region's task: "
                        "one of its first six, by name (name = BED column 4, score, strand)")
    parser.add_argument("--task-regions-select", action="store_true",
                        help="the task BEDs also choose each task's regions for motifs and hits (their "
                        "--task-regions): refuse --regions none of which lies in a task's regions")
    parser.add_argument("--model", help="a user's model (file, config or package.module:factory); without it, "
                        "the tasks are the task BEDs' (a model genomatt trains)")
    parser.add_argument("--weights", help="state dict for a model config or import spec")
    parser.add_argument("--model-checked", metavar="CHECK_JSON",
                        help="the JSON summary (--out) of an earlier check of a user's model: check the task BEDs "
                        "(and regions) against the tasks it records, without loading the model or the known motifs "
                        "again")
    parser.add_argument("--task-names", nargs="+", metavar="NAME",
                        help="names of the model's tasks, as given to 'genomatt attribute --task-names'")
    parser.add_argument("--targets", nargs="+", metavar="TARGET",
                        help="the model's targets to explain, as given to 'genomatt attribute --targets' "
                        "(default: all)")
    parser.add_argument("--negatives", metavar="BED",
                        help="BED of the training negatives (as given to 'genomatt train --negatives')")
    parser.add_argument("--val-chroms", nargs="+", metavar="CHROM",
                        help="for a model to train: its validation chromosomes (as given to 'genomatt train')")
    parser.add_argument("--test-chroms", nargs="+", metavar="CHROM",
                        help="for a model to train: its test chromosomes (as given to 'genomatt train')")
    parser.add_argument("--meme", help="MEME or JASPAR-format file the motifs will be matched against")
    parser.add_argument("--jaspar-release", default=DEFAULT_RELEASE, help="JASPAR release (default %(default)s)")
    parser.add_argument("--jaspar-collection", default="CORE", help="JASPAR collection (default %(default)s)")
    parser.add_argument("--jaspar-tax-group", default="vertebrates",
                        help="JASPAR taxonomic group, or 'all' (default %(default)s)")
    parser.add_argument("--out", help="write the JSON summary of what was checked here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from genomatt.preflight import check_inputs, read_checked_model

    tax_group = None if args.jaspar_tax_group == "all" else args.jaspar_tax_group
    checked_model = read_checked_model(args.model_checked) if args.model_checked else None
    # A check of the task BEDs alone leaves the known motifs to the check it follows.
    known_motifs = args.meme is None and args.regions is not None and checked_model is None
    summary = check_inputs(
        args.fasta, args.regions, args.width, on_missing=args.on_missing, task_beds=args.task_regions,
        labels_column=args.labels_column, task_names=args.task_names, targets=args.targets, model=args.model,
        weights=args.weights,
        negatives=args.negatives, meme=args.meme, val_chroms=args.val_chroms, test_chroms=args.test_chroms,
        jaspar=(args.jaspar_release, args.jaspar_collection, tax_group) if known_motifs else None,
        task_regions_select=args.task_regions_select, checked_model=checked_model,
    )
    text = json.dumps(summary, indent=2)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n")
    tasks = summary["model"]["tasks"] if "model" in summary else list(summary.get("task_regions", {}))
    if args.regions is None:
        log.info("inputs checked: tasks %s", tasks)
    else:
        log.info("inputs checked: %d regions (%d skipped), tasks %s", summary["n_regions"],
                 summary["skipped_regions"], tasks)
