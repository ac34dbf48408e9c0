"""The one YAML reader for files users give the kit: column maps, presets, picklist
tables, the report's parameter file.

:func:`load_yaml` is :class:`yaml.SafeLoader` with bounds, so a hostile or broken file
fails fast with an :class:`~abmkit.io.errors.InputError` (the CLI exits 2) instead of
eating the machine:

- **size**: a file above ``max_bytes`` (default 1 MB; configuration files are a few KB)
  is refused from its ``stat`` size, and at most ``max_bytes + 1`` bytes are ever read
  (a file that grows, ``/dev/zero``); only regular files are read (no FIFO, device);
- **aliases**: at most ``max_aliases`` alias references (``*name``, default 100), and the
  document *as expanded through its aliases* may hold at most ``max_nodes`` nodes
  (default 100,000): a 1 KB "billion laughs" document (nine levels of ten aliases) is
  refused after composing a few hundred nodes, before anything is built; a recursive
  alias (an anchor used inside itself) is refused too;
- **depth**: at most ``max_depth`` nested lists/mappings (default 100);
- **types**: only plain values come out: ``str``, ``int``, ``float``, ``bool``,
  ``None``, lists and dicts. ``!!binary`` (bytes), ``!!set``, ``!!omap``, ``!!pairs``,
  ``!!python/...`` and any other or local tag (``!foo``) are refused, naming the key.
  **Dates and timestamps are kept as the string written** (``start: 2026-07-01`` gives
  ``"2026-07-01"``, not a ``datetime.date``): every consumer parses dates itself, and a
  parameter reaching a notebook must be a plain value.

Error messages name the file, the key (``tables.accounts.file``) and the line, say what
to do, and never quote the file's text (no snippet of the offending line).

Example
-------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "p.yaml"
>>> _ = p.write_text("start: 2026-07-01\\nn_boot: 50\\n")
>>> load_yaml(p, what="parameter file")
{'start': '2026-07-01', 'n_boot': 50}
>>> _ = p.write_text("a: &a [x, x]\\nb: &b [*a, *a]\\nc: [*b, *b]\\n")
>>> load_yaml(p, what="parameter file", max_nodes=10)   # doctest: +ELLIPSIS
Traceback (most recent call last):
...
abmkit.io.errors.InputError: parameter file ...: the document expands to more than 10 values through YAML aliases...
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .errors import InputError

__all__ = ["load_yaml", "MAX_BYTES", "MAX_ALIASES", "MAX_NODES", "MAX_DEPTH", "InputError"]

#: default bounds (keyword arguments of :func:`load_yaml`)
MAX_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_NODES = 100_000
MAX_DEPTH = 100

_T = "tag:yaml.org,2002:"
#: tags a document may carry (after implicit resolution); ``merge`` (``<<: *base``) and
#: ``value`` (``=``) are keys SafeLoader folds into the mapping before building it
_PLAIN_TAGS = frozenset(_T + t for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                         "timestamp", "merge", "value"))
#: what to say about a refused tag
_TAG_HINT = {
    _T + "binary": "binary data (bytes)", _T + "set": "a set", _T + "omap": "an ordered map of pairs",
    _T + "pairs": "a list of pairs",
}


class _Refused(Exception):
    """Raised inside the loader; :func:`load_yaml` turns it into an InputError."""

    def __init__(self, problem: str, mark=None, fix: str = ""):
        super().__init__(problem)
        self.problem, self.mark, self.fix = problem, mark, fix


def _at(mark) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def _short(text: Any, limit: int = 80) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and nesting while composing."""

    max_aliases = MAX_ALIASES
    max_depth = MAX_DEPTH

    def __init__(self, stream):
        super().__init__(stream)
        self._abm_aliases = 0
        self._abm_depth = 0

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            self._abm_aliases += 1
            if self._abm_aliases > self.max_aliases:
                raise _Refused(f"more than {self.max_aliases} YAML aliases (*name references)",
                               self.peek_event().start_mark,
                               "Write the values out instead of referring to anchors (&name / *name)")
            return super().compose_node(parent, index)
        self._abm_depth += 1
        try:
            if self._abm_depth > self.max_depth:
                raise _Refused(f"lists/mappings nested more than {self.max_depth} levels deep",
                               self.peek_event().start_mark, "Flatten the structure")
            return super().compose_node(parent, index)
        finally:
            self._abm_depth -= 1


def _refuse_tag(loader, node):
    what = _TAG_HINT.get(node.tag, "a non-plain value")
    raise _Refused(f"tag {_short(node.tag.replace(_T, '!!'), 40)} ({what}) is not allowed", node.start_mark,
                   "Only strings, numbers, booleans, null, lists and mappings are read; "
                   "quote the value to give it as a string")


def _timestamp_as_text(loader, node):
    return loader.construct_scalar(node)


for _tag in (_T + "binary", _T + "set", _T + "omap", _T + "pairs", None):
    _BoundedLoader.add_constructor(_tag, _refuse_tag)
_BoundedLoader.add_constructor(_T + "timestamp", _timestamp_as_text)


def _children(node, path: str):
    if isinstance(node, SequenceNode):
        return [(c, f"{path}[{i}]") for i, c in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out = []
        for k, v in node.value:
            name = _short(k.value, 40) if isinstance(k, ScalarNode) else "?"
            out.append((k, f"{path}.{name}" if path else name))
            out.append((v, f"{path}.{name}" if path else name))
        return out
    return []


def _check_graph(root, max_nodes: int) -> None:
    """Refuse non-plain tags (naming the key), recursive aliases and documents whose
    size *expanded through aliases* exceeds ``max_nodes``.

    One iterative depth-first pass over the composed graph: every distinct node is
    visited once and its expanded size memoised, so a billion-laughs document costs as
    much as its text.
    """
    size: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Any, str, bool]] = [(root, "", False)]
    while stack:
        node, path, done = stack.pop()
        nid = id(node)
        if done:
            visiting.discard(nid)
            total = 1 + sum(size[id(c)] for c, _ in _children(node, ""))
            size[nid] = total
            if total > max_nodes:
                raise _Refused(f"the document expands to more than {max_nodes} values through YAML aliases "
                               f"(at `{path or '<top>'}`)", node.start_mark,
                               "This is what a 'billion laughs' attack looks like; write the values out "
                               "instead of referring to anchors (&name / *name)")
            continue
        if nid in size:
            continue
        if nid in visiting:
            raise _Refused(f"recursive YAML alias at `{path or '<top>'}` (an anchor used inside itself)",
                           node.start_mark, "Remove the self-reference")
        if node.tag not in _PLAIN_TAGS:
            _refuse_key(node, path)
        visiting.add(nid)
        stack.append((node, path, True))
        stack.extend((c, p, False) for c, p in reversed(_children(node, path)))


def _refuse_key(node, path: str):
    try:
        _refuse_tag(None, node)
    except _Refused as exc:
        if path:
            exc.problem = f"`{path}`: {exc.problem}"
        raise


def _read_bounded(path: Path, what: str, max_bytes: int) -> bytes:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist.") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {path} is not a regular file (a folder, device or pipe); "
                         f"give the path of a YAML file.")
    if st.st_size > max_bytes:
        raise InputError(f"{what} {path} is {st.st_size:,} bytes, above the {max_bytes:,}-byte limit for a YAML "
                         f"file (configuration files are a few KB). Check that it is the right file.")
    with open(path, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise InputError(f"{what} {path} grew above the {max_bytes:,}-byte limit for a YAML file while it was "
                         "read. Check that it is the right file and that nothing is writing it.")
    return raw


def load_yaml(path: str | Path, *, what: str = "YAML file", hint: str = "", max_bytes: int = MAX_BYTES,
              max_aliases: int = MAX_ALIASES, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """Read one YAML document with the bounds above; ``None`` for an empty file.

    Parameters
    ----------
    path : the file.
    what : what the file is, for messages ("column map", "parameter file").
    hint : appended to messages (e.g. "see docs/column_map.md").
    max_bytes, max_aliases, max_nodes, max_depth : the bounds (see the module docstring).

    Raises :class:`InputError` (a ``CleanError``/``ValueError``) naming the file, the
    key or line, and what to do.
    """
    path = Path(path)
    raw = _read_bounded(path, what, max_bytes)
    tail = f" ({hint})" if hint else ""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{what} {path} is not UTF-8 text (byte {exc.start}, line {line}). Save it as "
                         f"UTF-8{tail}.") from None
    see = f" {hint[:1].upper()}{hint[1:]}." if hint else ""
    loader = None
    try:
        loader = _BoundedLoader(text)
        loader.max_aliases, loader.max_depth = int(max_aliases), int(max_depth)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node, int(max_nodes))
        return loader.construct_document(node)
    except _Refused as exc:
        fix = f" {exc.fix}." if exc.fix else ""
        raise InputError(f"{what} {path}: refused: {exc.problem}{_at(exc.mark)}.{fix}{see}") from None
    except yaml.MarkedYAMLError as exc:  # syntax: the problem and where, never a snippet of the text
        problem = _short(" ".join(p for p in (exc.context, exc.problem) if p), 160)
        raise InputError(f"{what} {path} is not valid YAML: {problem}{_at(exc.problem_mark or exc.context_mark)}. "
                         f"Fix the YAML syntax{tail}.") from None
    except yaml.YAMLError as exc:  # reader errors (control characters): position only
        where = f" (character {exc.position + 1})" if getattr(exc, "position", None) is not None else ""
        raise InputError(f"{what} {path} is not valid YAML: it holds a control character YAML does not "
                         f"allow{where}. Remove it{tail}.") from None
    except RecursionError:
        raise InputError(f"{what} {path}: refused: nested too deeply. Flatten the structure.{see}") from None
    finally:
        if loader is not None:
            loader.dispose()
