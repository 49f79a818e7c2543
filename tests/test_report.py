import base64
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from synthetic import planted_motifs_h5, synthetic_contributions

from genomatt.cli.main import main
from genomatt.contributions import Contributions, contribution_tasks, read_contributions
from genomatt.errors import StoreError
from genomatt.motifs.formats import read_meme
from genomatt.motifs.cwm_motifs import read_cwm_motifs
from genomatt.motifs.hits import HitCalls, call_hits_in_store, read_hits, write_hits
from genomatt.report.html import (
    MAX_DRAWN_BASES,
    _cards,
    _drawn_stretch,
    _hit_statistics,
    _metrics_table,
    build_report,
    load_report_inputs,
)
from genomatt.report.hit_summary import cooccurrence, motif_strength
from genomatt.report.logos import logo_span, motif_logo_matrices, write_motif_logos
from genomatt.motifs.store import read_motifs, write_motifs
from genomatt.store import read_attrs, read_regions

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_COMMAND = "apt-get update && apt-get install -y chromium"


@pytest.fixture(scope="module")
def run_files(small_genome, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    contrib = synthetic_contributions(small_genome, folder / "contrib.h5")
    motifs = planted_motifs_h5(small_genome, folder / "motifs.h5")
    hits = write_hits(call_hits_in_store(contrib, read_cwm_motifs(motifs), device="cpu"), folder / "hits")["h5"]
    metrics = folder / "metrics.json"
    metrics.write_text(json.dumps({"GATA1": {"auroc": 0.97, "auprc": 0.91}, "CTCF": {"auroc": 0.99, "auprc": 0.95}}))
    return {"contrib": contrib, "motifs": motifs, "hits": hits, "metrics": metrics}


@pytest.fixture(scope="module")
def full_report(run_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    return build_report(run_files["contrib"], out, run_files["motifs"], run_files["hits"], run_files["metrics"])


def test_report_is_self_contained(full_report, small_genome):
    text = full_report.read_text()
    first_motif = read_meme(small_genome.motifs_meme)[0]
    assert text.startswith("<!DOCTYPE html>")
    # The title names the contributions with their folder (the workflow's sample).
    assert re.search(r"<title>genomatt report — [^/<]+/contrib\.h5</title>", text)
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(source.startswith("data:image/png;base64,") for source in sources)
    # Nothing is loaded from elsewhere; the only outside links are known motifs' JASPAR pages.
    assert not re.search(r"src=\"(https?:)?//|<link|<script", text)
    links = re.findall(r'href="((?:https?:)?//[^"]*)"', text)
    assert links and all(re.fullmatch(r"https://jaspar\.elixir\.no/matrix/MA\d{4}\.\d+/", link) for link in links)
    assert f'href="https://jaspar.elixir.no/matrix/{first_motif.id}/"' in text
    for name in ("GATA1.pos.0", first_motif.id, "q = 1e-05", "Example regions", "auroc", "Summation-to-delta",
                 "Settings and thresholds", "importance_threshold", "energy_floor", "Co-occurrence within regions",
                 "Scores and positions per motif", "strength"):
        assert name in text
    # Sorted by seqlet count: GATA1 (100 seqlets) before CEBPB (60).
    assert text.index("GATA1.pos.0") < text.index("CEBPB.pos.0")
    logos = full_report.parent / "logos"
    for kind in ("cwm", "cwm_reverse", "pwm", "hypothetical_cwm"):
        for fmt in ("png", "svg"):
            assert (logos / f"CTCF.pos.0.{kind}.{fmt}").stat().st_size > 1000


def embedded_tables(text: str) -> dict[str, pd.DataFrame]:
    """The TSV tables the report offers for download, by file name."""
    links = re.findall(r'download="([^"]+)" href="data:text/tab-separated-values;base64,([^"]*)"', text)
    return {name: pd.read_csv(io.StringIO(base64.b64decode(data).decode()), sep="\t") for name, data in links}


def test_report_embeds_tables_strength_and_browser_loci(full_report, run_files):
    text = full_report.read_text()
    tables = embedded_tables(text)
    assert set(tables) == {"motifs.tsv", "hits.tsv", "cooccurrence.tsv"}
    calls = read_hits(run_files["hits"])
    assert len(tables["hits.tsv"]) == len(calls.hits) and list(tables["hits.tsv"].columns) == list(calls.hits.columns)
    motifs = tables["motifs.tsv"].set_index("motif")
    strength = motif_strength(calls)
    assert motifs.loc["GATA1.pos.0", "strength"] == pytest.approx(strength["GATA1.pos.0", "GATA1"], rel=1e-5)
    assert 0 < motifs.loc["GATA1.pos.0", "strength"] < 1 and motifs.loc["GATA1.pos.0", "best_match_id"].startswith("MA")
    counts = tables["cooccurrence.tsv"].set_index("motif")
    assert counts.loc["GATA1.pos.0", "GATA1.pos.0"] == calls.hits.loc[calls.hits["motif_name"] == "GATA1.pos.0",
                                                                      "peak_id"].nunique()
    # Browser notation is 1-based: a hit at 0-based [start, end) is chrom:start+1-end.
    loci = re.findall(r"<td>(chr\w+):([\d,]+)-([\d,]+)</td>", text)
    known = set(zip(calls.hits["chr"], calls.hits["start"], calls.hits["end"]))
    assert loci and all((chrom, int(first.replace(",", "")) - 1, int(last.replace(",", ""))) in known
                        for chrom, first, last in loci)


def test_strength_is_the_share_of_the_task_contribution_and_cooccurrence_counts_regions():
    hits = pd.DataFrame({"motif_name": ["a", "a", "b", "b"], "task": ["t", "t", "t", "u"], "peak_id": [0, 1, 1, 2],
                         "hit_contribution": [2.0, 1.0, -0.5, 4.0]})
    qc = pd.DataFrame({"task": ["t", "t", "t", "u", "u", "u"], "contribution": [4.0, -2.0, 4.0, 8.0, 0.0, 0.0]})
    strength = motif_strength(HitCalls(hits, qc, pd.DataFrame()))
    assert strength[("a", "t")] == pytest.approx(0.3) and strength[("b", "t")] == pytest.approx(-0.05)
    assert strength[("b", "u")] == pytest.approx(0.5)
    counts = cooccurrence(hits, ["a", "b", "c"])
    assert counts.to_numpy().tolist() == [[2, 1, 0], [1, 2, 0], [0, 0, 0]]


def test_hit_fractions_are_of_the_regions_scanned_for_each_task(run_files, tmp_path):
    regions = read_regions(run_files["contrib"])
    tasks = contribution_tasks(run_files["contrib"])
    rows = {task: np.arange(index % 3, len(regions), 2 + index % 3) for index, task in enumerate(tasks)}
    calls = call_hits_in_store(run_files["contrib"], read_cwm_motifs(run_files["motifs"]), device="cpu", task_rows=rows)
    hits = write_hits(calls, tmp_path)["h5"]
    inputs = load_report_inputs(run_files["contrib"], run_files["motifs"], hits)
    statistics = _hit_statistics(inputs)
    for motif, group in calls.hits.groupby("motif_name"):
        task = group["task"].iloc[0]
        assert statistics.loc[motif, "fraction"] == pytest.approx(group["peak_id"].nunique() / len(rows[task]))
    assert statistics["fraction"].max() <= 1
    # The summary card: regions with a hit among those scanned for some task, not among every region.
    scanned = len(set().union(*(set(regions["name"].iloc[rows[task]]) for task in tasks)))
    assert scanned < len(regions)
    share = f"{calls.hits['peak_id'].nunique() / scanned:.0%}"
    assert f'<div class="value">{share}</div><div class="label">scanned regions with a hit</div>' in _cards(inputs)


def test_motifs_left_out_of_the_hits_say_so_and_the_selection_is_shown(run_files, tmp_path):
    names = [motif.name for motif in read_cwm_motifs(run_files["motifs"])]
    assert main(["-q", "hits", "--contrib", str(run_files["contrib"]), "--motifs", str(run_files["motifs"]),
                 "--out-dir", str(tmp_path / "hits"), "--include", names[0], "--device", "cpu"]) == 0
    out = tmp_path / "report.html"
    assert main(["-q", "report", "--contrib", str(run_files["contrib"]), "--motifs", str(run_files["motifs"]),
                 "--hits", str(tmp_path / "hits" / "hits.h5"), "--out", str(out)]) == 0
    page = out.read_text()
    rows = {name: re.search(rf'<div class="name">{re.escape(name)}</div>.*?</tr>', page, re.S).group(0)
            for name in names}
    assert "not scanned" not in rows[names[0]] and re.search(r'<td class="num">[\d,]+</td>', rows[names[0]])
    assert all("not scanned" in rows[name] for name in names[1:])
    assert f"<th>include</th><td>[&quot;{names[0]}&quot;]</td>" in page
    table = pd.read_csv(io.StringIO(base64.b64decode(re.search(
        r'download="motifs.tsv" href="data:text/tab-separated-values;base64,([^"]+)"', page).group(1)).decode()),
        sep="\t").set_index("motif")
    assert table["hits"].isna().sum() == len(names) - 1 and table.loc[names[0], "hits"] > 0


def test_example_regions_draw_the_contributions_the_hits_were_called_in(run_files, tmp_path, monkeypatch):
    contrib = tmp_path / "contrib.h5"
    shutil.copy(run_files["contrib"], contrib)
    with h5py.File(contrib, "r+") as handle:
        handle.create_dataset("hit_contrib", data=0.5 * handle["contrib"][()])
        provenance = json.loads(handle.attrs["provenance"])
        handle.attrs["provenance"] = json.dumps({**provenance, "hit_max_rule": "shapley"})
    calls = call_hits_in_store(contrib, read_cwm_motifs(run_files["motifs"]), device="cpu")
    hits = write_hits(calls, tmp_path / "hits")["h5"]
    assert read_hits(hits).contributions == "hit_contrib" and len(calls.hits)
    drawn = []
    read_contrib = Contributions.read_contrib

    def recording(self, task_index, rows=slice(None), array="contrib"):
        drawn.append(array)
        return read_contrib(self, task_index, rows, array)

    monkeypatch.setattr(Contributions, "read_contrib", recording)
    html = build_report(contrib, tmp_path / "report.html", run_files["motifs"], hits).read_text()
    assert "projected contributions (under the max rule shapley, which the hits were called in)" in html
    assert drawn and set(drawn) == {"hit_contrib"}
    # Hits called in /contrib: drawn from /contrib, with no note on the max rule.
    drawn.clear()
    plain = build_report(run_files["contrib"], tmp_path / "plain.html", run_files["motifs"], run_files["hits"])
    assert "under the max rule" not in plain.read_text() and set(drawn) == {"contrib"}


def test_example_regions_are_drawn_over_the_bases_read_from_the_genome(run_files, tmp_path):
    # A window padded past a chromosome's ends has no locus there: its title was e.g. 1:-79-120.
    contrib = tmp_path / "contrib.h5"
    shutil.copy(run_files["contrib"], contrib)
    with h5py.File(contrib, "r+") as handle:
        handle["regions/padded_left"][...] = 30
        handle["regions/padded_right"][...] = 20
    regions = read_regions(contrib).set_index("name")
    text = build_report(contrib, tmp_path / "report.html", run_files["motifs"], run_files["hits"]).read_text()
    titles = re.findall(r'alt="(\S+)  ([^:]+):([\d,]+)-([\d,]+)  task', text)
    assert titles
    for name, chrom, first, last in titles:
        region = regions.loc[name]
        assert chrom == region["chrom"]
        assert int(first.replace(",", "")) - 1 >= region["start"] + 30 and int(last.replace(",", "")) <= \
            region["end"] - 20


def test_training_metrics_are_shown_as_tables():
    metrics = {"tasks": {"GATA1": {"auroc": 0.97, "auprc": 0.91}, "CTCF": {"auroc": 0.99, "auprc": 0.95}},
               "mean_test_auroc": 0.98, "split": {"test_chroms": ["chr5"], "n_test": 764},
               "history": [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}]}
    text = _metrics_table(metrics)
    grid = text[: text.index("</table>")]
    assert 'class="grid"' in grid and "<th>GATA1</th>" in grid and "0.97" in grid and "0.95" in grid
    for shown in ("mean_test_auroc", "split test_chroms", "split n_test", "2 records"):
        assert shown in text
    assert "epoch" not in text


def test_logos_cover_the_motif_span_and_a_flank():
    cwm = np.zeros((4, 50))
    cwm[0, 20:30] = 1.0
    cwm[1, 18] = cwm[1, 31] = 0.15
    assert logo_span(cwm) == (13, 37)
    assert logo_span(cwm[:, 15:35]) == (0, 20)


def test_empty_inputs_give_a_report_that_says_so(run_files, small_genome, tmp_path):
    no_motifs = planted_motifs_h5(small_genome, tmp_path / "none.h5", n_motifs=0)
    no_hits = write_hits(call_hits_in_store(run_files["contrib"], [], device="cpu"), tmp_path / "hits")["h5"]
    out = build_report(run_files["contrib"], tmp_path / "empty.html", no_motifs, no_hits)
    text = out.read_text()
    # Each task named, and no claim that regions were scanned for hits: there was no motif to scan.
    tasks = contribution_tasks(run_files["contrib"])
    assert f"No motif for {len(tasks)} of {len(tasks)} tasks. {', '.join(tasks)}: no group of their seqlets" in text
    assert "No region was scanned: no task had both a motif and a region to scan." in text
    assert "No motif hits were found" not in text
    assert '<div class="value">—</div><div class="label">scanned regions with a hit</div>' in text
    assert "No metrics file was given" in text
    only_contrib = build_report(run_files["contrib"], tmp_path / "bare.html").read_text()
    assert "No motif file was given" in only_contrib and "No hit file was given" in only_contrib
    no_examples = build_report(run_files["contrib"], tmp_path / "few.html", hits=run_files["hits"], n_regions=0)
    assert "No example region was asked for" in no_examples.read_text()
    assert "No motif hits were found" not in no_examples.read_text()


def test_tasks_without_a_discovered_motif_are_named_with_their_auroc(run_files, small_genome, tmp_path):
    one_motif = planted_motifs_h5(small_genome, tmp_path / "one.h5", n_motifs=1)
    tasks = contribution_tasks(run_files["contrib"])
    (kept,) = [motif.task for motif in read_cwm_motifs(one_motif)]
    metrics = tmp_path / "model.metrics.json"  # as genomatt train writes it
    metrics.write_text(json.dumps({"tasks": {task: {"auroc": 0.5 + index / 10} for index, task in enumerate(tasks)}}))
    text = build_report(run_files["contrib"], tmp_path / "one.html", one_motif, metrics=metrics).read_text()
    missing = [f"{task} (model test auROC {0.5 + index / 10:.3f})" for index, task in enumerate(tasks) if task != kept]
    assert f"No motif for {len(missing)} of {len(tasks)} tasks. {', '.join(missing)}: no group of their" in text
    # Task 0 at auROC 0.5, chance: named in the run summary as barely learned; the others are not.
    assert f"The model barely learned 1 task (test auROC under 0.6): {tasks[0]} (0.500)." in text
    whole = build_report(run_files["contrib"], tmp_path / "all.html", run_files["motifs"]).read_text()
    assert "No motif for" not in whole and "barely learned" not in whole
    # A task whose task BED holds none of the explained regions was not searched: said so, not blamed on the filters.
    alone = next(task for task in reversed(tasks) if task != kept)
    unsearched = planted_motifs_h5(small_genome, tmp_path / "unsearched.h5", n_motifs=1, provenance={
        "regions_searched": {task: 0 if task == alone else 10 for task in tasks}})
    text = build_report(run_files["contrib"], tmp_path / "unsearched.html", unsearched).read_text()
    filtered = [task for task in tasks if task not in (kept, alone)]
    assert (f"No motif for {len(tasks) - 1} of {len(tasks)} tasks. {', '.join(filtered)}: no group of their seqlets "
            "passed") in text
    assert f"{alone}: no explained region lies in the task's regions (its task BED), so none was searched" in text


def test_invalid_inputs_give_clear_errors(run_files, tmp_path):
    bad_json = tmp_path / "m.json"
    bad_json.write_text("{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        build_report(run_files["contrib"], tmp_path / "r.html", metrics=bad_json)
    bad_json.write_text("[1, 2]")
    with pytest.raises(StoreError, match="m.json: expected a JSON object of the model's test metrics.*got a JSON list"):
        build_report(run_files["contrib"], tmp_path / "r.html", metrics=bad_json)
    # The metrics genomatt train wrote for another model (its content_hash): they were shown as this model's.
    model = read_contributions(run_files["contrib"]).provenance["model_sha256"]
    bad_json.write_text(json.dumps({"content_hash": "f" * 64, "tasks": {"GATA1": {"auroc": 0.6}}}))
    with pytest.raises(StoreError, match=rf"m.json: the metrics of another model \(content_hash ffffffffffff\) than "
                                         rf"the one .* explains \({model[:12]}\)"):
        build_report(run_files["contrib"], tmp_path / "r.html", metrics=bad_json)
    bad_json.write_text(json.dumps({"content_hash": model, "tasks": {"GATA1": {"auroc": 0.6}}}))
    assert "0.6" in build_report(run_files["contrib"], tmp_path / "same.html", metrics=bad_json).read_text()
    with pytest.raises(StoreError, match="not a genomatt hits.h5"):
        build_report(run_files["contrib"], tmp_path / "r.html", hits=run_files["motifs"])
    with pytest.raises(StoreError, match="expected 'contributions'"):
        build_report(run_files["hits"], tmp_path / "r.html")
    meme = tmp_path / "motifs.meme"
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n")
    with pytest.raises(StoreError, match="motifs.meme: a MEME file, where the motifs.h5 of genomatt motifs"):
        build_report(run_files["contrib"], tmp_path / "r.html", motifs=meme)
    assert main(["report", "--contrib", str(run_files["contrib"]), "--out", str(tmp_path / "r.html"),
                 "--metrics", str(tmp_path / "missing.json")]) == 2
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("kind", ["motifs", "hits"])
def test_motifs_or_hits_of_another_model_are_refused(run_files, tmp_path, kind):
    other = tmp_path / f"other_{kind}.h5"
    shutil.copy(run_files[kind], other)
    with h5py.File(other, "r+") as handle:
        provenance = json.loads(handle.attrs.get("provenance", "{}"))
        provenance["contrib_provenance"] = {"model_sha256": "f" * 64}
        handle.attrs["provenance"] = json.dumps(provenance)
    with pytest.raises(StoreError, match=re.escape(f"{other}: made from the contributions of another model "
                                                   "(model_sha256 ffffffffffff) than")):
        build_report(run_files["contrib"], tmp_path / "r.html", **{kind: other})
    assert not (tmp_path / "r.html").exists()


def test_report_command(run_files, small_genome, tmp_path):
    one_motif = planted_motifs_h5(small_genome, tmp_path / "one.h5", n_motifs=1)
    out = tmp_path / "report.html"
    assert main(["report", "--contrib", str(run_files["contrib"]), "--motifs", str(one_motif), "--out", str(out),
                 "--example-regions", "2"]) == 0
    assert "GATA1.pos.0" in out.read_text()
    assert len(list((tmp_path / "logos").iterdir())) == 8


def chromium() -> str:
    """Debian's chromium, installed with apt-get where missing and possible; else the test is skipped."""
    if shutil.which("chromium") is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["bash", "-c", INSTALL_COMMAND], env=env, capture_output=True, timeout=1200)
    path = shutil.which("chromium")
    if path is None:
        pytest.skip(f"Debian's chromium is not installed and cannot be installed here (needs root and apt-get: "
                    f"{INSTALL_COMMAND})")
    return path


class DevTools:
    """A minimal Chrome DevTools protocol session on one page."""

    def __init__(self, url: str):
        import websocket

        self.socket = websocket.create_connection(url, timeout=60)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(event.get("method") == method for event in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.events.append(json.loads(self.socket.recv()))


def render(report: Path, screenshot: Path, profile: Path, width: int = 1280) -> dict:
    """Open the report in headless Chromium; save a full-page screenshot; return images and console errors."""
    pytest.importorskip("websocket", reason="the browser test needs websocket-client (pip install websocket-client)")
    profile.mkdir()
    process = subprocess.Popen([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                "--remote-debugging-port=0", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        page = DevTools(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        page.call("Page.navigate", url=report.resolve().as_uri())
        page.wait_for("Page.loadEventFired")
        images = page.call("Runtime.evaluate", returnByValue=True, expression=(
            "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"
        ))["result"]["value"]
        sections = page.call("Runtime.evaluate", returnByValue=True, expression=(
            "Array.from(document.querySelectorAll('section')).map(s => s.id)"))["result"]["value"]
        downloads = page.call("Runtime.evaluate", returnByValue=True, expression=(
            "Array.from(document.querySelectorAll('a[download]')).map(a => a.download)"))["result"]["value"]
        height = page.call("Runtime.evaluate", expression="document.documentElement.scrollHeight",
                           returnByValue=True)["result"]["value"]
        # A viewport as tall as the page renders every image in place (tiles past the viewport may not).
        page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        shot = page.call("Page.captureScreenshot", format="png")
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        errors = [event for event in page.events if
                  (event.get("method") == "Runtime.consoleAPICalled" and event["params"]["type"] == "error")
                  or event.get("method") == "Runtime.exceptionThrown"
                  or (event.get("method") == "Log.entryAdded" and event["params"]["entry"]["level"] == "error")]
        page.socket.close()
        return {"images": images, "errors": errors, "height": height, "sections": sections, "downloads": downloads}
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_report_renders_in_chromium(full_report, tmp_path):
    screenshot = tmp_path / "report.png"
    result = render(full_report, screenshot, tmp_path / "profile")
    assert len(result["images"]) > 20
    assert all(image["complete"] and image["width"] > 0 for image in result["images"]), result["images"]
    assert result["errors"] == []
    assert result["sections"] == ["run", "settings", "motifs", "hits", "regions"]
    assert sorted(result["downloads"]) == ["cooccurrence.tsv", "hits.tsv", "motifs.tsv"]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 50_000


def test_long_regions_are_drawn_around_their_strongest_hits():
    hits = pd.DataFrame({"offset": [600, 640], "offset_end": [610, 650], "weight": [1.0, 1.0]})
    first, last = _drawn_stretch(0, 1000, hits)
    assert last - first == MAX_DRAWN_BASES and first <= 600 and last >= 650
    edge = hits.assign(offset=[990, 990], offset_end=[1000, 1000])
    assert _drawn_stretch(0, 1000, edge) == (760, 1000)
    assert _drawn_stretch(0, 200, hits) == (0, 200)
    # A window padded with N past a chromosome's end: the stretch is the drawn width of the bases read, not cut
    # short by the padding (a hit at 520 in a window read up to 550 drew 407-550).
    near_end = pd.DataFrame({"offset": [520], "offset_end": [535], "weight": [1.0]})
    assert _drawn_stretch(0, 550, near_end) == (310, 550)
    assert _drawn_stretch(100, 300, near_end.iloc[:0]) == (100, 300)
    # Hits spread over more than the drawn width: the window holds the strongest and as much weight as it can.
    spread = pd.DataFrame({"offset": [100, 300, 380, 850], "offset_end": [110, 310, 390, 860],
                           "weight": [1.0, 5.0, 2.0, 1.5]})
    first, last = _drawn_stretch(0, 1000, spread)
    assert last - first == MAX_DRAWN_BASES and first <= 300 and last >= 390
    assert first >= 111 or last <= 300


def test_hits_of_other_motifs_are_refused(run_files, small_genome, tmp_path):
    meme_hits = write_hits(call_hits_in_store(run_files["contrib"], read_cwm_motifs(small_genome.motifs_meme),
                                              device="cpu"), tmp_path / "meme_hits")["h5"]
    with pytest.raises(StoreError, match=re.escape(f"{meme_hits}: its hits were called with other motifs")):
        build_report(run_files["contrib"], tmp_path / "r.html", run_files["motifs"], meme_hits)


def test_hits_of_other_matrices_under_the_same_names_are_refused(run_files, tmp_path):
    motifs, seqlets, called = read_motifs(run_files["motifs"])
    rediscovered = [dataclasses.replace(motifs[0], cwm=motifs[0].cwm * 1.5), *motifs[1:]]
    other = write_motifs(tmp_path / "motifs.h5", rediscovered, seqlets, called,
                         read_attrs(run_files["motifs"])["provenance"])
    with pytest.raises(StoreError, match=re.escape(f"{run_files['hits']}: its hits were called with other matrices "
                                                   f"under the names of {other}'s motifs ({motifs[0].name}")):
        build_report(run_files["contrib"], tmp_path / "r.html", other, run_files["hits"])


def test_logo_files_are_named_by_the_cleaned_motif_name(tmp_path):
    logos = tmp_path / "run" / "logos"
    matrices = motif_logo_matrices(np.eye(4)[:, [0, 1, 2, 3, 0]])
    for name in ("../../ESCAPED", "AP-1/JUN.pos.0"):
        write_motif_logos(name, matrices, logos)
    files = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    assert files == sorted(f"run/logos/{stem}.{kind}.{fmt}" for stem in ("___.._ESCAPED", "AP-1_JUN.pos.0")
                           for kind in ("cwm", "cwm_reverse") for fmt in ("png", "svg"))


def test_a_dollar_sign_in_a_name_is_drawn_as_it_is_not_as_mathtext():
    from genomatt.report.logos import figure_bytes, logo_figure, region_figure

    name = r"GATA_$\foo$"  # mathtext would refuse \foo, and draw GATA_$x_1$ as a subscript
    assert figure_bytes(logo_figure(np.eye(4)[:, [0, 1, 2, 3, 0]], "bits", title=name), "png")[:4] == b"\x89PNG"
    hits = pd.DataFrame({"motif_name": [name], "strand": ["+"], "offset": [2], "offset_end": [6]})
    figure = region_figure(np.eye(4)[:, np.arange(20) % 4], hits, {name: "#000000"}, title=name)
    assert figure_bytes(figure, "png")[:4] == b"\x89PNG"
    texts = [text.get_text() for ax in figure.axes for text in ax.texts + [ax.title]]
    assert any(name in text for text in texts)
