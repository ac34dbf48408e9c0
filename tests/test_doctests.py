"""Run the docstring examples of every abmkit module (``doctest``).

One test per module that has examples (a ``>>>`` in its source): modules without
examples are never imported, so heavy optional imports stay out of the run, and
``abmkit/__main__.py`` (which runs the CLI on import) is left alone. Modules are found
with :func:`pkgutil.iter_modules` on the package folders, which imports nothing;
a module is imported only inside its own test. A failing module's test fails with
that module's doctest report.

Option flags: ``ELLIPSIS | NORMALIZE_WHITESPACE``. Examples that need the sample
data folder carry ``# doctest: +SKIP`` in the docstring.

Run just these: ``pytest tests/test_doctests.py``.
"""
from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

PKG = "abmkit"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: modules that must not be imported by the doctest run (side effects on import)
EXCLUDE = {"abmkit.__main__"}


def _package_dir() -> Path:
    spec = importlib.util.find_spec(PKG)  # imports nothing but locates the package
    assert spec is not None and spec.submodule_search_locations, f"{PKG} is not importable"
    return Path(list(spec.submodule_search_locations)[0])


def _modules_with_examples() -> list[tuple[str, Path]]:
    """(module name, source file) of every module whose source has a ``>>>``."""
    out = []

    def walk(folder: Path, prefix: str) -> None:
        init = folder / "__init__.py"
        if init.exists():
            out.append((prefix, init))
        for info in pkgutil.iter_modules([str(folder)]):
            name = f"{prefix}.{info.name}"
            if info.ispkg:
                walk(folder / info.name, name)
            else:
                out.append((name, folder / f"{info.name}.py"))

    walk(_package_dir(), PKG)
    return sorted((n, p) for n, p in out
                  if n not in EXCLUDE and ">>>" in p.read_text(encoding="utf-8", errors="replace"))


MODULES = _modules_with_examples()


def test_doctest_discovery_found_the_modules_with_examples():
    names = {n for n, _ in MODULES}
    # a few modules known to have examples: discovery must not silently find nothing
    assert {"abmkit.mapping", "abmkit.attribution.positions", "abmkit.attribution.paths", "abmkit.uplift"} <= names
    assert not names & EXCLUDE


@pytest.mark.parametrize("module_name", [n for n, _ in MODULES])
def test_doctests(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS, verbose=False)
    report: list[str] = []
    for test in sorted(finder.find(module, module_name), key=lambda t: t.name):
        runner.run(test, out=report.append)
    if runner.failures:
        pytest.fail(f"{runner.failures} of {runner.tries} doctest example(s) failed in {module_name}:\n"
                    + "".join(report), pytrace=False)
