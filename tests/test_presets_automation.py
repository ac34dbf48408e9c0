"""Marketo and Account Engagement (Pardot) presets on small hand-made exports: every
expected touch with its hand-derived channel and type, every other row in the ledger with
its reason, picklist gaps reported, and the same result from a DuckDB copy."""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from abmkit.adapters import PicklistWarning
from abmkit.clean import clean_exports
from abmkit.io.csv import read_file

DATA = Path(__file__).parent / "data"


def _clean(vendor, source=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        return clean_exports(source or DATA / f"{vendor}_export", vendor)


def _touches(r):
    t = r.dataset.touchpoints
    return {row.touchpoint_id: (row.contact_id, row.channel, row.touch_type, row.campaign_id)
            for row in t.itertuples()}


def test_marketo_activities_become_touches_by_type_utm_and_program():
    r = _clean("marketo")
    assert _touches(r) == {
        "g1": ("101", "email", "email_open", None),          # 10 Open Email
        "g2": ("101", "email", "email_click", None),         # 11 Click Email
        "g3": ("101", "paid_social", "visit", None),         # 1 Visit Webpage, utm linkedin / paid
        "g4": ("102", "display", "form_fill", "P2"),         # 2 Fill Out Form, no UTM: program channel
        "g5": ("102", "webinar", "webinar_attended", "P1"),  # 104 status Attended, program Webinar
        "g11": ("101", "webinar", "webinar_registered", "P1"),
    }
    reasons = dict(zip(r.rejects.loc[r.rejects.table == "touchpoints", "source_row"],
                       r.rejects.loc[r.rejects.table == "touchpoints", "reason"].str.split(":").str[0]))
    assert reasons == {6: "not_a_touch", 7: "not_a_touch", 8: "unmapped_channel", 9: "unknown_activity_type",
                       10: "no_person"}
    assert r.summary.set_index("table").loc["touchpoints", ["rows_in", "rows_clean", "rows_rejected"]].tolist() == [11, 6, 5]
    assert r.summary["conservation_ok"].all()
    # contacts carry the synced Salesforce account; accounts and opportunities come from the CRM files
    acc = r.dataset.contacts.set_index("contact_id")["crm_account_id"]
    assert acc.loc["101"].startswith("0015g00000Acme1") and pd.isna(acc.loc["103"])
    assert len(r.dataset.accounts) == 4 and len(r.dataset.opportunities) == 3
    # the unknown custom activity type is reported with the file to fix, never guessed
    un = r.unmapped
    assert "100042" in set(un["label"].astype(str))
    assert un.loc[un["label"].astype(str) == "100042", "file"].iloc[0].endswith("marketo_activity_type.yaml")


def test_pardot_visitor_activities():
    r = _clean("pardot")
    assert _touches(r) == {
        "1": ("5001", "email", "email_open", None),           # 11 Open
        "2": ("5001", "email", "email_click", None),          # 1 Click on an email (email_id set)
        "3": ("5001", "webinar", "webinar_attended", "C1"),   # 24 Attended Webinar
        "4": ("5002", "direct", "form_fill", "C2"),           # 4 Success, campaign channel Website -> direct
        "8": ("5002", "organic_social", "click", None),       # 26 Social Post Click
    }
    rej = r.rejects[r.rejects.table == "touchpoints"].set_index("source_row")["reason"]
    assert rej.loc[5].startswith("not_a_touch: 6 (Email)")
    assert rej.loc[6].startswith("unmapped_channel: 20 (Visit)")
    assert rej.loc[7].startswith("unknown_activity_type: 22 (Olark Chat)")
    assert r.summary["conservation_ok"].all()


def test_a_copy_of_the_type_table_decides(tmp_path):
    """A user's own activity-type table (picklists:) changes the result: Olark chats count."""
    import yaml
    from abmkit.clean.colmap import presets_dir
    preset = yaml.safe_load((presets_dir() / "pardot.yaml").read_text())
    table = yaml.safe_load((presets_dir() / "pardot_activity_type.yaml").read_text())
    table[22] = {"touch_type": "form_fill", "channel": "chat"}
    (tmp_path / "types.yaml").write_text(yaml.safe_dump(table))
    preset["picklists"]["activity_type"] = "types.yaml"
    (tmp_path / "pardot.yaml").write_text(yaml.safe_dump(preset))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(DATA / "pardot_export", tmp_path / "pardot.yaml")
    assert _touches(r)["7"] == ("5002", "chat", "form_fill", None)


def test_marketo_from_a_database(tmp_path):
    pytest.importorskip("duckdb")
    from abmkit.sources.sql import write_tables
    tables = {p.stem: read_file(p).data.astype(object) for p in (DATA / "marketo_export").glob("*.csv")}
    write_tables(f"duckdb:///{tmp_path / 'mkto.duckdb'}", tables)
    csv, db = _clean("marketo"), _clean("marketo", f"duckdb:///{tmp_path / 'mkto.duckdb'}")
    for name, df in csv.dataset.tables().items():
        pd.testing.assert_frame_equal(df, db.dataset.tables()[name], check_dtype=True)


def test_validate_names_the_preset_files(capsys):
    from abmkit.cli import main
    assert main(["validate", "--preset", "marketo", str(DATA / "marketo_export")]) == 0
    out = capsys.readouterr().out
    assert "Activities.csv" in out and "Leads.csv" in out
