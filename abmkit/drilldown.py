"""Drill-down: from the report's headline numbers to the opportunities, campaigns and
accounts behind them, in names people act on.

Three views, each a pure function of the resolved dataset (and of the campaign-influence
and MQA results the notebooks already computed), plus a small HTML writer:

* :func:`opportunity_campaign_influence` — one row per opportunity created in the
  period and campaign that touched its account in the lookback before the opportunity
  was created (the journey window of :mod:`abmkit.attribution`); opportunities no
  campaign touched keep one row with ``campaign_id`` empty, so none is dropped;
* :func:`campaign_reach` — the accounts a campaign touched, with their names and stage;
  :func:`campaign_pages` writes one page per campaign with a significant effect (accounts
  it reached, progression of the accounts it reached and of comparable ones it did not,
  and its credit under the position-based attribution models);
* :func:`account_list` — MQA accounts with their names, stage, MQA date and the contacts
  to call (masked ids, resolvable by sales through the private lookup of
  :func:`abmkit.masking.resolve_ids`); :func:`account_pages` writes it as a page.

Pages are self-contained HTML (inline CSS, no script, no network, a Content-Security-Policy
that forbids scripts); every text from the data is escaped. Account and campaign names are
not personal data; contacts appear only as masked ids. Files land in the report folder:
``drilldown/campaigns.html``, ``drilldown/campaign_<id>.html``, ``drilldown/accounts.html``
and the CSV tables ``tables/opportunity_campaign_influence.csv``, ``tables/campaign_reach.csv``,
``tables/account_list.csv``, ``tables/account_contacts_to_call.csv``.

Example
-------
>>> mqa_status(pd.Series([True, True]), pd.Series([True, False])).tolist()
['new MQA in the period, still MQA at period end', 'new MQA in the period, no longer MQA at period end']
"""
from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .period import format_period   # one human name per period (Q3 2026, March 2026, ...)
from .results import Result
from .timeutil import utc_timestamp

__all__ = ["FOLDER", "CAMPAIGNS_PAGE", "ACCOUNTS_PAGE", "POSITION_MODELS", "opportunity_campaign_influence",
           "campaign_reach", "significant_campaigns", "campaign_credit", "campaign_page_name", "mqa_status",
           "account_list", "contacts_to_call", "campaign_pages", "account_pages", "Pages", "render_page"]

#: sub-folder of the report folder holding the drill-down pages
FOLDER = "drilldown"
#: the list of significant campaigns (links to one page each)
CAMPAIGNS_PAGE = f"{FOLDER}/campaigns.html"
#: MQA accounts with names, stage, MQA date and contacts to call
ACCOUNTS_PAGE = f"{FOLDER}/accounts.html"
#: attribution models shown on a campaign page: the position-based ones (deterministic and
#: fast; notebook 03 adds Markov and Shapley with intervals)
POSITION_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped")
_MODEL_LABELS = {"first_touch": "First touch", "last_touch": "Last touch", "linear": "Linear",
                 "time_decay": "Time decay", "u_shaped": "U-shaped", "w_shaped": "W-shaped"}
_NO_CAMPAIGN = "(no campaign touch)"


# --------------------------------------------------------------------------- helpers
def _is_partitioned(data) -> bool:
    from .engine import is_partitioned
    return is_partitioned(data)


def _resolve(data):
    """``data`` resolved in memory, or the partitioned handle as it is (the views below
    run partition by partition on it: :mod:`abmkit.scale.facts`)."""
    from .prepared import resolve
    return data if _is_partitioned(data) else resolve(data)


def _on_partitions(parts, fn, which, *args) -> list:
    """``fn(<partition as a resolved dataset>, *args)`` on the partitions ``which``
    (all when None), non-empty results gathered."""
    from .scale.facts import map_partitions
    which = range(parts.npartitions) if which is None else which
    res = map_partitions(parts, _part_view, which, fn, *args, desc=getattr(fn, "__name__", "drill-down").strip("_"))
    return [r for r in res if len(r)]


def _part_view(part, fn, *args):
    from .scale.kernels import _resolved
    return fn(_resolved(part, None), *args)


def _ids(values) -> np.ndarray:
    """Ids as plain objects (categorical touch account ids included)."""
    s = pd.Series(values)
    return s.astype(object).where(s.notna(), None).to_numpy(dtype=object)


def _names(data) -> pd.Series:
    acc = data.accounts
    return pd.Series(acc["account_name"].to_numpy(dtype=object), index=acc["account_id"].to_numpy(dtype=object))


def _campaign_info(data) -> pd.DataFrame:
    camp = data.campaigns
    cols = [c for c in ("campaign_id", "campaign_name", "channel") if c in camp.columns]
    return camp[cols].drop_duplicates("campaign_id")


def _stage_now(data, when, history=None) -> pd.Series:
    """account_id -> stage at ``when`` (empty when the stage history cannot be built)."""
    from . import progression
    try:
        if history is None:
            history = progression.stage_history(data, as_of=when)
        st = progression.stage_as_of(history, when)
    except Exception:   # the stage is context on these lists; without touches there is none
        return pd.Series(dtype=object)
    return pd.Series(st["stage"].astype(object).to_numpy(), index=st["account_id"].to_numpy(dtype=object))


def mqa_status(new_in_period: pd.Series, at_period_end: pd.Series) -> pd.Series:
    """Plain-language status of an MQA account: whether it qualified in the period and
    whether the rule still holds on the period's last day (an account that qualified in the
    period can have lost the status by its end: its decision makers went quiet). Either
    argument may be a single bool for every row.

    >>> mqa_status(True, pd.Series([False])).tolist()
    ['new MQA in the period, no longer MQA at period end']
    """
    index = next((v.index for v in (new_in_period, at_period_end) if isinstance(v, pd.Series)), None)
    n = len(index) if index is not None else len(np.atleast_1d(new_in_period))
    new, end = (np.broadcast_to(pd.Series(np.atleast_1d(v)).fillna(False).astype(bool).to_numpy(), (n,))
                if not isinstance(v, pd.Series) else v.fillna(False).astype(bool).to_numpy()
                for v in (new_in_period, at_period_end))
    out = np.where(new & end, "new MQA in the period, still MQA at period end",
                   np.where(new, "new MQA in the period, no longer MQA at period end",
                            np.where(end, "MQA at period end, qualified before the period",
                                     "qualified before the period, not MQA at period end")))
    return pd.Series(out, index=index, dtype=object)


def campaign_page_name(campaign_id) -> str:
    """File name of a campaign's page: ``campaign_<id>.html`` with the id reduced to
    letters, digits, ``-`` and ``_`` (ids come from the data: never a path), plus a short
    hash when that changed it (so two ids never share a page).

    >>> campaign_page_name("CMP003")
    'campaign_CMP003.html'
    >>> campaign_page_name("../x y").startswith("campaign_x_y-")
    True
    """
    text = str(campaign_id)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_.-")[:40] or "id"
    if slug != text:
        slug += "-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"campaign_{slug}.html"


# --------------------------------------------------------------------------- opportunity × campaign
def opportunity_campaign_influence(data, *, start=None, end=None, lookback_days: float = 365) -> pd.DataFrame:
    """Which campaigns touched each opportunity's account before it was created.

    One row per (opportunity created in ``[start, end)``, campaign with at least one touch
    on the opportunity's account in ``[created_at - lookback_days, created_at]``): the
    touches attribution counts in the opportunity's journey, grouped by campaign.
    Opportunities without such a campaign touch keep one row with an empty
    ``campaign_id`` and ``touches = 0``.

    Parameters
    ----------
    data : ResolvedDataset
        :func:`abmkit.prepare` output (touches already on their accounts).
    start, end : timestamp-like, optional
        Opportunities created in ``[start, end)`` (default: all).
    lookback_days : float
        Journey window before the opportunity's creation (attribution's default, 365).

    Returns
    -------
    DataFrame
        opportunity_id, account_id, account_name, created_at, amount, campaign_id,
        campaign_name, channel, touches, first_touch_at, last_touch_at; sorted by
        opportunity then touches (most first).

    Example
    -------
    >>> from abmkit.schema import Dataset
    >>> import abmkit
    >>> ds = Dataset.from_frames(
    ...     accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}),
    ...     touchpoints=pd.DataFrame({"touchpoint_id": ["t1", "t2"], "occurred_at": ["2026-01-05", "2026-03-01"],
    ...                               "channel": ["email", "email"], "touch_type": ["email_click"] * 2,
    ...                               "account_id": ["a1", "a1"], "campaign_id": ["k1", "k1"]}),
    ...     campaigns=pd.DataFrame({"campaign_id": ["k1"], "campaign_name": ["Spring mail"]}),
    ...     opportunities=pd.DataFrame({"opportunity_id": ["o1"], "account_id": ["a1"], "created_at": ["2026-02-01"],
    ...                                 "amount": [100.0]}))
    >>> t = opportunity_campaign_influence(abmkit.prepare(ds))
    >>> t[["opportunity_id", "account_name", "campaign_name", "touches"]].values.tolist()
    [['o1', 'Acme', 'Spring mail', 1]]
    """
    data = _resolve(data)
    opp = data.opportunities
    created = pd.to_datetime(opp["created_at"], utc=True)
    keep = created.notna().to_numpy()
    if start is not None:
        keep &= (created >= utc_timestamp(start)).to_numpy()
    if end is not None:
        keep &= (created < utc_timestamp(end)).to_numpy()
    if _is_partitioned(data):
        # each partition holds whole accounts: only those holding the period's opportunities run
        from .scale.facts import partitions_of_accounts
        which = partitions_of_accounts(data, opp.loc[keep, "account_id"])
        res = _on_partitions(data, _opportunity_campaign_influence, which, start, end, lookback_days)
        if not res:
            return opportunity_campaign_influence(_account_only(data), start=start, end=end,
                                                  lookback_days=lookback_days)
        out = pd.concat(res, ignore_index=True)
        return out.sort_values(["created_at", "opportunity_id", "touches", "campaign_id"],
                               ascending=[True, True, False, True], kind="stable", na_position="last",
                               ignore_index=True)
    amount = opp["amount"] if "amount" in opp.columns else pd.Series(np.nan, index=opp.index)
    o = pd.DataFrame({"opportunity_id": _ids(opp["opportunity_id"])[keep], "account_id": _ids(opp["account_id"])[keep],
                      "created_at": created[keep].reset_index(drop=True),
                      "amount": pd.to_numeric(amount, errors="coerce")[keep].to_numpy(dtype=float)})
    tp = data.touches
    has = tp["campaign_id"].notna().to_numpy() if "campaign_id" in tp.columns else np.zeros(len(tp), bool)
    t = pd.DataFrame({"account_id": _ids(tp["account_id"])[has], "campaign_id": _ids(tp["campaign_id"])[has],
                      "occurred_at": pd.to_datetime(tp["occurred_at"], utc=True)[has].reset_index(drop=True)})
    t = t[t["account_id"].isin(set(o["account_id"].dropna()))]
    pairs = o[["opportunity_id", "account_id", "created_at"]].merge(t, on="account_id", how="inner")
    window = pd.Timedelta(days=float(lookback_days))
    pairs = pairs[(pairs["occurred_at"] <= pairs["created_at"]) & (pairs["occurred_at"] >= pairs["created_at"] - window)]
    grouped = (pairs.groupby(["opportunity_id", "campaign_id"], sort=False)["occurred_at"]
               .agg(touches="size", first_touch_at="min", last_touch_at="max").reset_index())
    out = o.merge(grouped, on="opportunity_id", how="left")
    out["touches"] = out["touches"].fillna(0).astype(np.int64)
    out["account_name"] = out["account_id"].map(_names(data))
    info = _campaign_info(data)
    out = out.merge(info, on="campaign_id", how="left")
    for c in ("campaign_name", "channel"):
        if c not in out.columns:
            out[c] = None
    out = out.sort_values(["created_at", "opportunity_id", "touches", "campaign_id"],
                          ascending=[True, True, False, True], kind="stable", na_position="last")
    return out[["opportunity_id", "account_id", "account_name", "created_at", "amount", "campaign_id", "campaign_name",
                "channel", "touches", "first_touch_at", "last_touch_at"]].reset_index(drop=True)


def _opportunity_campaign_influence(data, start, end, lookback_days):
    return opportunity_campaign_influence(data, start=start, end=end, lookback_days=lookback_days)


def _account_only(parts):
    """The account-sized tables of a partitioned dataset, without touches (in memory)."""
    from .scale.facts import account_view
    return account_view(parts)


# --------------------------------------------------------------------------- campaigns
def significant_campaigns(influence, alpha: float | None = None) -> pd.DataFrame:
    """Campaign rows of a campaign-influence result (:func:`abmkit.uplift.campaign_influence`)
    whose q-value is below ``alpha`` (default: the result's own), largest effect first;
    positive and negative effects alike."""
    table = influence.table if hasattr(influence, "table") else influence
    if alpha is None:
        alpha = getattr(influence, "params", {}).get("alpha", 0.05)
    if not len(table) or "level" not in table.columns:
        return table.iloc[0:0]
    sig = table[(table["level"] == "campaign") & (table["q_value"] < alpha)]
    effect = sig["adj_diff"].where(sig["adj_diff"].notna(), sig["diff"])
    return sig.assign(_e=effect.abs()).sort_values("_e", ascending=False, kind="stable").drop(columns="_e")


def campaign_reach(data, campaign_ids=None, *, start=None, end=None, history=None) -> pd.DataFrame:
    """The accounts each campaign touched, with names and their stage at ``end``.

    Parameters
    ----------
    data : ResolvedDataset
    campaign_ids : list, optional
        Campaigns to list (default: all with touches).
    start, end : timestamp-like, optional
        Touches in ``[start, end)``; the stage is read at ``end`` (default: the data end).
    history : StageHistory, optional
        Stage history to read the stage from (default: built from ``data``).

    Returns
    -------
    DataFrame
        campaign_id, account_id, account_name, tier, industry, touches, contacts
        (distinct contacts touched), first_touch_at, last_touch_at, stage; by campaign,
        most touches first.
    """
    data = _resolve(data)
    if _is_partitioned(data):   # a campaign's accounts can be anywhere: every partition counts its own
        res = _on_partitions(data, _reach_counts, None, campaign_ids, start, end)
        out = pd.concat(res, ignore_index=True) if res else _reach_counts(_account_only(data), campaign_ids, start, end)
    else:
        out = _reach_counts(data, campaign_ids, start, end)
    acc = data.accounts.drop_duplicates("account_id").set_index("account_id")
    out["account_name"] = out["account_id"].map(acc["account_name"])
    for c in ("tier", "industry"):
        out[c] = out["account_id"].map(acc[c]) if c in acc.columns else None
    when = utc_timestamp(end) if end is not None else data.data_end
    out["stage"] = out["account_id"].map(_stage_now(data, when, history)) if len(out) else None
    out = out.sort_values(["campaign_id", "touches", "account_id"], ascending=[True, False, True], kind="stable")
    return out[["campaign_id", "account_id", "account_name", "tier", "industry", "touches", "contacts",
                "first_touch_at", "last_touch_at", "stage"]].reset_index(drop=True)


def _reach_counts(data, campaign_ids, start, end) -> pd.DataFrame:
    """Per campaign and account it touched: touches, distinct contacts, first and last
    touch (accounts are whole in a partition, so a partition's rows are final)."""
    tp = data.touches
    t_at = pd.to_datetime(tp["occurred_at"], utc=True)
    keep = tp["campaign_id"].notna().to_numpy() & tp["account_id"].notna().to_numpy()
    if start is not None:
        keep &= (t_at >= utc_timestamp(start)).to_numpy()
    if end is not None:
        keep &= (t_at < utc_timestamp(end)).to_numpy()
    t = pd.DataFrame({"campaign_id": _ids(tp["campaign_id"])[keep], "account_id": _ids(tp["account_id"])[keep],
                      "contact_id": _ids(tp["contact_id"])[keep] if "contact_id" in tp.columns else None,
                      "occurred_at": t_at[keep].reset_index(drop=True)})
    if campaign_ids is not None:
        t = t[t["campaign_id"].isin(set(campaign_ids))]
    out = (t.groupby(["campaign_id", "account_id"], sort=False)
           .agg(touches=("occurred_at", "size"), contacts=("contact_id", "nunique"),
                first_touch_at=("occurred_at", "min"), last_touch_at=("occurred_at", "max")).reset_index())
    for c in ("first_touch_at", "last_touch_at"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out


def campaign_credit(data, *, start=None, end=None, models=POSITION_MODELS, milestone: str = "opportunity_created",
                    lookback_days: float = 365, half_life_days: float = 7) -> pd.DataFrame:
    """Pipeline (or revenue, for ``milestone="closed_won"``) credited to each campaign by
    each position-based attribution model, for the conversions in ``[start, end)``: the
    campaign × model table of notebook 03 (:func:`abmkit.attribution.campaign_table`),
    with the same journey window and default settings.

    Returns
    -------
    DataFrame
        campaign_id, campaign_name, channel, one column per model; an empty frame
        when there is nothing to attribute (no touches or no opportunity).
    """
    from . import attribution

    try:
        credits = attribution.attribute(data, list(models), milestone=milestone, lookback_days=lookback_days,
                                        half_life_days=half_life_days, start=start, end=end)
    except ValueError:
        return pd.DataFrame(columns=["campaign_id", "campaign_name", "channel", *models])
    value = "revenue_credit" if milestone == "closed_won" else "pipeline_credit"
    from .engine import is_lazy_frame
    # a lazy frame (partitions) is summed where it is: counting its rows would run it twice
    if not is_lazy_frame(credits) and not len(credits):
        return pd.DataFrame(columns=["campaign_id", "campaign_name", "channel", *models])
    return attribution.campaign_table(credits, data.campaigns, value=value)


# --------------------------------------------------------------------------- accounts
def contacts_to_call(mqa_result, account_ids=None) -> pd.DataFrame:
    """The most engaged contacts of MQA accounts (from :func:`abmkit.engagement.mqa`),
    with masked contact ids: account_id, rank, contact_id (masked), persona, touches,
    last_touch_at. Sales resolves the masked ids with :func:`abmkit.masking.resolve_ids`."""
    from .outputs import mask_ids

    top = mqa_result.top_contacts
    if account_ids is not None:
        top = top[top["account_id"].isin(set(account_ids))]
    out = top[["account_id", "rank", "contact_id", "persona", "touches", "last_touch_at"]].copy()
    out["contact_id"] = mask_ids(out["contact_id"]) if len(out) else out["contact_id"]
    return out.reset_index(drop=True)


def account_list(data, period, *, mqa_result=None, history=None, n_contacts: int = 3) -> pd.DataFrame:
    """MQA accounts that sales can act on: every account that became an MQA in the period
    or is one at its end, with name, segment, stage, MQA date, status and the contacts to
    call.

    Parameters
    ----------
    data : ResolvedDataset
    period : Period
        :func:`abmkit.period.resolve_period` output.
    mqa_result : MQAResult, optional
        :func:`abmkit.engagement.mqa` at the period end (computed when not given).
    history : StageHistory, optional
        For the stage (default: built from ``data``).
    n_contacts : int
        Contacts listed per account (most engaged first).

    Returns
    -------
    DataFrame
        account_id, account_name, industry, tier, is_target, stage, mqa_at (first time the
        rule held), became_mqa_in_period, mqa_at_period_end, status (plain text),
        decision_makers_engaged, score, missing_personas, contacts_to_call (masked ids,
        ";"-joined), contact_personas; new MQAs first, then by MQA date.
    """
    from . import engagement

    data = _resolve(data)
    if mqa_result is None:
        mqa_result = engagement.mqa(data, as_of=period.end)
    f = mqa_result.to_frame()
    start, end = utc_timestamp(period.start), utc_timestamp(period.end)
    new = f["mqa_at"].notna() & (f["mqa_at"] >= start) & (f["mqa_at"] < end)
    now = f["is_mqa"].fillna(False).astype(bool)
    f = f[new | now].copy()
    f["became_mqa_in_period"] = new[new | now]
    f["mqa_at_period_end"] = now[new | now]
    acc = data.accounts.drop_duplicates("account_id").set_index("account_id")
    f["account_name"] = f["account_id"].map(acc["account_name"])
    for c in ("industry", "tier"):
        f[c] = f["account_id"].map(acc[c]) if c in acc.columns else None
    f["is_target"] = f["account_id"].isin(set(data.target_account_ids()))
    f["stage"] = f["account_id"].map(_stage_now(data, end, history)) if len(f) else None
    f["status"] = mqa_status(f["became_mqa_in_period"], f["mqa_at_period_end"]).to_numpy()
    calls = contacts_to_call(mqa_result, f["account_id"])
    calls = calls[calls["rank"] <= n_contacts]
    joined = calls.groupby("account_id", sort=False).agg(
        contacts_to_call=("contact_id", lambda s: ";".join(map(str, s))),
        contact_personas=("persona", lambda s: ";".join("unknown" if pd.isna(v) else str(v) for v in s)))
    f = f.merge(joined, left_on="account_id", right_index=True, how="left")
    f["contacts_to_call"] = f["contacts_to_call"].fillna("")
    f["contact_personas"] = f["contact_personas"].fillna("")
    cols = ["account_id", "account_name", "industry", "tier", "is_target", "stage", "mqa_at", "became_mqa_in_period",
            "mqa_at_period_end", "status", "decision_makers_engaged", "score", "missing_personas",
            "contacts_to_call", "contact_personas"]
    for c in cols:
        if c not in f.columns:
            f[c] = None
    f = f.sort_values(["became_mqa_in_period", "mqa_at", "account_id"], ascending=[False, True, True], kind="stable")
    return f[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- HTML
_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem auto;max-width:72rem;
color:#222;line-height:1.45;padding:0 1rem}h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:1.6rem}
.meta{color:#555}.lead{background:#f6f8fa;border-left:4px solid #0969da;padding:.6rem 1rem}
.neg{color:#b35806}.pos{color:#1b7837}.wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4rem 0 1.2rem;font-size:.9rem;table-layout:auto;max-width:100%}
td,th{border-bottom:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
td.date{white-space:nowrap}
th{background:#f6f8fa;overflow-wrap:normal}td.num{text-align:right;white-space:nowrap}code{overflow-wrap:anywhere}
@media print{body{max-width:none;margin:0;font-size:10pt}a{color:#222;text-decoration:none}.wrap{overflow:visible}
tr{page-break-inside:avoid}}"""


def _e(v) -> str:
    return html.escape("" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v), quote=True)


def _fmt(v, kind: str) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "n/a"
    if kind == "pct":
        return f"{float(v):.0%}"
    if kind == "pct1":
        return f"{float(v):.1%}"
    if kind == "list":    # ";"-joined values (masked ids: never rewritten)
        return str(v).replace(";", ", ")
    if kind == "humanlist":
        return str(v).replace(";", ", ").replace("_", " ")
    if kind == "human":   # snake_case labels from the data model read as words; ids and names are left alone
        return str(v).replace("->", " → ").replace("_", " ")
    if kind == "pts":
        return f"{100 * float(v):+.1f} pts"
    if kind == "money":
        return f"{float(v):,.0f}"
    if kind == "int":
        return f"{int(v):,}"
    if kind == "date":
        return str(pd.Timestamp(v).date())
    if kind == "num":
        return f"{float(v):,.1f}"
    if kind == "q":
        return f"{float(v):.2g}" if float(v) >= 0.001 else "< 0.001"
    return str(v)


def _table(df: pd.DataFrame, columns: list[tuple[str, str, str]], *, max_rows: int | None = None) -> str:
    """An escaped HTML table: ``columns`` = (column, header, format kind)."""
    if not len(df):
        return '<p class="meta">none</p>'
    shown = df if max_rows is None else df.head(max_rows)
    num = {"pct", "pct1", "pts", "money", "int", "num", "q"}
    head = "".join(f"<th>{_e(h)}</th>" for _, h, _ in columns)
    rows = []
    for rec in shown.to_dict("records"):
        cells = "".join(f'<td class="num">{_e(_fmt(rec.get(c), k))}</td>' if k in num
                        else f'<td class="date">{_e(_fmt(rec.get(c), k))}</td>' if k == "date"
                        else f"<td>{_e(_fmt(rec.get(c), k))}</td>" for c, _, k in columns)
        rows.append(f"<tr>{cells}</tr>")
    more = (f'<p class="meta">First {max_rows:,} of {len(df):,} rows; the CSV has all of them.</p>'
            if max_rows is not None and len(df) > max_rows else "")
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{more}'


def render_page(title: str, body: list[str], *, subtitle: str = "") -> str:
    """A self-contained HTML page (inline CSS, no script, CSP). ``title`` and
    ``subtitle`` are escaped; ``body`` is trusted HTML built with escaped parts.

    >>> "<script>" in render_page("<script>", [])
    False
    """
    sub = f'<p class="meta">{_e(subtitle)}</p>' if subtitle else ""
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
                      f"<h1>{_e(title)}</h1>", sub, *body, "</body></html>"])


@dataclass
class Pages(Result):
    """Drill-down pages written into a report folder (none when ``output_dir`` is None).

    Attributes
    ----------
    pages : DataFrame
        ``title, path`` (path relative to the report folder) of each page written.
    tables : DataFrame
        The main table behind the pages (shown when no page was written).
    headline_text : str
    """
    pages: pd.DataFrame
    tables: pd.DataFrame
    headline_text: str = ""
    notes: list = field(default_factory=list)

    _summary_title = "Drill-down pages"

    @property
    def summary(self) -> pd.DataFrame:
        return self.pages

    @property
    def headline(self) -> str:
        return self.headline_text

    def _summary_metadata(self) -> dict:
        return {}

    def _repr_html_(self) -> str:
        parts = [f"<p><strong>{_e(self._title())}</strong>: {_e(self.headline_text)}</p>"]
        if len(self.pages):
            parts.append("<ul>" + "".join(f'<li><a href="{_e(p)}">{_e(t)}</a></li>'
                                          for t, p in zip(self.pages["title"], self.pages["path"])) + "</ul>")
        parts += [f'<p class="meta">{_e(n)}</p>' for n in self.notes]
        return "\n".join(parts)


def _not_applicable(reason: str) -> "Pages":
    out = Pages(pages=pd.DataFrame(columns=["title", "path"]), tables=pd.DataFrame(), headline_text=f"n/a — {reason}")
    out.not_applicable = reason
    return out


def _write(output_dir, rel: str, text: str) -> str:
    from .outputs import atomic_write_text
    atomic_write_text(Path(output_dir) / rel, text)
    return rel


def _effect_sentence(r: dict, names: dict) -> str:
    """One plain-language sentence for a campaign × transition row."""
    a, b = _fmt(r.get("from_stage", ""), "human"), _fmt(r.get("to_stage", ""), "human")
    eff = r.get("adj_diff") if pd.notna(r.get("adj_diff")) else r.get("diff")
    lo = r.get("adj_diff_low") if pd.notna(r.get("adj_diff")) else r.get("diff_low")
    hi = r.get("adj_diff_high") if pd.notna(r.get("adj_diff")) else r.get("diff_high")
    word = "more" if (eff or 0) > 0 else "fewer"
    return (f"Of the {_fmt(r.get('n_treated'), 'int')} accounts it reached soon after they became {a}, "
            f"{_fmt(r.get('rate_treated'), 'pct')} moved on to {b} within the outcome window, against "
            f"{_fmt(r.get('rate_control'), 'pct')} of {_fmt(r.get('n_control'), 'int')} comparable accounts it did not "
            f"reach. After adjusting for size, tier, industry, ICP fit and target status that is "
            f"{abs(100 * float(eff)):.1f} percentage points {word} (95% interval {_fmt(lo, 'pts')} to {_fmt(hi, 'pts')}; "
            f"q-value {_fmt(r.get('q_value'), 'q')}, i.e. unlikely to be chance across all campaigns tested).")


def campaign_pages(data, influence, period, output_dir=None, *, history=None, alpha: float | None = None,
                   max_accounts: int = 200) -> Pages:
    """Write one page per campaign with a significant effect, a list page, and the
    opportunity × campaign and campaign-reach CSV tables, into ``output_dir``.

    Parameters
    ----------
    data : ResolvedDataset
    influence : InfluenceResult
        :func:`abmkit.uplift.campaign_influence` (notebook 04's ``result``).
    period : Period
    output_dir : path, optional
        The report folder; None (interactive use) writes nothing and returns the
        significant campaigns as ``tables``.
    history : StageHistory, optional
        Notebook 04's stage history (for the accounts' stage).
    alpha : float, optional
        Significance level of the q-values (default: the influence result's).
    max_accounts : int
        Accounts shown per page (the CSV lists all).

    Returns
    -------
    Pages
    """
    from .applicability import check
    from .outputs import save_table

    data = _resolve(data)
    app = check(data, "campaign_influence")
    if not app:   # no campaigns or no touches: n/a with the reason, never empty pages
        return _not_applicable(app.reason)
    alpha = influence.params.get("alpha", 0.05) if alpha is None else alpha
    sig = significant_campaigns(influence, alpha)
    table = influence.table
    n_camp = sig["campaign_id"].nunique() if len(sig) else 0
    head = (f"{n_camp} campaign(s) with a significant effect on a stage transition in {format_period(period, dates=False)} data "
            f"(q < {alpha:g}): {int((sig['adj_diff'] > 0).sum()) if len(sig) else 0} positive, "
            f"{int((sig['adj_diff'] < 0).sum()) if len(sig) else 0} negative")
    if output_dir is None:
        return Pages(pages=pd.DataFrame(columns=["title", "path"]), tables=sig, headline_text=head,
                     notes=["pages are written into the report folder in a report run (output_dir)"])
    opp = opportunity_campaign_influence(data, start=period.start, end=period.end)
    save_table(opp, output_dir, "opportunity_campaign_influence")
    ids = list(dict.fromkeys(sig["campaign_id"])) if len(sig) else []
    reach = campaign_reach(data, ids, end=period.end, history=history)
    save_table(reach, output_dir, "campaign_reach")
    credit = campaign_credit(data, start=period.start, end=period.end)
    names = dict(zip(_campaign_info(data)["campaign_id"], _campaign_info(data).get("campaign_name", pd.Series())))
    opp_touched = opp[opp["touches"] > 0]
    written = []
    for cid in ids:
        rows = sig[sig["campaign_id"] == cid]
        name = names.get(cid) if pd.notna(names.get(cid)) else cid
        all_rows = table[(table["level"] == "campaign") & (table["campaign_id"] == cid)]
        body = ['<p class="lead">' + "<br>".join(_e(_effect_sentence(r, names)) for r in rows.to_dict("records"))
                + "</p>",
                '<p class="meta">"Reached soon after" = touched by the campaign within '
                f"{_e(influence.params.get('exposure_days'))} days of entering the stage; outcome window "
                f"{_e(influence.params.get('outcome_days'))} days after that. Influence is not proof of cause: "
                "unmeasured targeting can look like an effect (notebook 04 explains the design).</p>",
                "<h2>Progression with and without the campaign, per transition</h2>",
                _table(all_rows[all_rows["n_treated"] > 0].assign(
                    sig=lambda f: np.where(f["q_value"] < alpha, "yes", "no"),
                    note=lambda f: f["flag_reason"].where(f["flag"].fillna(False).astype(bool), "")), [
                    ("transition", "Transition", "human"), ("n_treated", "Reached", "int"),
                    ("rate_treated", "Moved on (reached)", "pct"), ("n_control", "Not reached", "int"),
                    ("rate_control", "Moved on (not reached)", "pct"), ("adj_diff", "Adjusted effect", "pts"),
                    ("adj_diff_low", "from", "pts"), ("adj_diff_high", "to", "pts"), ("q_value", "q-value", "q"),
                    ("sig", "Significant", "text"), ("note", "Caution", "text")]),
                '<p class="meta">Transitions where the campaign reached no account in time are left out.</p>']
        c = credit[credit["campaign_id"] == cid] if len(credit) else credit
        body.append(f"<h2>Its pipeline credit under each attribution model ({_e(format_period(period, dates=False))})</h2>")
        if len(c):
            models = [m for m in POSITION_MODELS if m in c.columns]
            total = credit[models].sum()
            cr = pd.DataFrame({"model": [_MODEL_LABELS.get(m, m) for m in models],
                               "credit": [c.iloc[0][m] for m in models],
                               "share": [c.iloc[0][m] / total[m] if total[m] else np.nan for m in models]})
            body.append(_table(cr, [("model", "Model", "text"), ("credit", "Pipeline credited", "money"),
                                    ("share", "Share of all pipeline", "pct1")]))
            body.append('<p class="meta">Pipeline of the opportunities created in the period, split over the touches '
                        "of their accounts in the 365 days before (time-decay half-life 7 days). Models that disagree "
                        "show how much the credit rests on an assumption; notebook 03 adds data-driven models and "
                        "intervals.</p>")
        else:
            body.append('<p class="meta">n/a — no pipeline of the period has a touch of this campaign in its '
                        "journey (or the data has no opportunities).</p>")
        n_opp = opp_touched.loc[opp_touched["campaign_id"] == cid, "opportunity_id"].nunique()
        body.append(f'<p>It touched the accounts of {n_opp:,} of the {opp["opportunity_id"].nunique():,} '
                    f"opportunities created in {_e(format_period(period, dates=False))} in the year before they were created "
                    "(tables/opportunity_campaign_influence.csv).</p>")
        r = reach[reach["campaign_id"] == cid]
        body.append(f"<h2>Accounts it reached ({len(r):,}), most touched first</h2>")
        body.append(_table(r, [("account_name", "Account", "text"), ("industry", "Industry", "human"),
                               ("tier", "Tier", "text"), ("stage", f"Stage at end of {format_period(period, dates=False)}", "human"),
                               ("touches", "Touches", "int"), ("contacts", "Contacts", "int"),
                               ("first_touch_at", "First", "date"), ("last_touch_at", "Last", "date")],
                           max_rows=max_accounts))
        body.append('<p class="meta"><a href="campaigns.html">All campaigns with a significant effect</a> · '
                    '<a href="../index.html">Report index</a> · '
                    '<a href="accounts.html">MQA accounts and whom to call</a></p>')
        rel = f"{FOLDER}/{campaign_page_name(cid)}"
        _write(output_dir, rel, render_page(f"Campaign: {name}", body,
                                            subtitle=f"{format_period(period, dates=False)} · campaign id {cid} · data until "
                                                     f"{_fmt(data.data_end, 'date')}"))
        written.append((f"Campaign: {name}", rel))
    # list page
    lst = sig.assign(page=[campaign_page_name(c) for c in sig["campaign_id"]]) if len(sig) else sig
    items = []
    for r in lst.to_dict("records") if len(lst) else []:
        cls = "pos" if (r.get("adj_diff") or 0) > 0 else "neg"
        items.append(f'<li><a href="{_e(r["page"])}">{_e(names.get(r["campaign_id"]) or r["campaign_id"])}</a> — '
                     f'{_e(_fmt(r["transition"], "human"))}: <span class="{cls}">{_e(_fmt(r.get("adj_diff"), "pts"))}</span> '
                     f'(q {_e(_fmt(r.get("q_value"), "q"))})</li>')
    body = [f'<p class="lead">{_e(head)}.</p>',
            "<ul>" + "".join(items) + "</ul>" if items else '<p class="meta">No campaign effect is significant '
            "after the false-discovery-rate control: no campaign page.</p>",
            '<p class="meta">Effects in percentage points of accounts moving to the next stage, adjusted for size, '
            'tier, industry, ICP fit and target status. <a href="../index.html">Report index</a> · '
            '<a href="accounts.html">MQA accounts and whom to call</a></p>']
    _write(output_dir, CAMPAIGNS_PAGE, render_page(f"Campaigns that moved accounts — {format_period(period, dates=False)}", body))
    written.insert(0, ("Campaigns with a significant effect", CAMPAIGNS_PAGE))
    return Pages(pages=pd.DataFrame(written, columns=["title", "path"]), tables=sig, headline_text=head)


def account_pages(data, period, output_dir=None, *, mqa_result=None, history=None, n_contacts: int = 3,
                  max_rows: int = 300) -> Pages:
    """Write ``drilldown/accounts.html`` (MQA accounts with names, stage, MQA date, status
    and contacts to call; stalled accounts) and ``tables/account_list.csv`` /
    ``tables/account_contacts_to_call.csv`` into ``output_dir``.

    Returns
    -------
    Pages
        ``tables`` = :func:`account_list` (shown as is when ``output_dir`` is None).
    """
    from . import engagement
    from .applicability import check
    from .outputs import save_table

    data = _resolve(data)
    app = check(data, "mqa")
    if not app:   # no touches or contacts: no account can qualify (n/a with the reason, never an empty list)
        return _not_applicable(app.reason)
    campaigns_apply = bool(check(data, "campaign_influence"))
    if mqa_result is None:
        mqa_result = engagement.mqa(data, as_of=period.end)
    lst = account_list(data, period, mqa_result=mqa_result, history=history, n_contacts=n_contacts)
    n_new, n_end = int(lst["became_mqa_in_period"].sum()), int(lst["mqa_at_period_end"].sum())
    head = (f"{n_new:,} accounts became MQA in {format_period(period, dates=False)} and {n_end:,} are MQA at its end "
            f"(all accounts; rule: {data.mqa_rule.describe()})")
    if output_dir is None:
        return Pages(pages=pd.DataFrame(columns=["title", "path"]), tables=lst, headline_text=head,
                     notes=["the page is written into the report folder in a report run (output_dir)"])
    save_table(lst, output_dir, "account_list")
    calls = contacts_to_call(mqa_result, lst["account_id"]).merge(
        lst[["account_id", "account_name"]], on="account_id", how="left")
    save_table(calls[["account_id", "account_name", "rank", "contact_id", "persona", "touches", "last_touch_at"]],
               output_dir, "account_contacts_to_call")
    cols = [("account_name", "Account", "text"), ("industry", "Industry", "human"), ("tier", "Tier", "text"),
            ("stage", "Stage", "human"), ("mqa_at", "MQA since", "date"), ("decision_makers_engaged",
            "Decision makers engaged", "int"), ("missing_personas", "Personas not reached", "humanlist"),
            ("contacts_to_call", "Contacts to call (masked ids)", "list")]
    new = lst[lst["became_mqa_in_period"]]
    lost = new[~new["mqa_at_period_end"]]
    earlier = lst[~lst["became_mqa_in_period"]]
    stalled = mqa_result.stalled.copy()
    stalled["account_name"] = stalled["account_id"].map(_names(data))
    body = [f'<p class="lead">{_e(head)}.</p>',
            f"<h2>Became MQA in {_e(format_period(period, dates=False))} ({len(new):,})</h2>",
            f"<h3>Still MQA at the end of the period ({len(new) - len(lost):,})</h3>",
            '<p class="meta">First met the MQA rule during the period. Call the listed contacts first; the personas '
            "not reached are the gap the next campaign should close.</p>",
            _table(new[new["mqa_at_period_end"]], cols, max_rows=max_rows),
            f"<h3>Became MQA in the period but no longer MQA at its end ({len(lost):,})</h3>",
            '<p class="meta">They met the rule during the period, then their decision makers went quiet, so the rule '
            "no longer holds on the last day. They still count as new MQAs of the period; re-engage them.</p>",
            _table(lost, cols, max_rows=max_rows),
            f"<h2>MQA at the end of {_e(format_period(period, dates=False))}, qualified earlier ({len(earlier):,})</h2>",
            _table(earlier, cols, max_rows=max_rows),
            f"<h2>Stalled accounts ({len(stalled):,})</h2>",
            '<p class="meta">Engagement score fell by half or more over the last 90 days: conversations that went '
            "quiet.</p>",
            _table(stalled, [("account_name", "Account", "text"), ("stage", "Stage", "human"),
                             ("score_before", "Score 90 days earlier", "num"), ("score_now", "Score now", "num")],
                   max_rows=max_rows),
            "<h2>Who is behind a masked id</h2>",
            '<p class="meta">Contacts are shown as masked ids (c_ + 16 characters); no name or e-mail is in this '
            "report. Sales operations resolve them with the private lookup kept with the cleaned data, outside "
            "the report folder: <code>abmkit.masking.resolve_ids(ids, \"&lt;reports&gt;/.data/&lt;period&gt;\")</code>"
            " returns the CRM contact ids. Lists as CSV: tables/account_list.csv and "
            "tables/account_contacts_to_call.csv.</p>",
            '<p class="meta"><a href="../index.html">Report index</a>'
            + (' · <a href="campaigns.html">Campaigns with a significant effect</a>' if campaigns_apply else "")
            + "</p>"]
    _write(output_dir, ACCOUNTS_PAGE, render_page(f"MQA accounts and whom to call — {format_period(period, dates=False)}", body,
                                                  subtitle=f"data until {_fmt(data.data_end, 'date')}"))
    links = [("MQA accounts and whom to call", ACCOUNTS_PAGE)]
    if campaigns_apply:   # written by notebook 04 in the same run (campaign_pages)
        links.append(("Campaigns with a significant effect (notebook 04)", CAMPAIGNS_PAGE))
    return Pages(pages=pd.DataFrame(links, columns=["title", "path"]), tables=lst, headline_text=head)
