"""Synthetic B2B sample with planted ground truth (see docs/sample_data.md).

:func:`generate` builds, from one seed, a canonical :class:`~abmkit.schema.Dataset`,
its raw CRM-export rendering (other headers, encodings, date formats, vendor
labels, planted junk) with the column map that reads it back, and the ground truth:
the true contact→account mapping, the latent stage entries (which the default
stage rules reproduce exactly from the touches), the potential outcomes of every
studied campaign and the resulting true effects. :func:`write_sample` writes it
all to disk. See ``docs/sample_data.md``.

Example
-------
>>> from abmkit.sample import generate
>>> s = generate(n_accounts=60, seed=3)
>>> sorted(s.truth)[:3]
['background_effects', 'campaign_incrementality', 'channel_incrementality']
>>> s.dataset.accounts.shape[0]
60
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..domains import split_email
from ..results import Result
from ..schema import HIGH_INTENT_TOUCH_TYPES, ENGAGEMENT_TOUCH_TYPES, Dataset, save
from . import campaigns as C
from . import commerce, entities, incrementality, names, process, touches
from . import truth as pair_truth
from .raw import render_raw, write_raw

__all__ = ["SampleData", "generate", "write_sample"]

#: background touch volume is scaled so the default sample has ≈150 touches per account
BACKGROUND_RATE_SCALE = 0.85


@dataclass
class SampleData(Result):
    """Everything :func:`generate` makes.

    Attributes
    ----------
    dataset : Dataset
        canonical tables (what cleaning the raw export should give back, junk removed)
    truth : dict[str, DataFrame]
        contact_accounts, stage_entries, potential_outcomes, effects, raw_junk,
        customer_periods (planted customer state per quarter: churn), pair_effects (the
        true effect of every campaign and channel × transition: abmkit.sample.truth),
        channel_incrementality (first opportunities each channel causes:
        abmkit.sample.incrementality), campaign_incrementality (the same per campaign)
    raw : dict[str, DataFrame]
        file name -> table of strings, exactly what is written to ``raw/``
    raw_encodings : dict[str, str]
        file name -> encoding used to write it
    column_map : dict
        the column map (docs/column_map.md) that reads ``raw/``
    params : dict
        every generator parameter, including the planted effects
    """
    dataset: Dataset
    truth: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    raw_encodings: dict = field(default_factory=dict)
    column_map: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    _summary_title = "Synthetic sample"

    def _summary_metadata(self) -> dict:
        return {k: self.params[k] for k in ("seed", "n_accounts", "start", "end") if k in self.params}

    @property
    def summary(self) -> pd.DataFrame:
        """Rows per canonical table (:attr:`abmkit.schema.Dataset.summary`)."""
        return self.dataset.summary


def generate(n_accounts: int = 2000, seed: int = 7, start: str = "2025-01-01",
             end: str = "2026-11-01") -> SampleData:
    """Generate the sample (deterministic for a given seed and size).

    Parameters
    ----------
    n_accounts : int
        number of accounts (contacts ≈ 10 per account, touches ≈ 150 per account)
    seed : int
        seed of the ``numpy.random.Generator`` every random step draws from
    start, end : str
        data period (UTC dates); the stage process starts at ``start``

    Example
    -------
    >>> s = generate(n_accounts=40, seed=1)
    >>> set(s.truth["stage_entries"]["stage"]) <= set(process.STAGES)
    True
    """
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start, tz="UTC")
    horizon = float((pd.Timestamp(end, tz="UTC") - t0).days)
    acc = entities.make_accounts(n_accounts, rng, t0, horizon)
    cmp = C.make_campaigns(t0, horizon, rng)
    ct = entities.make_contacts(acc, rng)
    times, exposures, outcomes, latent, state = process.stage_process(acc, cmp, horizon, rng)

    ci = touches.ContactIndex(ct, n_accounts)
    pieces = (touches.trigger_touches(times, ci, rng) + touches.exposure_touches(exposures, cmp, ci, rng)
              + [state.touches])  # campaigns acting before the landmark: touches made with the process
    background = touches.background_touches(acc, times, horizon, ci, rng, BACKGROUND_RATE_SCALE)
    # the first opportunity is caused by the touches before it (planted channel incrementality)
    first_created, conversion_draws = incrementality.first_opportunities(
        acc, times["sales_ready"], pd.concat(pieces + background, ignore_index=True), horizon, rng)
    opps, customer = commerce.make_opportunities(acc, first_created, horizon, rng)
    times["customer"] = customer
    pieces += (touches.customer_thinning(background, customer, rng)
               + [touches.reverse_touches(first_created, times["sales_ready"], ci, rng),
                  touches.no_account_touches(ct, horizon, rng)])
    tp = pd.concat(pieces, ignore_index=True)
    channel_incrementality = incrementality.channel_truth(
        acc, times["sales_ready"], tp, horizon, conversion_draws,
        commerce.base_amount(acc) * np.exp(commerce.AMOUNT_SD_LOG ** 2 / 2))
    tp["campaign_id"] = touches.assign_campaigns(tp, cmp, times, rng)
    campaign_incrementality = incrementality.campaign_truth(
        acc, times["sales_ready"], tp, horizon, conversion_draws,
        commerce.base_amount(acc) * np.exp(commerce.AMOUNT_SD_LOG ** 2 / 2), cmp)
    tp["engagement_seconds"] = touches.engagement_seconds(tp["touch_type"].to_numpy(), rng)
    tp["tie"] = rng.random(len(tp))
    tp = tp.sort_values(["t", "tie"], kind="stable").reset_index(drop=True)
    outcomes = pd.concat([outcomes.assign(is_studied=True), background_outcomes(latent, tp, cmp)],
                         ignore_index=True)

    canonical, ct = _canonical(acc, ct, cmp, tp, opps, customer, t0, horizon, rng)
    dataset = Dataset.from_frames(**canonical)
    truth = _truth(acc, ct, times, outcomes, cmp, t0)
    truth["pair_effects"] = pair_truth.pair_effects(state, times, tp, cmp, horizon)
    params = _params(seed, n_accounts, start, end, cmp)
    raw, encodings, column_map, junk = render_raw(dataset, rng)
    truth["raw_junk"] = junk
    truth["channel_incrementality"] = channel_incrementality
    truth["campaign_incrementality"] = campaign_incrementality
    # who is a customer in each quarter (planted churn), what the revenue KPIs must read back
    truth["customer_periods"] = commerce.customer_periods(acc, opps, customer, t0, horizon)
    return SampleData(dataset=dataset, truth=truth, raw=raw, raw_encodings=encodings,
                      column_map=column_map, params=params)


def _ts(t0: pd.Timestamp, days) -> pd.Series:
    """Days since start -> UTC timestamps (NaN -> NaT), exact to the minute."""
    minutes = np.round(np.asarray(days, dtype=float) * 1440.0)
    return pd.Series(t0 + pd.to_timedelta(minutes, unit="min"))


def _canonical(acc, ct, cmp, tp, opps, customer, t0, horizon, rng):
    n_tp = len(tp)
    contact = tp["contact"].to_numpy()
    has_contact = contact >= 0
    contact_ids = ct["contact_id"].to_numpy()
    account_ids = acc["account_id"].to_numpy()
    touchpoints = pd.DataFrame({
        "touchpoint_id": names.make_ids("T", np.arange(1, n_tp + 1), 7),
        "occurred_at": _ts(t0, tp["t"]),
        "channel": tp["channel"].to_numpy(), "touch_type": tp["touch_type"].to_numpy(),
        "contact_id": np.where(has_contact, contact_ids[np.maximum(contact, 0)], None),
        "account_id": np.where(has_contact, None, account_ids[np.maximum(tp["acct"].to_numpy(), 0)]),
        "campaign_id": tp["campaign_id"].to_numpy(),
        "engagement_seconds": tp["engagement_seconds"].to_numpy(),
    })

    # lead status from the contact's own touches
    ttype = tp["touch_type"].to_numpy()
    by_contact = pd.DataFrame({"contact": contact[has_contact], "t": tp["t"].to_numpy()[has_contact],
                               "tt": ttype[has_contact]})
    first_touch = by_contact.groupby("contact")["t"].min()
    hi = by_contact[by_contact["tt"].isin(HIGH_INTENT_TOUCH_TYPES)].groupby("contact")["t"].min()
    sql = by_contact[by_contact["tt"].isin(["demo_request", "meeting"])]["contact"].unique()
    eng = by_contact[by_contact["tt"].isin(ENGAGEMENT_TOUCH_TYPES)]["contact"].unique()
    rows = np.arange(len(ct))
    mql_day = hi.reindex(rows).to_numpy()
    status = np.where(np.isin(rows, sql), "sql", np.where(~np.isnan(mql_day), "mql",
                                                          np.where(np.isin(rows, eng), "inquiry", None)))
    status = np.where((status == "mql") & (rng.random(len(ct)) < 0.08), "disqualified", status)
    first = first_touch.reindex(rows).to_numpy()
    created = np.where(np.isnan(first), rng.uniform(-200, horizon, len(ct)), first - rng.uniform(0.5, 60, len(ct)))
    split = split_email(ct["email"])
    contacts = pd.DataFrame({
        "contact_id": ct["contact_id"], "email": split["email"], "email_domain": split["email_domain"],
        "first_name": ct["first_name"], "last_name": ct["last_name"], "company_name": ct["company_name"],
        "title": ct["title"], "persona": ct["persona"], "crm_account_id": ct["crm_account_id"],
        "lead_status": status, "mql_at": _ts(t0, mql_day), "created_at": _ts(t0, np.floor(created * 1440) / 1440),
    })
    ct = ct.assign(email_domain=split["email_domain"])

    accounts = acc[["account_id", "account_name", "domain", "extra_domains", "parent_account_id", "industry",
                    "employee_count", "annual_revenue", "region", "tier", "is_target", "icp_fit", "created_at"]]
    campaigns = cmp[["campaign_id", "campaign_name", "channel", "start_date", "end_date", "cost"]]
    opps = opps.sort_values(["created_day", "acct", "opportunity_type"], kind="stable").reset_index(drop=True)
    opportunities = pd.DataFrame({
        "opportunity_id": names.make_ids("OPP", np.arange(1, len(opps) + 1), 6),
        "account_id": account_ids[opps["acct"].to_numpy()],
        "created_at": _ts(t0, opps["created_day"]), "closed_at": _ts(t0, opps["closed_day"]),
        "is_closed": opps["is_closed"].to_numpy(), "is_won": opps["is_won"].to_numpy(),
        "amount": opps["amount"].to_numpy(), "opportunity_type": opps["opportunity_type"].to_numpy(),
    })
    revenue = commerce.make_revenue(acc, opps, customer, t0, horizon, rng)
    contacts = contacts.sort_values("contact_id", ignore_index=True)
    frames = {"accounts": accounts, "contacts": contacts, "touchpoints": touchpoints, "campaigns": campaigns,
              "opportunities": opportunities, "revenue": revenue}
    return frames, ct


def _truth(acc, ct, times, outcomes, cmp, t0) -> dict:
    contact_accounts = pd.DataFrame({"contact_id": ct["contact_id"], "true_account_id": ct["true_account_id"],
                                     "how": ct["how"], "matchable": ct["matchable"].astype(bool)})
    contact_accounts = contact_accounts.sort_values("contact_id", ignore_index=True)
    account_ids = acc["account_id"].to_numpy()
    entries = []
    for stage in process.STAGES:
        d = times[stage]
        idx = np.flatnonzero(~np.isnan(d))
        entries.append(pd.DataFrame({"account_id": account_ids[idx], "stage": stage,
                                     "entered_at": _ts(t0, d[idx]).array}))
    stage_entries = pd.concat(entries, ignore_index=True)
    stage_entries["stage"] = pd.Categorical(stage_entries["stage"], categories=list(process.STAGES), ordered=True)
    stage_entries = stage_entries.sort_values(["account_id", "stage"], ignore_index=True)
    stage_entries["stage"] = stage_entries["stage"].astype(str)

    po = outcomes.copy()
    po.insert(0, "account_id", account_ids[po["acct"].to_numpy()])
    po["entered_at"] = _ts(t0, po["entered_day"]).array
    po["landmark_at"] = _ts(t0, po["landmark_day"]).array
    for col in ("y0", "y1"):
        po[col] = po[col].map({1.0: True, 0.0: False}).astype("boolean")
    po = po[["account_id", "campaign_id", "transition", "entered_at", "landmark_at", "at_risk", "exposed",
             "complete_followup", "y0", "y1", "t0_days", "t1_days", "p0", "is_studied"]]
    order = pd.Categorical(po["transition"], categories=[t for t, _, _ in process.TRANSITIONS], ordered=True)
    po = (po.assign(_order=order).sort_values(["campaign_id", "_order", "account_id"], ignore_index=True)
          .drop(columns="_order"))
    effects = true_effects(po, cmp)
    return {"contact_accounts": contact_accounts, "stage_entries": stage_entries,
            "potential_outcomes": po, "effects": effects[effects["story"] != "background"].reset_index(drop=True),
            "background_effects": effects[effects["story"] == "background"].reset_index(drop=True)}


def background_outcomes(latent: pd.DataFrame, tp: pd.DataFrame, cmp: pd.DataFrame) -> pd.DataFrame:
    """Potential outcomes of the background campaigns (no planted effect, so y0 = y1 =
    the actual outcome) for every (account that entered s, background campaign,
    transition). Exposed = the campaign touched the account within
    ``[T_s, T_s + exposure_days)``, counted on whole minutes as the data carry them."""
    bg = cmp.loc[cmp["transition"].isna(), "campaign_id"].to_numpy(dtype=object)
    cols = ["acct", "campaign_id", "transition", "entered_day", "landmark_day", "at_risk", "exposed",
            "complete_followup", "y0", "y1", "t0_days", "t1_days", "p0", "is_studied"]
    if not len(bg) or latent.empty:
        return pd.DataFrame(columns=cols)
    sel = tp["campaign_id"].isin(bg).to_numpy() & (tp["acct"].to_numpy() >= 0)
    touch = pd.DataFrame({"acct": tp["acct"].to_numpy()[sel], "c": pd.Index(bg).get_indexer(tp["campaign_id"][sel]),
                          "minute": np.round(tp["t"].to_numpy()[sel] * 1440.0).astype(np.int64)})
    window = int(round(process.EXPOSURE_DAYS * 1440))
    parts = []
    for transition, lat in latent.groupby("transition", sort=False):
        lat = lat.reset_index(drop=True)
        row_of = pd.Series(np.arange(len(lat)), index=lat["acct"].to_numpy())
        hit = touch[touch["acct"].isin(row_of.index)]
        r = row_of.reindex(hit["acct"].to_numpy()).to_numpy()
        entered = np.round(lat["entered_day"].to_numpy()[r] * 1440.0).astype(np.int64)
        inside = (hit["minute"].to_numpy() >= entered) & (hit["minute"].to_numpy() < entered + window)
        exposed = np.zeros((len(lat), len(bg)), dtype=bool)
        exposed[r[inside], hit["c"].to_numpy()[inside]] = True
        rep = np.repeat(np.arange(len(lat)), len(bg))
        y = lat["y"].to_numpy()[rep]
        t = lat["t_days"].to_numpy()[rep]
        parts.append(pd.DataFrame({
            "acct": lat["acct"].to_numpy()[rep], "campaign_id": np.tile(bg, len(lat)), "transition": transition,
            "entered_day": lat["entered_day"].to_numpy()[rep], "landmark_day": lat["landmark_day"].to_numpy()[rep],
            "at_risk": lat["at_risk"].to_numpy()[rep], "exposed": exposed.ravel(),
            "complete_followup": lat["complete_followup"].to_numpy()[rep],
            "y0": y, "y1": y, "t0_days": t, "t1_days": t, "p0": lat["p0"].to_numpy()[rep], "is_studied": False}))
    return pd.concat(parts, ignore_index=True)[cols]


def true_effects(potential_outcomes: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """True effects per campaign and transition from the potential outcomes, over
    accounts at risk with complete follow-up (landmark + outcome_days inside the data).
    Background campaigns (no planted effect) get ``story = "background"``.

    ``att_*`` average over exposed accounts, ``ate_diff`` over all; medians of days
    from entering s to entering s+1 among the exposed, with and without the campaign
    (days beyond the data end count as infinitely long)."""
    rows = []
    po = potential_outcomes[potential_outcomes["at_risk"] & potential_outcomes["complete_followup"]]
    specs = campaigns.set_index("campaign_id")
    order = {t: i for i, (t, _, _) in enumerate(process.TRANSITIONS)}
    keys = po[["campaign_id", "transition"]].drop_duplicates()
    keys = keys.assign(_o=keys["transition"].map(order)).sort_values(["campaign_id", "_o"])
    groups = po.groupby(["campaign_id", "transition"], sort=False)
    for cid, transition in zip(keys["campaign_id"], keys["transition"]):
        g = groups.get_group((cid, transition))
        spec = specs.loc[cid]
        studied = pd.notna(spec["transition"])
        y0 = g["y0"].astype(float).to_numpy()
        y1 = g["y1"].astype(float).to_numpy()
        exp = g["exposed"].to_numpy(dtype=bool)

        def median(t):
            m = np.median(np.where(np.isnan(t), np.inf, t)) if len(t) else np.nan
            return float(m) if np.isfinite(m) else np.nan

        mean = lambda v: float(v.mean()) if len(v) else np.nan  # noqa: E731
        rows.append({
            "campaign_id": cid, "campaign_name": spec["campaign_name"], "channel": spec["channel"],
            "transition": transition, "story": spec["story"] if studied else "background", "n_at_risk": len(g),
            "n_exposed_at_risk": int(exp.sum()),
            "rate_exposed_with": mean(y1[exp]), "rate_exposed_without": mean(y0[exp]),
            "att_diff": mean(y1[exp] - y0[exp]), "ate_diff": mean(y1 - y0),
            "att_ratio": y1[exp].mean() / y0[exp].mean() if exp.any() and y0[exp].any() else np.nan,
            "true_median_days_exposed_with": median(g["t1_days"].to_numpy()[exp]),
            "true_median_days_exposed_without": median(g["t0_days"].to_numpy()[exp]),
            "planted_risk_ratio": float(spec["risk_ratio"]), "planted_time_factor": float(spec["time_factor"]),
            "is_zero_effect": bool(spec["is_zero_effect"]) if studied else True,
            "is_confounded": bool(spec["is_confounded"]) if studied else False,
            "acts_before_landmark": bool(spec.get("acts_before_landmark", False)) if studied else False,
        })
    return pd.DataFrame(rows)


def _params(seed, n_accounts, start, end, cmp) -> dict:
    studied = cmp[cmp["transition"].notna()]
    planted = studied[["campaign_id", "campaign_name", "channel", "transition", "story", "exposure_logit",
                       "exposure_size_slope", "risk_ratio", "time_factor", "is_zero_effect", "is_confounded",
                       "acts_before_landmark"]]
    planted = planted.astype(object).where(planted.notna(), None)
    return {
        "seed": seed, "n_accounts": n_accounts, "start": start, "end": end,
        "exposure_days": process.EXPOSURE_DAYS, "outcome_days": process.OUTCOME_DAYS,
        "window_days": process.WINDOW_DAYS, "max_probability": process.MAX_PROBABILITY,
        "transition_baselines": process.BASELINES, "aware_median_days": process.AWARE_MEDIAN_DAYS,
        "never_aware": process.NEVER_AWARE, "early_progression_days": list(process.EARLY_DAYS),
        "min_residual_days": process.MIN_RESIDUAL_DAYS,
        "size_score": {"employee_median": entities.EMPLOYEE_MEDIAN, "employee_sigma_log": entities.EMPLOYEE_SIGMA,
                       "formula": "size_z = (ln(employee_count) - ln(employee_median)) / employee_sigma_log"},
        "exposure_probability": "sigmoid(exposure_logit + exposure_size_slope * size_z)",
        "progression_model": ("early (before the landmark): hazard W * lambda_early on days 2-28 after entry, "
                              "lambda_early = -ln(1-early_p)/26, x 1/time_factor from the first touch of a campaign "
                              "acting before the landmark; time solves Lambda(t) = -ln(1-V). After the landmark: "
                              "p = min(p0(x) * prod(risk_ratio^e), max_probability); rate = r(p) * W / "
                              "prod(time_factor^e), r(p) = ((1-p)^-frailty_var - 1) / (frailty_var * outcome_days) "
                              "(-ln(1-p)/outcome_days without frailty); days after landmark = max(-ln(1-U)/rate, "
                              "min_residual_days); W ~ gamma(mean 1, variance frailty_var)"),
        "first_exposure_days": list(process.FIRST_EXPOSURE_DAYS),
        "pre_landmark_extra_touches": process.PRE_LANDMARK_EXTRA_TOUCHES,
        "planted_effects": [{k: (bool(v) if isinstance(v, (np.bool_,)) else v) for k, v in r.items()}
                            for r in planted.to_dict("records")],
        "background_rate_per_day": touches.STAGE_RATE, "background_rate_scale": BACKGROUND_RATE_SCALE,
        "opportunity_win_probability_new": commerce.WIN_P_NEW,
        "opportunity_second_attempt_probability": commerce.SECOND_ATTEMPT_P,
        "incrementality": {
            "channel_log_hazard_ratio": dict(incrementality.CHANNEL_EFFECTS),
            "lag_days": incrementality.LAG_DAYS, "window_days": incrementality.WINDOW_DAYS,
            "base_daily_hazard": incrementality.BASE_DAILY_HAZARD, "size_log_hr": incrementality.SIZE_LOG_HR,
            "target_log_hr": incrementality.TARGET_LOG_HR,
            "hazard": ("first opportunity on day d (midnight) after sales-ready: lambda(d) = base_daily_hazard * "
                       "exp(size_log_hr * size_z + target_log_hr * is_target + sum_c beta_c * x_c(d)), "
                       "x_c(d) = touch of c in [d - window_days, d - lag_days)"),
            "reverse_touches": {"mix": [list(m) for m in touches.REVERSE_MIX], "days_before": touches.REVERSE_DAYS,
                                "count": f"1 + Poisson({touches.REVERSE_EXTRA})"},
        },
    }


def write_sample(out_dir, seed: int = 7, n_accounts: int = 2000) -> Path:
    """Generate and write the sample: ``raw/`` (CSV exports + ``column_map.yaml``),
    ``canonical/`` (parquet, :func:`abmkit.schema.save`) and ``truth/`` (parquet
    tables, ``effects.csv``, ``raw_junk.csv``, ``params.json``). Same seed → same bytes.

    Example
    -------
    >>> write_sample("data/sample", seed=7)   # doctest: +SKIP
    PosixPath('data/sample')
    """
    out = Path(out_dir)
    sample = generate(n_accounts=n_accounts, seed=seed)
    write_raw(sample.raw, sample.raw_encodings, sample.column_map, out / "raw")
    save(sample.dataset, out / "canonical")
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    for name, df in sample.truth.items():
        df.to_parquet(truth_dir / f"{name}.parquet", index=False)
    for name in ("effects", "background_effects", "raw_junk", "channel_incrementality", "campaign_incrementality"):
        sample.truth[name].to_csv(truth_dir / f"{name}.csv", index=False, lineterminator="\n")
    (truth_dir / "params.json").write_text(json.dumps(sample.params, indent=2, sort_keys=True, default=str) + "\n",
                                           encoding="utf-8")
    return out
