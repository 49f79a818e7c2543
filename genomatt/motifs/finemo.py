"""Fi-NeMo's companion files of a hits folder, so ``finemo report`` and ``collapse-hits`` read ours.

Fi-NeMo's ``call-hits`` writes, beside ``hits.tsv``: ``motif_data.tsv`` (one row per motif and strand:
``motif_id, motif_name, motif_name_orig, strand, motif_start, motif_end, motif_scale, lambda``),
``motif_cwms.npy`` (``(M, 4, W)`` unit-norm CWMs, row ``motif_id``) and ``parameters.json``. Fi-NeMo's
motifs share one width; ours may differ, so each CWM is zero-padded on the right to the widest, which
keeps every hit's ``start_untrimmed`` at the CWM's first column on either strand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from genomatt.atomic import atomic_path
from genomatt.motifs.formats import reverse_complement_matrix

if TYPE_CHECKING:
    from genomatt.motifs.hits import HitCalls

MOTIF_DATA_COLUMNS = ["motif_id", "motif_name", "motif_name_orig", "strand", "motif_start", "motif_end",
                      "motif_scale", "lambda"]


def finemo_motif_table(cwms: dict[str, np.ndarray], trims: pd.DataFrame, min_similarity: float
                       ) -> tuple[pd.DataFrame, np.ndarray]:
    """Fi-NeMo's ``motif_data`` table and CWM array of the motifs scanned.

    Parameters
    ----------
    cwms
        Motif name → ``(4, W)`` CWM, untrimmed.
    trims
        ``motif_name, trim_start, trim_end`` of each motif scanned (repeated rows, e.g. one per task, are
        read once); motifs absent from it are left out.
    min_similarity
        The similarity threshold, written as each motif's ``lambda`` (Fi-NeMo's post-filter on
        ``hit_similarity`` uses it the same way).

    Returns
    -------
    table, array
        One row per motif and strand (forward first), and ``(2M, 4, Wmax)`` float32 unit-norm CWMs in
        row order, reverse complements for ``-`` rows, zero-padded on the right.
    """
    bounds = trims.drop_duplicates("motif_name").set_index("motif_name")
    names = [name for name in cwms if name in bounds.index]
    width = max((cwms[name].shape[1] for name in names), default=0)
    rows, matrices = [], []
    for name in names:
        cwm = np.asarray(cwms[name], dtype=np.float64)
        norm = float(np.sqrt((cwm**2).sum()))
        start, end = int(bounds.loc[name, "trim_start"]), int(bounds.loc[name, "trim_end"])
        full = cwm.shape[1]
        for strand, matrix, span in (("+", cwm, (start, end)),
                                     ("-", reverse_complement_matrix(cwm), (full - end, full - start))):
            padded = np.zeros((4, width), dtype=np.float32)
            padded[:, :full] = matrix / norm
            matrices.append(padded)
            rows.append({"motif_id": len(rows), "motif_name": name, "motif_name_orig": name, "strand": strand,
                         "motif_start": span[0], "motif_end": span[1], "motif_scale": norm,
                         "lambda": min_similarity})
    table = pd.DataFrame(rows, columns=MOTIF_DATA_COLUMNS)
    return table, np.stack(matrices) if matrices else np.zeros((0, 4, 0), dtype=np.float32)


def write_finemo_motifs(calls: HitCalls, out_dir: str | Path) -> dict[str, Path]:
    """Write ``motif_data.tsv``, ``motif_cwms.npy`` and ``parameters.json`` of a hit-calling run.

    Parameters
    ----------
    calls
        The run (its CWMs, trim bounds, per-region QC and settings).
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
    min_similarity = float(calls.settings.get("min_similarity", np.nan))
    table, matrices = finemo_motif_table(calls.cwms, calls.motifs, min_similarity)
    with atomic_path(paths["motif_data"]) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    # A file object keeps numpy from appending ".npy" to the temporary name.
    with atomic_path(paths["motif_cwms"]) as tmp, open(tmp, "wb") as handle:
        np.save(handle, matrices)
    qc = calls.qc
    parameters = {
        "cwm_trim_threshold_default": calls.settings.get("trim_threshold"),
        "lambda_default": min_similarity,
        "region_width": int((qc["end"] - qc["start"]).iloc[0]) if len(qc) else None,
        "num_regions": int(qc["peak_id"].nunique()) if len(qc) else 0,
        "untrimmed_motif_width": int(matrices.shape[2]),
        "num_motifs": int(matrices.shape[0]),
        "genomatt_settings": calls.settings,
    }
    with atomic_path(paths["parameters"]) as tmp:
        tmp.write_text(json.dumps(parameters, indent=2, default=str))
    return paths
