"""Fi-NeMo's own tools read genomatt's hits folder and exported regions as they are."""

import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
from bed_checks import assert_valid_bed
from synthetic import planted_motifs_h5, synthetic_contributions

from genomatt.cli.attribute import export_interop
from genomatt.motifs.cwm_motifs import read_cwm_motifs
from genomatt.motifs.finemo import MOTIF_DATA_COLUMNS, finemo_coefficient, finemo_motif_table
from genomatt.motifs.formats import reverse_complement_matrix
from genomatt.motifs.hits import EXTRA_FILE_COLUMNS, FINEMO_COLUMNS, call_hits_in_store, write_hits

TASK = "GATA1"


@pytest.fixture(scope="module")
def run(small_genome, tmp_path_factory):
    folder = tmp_path_factory.mktemp("finemo")
    contrib = synthetic_contributions(small_genome, folder / "contrib.h5")
    motifs = planted_motifs_h5(small_genome, folder / "motifs.h5")
    calls = call_hits_in_store(contrib, read_cwm_motifs(motifs), tasks=[TASK], device="cpu")
    paths = write_hits(calls, folder / "hits")
    return {"folder": folder, "contrib": contrib, "calls": calls, "paths": paths}


def finemo(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "finemo", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_finemo_load_hits_reads_hits_tsv_with_its_schema(run):
    from finemo.data_io import load_hits

    calls, paths = run["calls"], run["paths"]
    loaded = pd.DataFrame(load_hits(str(paths["tsv"])).to_dict(as_series=False))
    assert list(pd.read_csv(paths["tsv"], sep="\t", nrows=0).columns) == FINEMO_COLUMNS
    assert len(loaded) == len(calls.hits) > 0
    for column in ("start", "end", "start_untrimmed", "peak_id"):
        np.testing.assert_array_equal(loaded[column].to_numpy(np.int64), calls.hits[column].to_numpy(np.int64))
    np.testing.assert_allclose(loaded["hit_coefficient_global"], calls.hits["hit_coefficient_global"], rtol=1e-5)
    extra = pd.read_csv(paths["extra"], sep="\t")
    assert list(extra.columns) == EXTRA_FILE_COLUMNS and set(extra["task"]) == {TASK}
    pd.testing.assert_frame_equal(extra[["chr", "start", "motif_name", "peak_id"]],
                                  calls.hits[["chr", "start", "motif_name", "peak_id"]].reset_index(drop=True),
                                  check_dtype=False)


def test_finemo_collapse_hits_runs_on_our_output(run, tmp_path):
    hits = str(run["paths"]["tsv"])
    finemo("collapse-hits", "-i", hits, "-o", str(tmp_path / "collapsed.tsv"))
    collapsed = pd.read_csv(tmp_path / "collapsed.tsv", sep="\t")
    assert len(collapsed) == len(run["calls"].hits) and collapsed["is_primary"].sum() > 0


def test_finemo_report_reads_the_hits_folder_and_exported_regions(run, tmp_path):
    contrib = run["contrib"]
    with h5py.File(contrib, "r") as handle:
        onehot = handle["onehot"][()]
    export_interop(tmp_path / "export", contrib, [TASK])
    exported = tmp_path / "export" / TASK
    assert_valid_bed(exported / "regions.narrowPeak", narrowpeak=True)
    width = str(onehot.shape[2])
    finemo("extract-regions-modisco-fmt", "-s", str(exported / "ohe.npz"), "-a", str(exported / "shap.npz"),
           "-p", str(exported / "regions.narrowPeak"), "-w", width, "-o", str(tmp_path / "regions.npz"))
    with np.load(tmp_path / "regions.npz") as npz:
        np.testing.assert_array_equal(npz["sequences"], onehot.astype(np.int8))
    finemo("report", "-r", str(tmp_path / "regions.npz"), "-H", str(run["paths"]["tsv"].parent),
           "-o", str(tmp_path / "report"), "-W", width)
    assert (tmp_path / "report" / "report.html").stat().st_size > 1000
    occurrences = pd.read_csv(tmp_path / "report" / "motif_occurrences.tsv", sep="\t")
    ours = run["calls"].hits.groupby("motif_name").size()
    for name, count in ours.items():
        assert occurrences[name].sum() == count


def test_motif_data_describes_both_strands_of_every_motif():
    cwm = np.zeros((4, 6))
    cwm[0, 1:4] = [1.0, 2.0, 1.0]
    cwm[2, 5] = 0.1
    other = np.ones((4, 4))
    trims = pd.DataFrame({"motif_name": ["a", "a", "b"], "trim_start": [1, 1, 0], "trim_end": [4, 4, 4]})
    table, matrices = finemo_motif_table({"a": cwm, "b": other}, trims, 0.7)
    assert list(table.columns) == MOTIF_DATA_COLUMNS and list(table["strand"]) == ["+", "-", "+", "-"]
    assert list(table["motif_id"]) == [0, 1, 2, 3] and matrices.shape == (4, 4, 6)
    assert tuple(table.loc[1, ["motif_start", "motif_end"]]) == (2, 5)
    np.testing.assert_allclose(matrices[1], reverse_complement_matrix(cwm) / np.linalg.norm(cwm), rtol=1e-6)
    assert (matrices[2][:, 4:] == 0).all() and table.loc[2, "motif_scale"] == pytest.approx(4.0)


def test_coefficient_is_finemo_lasso_solution_for_an_isolated_hit():
    # Fi-NeMo: minimise ½‖y − c·x‖² + λ·c over c >= 0, with y = contrib / g and x = s · m / r on the window
    # (m the unit-norm trimmed CWM times the sequence, r the full norm over the trimmed norm: Fi-NeMo's CWM
    # has unit norm over its full width, s = (E / g² + eps) ** -0.5); it reports c · g².
    rng = np.random.default_rng(4)
    m = rng.normal(size=12)
    m /= np.linalg.norm(m)
    amplitude, ratio, scale, eps, penalty = 3.0, 1.2, 0.4, 1.0, 0.7
    contrib = amplitude * m + rng.normal(0, 0.3, 12)
    energy = (contrib**2).sum()
    least_squares = (contrib @ m)  # amplitude fitted to the unit-norm trimmed CWM
    s = (energy / scale**2 + eps) ** -0.5
    x = s * m / ratio
    y = contrib / scale
    lasso = max(x @ y - penalty, 0.0) / (x @ x)
    ours = finemo_coefficient(np.array([least_squares]), ratio, np.array([energy]), np.array([scale]), eps,
                              penalty)[0]
    assert ours == pytest.approx(lasso * scale**2, rel=1e-9) and ours > 0


def test_isolated_hits_are_finemo_lasso_solutions_at_the_motif_data_lambda(run):
    # Fi-NeMo fits y = contrib / g over the window of its trimmed CWM (unit norm over the whole width, so the
    # trimmed CWM x0 has norm 1 / r), scaled by s = (E / g² + eps) ** -0.5 with E the window's energy; for a
    # hit no other hit overlaps its lasso gives c = max(s·x0·y − lambda, 0) / (s²·x0·x0), reported as c·g².
    calls, paths = run["calls"], run["paths"]
    motif_data = pd.read_csv(paths["motif_data"], sep="\t")
    cwms = np.load(paths["motif_cwms"])
    with h5py.File(run["contrib"], "r") as handle:
        tasks = [str(task) for task in handle.attrs["tasks"]]
        contrib = handle["contrib"][:, tasks.index(TASK)]
        starts = handle["regions/start"][()]
    hits = calls.hits
    qc = calls.qc.set_index("peak_id")
    settings = calls.settings
    trims = calls.motifs.drop_duplicates("motif_name").set_index("motif_name")
    checked = called = 0
    for _, hit in hits.iterrows():
        same_region = hits[(hits["peak_id"] == hit["peak_id"]) & (hits.index != hit.name)]
        if ((same_region["start"] < hit["end"]) & (same_region["end"] > hit["start"])).any():
            continue
        row = motif_data[(motif_data["motif_name"] == hit["motif_name"]) & (motif_data["strand"] == hit["strand"])]
        motif_id = int(row["motif_id"].iloc[0])
        width = int(hit["end_untrimmed"] - hit["start_untrimmed"])
        trim_start, trim_end = int(trims.loc[hit["motif_name"], "trim_start"]), int(trims.loc[hit["motif_name"],
                                                                                             "trim_end"])
        core = (trim_start, trim_end) if hit["strand"] == "+" else (width - trim_end, width - trim_start)
        offset = int(hit["start_untrimmed"] - starts[hit["peak_id"]])
        if offset < 0 or offset + width > contrib.shape[-1]:
            continue
        # Our hits span motif_start..motif_end of the CWM, as Fi-NeMo's span its trimmed columns.
        assert hit["start"] - hit["start_untrimmed"] == row["motif_start"].iloc[0]
        x0 = cwms[motif_id][:, core[0] : core[1]].astype(np.float64)
        y_raw = contrib[hit["peak_id"], :, offset + core[0] : offset + core[1]].astype(np.float64)
        g = qc.loc[hit["peak_id"], "global_scale"]
        energy = (y_raw**2).sum()
        s = min((energy / g**2 + settings["energy_floor"]) ** -0.5, 10.0)
        x, y = s * x0, y_raw / g
        lasso = max((x * y).sum() - row["lambda"].iloc[0], 0.0) / (x * x).sum()
        assert hit["hit_coefficient_global"] == pytest.approx(lasso * g**2, rel=1e-4, abs=1e-9)
        called += lasso > 0
        checked += 1
    assert checked >= 10 and called > 0.9 * checked  # Fi-NeMo at this lambda calls (almost) every hit
