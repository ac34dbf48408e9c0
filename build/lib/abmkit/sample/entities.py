"""Accounts and contacts of the synthetic sample (firmographics, buying groups,
e-mails, company-name variants) and the true contact→account mapping.

Everything is vectorised over accounts/contacts; the only inputs are a seeded
``numpy.random.Generator`` and the horizon.

Example
-------
>>> import numpy as np
>>> acc = make_accounts(50, np.random.default_rng(0), pd.Timestamp("2025-01-01", tz="UTC"), 600)
>>> len(acc), bool(acc["domain"].is_unique or acc["shared_domain"].any())
(50, True)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import names as N

#: employee counts are log-normal around this median (sigma on the natural-log scale)
EMPLOYEE_MEDIAN = 300.0
EMPLOYEE_SIGMA = 1.3
ICP_INDUSTRIES = frozenset({"software", "financial_services", "manufacturing", "healthcare",
                            "logistics", "professional_services"})
LEGACY_DOMAIN_P = 0.015
BLANK_COMPANY_FREE_P = 0.15
SUFFIX = {c: v[1] for c, v in N.COUNTRIES.items()}
REGION = {c: v[0] for c, v in N.COUNTRIES.items()}
COUNTRY_NAMES = {"us": "USA", "ca": "Canada", "uk": "UK", "de": "Deutschland", "fr": "France",
                 "nl": "Nederland", "au": "Australia", "sg": "Singapore", "br": "Brasil"}


def size_score(employee_count: np.ndarray) -> np.ndarray:
    """Standardised log size (0 = median company, 1 = one sigma bigger): the
    observable confounder the stage process and the big-account campaign use."""
    return (np.log(employee_count) - np.log(EMPLOYEE_MEDIAN)) / EMPLOYEE_SIGMA


def _choice(rng, options, n, p=None):
    idx = rng.choice(len(options), size=n, p=None if p is None else np.asarray(p) / np.sum(p))
    return np.asarray(options, dtype=object)[idx]


def make_accounts(n: int, rng: np.random.Generator, start: pd.Timestamp, horizon_days: float) -> pd.DataFrame:
    """Accounts with canonical columns plus helper columns (``size_z``, ``country``,
    ``base``, ``legal``, ``T0`` days from start, ``shared_domain``, ``kind``).

    ``kind`` is ``plain``, ``child`` (country subsidiary of ``parent_account_id``),
    ``sibling`` (look-alike name of another account: "Acme Corp" vs "Acme Group") or
    ``shared`` (a second CRM account on the domain of another account)."""
    countries = list(N.COUNTRIES)
    country = _choice(rng, countries, n, [N.COUNTRIES[c][3] for c in countries])
    industry = _choice(rng, N.INDUSTRIES, n, N.INDUSTRY_WEIGHTS)
    n_first, n_second = len(N.FIRST_WORDS), len(N.SECOND_WORDS)
    pairs = rng.permutation(max(n_first * n_second * 4, n))[:n]
    first = np.asarray(N.FIRST_WORDS, dtype=object)[pairs % n_first]
    second = np.asarray(N.SECOND_WORDS, dtype=object)[(pairs // n_first) % n_second]
    pair_key = pd.Series(pairs % (n_first * n_second))
    descriptor = N.pick_by_group(industry, N.DESCRIPTORS, rng.random(n))
    has_desc = rng.random(n) < 0.7
    # a repeated word pair gets its descriptor in the domain so domains stay unique
    repeated = pair_key.duplicated().to_numpy()
    has_desc |= repeated
    base = pd.Series(first + " " + second, dtype=object)
    base_dom = N.ascii_fold(pd.Series(first + second, dtype=object))
    desc_dom = N.ascii_fold(pd.Series(descriptor, dtype=object))
    dom_label = base_dom.where(~repeated, base_dom + desc_dom)
    again = dom_label.groupby(dom_label).cumcount()
    dom_label = dom_label.where(again == 0, dom_label + again.astype(str))
    legal = N.pick_by_group(country, {c: v[2] for c, v in N.COUNTRIES.items()}, rng.random(n))
    suffix = N.lookup(country, SUFFIX)
    region = N.lookup(country, REGION)
    core_name = base.where(~has_desc, base + " " + pd.Series(descriptor))
    name = core_name + " " + pd.Series(legal)
    domain = dom_label + "." + pd.Series(suffix)

    employees = np.clip(np.round(np.exp(rng.normal(np.log(EMPLOYEE_MEDIAN), EMPLOYEE_SIGMA, n))), 5, 250_000)
    z = size_score(employees)
    revenue = np.round(employees * np.exp(rng.normal(np.log(180_000), 0.5, n)), -3)
    tier_score = z + rng.normal(0, 0.5, n)
    tier = np.where(tier_score > 1.3, 1, np.where(tier_score > 0.3, 2, 3))
    is_target = rng.random(n) < np.select([tier == 1, tier == 2], [1.0, 0.7], 0.2)
    icp_p = np.where(np.isin(industry, list(ICP_INDUSTRIES)) & (employees >= 50), 0.85, 0.2)
    icp_fit = (rng.random(n) < icp_p).astype(float)
    existing = rng.random(n) < 0.88
    created_days = np.where(existing, -rng.uniform(30, 1500, n), rng.uniform(0, 0.65 * horizon_days, n))
    created_days = np.floor(created_days)

    acc = pd.DataFrame({
        "account_id": N.make_ids("A", np.arange(1, n + 1), 5),
        "account_name": name, "domain": domain, "extra_domains": None, "parent_account_id": None,
        "industry": industry, "employee_count": employees, "annual_revenue": revenue, "region": region,
        "tier": tier, "is_target": is_target, "icp_fit": icp_fit,
        "created_at": start + pd.to_timedelta(created_days, unit="D"),
        "size_z": z, "country": country, "base": base, "core_name": core_name, "legal": legal,
        "dom_label": dom_label, "kind": "plain", "shared_domain": False,
        "T0": np.maximum(created_days, 0.0),
    })
    _add_children(acc, rng)
    _add_siblings_and_shared(acc, rng)
    _add_extra_domains(acc, rng)
    return acc


def _add_children(acc: pd.DataFrame, rng) -> None:
    """~5% of accounts become country subsidiaries of a big account: "Blue Harbor
    Deutschland GmbH" on blueharbor.de under "Blue Harbor Logistics Inc." on blueharbor.com."""
    n = len(acc)
    n_child = int(round(0.05 * n))
    if n_child == 0:
        return
    big = np.argsort(-acc["employee_count"].to_numpy(), kind="stable")[: max(n // 5, 1)]
    n_parents = max(n_child // 2, 1)
    parents = rng.choice(big, size=min(n_parents, len(big)), replace=False)
    others = np.setdiff1d(np.arange(n), parents)
    children = rng.choice(others, size=n_child, replace=False)
    parent_of = parents[rng.integers(0, len(parents), n_child)]
    ordinal = pd.Series(parent_of).groupby(parent_of).cumcount().to_numpy()
    countries = list(N.COUNTRIES)
    p_country = acc["country"].to_numpy()[parent_of]
    c_idx = (N.lookup(p_country, {c: i for i, c in enumerate(countries)}).astype(int) + 1 + ordinal) % len(countries)
    keep = ordinal < len(countries) - 1
    children, parent_of, c_idx = children[keep], parent_of[keep], c_idx[keep]
    c_country = np.asarray(countries, dtype=object)[c_idx]
    legal = N.lookup(c_country, {c: v[2][0] for c, v in N.COUNTRIES.items()})
    base = acc["base"].to_numpy()[parent_of]
    cname = base + " " + N.lookup(c_country, COUNTRY_NAMES)
    acc.loc[children, "country"] = c_country
    acc.loc[children, "region"] = N.lookup(c_country, REGION)
    acc.loc[children, "base"] = base
    acc.loc[children, "core_name"] = cname
    acc.loc[children, "legal"] = legal
    acc.loc[children, "account_name"] = cname + " " + legal
    acc.loc[children, "dom_label"] = acc["dom_label"].to_numpy()[parent_of]
    acc.loc[children, "domain"] = (acc["dom_label"].to_numpy()[parent_of] + "."
                                   + N.lookup(c_country, SUFFIX))
    acc.loc[children, "parent_account_id"] = acc["account_id"].to_numpy()[parent_of]
    acc.loc[children, "industry"] = acc["industry"].to_numpy()[parent_of]
    acc.loc[children, "kind"] = "child"


def _add_siblings_and_shared(acc: pd.DataFrame, rng) -> None:
    """Look-alike names ("Acme Corp" / "Acme Group", ~1.5%) and a handful of
    accounts that share another account's domain (two CRM records, one company)."""
    n = len(acc)
    plain = np.flatnonzero((acc["kind"] == "plain").to_numpy() & acc["parent_account_id"].isna().to_numpy())
    # parents must stay as they are, so only accounts nobody points at are reused
    is_parent = acc["account_id"].isin(acc["parent_account_id"].dropna()).to_numpy()
    plain = plain[~is_parent[plain]]
    n_sib = max(int(round(0.015 * n)), 2 if n >= 50 else 0)
    n_shared = max(n // 400, 2 if n >= 50 else 0)
    picks = rng.choice(plain, size=min(2 * (n_sib + n_shared), len(plain)), replace=False)
    sib_to, sib_from = picks[:n_sib], picks[n_sib:2 * n_sib]
    sh_to, sh_from = picks[2 * n_sib:2 * n_sib + n_shared], picks[2 * n_sib + n_shared:]
    if len(sib_to):
        word = np.asarray(N.SIBLING_DESCRIPTORS, dtype=object)[rng.integers(0, len(N.SIBLING_DESCRIPTORS), len(sib_to))]
        base = acc["base"].to_numpy()[sib_from]
        acc.loc[sib_to, "base"] = base
        acc.loc[sib_to, "core_name"] = base + " " + word
        acc.loc[sib_to, "account_name"] = base + " " + word + " " + acc["legal"].to_numpy()[sib_to]
        lab = acc["dom_label"].to_numpy()[sib_from] + N.ascii_fold(pd.Series(word)).to_numpy()
        acc.loc[sib_to, "dom_label"] = lab
        acc.loc[sib_to, "domain"] = lab + "." + N.lookup(acc["country"].to_numpy()[sib_to], SUFFIX)
        acc.loc[sib_to, "kind"] = "sibling"
    m = min(len(sh_to), len(sh_from))
    if m:
        sh_to, sh_from = sh_to[:m], sh_from[:m]
        acc.loc[sh_to, "domain"] = acc["domain"].to_numpy()[sh_from]
        acc.loc[sh_to, "dom_label"] = acc["dom_label"].to_numpy()[sh_from]
        acc.loc[sh_to, "country"] = acc["country"].to_numpy()[sh_from]
        acc.loc[sh_to, "kind"] = "shared"
        acc.loc[np.concatenate([sh_to, sh_from]), "shared_domain"] = True


def _add_extra_domains(acc: pd.DataFrame, rng) -> None:
    """~15% of accounts own a second domain (a .io product site, another country TLD)."""
    n = len(acc)
    has = (rng.random(n) < 0.15) & (acc["kind"] != "shared").to_numpy()
    lab = acc["dom_label"].to_numpy()
    alt = np.asarray(("io", "net", "co.uk", "de", "com.au", "com"), dtype=object)[rng.integers(0, 6, n)]
    own = acc["domain"].str.split(".", n=1).str[1].to_numpy(dtype=object)
    alt = np.where(alt == own, "io", alt)
    extra = np.where(rng.random(n) < 0.3, "get" + lab + ".com", lab + "." + alt)
    taken = set(acc["domain"])
    ok = has & ~pd.Series(extra).isin(taken).to_numpy() & ~pd.Series(extra).duplicated().to_numpy()
    # a quarter of them own a third one, so `extra_domains` really is a ;-joined list
    second = lab + ".net"
    two = ok & (rng.random(n) < 0.25) & (alt != "net") & ~pd.Series(second).isin(taken).to_numpy()
    extra = np.where(two, extra + ";" + second, extra)
    acc["extra_domains"] = np.where(ok, extra, None)


def make_contacts(acc: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Buying groups (3-15 contacts per account, ~10 on average) plus ~3% contacts
    with no true account (students, vendors).

    Contacts are sorted by (account, ordinal ``k``); the first three of each account
    (``k`` 0-2, the *core* buying group that drives the stage process) always carry a
    CRM account id and a corporate e-mail, so stage-critical touches never hinge on
    mapping. Helper columns: ``acct`` (account row, -1 for none), ``k``, ``is_free``,
    ``how`` (crm / domain / freemail_name / none), ``true_account_id``.
    """
    n_acc = len(acc)
    size = 3 + rng.binomial(12, 0.58, n_acc)
    acct = np.repeat(np.arange(n_acc), size)
    k = np.arange(len(acct)) - np.repeat(np.cumsum(size) - size, size)
    m = len(acct)
    n_none = int(round(0.03 * m / 0.97))
    core = k < 3
    u = rng.random(m)
    persona = _choice(rng, ("decision_maker", "influencer", "user", "other"), m, (0.18, 0.35, 0.35, 0.12))
    persona = np.where(k == 0, "decision_maker", persona)
    persona = np.where(k == 1, np.where(u < 0.5, "decision_maker", "influencer"), persona)
    kind = _choice(rng, ("primary", "sub", "extra", "free"), m, (0.78, 0.06, 0.06, 0.10))
    kind = np.where(core, np.where(rng.random(m) < 0.9, "primary", "sub"), kind)
    extra = acc["extra_domains"].str.split(";").str[0].to_numpy()[acct]
    kind = np.where((kind == "extra") & pd.isna(extra), "primary", kind)
    # a few contacts still write from a legacy brand domain no account record lists
    kind = np.where(~core & (kind == "primary") & (rng.random(m) < LEGACY_DOMAIN_P), "legacy", kind)
    shared = acc["shared_domain"].to_numpy()[acct]
    crm_p = np.where(shared, 0.85, 0.3)
    has_crm = core | (rng.random(m) < crm_p)

    first = _choice(rng, N.FIRST_NAMES, m + n_none)
    last = _choice(rng, N.LAST_NAMES, m + n_none)
    f_ascii = N.ascii_fold(pd.Series(first)).to_numpy()
    l_ascii = N.ascii_fold(pd.Series(last)).to_numpy()
    style = rng.integers(0, 100, m + n_none)
    local = np.where(style < 60, f_ascii + "." + l_ascii,
                     np.where(style < 85, pd.Series(f_ascii).str[:1].to_numpy(dtype=object) + l_ascii, f_ascii))
    domain = acc["domain"].to_numpy()[acct]
    sub = _choice(rng, N.SUBDOMAIN_PREFIXES, m) + "." + domain
    free = _choice(rng, N.FREE_MAIL, m + n_none)
    legacy = N.ascii_fold(pd.Series(_choice(rng, N.SECOND_WORDS, m) + _choice(rng, N.FIRST_WORDS, m))) + "-hq.com"
    host = np.select([kind == "primary", kind == "sub", kind == "extra", kind == "legacy"],
                     [domain, sub, extra, legacy.to_numpy()], free[:m])
    is_free = kind == "free"
    number = rng.integers(1, 99, m + n_none).astype(str)
    local_acc = np.where(is_free, f_ascii[:m] + "." + l_ascii[:m] + number[:m], local[:m])
    # the same local part on the same host gets a number: two John Smiths at one firm
    email = pd.Series(local_acc + "@" + host, dtype=object)
    dup = email.groupby(email).cumcount().to_numpy()
    email = pd.Series(np.where(dup > 0, local_acc + dup.astype(str) + "@" + host, email), dtype=object)

    company = _company_names(acc, acct, is_free, rng)
    # free-mail contacts without a CRM id who left "Company" blank cannot be matched
    company = np.where(is_free & ~has_crm & (rng.random(m) < BLANK_COMPANY_FREE_P), None, company)
    matchable = has_crm | (~is_free & (kind != "legacy") & ~shared) | pd.notna(company)
    titles = N.pick_by_group(persona, N.TITLES, rng.random(m))
    how = np.where(has_crm, "crm", np.where(is_free, "freemail_name", "domain"))
    ct = pd.DataFrame({
        "acct": acct, "k": k, "email": email, "first_name": first[:m], "last_name": last[:m],
        "company_name": company, "title": titles, "persona": persona,
        "crm_account_id": np.where(has_crm, acc["account_id"].to_numpy()[acct], None),
        "is_free": is_free, "how": how, "true_account_id": acc["account_id"].to_numpy()[acct],
        "matchable": matchable,
    })
    # contacts without an employer on file: free mail, no or meaningless company
    nn = slice(m, m + n_none)
    none = pd.DataFrame({
        "acct": -1, "k": -1,
        "email": f_ascii[nn] + "_" + l_ascii[nn] + number[nn] + "@" + free[nn],
        "first_name": first[nn], "last_name": last[nn],
        "company_name": _choice(rng, N.NO_ACCOUNT_COMPANIES, n_none, (6, 2, 1, 1, 1, 1, 1)),
        "title": _choice(rng, ("Student", "Consultant", "Sales Representative", "Freelancer"), n_none),
        "persona": _choice(rng, ("other", "user"), n_none, (0.7, 0.3)),
        "crm_account_id": None, "is_free": True, "how": "none", "true_account_id": None, "matchable": False,
    })
    ct = pd.concat([ct, none], ignore_index=True)
    ct["company_name"] = ct["company_name"].where(ct["company_name"] != "", None)
    ids = rng.permutation(len(ct)) + 1
    ct.insert(0, "contact_id", N.make_ids("C", ids, 6))
    return ct


def _company_names(acc, acct, is_free, rng) -> np.ndarray:
    """What contacts type in the "Company" field: blank or the account name for
    corporate e-mails; for free-mail contacts (who can only be matched by name) the
    official name, a legal-suffix variant, upper case, a typo or no legal suffix."""
    m = len(acct)
    official = acc["account_name"].to_numpy()[acct]
    core = acc["core_name"].to_numpy()[acct]
    legal = acc["legal"].to_numpy()[acct]
    variant_suffix = N.pick_by_group(legal, N.LEGAL_VARIANTS, rng.random(m))
    sep = np.where(pd.Series(variant_suffix).str.startswith(",").to_numpy() | (variant_suffix == ""), "", " ")
    variant = pd.Series(core + sep + variant_suffix).str.strip().to_numpy()
    r = rng.random(m)
    free_name = np.select([r < 0.35, r < 0.70, r < 0.80, r < 0.95],
                          [official, variant, pd.Series(variant).str.upper().to_numpy(),
                           N.typo(pd.Series(official), rng).to_numpy()], core)
    corp_name = np.where(rng.random(m) < 0.5, None, np.where(rng.random(m) < 0.8, official, variant))
    return np.where(is_free, free_name, corp_name)
