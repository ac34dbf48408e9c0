"""Lead-to-account mapping: which account does each contact belong to (see docs/mapping.md).

Rules, first that fires wins:

1. ``crm_account_id`` present and known → method ``crm``, confidence 1.0.
2. the contact's registrable email domain equals exactly one account's ``domain``
   or one of its ``extra_domains`` → ``domain``, confidence 1.0.
   A domain listed by several accounts (subsidiaries, shared mail systems) is never
   picked silently: the contact's company name decides *among those accounts only*
   (rule 4 restricted to them); when it cannot, the contact stays unmatched with
   reason ``ambiguous_domain: <ids>``.
3. free-mail / ISP domains (:func:`abmkit.domains.free_mail_domains`) skip rule 2.
4. company name: names are normalised (case, accents, punctuation, "&"→"and",
   leading "the", trailing legal forms from ``presets/legal_suffixes.txt``); an
   exact normalised match scores 100, otherwise rapidfuzz scores the name against
   account names (default: the better of ``fuzz.ratio`` on the names as written
   and word-sorted) inside blocks (same first three or same last three characters
   of the name, words sorted or as written), computed once per *distinct* name.
   The best name must score ≥ ``fuzzy_threshold`` and every other account must
   score more than ``ambiguity_margin`` below it → ``fuzzy_name``, confidence = score / 100.
   Otherwise the contact is unmatched with reason ``ambiguous_name: <ids>`` —
   unless the contact typed exactly one candidate's full name *with* its legal form
   ("Lake Core Pty Ltd" among "Lake Core Ltda." and "Lake Core Pty Ltd"), which then
   wins (reason ``name_exact_with_legal_form``).
5. else ``unmatched`` with the reason.

Blocking means a name whose first three *and* last three characters (in both word
orders) differ from the account's is not compared; such pairs score far below 90
except for very short names, which is the price of never comparing every name with
every account.

Example
-------
>>> import pandas as pd
>>> accounts = pd.DataFrame({"account_id": ["a1", "a2"], "account_name": ["Acme GmbH", "Globex Corp"],
...                          "domain": ["acme.de", "globex.com"], "extra_domains": ["acme.co.uk", None]})
>>> contacts = pd.DataFrame({"contact_id": ["c1", "c2", "c3", "c4"],
...                          "email": ["x@mail.acme.co.uk", "y@gmail.com", "z@gmail.com", None],
...                          "company_name": [None, "GLOBEX, Inc.", "Initech", None],
...                          "crm_account_id": [None, None, None, "a1"]})
>>> map_contacts(contacts, accounts)[["contact_id", "account_id", "method", "reason"]].values.tolist()
[['c1', 'a1', 'domain', 'email_domain'], ['c2', 'a2', 'fuzzy_name', 'name_exact'], ['c3', None, 'unmatched', 'free_mail_no_company_match'], ['c4', 'a1', 'crm', 'crm_account_id']]
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from .domains import EMAIL_PATTERN as _EMAIL_PATTERN
from .domains import free_mail_domains, registrable_domain
from .results import Result

METHODS: tuple[str, ...] = ("crm", "domain", "fuzzy_name", "unmatched")
#: output columns of :func:`map_contacts`, in order
OUTPUT_COLUMNS: tuple[str, ...] = (
    "contact_id", "account_id", "method", "confidence", "reason", "matched_on", "score",
    "candidate_account_ids", "rolled_up_from",
)
_BLOCK_CHARS = 3
_QUERY_CHUNK = 2048


# --------------------------------------------------------------------------- names
@lru_cache(maxsize=1)
def legal_suffixes() -> frozenset[str]:
    """Legal-form tokens stripped from the end of company names (shipped list
    ``abmkit/presets/legal_suffixes.txt``)."""
    text = resources.files("abmkit.presets").joinpath("legal_suffixes.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))


@lru_cache(maxsize=1)
def _suffix_pattern() -> re.Pattern:
    tokens = "|".join(sorted((re.escape(t) for t in legal_suffixes()), key=len, reverse=True))
    # one or more trailing legal tokens, optionally joined by "and" ("gmbh & co kg")
    return re.compile(rf"(?:\s+(?:and\s+)?(?:{tokens}))+$")


def _strip_legal_suffixes(text: pd.Series) -> pd.Series:
    """Drop trailing legal-form tokens; a name made only of them is kept whole."""
    stripped = (" " + text).str.replace(_suffix_pattern(), "", regex=True).str.strip()
    return stripped.where(stripped != "", text)


# letters NFKD does not decompose
_LETTERS = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})


def normalise_company_names(values: pd.Series, *, strip_legal: bool = True) -> pd.Series:
    """Normalised company names for matching (None when nothing is left).

    Case-folds, strips accents, turns "&" into "and", drops dots and apostrophes
    (``S.A.`` → ``sa``), turns other punctuation into spaces, drops a leading
    "the" and trailing legal forms (:func:`legal_suffixes`), squeezes whitespace.
    A name made only of legal tokens is kept rather than emptied.
    ``strip_legal=False`` keeps the legal form (used to break ties, see
    :func:`map_contacts`).

    Example
    -------
    >>> normalise_company_names(pd.Series(["The Müller & Söhne GmbH & Co. KG", "ACME, Inc.", "S.A.", None])).tolist()
    ['muller and sohne', 'acme', 'sa', None]
    """
    s = pd.Series(values, copy=False)
    s = s.astype(object).where(s.notna(), None)
    uniq = pd.Series(pd.unique(s.dropna().astype(str)), dtype=object)
    text = uniq.str.casefold()
    wide = text.str.contains(r"[^\x00-\x7f]", regex=True).to_numpy(dtype=bool)
    if wide.any():   # accents: only the few non-ASCII names pay for NFKD
        w = text[wide].str.normalize("NFKD").str.replace(r"[\u0300-\u036f]", "", regex=True)
        text[wide] = w.str.translate(_LETTERS).to_numpy()
    text = text.str.replace("&", " and ", regex=False)
    text = text.str.replace(r"[.'’`´]", "", regex=True)
    text = text.str.replace(r"[\W_]+", " ", regex=True).str.strip()
    text = text.str.replace(r"^the\s+", "", regex=True)
    if strip_legal:
        text = _strip_legal_suffixes(text)
    text = text.where(text != "", None)
    table = dict(zip(uniq, text))
    out = s.map(table)
    return out.astype(object).where(out.notna(), None)


# --------------------------------------------------------------------------- inputs
def _blank_to_none(s: pd.Series) -> pd.Series:
    """Strings trimmed; "", whitespace, NaN and None all become None (other values kept)."""
    s = s.astype(object)
    present = s.notna()
    if present.any() and not pd.api.types.is_string_dtype(s[present].infer_objects()):
        s = s.where(~present, s[present].astype(str))   # numbers typed into text columns become text
    out = s.str.strip() if present.any() else s
    bad = out.isna() | (out == "")
    return out.where(~bad, None)


def _as_ids(s: pd.Series) -> pd.Series:
    """Ids as strings; integral floats from a CSV (``12.0``) become ``"12"``."""
    if pd.api.types.is_float_dtype(s.dtype):
        whole = s.dropna()
        if (whole == np.floor(whole)).all():
            s = s.astype("Int64")
    s = s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))
    return _blank_to_none(s)


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name].reset_index(drop=True)
    return pd.Series([None] * len(df), dtype=object)


def _prepare_accounts(accounts: pd.DataFrame) -> pd.DataFrame:
    if accounts is None or "account_id" not in getattr(accounts, "columns", []):
        raise ValueError("accounts: an 'account_id' column is required (columns found: "
                         f"{list(getattr(accounts, 'columns', []))}).")
    if len(accounts) == 0:
        raise ValueError("accounts table is empty: nothing to map contacts to. Load or clean the "
                         "accounts export first (every contact would be unmatched).")
    acc = pd.DataFrame({"account_id": _as_ids(_column(accounts, "account_id"))})
    missing = acc["account_id"].isna()
    if missing.any():
        rows = np.flatnonzero(missing.to_numpy())[:5].tolist()
        raise ValueError(f"accounts: column 'account_id' is empty in {int(missing.sum())} row(s) (rows {rows}). "
                         "Every account needs an id; fix or drop those rows.")
    dup = acc["account_id"].duplicated(keep=False)
    if dup.any():
        ids = acc.loc[dup, "account_id"].unique()[:5].tolist()
        raise ValueError(f"accounts: column 'account_id' has {int(dup.sum())} duplicated row(s) (ids {ids}). "
                         "Deduplicate accounts first (abmkit.clean merges duplicates).")
    acc["account_name"] = _blank_to_none(_column(accounts, "account_name"))
    acc["name_norm"] = normalise_company_names(acc["account_name"])
    acc["domain"] = registrable_domain(_blank_to_none(_column(accounts, "domain")))
    acc["extra_domains"] = _blank_to_none(_column(accounts, "extra_domains"))
    acc["parent_account_id"] = _as_ids(_column(accounts, "parent_account_id"))
    return acc


def _prepare_contacts(contacts: pd.DataFrame) -> pd.DataFrame:
    if contacts is None or "contact_id" not in getattr(contacts, "columns", []):
        raise ValueError("contacts: a 'contact_id' column is required (columns found: "
                         f"{list(getattr(contacts, 'columns', []))}).")
    con = pd.DataFrame({"contact_id": _as_ids(_column(contacts, "contact_id"))})
    email = _blank_to_none(_column(contacts, "email"))
    # split_email's rule (one "@", a dotted host, no spaces) and its registrable domain, without
    # building the normalised email column split_email also returns: 3x faster on a million rows
    derived = registrable_domain(email.str.extract(_EMAIL_PATTERN, expand=False)) if len(email) else email
    given = registrable_domain(_blank_to_none(_column(contacts, "email_domain")))
    con["has_email"] = email.notna() | given.notna()
    con["email_domain"] = given.where(given.notna(), derived)
    con["company_name"] = _blank_to_none(_column(contacts, "company_name"))
    con["company_norm"] = normalise_company_names(con["company_name"])
    con["crm_account_id"] = _as_ids(_column(contacts, "crm_account_id"))
    return con


def _account_domains(acc: pd.DataFrame) -> pd.DataFrame:
    """One row per (domain, account_id): primary and extra domains, registrable form."""
    extra = acc[["account_id", "extra_domains"]].dropna()
    extra = extra.assign(domain=extra["extra_domains"].str.split(r"[;,\s]+")).explode("domain")
    extra["domain"] = registrable_domain(_blank_to_none(extra["domain"]))
    both = pd.concat([acc[["account_id", "domain"]], extra[["account_id", "domain"]]], ignore_index=True)
    return both.dropna().drop_duplicates()


# --------------------------------------------------------------------------- fuzzy
def _block_keys(names: pd.Series) -> list[pd.Series]:
    """Blocking keys: first and last characters of the word-sorted name (the default
    scorer ignores word order) and of the name as written."""
    compact = names.str.replace(" ", "", regex=False)
    sorted_words = names.str.split(" ").map(sorted).str.join("")
    return [sorted_words.str[:_BLOCK_CHARS], sorted_words.str[-_BLOCK_CHARS:],
            compact.str[:_BLOCK_CHARS], compact.str[-_BLOCK_CHARS:]]


def _sorted_words(names: np.ndarray) -> np.ndarray:
    return pd.Series(names, dtype=object).str.split(" ").map(sorted).str.join(" ").to_numpy(dtype=object)


def _cdist(q: np.ndarray, c: np.ndarray, q_sorted, c_sorted, scorer, cutoff, workers) -> np.ndarray:
    """Score matrix; the default (scorer None) is the better of ``fuzz.ratio`` on the
    names as written and on their word-sorted forms."""
    if scorer is not None:
        return process.cdist(q.tolist(), c.tolist(), scorer=scorer, score_cutoff=cutoff, dtype=np.float32,
                             workers=workers)
    m = process.cdist(q.tolist(), c.tolist(), scorer=fuzz.ratio, score_cutoff=cutoff, dtype=np.float32,
                      workers=workers)
    m2 = process.cdist(q_sorted.tolist(), c_sorted.tolist(), scorer=fuzz.ratio, score_cutoff=cutoff,
                       dtype=np.float32, workers=workers)
    return np.maximum(m, m2)


def name_scores(a, b, scorer: Callable | None = None) -> np.ndarray:
    """Element-wise similarity (0-100) of two equal-length sequences of *normalised*
    names, with the scorer :func:`map_contacts` uses (default: the better of
    ``fuzz.ratio`` on the names as written and word-sorted).

    Example
    -------
    >>> name_scores(["umbrella holdings", "acme"], ["holdings umbrella", "acne"]).round(1).tolist()
    [100.0, 75.0]
    """
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    if scorer is not None:
        return process.cpdist(a.tolist(), b.tolist(), scorer=scorer, dtype=np.float32).astype(float)
    s1 = process.cpdist(a.tolist(), b.tolist(), scorer=fuzz.ratio, dtype=np.float32)
    s2 = process.cpdist(_sorted_words(a).tolist(), _sorted_words(b).tolist(), scorer=fuzz.ratio, dtype=np.float32)
    return np.maximum(s1, s2).astype(float)


def _blocked_candidates(queries: pd.Series, choices: pd.Series, scorer: Callable | None, cutoff: float,
                        workers: int = -1) -> pd.DataFrame:
    """Top-2 choices per query inside each block: columns q, c, score (score ≥ cutoff).

    ``queries``/``choices`` are distinct normalised names (positional index). Each
    blocking key contributes its own top 2; the union is deduped.
    """
    parts = []
    q_arr = queries.to_numpy(dtype=object)
    c_arr = choices.to_numpy(dtype=object)
    q_srt, c_srt = _sorted_words(q_arr), _sorted_words(c_arr)
    for q_key, c_key in zip(_block_keys(queries), _block_keys(choices)):
        c_groups = pd.Series(np.arange(len(c_arr))).groupby(c_key.to_numpy()).indices
        q_groups = pd.Series(np.arange(len(q_arr))).groupby(q_key.to_numpy()).indices
        for key, qi_all in q_groups.items():   # a loop over blocks, not over names
            ci = c_groups.get(key)
            if ci is None:
                continue
            for start in range(0, len(qi_all), _QUERY_CHUNK):
                qi = qi_all[start:start + _QUERY_CHUNK]
                m = _cdist(q_arr[qi], c_arr[ci], q_srt[qi], c_srt[ci], scorer, cutoff,
                           workers if len(qi) * len(ci) > 50_000 else 1)
                k = min(2, m.shape[1])
                top = np.argpartition(m, m.shape[1] - k, axis=1)[:, -k:] if m.shape[1] > k else \
                    np.tile(np.arange(m.shape[1]), (m.shape[0], 1))
                scores = np.take_along_axis(m, top, axis=1)
                parts.append((np.repeat(qi, k), ci[top.ravel()], scores.ravel()))
    if not parts:
        return pd.DataFrame({"q": pd.Series([], dtype=np.int64), "c": pd.Series([], dtype=np.int64),
                             "score": pd.Series([], dtype=np.float32)})
    cand = pd.DataFrame({"q": np.concatenate([p[0] for p in parts]), "c": np.concatenate([p[1] for p in parts]),
                         "score": np.concatenate([p[2] for p in parts])})
    cand = cand[cand["score"] >= cutoff]
    return cand.drop_duplicates(["q", "c"])


def _joined_ids(frame: pd.DataFrame, key: str) -> pd.Series:
    """Sorted distinct account ids per key, ";"-joined (only called on the few ambiguous keys)."""
    if frame.empty:
        return pd.Series(dtype=object)
    f = frame[[key, "account_id"]].drop_duplicates().sort_values([key, "account_id"])
    return f.groupby(key, sort=False)["account_id"].agg(";".join)


def _decide(cand: pd.DataFrame, key: str, threshold: float, margin: float) -> pd.DataFrame:
    """From candidate (key, account_id, score) rows pick per key: matched account or
    ambiguity. Returns key, account_id, score, matched_on, candidate_account_ids, status
    (matched / ambiguous / no_match)."""
    cand = cand.sort_values([key, "score", "account_id"], ascending=[True, False, True], kind="stable")
    best = cand.groupby(key, sort=False)["score"].transform("max")
    close = cand[cand["score"] > best - margin - 1e-9]   # within the margin of the best, incl. ties
    agg = close.groupby(key, sort=False).agg(
        account_id=("account_id", "first"), score=("score", "first"), matched_on=("matched_on", "first"),
        n_close=("account_id", "nunique"))
    agg["status"] = np.where(agg["score"] < threshold, "no_match",
                             np.where(agg["n_close"] > 1, "ambiguous", "matched"))
    agg["candidate_account_ids"] = _joined_ids(close[close[key].isin(agg.index[agg["status"] == "ambiguous"])],
                                               key).reindex(agg.index)
    agg.loc[agg["status"] != "matched", "account_id"] = None
    return agg.drop(columns="n_close").reset_index()


def _name_matches(names: pd.Series, acc: pd.DataFrame, scorer: Callable | None, threshold: float,
                  margin: float, workers: int) -> pd.DataFrame:
    """Match distinct normalised names against all account names (rule 4)."""
    names = pd.Series(pd.unique(names.dropna()), dtype=object)
    acc_names = acc.dropna(subset=["name_norm"])[["account_id", "account_name", "name_norm"]]
    choices = pd.Series(pd.unique(acc_names["name_norm"]), dtype=object)
    exact = names.isin(set(choices))
    q = names[~exact].reset_index(drop=True)
    cand = _blocked_candidates(q, choices, scorer, max(0.0, threshold - margin), workers)
    pairs = pd.concat([
        pd.DataFrame({"name": names[exact].to_numpy(), "name_norm": names[exact].to_numpy(), "score": 100.0}),
        pd.DataFrame({"name": q.to_numpy()[cand["q"].to_numpy()], "name_norm": choices.to_numpy()[cand["c"].to_numpy()],
                      "score": cand["score"].to_numpy(dtype=float)}),
    ], ignore_index=True)
    # a normalised name shared by several accounts yields one candidate per account: a tie
    pairs = pairs.merge(acc_names, on="name_norm", how="inner")
    pairs["matched_on"] = pairs["account_name"]
    out = _decide(pairs[["name", "account_id", "score", "matched_on"]], "name", threshold, margin)
    out["exact"] = out["score"] >= 100.0
    return out


def _restricted_name_matches(rows: pd.DataFrame, domain_accounts: pd.DataFrame, acc: pd.DataFrame,
                             scorer: Callable | None, threshold: float, margin: float) -> pd.DataFrame:
    """Rule 4 restricted to the accounts that share the contact's email domain."""
    pairs = rows[["row", "email_domain", "company_norm"]].merge(domain_accounts, left_on="email_domain",
                                                                right_on="domain")
    pairs = pairs.merge(acc[["account_id", "account_name", "name_norm"]], on="account_id")
    pairs = pairs.dropna(subset=["company_norm", "name_norm"])
    if pairs.empty:
        return pd.DataFrame(columns=["row", "account_id", "score", "matched_on", "candidate_account_ids", "status"])
    pairs["score"] = name_scores(pairs["company_norm"].to_numpy(), pairs["name_norm"].to_numpy(), scorer)
    pairs.loc[pairs["company_norm"] == pairs["name_norm"], "score"] = 100.0
    pairs["matched_on"] = pairs["account_name"]
    return _decide(pairs[["row", "account_id", "score", "matched_on"]], "row", threshold, margin)


def _break_ties_by_legal_form(res: pd.DataFrame, con: pd.DataFrame, acc: pd.DataFrame, rows) -> None:
    """Ambiguous names where the contact typed exactly one candidate's full name,
    legal form included ("Lake Core Ltda." vs "Lake Core Pty Ltd"): that account."""
    if len(rows) == 0:
        return
    pairs = pd.DataFrame({"row": rows, "account_id": res.loc[rows, "candidate_account_ids"].str.split(";").to_numpy(),
                          "typed": normalise_company_names(con.loc[rows, "company_name"], strip_legal=False).to_numpy()})
    pairs = pairs.explode("account_id").merge(acc[["account_id", "account_name"]], on="account_id")
    pairs["official"] = normalise_company_names(pairs["account_name"], strip_legal=False).to_numpy()
    hit = pairs[pairs["typed"] == pairs["official"]]
    unique = hit.groupby("row")["account_id"].agg(["first", "size"])
    unique = unique[unique["size"] == 1]
    if unique.empty:
        return
    idx = unique.index.to_numpy()
    res.loc[idx, "account_id"] = unique["first"].to_numpy()
    res.loc[idx, "method"] = "fuzzy_name"
    res.loc[idx, "confidence"] = 1.0
    res.loc[idx, "score"] = 100.0
    res.loc[idx, "reason"] = "name_exact_with_legal_form"
    res.loc[idx, "matched_on"] = res.loc[idx, "account_id"].map(acc.set_index("account_id")["account_name"])


# --------------------------------------------------------------------------- parents
def parent_rollup(accounts: pd.DataFrame) -> pd.DataFrame:
    """Top-most ancestor of every account through ``parent_account_id``.

    Returns ``account_id, top_account_id, depth, issue``; ``issue`` is
    ``parent_cycle`` for accounts on or leading into a cycle (their
    ``top_account_id`` is themselves: never rolled up) and ``unknown_parent: <id>``
    when the chain points at an id missing from the table (the chain stops there).
    Pointer doubling: log2(n) vectorised steps, so a cycle cannot hang it.

    Example
    -------
    >>> acc = pd.DataFrame({"account_id": ["a", "b", "c", "x", "y"], "parent_account_id": [None, "a", "b", "y", "x"]})
    >>> parent_rollup(acc)[["account_id", "top_account_id", "depth", "issue"]].values.tolist()
    [['a', 'a', 0, None], ['b', 'a', 1, None], ['c', 'a', 2, None], ['x', 'x', 0, 'parent_cycle'], ['y', 'y', 0, 'parent_cycle']]
    """
    ids = _as_ids(accounts["account_id"].reset_index(drop=True))
    parent = _as_ids(_column(accounts, "parent_account_id"))
    n = len(ids)
    pos = pd.Series(np.arange(n), index=ids.to_numpy())
    parent_pos = parent.map(pos)
    self_loop = parent == ids
    unknown = parent.notna() & parent_pos.isna()
    nxt = np.where(parent_pos.notna() & ~self_loop, parent_pos.fillna(-1).to_numpy(), np.arange(n)).astype(np.int64)
    is_root = nxt == np.arange(n)
    depth = (~is_root).astype(np.int64)
    for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 1):
        depth = depth + depth[nxt]
        nxt = nxt[nxt]
    # after 2**k >= n jumps a chain that ends sits on its root; one in a cycle never does
    in_cycle = ~is_root[nxt]
    top = np.where(in_cycle, np.arange(n), nxt)
    out = pd.DataFrame({"account_id": ids, "top_account_id": ids.to_numpy()[top],
                        "depth": np.where(in_cycle, 0, np.minimum(depth, n))})
    issue = pd.Series([None] * n, dtype=object)
    unknown_at_top = unknown.to_numpy()[top] & ~in_cycle
    issue[unknown_at_top] = "unknown_parent: " + parent.to_numpy()[top][unknown_at_top].astype(str)
    issue[in_cycle] = "parent_cycle"
    out["issue"] = issue
    return out


# --------------------------------------------------------------------------- main
def map_contacts(contacts: pd.DataFrame, accounts: pd.DataFrame, *, fuzzy_threshold: float = 90,
                 ambiguity_margin: float = 2.0, rollup_to_parent: bool = False,
                 free_mail: Iterable[str] | None = None, scorer: Callable | None = None,
                 workers: int = -1) -> pd.DataFrame:
    """Map every contact to an account (rules in the module docstring).

    Parameters
    ----------
    contacts : DataFrame
        Needs ``contact_id``; uses ``email`` (or ``email_domain``), ``company_name``,
        ``crm_account_id`` when present. Empty strings and NaN are treated alike.
    accounts : DataFrame
        Needs ``account_id``; uses ``account_name``, ``domain``, ``extra_domains``
        (``;``-joined), ``parent_account_id`` when present. Must not be empty.
    fuzzy_threshold : float
        Minimum name score (0-100) for a ``fuzzy_name`` match.
    ambiguity_margin : float
        The best account must beat every other by more than this many points.
    rollup_to_parent : bool
        Report the top-most parent account instead (``rolled_up_from`` keeps the
        matched one; accounts in a parent cycle are not rolled up and say so).
    free_mail : iterable of str, optional
        Free-mail domains; default :func:`abmkit.domains.free_mail_domains`.
    scorer : callable, optional
        A rapidfuzz scorer. Default (None): the better of ``fuzz.ratio`` on the
        normalised names as written and on their word-sorted forms (word order free
        without being fooled by a typo in a first letter, and no partial matching, so
        "Acme" does not match "Acme Analytics"); see :func:`name_scores`.
    workers : int
        Threads for rapidfuzz (-1 = all cores).

    Returns
    -------
    DataFrame
        One row per input contact, in input order: ``contact_id, account_id, method,
        confidence, reason, matched_on, score, candidate_account_ids, rolled_up_from``.
        ``confidence`` is 0 for unmatched contacts; ``reason`` says which rule fired or
        why none did (``no_email_no_company``, ``invalid_email_no_company``,
        ``free_mail_no_company``, ``free_mail_no_company_match``, ``ambiguous_domain: ids``,
        ``ambiguous_name: ids``, ``no_match``, prefixed by ``unknown_crm_account: id;``
        when the CRM id was unknown).

    Example
    -------
    >>> acc = pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"], "domain": ["acme.com"]})
    >>> map_contacts(pd.DataFrame({"contact_id": ["c1"], "email": ["Ann@ACME.com"]}), acc)["account_id"].tolist()
    ['a1']
    """
    acc = _prepare_accounts(accounts)
    con = _prepare_contacts(contacts)
    free = frozenset(d.lower() for d in (free_mail if free_mail is not None else free_mail_domains()))
    n = len(con)
    res = pd.DataFrame({
        "contact_id": con["contact_id"], "account_id": pd.Series([None] * n, dtype=object),
        "method": "unmatched", "confidence": 0.0, "reason": pd.Series([None] * n, dtype=object),
        "matched_on": pd.Series([None] * n, dtype=object), "score": np.nan,
        "candidate_account_ids": pd.Series([None] * n, dtype=object),
        "rolled_up_from": pd.Series([None] * n, dtype=object),
    })
    open_ = np.ones(n, dtype=bool)   # no rule has fired yet

    # rule 1: CRM id
    crm = con["crm_account_id"]
    known = crm.isin(set(acc["account_id"])) & crm.notna()
    res.loc[known, ["account_id", "method", "confidence", "reason"]] = [None, "crm", 1.0, "crm_account_id"]
    res.loc[known, "account_id"] = crm[known]
    res.loc[known, "matched_on"] = crm[known]
    open_ &= ~known.to_numpy()
    unknown_crm = (crm.notna() & ~known).to_numpy()

    # rules 2-3: email domain (free mail skipped); shared domains fall through to names
    dom = con["email_domain"]
    is_free = dom.isin(free).to_numpy()
    domain_accounts = _account_domains(acc)
    per_domain = domain_accounts.groupby("domain")["account_id"].agg(n="nunique", first="first")
    per_domain["ids"] = _joined_ids(domain_accounts[domain_accounts["domain"].isin(
        per_domain.index[per_domain["n"] > 1])], "domain").reindex(per_domain.index)
    n_acc = dom.map(per_domain["n"]).fillna(0).to_numpy()
    by_domain = open_ & ~is_free & (n_acc == 1)
    res.loc[by_domain, "account_id"] = dom[by_domain].map(per_domain["first"])
    res.loc[by_domain, ["method", "confidence", "reason"]] = ["domain", 1.0, "email_domain"]
    res.loc[by_domain, "matched_on"] = dom[by_domain]
    open_ &= ~by_domain

    shared = open_ & ~is_free & (n_acc > 1)
    if shared.any():
        rows = con.loc[shared, ["email_domain", "company_norm"]].assign(row=np.flatnonzero(shared))
        dec = _restricted_name_matches(rows, domain_accounts[domain_accounts["domain"].isin(
            per_domain.index[per_domain["n"] > 1])], acc, scorer, fuzzy_threshold, ambiguity_margin)
        ok = dec[dec["status"] == "matched"]
        idx = ok["row"].to_numpy(dtype=np.int64)
        res.loc[idx, "account_id"] = ok["account_id"].to_numpy()
        res.loc[idx, "method"] = "fuzzy_name"
        res.loc[idx, "score"] = ok["score"].to_numpy(dtype=float)
        res.loc[idx, "confidence"] = ok["score"].to_numpy(dtype=float) / 100.0
        res.loc[idx, "reason"] = "shared_domain_resolved_by_name"
        res.loc[idx, "matched_on"] = ok["matched_on"].to_numpy()
        res.loc[idx, "candidate_account_ids"] = con.loc[idx, "email_domain"].map(per_domain["ids"]).to_numpy()
        not_ok = np.setdiff1d(np.flatnonzero(shared), idx)
        res.loc[not_ok, "reason"] = "ambiguous_domain: " + con.loc[not_ok, "email_domain"].map(per_domain["ids"])
        res.loc[not_ok, "candidate_account_ids"] = con.loc[not_ok, "email_domain"].map(per_domain["ids"])
        open_[shared] = False   # decided here, matched or reported ambiguous

    # rule 4: company name against every account
    has_name = con["company_norm"].notna().to_numpy()
    by_name = open_ & has_name
    if by_name.any():
        dec = _name_matches(con.loc[by_name, "company_norm"], acc, scorer, fuzzy_threshold,
                            ambiguity_margin, workers).set_index("name")
        names = con.loc[by_name, "company_norm"]
        status = names.map(dec["status"]).fillna("no_match")
        matched = status == "matched"
        idx = matched.index[matched]
        res.loc[idx, "account_id"] = names[matched].map(dec["account_id"])
        res.loc[idx, "method"] = "fuzzy_name"
        res.loc[idx, "score"] = names[matched].map(dec["score"]).astype(float)
        res.loc[idx, "confidence"] = res.loc[idx, "score"] / 100.0
        res.loc[idx, "reason"] = np.where(names[matched].map(dec["exact"]).astype(bool), "name_exact", "name_fuzzy")
        res.loc[idx, "matched_on"] = names[matched].map(dec["matched_on"])
        amb = status.index[status == "ambiguous"]
        res.loc[amb, "candidate_account_ids"] = names[amb].map(dec["candidate_account_ids"])
        res.loc[amb, "score"] = names[amb].map(dec["score"]).astype(float)
        res.loc[amb, "reason"] = "ambiguous_name: " + res.loc[amb, "candidate_account_ids"]
        open_[idx.to_numpy()] = False
        open_[amb.to_numpy()] = False
        _break_ties_by_legal_form(res, con, acc, amb)

    # rule 5: why nothing fired
    no_domain = con["email_domain"].isna().to_numpy()
    invalid_email = no_domain & con["has_email"].to_numpy()
    why = np.select(
        [is_free & ~has_name, is_free, no_domain & ~has_name & invalid_email, no_domain & ~has_name],
        ["free_mail_no_company", "free_mail_no_company_match", "invalid_email_no_company", "no_email_no_company"],
        "no_match")
    res.loc[open_, "reason"] = why[open_]
    unmatched = (res["method"] == "unmatched").to_numpy()
    pref = unknown_crm & unmatched
    res.loc[pref, "reason"] = "unknown_crm_account: " + crm[pref] + "; " + res.loc[pref, "reason"]
    later = unknown_crm & ~unmatched
    res.loc[later, "reason"] = res.loc[later, "reason"] + "; unknown_crm_account: " + crm[later]

    if rollup_to_parent:
        tops = parent_rollup(acc).set_index("account_id")
        has = res["account_id"].notna()
        top = res.loc[has, "account_id"].map(tops["top_account_id"])
        moved = top.index[top != res.loc[has, "account_id"]]
        res.loc[moved, "rolled_up_from"] = res.loc[moved, "account_id"]
        res.loc[moved, "account_id"] = top[moved]
        cyc = has & res["account_id"].map(tops["issue"]).eq("parent_cycle")
        res.loc[cyc, "reason"] = res.loc[cyc, "reason"] + "; parent_cycle: not rolled up"
    res["confidence"] = res["confidence"].astype(float)
    res["score"] = res["score"].astype(float)
    for c in ("account_id", "reason", "matched_on", "candidate_account_ids", "rolled_up_from"):
        res[c] = res[c].astype(object).where(res[c].notna(), None)
    return res[list(OUTPUT_COLUMNS)]


# --------------------------------------------------------------------------- quality report
def read_truth(truth_dir) -> pd.DataFrame:
    """The true contact → account table of a written sample (``truth_dir`` holds
    ``contact_accounts.parquet`` or ``.csv``: contact_id, true_account_id[, how]).

    Example
    -------
    >>> read_truth("data/sample/truth").columns.tolist()[:2]   # doctest: +SKIP
    ['contact_id', 'true_account_id']
    """
    from pathlib import Path
    folder = Path(truth_dir)
    for name, reader in (("contact_accounts.parquet", pd.read_parquet), ("contact_accounts.csv", pd.read_csv)):
        if (folder / name).exists():
            df = reader(folder / name)
            missing = {"contact_id", "true_account_id"} - set(df.columns)
            if missing:
                raise ValueError(f"{folder / name}: column(s) {sorted(missing)} missing; "
                                 "expected contact_id, true_account_id")
            return df
    raise FileNotFoundError(f"{folder} has no contact_accounts.parquet or contact_accounts.csv "
                            "(ground truth is written by `python -m abmkit sample`).")


def _reason_kind(reason: pd.Series) -> pd.Series:
    """The reason without ids: ``ambiguous_name: a1;a2`` → ``ambiguous_name``; an
    unknown CRM id prefix is dropped (it is counted separately)."""
    r = reason.fillna("").str.replace(r"^unknown_crm_account: [^;]*; ", "", regex=True)
    return r.str.split(r"[:;]", n=1, regex=True).str[0].str.strip()


PLACEHOLDER_COLUMNS = ["column", "value", "contacts", "reason"]
#: why a value is left out of the "top unmatched" lists (keys: the data-check ids of abmkit.clean.sanity)
PLACEHOLDER_REASONS = {
    "placeholder_domain": "reserved example domain (RFC 2606/6761): a test record, not a corporate domain to add",
    "id_in_name": "a CRM id, not a company name: map that field to crm_account_id instead",
    "placeholder_name": "a placeholder, not a company name (test, unknown, n/a, ...)",
}


def _placeholder_counts(values: pd.Series, column: str, reason: str) -> pd.DataFrame:
    counts = values.value_counts()
    return pd.DataFrame({"column": column, "value": counts.index.astype(object), "contacts": counts.to_numpy(),
                         "reason": reason}, columns=PLACEHOLDER_COLUMNS)


@dataclass
class MappingReport(Result):
    """Quality of a contact → account mapping (see :func:`mapping_report`).

    Attributes
    ----------
    overview : DataFrame            metric, value (contacts, matched, match_rate, ...)
    by_method : DataFrame           method, contacts, share, mean_confidence (+ accuracy columns with truth)
    reasons : DataFrame             method, reason (ids stripped), contacts
    confidence : DataFrame          confidence band, contacts (matched contacts)
    top_unmatched_companies : DataFrame   company_name, contacts
    top_unmatched_domains : DataFrame     email_domain, free_mail, contacts
    ambiguous : DataFrame           contact_id, reason, candidate_account_ids, company_name, email_domain
    contacts_per_account : DataFrame      account_id, contacts
    accuracy : DataFrame or None    with truth: method, assigned, correct, precision, recall
    placeholders : DataFrame        unmatched contacts left out of the two "top unmatched" lists:
        column (email_domain / company_name), value, contacts, reason (a reserved example
        domain, a CRM id in the company name, a placeholder name such as "test")
    """
    overview: pd.DataFrame
    by_method: pd.DataFrame
    reasons: pd.DataFrame
    confidence: pd.DataFrame
    top_unmatched_companies: pd.DataFrame
    top_unmatched_domains: pd.DataFrame
    ambiguous: pd.DataFrame
    contacts_per_account: pd.DataFrame
    accuracy: pd.DataFrame | None = None
    placeholders: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PLACEHOLDER_COLUMNS))

    def metric(self, name: str):
        """One headline value from :attr:`overview`."""
        return self.overview.set_index("metric")["value"][name]

    def to_frame(self) -> pd.DataFrame:
        """Per-method table: counts, share, confidence and (with truth) precision/recall."""
        out = self.by_method
        if self.accuracy is not None:
            out = out.merge(self.accuracy.drop(columns=[c for c in ("contacts",) if c in self.accuracy]),
                            on="method", how="outer")
            order = {m: i for i, m in enumerate((*METHODS, "overall"))}
            out = out.sort_values("method", key=lambda s: s.map(order)).reset_index(drop=True)
            overall = out["method"] == "overall"
            out.loc[overall, ["contacts", "share"]] = [self.by_method["contacts"].sum(), 1.0]
            out["contacts"] = out["contacts"].astype("Int64")
        return out

    _summary_title = "Contact -> account mapping report"

    @property
    def summary(self) -> pd.DataFrame:
        """Headline numbers (metric, value)."""
        return self.overview.copy()

    def headline(self) -> dict:
        """:attr:`overview` as a plain dict (for ``abmkit.outputs.save_findings``)."""
        return dict(zip(self.overview["metric"], self.overview["value"]))


def mapping_report(mapping: pd.DataFrame, contacts: pd.DataFrame | None = None,
                   truth: pd.DataFrame | None = None, *, top: int = 15) -> MappingReport:
    """Quality report of :func:`map_contacts` output.

    Parameters
    ----------
    mapping : DataFrame
        Output of :func:`map_contacts`.
    contacts : DataFrame, optional
        The contacts that were mapped, for the top unmatched company names and domains.
    truth : DataFrame, optional
        ``contact_id, true_account_id`` (e.g. the sample's ``truth["contact_accounts"]``).
        Precision = correct assignments / assignments; recall = correct assignments /
        contacts that have a true account (per method: that method's correct
        assignments over the same denominator, so per-method recalls add up to the
        overall one). When the truth has a boolean ``matchable`` column (the record holds
        enough to find the account), ``recall_matchable`` uses only those contacts as the
        denominator. With ``rollup_to_parent`` the account matched before the roll-up
        is the one compared.
    top : int
        Rows of the "top unmatched" lists.

    Example
    -------
    >>> m = pd.DataFrame({"contact_id": ["c1", "c2"], "account_id": ["a1", None], "method": ["crm", "unmatched"],
    ...                   "confidence": [1.0, 0.0], "reason": ["crm_account_id", "no_match"]})
    >>> t = pd.DataFrame({"contact_id": ["c1", "c2"], "true_account_id": ["a1", "a2"]})
    >>> mapping_report(m, truth=t).accuracy.set_index("method").loc["overall", ["precision", "recall"]].tolist()
    [1.0, 0.5]
    """
    m = mapping.copy()
    for col in ("candidate_account_ids", "reason"):
        if col not in m:
            m[col] = None
    n = len(m)
    matched = m["account_id"].notna()
    counts = m["method"].value_counts().reindex(list(METHODS), fill_value=0)
    conf = m.groupby("method")["confidence"].mean().reindex(list(METHODS))
    by_method = pd.DataFrame({"method": list(METHODS), "contacts": counts.to_numpy(),
                              "share": counts.to_numpy() / n if n else np.nan,
                              "mean_confidence": conf.to_numpy()})
    m["reason_kind"] = _reason_kind(m["reason"])
    reasons = (m.groupby(["method", "reason_kind"]).size().rename("contacts").reset_index()
               .rename(columns={"reason_kind": "reason"}).sort_values(["method", "contacts"], ascending=[True, False]))
    bands = pd.cut(m.loc[matched, "confidence"], [0, 0.9, 0.95, 0.99, 1.0], right=False, include_lowest=True)
    confidence = bands.value_counts(sort=False).rename_axis("band").rename("contacts").reset_index()
    confidence["band"] = confidence["band"].astype(str)
    confidence = pd.concat([confidence, pd.DataFrame({"band": ["1.0"],
                                                      "contacts": [int((m.loc[matched, "confidence"] >= 1.0).sum())]})],
                           ignore_index=True)

    unmatched = m.loc[~matched, ["contact_id", "reason", "candidate_account_ids"]]
    companies = pd.DataFrame(columns=["company_name", "contacts"])
    placeholders = pd.DataFrame(columns=PLACEHOLDER_COLUMNS)
    domains = pd.DataFrame(columns=["email_domain", "free_mail", "contacts"])
    extra = pd.DataFrame({"contact_id": m["contact_id"]})
    if contacts is not None:
        con = _prepare_contacts(contacts)
        extra = con[["contact_id", "company_name", "email_domain"]]
        un = con[(~matched).to_numpy()]
        # placeholders are no fix to suggest (no account or domain to add): counted apart, with the
        # reason (data checks placeholder_domain / id_in_name / placeholder_name, abmkit.clean.sanity)
        from .clean.sanity import id_like_mask, placeholder_name_mask, reserved_domain_mask
        bad_domain = reserved_domain_mask(un["email_domain"]).to_numpy()
        id_name = id_like_mask(un["company_name"]).to_numpy()
        placeholder_name = placeholder_name_mask(un["company_name"]).to_numpy() & ~id_name
        placeholders = pd.concat([_placeholder_counts(un.loc[mask, col], col, why) for mask, col, why in (
            (bad_domain, "email_domain", PLACEHOLDER_REASONS["placeholder_domain"]),
            (id_name, "company_name", PLACEHOLDER_REASONS["id_in_name"]),
            (placeholder_name, "company_name", PLACEHOLDER_REASONS["placeholder_name"]))], ignore_index=True)
        named = un[~(id_name | placeholder_name)]
        companies = (named.dropna(subset=["company_name"]).groupby("company_name").size().rename("contacts")
                     .sort_values(ascending=False).head(top).reset_index())
        domains = (un[~bad_domain].dropna(subset=["email_domain"]).groupby("email_domain").size()
                   .rename("contacts").sort_values(ascending=False).head(top).reset_index())
        domains.insert(1, "free_mail", domains["email_domain"].isin(free_mail_domains()))
    amb = unmatched[m.loc[~matched, "reason_kind"].str.startswith("ambiguous")]
    if contacts is not None:
        amb = amb.merge(extra.drop_duplicates("contact_id"), on="contact_id", how="left")
    per_account = (m.loc[matched].groupby("account_id").size().rename("contacts")
                   .sort_values(ascending=False).reset_index())
    overview = [("contacts", n), ("matched", int(matched.sum())),
                ("match_rate", float(matched.mean()) if n else float("nan")),
                ("ambiguous", len(amb)), ("accounts_with_contacts", len(per_account)),
                ("median_contacts_per_account", float(per_account["contacts"].median()) if len(per_account) else 0.0),
                ("unknown_crm_ids", int(m["reason"].fillna("").str.contains("unknown_crm_account").sum()))]
    accuracy = None
    if truth is not None:
        accuracy = _accuracy(m, truth)
        o = accuracy.set_index("method").loc["overall"]
        overview += [("precision", float(o["precision"])), ("recall", float(o["recall"]))]
        if "recall_matchable" in o:
            overview.append(("recall_matchable", float(o["recall_matchable"])))
    overview = [(k, v.item() if isinstance(v, np.generic) else v) for k, v in overview]
    return MappingReport(
        overview=pd.DataFrame({"metric": [k for k, _ in overview],
                               "value": pd.Series([v for _, v in overview], dtype=object)}), by_method=by_method, reasons=reasons,
        confidence=confidence, top_unmatched_companies=companies, top_unmatched_domains=domains,
        ambiguous=amb.reset_index(drop=True), contacts_per_account=per_account, accuracy=accuracy,
        placeholders=placeholders)


def _accuracy(m: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    t = truth.drop_duplicates("contact_id").set_index("contact_id")["true_account_id"]
    t = _as_ids(t.reset_index(drop=True)).set_axis(t.index)
    assigned = m["account_id"]
    if "rolled_up_from" in m:
        assigned = m["rolled_up_from"].where(m["rolled_up_from"].notna(), assigned)
    true = m["contact_id"].map(t)
    has = assigned.notna()
    correct = has & (assigned == true)
    n_true = int(true.notna().sum())
    frame = pd.DataFrame({"method": m["method"], "assigned": has, "correct": correct,
                          "has_true": true.notna(), "wrong_no_true": has & true.isna()})
    g = frame.groupby("method")[["assigned", "correct", "has_true", "wrong_no_true"]].sum()
    g = g.reindex(list(METHODS), fill_value=0)
    g.loc["overall"] = g.sum()
    g["precision"] = g["correct"] / g["assigned"].where(g["assigned"] > 0)
    g["recall"] = g["correct"] / n_true if n_true else np.nan
    if "matchable" in truth.columns:
        # the truth may flag contacts whose record cannot identify the account at all
        ok = m["contact_id"].map(truth.drop_duplicates("contact_id").set_index("contact_id")["matchable"])
        ok = ok.astype("boolean").fillna(False).astype(bool) & true.notna()
        per = (frame.assign(ok=ok.to_numpy())[ok.to_numpy()].groupby("method")["correct"].sum()
               .reindex(list(METHODS), fill_value=0))
        per.loc["overall"] = per.sum()
        g["recall_matchable"] = per / int(ok.sum()) if ok.any() else np.nan
    g = g.rename(columns={"has_true": "with_true_account", "wrong_no_true": "assigned_without_true_account"})
    return g.reset_index().rename(columns={"index": "method"})
