import pandas as pd
import pytest

from abmkit.domains import free_mail_domains, registrable_domain, split_email
from abmkit.journeys import account_touches
from abmkit.outputs import load_findings, mask_ids, neutralise_formulas, save_findings, save_table
from abmkit.period import resolve_period
from abmkit.prepared import prepare
from abmkit.schema import Dataset


def test_registrable_domain_handles_urls_subdomains_suffixes_and_idn():
    got = registrable_domain(pd.Series(["https://Mail.ACME.co.uk/about?x=1", "www.b.com", None,
                                        "shop.example.com.au:8080", "münchen.de", "localhost", ""]))
    assert got.tolist() == ["acme.co.uk", "b.com", None, "example.com.au", "xn--mnchen-3ya.de", None, None]


def test_split_email_validity_and_unicode_local_part():
    out = split_email(pd.Series(["Lena.Müller@Sub.Acme.DE", "no-at-sign", "a@b@c.com", " x@GMAIL.com ", None]))
    assert out["email_domain"].tolist() == ["acme.de", None, None, "gmail.com", None]
    assert out["email"].tolist()[0] == "Lena.Müller@sub.acme.de"
    assert out["email"].tolist()[3] == "x@gmail.com"
    assert out["email_valid"].tolist() == [True, False, False, True, False]
    assert "gmail.com" in free_mail_domains() and "acme.de" not in free_mail_domains()


def test_periods_quarter_and_custom():
    q = resolve_period(quarter="2026q1")
    assert (q.label, q.previous.label, q.days) == ("2026Q1", "2025Q4", 90)
    p = resolve_period(start="2026-03-01", end="2026-03-29")
    assert p.days == 28 and p.previous.start == pd.Timestamp("2026-02-01", tz="UTC")
    ts = pd.Series(pd.to_datetime(["2026-02-28T23:59:59Z", "2026-03-01T00:00:00Z", "2026-03-29T00:00:00Z"]))
    assert p.contains(ts).tolist() == [False, True, False]
    with pytest.raises(ValueError, match="2026Q3"):
        resolve_period(quarter="Q3-2026")
    with pytest.raises(ValueError, match="after start"):
        resolve_period(start="2026-03-01", end="2026-02-01")


def test_save_table_masks_personal_data_and_neutralises_formulas(tmp_path):
    df = pd.DataFrame({"contact_id": ["c1", "c2"], "email": ["a@b.com", "c@d.com"], "first_name": ["Ann", "Bo"],
                       "campaign_name": ["=HYPERLINK(\"x\")", "-5 promo"], "amount": [-5.0, 3.0]})
    text = save_table(df, tmp_path, "t").read_text()
    assert "a@b.com" not in text and "Ann" not in text and ",c1," not in text
    assert "'=HYPERLINK" in text and "'-5 promo" in text and "-5.0" in text  # numbers stay numbers
    assert mask_ids(pd.Series(["c1"])).iloc[0] == mask_ids(pd.Series(["c1", "c2"])).iloc[0]
    assert save_table(df, None, "t") is None
    assert neutralise_formulas(pd.DataFrame({"x": ["@SUM(A1)", "ok"]}))["x"].tolist() == ["'@SUM(A1)", "ok"]


def test_findings_roundtrip(tmp_path):
    import numpy as np
    save_findings({"n": np.int64(3), "share": np.float64(0.5)}, tmp_path, "02_x")
    assert load_findings(tmp_path, "02_x") == {"n": 3, "share": 0.5}
    assert load_findings(tmp_path, "missing") == {}


def test_account_touches_resolves_and_keeps_unattributable():
    ds = Dataset.from_frames(touchpoints=pd.DataFrame({
        "touchpoint_id": ["t1", "t2", "t3"], "occurred_at": ["2026-01-01"] * 3,
        "channel": ["email", "display", "email"], "touch_type": ["email_click", "impression", "email_open"],
        "contact_id": ["c1", None, "c9"], "account_id": [None, "a1", None]}))
    out = account_touches(prepare(ds, mapping=pd.DataFrame({"contact_id": ["c1", "c9"], "account_id": ["a2", None]})))
    assert out["account_id"].tolist() == ["a2", "a1", None]
    assert out["account_source"].tolist() == ["contact", "touch", "unattributable"]
    assert len(out) == 3
