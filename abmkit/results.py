"""One convention for every result object (lifelines-like).

Every analysis returns a plain object (usually a dataclass) that inherits
:class:`Result`:

* ``.summary`` is a **property** returning a plain :class:`pandas.DataFrame`
  (one row per headline metric, or the natural summary table); never a dict,
  a string or a DataFrame subclass;
* ``print_summary()`` prints a short title, the key metadata, the one-line
  ``headline`` (when the class has one) and the summary table as text;
  ``str(result)`` is the same text and ``_repr_html_`` its HTML form (notebooks);
* metadata (parameters, counts, dates) lives on the result object itself, not in
  ``DataFrame.attrs``;
* an analysis the data cannot support still returns its result, with
  ``not_applicable`` set to the one-line reason (``"needs touchpoints: none
  supplied"``, :mod:`abmkit.applicability`); its renderings then start with
  ``n/a — <reason>`` instead of presenting empty tables as findings.
"""
from __future__ import annotations

import dataclasses
import html
import numbers

import numpy as np
import pandas as pd

__all__ = ["Result"]

#: rows of the summary table shown by print_summary / str / _repr_html_
_MAX_ROWS = 60


def _is_scalar(v) -> bool:
    return isinstance(v, (str, bool, numbers.Number, np.generic, pd.Timestamp, pd.Timedelta))


def _float(x: float, decimals: int) -> str:
    """``decimals`` fixed decimals; a value too small to show that way (a p-value)
    keeps ``decimals`` significant digits instead of printing as zero."""
    if x != 0 and np.isfinite(x) and abs(x) < 0.5 * 10.0 ** -decimals:
        return f"{x:.{max(decimals, 1)}g}"
    return f"{x:.{decimals}f}"


def _fmt(v, decimals: int) -> str:
    if isinstance(v, (float, np.floating)) and not isinstance(v, bool):
        return _float(float(v), decimals)
    return str(v)


class Result:
    """Mixin of the kit's result objects: ``.summary`` DataFrame property plus text
    and HTML renderings.

    Subclasses implement the ``summary`` property (a plain DataFrame). Optional
    hooks: a ``headline`` str property (one sentence, printed above the table),
    ``_summary_title`` (class attribute, default: the class name) and
    ``_summary_metadata()`` (dict of key metadata; default: the dataclass fields
    holding scalars, plus the scalar items of a ``params`` dict field).

    Methods
    -------
    print_summary(decimals=3)
        Print title, metadata, headline and the summary table.
    __str__
        The same text.
    _repr_html_
        Title, metadata, headline and the summary table as (escaped) HTML.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> import pandas as pd
    >>> from abmkit.results import Result
    >>> @dataclass
    ... class Counts(Result):
    ...     n: int
    ...     share: float
    ...     @property
    ...     def summary(self) -> pd.DataFrame:
    ...         return pd.DataFrame({"metric": ["n", "share"], "value": [self.n, self.share]})
    ...     @property
    ...     def headline(self) -> str:
    ...         return f"{self.n} accounts, {self.share:.0%} engaged."
    >>> r = Counts(n=3, share=0.5)
    >>> type(r.summary) is pd.DataFrame
    True
    >>> r.print_summary(decimals=2)
    Counts
      n: 3
      share: 0.50
    3 accounts, 50% engaged.
    <BLANKLINE>
    metric  value
         n   3.00
     share   0.50
    >>> "<table" in r._repr_html_()
    True
    """

    _summary_title: str | None = None
    #: "" when the analysis applies, else why not (one line; abmkit.applicability)
    not_applicable: str = ""

    @property
    def summary(self) -> pd.DataFrame:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError(f"{type(self).__name__} must implement the `summary` property")

    # ------------------------------------------------------------------ hooks
    def _summary_metadata(self) -> dict:
        """Key metadata shown above the table: scalar dataclass fields and the scalar
        items of a ``params`` dict field."""
        out = {}
        if dataclasses.is_dataclass(self):
            for f in dataclasses.fields(self):
                if f.name.startswith("_") or f.name == "not_applicable":
                    continue
                v = getattr(self, f.name)
                if _is_scalar(v):
                    out[f.name] = v
                elif f.name == "params" and isinstance(v, dict):
                    out.update({k: x for k, x in v.items() if _is_scalar(x) and k not in out})
        return out

    def _headline_text(self) -> str:
        h = getattr(self, "headline", None)   # a str property when the class has one
        return h if isinstance(h, str) else ""

    def _title(self) -> str:
        return self._summary_title or type(self).__name__

    # ------------------------------------------------------------------ renderings
    def _summary_text(self, decimals: int = 3) -> str:
        lines = [self._title()]
        if self.not_applicable:
            lines.append(f"n/a — {self.not_applicable}")
        lines += [f"  {k}: {_fmt(v, decimals)}" for k, v in self._summary_metadata().items()]
        head = self._headline_text()
        if head:
            lines.append(head)
        table = self.summary
        lines.append("")
        if len(table.columns) == 0:
            lines.append("(empty summary)")
        elif len(table) == 0:
            lines.append(f"(no rows; columns: {', '.join(map(str, table.columns))})")
        else:
            lines.append(table.to_string(index=False, max_rows=_MAX_ROWS, min_rows=_MAX_ROWS,
                                         float_format=lambda x: _float(x, decimals)))
        return "\n".join(lines)

    def print_summary(self, decimals: int = 3) -> None:
        """Print the title, key metadata, headline and summary table.

        Parameters
        ----------
        decimals : int
            Decimals of floats in the metadata and the table.
        """
        print(self._summary_text(decimals))

    def __str__(self) -> str:
        return self._summary_text()

    def _repr_html_(self) -> str:
        e = html.escape
        parts = [f"<strong>{e(self._title())}</strong>"]
        if self.not_applicable:
            parts.append(f"<blockquote><p>n/a — {e(self.not_applicable)}</p></blockquote>")
        meta = self._summary_metadata()
        if meta:
            parts.append("<ul>" + "".join(f"<li>{e(str(k))}: {e(_fmt(v, 3))}</li>" for k, v in meta.items())
                         + "</ul>")
        head = self._headline_text()
        if head:
            parts.append("<p>" + "<br>".join(e(line) for line in head.splitlines()) + "</p>")
        parts.append(self.summary.to_html(index=False, max_rows=_MAX_ROWS, escape=True,
                                          float_format=lambda x: _float(x, 3)))
        return "\n".join(parts)
