"""``genomatt attribute``: DeepLIFT/DeepSHAP contributions of a model for every region of a regions store."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genomatt.atomic import atomic_hdf5, atomic_path
from genomatt.attribution.choices import MAX_RULES, PROFILE_CONVENTIONS, RULES
from genomatt.cli.arguments import add_device_argument, positive_int, seed
from genomatt.errors import NonFiniteError, StoreError
from genomatt.progress import ProgressLog

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = ("bfloat16", "float16")
"""Names of the torch dtypes ``--autocast`` runs the model in."""

BLOCK_BYTES = 32 << 20
"""Bytes of float32 hypothetical contributions per block of regions that is explained and written before
the next: the command's memory grows with this (a few times it), not with the number of regions."""


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
                        "(profile and count heads) target names (profile, counts; profile_<task>, counts_<task> "
                        "once its tasks are named) or indices; for a "
                        "model with one (N, T, L) profile output, track names or indices "
                        "(default: every task, head or track)")
    parser.add_argument("--task-names", nargs="+", metavar="NAME",
                        help="names of the model's tasks, in order, for a model that names none: its output "
                        "columns, a profile model's tasks (targets profile_<task>, counts_<task>) or a track "
                        "model's tracks (refused when the model names its tasks otherwise)")
    parser.add_argument("--references", type=positive_int, default=20,
                        help="dinucleotide shuffles per region (default %(default)s)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the references (default %(default)s)")
    parser.add_argument("--rule", choices=RULES, default="rescale",
                        help="DeepLIFT rule for elementwise nonlinearities; genomics_default is Rescale after "
                        "convolutions and RevealCancel after dense layers (default %(default)s)")
    parser.add_argument("--max-rule", choices=MAX_RULES, default=MAX_RULES[0],
                        help="rule for a max over a whole axis (a global max pool): cross_max credits the argmax; "
                        "shapley gives each position its Shapley value in the max, so two sites that each reach it "
                        "share the credit (default %(default)s)")
    parser.add_argument("--hit-max-rule", choices=MAX_RULES,
                        help="also write /hit_contrib, the contributions under this rule for a max over a whole "
                        "axis, which 'genomatt hits' reads: for a model with a global max pool, shapley credits "
                        "a second site that cross_max leaves out (docs/methods.md); nothing more is written for "
                        "a model without such a max or when it equals --max-rule (default: none)")
    parser.add_argument("--profile-target", choices=PROFILE_CONVENTIONS, default=PROFILE_CONVENTIONS[0],
                        help="how a profile output is reduced to the explained value: bpnet (bpnet-lite's "
                        "ProfileWrapper) or held (softmax weights held at the sequence's "
                        "value), see docs/methods/deeplift.md (default %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=128,
                        help="(region, reference) pairs per pass (default %(default)s)")
    add_device_argument(parser)
    parser.add_argument("--autocast", choices=sorted(AUTOCAST_DTYPES),
                        help="run the model in reduced precision (the delta check stays float32; contributions "
                        "more than 20%% from float32's on the run's first 16 regions, explained in float32 too, are "
                        "refused like a failed delta check)")
    parser.add_argument("--strict", action=argparse.BooleanOptionalAction, default=True,
                        help="fail, writing nothing, when a region's contributions do not sum to the model's "
                        "output difference; --no-strict warns and writes them (default: strict)")
    parser.add_argument("--shard", type=_shard, metavar="I/K",
                        help="explain only shard I (0-based) of K contiguous shards of the regions, cut between "
                             "batches (so that the gathered shards equal one run bit for bit)")
    parser.add_argument("--export-dir", metavar="DIR",
                        help="also write <DIR>/<target>/{ohe.npz,shap.npz,scores.h5,regions.narrowPeak} for "
                        "tfmodisco-lite, Fi-NeMo and ChromBPNet-style tools")
    parser.set_defaults(func=run)


def _shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"expected I/K with 0 <= I < K, e.g. 0/4; got {text!r}")
    return int(match[1]), int(match[2])


def _non_finite_message(model: str, regions: pd.DataFrame, rows: list[int], explained: int) -> str:
    named = [f"{row.name} ({row.chrom}:{row.start}-{row.end})" for row in regions.iloc[rows[:5]].itertuples()]
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    among = f"{len(regions)}" if explained == len(regions) else f"the first {explained} of {len(regions)}"
    return (f"{model}: the model's outputs or contributions are NaN or infinite for {len(rows)} of {among} "
            f"regions: {', '.join(named)}{more}; nothing was written")


def _onehot_length(path: str, n_regions: int) -> int:
    """Region length L of the ``(N, 4, L)`` one-hot of a regions store (read later, a block of rows at a time)."""
    from genomatt.store import list_arrays, read_array

    shape = list_arrays(path).get("onehot")
    if shape is None:
        read_array(path, "onehot")  # raises the store's error, which names the arrays the file has
    if len(shape) != 3 or shape[0] != n_regions or shape[1] != 4:
        raise StoreError(f"{path}: '/onehot' has shape {shape}, expected (N, 4, L) with N = {n_regions} regions")
    return int(shape[2])


def block_regions(n_tasks: int, length: int, batch_regions: int) -> int:
    """Regions explained and written per block: about :data:`BLOCK_BYTES` of hypothetical contributions.

    Parameters
    ----------
    n_tasks, length
        Tasks T and region length L of the ``(b, T, 4, L)`` float32 block.
    batch_regions
        Regions per batch of :func:`~genomatt.attribution.deep_lift_shap`
        (:func:`~genomatt.attribution.deeplift.sequences_per_batch`); a block is a whole number of
        batches, so explaining block by block gives the numbers of one call over the shard, bit for bit.

    Returns
    -------
    int
        At least one batch of regions.
    """
    rows = BLOCK_BYTES // max(1, n_tasks * 4 * length * np.dtype(np.float32).itemsize)
    return max(batch_regions, rows // batch_regions * batch_regions)


def run(args: argparse.Namespace) -> None:
    import torch
    from tqdm.auto import tqdm

    from genomatt.attribution import deep_lift_shap
    from genomatt.attribution.deeplift import sequences_per_batch
    from genomatt.atomic import safe_file_names
    from genomatt.attribution.targets import model_targets
    from genomatt.contributions import contribution_block, writing_contributions
    from genomatt.models.io import load
    from genomatt.store import content_sha256, read_array, read_regions, shard_record, shard_rows
    from genomatt.task_regions import check_task_names

    regions = read_regions(args.regions_h5)
    n_regions = len(regions)
    length = _onehot_length(args.regions_h5, n_regions)
    input_sha256 = content_sha256(args.regions_h5)
    # Shards cut between batches, so that each shard's batches are those of one run over every region.
    batch_regions = sequences_per_batch(args.batch_size, args.references)
    rows = shard_rows(n_regions, *args.shard, batch_regions) if args.shard else slice(0, n_regions)
    regions = regions.iloc[rows].reset_index(drop=True)
    loaded = load(args.model, args.weights, input_length=length, device=args.device)
    # Output columns of (N, T) or (N, T, 1), explained from one forward pass per batch; or profile and count
    # heads, or the tracks of one (N, T, L) profile, one explanation each.
    loaded, columns, tasks, targets = model_targets(loaded, args.model, args.task_names, args.targets,
                                                    args.profile_target)
    # Every later file named after a task (export folders, modisco files, bigWigs) must be its own.
    check_task_names(tasks, f"{args.model} (--targets, --task-names or the model's task names)")
    safe_file_names(tasks)
    log.info("explaining %d regions of %d bp for %d target(s) against %d references each",
             len(regions), length, len(tasks), args.references)
    provenance = {
        "command": "attribute", "h5": str(Path(args.regions_h5).resolve()), "h5_sha256": input_sha256,
        "model": str(Path(args.model).resolve()) if Path(args.model).is_file() else str(args.model),
        "weights": str(Path(args.weights).resolve()) if args.weights else None,
        "model_sha256": loaded.content_hash, "method": "deeplift_shap", "rule": args.rule,
        "max_rule": args.max_rule,
        "references": "dinucleotide shuffles seeded by (seed, chrom, start, end)",
        "n_references": args.references, "seed": args.seed, "targets": tasks, "target_columns": columns,
        "target_kind": "output columns" if columns is not None else "heads or tracks",
        "profile_target": None if columns is not None else args.profile_target,
        "autocast": args.autocast,
    }
    provenance.update(_rules_taken(args, loaded.model, length))
    if args.shard:
        provenance["shard"] = shard_record(*args.shard, n_regions, batch_regions)
    explain = functools.partial(
        deep_lift_shap, loaded.model, n_shuffles=args.references, hypothetical=True, batch_size=args.batch_size,
        device=args.device, random_state=args.seed, rule=args.rule, max_rule=args.max_rule,
        autocast=getattr(torch, args.autocast) if args.autocast else None, strict=args.strict, return_delta=True,
        progress=False)
    hit_rule = provenance["hit_max_rule"]
    explainers = [explain] + ([functools.partial(explain, max_rule=hit_rule)] if hit_rule else [])
    per_region = len(targets) * len(explainers)
    block = block_regions(len(tasks) * len(explainers), length, batch_regions)
    # With a second max rule each region is explained twice: once per rule.
    unit = "regions" if len(explainers) == 1 else "region explanations"
    progress = ProgressLog(len(regions) * per_region, "attribute", unit, log)
    max_delta = 0.0
    with writing_contributions(args.out, regions, tasks, length, provenance, hit_contrib=bool(hit_rule)) as writer, \
            tqdm(total=len(regions) * per_region * args.references, unit="pair", desc="DeepLIFT",
                 disable=True if args.quiet else None) as bar:

        def advance(done: int) -> None:
            """Record ``done`` (region, target) explanations of the shard in the log and the bar."""
            bar.update((min(done, progress.total) - progress.done) * args.references)
            progress.advance_to(done)

        for start in range(0, len(regions), block):
            stop = min(start + block, len(regions))
            onehot = read_array(args.regions_h5, "onehot", slice(rows.start + start, rows.start + stop))
            onehot = onehot.astype(np.float32, copy=False)
            results = []
            for index, explainer in enumerate(explainers):
                before = start * per_region + index * (stop - start) * len(targets)
                if start:
                    # Under autocast, the first block's first sequences are compared with float32, once per run.
                    explainer = functools.partial(explainer, autocast_check=0)
                try:
                    results.append(_explain_block(explainer, onehot, regions.iloc[start:stop], targets,
                                                  columns is not None, lambda done, before=before: advance(before + done)))
                except NonFiniteError as error:
                    failing = [start + row for row in error.rows]
                    raise NonFiniteError(_non_finite_message(args.model, regions, failing, stop), failing) from None
            hypothetical, delta, prediction = results[0]
            hit_hypothetical = None
            if hit_rule:
                hit_hypothetical = results[1][0]
                # The error recorded for a region is the larger of its two sets of contributions.
                delta = np.maximum(delta, results[1][1])
            writer.write(contribution_block(onehot, hypothetical, delta, prediction, hit_hypothetical))
            max_delta = max(max_delta, float(delta.max()))
            advance(stop * per_region)
        writer.provenance["max_delta"] = max_delta
    log.info("wrote %s (largest summation-to-delta error %.2g)", args.out, max_delta)
    if args.export_dir:
        export_interop(args.export_dir, args.out)


def _rules_taken(args: argparse.Namespace, model, length: int) -> dict:
    """The provenance of the rules the model's operations take: ``hit_max_rule``, and ``rule_taken`` (the
    nonlinearities under each rule) where ``--rule`` asks for RevealCancel; each choice that changes nothing
    logged, and nonlinearities that RevealCancel cannot take named."""
    from genomatt.attribution.deeplift import probe_rules

    record: dict = {"hit_max_rule": None}
    if args.rule == "rescale" and args.hit_max_rule in (None, args.max_rule):
        return record
    probe = probe_rules(model, length, args.rule, args.device)
    if args.hit_max_rule not in (None, args.max_rule):
        if probe.whole_axis_max:
            log.info("the model takes a max over a whole axis: /hit_contrib holds the contributions under "
                     "--hit-max-rule %s, for hits (each region explained twice)", args.hit_max_rule)
            record["hit_max_rule"] = args.hit_max_rule
        else:
            log.info("the model takes no max over a whole axis, so --hit-max-rule %s gives the contributions of "
                     "--max-rule %s: no /hit_contrib is written and hits read /contrib", args.hit_max_rule,
                     args.max_rule)
    if args.rule != "rescale":
        revealed, rescaled = probe.sites("revealcancel"), probe.sites("rescale")
        record["rule_taken"] = {"revealcancel": len(revealed), "rescale": len(rescaled)}
        where = "; ".join(rescaled[:3]) + (f"; and {len(rescaled) - 3} more" if len(rescaled) > 3 else "")
        if not revealed:
            log.warning("--rule %s: none of the model's %d nonlinearity calls takes RevealCancel (%s), so the "
                        "contributions are those of --rule rescale; they take Rescale at %s", args.rule,
                        len(rescaled), _REVEAL_CANCEL_APPLIES[args.rule], where or "no nonlinearity")
        elif rescaled and args.rule == "revealcancel":
            log.warning("--rule revealcancel: %d of the model's %d nonlinearity calls take Rescale, since their "
                        "input is not a convolution's or linear layer's output: %s", len(rescaled),
                        len(rescaled) + len(revealed), where)
        else:
            log.info("--rule %s: %d nonlinearity calls take RevealCancel and %d Rescale", args.rule, len(revealed),
                     len(rescaled))
    return record


_REVEAL_CANCEL_APPLIES = {
    "revealcancel": "it applies where a nonlinearity's input is a convolution's or linear layer's output",
    "genomics_default": "it applies where a nonlinearity's input is a linear (dense) layer's output",
}


def _explain_block(explain: Callable, onehot: np.ndarray, regions: pd.DataFrame, targets: list,
                   output_columns: bool, on_done: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hypothetical contributions ``(b, T, 4, L)``, deltas and predictions ``(b, T)`` of one block of regions.

    ``targets`` holds one list of output columns (``output_columns``: explained from one pass per batch) or one
    target per head or track (one explanation each, stacked on the target axis); ``on_done`` is told the
    (region, target) explanations of the block done so far.
    """
    results = []
    for index, target in enumerate(targets):
        results.append(explain(onehot, target=target, regions=regions,
                               on_block=lambda done, before=index * len(onehot): on_done(before + done)))
    if output_columns:
        return tuple(tensor.numpy() for tensor in results[0])
    return tuple(np.stack([part.numpy() for part in parts], axis=1) for parts in zip(*results))


def export_interop(folder: str | os.PathLike, path: str | os.PathLike, tasks: list[str] | None = None) -> None:
    """Write, per target of a ``contrib.h5``, the files tfmodisco-lite, Fi-NeMo and ChromBPNet-style tools read.

    ``<folder>/<target>/ohe.npz`` and ``shap.npz`` hold ``arr_0`` (N, 4, L): the one-hot sequences and
    the hypothetical contributions (``modisco motifs -s ohe.npz -a shap.npz``); ``scores.h5`` holds
    ``raw/seq`` (one-hot), ``shap/seq`` (hypothetical) and ``projected_shap/seq`` (one-hot ×
    hypothetical), each (N, 4, L) float32; ``regions.narrowPeak`` the regions in the same order, summit
    at the window centre and signalValue the target's prediction
    (:func:`genomatt.tracks.write_regions_narrowpeak`), for Fi-NeMo's ``extract-regions-*``. The arrays
    are copied a block of rows at a time, so memory does not grow with N.

    Parameters
    ----------
    folder
        Folder of the per-target folders.
    path
        The contribution file (:func:`genomatt.contributions.read_contributions`).
    tasks
        The targets to export (default: every task of the file).
    """
    from genomatt.contributions import read_contributions
    from genomatt.store import read_array
    from genomatt.atomic import safe_file_names
    from genomatt.tracks import write_regions_narrowpeak

    contributions = read_contributions(path)
    contributions.check_tasks(tasks)
    n, length = len(contributions.regions), contributions.length
    prediction = read_array(path, "prediction")
    block = block_regions(len(contributions.tasks), length, 1)
    for task, safe in safe_file_names(tasks or contributions.tasks).items():
        index = contributions.tasks.index(task)
        target = Path(folder) / safe
        with _npz_rows(target / "ohe.npz", (n, 4, length)) as ohe, \
                _npz_rows(target / "shap.npz", (n, 4, length)) as shap, \
                atomic_hdf5(target / "scores.h5") as handle:
            datasets = {group: handle.create_dataset(f"{group}/seq", shape=(n, 4, length), dtype=np.float32)
                        for group in ("raw", "shap", "projected_shap")}
            for start in range(0, n, block):
                rows = slice(start, min(start + block, n))
                onehot = read_array(path, "onehot", rows).astype(np.float32, copy=False)
                scores = read_array(path, "hypothetical", rows)[:, index].astype(np.float32, copy=False)
                ohe(onehot)
                shap(scores)
                for group, array in (("raw", onehot), ("shap", scores), ("projected_shap", onehot * scores)):
                    datasets[group][rows] = array
        write_regions_narrowpeak(contributions.regions, target / "regions.narrowPeak", prediction[:, index])
        log.info("wrote %s/{ohe.npz,shap.npz,scores.h5,regions.narrowPeak}", target)


@contextlib.contextmanager
def _npz_rows(path: Path, shape: tuple[int, ...]) -> Iterator[Callable[[np.ndarray], None]]:
    """Write ``path``, an ``.npz`` holding one float32 array ``arr_0`` of ``shape`` as ``numpy.savez`` does.

    Yields a function that appends the next rows; the file appears only when the block completes.
    """
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": shape}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive, \
            archive.open("arr_0.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(member, header)
        yield lambda rows: member.write(np.ascontiguousarray(rows, dtype=np.float32).data)
