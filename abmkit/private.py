"""Personal data on disk: private folders (0700) and files (0600), written atomically.

The cleaned dataset (emails, names), the rejects ledger (raw rows), the contact-id lookup
and the resolved dataset hold personal data. Every file the kit writes there goes through
:func:`write_private`: a temporary file created with mode 0600 (``tempfile.mkstemp``), filled,
then renamed into place, so it is never readable by others, not even while it is written,
whatever the process umask. Folders the kit creates for them are 0700 (:func:`private_dir`).

The report runner keeps them in ``<out>/.data/<label>/`` (and its staging folder) and, after
a successful run, removes what crashed or failed runs of the same period left behind
(:func:`purge_private_leftovers`). See docs/security.md.

Example
-------
>>> import tempfile, stat
>>> d = Path(tempfile.mkdtemp()) / ".data" / "2026Q3"
>>> p = write_private(d / "note.txt", lambda f: f.write(b"ann@example.com"))
>>> oct(stat.S_IMODE(p.stat().st_mode)), oct(stat.S_IMODE(d.stat().st_mode))
('0o600', '0o700')
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "private_dir", "write_private", "secure_tree",
           "purge_private_leftovers", "public_file_mode"]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: str | Path, *, tighten: bool = False) -> Path:
    """Create ``path`` and its missing parents with mode 0700; returns it.

    Folders that already exist keep their mode (a folder the caller chose, such as the
    working directory, is never changed), except ``path`` itself with ``tighten=True``:
    use it for folders the kit owns (``<out>/.data``, a run's data folder).
    """
    path = Path(path)
    missing = []
    p = path
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # created meanwhile by another writer
            continue
        os.chmod(d, PRIVATE_DIR_MODE)  # mkdir's mode is reduced by the umask; make it exact
    if tighten:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


def write_private(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write a private file atomically: ``write(f)`` fills a binary file object that is a
    0600 temporary file next to ``path``, renamed onto ``path`` once complete (a reader
    never sees half a file; the missing parent folders are created 0700)."""
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")  # created 0600
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, PRIVATE_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def secure_tree(root: str | Path) -> Path:
    """Make ``root`` and every folder below it 0700 and every file 0600 (symbolic links
    are left alone and not followed). For data written by code that does not use
    :func:`write_private` (a notebook's own ``to_parquet``, the dask partitions)."""
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        return root
    os.chmod(root, PRIVATE_DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                os.chmod(p, PRIVATE_DIR_MODE)
            elif stat.S_ISREG(st.st_mode):
                os.chmod(p, PRIVATE_FILE_MODE)
    return root


def purge_private_leftovers(out_dir: str | Path, label: str) -> list[Path]:
    """After a successful report run for ``label``, remove what earlier runs of the same
    period left under ``out_dir`` with personal data in it: ``.failed/<label>/`` (the data
    and the unredacted notebooks of a failed run: the success supersedes it), staging
    folders ``.staging-<label>-<hex>/`` of crashed runs and ``.data/.old-<label>-<hex>/``
    copies of an interrupted swap. Other periods are left alone (a run of another period may
    be running). Call it while holding the period's lock, once the new report is in place.
    Returns the removed paths."""
    out_dir = Path(out_dir)
    tail = re.escape(label) + r"-[0-9a-f]{8}"
    candidates = [out_dir / ".failed" / label]
    candidates += [p for p in _children(out_dir) if re.fullmatch(r"\.staging-" + tail, p.name)]
    candidates += [p for p in _children(out_dir / ".data") if re.fullmatch(r"\.old-" + tail, p.name)]
    removed = []
    for p in candidates:
        if p.is_symlink():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            continue
        removed.append(p)
    return removed


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def public_file_mode() -> int:
    """The mode of a new shared file under the current umask (0644 with the usual 022):
    for report files, which must stay readable by whoever the report is published to."""
    umask = None
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
                    break
    except (OSError, ValueError):
        pass
    if umask is None:  # no /proc: read it by setting it (and put it back at once)
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask
