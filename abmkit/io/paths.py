"""Keeping reads inside the data folder.

A column map is often picked up from the export folder itself, i.e. written by whoever
produced the export. The files it names (``tables.<table>.file``, names or globs) are
therefore confined to the data folder:

- :func:`check_file_pattern` refuses an absolute path (``/etc/passwd``, ``C:\\...``) and
  any ``..`` component, when the map is read;
- :func:`confine` refuses a path (or a glob match) whose real path (symbolic links
  followed) is outside the data folder, before the file is opened.

The messages name the column map, the key and the value, and how to give data from
elsewhere explicitly (copy it into the export folder, or point ``--data`` at the folder
that holds it). They never show a line of the file.

Example
-------
>>> check_file_pattern("../../etc/pass*", origin="column map x.yaml", key="tables.accounts.file")
Traceback (most recent call last):
...
abmkit.io.errors.InputError: column map x.yaml: `tables.accounts.file` = '../../etc/pass*' leaves the data folder (a '..' component)...
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import InputError

__all__ = ["check_file_pattern", "confine", "is_inside", "ELSEWHERE_HINT"]

#: how to use a file that lives elsewhere
ELSEWHERE_HINT = ("Data is only read from inside the data folder. To use a file from elsewhere, copy it "
                  "(a copy, not a link) into the data folder, or point --data (`validate <folder>`) at the "
                  "folder that holds it, with the column map naming it relative to that folder")


def _show(value) -> str:
    text = repr(str(value))
    return text if len(text) <= 80 else text[:77] + "..."


def check_file_pattern(value: str, *, origin: str, key: str) -> str:
    """Refuse a file name/glob that is absolute or climbs out with ``..``; return it unchanged.

    Both ``/`` and ``\\`` count as separators (a Windows-style ``..\\..\\x`` is refused too).
    """
    text = str(value)
    why = None
    if not text.strip():
        why = "is empty"
    elif PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or PureWindowsPath(text).drive \
            or text.startswith(("~", "\\")):
        why = "is an absolute path"
    elif ".." in text.replace("\\", "/").split("/"):
        why = "leaves the data folder (a '..' component)"
    elif "\x00" in text:
        why = "holds a NUL character"
    if why:
        raise InputError(f"{origin}: `{key}` = {_show(text)} {why}; file names in a column map are relative to "
                         f"the data folder and must stay inside it. {ELSEWHERE_HINT}.")
    return text


def is_inside(path: Path, root: Path) -> bool:
    """Is the real path of ``path`` (symbolic links followed) inside the real ``root``?"""
    try:
        real = Path(path).resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop
        return False
    return real == Path(root).resolve() or real.is_relative_to(Path(root).resolve())


def confine(path: Path, root: Path, *, origin: str, key: str | None = None, value: str | None = None) -> Path:
    """``path`` if its real path is inside ``root``, else :class:`InputError`.

    ``origin`` names what asked for the file (the column map, an adapter), ``key`` and
    ``value`` the entry naming it. Symbolic links inside the folder are fine as long as
    they lead to a file inside it.
    """
    path = Path(path)
    if is_inside(path, root):
        return path
    try:
        rel = str(path.relative_to(root))
    except ValueError:
        rel = path.name
    how = ("is a symbolic link leading outside the data folder" if path.is_symlink()
           else "leads outside the data folder (through a linked folder)")
    entry = f" (`{key}` = {_show(value)})" if key else ""
    raise InputError(f"{origin}{entry}: {_show(rel)} in {root} {how}; refused, nothing was read from it. "
                     f"{ELSEWHERE_HINT}.")
