"""Fi-NeMo compatibility: its hit coefficient scale and the companion files of a hits folder.

:func:`finemo_coefficient` puts our hit amplitudes on the scale of Fi-NeMo's ``hit_coefficient_global``.
:func:`write_finemo_motifs` writes the files that make a hits folder read as Fi-NeMo's, so ``finemo report``
and ``collapse-hits`` read ours.

Fi-NeMo's ``call-hits`` writes, beside ``hits.tsv``: ``motif_data.tsv`` (one row per motif and strand:
``motif_id, motif_name, motif_name_orig, strand, motif_start, motif_end, motif_scale, lambda``),
``motif_cwms.npy`` (``(M, 4, W)`` unit-norm CWMs, row ``motif_id``) and ``parameters.json``. Fi-NeMo's
motifs share one width; ours may differ, so each CWM is zero-padded on the right to the widest, which
keeps every hit's ``start_untrimmed`` at the CWM's first column on either strand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from genomatt.atomic import atomic_path
from genomatt.motifs.formats import reverse_complement_matrix
from genomatt.motifs.hit_calling import motif_span
from genomatt.motifs.hit_parameters import HitParameters

if TYPE_CHECKING:
    from genomatt.motifs.hits import HitCalls

MOTIF_DATA_COLUMNS = ["motif_id", "motif_name", "motif_name_orig", "strand", "motif_start", "motif_end",
                      "motif_scale", "lambda"]


def finemo_coefficient(amplitude: np.ndarray, norm_ratio: np.ndarray, window_energy: np.ndarray,
                       global_scale: np.ndarray, energy_floor: float, penalty: float | np.ndarray) -> np.ndarray:
    """Hit coefficients on Fi-NeMo's scale (its ``hit_coefficient_global``) from least-squares amplitudes.

    Fi-NeMo fits ``contrib / g ≈ Σ c · s · cwm`` by lasso (penalty λ on ``c``), with the CWM scaled to
    unit norm over its full width then trimmed, ``g`` the region's RMS contribution per position and
    ``s = (E / g² + eps) ** -0.5`` (at most 10) from the energy ``E`` of the trimmed CWM's window, and
    reports ``c · g²``. For a hit that no other hit overlaps, with ``a`` the amplitude of the unit-norm
    trimmed CWM in contribution units, ``r`` the full CWM's norm over the trimmed one's (Fi-NeMo's trimmed
    CWM has norm ``1 / r``) and ``E' = E + eps · g²``, the lasso's ``c · g²`` is
    ``a · r · sqrt(E') · max(q − λ · r, 0) / q`` with ``q = a / sqrt(E')``: 0 where Fi-NeMo at λ would
    not call the hit.

    Parameters
    ----------
    amplitude
        ``(H,)`` least-squares coefficients of the unit-norm trimmed CWM (contribution units).
    norm_ratio
        ``(H,)`` L2 norm of the motif's full CWM over that of its trimmed CWM (>= 1).
    window_energy
        ``(H,)`` sum of squared contributions over each hit's window of the trimmed CWM (its core).
    global_scale
        ``(H,)`` RMS contribution per position of each hit's region.
    energy_floor
        Fi-NeMo's ``eps``.
    penalty
        Fi-NeMo's λ on its similarity scale (the motif's ``lambda`` in ``motif_data.tsv``): a float, or
        ``(H,)`` one per hit.

    Returns
    -------
    numpy.ndarray
        ``(H,)`` float64, in squared contribution units, >= 0; divide by ``global_scale**2`` for
        Fi-NeMo's ``hit_coefficient``.
    """
    scale_sq = np.asarray(global_scale, dtype=float) ** 2
    energy = np.maximum(np.asarray(window_energy, dtype=float) + energy_floor * scale_sq, 0.01 * scale_sq)
    amplitude = np.asarray(amplitude, dtype=float)
    similarity = np.divide(amplitude, np.sqrt(energy), out=np.zeros_like(amplitude), where=energy > 0)
    shrinkage = np.divide(np.maximum(similarity - penalty * norm_ratio, 0.0), similarity,
                          out=np.zeros_like(similarity), where=similarity > 0)
    return amplitude * norm_ratio * np.sqrt(energy) * shrinkage


def modisco_pattern(name: str, tasks: list[str]) -> str:
    """The tfmodisco-lite pattern of a motif discovered in one task, as Fi-NeMo names its motifs: motif
    ``<task>.pos.<i>`` is ``pos_patterns.pattern_<i>`` of ``modisco/<task>.h5``; any other motif keeps
    its name."""
    match = re.fullmatch(rf"{re.escape(tasks[0])}\.(pos|neg)\.(\d+)", name) if len(tasks) == 1 else None
    return f"{match[1]}_patterns.pattern_{match[2]}" if match else name


def finemo_motif_table(cwms: dict[str, np.ndarray], trims: pd.DataFrame, min_similarity: float
                       ) -> tuple[pd.DataFrame, np.ndarray]:
    """Fi-NeMo's ``motif_data`` table and CWM array of the motifs scanned.

    Parameters
    ----------
    cwms
        Motif name → ``(4, W)`` CWM, untrimmed.
    trims
        ``motif_name, trim_start, trim_end`` (and ``task``) of each motif scanned (repeated rows, e.g. one
        per task, are read once); motifs absent from it are left out. A motif discovered in one task is
        ``motif_name_orig`` its tfmodisco-lite pattern (:func:`modisco_pattern`), as Fi-NeMo's report
        matches the seqlets of ``modisco/<task>.h5`` to it.
    min_similarity
        The similarity threshold of the hit caller (on the cosine with the unit-norm trimmed CWM).

    Returns
    -------
    table, array
        One row per motif and strand (forward first), and ``(2M, 4, Wmax)`` float32 unit-norm CWMs in
        row order, reverse complements for ``-`` rows, zero-padded on the right. ``motif_start`` and
        ``motif_end`` are the columns a hit spans on that strand (:func:`genomatt.motifs.hit_calling.motif_span`),
        so a hit's ``start - start_untrimmed`` is its motif's ``motif_start`` (as in Fi-NeMo's files) unless
        the region's edge clips it; ``lambda`` is ``min_similarity / r`` (``r`` the full CWM's norm over the
        trimmed one's): Fi-NeMo's CWM has unit norm over its whole width, so this is the same threshold on its
        similarity scale.
    """
    tasks = trims.groupby("motif_name")["task"].unique() if "task" in trims.columns else {}
    bounds = trims.drop_duplicates("motif_name").set_index("motif_name")
    names = [name for name in cwms if name in bounds.index]
    width = max((cwms[name].shape[1] for name in names), default=0)
    rows, matrices = [], []
    for name in names:
        cwm = np.asarray(cwms[name], dtype=np.float64)
        norm = float(np.sqrt((cwm**2).sum()))
        trim = int(bounds.loc[name, "trim_start"]), int(bounds.loc[name, "trim_end"])
        start, end = motif_span(cwm, trim)
        norm_ratio = norm / float(np.sqrt((cwm[:, trim[0] : trim[1]] ** 2).sum()))
        full = cwm.shape[1]
        for strand, matrix, span in (("+", cwm, (start, end)),
                                     ("-", reverse_complement_matrix(cwm), (full - end, full - start))):
            padded = np.zeros((4, width), dtype=np.float32)
            padded[:, :full] = matrix / norm
            matrices.append(padded)
            rows.append({"motif_id": len(rows), "motif_name": name,
                         "motif_name_orig": modisco_pattern(name, list(tasks.get(name, []))), "strand": strand,
                         "motif_start": span[0], "motif_end": span[1], "motif_scale": norm,
                         "lambda": min_similarity / norm_ratio})
    table = pd.DataFrame(rows, columns=MOTIF_DATA_COLUMNS)
    return table, np.stack(matrices) if matrices else np.zeros((0, 4, 0), dtype=np.float32)


def write_finemo_motifs(calls: HitCalls, out_dir: str | Path) -> dict[str, Path]:
    """Write ``motif_data.tsv``, ``motif_cwms.npy`` and ``parameters.json`` of a hit-calling run.

    Parameters
    ----------
    calls
        The run (its CWMs, trim bounds, per-region QC and settings, those of a :class:`HitParameters`).
    out_dir
        The hits folder.

    Returns
    -------
    dict
        ``{"motif_data", "motif_cwms", "parameters"}`` → written path.
    """
    out = Path(out_dir)
    paths = {"motif_data": out / "motif_data.tsv", "motif_cwms": out / "motif_cwms.npy",
             "parameters": out / "parameters.json"}
    parameters = HitParameters(**calls.settings)
    min_similarity = float(parameters.min_similarity)
    table, matrices = finemo_motif_table(calls.cwms, calls.motifs, min_similarity)
    with atomic_path(paths["motif_data"]) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    # A file object keeps numpy from appending ".npy" to the temporary name.
    with atomic_path(paths["motif_cwms"]) as tmp, open(tmp, "wb") as handle:
        np.save(handle, matrices)
    qc = calls.qc
    record = {
        "cwm_trim_threshold_default": parameters.trim_threshold,
        "lambda_default": min_similarity,
        "region_width": int((qc["end"] - qc["start"]).iloc[0]) if len(qc) else None,
        "num_regions": int(qc["peak_id"].nunique()) if len(qc) else 0,
        "untrimmed_motif_width": int(matrices.shape[2]),
        "num_motifs": int(matrices.shape[0]),
        "genomatt_settings": parameters.settings(),
    }
    with atomic_path(paths["parameters"]) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str))
    return paths
