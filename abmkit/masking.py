"""Masked contact ids: a keyed hash with a per-installation secret, and the private lookup.

Report tables show a contact as ``c_`` + 16 hex characters of HMAC-SHA256(secret, CRM id).
Without the secret nobody can recompute a mask, so hashing every candidate id of the
CRM's id pattern finds nothing (an unkeyed hash of a short id space is reversed in
seconds). With the same secret, the same id masks the same way in every run, kernel and
table of the installation, so masked ids can be followed from one report to the next.

The secret (32 random bytes, stored as 64 hex characters) is a file *outside* the report
folder: ``$ABMKIT_SECRET_FILE`` when set, else ``$XDG_CONFIG_HOME/abmkit/masking.key``
(``~/.config/abmkit/masking.key``). It is created on first use, mode 0600 in a 0700
folder; a key file that others may read is refused. Every kernel of a report run reads
the same file, so all its tables agree.

Sales resolves a masked id with the private lookup ``contact_id_lookup.csv`` written next
to the cleaned data (``<out>/.data/<label>/``, mode 0600) by
:meth:`abmkit.clean.CleanResult.save`: ``masked_id, contact_id, key_id`` (see
:func:`resolve_ids`). See docs/security.md for rotating the secret.

Example
-------
>>> key = bytes(32)                 # a fixed key, for the example only
>>> mask_values(["C000001"], key)
['c_...']
>>> len(mask_values(["C000001"], key)[0]) == len("c_") + MASK_HEX
True
"""
from __future__ import annotations

import hmac
import os
import secrets
import stat
import tempfile
import time
from pathlib import Path
from typing import Iterable

from .private import private_dir, write_private

__all__ = ["ENV_VAR", "MASK_HEX", "LOOKUP_FILE", "MaskingKeyError", "key_path", "load_key", "rotate_key",
           "key_id", "mask_values", "write_lookup", "read_lookup", "resolve_ids"]

#: environment variable naming the key file (tests and multi-installation setups)
ENV_VAR = "ABMKIT_SECRET_FILE"
KEY_BYTES = 32
#: hex characters kept of the HMAC. 16 (64 bits) so that distinct ids do not collide: the
#: chance of any collision among n ids is about n**2 / 2**65 (3e-6 for ten million
#: contacts), where 10 hex characters (40 bits) collide with even odds near a million ids.
#: Secrecy comes from the key, not from the length: without it no mask can be recomputed.
MASK_HEX = 16
#: the private lookup (masked id -> CRM id), next to the cleaned data
LOOKUP_FILE = "contact_id_lookup.csv"
_KEY_ID_MESSAGE = b"\x00abmkit masking key id v1"


class MaskingKeyError(RuntimeError):
    """The masking secret cannot be created, read or trusted (the message says the fix)."""


def key_path() -> Path:
    """Where the masking secret lives: ``$ABMKIT_SECRET_FILE``, else
    ``$XDG_CONFIG_HOME/abmkit/masking.key`` (an absolute XDG_CONFIG_HOME only, as the XDG
    specification says), else ``~/.config/abmkit/masking.key``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "abmkit" / "masking.key"
    try:
        return Path.home() / ".config" / "abmkit" / "masking.key"
    except RuntimeError as exc:  # no HOME (some cron setups)
        raise MaskingKeyError(f"cannot locate the masking key: no home folder; set {ENV_VAR} to a file "
                              "outside the report folder") from exc


def load_key(path: str | Path | None = None, *, create: bool = True) -> bytes:
    """The masking secret (32+ bytes) from ``path`` (default :func:`key_path`), created on
    first use when ``create``. Raises :class:`MaskingKeyError` when the file is readable or
    writable by group or others, is not a regular file, or does not hold 64+ hex digits."""
    path = Path(path) if path is not None else key_path()
    if create and not os.path.lexists(path):
        _create_key(path, replace=False)
    deadline = time.monotonic() + 2.0
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise MaskingKeyError(f"masking key {path} does not exist (it is created on first use; "
                                  f"set {ENV_VAR} to use another file)") from exc
        if not stat.S_ISREG(st.st_mode):
            raise MaskingKeyError(f"masking key {path} is not a regular file")
        if st.st_mode & 0o077:
            raise MaskingKeyError(
                f"masking key {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others may read it, so "
                f"masked ids could be reversed. Restrict it with `chmod 600 {path}` (and rotate the key if "
                "others may have read it: docs/security.md)")
        with open(path, "rb") as fh:
            text = fh.read(4096).strip()
        try:
            key = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            key = b""
        if len(key) >= KEY_BYTES:
            return key
        if time.monotonic() > deadline:  # not a key being written by another process
            raise MaskingKeyError(f"masking key {path} does not hold a key ({2 * KEY_BYTES}+ hex digits); "
                                  "remove it to have a new one created (docs/security.md: rotation)")
        time.sleep(0.05)


def rotate_key(path: str | Path | None = None) -> Path:
    """Replace the masking secret with a new random one (atomically); returns its path.
    Masked ids of later runs differ from earlier ones; earlier periods keep their own
    lookup tables. Run the full report afterwards (not ``--only``) so the lookup of the
    period is rebuilt with the new key."""
    path = Path(path) if path is not None else key_path()
    _create_key(path, replace=True)
    return path


def _create_key(path: Path, *, replace: bool) -> None:
    """Write a new key to ``path`` with mode 0600 (folders created 0700). Without
    ``replace`` an existing key is never overwritten: of two processes creating it at the
    same time, one wins and both then read the winner's key."""
    try:
        private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".masking-key-")  # 0600
    except OSError as exc:
        raise MaskingKeyError(f"cannot create the masking key {path}: {exc}; set {ENV_VAR} to a file in a "
                              "folder you can write, outside the report folder") from exc
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # atomic and never replaces an existing file
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: exclusive create (readers retry)
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return
            with os.fdopen(out, "wb") as fh, open(tmp, "rb") as src:
                fh.write(src.read())
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key (8 hex characters): tells which key masked a
    table without revealing it."""
    return hmac.digest(key, _KEY_ID_MESSAGE, "sha256").hex()[:8]


def mask_values(values: Iterable, key: bytes, prefix: str = "c_") -> list[str]:
    """``prefix`` + the first :data:`MASK_HEX` hex characters of HMAC-SHA256(key, str(id))
    for each id (no missing values here: the caller keeps them missing)."""
    return [prefix + hmac.digest(key, str(v).encode("utf-8"), "sha256").hex()[:MASK_HEX] for v in values]


def write_lookup(ids: Iterable, data_dir: str | Path, *, key: bytes | None = None, prefix: str = "c_") -> Path:
    """Write ``<data_dir>/contact_id_lookup.csv`` (mode 0600, formula-neutralised):
    ``masked_id, contact_id, key_id`` for every distinct non-missing id, sorted by
    contact id. ``data_dir`` is the private data folder: never the report folder."""
    import pandas as pd

    from .outputs import neutralise_formulas

    key = load_key() if key is None else key
    uniq = sorted({str(v) for v in ids if not pd.isna(v)})
    frame = pd.DataFrame({"masked_id": mask_values(uniq, key, prefix), "contact_id": uniq,
                          "key_id": key_id(key)})
    text = neutralise_formulas(frame).to_csv(index=False)
    return write_private(Path(data_dir) / LOOKUP_FILE, lambda f: f.write(text.encode("utf-8")))


def read_lookup(data_dir: str | Path) -> "pd.DataFrame":
    """The lookup written by :func:`write_lookup` (ids as text)."""
    import pandas as pd

    path = Path(data_dir) / LOOKUP_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: it is written with the cleaned data "
                                "(notebook 01 / CleanResult.save) of a report run")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def resolve_ids(masked: Iterable[str], data_dir: str | Path) -> "pd.DataFrame":
    """CRM ids of masked ids from a report table, using the private lookup of the report's
    data folder (``<out>/.data/<label>/``): ``masked_id, contact_id`` (``contact_id`` empty
    for an id the lookup does not know, e.g. one masked with another key).

    >>> resolve_ids(["c_0123456789abcdef"], "reports/.data/2026Q3")   # doctest: +SKIP
    """
    import pandas as pd

    table = read_lookup(data_dir).drop_duplicates("masked_id").set_index("masked_id")["contact_id"]
    masked = [str(m) for m in masked]
    return pd.DataFrame({"masked_id": masked, "contact_id": [table.get(m, "") for m in masked]})
