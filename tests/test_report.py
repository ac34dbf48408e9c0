"""Report runner: stand-in notebooks in a tmp dir (fast), then the real notebooks on the
small sample when they exist. Checks the report layout, atomic swap, failure messages,
parameter passing, HTML escaping, CSV formula neutralisation and privacy."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from abmkit import report
from abmkit.period import resolve_period

REPO = Path(__file__).resolve().parents[1]
XSS = "<script>alert(1)</script>"


def _nb(path: Path, cells: list, params: str) -> Path:
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[cells[0], p, *cells[1:]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> Path:
    """Three stand-in notebooks with the report contract's parameters."""
    d = tmp_path_factory.mktemp("notebooks")
    _nb(d / "01_clean.ipynb", [
        new_markdown_cell("# Data cleaning stand-in"),
        new_code_cell(
            "import pandas as pd, pathlib\n"
            "from abmkit.outputs import save_table, save_findings\n"
            "raw = pd.read_csv(pathlib.Path(raw_dir) / 'touches.csv')\n"
            "if 'amount' not in raw.columns:\n"
            "    raise ValueError(f'touches.csv: column amount missing; found {list(raw.columns)}')\n"
            "pathlib.Path(data_dir).mkdir(parents=True, exist_ok=True)\n"
            "raw.to_csv(pathlib.Path(data_dir) / 'clean.csv', index=False)\n"
            "save_table(raw, output_dir, 'rows')\n"
            "save_findings({'headline': f'{len(raw)} rows clean, 0 rejected <b>ok</b>', 'rows_in': len(raw)}, "
            "output_dir, '01_clean')\n"
            "raw.drop(columns=['email']).style"),
    ], "raw_dir = None\ncolumn_map = None\ndata_dir = '../data/sample/canonical'\nquarter = '2026Q3'\n"
       "start = None\nend = None\noutput_dir = None")
    _nb(d / "02_plot.ipynb", [
        new_markdown_cell("# Plot stand-in"),
        new_code_cell(
            "%matplotlib inline\nimport pandas as pd, pathlib\nimport matplotlib.pyplot as plt\n"
            "from abmkit.outputs import save_findings\n"
            "df = pd.read_csv(pathlib.Path(data_dir) / 'clean.csv')\n"
            "fig, ax = plt.subplots(); ax.bar(df['campaign'].astype(str), df['amount']); plt.show()\n"
            "save_findings({'quarter': quarter, 'start': start, 'n_boot': n_boot, 'engine': engine}, output_dir, '02_plot')\n"
            "from IPython.display import Markdown, display\n"
            "display(Markdown('Top campaign: **' + str(df['campaign'].iloc[0]) + '**'))\n"
            "df.drop(columns=['email'])"),
    ], "data_dir = '../data/sample/canonical'\nquarter = '2026Q3'\nstart = None\nend = None\n"
       "output_dir = None\nn_boot = 1000\nengine = 'pandas'")
    _nb(d / "03_noparams.ipynb", [new_markdown_cell("# No parameters"), new_code_cell("x = 1")], "")
    nb3 = nbformat.read(str(d / "03_noparams.ipynb"), as_version=4)
    nb3.cells = [c for c in nb3.cells if "parameters" not in c.metadata.get("tags", [])]
    nbformat.write(nb3, str(d / "03_noparams.ipynb"))
    (d / "README.ipynb").write_text("{}")  # not NN_*: ignored
    return d


def _data(tmp_path: Path, rows: dict | None = None) -> Path:
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "column_map.yaml").write_text("tables: {}\n")
    rows = rows or {"campaign": [XSS, "=HYPERLINK(\"http://x\")", "Spring"], "amount": [3, 2, 1],
                    "email": ["ann.lee@example.com", "bo@example.org", None], "contact_id": ["c1", "c2", "c3"]}
    pd.DataFrame(rows).to_csv(raw / "touches.csv", index=False)
    return tmp_path / "data"


def _run(standins, data, out, capsys=None, **kw):
    return report.run_report(data=str(data), out_dir=str(out), notebooks_dir=standins, progress=False, **kw)


# ------------------------------------------------------------------ unit parts (no kernel)
def test_discover_notebooks_order_and_only(standins):
    names = [p.name for p in report.discover_notebooks(standins)]
    assert names == ["01_clean.ipynb", "02_plot.ipynb", "03_noparams.ipynb"]
    assert [p.name for p in report.discover_notebooks(standins, only="02,03")] == ["02_plot.ipynb", "03_noparams.ipynb"]
    with pytest.raises(report.ReportError, match="matches none"):
        report.discover_notebooks(standins, only="99")
    with pytest.raises(report.ReportError, match="no notebooks"):
        report.discover_notebooks(standins / "nowhere")


def test_resolve_input(tmp_path):
    data = _data(tmp_path)
    raw, cm = report.resolve_input(data)
    assert raw == data / "raw" and cm.endswith("raw/column_map.yaml")
    assert report.resolve_input(data, preset="salesforce") == (data, "salesforce")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "column_map.yaml").write_text("{}")
    assert report.resolve_input(flat)[0] == flat
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(report.ReportError, match=r"looked for .*raw/column_map.yaml.*column_map.yaml"):
        report.resolve_input(empty)
    with pytest.raises(report.ReportError, match="does not exist"):
        report.resolve_input(tmp_path / "missing")


def test_params_file_sections_and_filtering(standins, tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text("n_boot: 50\nquarter: 2026Q1\n02: {n_boot: 7, data_dir: /evil}\n03_noparams: {x: 2}\n")
    stems = [p.stem for p in report.discover_notebooks(standins)]
    g, sec = report.load_params_file(pf, stems)
    assert g == {"n_boot": 50, "quarter": "2026Q1"} and set(sec) == {"02", "03_noparams"}
    common = {"data_dir": "/d", "output_dir": "/o", "quarter": "2026Q3", "start": None, "end": None,
              "raw_dir": "/r", "column_map": "cm", "engine": "dask", "scheduler": None}
    p2 = report.notebook_parameters(standins / "02_plot.ipynb", common, g, sec)
    assert p2 == {"data_dir": "/d", "quarter": "2026Q3", "start": None, "end": None, "output_dir": "/o",
                  "n_boot": 7, "engine": "dask"}  # only declared names; data_dir not overridable
    assert report.notebook_parameters(standins / "03_noparams.ipynb", common, g, sec) == {}
    bad = tmp_path / "bad.yaml"
    bad.write_text("09_missing: {a: 1}\n")
    with pytest.raises(report.ReportError, match="names no notebook"):
        report.load_params_file(bad, stems)
    bad.write_text("- a\n- b\n")
    with pytest.raises(report.ReportError, match="mapping"):
        report.load_params_file(bad, stems)


def test_write_index_escapes_text(tmp_path):
    (tmp_path / "01_x.html").write_text("x")
    p = report.write_index(tmp_path, period=resolve_period("2026Q3"), run_date="2026-10-01 06:00 UTC",
                           version="9.9", quality={"headline": XSS, "rows": {"touchpoints": 10}},
                           notebooks=[{"stem": "01_x", "title": XSS, "seconds": 1.5},
                                      {"stem": "02_y", "title": "Y", "seconds": None}])
    text = p.read_text()
    assert "<script>" not in text and text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert "<h1>Quarterly ABM report: Q3 2026</h1>" in text
    assert "Q3 2026 (1 Jul to 30 Sep 2026)" in text and "Q2 2026 (1 Apr to 30 Jun 2026)" in text
    assert "abmkit 9.9" in text and "rows.touchpoints" in text and "1.5 s" in text
    assert 'href="01_x.html"' in text and "not available" in text
    # no summary saved: said so at the top, not an empty box; raw keys only in the appendix
    assert text.index("Executive summary") < text.index("<h2>Pages</h2>") < text.index("Appendix: raw findings")
    assert "n/a: the KPI page (notebook 05) saved no summary" in text
    assert text.index("rows.touchpoints") > text.index("Appendix: raw findings")
    assert "previous period (Q2 2026): no report published" in text and 'href="../index.html"' in text


def test_index_shows_the_saved_summary_first_and_links_the_previous_period(tmp_path):
    from abmkit.outputs import save_findings

    four_weeks = resolve_period(start="2026-03-01", end="2026-03-29")
    records = [{"kind": "key_numbers", "title": "Key numbers", "text": "reach 50.0% " + XSS},
               {"kind": "campaigns", "title": "Campaigns", "text": "Spring Webinar (-22.6 pts)"}]
    save_findings({"executive_summary": records}, tmp_path, "05_kpis")
    (tmp_path / "05_kpis.html").write_text("x")
    text = report.write_index(tmp_path, period=four_weeks, run_date="r", version="v", quality={},
                              notebooks=[{"stem": "05_kpis", "title": "KPIs", "seconds": 1.0}],
                              published={four_weeks.previous.label}).read_text()
    assert "<h1>ABM report: 1 Mar to 28 Mar 2026 (28 days)</h1>" in text and "Quarterly" not in text
    assert text.index("Spring Webinar (-22.6 pts)") < text.index("<h2>Pages</h2>")
    assert "reach 50.0% &lt;script&gt;" in text and "<script>" not in text
    assert 'href="../2026-02-01_2026-03-01/index.html"' in text and "previous period: February 2026" in text


def test_sanitize_and_redact(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x")])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": f"<table><tr><td onclick='x()'>{XSS}</td></tr></table><iframe src='http://e'></iframe>",
        "application/javascript": "alert(2)", "text/plain": "t"}),
        nbformat.v4.new_output("display_data", data={"text/markdown": f"**{XSS}**", "text/plain": "t"})]
    report.sanitize_notebook(nb)
    h = nb.cells[0].outputs[0]["data"]["text/html"]
    assert "<table>" in h and "onclick" not in h and "<script" not in h and "<iframe" not in h
    assert "&lt;script&gt;" in h and "application/javascript" not in nb.cells[0].outputs[0]["data"]
    m = nb.cells[0].outputs[1]["data"]
    assert "text/markdown" not in m and "<strong>&lt;script&gt;" in m["text/html"]
    (tmp_path / "a.html").write_text("mail ann.lee@example.co.uk now")
    (tmp_path / "b.csv").write_text("x\nok\n")
    assert report.scan_privacy(tmp_path) == [(str(tmp_path / "a.html"), "ann.lee@example.co.uk")]
    assert report._redact_emails(tmp_path) == ["a.html"]
    assert report.scan_privacy(tmp_path) == []


# ------------------------------------------------------------------ runs with stand-ins
def test_full_run_second_period_failure_and_only(standins, tmp_path, capsys):
    data, out = _data(tmp_path), tmp_path / "reports"
    pf = tmp_path / "params.yaml"
    pf.write_text("02_plot: {n_boot: 7}\n")
    assert _run(standins, data, out, quarter="2026Q3", params_file=str(pf), engine="dask") == 0
    q3 = out / "2026Q3"
    files = sorted(p.relative_to(q3).as_posix() for p in q3.rglob("*") if p.is_file())
    assert files == ["01_clean.html", "01_clean.ipynb", "02_plot.html", "02_plot.ipynb", "03_noparams.html",
                     "03_noparams.ipynb", "findings/01_clean.json", "findings/02_plot.json", "index.html",
                     "run.json", "tables/rows.csv"]
    assert (out / ".data" / "2026Q3" / "clean.csv").exists()          # cleaned data beside, not inside
    nb2 = (q3 / "02_plot.ipynb").read_text()
    assert ".staging-" not in nb2 and str((out / ".data" / "2026Q3").resolve()) in nb2   # re-runnable paths
    assert not list(out.glob(".staging-*"))
    f2 = json.loads((q3 / "findings" / "02_plot.json").read_text())
    assert f2 == {"quarter": "2026Q3", "start": None, "n_boot": 7, "engine": "dask"}
    # HTML: code-free, images embedded, data text escaped, no scripts at all
    h2 = (q3 / "02_plot.html").read_text()
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', h2)) == 1 and "pd.read_csv" not in h2
    for name in ("01_clean.html", "02_plot.html", "index.html"):
        text = (q3 / name).read_text()
        assert "<script" not in text.lower(), name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (q3 / "01_clean.html").read_text()  # Styler output
    assert "<strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>" in h2                    # Markdown output
    # CSV: formula neutralised, personal columns gone / masked; no email anywhere
    csv = (q3 / "tables" / "rows.csv").read_text()
    assert "'=HYPERLINK" in csv and "email" not in csv.splitlines()[0] and ",c1" not in csv
    assert report.scan_privacy(q3) == []
    index = (q3 / "index.html").read_text()
    for part in ("01_clean.html", "02_plot.ipynb", "tables/rows.csv", "findings/02_plot.json"):
        assert f'href="{part}"' in index
    assert "3 rows clean, 0 rejected &lt;b&gt;ok&lt;/b&gt;" in index and "Q3 2026 (1 Jul to 30 Sep 2026)" in index
    manifest = json.loads((q3 / "run.json").read_text())
    assert set(manifest["seconds"]) == {"01_clean", "02_plot", "03_noparams"}
    assert manifest["privacy_redactions"] == []

    # a second run with another period leaves the first intact
    before = {p: p.read_bytes() for p in q3.rglob("*") if p.is_file()}
    assert _run(standins, data, out, start="2026-08-01", end="2026-08-29") == 0
    assert (out / "2026-08-01_2026-08-29" / "index.html").exists()
    assert {p: p.read_bytes() for p in q3.rglob("*") if p.is_file()} == before
    f2b = json.loads((out / "2026-08-01_2026-08-29" / "findings" / "02_plot.json").read_text())
    assert f2b["quarter"] is None and f2b["start"] == "2026-08-01"

    # a broken input: non-zero exit naming notebook and cell; the previous report intact
    pd.DataFrame({"campaign": ["x"]}).to_csv(data / "raw" / "touches.csv", index=False)
    capsys.readouterr()
    assert _run(standins, data, out, quarter="2026Q3") == 1
    err = capsys.readouterr().err
    assert "FAILED in notebook 01_clean.ipynb" in err
    # the failing cell is the 4th (markdown, parameters, injected parameters, code), run as [3]
    assert "cell [3] (cell 4 of the executed notebook): ValueError: touches.csv: column amount missing" in err, err
    partial = out / ".failed" / "2026Q3" / "report" / "01_clean.ipynb"
    assert str(partial) in err and partial.exists()
    assert {p: p.read_bytes() for p in q3.rglob("*") if p.is_file()} == before
    assert not list(out.glob(".staging-*"))

    # --only re-runs one notebook on the cleaned data of the last full run, keeping the rest
    pf.write_text("n_boot: 3\n")
    assert _run(standins, data, out, quarter="2026Q3", only="02", params_file=str(pf)) == 0
    assert json.loads((q3 / "findings" / "02_plot.json").read_text())["n_boot"] == 3
    assert (q3 / "01_clean.html").read_bytes() == before[q3 / "01_clean.html"]
    assert 'href="03_noparams.html"' in (q3 / "index.html").read_text()


def test_only_without_a_full_run_is_refused(standins, tmp_path, capsys):
    assert _run(standins, _data(tmp_path), tmp_path / "reports", quarter="2026Q3", only="02") == 2
    assert "run the full report for 2026Q3 first" in capsys.readouterr().err
    assert not (tmp_path / "reports" / "2026Q3").exists()


def test_cli_reports_missing_input(tmp_path):
    r = subprocess.run([sys.executable, "-m", "abmkit", "report", "--data", str(tmp_path), "--out",
                        str(tmp_path / "r"), "--quarter", "2026Q3"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "no column map found" in r.stderr


def test_default_quarter(tmp_path):
    assert report.default_quarter(tmp_path, today=pd.Timestamp("2026-11-25").date()) == "2026Q3"
    can = tmp_path / "canonical"
    can.mkdir()
    pd.DataFrame({"occurred_at": pd.to_datetime(["2026-01-02", "2026-06-30 12:00"], utc=True, format="ISO8601")}
                 ).to_parquet(can / "touchpoints.parquet")
    assert report.default_quarter(tmp_path, today=pd.Timestamp("2026-11-25").date()) == "2026Q2"


# ------------------------------------------------------------------ notebook 05 on the small sample
def test_notebook_05_on_small_sample(resolved_sample_dir, tmp_path):
    import papermill as pm

    from abmkit import kpis, load_resolved
    from abmkit.outputs import save_findings

    out = tmp_path / "report"
    save_findings({"headline": "92% of contacts mapped", "mapped_share": 0.92}, out, "02_account_mapping")
    # what notebook 04 found: one campaign that helped, one that held accounts back (both must reach the summary)
    effects = [{"campaign": "Spring Gift Box", "transition": "qualified->sales_ready", "adj_diff": 0.31,
                "q_value": 1e-6},
               {"campaign": "Cold Call Blitz", "transition": "aware->engaged", "adj_diff": -0.226, "q_value": 0.03}]
    save_findings({"tests": 40, "alpha": 0.05, "significant_campaign_effects": effects}, out,
                  "04_campaign_influence_on_progression")
    nb = REPO / "notebooks" / "05_quarterly_abm_report.ipynb"
    pm.execute_notebook(str(nb), str(out / nb.name), kernel_name="python3", progress_bar=False, cwd=str(nb.parent),
                        parameters={"data_dir": str(resolved_sample_dir), "quarter": "2026Q2",
                                    "output_dir": str(out)})
    table = pd.read_csv(out / "tables" / "kpis.csv").set_index("kpi")
    expected = kpis.kpi_table(load_resolved(resolved_sample_dir), quarter="2026Q2", segments=()).overall
    expected = expected.set_index("kpi")
    for k in ("market_reach", "mqa_accounts", "new_mqas", "influenced_pipeline", "win_rate", "mqa_to_win_rate"):
        assert table.loc[k, "value"] == pytest.approx(expected.loc[k, "value"], nan_ok=True), k
    for name in ("kpi_segments", "kpi_history", "account_funnel", "pipeline_by_period"):
        assert (out / "tables" / f"{name}.csv").exists(), name
    f = json.loads((out / "findings" / "05_quarterly_abm_report.json").read_text())
    assert f["period"] == "2026Q2" and f["previous_period"] == "2026Q1"
    assert f["kpis"]["market_reach"] == pytest.approx(expected.loc["market_reach", "value"])
    html = report.export_html(out / nb.name, out / "05.html").read_text()
    # the executive summary, at the top: both campaign effects, and the KPI table's numbers
    top = html[:html.index("1. KPIs at a glance")]
    assert "Executive summary" in top and "Q2 2026 (1 Apr to 30 Jun 2026)" in top
    assert "Spring Gift Box" in top and "+31.0 pts" in top and "very strong evidence" in top
    assert "Cold Call Blitz" in top and "-22.6 pts" in top and "held accounts back" in top
    assert "Review Cold Call Blitz with its owner" in html            # section 5: the action it leads to
    from abmkit.formatting import format_value

    for k in ("market_reach", "mqa_accounts", "influenced_pipeline"):
        if pd.notna(table.loc[k, "value"]):
            assert format_value(table.loc[k, "value"], table.loc[k, "unit"]) in top, k
    assert [r["kind"] for r in f["executive_summary"]][:2] == ["key_numbers", "campaigns"]
    assert "Quarterly ABM report" not in html                      # the title fits any cadence
    # the raw findings of 01-04 only in the appendix, after the report's sections
    assert "92% of contacts mapped" not in top and html.index("Appendix: raw findings") > html.index("5. Actions")
    # tiles (3), trends, funnel, pipeline, segments (3), and any chart added since
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) >= 9
    assert "kpis.kpi_table" not in html                             # code-free


# ------------------------------------------------------------------ the real pipeline, end to end
def _real_notebooks_complete() -> bool:
    stems = [p.stem for p in (REPO / "notebooks").glob(report.NOTEBOOK_GLOB)]
    return all(any(s.startswith(n) for s in stems) for n in ("01", "02", "03", "04", "05"))


@pytest.mark.slow
@pytest.mark.skipif(not _real_notebooks_complete(), reason="notebooks 01-05 not all written yet")
def test_full_pipeline_on_small_sample(small_sample_dir, small_sample, tmp_path):
    """make report on the small sample: 5 notebooks, 5 HTML pages, CSVs, index; a campaign
    named like a script shows as text; no email or personal name in any HTML or CSV."""
    import shutil

    data = tmp_path / "sample"
    shutil.copytree(small_sample_dir, data)
    name = small_sample.dataset.campaigns["campaign_name"].dropna().iloc[0]
    raw = data / "raw" / "campaigns.csv"
    blob = raw.read_bytes()
    assert name.encode() in blob
    raw.write_bytes(blob.replace(name.encode(), XSS.encode(), 1))
    out = tmp_path / "reports"
    assert report.run_report(quarter="2026Q3", data=str(data), out_dir=str(out),
                             notebooks_dir=REPO / "notebooks", progress=False) == 0
    q3 = out / "2026Q3"
    assert len(list(q3.glob("*.ipynb"))) == 5 and len(list(q3.glob("*.html"))) == 6   # + index.html
    assert list((q3 / "tables").glob("*.csv")) and list((q3 / "findings").glob("*.json"))
    manifest = json.loads((q3 / "run.json").read_text())
    assert manifest["privacy_redactions"] == []          # no notebook printed an email
    contacts = small_sample.dataset.contacts.dropna(subset=["first_name", "last_name"])
    full_names = sorted(set(contacts["first_name"] + " " + contacts["last_name"]))
    emails = contacts["email"].dropna().tolist()
    hits = report.scan_privacy(q3, extra_terms=full_names + emails)
    assert hits == [], hits[:10]
    for csv in (q3 / "tables").glob("*.csv"):
        header = csv.read_text("utf-8").splitlines()[0].split(",") if csv.stat().st_size else []
        assert not {"email", "first_name", "last_name"} & set(header), csv.name
    shown = 0
    for page in q3.glob("*.html"):
        text = page.read_text("utf-8")
        assert "<script" not in text.lower(), page.name
        shown += text.count("&lt;script&gt;alert(1)&lt;/script&gt;")
    assert shown > 0                                      # the campaign name is displayed, as text
    index = (q3 / "index.html").read_text()
    for p in q3.glob("*.html"):
        if p.name != "index.html":
            assert f'href="{p.name}"' in index
    # the summary opens the index; the list of periods links this one
    assert index.index("Executive summary") < index.index("<h2>Pages</h2>") and "Key numbers." in index
    periods = (out / "index.html").read_text()
    assert "Quarterly ABM report: Q3 2026" in periods and 'href="2026Q3/index.html"' in periods


# ------------------------------------------------------------------ parallel runner (dependency order)
def test_notebook_dependencies_follow_the_table():
    nbs = [Path(f"{n}_x.ipynb") for n in ("01", "02", "03", "04", "05")]
    deps = report.notebook_dependencies(nbs)
    # 05 opens with the summary of 01-04's findings: it waits for 03 and 04
    assert deps == {"01_x": (), "02_x": ("01_x",), "03_x": ("02_x",), "04_x": ("02_x",),
                    "05_x": ("02_x", "03_x", "04_x")}
    # --only 03,05: 02 and 04 ran in the last full run, so 05 waits only for 03
    assert report.notebook_dependencies([nbs[2], nbs[4]]) == {"03_x": (), "05_x": ("03_x",)}
    # a notebook missing from the table waits for everything before it, and everything after waits for it
    d = report.notebook_dependencies([Path("00_setup.ipynb"), *nbs, Path("06_extra.ipynb")])
    assert d["00_setup"] == () and d["01_x"] == ("00_setup",) and d["03_x"] == ("00_setup", "02_x")
    assert d["06_extra"] == ("00_setup", "01_x", "02_x", "03_x", "04_x", "05_x")


def _timed_nb(path: Path, number: str, log: Path, seconds: float, fail_flag: Path | None = None) -> Path:
    """A stand-in notebook that appends ``{"nb", "event", "t"}`` lines to ``log`` when its
    code starts and ends (and raises first when ``fail_flag`` exists)."""
    fail = (f"if pathlib.Path({str(fail_flag)!r}).exists():\n"
            f"    raise RuntimeError('notebook {number} failed on purpose')\n") if fail_flag else ""
    code = ("import json, pathlib, time\n"
            f"def note(event):\n"
            f"    with open({str(log)!r}, 'a') as f:\n"
            f"        f.write(json.dumps({{'nb': '{number}', 'event': event, 't': time.time(), 'tag': tag}}) + '\\n')\n"
            "note('start')\n" + fail +
            f"time.sleep({seconds})\n"
            "pathlib.Path(output_dir, 'findings').mkdir(parents=True, exist_ok=True)\n"
            f"pathlib.Path(output_dir, 'findings', '{path.stem}.json').write_text(json.dumps({{'headline': 'nb {number} <ok>'}}))\n"
            "note('end')")
    return _nb(path, [new_markdown_cell(f"# Notebook {number}"), new_code_cell(code)],
               "data_dir = None\noutput_dir = None\ntag = 'default'")


@pytest.mark.notebook
def test_parallel_runner_respects_dependencies_and_fails_atomically(tmp_path, capsys):
    nb_dir, log, flag = tmp_path / "nbs", tmp_path / "log.jsonl", tmp_path / "fail-04"
    nb_dir.mkdir()
    names = {"01": "01_clean", "02": "02_resolve", "03": "03_attr", "04": "04_progress", "05": "05_kpis"}
    for n, stem in names.items():
        _timed_nb(nb_dir / f"{stem}.ipynb", n, log, 0.3 if n in ("01", "02") else 3.0,
                  fail_flag=flag if n == "04" else None)
    data, out = _data(tmp_path), tmp_path / "reports"
    pf = tmp_path / "params.yaml"
    pf.write_text("04: {tag: four}\n")

    assert _run(nb_dir, data, out, quarter="2026Q3", jobs=2, params_file=str(pf)) == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    t = {(e["nb"], e["event"]): e["t"] for e in events}
    assert len(t) == 10, events
    assert t["02", "start"] >= t["01", "end"]                        # 01 → 02
    for n in ("03", "04", "05"):                                      # 02 → {03, 04, 05}
        assert t[n, "start"] >= t["02", "end"], n
    spans = sorted((t[n, "start"], t[n, "end"]) for n in ("03", "04", "05"))
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans   # two of them ran at the same time
    assert all(sum(s[0] < e[0] < s[1] for s in spans) <= 1 for e in spans)  # never more than 2 at once
    assert {e["tag"] for e in events if e["nb"] == "04"} == {"four"}    # per-notebook parameters
    q3 = out / "2026Q3"
    manifest = json.loads((q3 / "run.json").read_text())
    assert manifest["jobs"] == 2 and set(manifest["seconds"]) == set(names.values())
    assert set(manifest["html_seconds"]) == set(names.values()) and manifest["parameters"]["04_progress"]["tag"] == "four"
    index = (q3 / "index.html").read_text()
    assert "Headline findings" in index and "nb 05 &lt;ok&gt;" in index   # findings of 02-05, escaped
    for stem in names.values():
        assert (q3 / f"{stem}.html").exists() and f'href="{stem}.html"' in index

    # a failure in one of the parallel notebooks: exit code 1 naming it and its cell, the
    # previous report untouched, the partial notebook kept aside
    before = {p: p.read_bytes() for p in q3.rglob("*") if p.is_file()}
    flag.write_text("x")
    capsys.readouterr()
    assert _run(nb_dir, data, out, quarter="2026Q3", jobs=2) == 1
    err = capsys.readouterr().err
    assert "FAILED in notebook 04_progress.ipynb: cell [" in err and "notebook 04 failed on purpose" in err, err
    assert "also FAILED" not in err
    partial = out / ".failed" / "2026Q3" / "report" / "04_progress.ipynb"
    assert str(partial) in err and partial.exists()
    assert {p: p.read_bytes() for p in q3.rglob("*") if p.is_file()} == before
    assert not list(out.glob(".staging-*"))
