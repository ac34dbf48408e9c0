"""Across periods: the index of every published period (``<out>/index.html``) with its
headline numbers, links between periods, and the published-period listing."""
from __future__ import annotations

import json

from abmkit import report
from abmkit.outputs import save_findings
from abmkit.publish import new_run_id, publish, published_labels


def _publish(out, label, start, end, numbers, tmp_path):
    src, data = tmp_path / f"src-{label}", tmp_path / f"data-{label}"
    src.mkdir()
    data.mkdir()
    (src / "index.html").write_text("x")
    (src / "05_kpis.html").write_text("x")
    (src / "run.json").write_text(json.dumps({"label": label, "start": start, "end": end, "run_date": f"run {label}"}))
    save_findings({"headline_numbers": numbers}, src, "05_kpis")
    publish(out, label, new_run_id(), src, data)


def test_reports_index_lists_every_period_newest_first(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    reach = lambda v, c: {"kpi": "market_reach", "label": "Market reach", "value": v, "change": c, "note": ""}  # noqa: E731
    _publish(out, "2026Q2", "2026-04-01", "2026-07-01", [reach("88.0%", "+1.0 pts")], tmp_path)
    _publish(out, "2026Q3", "2026-07-01", "2026-10-01",
             [reach("92.9%", "unchanged"), {"kpi": "win_rate", "label": "Win rate", "value": "n/a", "change": "",
                                             "note": "no closed opportunity"}], tmp_path)
    _publish(out, "2026-03-01_2026-03-29", "2026-03-01", "2026-03-29", [reach("<b>1%</b>", "")], tmp_path)
    (out / "a-folder-that-is-no-report").mkdir()
    assert published_labels(out) == {"2026Q2", "2026Q3", "2026-03-01_2026-03-29"}

    text = report.write_reports_index(out).read_text()
    q3, q2, four = (text.index(t) for t in ("Quarterly ABM report: Q3 2026", "Quarterly ABM report: Q2 2026",
                                             "ABM report: 1 Mar to 28 Mar 2026 (28 days)"))
    assert q3 < q2 < four                                             # newest first (by period end)
    assert "92.9%<br><small>unchanged</small>" in text and "88.0%<br><small>+1.0 pts</small>" in text
    assert 'title="no closed opportunity">n/a' in text               # n/a with its reason
    assert text.count('<td class="num missing">n/a</td>') == 2        # Q2 and the 28-day run have no win rate
    assert 'href="2026Q3/index.html"' in text and 'href="2026Q3/05_kpis.html"' in text
    assert "&lt;b&gt;1%&lt;/b&gt;" in text and "<b>1%" not in text     # saved text is escaped
    assert "a-folder-that-is-no-report" not in text


def test_reports_index_without_reports(tmp_path):
    text = report.write_reports_index(tmp_path).read_text()
    assert "No report is published here yet." in text
