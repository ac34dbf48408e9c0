"""Training track (abmkit.training): every exercise's checker accepts the right answer and
rejects a wrong one on the small generated sample; the right answers equal peer computations;
the notebooks end with their exercise cells, which run harmlessly unanswered."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import abmkit
from abmkit import attribution, clean, kpis, progression, training, uplift
from abmkit.period import resolve_period

PERIOD = resolve_period(quarter="2026Q3")
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def data(resolved_sample_dir):
    return abmkit.load_resolved(resolved_sample_dir)


@pytest.fixture(scope="module")
def cleaned(small_sample_dir):
    raw = Path(small_sample_dir) / "raw"
    return clean.clean_exports(raw, raw / "column_map.yaml")


@pytest.fixture(scope="module")
def context(data, cleaned):
    history = progression.stage_history(data, as_of=PERIOD.end)
    influence = uplift.campaign_influence(data, history=history)
    return {"01": {"result": cleaned},
            "02": {"data": data, "period": PERIOD},
            "03": {"data": data, "period": PERIOD},
            "04": {"data": data, "period": PERIOD, "influence": influence, "history": history},
            "05": {"data": data, "period": PERIOD}}


def _wrong(ex, right):
    """A wrong answer of the right type."""
    if ex.kind == "label":
        return "certainly_not_" + sorted(right)[0]
    if ex.kind == "count":
        return right + 1
    if ex.kind == "share":
        return right + 0.05 if right < 0.9 else right - 0.05
    return right * 1.5 + 1


@pytest.mark.parametrize("exercise_id", list(training.EXERCISES))
def test_checker_accepts_the_right_answer_and_rejects_a_wrong_one(exercise_id, context):
    ex = training.EXERCISES[exercise_id]
    ctx = context[ex.notebook]
    right = training.expected(exercise_id, **ctx)
    answer = sorted(right)[-1] if ex.kind == "label" else right
    ok = training.check(exercise_id, answer, **ctx)
    assert ok.correct is True and bool(ok) and "right" in str(ok)
    bad = training.check(exercise_id, _wrong(ex, right), **ctx)
    assert bad.correct is False and not bad and "Hint" in str(bad)
    # the hint (fixed text), never the answer
    assert bad.message in (f"not quite. Hint: {ex.hint}", f"not quite: your answer is too high. Hint: {ex.hint}",
                           f"not quite: your answer is too low. Hint: {ex.hint}")
    if ex.kind == "label":   # labels: case, spaces and punctuation do not matter
        assert training.check(exercise_id, "  " + answer.upper().replace("_", " ") + " ", **ctx).correct
    if ex.kind == "share":   # a share may be given as a percent
        assert training.check(exercise_id, round(100 * right, 3), **ctx).correct
        assert training.check(exercise_id, f"{100 * right:.3f}%", **ctx).correct


def test_right_answers_equal_peer_computations(context, data, cleaned):
    c2, c4 = context["02"], context["04"]
    # 01: the quality table
    q = cleaned.to_frame().set_index("table")
    assert training.expected("01.merged", result=cleaned) == int(q["rows_merged"].sum())
    top = cleaned.rejects["reason_code"].value_counts()
    assert training.expected("01.top_reason", result=cleaned) == {top.index[0]}
    # 02: MQA dates of the resolved dataset / an MQA rule with 2 decision makers
    mqa = abmkit.engagement.mqa(data, as_of=PERIOD.end)
    assert training.expected("02.new_mqas", **c2) == len(mqa.new_mqas(PERIOD.start, PERIOD.end))
    two = abmkit.prepare(data.tables, mqa=replace(data.mqa_rule, min_decision_makers=2), as_of=PERIOD.end)
    dates = two.mqa_dates["mqa_at"]
    assert training.expected("02.new_mqas_two_dm", **c2) == int(((dates >= PERIOD.start) & (dates < PERIOD.end)).sum())
    ca = data.contact_accounts
    assert training.expected("02.match_rate", **c2) == pytest.approx(ca["account_id"].notna().mean())
    # 03: the comparison's channel shares (what the notebook shows)
    cmp = attribution.compare_models(data, ["first_touch", "last_touch", "linear"], n_boot=2, seed=0,
                                     start=PERIOD.start, end=PERIOD.end)
    s = cmp.shares
    assert training.expected("03.top_channel_linear", **c2) == {str(s["linear"].idxmax())}
    assert training.expected("03.last_over_first", **c2) == {str((s["last_touch"] - s["first_touch"]).idxmax())}
    # 04: brute force on the stage history; the influence table
    h = c4["history"].table
    aware = set(h.loc[h["stage"] == "aware", "account_id"])
    engaged = set(h.loc[h["stage"] == "engaged", "account_id"])
    assert training.expected("04.aware_engaged_rate", **c4) == pytest.approx(len(aware & engaged) / len(aware))
    t = c4["influence"].table
    best = t[(t["level"] == "campaign") & (t["q_value"] < 0.05) & (t["adj_diff"] > 0)].sort_values("adj_diff").iloc[-1]
    assert training.expected("04.best_campaign", **c4) == {best["campaign_id"], best["campaign_name"]}
    # 05: the KPI table (the tiles)
    overall = kpis.kpi_table(data, quarter="2026Q3").overall.set_index("kpi")["value"]
    assert training.expected("05.market_reach", **c2) == pytest.approx(overall["market_reach"])
    assert training.expected("05.new_mqas_targets", **c2) == overall["new_mqas"]
    funnel = kpis.account_funnel(data, period=PERIOD)
    lost = (funnel["accounts"].shift(1) - funnel["accounts"]).iloc[1:]
    assert training.expected("05.biggest_loss", **c2) == {funnel["step"][lost.idxmax()]}


def test_unanswered_exercise_computes_nothing():
    for exercise_id in training.EXERCISES:   # no data at all: it must not even try
        r = training.check(exercise_id, None)
        assert r.correct is None and "not answered yet" in str(r)
    with pytest.raises(TypeError, match="data="):
        training.check("02.new_mqas", 3)
    with pytest.raises(KeyError):
        training.check("02.no_such_exercise", None)


def test_exercise_on_data_that_cannot_support_it_says_so(data):
    no_persona = data.tables
    contacts = no_persona.contacts.assign(persona=None)
    ds = abmkit.Dataset.from_frames(**{**no_persona.tables(), "contacts": contacts})
    flat = abmkit.prepare(ds, mapping=data.contact_accounts, as_of=PERIOD.end)
    r = training.check("02.new_mqas_two_dm", 5, data=flat, period=PERIOD)
    assert r.correct is None and "persona" in r.message


def test_notebooks_end_with_their_exercises():
    for num in ("01", "02", "03", "04", "05"):
        path = next(NOTEBOOKS.glob(f"{num}_*.ipynb"))
        cells = json.loads(path.read_text("utf-8"))["cells"]
        tagged = [i for i, c in enumerate(cells) if "exercise" in c.get("metadata", {}).get("tags", [])]
        # one block, after the notebook's own content (its findings are saved before the exercises)
        assert tagged and tagged == list(range(tagged[0], tagged[-1] + 1)), f"{path.name}: exercise cells split"
        saves = [i for i, c in enumerate(cells) if "save_findings(" in "".join(c["source"])]
        assert saves and max(saves) < tagged[0], f"{path.name}: exercises before the findings are saved"
        checks = ["".join(c["source"]) for c in cells[tagged[0]:] if c["cell_type"] == "code"]
        ids = [s.split('training.check("', 1)[1].split('"', 1)[0] for s in checks]
        assert 2 <= len(ids) <= 4
        assert ids == training.exercises(num)["id"].tolist()
        assert all("answer = None" in s for s in checks)


def test_exercise_cells_are_left_out_of_the_html_page(tmp_path):
    import nbformat

    from abmkit import report

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Page\n\nkept for stakeholders"),
        nbformat.v4.new_markdown_cell("**Exercise 1.** SECRET_QUESTION", metadata={"tags": ["exercise"]}),
        nbformat.v4.new_code_cell("answer = None", metadata={"tags": ["exercise"]},
                                  outputs=[nbformat.v4.new_output("stream", text="SECRET_CHECK not answered yet")])])
    src = tmp_path / "x.ipynb"
    nbformat.write(nb, str(src))
    html_text = report.export_html(src, tmp_path / "x.html").read_text("utf-8")
    assert "kept for stakeholders" in html_text
    assert "SECRET_QUESTION" not in html_text and "SECRET_CHECK" not in html_text
