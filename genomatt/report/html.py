"""The HTML report: one self-contained file (images embedded as base64) that opens offline.

Sections: run summary (inputs, model and its test metrics, attribution settings, summation-to-delta
error distribution), the settings and thresholds of motif discovery and hit calling, the motif table
sorted by seqlet count (logos, best known-motif matches linked to JASPAR, hit counts, fraction of regions
with a hit, strength) with the tasks discovery gave no motif (and the model's test auROC on each), hit
distributions (scores and positions per motif, co-occurrence of motifs in regions) and example regions
(contribution logos with hits beneath, drawn around the strongest hits).
Tables of motifs, hits and co-occurrence are embedded as downloadable TSV (``data:`` links), so the
report stays one file. Motif logos are also written as PNG and SVG files in a ``logos/`` folder beside
the report.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genomatt import __version__
from genomatt.atomic import atomic_path, make_output_folder, safe_file_names
from genomatt.contributions import Contributions, read_contributions
from genomatt.errors import StoreError, missing_file
from genomatt.motifs.discovery import DiscoveredMotif
from genomatt.motifs.formats import CwmMotif
from genomatt.motifs.hits import HitCalls, read_hits
from genomatt.motifs.store import read_motifs
from genomatt.report import DEFAULT_EXAMPLE_REGIONS
from genomatt.report.hit_summary import (
    cooccurrence,
    cooccurrence_figure,
    distribution_figure,
    hit_positions,
    motif_strength,
)
from genomatt.report.logos import (
    HIT_COLOURS,
    MOTIF_LOGO_KINDS,
    PLAIN_TEXT,
    figure_bytes,
    logo_span,
    motif_logo_matrices,
    region_figure,
    write_motif_logos,
)
from genomatt.store import read_attrs

log = logging.getLogger(__name__)

# Regions longer than this are drawn as a window of this width around their hits, so letters stay legible.
MAX_DRAWN_BASES = 240
MATCHES_SHOWN = 3
# A task whose test auROC is under this, near chance (0.5), is named in the run summary as barely learned.
LEARNED_AUROC = 0.6
# Embedded hit tables larger than this keep the strongest hits (hits.tsv has them all).
MAX_EMBEDDED_HITS = 100_000
JASPAR_MATRIX_URL = "https://jaspar.elixir.no/matrix/{}/"
JASPAR_ID = re.compile(r"MA\d{4}(\.\d+)?")
# The options of genomatt hits that chose the motifs and tasks scanned, shown with its settings.
HIT_SELECTION = ("include", "exclude", "min_seqlets", "tasks", "task_regions")
KEY_SETTINGS = ("method", "rule", "max_rule", "hit_max_rule", "n_references", "seed", "model", "model_sha256")


@dataclass
class ReportInputs:
    """Everything the report shows, read from the run's files."""

    contributions: Contributions
    delta: np.ndarray | None
    motifs: list[DiscoveredMotif | CwmMotif]
    hits: HitCalls | None
    metrics: dict | None
    sources: dict[str, Path | None]
    motif_provenance: dict = field(default_factory=dict)
    hit_provenance: dict = field(default_factory=dict)

    @property
    def regions(self) -> pd.DataFrame:
        """The regions table of the contribution file."""
        return self.contributions.regions

    @property
    def tasks(self) -> list[str]:
        """The task names of the contribution file, in axis order."""
        return self.contributions.tasks

    @property
    def attrs(self) -> dict:
        """The root attributes of the contribution file (``provenance`` decoded)."""
        return self.contributions.attrs


def _read_metrics(path: Path, contrib: Path, provenance: dict) -> dict:
    """The metrics JSON object of ``path``, refused when its ``content_hash`` (as ``genomatt train`` writes it) names
    another model than the one ``contrib`` explains."""
    if not path.is_file():
        raise StoreError(missing_file(path, "metrics file"))
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" ({error.msg} at line {error.lineno})" if isinstance(error, json.JSONDecodeError) else ""
        raise StoreError(f"{path}: not valid JSON{where}") from None
    if not isinstance(metrics, dict):
        raise StoreError(f"{path}: expected a JSON object of the model's test metrics, e.g. {{task: {{auroc: ..., "
                         f"auprc: ...}}}}, got a JSON {type(metrics).__name__}")
    ours, theirs = provenance.get("model_sha256"), metrics.get("content_hash")
    if ours and isinstance(theirs, str) and theirs != ours:
        raise StoreError(f"{path}: the metrics of another model (content_hash {theirs[:12]}) than the one {contrib} "
                         f"explains ({ours[:12]}); give that model's metrics")
    return metrics


def load_report_inputs(
    contrib: str | os.PathLike, motifs: str | os.PathLike | None = None, hits: str | os.PathLike | None = None,
    metrics: str | os.PathLike | None = None,
) -> ReportInputs:
    """Read and check every input of the report (only ``contrib`` is required)."""
    contrib = Path(contrib)
    contributions = read_contributions(contrib)
    motif_rows: list[DiscoveredMotif | CwmMotif] = list(read_motifs(motifs)[0]) if motifs else []
    hit_calls = read_hits(hits) if hits else None
    # Files of another model or regions first: that, not their motifs, is what differs then.
    motif_provenance = (read_attrs(motifs).get("provenance") or {}) if motifs else {}
    _check_same_run(contrib, contributions.provenance, motifs, motif_provenance.get("contrib_provenance") or {})
    hit_provenance = (read_attrs(hits).get("provenance") or {}) if hits else {}
    if hits:
        _check_same_run(contrib, contributions.provenance, hits, hit_provenance.get("contrib_provenance") or {})
    if hit_calls is not None:
        known = {motif.name for motif in motif_rows}
        if known and hit_calls.cwms and not known & set(hit_calls.cwms):
            raise StoreError(f"{hits}: its hits were called with other motifs ({', '.join(list(hit_calls.cwms)[:3])}"
                             f", ...) than those of {motifs}; give the hits.h5 of these motifs")
        # The same names with other matrices: a discovery rerun with other settings names its motifs alike.
        changed = [motif.name for motif in motif_rows if motif.name in hit_calls.cwms and not np.array_equal(
            np.asarray(motif.cwm, np.float32), np.asarray(hit_calls.cwms[motif.name], np.float32))]
        if changed:
            raise StoreError(f"{hits}: its hits were called with other matrices under the names of {motifs}'s motifs "
                             f"({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}: another discovery "
                             "of them); give the hits.h5 called with these motifs")
        # Motifs given as a MEME file have hits but no discovery record: list them from the hit file.
        motif_rows += [CwmMotif(name, np.asarray(cwm)) for name, cwm in hit_calls.cwms.items() if name not in known]
    return ReportInputs(
        contributions=contributions, delta=contributions.read_scores("delta"),
        motifs=motif_rows, hits=hit_calls,
        metrics=_read_metrics(Path(metrics), contrib, contributions.provenance) if metrics else None,
        sources={"contributions": contrib, "motifs": Path(motifs) if motifs else None,
                 "hits": Path(hits) if hits else None, "metrics": Path(metrics) if metrics else None},
        motif_provenance=motif_provenance, hit_provenance=hit_provenance,
    )


def _check_same_run(contrib: Path, provenance: dict, made: str | os.PathLike | None, discovered_in: dict) -> None:
    """Motifs or hits found in the contributions of another model, or of other regions, belong to another run."""
    for key, what in (("model_sha256", "model"), ("h5_sha256", "regions")):
        ours, theirs = provenance.get(key), discovered_in.get(key)
        if ours and theirs and ours != theirs:
            raise StoreError(f"{made}: made from the contributions of another {what} ({key} {theirs[:12]}) than "
                             f"{contrib} ({ours[:12]}); give the files of one run")


def _image(png: bytes, alt: str, css_class: str = "") -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img class="{css_class}" alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _download(table: pd.DataFrame, filename: str, label: str) -> str:
    """A link that saves ``table`` as a TSV file, embedded in the page as a ``data:`` URI."""
    encoded = base64.b64encode(table.to_csv(sep="\t", index=False, float_format="%.6g").encode()).decode("ascii")
    return (f'<a class="download" download="{html.escape(filename)}" '
            f'href="data:text/tab-separated-values;base64,{encoded}">{html.escape(label)}</a>')


def _locus(chrom: str, start: int, end: int) -> str:
    """``chrom:first-last`` in genome-browser notation (1-based, inclusive) of a 0-based half-open interval."""
    return f"{chrom}:{start + 1:,}-{end:,}"


def _format(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value, default=str)
        return text if len(text) <= 160 else text[:157] + "…"
    return str(value)


def _key_value_table(items: list[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(_format(value))}</td></tr>"
                   for key, value in items)
    return f'<table class="kv">{rows}</table>'


def _is_grid(value: object) -> bool:
    """A non-empty JSON object of objects (e.g. per-task metrics)."""
    return isinstance(value, dict) and bool(value) and all(isinstance(inner, dict) for inner in value.values())


def _grid_table(rows: dict) -> str:
    columns = list(dict.fromkeys(key for inner in rows.values() for key in inner))
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in columns)
    body = "".join(
        f"<tr><th>{html.escape(str(row))}</th>"
        + "".join(f'<td class="num">{html.escape(_format(inner.get(column)))}</td>' for column in columns)
        + "</tr>" for row, inner in rows.items())
    return f'<table class="grid"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>'


def _test_aurocs(metrics: object) -> dict[str, float]:
    """Each task's test auROC in a metrics file: ``{"tasks": {task: {"auroc": ...}}}`` as genomatt train writes
    it, or ``{task: {"auroc": ...}}``."""
    metrics = metrics if isinstance(metrics, dict) else {}
    per_task = metrics.get("tasks") if isinstance(metrics.get("tasks"), dict) else metrics
    return {task: float(record["auroc"]) for task, record in per_task.items() if isinstance(record, dict)
            and isinstance(record.get("auroc"), (int, float)) and not isinstance(record.get("auroc"), bool)}


def _unlearned_tasks(metrics: object) -> str:
    """A note naming the tasks the model did not learn (test auROC under :data:`LEARNED_AUROC`)."""
    weak = {task: value for task, value in _test_aurocs(metrics).items() if value < LEARNED_AUROC}
    if not weak:
        return ""
    named = ", ".join(f"{html.escape(task)} ({value:.3f})" for task, value in weak.items())
    return (f'<p class="empty">The model barely learned {len(weak)} task{"s" if len(weak) > 1 else ""} (test auROC '
            f"under {LEARNED_AUROC}): {named}. Its contributions there are mostly noise, and so are motifs and hits "
            "found in them.</p>")


def _metrics_table(metrics: object) -> str:
    """Metrics JSON as tables: objects of objects (per-task metrics) as grids, other entries as a
    key/value list (nested objects flattened one level, lists of records counted)."""
    if _is_grid(metrics):
        return _grid_table(metrics)
    if not isinstance(metrics, dict):
        return f"<pre>{html.escape(json.dumps(metrics, indent=2, default=str))}</pre>"
    grids = "".join(_grid_table(value) for value in metrics.values() if _is_grid(value))
    items = []
    for key, value in metrics.items():
        if _is_grid(value):
            continue
        if isinstance(value, dict):
            items += [(f"{key} {inner}", inner_value) for inner, inner_value in value.items()]
        elif isinstance(value, list) and value and all(isinstance(entry, dict) for entry in value):
            items.append((key, f"{len(value)} records"))
        else:
            items.append((key, value))
    return grids + (_key_value_table(items) if items else "")


def _delta_figure(delta: np.ndarray, tasks: list[str]) -> Figure:
    figure = Figure(figsize=(6.0, 2.4))
    ax = figure.subplots()
    floor = 1e-12
    values = np.log10(np.maximum(delta, floor))
    bins = np.linspace(values.min(), max(values.max(), values.min() + 1e-6), 40)
    for index, task in enumerate(tasks):
        ax.hist(values[:, index], bins=bins, histtype="step", linewidth=1.4, label=task,
                color=HIT_COLOURS[index % len(HIT_COLOURS)])
    ax.set_xlabel("log10 summation-to-delta error", fontsize=8)
    ax.set_ylabel("regions", fontsize=8)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if len(tasks) > 1:
        # Beside the axes, in as many columns of 12 as the tasks need, so that no entry is cut off.
        columns = -(-len(tasks) // 12)
        figure.set_size_inches(6.0 + 1.4 * columns, 2.4)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), ncols=columns)
    figure.tight_layout(pad=0.4)
    return figure


def _cards(inputs: ReportInputs) -> str:
    n = len(inputs.regions)
    width = int((inputs.regions["end"] - inputs.regions["start"]).iloc[0]) if n else 0
    n_hits = len(inputs.hits.hits) if inputs.hits is not None else None
    with_hit = inputs.hits.hits["peak_id"].nunique() if inputs.hits is not None else None
    # Over the regions scanned for some task, as the motif table's shares (with task regions, not every region).
    scanned = int(inputs.hits.qc["peak_id"].nunique()) if inputs.hits is not None else 0
    cards = [("regions", f"{n:,}"), ("region width", f"{width:,} bp"), ("tasks", f"{len(inputs.tasks)}"),
             ("motifs", f"{len(inputs.motifs)}"),
             ("hits", "—" if n_hits is None else f"{n_hits:,}"),
             ("scanned regions with a hit", "—" if with_hit is None or not scanned else f"{with_hit / scanned:.0%}")]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="value">{html.escape(value)}</div><div class="label">{html.escape(label)}'
        f"</div></div>" for label, value in cards) + "</div>"


def _run_section(inputs: ReportInputs) -> str:
    provenance = inputs.attrs.get("provenance", {}) or {}
    files = [(kind, str(path) if path else "not given") for kind, path in inputs.sources.items()]
    files.append(("contributions written", inputs.attrs.get("created_utc")))
    files.append(("tasks", ", ".join(inputs.tasks)))
    key_settings = [(key, provenance[key]) for key in KEY_SETTINGS if key in provenance]
    other_settings = [(key, value) for key, value in sorted(provenance.items()) if key not in KEY_SETTINGS]
    parts = ['<section id="run"><h2>Run</h2><div class="two-col">',
             f"<div><h3>Inputs</h3>{_key_value_table(files)}</div>",
             f"<div><h3>Model and attribution</h3>{_key_value_table(key_settings + other_settings)}</div></div>"]
    parts.append("<h3>Model test metrics</h3>")
    parts.append(_metrics_table(inputs.metrics) + _unlearned_tasks(inputs.metrics) if inputs.metrics is not None
                 else '<p class="empty">No metrics file was given (<code>genomatt report --metrics</code>).</p>')
    parts.append("<h3>Summation-to-delta error</h3>")
    if inputs.delta is not None and inputs.delta.size:
        quantiles = np.quantile(inputs.delta, [0.5, 0.99, 1.0])
        parts.append('<p class="note">Per region and task: the largest, over references, of |Σ contributions − '
                     f"(f(x) − f(reference))|. Median {quantiles[0]:.3g}, 99th percentile {quantiles[1]:.3g}, "
                     f"maximum {quantiles[2]:.3g}.</p>")
        parts.append(_image(figure_bytes(_delta_figure(inputs.delta, inputs.tasks), "png"),
                            "distribution of the summation-to-delta error", "plot"))
    else:
        parts.append('<p class="empty">The contribution file records no summation-to-delta error.</p>')
    parts.append("</section>")
    return "".join(parts)


def _hit_statistics(inputs: ReportInputs) -> pd.DataFrame:
    """Per motif: number of hits and fraction of the regions scanned for it (those of the tasks it was
    scanned in) with at least one."""
    if inputs.hits is None or not len(inputs.hits.hits):
        return pd.DataFrame(columns=["hits", "fraction"])
    calls = inputs.hits
    grouped = calls.hits.groupby("motif_name")
    scanned = {motif: calls.qc.loc[calls.qc["task"].isin(group["task"]), "peak_id"].nunique()
               for motif, group in calls.motifs.groupby("motif_name")}
    denominator = pd.Series({motif: scanned.get(motif) or len(inputs.regions) for motif in grouped.groups})
    return pd.DataFrame({"hits": grouped.size(), "fraction": grouped["peak_id"].nunique() / denominator})


def _matches_cell(matches: list[dict]) -> str:
    if not matches:
        return '<span class="muted">no match</span>'
    items = []
    for match in matches[:MATCHES_SHOWN]:
        q = match.get("q")
        identifier = str(match.get("id", ""))
        shown = html.escape(identifier)
        if JASPAR_ID.fullmatch(identifier):
            shown = (f'<a href="{JASPAR_MATRIX_URL.format(identifier)}" target="_blank" rel="noopener">'
                     f"{shown}</a>")
        label = f"{html.escape(str(match.get('name', '')))} <span class=\"muted\">{shown}</span>"
        items.append(f"<li>{label} <span class=\"q\">q = {_format(q)}</span></li>" if q is not None
                     else f"<li>{label}</li>")
    return f'<ul class="matches">{"".join(items)}</ul>'


def _motif_task(motif: DiscoveredMotif | CwmMotif, calls: HitCalls | None) -> str:
    """The task of a discovered motif; for a motif only scanned for hits (listed from the hit file, ``calls``),
    the tasks it was scanned in."""
    if isinstance(motif, DiscoveredMotif):
        return motif.task
    tasks = calls.motifs.loc[calls.motifs["motif_name"] == motif.name, "task"].unique()
    return ", ".join(map(str, tasks)) or "all"


def _motif_sign(motif: DiscoveredMotif | CwmMotif) -> str:
    """``pos`` or ``neg``: the sign of the motif's contributions."""
    if isinstance(motif, DiscoveredMotif):
        return motif.sign
    return "neg" if motif.cwm.sum() < 0 else "pos"


def _motif_matches(motif: DiscoveredMotif | CwmMotif) -> list[dict]:
    """Known-motif matches of a discovered motif (a motif only scanned for hits has none)."""
    return motif.matches if isinstance(motif, DiscoveredMotif) else []


def _strength_of(strength: pd.Series, motif: DiscoveredMotif | CwmMotif) -> tuple[float, str] | None:
    """The motif's share of its task's contribution (for a motif scanned in several tasks, the largest)."""
    if motif.name not in strength.index.get_level_values("motif_name"):
        return None
    shares = strength.xs(motif.name, level="motif_name")
    task = motif.task if motif.task in shares.index else shares.abs().idxmax()
    return float(shares[task]), str(task)


def _scanned_motifs(inputs: ReportInputs) -> set[str]:
    """The motifs hits were called for (none without a hit file; a motif left out by ``--include``,
    ``--exclude``, ``--min-seqlets`` or ``--tasks`` is not among them)."""
    return set(inputs.hits.motifs["motif_name"]) if inputs.hits is not None else set()


def _motif_table(inputs: ReportInputs, motifs: list[DiscoveredMotif | CwmMotif], statistics: pd.DataFrame,
                 strength: pd.Series) -> pd.DataFrame:
    """The motif table as a downloadable TSV."""
    scanned_motifs = _scanned_motifs(inputs)
    rows = []
    for motif in motifs:
        matches = _motif_matches(motif)
        best = matches[0] if matches else {}
        share = _strength_of(strength, motif)
        scanned = motif.name in scanned_motifs
        rows.append({
            "motif": motif.name, "task": _motif_task(motif, inputs.hits), "sign": _motif_sign(motif),
            "n_seqlets": motif.n_seqlets,
            "hits": int(statistics["hits"].get(motif.name, 0)) if scanned else None,
            "fraction_of_regions_with_hit": float(statistics["fraction"].get(motif.name, 0.0)) if scanned else None,
            "strength": share[0] if share else None, "strength_task": share[1] if share else None,
            "best_match_id": best.get("id"), "best_match_name": best.get("name"), "best_match_q": best.get("q"),
        })
    return pd.DataFrame(rows)


def _motif_section(inputs: ReportInputs, logo_dir: Path) -> str:
    header = '<section id="motifs"><h2>Motifs</h2>'
    if not inputs.motifs:
        if inputs.sources["motifs"] is None and inputs.hits is None:
            return header + '<p class="empty">No motif file was given.</p></section>'
        return header + (_tasks_without_motifs(inputs, []) or '<p class="empty">No motifs were found.</p>') + \
            "</section>"
    statistics = _hit_statistics(inputs)
    strength = motif_strength(inputs.hits)
    motifs = sorted(inputs.motifs, key=lambda m: -(m.n_seqlets if m.n_seqlets is not None else -1))
    top = max((abs(value) for value in strength), default=0.0)
    # Refused before any logo is drawn: two motifs whose logo files would share a name.
    safe_file_names([motif.name for motif in motifs], "motifs")
    scanned_motifs = _scanned_motifs(inputs)
    rows = []
    for motif in motifs:
        start, end = logo_span(motif.cwm)
        drawn = (motif.cwm, motif.pwm, motif.hypothetical_cwm) if isinstance(motif, DiscoveredMotif) else (motif.cwm,)
        matrices = motif_logo_matrices(*(None if matrix is None else matrix[:, start:end] for matrix in drawn))
        logos = []
        for kind, written in write_motif_logos(motif.name, matrices, logo_dir).items():
            caption = MOTIF_LOGO_KINDS[kind][0]
            logos.append(f'<figure>{_image(written["png"].read_bytes(), f"{motif.name} {caption}", "logo")}'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        hits = int(statistics["hits"].get(motif.name, 0)) if motif.name in statistics.index else 0
        fraction = float(statistics["fraction"].get(motif.name, 0.0)) if motif.name in statistics.index else 0.0
        share = _strength_of(strength, motif)
        if inputs.hits is None:
            hit_cells = '<td class="num">—</td><td class="num">—</td><td class="num">—</td>'
        elif motif.name not in scanned_motifs:
            hit_cells = '<td class="num muted">not scanned</td><td class="num">—</td><td class="num">—</td>'
        else:
            strength_cell = "—" if share is None else (
                f'<div class="bar"><span style="width:{100 * abs(share[0]) / top if top else 0:.1f}%"></span></div>'
                f'{share[0]:.1%}<div class="muted">of {html.escape(share[1])}</div>')
            hit_cells = (f'<td class="num">{hits:,}</td><td class="num"><div class="bar"><span style="width:'
                         f'{100 * fraction:.1f}%"></span></div>{fraction:.1%}</td><td class="num">{strength_cell}</td>')
        sign = _motif_sign(motif)
        rows.append(
            f'<tr><td><div class="name">{html.escape(motif.name)}</div><div class="muted">task '
            f'{html.escape(_motif_task(motif, inputs.hits))} · <span class="sign {sign}">{html.escape(sign)}</span>'
            f'</div></td><td class="num">{"—" if motif.n_seqlets is None else f"{motif.n_seqlets:,}"}</td>'
            f'<td><div class="logos">{"".join(logos)}</div></td><td>{_matches_cell(_motif_matches(motif))}</td>'
            f"{hit_cells}</tr>")
    note = ('<p class="note">Sorted by seqlet count. Strength: the share of the task\'s contribution (summed over '
            "the regions scanned, absolute value per region) carried by the motif's hits; bars are relative to the "
            "strongest motif. Known-motif identifiers link to their JASPAR page. Logo files (PNG and SVG) are in "
            f"<code>{html.escape(str(logo_dir))}</code>.</p>")
    if inputs.hits is None:
        note += '<p class="empty">No hit file was given, so hit counts are not shown.</p>'
    note += _tasks_without_motifs(inputs, motifs)
    download = ('<p class="downloads">'
                + _download(_motif_table(inputs, motifs, statistics, strength), "motifs.tsv", "motifs.tsv") + "</p>")
    return (header + note + download + '<table class="motifs"><thead><tr><th>motif</th><th>seqlets</th><th>logos</th>'
            "<th>best known matches</th><th>hits</th><th>scanned regions with a hit</th><th>strength</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table></section>")


def _tasks_without_motifs(inputs: ReportInputs, motifs: list[DiscoveredMotif | CwmMotif]) -> str:
    """A note naming the tasks discovery gave no motif, with the model's test auROC where the metrics have it.

    Only for discovered motifs (each belongs to one task); motifs only scanned for hits belong to none.
    """
    if not all(isinstance(motif, DiscoveredMotif) for motif in motifs):
        return ""
    found = {motif.task for motif in motifs}
    missing = [task for task in inputs.tasks if task not in found]
    if not missing:
        return ""
    auroc = _test_aurocs(inputs.metrics)
    searched = inputs.motif_provenance.get("regions_searched") or {}
    unsearched = [task for task in missing if searched.get(task) == 0]
    filtered = [task for task in missing if task not in unsearched]
    named = [html.escape(task) + (f" (model test auROC {auroc[task]:.3f})" if task in auroc else "")
             for task in filtered]
    reasons = []
    if filtered:
        reasons.append(f'{", ".join(named)}: no group of their seqlets passed discovery\'s filters (see Settings and '
                       "thresholds; the log of <code>genomatt motifs</code> says what each filter left out)")
    if unsearched:
        reasons.append(f'{", ".join(map(html.escape, unsearched))}: no explained region lies in the task\'s regions '
                       "(its task BED), so none was searched; do the task BED and the regions describe the same peaks?")
    return (f'<p class="empty">No motif for {len(missing)} of {len(inputs.tasks)} tasks. '
            + ". ".join(reasons) + ".</p>")


def _settings_section(inputs: ReportInputs) -> str:
    """Settings of motif discovery and hit calling, and each motif's hit thresholds."""
    parts = ['<section id="settings"><h2>Settings and thresholds</h2><div class="two-col">']
    discovery = {key: value for key, value in inputs.motif_provenance.items()
                 if key not in ("contrib_provenance", "command", "contrib", "regions_searched")}
    parts.append("<div><h3>Motif discovery</h3>" + (_key_value_table(sorted(discovery.items())) if discovery else
                 '<p class="empty">No motif file was given.</p>') + "</div>")
    # Which motifs and tasks were scanned, as the hits command was told (a motif left out shows "not scanned").
    selection = {key: inputs.hit_provenance[key] for key in HIT_SELECTION if inputs.hit_provenance.get(key)}
    settings = sorted({**inputs.hits.settings, **selection}.items()) if inputs.hits is not None else []
    parts.append("<div><h3>Hit calling</h3>" + (_key_value_table(settings) if inputs.hits is not None and
                                                inputs.hits.settings else '<p class="empty">No hit file was given.</p>')
                 + "</div></div>")
    if inputs.hits is not None and len(inputs.hits.motifs):
        thresholds = inputs.hits.motifs
        head = "".join(f"<th>{html.escape(str(column))}</th>" for column in thresholds.columns)
        body = "".join("<tr>" + "".join(f'<td class="num">{html.escape(_format(value))}</td>' if
                                        isinstance(value, (float, np.floating)) else
                                        f"<td>{html.escape(str(value))}</td>" for value in row) + "</tr>"
                       for row in thresholds.itertuples(index=False))
        parts.append('<h3>Hit thresholds per motif and task</h3><p class="note">importance_threshold: least sum of '
                     "contributions of a hit (set by the FDR against a permutation null; inf: no hit possible); "
                     "trim_start/trim_end: the CWM columns scanned; strength: the motif's amplitude at its typical "
                     "sites (90th percentile over the regions scanned of its largest amplitude in each; a hit needs "
                     "at least min_strength × the largest strength of its task's motifs) — not the strength of the "
                     "motif table, a share of the task's contribution; min_coefficient: the least coefficient of a "
                     "hit; min_sequence_score: the least PWM log-odds of a hit's sequence (bits).</p>"
                     f'<table class="grid small"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    parts.append("</section>")
    return "".join(parts)


def _hits_section(inputs: ReportInputs, colours: dict[str, str]) -> str:
    """Per-motif distributions of hit scores and positions, and motif co-occurrence within regions."""
    header = '<section id="hits"><h2>Hits</h2>'
    if inputs.hits is None or not len(inputs.hits.hits):
        reason = ("No hit file was given." if inputs.hits is None else "No motif hits were found in any region."
                  if len(inputs.hits.qc) else "No region was scanned: no task had both a motif and a region to "
                  "scan.")
        return header + f'<p class="empty">{reason}</p></section>'
    hits = inputs.hits.hits
    names = list(dict.fromkeys(name for name in [m.name for m in inputs.motifs] if name in set(hits["motif_name"])))
    names += [name for name in pd.unique(hits["motif_name"]) if name not in names]
    embedded = hits
    note = ""
    if len(hits) > MAX_EMBEDDED_HITS:
        embedded = hits.nlargest(MAX_EMBEDDED_HITS, "hit_coefficient_global").sort_index()
        note = f" (the {MAX_EMBEDDED_HITS:,} strongest of {len(hits):,}; hits.tsv has every hit)"
    counts = cooccurrence(hits, names)
    parts = [header, '<p class="downloads">', _download(embedded, "hits.tsv", "hits.tsv"), html.escape(note),
             _download(counts.rename_axis("motif").reset_index(), "cooccurrence.tsv", "cooccurrence.tsv"), "</p>",
             '<h3>Scores and positions per motif</h3><p class="note">Per motif: the similarity and coefficient of its '
             "hits, and where their centres lie relative to the centre of their regions.</p>"]
    positions = hit_positions(hits, inputs.regions)
    half_width = float((inputs.regions["end"] - inputs.regions["start"]).max()) / 2
    for name in names:
        chosen = (hits["motif_name"] == name).to_numpy()
        figure = distribution_figure(hits[chosen], positions[chosen], half_width, colours.get(name, "#475569"))
        parts.append(f'<div class="distribution"><div class="name">{html.escape(name)} '
                     f'<span class="muted">{int(chosen.sum()):,} hits</span></div>'
                     f'{_image(figure_bytes(figure, "png"), f"{name} hit distributions", "plot wide")}</div>')
    parts.append('<h3>Co-occurrence within regions</h3><p class="note">Regions holding hits of both motifs (any '
                 "task); the diagonal counts the regions with the motif.</p>")
    parts.append(_image(figure_bytes(cooccurrence_figure(counts), "png"), "motif co-occurrence", "plot"))
    parts.append("</section>")
    return "".join(parts)


def _example_regions(inputs: ReportInputs, n_regions: int) -> list[tuple[int, str]]:
    """(region row, task) pairs to draw: per task, the regions whose hits carry the most contribution,
    taken in turn from each task so that every task is shown."""
    if inputs.hits is None or not len(inputs.hits.hits):
        return []
    weight = inputs.hits.hits.groupby(["task", "peak_id"])["hit_importance"].sum()
    ranked = {task: list(group.droplevel(0).sort_values(ascending=False).index)
              for task, group in weight.groupby(level=0)}
    chosen, seen = [], set()
    while len(chosen) < n_regions and any(ranked.values()):
        for task, regions in ranked.items():
            while regions and regions[0] in seen:
                regions.pop(0)
            if regions and len(chosen) < n_regions:
                seen.add(regions[0])
                chosen.append((int(regions.pop(0)), str(task)))
    return chosen


def _drawn_stretch(first: int, last: int, hits: pd.DataFrame) -> tuple[int, int]:
    """The stretch drawn of the bases ``[first, last)`` of a region (those read from the genome): all of them up
    to :data:`MAX_DRAWN_BASES`, else the window of that width holding the strongest hit and, of the windows that
    do, the most hit weight (``weight``) whole; ties go to the window centred closest on the strongest hit."""
    length = last - first
    if length <= MAX_DRAWN_BASES:
        return first, last
    if not len(hits):
        start = first + (length - MAX_DRAWN_BASES) // 2
        return start, start + MAX_DRAWN_BASES
    offsets = hits["offset"].to_numpy(np.int64) - first
    ends = hits["offset_end"].to_numpy(np.int64) - first
    weights = hits["weight"].to_numpy(np.float64)
    strongest = int(np.argmax(weights))
    low = max(0, int(ends[strongest]) - MAX_DRAWN_BASES)
    high = min(length - MAX_DRAWN_BASES, int(offsets[strongest]))
    centred = (int(offsets[strongest]) + int(ends[strongest])) // 2 - MAX_DRAWN_BASES // 2
    candidates = np.unique(np.clip(np.concatenate([offsets, ends - MAX_DRAWN_BASES, [centred]]), low, max(low, high)))
    inside = (offsets[None, :] >= candidates[:, None]) & (ends[None, :] <= candidates[:, None] + MAX_DRAWN_BASES)
    held = (inside * weights[None, :]).sum(axis=1)
    best = np.lexsort((np.abs(candidates - centred), -held))[0]
    start = first + int(candidates[best])
    return start, start + MAX_DRAWN_BASES


def _region_section(inputs: ReportInputs, n_regions: int, colours: dict[str, str]) -> str:
    header = '<section id="regions"><h2>Example regions</h2>'
    chosen = _example_regions(inputs, n_regions)
    if not chosen:
        reason = ("No hit file was given." if inputs.hits is None else
                  "No example region was asked for (--example-regions 0)." if len(inputs.hits.hits) else
                  "No motif hits were found in any region." if len(inputs.hits.qc) else
                  "No region was scanned: no task had both a motif and a region to scan.")
        return header + f'<p class="empty">{reason}</p></section>'
    # The contributions the hits were called in, where the file still holds them.
    drawn = inputs.hits.contributions if inputs.hits.contributions in inputs.contributions.arrays else "contrib"
    rule = (inputs.attrs.get("provenance") or {}).get("hit_max_rule") if drawn == "hit_contrib" else None
    which = f" (under the max rule {rule}, which the hits were called in)" if rule else ""
    parts = [header, f'<p class="note">{len(chosen)} regions whose hits carry the most contribution, taken in turn '
             f"from each task; letters are the projected contributions{which} of the task named, bars the hits. Regions wider "
             f"than {MAX_DRAWN_BASES} bp are drawn over the {MAX_DRAWN_BASES} bp around their strongest hit. Loci are "
             "1-based, as a genome browser shows them.</p>"]
    for region, task in chosen:
        row = inputs.regions.iloc[region]
        start = int(row["start"])
        contrib = inputs.contributions.read_contrib(inputs.tasks.index(task), region, drawn)
        hits = inputs.hits.hits[(inputs.hits.hits["peak_id"] == region) & (inputs.hits.hits["task"] == task)]
        hits = hits.assign(offset=hits["start"] - start, offset_end=hits["end"] - start,
                           weight=hits["hit_importance"])
        # Only the bases read from the genome: a window padded past a chromosome's end has no locus there.
        first, last = _drawn_stretch(int(row.get("padded_left", 0)),
                                     contrib.shape[1] - int(row.get("padded_right", 0)), hits)
        shown = hits[(hits["offset_end"] > first) & (hits["offset"] < last)]
        shown = shown.assign(offset=shown["offset"] - first, offset_end=shown["offset_end"] - first)
        title = f"{row['name']}  {_locus(row['chrom'], start + first, start + last)}  task {task}"
        figure = region_figure(contrib[:, first:last], shown, colours, title, start + first + 1)
        table_rows = "".join(
            f"<tr><td>{html.escape(str(h.motif_name))}</td><td>{html.escape(_locus(h.chr, h.start, h.end))}</td>"
            f'<td>{h.strand}</td><td class="num">{h.hit_similarity:.2f}</td>'
            f'<td class="num">{h.hit_contribution:.3g}</td></tr>' for h in hits.itertuples())
        parts.append(
            f'<div class="region">{_image(figure_bytes(figure, "png"), title, "track")}'
            '<table class="grid small"><thead><tr><th>motif</th><th>position</th><th>strand</th>'
            f"<th>similarity</th><th>contribution</th></tr></thead><tbody>{table_rows}</tbody></table></div>")
    parts.append("</section>")
    return "".join(parts)


CSS = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --soft:#f8fafc; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--ink); background:#f1f5f9; }
header { background:linear-gradient(135deg,#1e3a8a,#2563eb); color:white; padding:28px 0 22px; }
header .inner, main { max-width:1240px; margin:0 auto; padding:0 24px; }
header h1 { margin:0; font-size:26px; font-weight:650; letter-spacing:-0.01em; }
header p { margin:4px 0 0; opacity:0.85; }
nav { margin-top:14px; display:flex; gap:18px; }
nav a { color:white; opacity:0.9; text-decoration:none; font-weight:500; }
nav a:hover { opacity:1; text-decoration:underline; }
section { background:white; border:1px solid var(--line); border-radius:12px; padding:20px 24px; margin:22px 0;
          box-shadow:0 1px 2px rgba(15,23,42,0.04); }
h2 { margin:0 0 12px; font-size:19px; }
h3 { margin:18px 0 8px; font-size:14px; text-transform:uppercase; letter-spacing:0.04em; color:var(--muted); }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); gap:12px; margin-top:22px; }
.card { background:white; border:1px solid var(--line); border-radius:12px; padding:14px 16px; }
.card .value { font-size:22px; font-weight:650; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:0.04em; }
.two-col { display:grid; grid-template-columns:1fr 1fr; gap:24px; }
@media (max-width: 900px) { .two-col { grid-template-columns:1fr; } }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
table.kv th { width:34%; color:var(--muted); font-weight:500; }
table.kv td { word-break:break-all; font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
table.grid thead th, table.motifs thead th { background:var(--soft); font-size:12px; text-transform:uppercase;
          letter-spacing:0.03em; color:var(--muted); }
table.grid tbody tr:nth-child(even) { background:var(--soft); }
table.small { font-size:12px; margin-top:8px; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
table.motifs td { padding:12px 10px; }
.name { font-weight:600; }
.muted { color:var(--muted); font-size:12px; }
.sign { padding:0 6px; border-radius:8px; font-size:11px; }
.sign.pos { background:#dcfce7; color:#166534; } .sign.neg { background:#fee2e2; color:#991b1b; }
.logos { display:grid; grid-template-columns:repeat(2, minmax(0, max-content)); gap:8px 14px; }
figure { margin:0; }
figcaption { font-size:11px; color:var(--muted); text-align:center; }
img.logo { height:auto; max-height:72px; max-width:100%; display:block; }
img.plot { max-width:640px; width:100%; display:block; }
img.plot.wide { max-width:820px; }
.distribution { border-top:1px solid var(--line); padding:8px 0; }
.downloads { display:flex; gap:14px; align-items:center; flex-wrap:wrap; }
a.download { background:var(--accent); color:white; padding:3px 10px; border-radius:6px; text-decoration:none;
             font-size:12px; }
a.download::before { content:"⬇ "; }
img.track { width:100%; display:block; }
ul.matches { margin:0; padding-left:16px; min-width:190px; }
.q { color:var(--accent); font-size:12px; white-space:nowrap; }
.bar { width:90px; height:6px; background:var(--line); border-radius:3px; margin:6px 0 4px auto; }
.bar span { display:block; height:100%; background:var(--accent); border-radius:3px; }
.region { border-top:1px solid var(--line); padding:14px 0; }
.region:first-of-type { border-top:none; }
.note { color:var(--muted); }
.empty { background:#fefce8; border:1px solid #fde68a; color:#854d0e; padding:10px 14px; border-radius:8px; }
code { background:var(--soft); padding:1px 5px; border-radius:4px; font-size:12px; }
footer { color:var(--muted); text-align:center; padding:10px 0 30px; font-size:12px; }
"""


def _page(inputs: ReportInputs, body: str) -> str:
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    # The contributions' folder names the run (the workflow's sample), so that open reports tell apart.
    path = inputs.contributions.path
    title = "genomatt report — " + (f"{path.parent.name}/{path.name}" if path.parent.name else path.name)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><div class="inner"><h1>genomatt report</h1><p>{html.escape(", ".join(inputs.tasks))} · '
        f"{len(inputs.regions):,} regions · made {created}</p>"
        '<nav><a href="#run">Run</a><a href="#settings">Settings</a><a href="#motifs">Motifs</a><a href="#hits">Hits</a>'
        '<a href="#regions">Example regions</a></nav>'
        f"</div></header><main>{body}</main>"
        f"<footer>genomatt {html.escape(__version__)}</footer></body></html>"
    )


@PLAIN_TEXT
def build_report(
    contrib: str | os.PathLike,
    out: str | os.PathLike,
    motifs: str | os.PathLike | None = None,
    hits: str | os.PathLike | None = None,
    metrics: str | os.PathLike | None = None,
    n_regions: int = DEFAULT_EXAMPLE_REGIONS,
) -> Path:
    """Write the HTML report of a run, atomically, with motif logos in ``logos/`` beside it.

    Parameters
    ----------
    contrib
        ``contrib.h5`` (regions, tasks, attribution settings, summation-to-delta error).
    out
        Output ``.html`` file.
    motifs
        ``motifs.h5`` of discovered motifs (optional).
    hits
        ``hits.h5`` from ``genomatt hits`` (optional).
    metrics
        JSON of the model's test metrics (optional), e.g. ``{task: {"auroc": ..., "auprc": ...}}``.
    n_regions
        Number of example regions drawn.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    if n_regions < 0:
        raise StoreError(f"the number of example regions must be >= 0, got {n_regions}")
    inputs = load_report_inputs(contrib, motifs, hits, metrics)
    out = Path(out)
    logo_dir = out.parent / "logos"
    # The folder exists even for a run without motifs: the workflow declares it as an output.
    make_output_folder(logo_dir)
    names = [motif.name for motif in inputs.motifs]
    colours = {name: HIT_COLOURS[index % len(HIT_COLOURS)] for index, name in enumerate(names)}
    body = (_cards(inputs) + _run_section(inputs) + _settings_section(inputs) + _motif_section(inputs, logo_dir)
            + _hits_section(inputs, colours) + _region_section(inputs, n_regions, colours))
    with atomic_path(out) as tmp:
        tmp.write_text(_page(inputs, body), encoding="utf-8")
    log.info("wrote the report of %d motifs to %s", len(inputs.motifs), out)
    return out
