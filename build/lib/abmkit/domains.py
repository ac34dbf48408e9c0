"""Email and web-domain normalisation, offline.

Registrable domains use tldextract's bundled public-suffix snapshot: the kit never
downloads a suffix list at run time. Work is done once per distinct value, so a
million emails over ten thousand domains cost ten thousand look-ups.

Example
-------
>>> import pandas as pd
>>> registrable_domain(pd.Series(["https://Mail.ACME.co.uk/about", "www.b.com", None])).tolist()
['acme.co.uk', 'b.com', None]
>>> split_email(pd.Series(["Lena.Müller@Sub.Acme.DE", "bad", "a@b@c.com"]))["email_domain"].tolist()
['acme.de', None, None]
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import pandas as pd
import tldextract

# suffix_list_urls=() keeps tldextract on its bundled snapshot: no network, no cache writes
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False)

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
#: one "@", a non-empty local part and a dotted domain; group 1 is the domain
EMAIL_PATTERN = re.compile(r"^[^@\s]+@([^@\s]+\.[^@\s]+)$")


@lru_cache(maxsize=None)
def _registrable(host: str) -> str | None:
    host = host.strip().lower()
    host = _SCHEME.sub("", host)
    host = host.split("/")[0].split("?")[0].split("#")[0]
    host = host.rsplit("@", 1)[-1].split(":")[0].strip(".")
    if not host or " " in host:
        return None
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    ext = _EXTRACT(host)
    if not ext.domain or not ext.suffix:
        return None
    return f"{ext.domain}.{ext.suffix}"


def registrable_domain(values: pd.Series) -> pd.Series:
    """Registrable domain (``acme.co.uk``) of URLs, hosts or bare domains.

    Lower-cases, strips scheme, path, port, ``www.`` and other subdomains, encodes
    internationalised names as punycode. Values without a public suffix give None.
    """
    s = pd.Series(values, copy=False)
    uniq = s.dropna().astype(str).unique()
    mapping = {u: _registrable(u) for u in uniq}
    out = s.map(mapping)
    return out.astype(object).where(out.notna(), None)


def email_domain(values: pd.Series) -> pd.Series:
    """Registrable domain of each email (None when malformed): the fast path of
    :func:`split_email` when only the domain is needed."""
    s = pd.Series(values, copy=False).astype(object)
    text = s.where(s.map(lambda v: isinstance(v, str)), None)
    return registrable_domain(text.str.strip().str.extract(EMAIL_PATTERN, expand=False))


def split_email(values: pd.Series) -> pd.DataFrame:
    """Normalise emails and derive their registrable domain.

    Returns columns ``email`` (trimmed, domain part lower-cased; local part kept,
    non-ASCII allowed), ``email_domain`` (registrable) and ``email_valid`` (bool:
    exactly one ``@`` and a domain with a public suffix).
    """
    s = pd.Series(values, copy=False).astype(object)
    text = s.where(s.notna(), None).map(lambda v: v.strip() if isinstance(v, str) else v)
    uniq = pd.Series(text.dropna().unique(), dtype=object)
    m = uniq.str.extract(EMAIL_PATTERN)[0]
    local = uniq.str.rsplit("@", n=1).str[0]
    dom = registrable_domain(m)
    normal = (local + "@" + m.str.lower()).where(m.notna(), uniq)
    table = pd.DataFrame({"email": normal.values, "email_domain": dom.values}, index=uniq.values)
    out = pd.DataFrame(index=s.index)
    out["email"] = text.map(table["email"])
    out["email_domain"] = text.map(table["email_domain"])
    out = out.astype(object).where(out.notna(), None)
    out["email_valid"] = out["email_domain"].notna()
    return out


@lru_cache(maxsize=1)
def free_mail_domains() -> frozenset[str]:
    """The shipped list of free-mail / ISP domains (``abmkit/presets/free_mail_domains.txt``)."""
    text = resources.files("abmkit.presets").joinpath("free_mail_domains.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))
