"""Incremental attribution: what each channel adds to the first opportunity, learned
from the accounts that converted *and* those that did not (see docs/attribution.md).

The model is a discrete-time hazard (piecewise-exponential Poisson regression) of
an account's **first opportunity** on its **prior exposure**:

* who is at risk: every account from the day after it entered ``from_stage``
  (default ``sales_ready``, from the kit's stage rules, abmkit.progression) until it
  opens its first opportunity or the data ends. Conditioning on the stage keeps
  stage markers (touches that only happen once an account is in the stage) from
  looking like causes;
* exposure to channel ``c`` on day ``d``: the account had a touch of ``c`` between
  ``window_days`` and ``lag_days`` before ``d``. The lag is the guard against
  reverse causation: a touch in the last ``lag_days`` before a conversion may be
  *caused* by it (a sales call, a demo request) and never counts;
* hazard on day ``d``: ``exp(baseline(days since at risk) + account covariates +
  Σ_c β_c x_c(d))``, fitted by Newton's method on account-day cells collapsed to
  (account, exposure pattern, baseline bin) runs, with a small ridge penalty on the
  ``β`` (a weak prior that keeps rarely seen channels finite);
* credit by counterfactual removal: with ``Λ_i`` the account's predicted cumulative
  hazard from its at-risk start to the data end (the touches it actually had,
  including those after a conversion), a channel's incremental conversions are
  ``Σ_i exp(−Λ_i^{−c}) − exp(−Λ_i)``: the expected first opportunities lost if its
  touches were removed. Shares are the positive parts normalised (a channel whose
  removal would not lose conversions gets no share).

Intervals: accounts are resampled (Poisson(1) weights per account id, seeded,
:func:`abmkit.attribution.compare.poisson_weights`) and the model is refitted in
every replicate; percentile intervals.

Example
-------
>>> res = incremental_attribution(abmkit.prepare(ds), n_boot=200, seed=0)   # doctest: +SKIP
>>> res.channels[["channel", "incremental_conversions", "low", "high"]]     # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results import Result
from ..schema import CHANNELS
from ..timeutil import DAY_NS

__all__ = ["IncrementalResult", "incremental_attribution", "exposure_panel", "panel_rows", "finish_panel",
           "combine_panel_rows", "fit_hazard", "removal_effects", "BASELINE_BINS"]

#: baseline hazard bins: days since the account became at risk (left edges)
BASELINE_BINS = (0, 30, 90, 180, 365)


@dataclass
class Panel:
    """Account-day cells collapsed to runs with the same account, exposure pattern,
    baseline bin and at-risk flag. ``X``: design (baseline bins, covariates,
    channel exposures); ``days``, ``events``; ``acct`` (at-risk account index);
    ``at_risk`` (days before and on the first opportunity); ``channel_cols``: the
    column of each estimable channel; ``not_estimable``: channel -> why;
    ``left_out``: accounts that entered the stage by opening their first opportunity."""
    X: np.ndarray
    days: np.ndarray
    events: np.ndarray
    acct: np.ndarray
    at_risk: np.ndarray
    terms: list
    channels: list
    channel_cols: np.ndarray
    account_ids: np.ndarray
    converted: np.ndarray
    amount: np.ndarray
    not_estimable: dict
    left_out: int = 0


def _day(ts) -> np.ndarray:
    """Timestamps -> float days since the epoch (NaT -> NaN)."""
    v = pd.to_datetime(pd.Series(ts), utc=True)
    out = v.array.asi8.astype(float) / DAY_NS
    out[v.isna().to_numpy()] = np.nan
    return out


def exposure_panel(data, *, from_stage: str = "sales_ready", lag_days: float = 7, window_days: float = 60,
                   min_expected_events: float = 10, stage_entries: pd.DataFrame | None = None) -> Panel:
    """The at-risk account-day panel of :func:`incremental_attribution`: the
    per-account rows (:func:`panel_rows`) finished with what only the whole data
    knows (:func:`finish_panel`).

    ``stage_entries`` (``account_id, entered_at``) replaces the kit's stage history
    (tests, or a stage the rules do not know)."""
    rows = panel_rows(data, from_stage=from_stage, lag_days=lag_days, window_days=window_days,
                      stage_entries=stage_entries)
    return finish_panel(rows, min_expected_events=min_expected_events)


@dataclass
class PanelRows:
    """The panel's rows that depend on single accounts only (:func:`panel_rows`): the
    same for an account whether computed on the whole data or on a partition holding
    it, so partitions' rows concatenate (:func:`combine_panel_rows`).

    ``accounts``: one row per at-risk account (``account_id``, ``start``: first
    at-risk day, ``conv``: day of the first opportunity or NaN, ``amount``: its amount
    or NaN, and the raw covariates ``log_employee_count`` / ``is_target`` when the
    account table has them); ``runs``: the account-day cells collapsed to runs
    (``acct``: row of ``accounts``, ``pattern``: exposure bits over ``channels``,
    ``bin``: baseline bin, ``at_risk``, ``days``, ``events``), sorted by account,
    pattern, bin and at-risk flag; ``channels``: the channels of the at-risk accounts'
    touches (bit ``j`` of ``pattern`` is ``channels[j]``); ``left_out``: accounts that
    entered the stage by opening their first opportunity."""
    accounts: pd.DataFrame
    runs: pd.DataFrame
    channels: list
    left_out: int = 0


def stage_entries_of(history, from_stage: str) -> pd.DataFrame:
    """``account_id, entered_at`` of the accounts that entered ``from_stage`` (a stage
    history, :func:`abmkit.progression.stage_history`), by account id.

    >>> h = pd.DataFrame({"account_id": ["b", "a"], "stage": ["sales_ready", "sales_ready"],
    ...                   "entered_at": pd.to_datetime(["2026-01-02", "2026-01-01"], utc=True)})
    >>> stage_entries_of(h, "sales_ready")["account_id"].tolist()
    ['a', 'b']
    """
    from ..progression import stage_wide
    wide = stage_wide(history)
    entered = wide[from_stage].dropna() if from_stage in wide else pd.Series(dtype="datetime64[ns, UTC]")
    return pd.DataFrame({"account_id": entered.index.astype(object), "entered_at": entered.to_numpy()})


def panel_rows(data, *, from_stage: str = "sales_ready", lag_days: float = 7, window_days: float = 60,
               stage_entries: pd.DataFrame | None = None) -> PanelRows:
    """The per-account part of :func:`exposure_panel`: who is at risk from which day,
    their first opportunity, raw covariates and exposure runs. Everything here reads
    one account's rows at a time (and the data end), so a partition of whole accounts
    gives its accounts' rows exactly (abmkit/scale/incremental_kernel.py).

    Example
    -------
    >>> rows = panel_rows(abmkit.prepare(ds))              # doctest: +SKIP
    >>> finish_panel(rows).terms                          # doctest: +SKIP
    """
    from ..prepared import resolve
    data = resolve(data)
    if stage_entries is None:
        from ..progression import stage_history
        stage_entries = stage_entries_of(stage_history(data), from_stage)
    opp = data.opportunities
    first = (opp.assign(_d=_day(opp["created_at"])).dropna(subset=["_d"]).groupby("account_id")["_d"].min())
    # stable: among opportunities created at the same instant the table's first one,
    # whatever else the table holds (a partition holds a part of it)
    first_amt = (opp.assign(_d=_day(opp["created_at"])).sort_values("_d", kind="stable")
                 .drop_duplicates("account_id").set_index("account_id")["amount"])
    end_day = float(_day([data.data_end])[0])
    last = int(np.ceil(end_day)) - 1                     # last midnight an opportunity can open on
    ids = stage_entries["account_id"].astype(object).to_numpy()
    start = np.floor(_day(stage_entries["entered_at"])) + 1
    conv = np.ceil(first.reindex(ids).to_numpy(dtype=float))
    # accounts that entered the stage by converting (an opportunity on or before the
    # first at-risk day) are not at risk: their exposure cannot precede the decision
    keep = (start <= last) & ~(conv < start)
    n_left_out = int((~keep & (start <= last)).sum())
    ids, start, conv = ids[keep], start[keep].astype(np.int64), conv[keep]
    n = len(ids)
    # the panel's first day: early enough for every at-risk account's window (a run
    # does not depend on it, so partitions may start on different days)
    day0 = int(start.min() - np.ceil(window_days)) if n else 0
    n_days = last - day0 + 1 if n else 0

    tp = data.touches
    tacc = pd.Index(ids).get_indexer(tp["account_id"].astype(object))
    sel = tacc >= 0
    tday = _day(tp["occurred_at"])[sel]
    tch = tp["channel"].astype(object).to_numpy()[sel]
    tacc = tacc[sel]
    present = [c for c in CHANNELS if c in set(tch)] + sorted(set(tch) - set(CHANNELS) - {None})
    k = len(present)
    if k > 24:
        raise ValueError(f"{k} channels: the incremental model handles at most 24")
    # exposure bit pattern per account-day: a touch at s covers days d with
    # d - window <= s < d - lag, i.e. floor(s + lag) + 1 .. floor(s + window)
    # (floored on absolute days: the same days whatever the panel's first day)
    pattern = np.zeros((n, max(n_days, 0)), dtype=np.int64)
    code = pd.Index(present).get_indexer(tch)
    for j in range(k):
        m = code == j
        lo = np.clip(np.floor(tday[m] + lag_days).astype(np.int64) + 1 - day0, 0, n_days)
        hi = np.clip(np.floor(tday[m] + window_days).astype(np.int64) + 1 - day0, 0, n_days)
        ok = hi > lo
        diff = np.zeros((n, n_days + 1), dtype=np.int32)
        np.add.at(diff, (tacc[m][ok], lo[ok]), 1)
        np.add.at(diff, (tacc[m][ok], hi[ok]), -1)
        pattern |= (np.cumsum(diff[:, :n_days], axis=1) > 0).astype(np.int64) << j

    d = np.arange(n_days)[None, :] + day0
    live = d >= start[:, None]
    conv_rel = np.where(np.isnan(conv), np.inf, conv)
    at_risk = live & (d <= conv_rel[:, None])
    event = d == conv_rel[:, None]
    since = d - start[:, None]
    nb = len(BASELINE_BINS)
    bins = np.searchsorted(np.asarray(BASELINE_BINS), since, side="right") - 1
    acct = np.broadcast_to(np.arange(n)[:, None], (n, n_days))
    key = ((acct[live] * (1 << k) + pattern[live]) * nb + bins[live]) * 2 + at_risk[live]
    uniq, inv = np.unique(key, return_inverse=True)
    runs = pd.DataFrame({
        "acct": (uniq >> 1) // nb // (1 << k), "pattern": (uniq >> 1) // nb % (1 << k), "bin": (uniq >> 1) % nb,
        "at_risk": (uniq & 1).astype(bool), "days": np.bincount(inv, minlength=len(uniq)).astype(float),
        "events": np.bincount(inv, weights=event[live].astype(float), minlength=len(uniq))})
    accounts = pd.DataFrame({"account_id": ids, "start": start, "conv": conv,
                             "amount": first_amt.reindex(ids).to_numpy(dtype=float)})
    accounts = pd.concat([accounts, _raw_covariates(data.accounts, ids)], axis=1)
    return PanelRows(accounts=accounts, runs=runs, channels=present, left_out=n_left_out)


def combine_panel_rows(rows: list, order: str = "account_id") -> PanelRows:
    """The :class:`PanelRows` of several partitions (disjoint accounts) as one: accounts
    in ``order`` (``"account_id"``: by id, the order of the kit's stage history; or
    ``"position"``: the rows' ``position`` column), channels in the order one
    computation over all the accounts gives, every run's pattern re-coded on these
    channels and the runs sorted as :func:`panel_rows` sorts them.

    >>> a = PanelRows(pd.DataFrame({"account_id": ["b"]}), pd.DataFrame({"acct": [0], "pattern": [1], "bin": [0],
    ...               "at_risk": [True], "days": [3.0], "events": [1.0]}), ["email"], 1)
    >>> b = PanelRows(pd.DataFrame({"account_id": ["a"]}), pd.DataFrame({"acct": [0], "pattern": [1], "bin": [0],
    ...               "at_risk": [True], "days": [5.0], "events": [0.0]}), ["display"], 0)
    >>> c = combine_panel_rows([a, b])
    >>> c.channels, c.accounts["account_id"].tolist(), c.runs["pattern"].tolist(), c.left_out
    (['display', 'email'], ['a', 'b'], [1, 2], 1)
    """
    seen = set().union(*(r.channels for r in rows)) if rows else set()
    present = [c for c in CHANNELS if c in seen] + sorted(seen - set(CHANNELS) - {None})
    if len(present) > 24:
        raise ValueError(f"{len(present)} channels: the incremental model handles at most 24")
    offsets = np.cumsum([0] + [len(r.accounts) for r in rows])
    accounts = pd.concat([r.accounts for r in rows], ignore_index=True) if rows else pd.DataFrame()
    runs, pattern = [], []
    for r, off in zip(rows, offsets):  # one step per partition, vectorised over its runs
        where = np.asarray(pd.Index(present).get_indexer(r.channels), dtype=np.int64)
        bits = (r.runs["pattern"].to_numpy(np.int64)[:, None] >> np.arange(len(where))) & 1
        pattern.append((bits << where).sum(axis=1) if len(where) else np.zeros(len(r.runs), np.int64))
        runs.append(r.runs.assign(acct=r.runs["acct"].to_numpy(np.int64) + off))
    if not rows:
        return PanelRows(accounts, pd.DataFrame(columns=["acct", "pattern", "bin", "at_risk", "days", "events"]),
                         present, 0)
    runs = pd.concat(runs, ignore_index=True).assign(pattern=np.concatenate(pattern).astype(np.int64))
    key = accounts["position"].to_numpy() if order == "position" else accounts["account_id"].to_numpy(object)
    perm = np.argsort(key, kind="stable")
    rank = np.empty(len(perm), np.int64)
    rank[perm] = np.arange(len(perm))
    accounts = accounts.iloc[perm].reset_index(drop=True)
    runs = runs.assign(acct=rank[runs["acct"].to_numpy(np.int64)])
    runs = runs.iloc[np.lexsort((runs["at_risk"].to_numpy(), runs["bin"].to_numpy(), runs["pattern"].to_numpy(),
                                 runs["acct"].to_numpy()))].reset_index(drop=True)
    return PanelRows(accounts, runs, present, int(sum(r.left_out for r in rows)))


def finish_panel(rows: PanelRows, *, min_expected_events: float = 10) -> Panel:
    """The :class:`Panel` from per-account rows (:func:`panel_rows`, or
    :func:`combine_panel_rows` of partitions): what needs every at-risk account
    (the overall first-opportunity rate behind channel estimability, covariate
    standardisation, the amount of accounts without an opportunity, the design
    matrix's columns) is computed here, once."""
    acc, runs, present = rows.accounts, rows.runs, rows.channels
    k, nb = len(present), len(BASELINE_BINS)
    days = runs["days"].to_numpy(float)
    events = runs["events"].to_numpy(float)
    r_risk = runs["at_risk"].to_numpy(bool)
    r_bin = runs["bin"].to_numpy(np.int64)
    r_pat = runs["pattern"].to_numpy(np.int64)
    r_acc = runs["acct"].to_numpy(np.int64)
    cov_names, cov = _standardised_covariates(acc)
    bits = ((r_pat[:, None] >> np.arange(k)) & 1).astype(float)
    # a channel is estimable when both its exposed and its unexposed at-risk days are
    # enough to expect min_expected_events first opportunities at the overall rate:
    # otherwise its effect (and removing it, an extrapolation to days never seen)
    # rests on a handful of days. Counted on days, not on the outcomes, so the choice
    # does not depend on where the conversions fell.
    exp_days = (bits[r_risk] * days[r_risk, None]).sum(axis=0)
    tot = days[r_risk].sum()
    rate = events[r_risk].sum() / tot if tot > 0 else 0.0
    not_estimable = {}
    for j, c in enumerate(present):
        if exp_days[j] == 0:
            not_estimable[c] = "no account at risk was exposed to it"
        elif exp_days[j] == tot:
            not_estimable[c] = "every at-risk day was exposed to it"
        elif min(exp_days[j], tot - exp_days[j]) * rate < min_expected_events:
            few = "unexposed" if exp_days[j] > tot / 2 else "exposed"
            not_estimable[c] = (f"too few {few} at-risk days ({min(exp_days[j], tot - exp_days[j]):.0f} of "
                                f"{tot:.0f}: fewer than {min_expected_events:g} first opportunities expected there)")
    est = [j for j, c in enumerate(present) if c not in not_estimable]
    X = np.hstack([np.eye(nb)[r_bin], cov[r_acc], bits[:, est]])
    terms = [f"baseline_{b}d" for b in BASELINE_BINS] + cov_names + [present[j] for j in est]
    ids = acc["account_id"].to_numpy(object) if len(acc) else np.array([], dtype=object)
    conv = acc["conv"].to_numpy(float) if len(acc) else np.zeros(0)
    amount = acc["amount"].to_numpy(float) if len(acc) else np.zeros(0)
    converted = ~np.isnan(conv)
    fill = np.nanmean(amount[converted]) if converted.any() and np.isfinite(amount[converted]).any() else 0.0
    amount = np.where(converted & np.isfinite(amount), amount, fill)
    return Panel(X=X, days=days, events=events, acct=r_acc, at_risk=r_risk, terms=terms,
                 channels=[present[j] for j in est], channel_cols=np.arange(nb + len(cov_names), X.shape[1]),
                 account_ids=ids, converted=converted, amount=amount,
                 not_estimable=not_estimable, left_out=rows.left_out)


def _raw_covariates(accounts: pd.DataFrame, ids) -> pd.DataFrame:
    """Per at-risk account: log employee count (NaN when missing or not positive) and
    the target flag (0/1, missing -> 0), for the columns the account table has."""
    acc = accounts.drop_duplicates("account_id").set_index("account_id").reindex(ids)
    out = {}
    if "employee_count" in acc:
        out["log_employee_count"] = np.log(pd.to_numeric(acc["employee_count"], errors="coerce")
                                           .where(lambda s: s > 0)).to_numpy(float)
    if "is_target" in acc:
        out["is_target"] = acc["is_target"].astype("boolean").fillna(False).to_numpy(dtype=float)
    return pd.DataFrame(out, index=pd.RangeIndex(len(ids)))


def _standardised_covariates(raw: pd.DataFrame) -> tuple[list, np.ndarray]:
    """Standardised log employee count and the target flag over all at-risk accounts
    (missing values -> the mean; a covariate without variation is left out)."""
    names, cols = [], []
    if "log_employee_count" in raw:
        v = raw["log_employee_count"].to_numpy(float)
        if np.isfinite(v).sum() > 1 and np.nanstd(v) > 0:
            v = np.where(np.isfinite(v), v, np.nanmean(v))
            names.append("log_employee_count_z")
            cols.append((v - v.mean()) / v.std())
    if "is_target" in raw:
        v = raw["is_target"].to_numpy(float)
        if len(v) and 0 < v.mean() < 1:
            names.append("is_target")
            cols.append(v)
    return names, (np.column_stack(cols) if cols else np.zeros((len(raw), 0)))


def _covariates(accounts: pd.DataFrame, ids) -> tuple[list, np.ndarray]:
    """Standardised log employee count and the target flag of the at-risk accounts
    (missing values -> the mean; a covariate without variation is left out)."""
    return _standardised_covariates(_raw_covariates(accounts, ids))


def fit_hazard(panel: Panel, weights: np.ndarray | None = None, *, ridge: float = 1.0, beta0=None,
               tol: float = 1e-8, max_iter: int = 50) -> np.ndarray:
    """Penalised Poisson maximum likelihood of the at-risk runs (Newton's method).

    ``weights``: per at-risk account (bootstrap), default 1. The penalty
    ``ridge/2 · Σ β_c²`` applies to the channel coefficients only."""
    r = panel.at_risk
    X, days, y = panel.X[r], panel.days[r], panel.events[r]
    w = np.ones(len(days)) if weights is None else np.asarray(weights, dtype=float)[panel.acct[r]]
    p = X.shape[1]
    pen = np.zeros(p)
    pen[panel.channel_cols] = ridge
    if beta0 is None:
        beta = np.zeros(p)
        rate = (w * y).sum() / max((w * days).sum(), 1e-12)
        beta[:len(BASELINE_BINS)] = np.log(max(rate, 1e-12))
    else:
        beta = np.array(beta0, dtype=float)
    ll_old = -np.inf
    # einsum, not BLAS: these products are small, and a threaded BLAS on a busy
    # machine makes them ~20x slower (the bootstrap refits the model hundreds of times)
    for _ in range(max_iter):
        eta = np.clip(np.einsum("ij,j->i", X, beta), -50, 50)
        mu = days * np.exp(eta)
        ll = float((w * (y * eta - mu)).sum() - 0.5 * (pen * beta ** 2).sum())
        # a baseline bin without events has its optimum at -inf: stop on the
        # log-likelihood, which converges, rather than on the coefficients
        if abs(ll - ll_old) < tol * (1.0 + abs(ll)):
            break
        ll_old = ll
        grad = np.einsum("ij,i->j", X, w * (y - mu)) - pen * beta
        hess = np.einsum("ij,ik->jk", X * (w * mu)[:, None], X) + np.diag(pen) + 1e-9 * np.eye(p)
        step = np.clip(np.linalg.solve(hess, grad), -5, 5)
        beta = beta + step
    return beta


def removal_effects(panel: Panel, beta: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Expected first opportunities lost per estimable channel if its touches were
    removed (``Σ_i w_i (exp(−Λ_i^{−c}) − exp(−Λ_i))``, ``Λ`` to the data end), and
    the expected total ``Σ_i w_i (1 − exp(−Λ_i))``."""
    n = len(panel.account_ids)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    cum, cum_wo = _cumulative_hazards(panel, beta)
    lost = np.einsum("i,ij->j", w, np.exp(-cum_wo) - np.exp(-cum)[:, None])
    return lost, float((w * (1 - np.exp(-cum))).sum())


def _cumulative_hazards(panel: Panel, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each account's cumulative hazard to the data end, as fitted and without each
    estimable channel (every channel at once: a run's hazard without channel c is
    its hazard times ``exp(−β_c x_c)``)."""
    n = len(panel.account_ids)
    lam = panel.days * np.exp(np.clip(np.einsum("ij,j->i", panel.X, beta), -50, 50))
    lam_wo = lam[:, None] * np.exp(-panel.X[:, panel.channel_cols] * beta[panel.channel_cols][None, :])
    # runs are sorted by account and every at-risk account has at least one run
    first = np.flatnonzero(np.r_[True, panel.acct[1:] != panel.acct[:-1]])
    cum, cum_wo = np.zeros(n), np.zeros((n, lam_wo.shape[1]))
    cum[panel.acct[first]] = np.add.reduceat(lam, first)
    if lam_wo.shape[1]:
        cum_wo[panel.acct[first]] = np.add.reduceat(lam_wo, first, axis=0)
    return cum, cum_wo


@dataclass
class IncrementalResult(Result):
    """Output of :func:`incremental_attribution`.

    Attributes
    ----------
    channels : DataFrame
        per channel: ``estimable`` (and ``why_not``), ``log_hazard_ratio`` with its
        interval, ``incremental_conversions`` (expected first opportunities lost
        without the channel's touches) with ``low``/``high``, ``share`` (positive
        parts normalised) with ``share_low``/``share_high``, ``incremental_pipeline``.
    replicates : ndarray
        bootstrap replicates x estimable channels of ``incremental_conversions``.
    info : dict
        accounts at risk, first opportunities, at-risk days, expected total, settings.
    """
    channels: pd.DataFrame
    replicates: np.ndarray
    n_boot: int
    seed: int
    info: dict = field(default_factory=dict)

    _summary_title = "Incremental attribution (hazard of the first opportunity)"

    def _summary_metadata(self) -> dict:
        keys = ("from_stage", "accounts_at_risk", "first_opportunities", "lag_days", "window_days")
        return {**{k: self.info[k] for k in keys if k in self.info}, "n_boot": self.n_boot, "seed": self.seed}

    @property
    def summary(self) -> pd.DataFrame:
        """The channel table (estimable channels first, by incremental conversions)."""
        return self.channels.sort_values(["estimable", "incremental_conversions"], ascending=False,
                                         ignore_index=True)


#: columns of :attr:`IncrementalResult.channels`
CHANNEL_COLUMNS = ["channel", "estimable", "why_not", "log_hazard_ratio", "lhr_low", "lhr_high",
                   "incremental_conversions", "low", "high", "share", "share_low", "share_high",
                   "incremental_pipeline"]


def _shares(lost: np.ndarray) -> np.ndarray:
    pos = np.clip(lost, 0, None)
    tot = pos.sum(axis=-1, keepdims=True)
    return np.divide(pos, tot, out=np.full(pos.shape, np.nan), where=tot > 0)


def incremental_attribution(data, *, from_stage: str = "sales_ready", lag_days: float = 7, window_days: float = 60,
                            ridge: float = 1.0, min_expected_events: float = 10, n_boot: int = 200, seed: int = 0, alpha: float = 0.05,
                            bootstrap: str = "poisson", stage_entries: pd.DataFrame | None = None
                            ) -> IncrementalResult:
    """Each channel's incremental first opportunities, from converting and
    non-converting accounts (module docstring: the model and its assumptions).

    Parameters
    ----------
    data : ResolvedDataset or abmkit.scale.PartitionedDataset
        on a partitioned dataset each partition computes its accounts' panel rows,
        and the fit runs once on the driver over the gathered (account-sized) rows:
        the same result as in memory.
    from_stage : str
        accounts are at risk from the day after they enter this stage.
    lag_days, window_days : float
        a touch counts as exposure from ``lag_days`` to ``window_days`` after it.
    ridge : float
        penalty on the channel log hazard ratios (prior sd ``1/sqrt(ridge)``).
    min_expected_events : float
        a channel is estimated only when its exposed and its unexposed at-risk days
        would each see at least this many first opportunities at the overall rate;
        otherwise it is reported as not estimable, with the reason.
    n_boot : int
        bootstrap replicates (model refitted in each); 0 = no intervals.
    seed : int
    alpha : float
        intervals are the (alpha/2, 1 − alpha/2) percentiles.
    bootstrap : {"poisson", "multinomial"}
        account weights: Poisson(1) per account id, or n accounts drawn with replacement.

    Returns
    -------
    IncrementalResult
    """
    from ..engine import is_partitioned, run
    if bootstrap not in ("poisson", "multinomial"):  # checked once, for both engines
        raise ValueError(f"bootstrap must be 'poisson' or 'multinomial', not {bootstrap!r}")
    if is_partitioned(data):  # a partitioned dataset: per-account rows on the partitions, the fit once (docs/scale.md)
        return run("incremental_attribution", data, from_stage=from_stage, lag_days=lag_days,
                   window_days=window_days, ridge=ridge, min_expected_events=min_expected_events, n_boot=n_boot,
                   seed=seed, alpha=alpha, bootstrap=bootstrap, stage_entries=stage_entries)
    panel = exposure_panel(data, from_stage=from_stage, lag_days=lag_days, window_days=window_days,
                           min_expected_events=min_expected_events, stage_entries=stage_entries)
    return result_from_panel(panel, from_stage=from_stage, lag_days=lag_days, window_days=window_days, ridge=ridge,
                             n_boot=n_boot, seed=seed, alpha=alpha, bootstrap=bootstrap)


def result_from_panel(panel: Panel, *, from_stage: str, lag_days: float, window_days: float, ridge: float,
                      n_boot: int, seed: int, alpha: float, bootstrap: str) -> IncrementalResult:
    """:func:`incremental_attribution` of a finished panel: the fit, the removal
    effects and the bootstrap (the same on either engine: the panel is account-sized)."""
    if bootstrap not in ("poisson", "multinomial"):
        raise ValueError(f"bootstrap must be 'poisson' or 'multinomial', not {bootstrap!r}")
    n = len(panel.account_ids)
    left_out = panel.left_out
    k = len(panel.channels)
    info = {"from_stage": from_stage, "lag_days": lag_days, "window_days": window_days, "ridge": ridge,
            "accounts_at_risk": n, "first_opportunities": int(panel.converted.sum()),
            "at_risk_days": float(panel.days[panel.at_risk].sum()),
            "left_out_converted_at_entry": left_out, "bootstrap": bootstrap if n_boot else None}
    if n == 0 or panel.events[panel.at_risk].sum() == 0:
        reason = (f"no account at risk (none entered {from_stage} before its first opportunity and before the "
                  f"data end; {left_out} entered it by opening one)" if n == 0
                  else "no first opportunity among the accounts at risk")
        info["not_applicable"] = reason
        table = pd.DataFrame({"channel": panel.channels + list(panel.not_estimable), "estimable": False,
                              "why_not": reason}).reindex(columns=CHANNEL_COLUMNS)
        res = IncrementalResult(channels=table, replicates=np.zeros((0, 0)), n_boot=n_boot, seed=seed, info=info)
        res.not_applicable = reason
        return res
    beta = fit_hazard(panel, ridge=ridge)
    lost, expected = removal_effects(panel, beta)
    info["expected_first_opportunities"] = expected
    reps = np.zeros((n_boot, k))
    coef_reps = np.zeros((n_boot, len(beta)))
    if n_boot:
        if bootstrap == "poisson":
            from .compare import poisson_weights
            W = poisson_weights(panel.account_ids, seed, 0, n_boot)
        else:
            rng = np.random.default_rng(seed)
            W = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)]).astype(float)
        for b in range(n_boot):  # one refit per replicate (warm start: a few Newton steps)
            coef_reps[b] = fit_hazard(panel, W[b], ridge=ridge, beta0=beta)
            reps[b] = removal_effects(panel, coef_reps[b], W[b])[0]
    q = (100 * alpha / 2, 100 * (1 - alpha / 2))
    amount_lost = removal_effects_pipeline(panel, beta)
    share = _shares(lost)
    cols = panel.channel_cols
    table = pd.DataFrame({
        "channel": panel.channels, "estimable": True, "why_not": None,
        "log_hazard_ratio": beta[cols],
        "lhr_low": np.percentile(coef_reps[:, cols], q[0], axis=0) if n_boot else np.nan,
        "lhr_high": np.percentile(coef_reps[:, cols], q[1], axis=0) if n_boot else np.nan,
        "incremental_conversions": lost,
        "low": np.percentile(reps, q[0], axis=0) if n_boot else np.nan,
        "high": np.percentile(reps, q[1], axis=0) if n_boot else np.nan,
        "share": share,
        "share_low": np.nanpercentile(_shares(reps), q[0], axis=0) if n_boot else np.nan,
        "share_high": np.nanpercentile(_shares(reps), q[1], axis=0) if n_boot else np.nan,
        "incremental_pipeline": amount_lost,
    })
    if panel.not_estimable:
        table = pd.concat([table, pd.DataFrame({"channel": list(panel.not_estimable), "estimable": False,
                                                "why_not": list(panel.not_estimable.values())})],
                          ignore_index=True)
    table = table.reindex(columns=CHANNEL_COLUMNS)
    return IncrementalResult(channels=table, replicates=reps, n_boot=n_boot, seed=seed, info=info)


def removal_effects_pipeline(panel: Panel, beta: np.ndarray) -> np.ndarray:
    """Expected pipeline lost per channel: each account's expected conversions lost
    times its first-opportunity amount (accounts without one: the mean amount of the
    accounts with one)."""
    cum, cum_wo = _cumulative_hazards(panel, beta)
    return ((np.exp(-cum_wo) - np.exp(-cum)[:, None]) * panel.amount[:, None]).sum(axis=0)


def add_to_comparison(data, cj, credits: pd.DataFrame, conservation: pd.DataFrame, low, high, channels, *,
                      n_boot: int, seed: int, alpha: float, bootstrap: str = "poisson"):
    """Add the ``incremental`` model to a comparison (:func:`abmkit.attribution.compare_models`).

    Its channel shares (positive incremental conversions normalised over
    ``channels``, the channels seen in the converting journeys) split the
    journeys' conversions, pipeline and revenue, so its credits are conserved by
    construction; its interval comes from its own bootstrap (refitted per replicate).
    The shares are estimated on every account at risk in the data, not only on the
    period's conversions (``info["incremental"]`` says so)."""
    res = incremental_attribution(data, n_boot=n_boot, seed=seed, alpha=alpha,
                                  bootstrap="multinomial" if bootstrap == "multinomial" else "poisson")
    conv = cj.conversions[cj.conversions["n_touches"] > 0]
    totals = (float(len(conv)), float(conv["pipeline_amount"].sum()), float(conv["revenue_amount"].sum()))
    return add_result_to_comparison(res, totals, credits, conservation, low, high, channels, n_boot=n_boot,
                                    alpha=alpha)


def add_result_to_comparison(res: IncrementalResult, totals, credits: pd.DataFrame, conservation: pd.DataFrame,
                             low, high, channels, *, n_boot: int, alpha: float):
    """:func:`add_to_comparison` of a fitted model: ``totals`` are the conversions,
    pipeline and revenue of the converting journeys with a touch (summed over
    partitions on a partitioned dataset)."""
    est = res.channels[res.channels["estimable"]]
    lost = est.set_index("channel")["incremental_conversions"].reindex(list(channels)).fillna(0.0)
    share = _shares(lost.to_numpy())
    ok = bool(np.isfinite(share).all())
    s = np.nan_to_num(share)
    rows = pd.DataFrame({"channel": list(channels), "model": "incremental", "conversions": s * totals[0],
                         "pipeline": s * totals[1], "revenue": s * totals[2]})
    # incremental alone: no path model's credits to add to
    credits = pd.concat([credits, rows], ignore_index=True) if len(credits) else rows
    got = (float(s.sum() * totals[0]), float(s.sum() * totals[1]), float(s.sum() * totals[2]))
    conservation = pd.concat([conservation, pd.DataFrame([{
        "model": "incremental", "conversions_given": totals[0], "conversions_credited": got[0],
        "pipeline_given": totals[1], "pipeline_credited": got[1], "revenue_given": totals[2],
        "revenue_credited": got[2], "ok": ok and bool(np.allclose(totals, got, rtol=1e-9, atol=1e-6))}])],
        ignore_index=True)
    if low is not None and n_boot and res.replicates.size:
        cols = [est["channel"].tolist().index(c) if c in est["channel"].tolist() else -1 for c in channels]
        reps = np.where(np.array(cols)[None, :] >= 0, res.replicates[:, np.maximum(cols, 0)], 0.0)
        rs = _shares(reps)
        q = (100 * alpha / 2, 100 * (1 - alpha / 2))
        low = low.copy()
        high = high.copy()
        low["incremental"] = np.nanpercentile(rs, q[0], axis=0)
        high["incremental"] = np.nanpercentile(rs, q[1], axis=0)
    return credits, conservation, low, high, res
