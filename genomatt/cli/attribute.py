"""``genomatt attribute``: DeepLIFT/DeepSHAP contributions of a model for every region of a regions store."""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genomatt.atomic import atomic_hdf5, atomic_path
from genomatt.attribution.choices import PROFILE_CONVENTIONS, RULES
from genomatt.cli.arguments import add_device_argument, positive_int
from genomatt.errors import ConfigError, NonFiniteError
from genomatt.progress import ProgressLog

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = ("bfloat16", "float16")
"""Names of the torch dtypes ``--autocast`` runs the model in."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "attribute",
        help="DeepLIFT/DeepSHAP contributions of a model for every region (contrib.h5)",
        description="Explain a model's output for every region of a regions store (genomatt extract) with "
        "DeepLIFT against dinucleotide-shuffled references seeded by each region's coordinates, and write "
        "hypothetical and actual contributions, the summation-to-delta error and the prediction per region "
        "and target to contrib.h5. With --export-dir, also write the files tfmodisco-lite (ohe.npz, shap.npz) "
        "and ChromBPNet-style tools (scores.h5: raw/seq, shap/seq, projected_shap/seq) read, one folder per target.",
    )
    parser.add_argument("--regions-h5", required=True,
                        help="regions HDF5 with /onehot (regions.h5 from 'genomatt extract')")
    parser.add_argument("--model", required=True,
                        help="genomatt model artefact (genomatt train), TorchScript file, model config "
                        "(.yaml/.json) or package.module:factory, see docs/models.md")
    parser.add_argument("--weights", help="state dict for a model config or import spec")
    parser.add_argument("--out", required=True, help="output contrib.h5")
    parser.add_argument("--targets", nargs="+",
                        help="task names or output indices to explain; for a model with several outputs "
                        "(profile and count heads) head names (profile, counts) or head indices; for a "
                        "model with one (N, T, L) profile output, track names or indices "
                        "(default: every task, head or track)")
    parser.add_argument("--task-names", nargs="+", metavar="NAME",
                        help="names of the model's output columns, in order, for a model that names none "
                        "(refused when the model names its tasks otherwise)")
    parser.add_argument("--references", type=positive_int, default=20,
                        help="dinucleotide shuffles per region (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the references (default %(default)s)")
    parser.add_argument("--rule", choices=RULES, default="rescale",
                        help="DeepLIFT rule for elementwise nonlinearities; genomics_default is Rescale after "
                        "convolutions and RevealCancel after dense layers (default %(default)s)")
    parser.add_argument("--profile-target", choices=PROFILE_CONVENTIONS, default=PROFILE_CONVENTIONS[0],
                        help="how a profile output is reduced to the explained value: bpnet (bpnet-lite's and "
                        "ChromBPNet's ProfileWrapper) or held (softmax weights held at the sequence's "
                        "value), see docs/methods/deeplift.md (default %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=128,
                        help="(region, reference) pairs per pass (default %(default)s)")
    add_device_argument(parser)
    parser.add_argument("--autocast", choices=sorted(AUTOCAST_DTYPES),
                        help="run the model in reduced precision (the delta check stays float32)")
    parser.add_argument("--strict", action=argparse.BooleanOptionalAction, default=True,
                        help="fail, writing nothing, when a region's contributions do not sum to the model's "
                        "output difference; --no-strict warns and writes them (default: strict)")
    parser.add_argument("--shard", type=_shard, metavar="I/K",
                        help="explain only shard I (0-based) of K contiguous shards of the regions")
    parser.add_argument("--export-dir", metavar="DIR",
                        help="also write <DIR>/<target>/{ohe.npz,shap.npz,scores.h5,regions.narrowPeak} for "
                        "tfmodisco-lite, Fi-NeMo and ChromBPNet-style tools")
    parser.set_defaults(func=run)


def _shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"expected I/K with 0 <= I < K, e.g. 0/4; got {text!r}")
    return int(match[1]), int(match[2])


def _target_columns(requested: list[str] | None, task_names: list[str]) -> tuple[list[int], list[str]]:
    """Output columns to explain and their names, from task names or indices."""
    if not requested:
        return list(range(len(task_names))), list(task_names)
    columns = []
    for target in requested:
        if target in task_names:
            columns.append(task_names.index(target))
        elif re.fullmatch(r"-?\d+", target) and -len(task_names) <= int(target) < len(task_names):
            columns.append(int(target) % len(task_names))
        else:
            raise ConfigError(f"--targets: {target!r} is neither a task of the model ({', '.join(task_names)}) "
                              f"nor an output index below {len(task_names)}")
    return columns, [task_names[column] for column in columns]


def _non_finite_message(model: str, regions: pd.DataFrame, rows: list[int]) -> str:
    named = [f"{row.name} ({row.chrom}:{row.start}-{row.end})" for row in regions.iloc[rows[:5]].itertuples()]
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return (f"{model}: the model's outputs or contributions are NaN or infinite for {len(rows)} of {len(regions)} "
            f"regions: {', '.join(named)}{more}; nothing was written")


def run(args: argparse.Namespace) -> None:
    import torch

    from genomatt.attribution import deep_lift_shap
    from genomatt.attribution.targets import head_targets
    from genomatt.contributions import write_contributions
    from genomatt.models.io import load, name_tasks
    from genomatt.store import file_sha256, read_array, read_regions, shard_record, shard_rows

    regions = read_regions(args.regions_h5)
    n_regions = len(regions)
    input_sha256 = file_sha256(args.regions_h5)
    rows = shard_rows(n_regions, *args.shard) if args.shard else slice(0, n_regions)
    regions = regions.iloc[rows].reset_index(drop=True)
    onehot = read_array(args.regions_h5, "onehot", rows).astype(np.float32, copy=False)
    loaded = load(args.model, args.weights, input_length=onehot.shape[2], device=args.device)
    if args.task_names:
        loaded = name_tasks(loaded, args.task_names, args.model)
    shapes = loaded.output_shapes
    if len(shapes) == 1 and math.prod(shapes[0][1:]) == 1:
        # (N, T) or (N, T, 1): output columns, explained from one forward pass per batch.
        columns, tasks = _target_columns(args.targets, loaded.task_names)
        targets = [columns]
    else:
        # Profile and count heads, or the tracks of one (N, T, L) profile: one explanation each.
        named = head_targets(loaded.output_shapes, args.targets, args.profile_target, loaded.task_names)
        columns, tasks, targets = None, [name for name, _ in named], [target for _, target in named]
    log.info("explaining %d regions of %d bp for %d target(s) against %d references each",
             len(regions), onehot.shape[2], len(tasks), args.references)
    hypothetical = np.zeros((len(regions), len(tasks), 4, onehot.shape[2]), dtype=np.float32)
    delta = np.zeros((len(regions), len(tasks)), dtype=np.float32)
    prediction = np.zeros((len(regions), len(tasks)), dtype=np.float32)
    if len(regions):
        progress = ProgressLog(len(regions) * len(targets), "attribute", "regions", log)
        results = []
        try:
            for index, target in enumerate(targets):
                results.append(deep_lift_shap(
                    loaded.model, onehot, n_shuffles=args.references, target=target, hypothetical=True,
                    batch_size=args.batch_size, device=args.device, random_state=args.seed, regions=regions,
                    rule=args.rule, autocast=getattr(torch, args.autocast) if args.autocast else None,
                    strict=args.strict, return_delta=True, progress=False if args.quiet else None,
                    on_block=lambda done, before=index * len(regions): progress.advance_to(before + done),
                ))
                progress.advance_to((index + 1) * len(regions))
        except NonFiniteError as error:
            raise NonFiniteError(_non_finite_message(args.model, regions, error.rows), error.rows) from None
        if columns is not None:
            hypothetical, delta, prediction = (tensor.numpy() for tensor in results[0])
        else:
            hypothetical, delta, prediction = (np.stack([part.numpy() for part in parts], axis=1)
                                               for parts in zip(*results))
    provenance = {
        "command": "attribute", "h5": str(Path(args.regions_h5).resolve()), "h5_sha256": input_sha256,
        "model": str(args.model),
        "weights": str(Path(args.weights).resolve()) if args.weights else None,
        "model_sha256": loaded.content_hash, "method": "deeplift_shap", "rule": args.rule,
        "references": "dinucleotide shuffles seeded by (seed, chrom, start, end)",
        "n_references": args.references, "seed": args.seed, "targets": tasks, "target_columns": columns,
        "target_kind": "output columns" if columns is not None else "heads or tracks",
        "profile_target": None if columns is not None else args.profile_target,
        "autocast": args.autocast, "max_delta": float(delta.max()) if delta.size else 0.0,
    }
    if args.shard:
        provenance["shard"] = shard_record(*args.shard, n_regions)
    write_contributions(args.out, regions, tasks, onehot, hypothetical, delta, prediction, provenance)
    log.info("wrote %s (largest summation-to-delta error %.2g)", args.out, provenance["max_delta"])
    if args.export_dir:
        export_interop(args.export_dir, tasks, onehot, hypothetical, regions, prediction)


def export_interop(folder: str | os.PathLike, tasks: list[str], onehot: np.ndarray, hypothetical: np.ndarray,
                   regions: pd.DataFrame, prediction: np.ndarray) -> None:
    """Write, per target, the files tfmodisco-lite, Fi-NeMo and ChromBPNet-style tools read.

    ``<folder>/<target>/ohe.npz`` and ``shap.npz`` hold ``arr_0`` (N, 4, L): the one-hot sequences and
    the hypothetical contributions (``modisco motifs -s ohe.npz -a shap.npz``); ``scores.h5`` holds
    ``raw/seq`` (one-hot), ``shap/seq`` (hypothetical) and ``projected_shap/seq`` (one-hot ×
    hypothetical), each (N, 4, L) float32; ``regions.narrowPeak`` the regions in the same order, summit
    at the window centre and signalValue the target's prediction
    (:func:`genomatt.tracks.write_regions_narrowpeak`), for Fi-NeMo's ``extract-regions-*``.
    """
    from genomatt.tracks import write_regions_narrowpeak

    for index, task in enumerate(tasks):
        target = Path(folder) / re.sub(r"[^A-Za-z0-9_.-]+", "_", task)
        scores = np.ascontiguousarray(hypothetical[:, index])
        _save_npz(target / "ohe.npz", onehot)
        _save_npz(target / "shap.npz", scores)
        with atomic_hdf5(target / "scores.h5") as handle:
            for group, array in (("raw", onehot), ("shap", scores), ("projected_shap", onehot * scores)):
                handle.create_dataset(f"{group}/seq", data=array.astype(np.float32, copy=False))
        write_regions_narrowpeak(regions, target / "regions.narrowPeak", prediction[:, index])
        log.info("wrote %s/{ohe.npz,shap.npz,scores.h5,regions.narrowPeak}", target)


def _save_npz(path: Path, array: np.ndarray) -> None:
    # A file object keeps numpy from appending ".npz" to the temporary name.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, array.astype(np.float32, copy=False))
