"""Per-account touches: every touchpoint resolved to the account it belongs to.

This is the shared floor of engagement, attribution and progression: a touch
belongs to its own ``account_id`` when it has one (account-level touches such as
ad impressions), otherwise to the account its contact maps to (DESIGN §2).
Touches of unmatched contacts are kept with ``account_id`` None and
``account_source`` ``"unattributable"``: reported, never dropped.

Example
-------
>>> import pandas as pd
>>> from abmkit.schema import Dataset
>>> ds = Dataset.from_frames(
...     accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}),
...     touchpoints=pd.DataFrame({"touchpoint_id": ["t1", "t2"], "occurred_at": ["2026-01-01", "2026-01-02"],
...                               "channel": ["email", "display"], "touch_type": ["email_click", "impression"],
...                               "contact_id": ["c1", None], "account_id": [None, "a1"]}))
>>> m = pd.DataFrame({"contact_id": ["c1"], "account_id": ["a1"]})
>>> account_touches(ds, m)[["touchpoint_id", "account_id", "account_source"]].values.tolist()
[['t1', 'a1', 'contact'], ['t2', 'a1', 'touch']]
"""
from __future__ import annotations

import pandas as pd

from .schema import Dataset


def account_touches(dataset: Dataset, contact_accounts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Touchpoints with ``account_id`` resolved and ``account_source`` in
    {touch, contact, unattributable}.

    Parameters
    ----------
    dataset : Dataset
    contact_accounts : DataFrame, optional
        ``contact_id, account_id`` (the output of :func:`abmkit.mapping.map_contacts`).
        When None, contacts are mapped with the default rules.
    """
    tp = dataset.touchpoints
    if contact_accounts is None:
        from .mapping import map_contacts  # mapping is heavier; only when needed
        contact_accounts = map_contacts(dataset.contacts, dataset.accounts)
    lookup = contact_accounts.dropna(subset=["account_id"]).drop_duplicates("contact_id")
    lookup = lookup.set_index("contact_id")["account_id"]
    own = tp["account_id"]
    via_contact = tp["contact_id"].map(lookup)
    out = tp.copy()
    out["account_id"] = own.where(own.notna(), via_contact).astype(object)
    out["account_id"] = out["account_id"].where(out["account_id"].notna(), None)
    source = pd.Series("unattributable", index=tp.index, dtype=object)
    source[via_contact.notna() & own.isna()] = "contact"
    source[own.notna()] = "touch"
    out["account_source"] = source
    return out
