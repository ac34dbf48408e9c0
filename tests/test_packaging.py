"""pyproject.toml declares what abmkit imports, and requirements.txt pins inside it.

- every third-party top-level module imported anywhere in ``abmkit/**/*.py`` (module
  top or inside a function) is provided by ``[project] dependencies`` or an extra;
- modules imported by the core library (everything outside ``abmkit/plots``,
  ``abmkit/report.py`` and ``abmkit/scale/``) are plain dependencies, not extras;
- ``requires-python`` is >= 3.11 (the pins need it);
- every pin of ``requirements.txt`` satisfies the range pyproject declares for it, and
  every requirement of the dependencies and of the plots/report/scale/lab extras is
  pinned there (``make report`` installs requirements.txt and abmkit with --no-deps);
- the modules :mod:`abmkit._extras` asks for are provided by the extra it names.
"""
from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "abmkit"
#: import name -> distribution name, where they differ
DISTRIBUTION_OF = {"yaml": "pyyaml", "dateutil": "python-dateutil", "sklearn": "scikit-learn",
                   "PIL": "pillow", "bs4": "beautifulsoup4"}
#: parts of the package that may rely on an extra (the rest must need plain dependencies only)
OPTIONAL_PARTS = {"abmkit/plots": "plots", "abmkit/report.py": "report", "abmkit/scale": "scale",
                  "abmkit/sources/sql.py": "sql"}
#: extras whose requirements `make report` / `make lab` need, so requirements.txt pins them
RUNTIME_EXTRAS = ("plots", "report", "scale", "lab", "sql")


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _expand(project: dict, extra: str, seen: frozenset = frozenset()) -> list[Requirement]:
    """Requirements of ``extra``, with self-references (``abmkit[plots]``) expanded."""
    out = []
    for text in project.get("optional-dependencies", {}).get(extra, []):
        req = Requirement(text)
        if canonicalize_name(req.name) == canonicalize_name(project["name"]):
            for sub in sorted(req.extras - seen):
                out += _expand(project, sub, seen | {extra, sub})
        else:
            out.append(req)
    return out


def _declared() -> tuple[dict[str, Requirement], dict[str, dict[str, Requirement]]]:
    """(dependencies, extra -> requirements) keyed by canonical distribution name."""
    project = _pyproject()["project"]
    deps = {canonicalize_name(r.name): r for r in map(Requirement, project.get("dependencies", []))}
    extras = {e: {canonicalize_name(r.name): r for r in _expand(project, e)}
              for e in project.get("optional-dependencies", {})}
    return deps, extras


def third_party_imports(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Top-level third-party module -> files (relative to the repo) importing it."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("__future__", "abmkit"):
                    continue
                found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def _distribution(module: str) -> str:
    return canonicalize_name(DISTRIBUTION_OF.get(module, module))


def _pins() -> dict[str, Requirement]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = req
    return pins


def _pinned_version(req: Requirement) -> Version:
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"requirements.txt: {req} is not an exact pin"
    return Version(specs[0].version)


def test_imports_finder_sees_the_package():
    found = third_party_imports()
    assert {"pandas", "numpy", "pyarrow"} <= set(found)
    assert "abmkit/plots/kpis.py" in found["matplotlib"]                # module top
    assert "abmkit/report.py" in found["papermill"]                     # inside a function
    assert not {"os", "json", "abmkit", "__future__"} & set(found)


def test_every_import_is_declared():
    deps, extras = _declared()
    everything = set(deps).union(*map(set, extras.values()))
    missing = {m: sorted(files) for m, files in third_party_imports().items() if _distribution(m) not in everything}
    assert not missing, ("imported by abmkit but declared neither in [project] dependencies nor in an extra "
                         f"of pyproject.toml: {missing}")


def test_core_imports_are_plain_dependencies():
    deps, extras = _declared()
    wrong = {}
    for module, files in third_party_imports().items():
        if _distribution(module) in deps:
            continue
        core = [f for f in files if not any(f == p or f.startswith(p + "/") for p in OPTIONAL_PARTS)]
        if core:
            wrong[module] = core
        for f in set(files) - set(core):
            extra = next(e for p, e in OPTIONAL_PARTS.items() if f == p or f.startswith(p + "/"))
            if _distribution(module) not in extras.get(extra, {}):
                wrong.setdefault(module, []).append(f"{f} (not in the {extra!r} extra)")
    assert not wrong, f"imported outside the optional parts but not a plain dependency: {wrong}"


def test_requires_python_is_311_or_newer():
    spec = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert "3.10.14" not in spec
    assert "3.11.0" in spec and "3.12.0" in spec and "3.13.0" in spec


def test_requirements_pins_satisfy_the_declared_ranges():
    deps, extras = _declared()
    declared: dict[str, list[Requirement]] = {}
    for group in (deps, *extras.values()):
        for name, req in group.items():
            declared.setdefault(name, []).append(req)
    pins = _pins()
    bad = [f"{pin} not in {req.specifier}" for name, pin in pins.items() for req in declared.get(name, [])
           if _pinned_version(pin) not in req.specifier]
    assert not bad, f"requirements.txt pins outside pyproject.toml's ranges: {bad}"
    for name, pin in pins.items():
        for req in declared.get(name, []):
            assert req.extras <= pin.extras, f"requirements.txt {pin} lacks the extras of {req}"


def test_requirements_pin_the_runtime_and_its_extras():
    deps, extras = _declared()
    needed = dict(deps)
    for e in RUNTIME_EXTRAS:
        needed.update(extras[e])
    unpinned = sorted(set(needed) - set(_pins()))
    assert not unpinned, f"`make report` installs requirements.txt with abmkit --no-deps, but it pins no {unpinned}"


def test_dev_tools_stay_out_of_the_runtime():
    pins = _pins()
    for tool in ("pytest", "pytest-xdist", "hypothesis", "channelattribution"):
        assert tool not in pins, f"{tool} is a test tool: requirements-dev.txt / requirements-peer.txt, not requirements.txt"
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").split()
    assert "-r" in dev and "requirements.txt" in dev


def test_extras_helper_matches_pyproject():
    from abmkit._extras import EXTRAS
    _, extras = _declared()
    for extra, modules in EXTRAS.items():
        assert extra in extras, f"abmkit._extras names extra {extra!r}, which pyproject.toml lacks"
        for module in modules:
            assert _distribution(module) in extras[extra], f"{module} is not in pyproject's {extra!r} extra"


def test_missing_extra_says_what_to_install(monkeypatch, capsys):
    from abmkit import _extras, cli
    real = _extras.importlib.util.find_spec
    monkeypatch.setattr(_extras.importlib.util, "find_spec",
                        lambda name, *a: None if name == "papermill" else real(name, *a))
    assert cli.main(["report", "--data", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert "papermill" in err and "pip install 'abmkit[report]'" in err


@pytest.mark.parametrize("drop", ["scipy", "pyyaml"])
def test_a_dropped_dependency_is_caught(drop):
    """The check above is not vacuous: without ``drop`` in the dependencies an import is undeclared."""
    deps, extras = _declared()
    deps.pop(drop, None)
    everything = set(deps).union(*map(set, extras.values()))
    assert any(_distribution(m) not in everything for m in third_party_imports())
