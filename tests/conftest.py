"""Shared fixtures: the small generated sample (owned by the sample-data helper).

``small_sample`` is ``abmkit.sample.generate(n_accounts=300, seed=1)`` (session
scope: built once per test session, ~2 s); ``small_sample_dir`` is the same sample
written with :func:`abmkit.sample.write_sample` (``raw/``, ``canonical/``,
``truth/``) into a session temporary folder. Treat both as read-only.
"""
from __future__ import annotations

import pytest

SMALL_N_ACCOUNTS = 300
SMALL_SEED = 1


# --------------------------------------------------------------------------- masking key
# Masked ids use a per-installation secret (abmkit.masking, default ~/.config/abmkit/
# masking.key). Tests never touch the real one: every test process (and the notebook
# kernels it starts, which inherit the environment) uses a throw-away key file.
_SAVED_SECRET_ENV: dict = {}


def pytest_configure(config):
    import os
    import tempfile

    _SAVED_SECRET_ENV["value"] = os.environ.get("ABMKIT_SECRET_FILE")
    _SAVED_SECRET_ENV["dir"] = tempfile.mkdtemp(prefix="abmkit-test-key-")
    os.environ["ABMKIT_SECRET_FILE"] = os.path.join(_SAVED_SECRET_ENV["dir"], "masking.key")
    # no progress bars in test output nor in the outputs of the notebooks tests execute
    # (abmkit.progress shows them in any Jupyter kernel otherwise)
    _SAVED_SECRET_ENV["progress"] = os.environ.get("ABMKIT_PROGRESS")
    os.environ["ABMKIT_PROGRESS"] = "0"


def pytest_unconfigure(config):
    import os
    import shutil

    if "dir" not in _SAVED_SECRET_ENV:
        return
    shutil.rmtree(_SAVED_SECRET_ENV.pop("dir"), ignore_errors=True)
    progress = _SAVED_SECRET_ENV.pop("progress", None)
    if progress is None:
        os.environ.pop("ABMKIT_PROGRESS", None)
    else:
        os.environ["ABMKIT_PROGRESS"] = progress
    old = _SAVED_SECRET_ENV.pop("value", None)
    if old is None:
        os.environ.pop("ABMKIT_SECRET_FILE", None)
    else:
        os.environ["ABMKIT_SECRET_FILE"] = old


@pytest.fixture(scope="session")
def small_sample():
    from abmkit.sample import generate
    return generate(n_accounts=SMALL_N_ACCOUNTS, seed=SMALL_SEED)


@pytest.fixture(scope="session")
def small_sample_dir(tmp_path_factory):
    from abmkit.sample import write_sample
    return write_sample(tmp_path_factory.mktemp("sample"), seed=SMALL_SEED, n_accounts=SMALL_N_ACCOUNTS)


@pytest.fixture(scope="session")
def resolved_sample_dir(small_sample_dir, tmp_path_factory):
    """A copy of the small sample's canonical tables with the resolved dataset saved
    beside them (as notebook 02 leaves it for 2026Q3), so notebooks 03-05 can run alone."""
    import shutil
    from pathlib import Path

    import abmkit
    from abmkit.period import resolve_period

    d = tmp_path_factory.mktemp("resolved") / "canonical"
    shutil.copytree(Path(small_sample_dir) / "canonical", d)
    abmkit.prepare(abmkit.load(d), as_of=resolve_period(quarter="2026Q3").end).save(d)
    return d


# --------------------------------------------------------------------------- notebook marker
# Tests that execute a notebook (papermill / nbclient) or run the report get the
# ``notebook`` marker (registered in pyproject.toml), so the fast suite is
#     pytest -m "not slow and not notebook"
# Marked here rather than in each test module: the explicit list below (file, test
# function; "*" = every test of the file), plus any test whose own source or whose
# fixtures' source (fixtures of the same file) calls papermill's execute_notebook,
# nbclient or run_report directly (so a new notebook test is marked without anyone
# remembering to).
NOTEBOOK_TESTS = {
    ("test_attribution_notebook.py", "*"),
    ("test_browser.py", "test_index_page_loads"),   # their report_dir fixture executes a notebook
    ("test_browser.py", "test_notebook_page_loads_with_charts"),
    ("test_clean.py", "test_notebook_01_runs_on_small_sample"),
    ("test_mapping.py", "test_notebook_02_runs_on_small_sample"),
    ("test_uplift.py", "test_notebook_04_executes_on_small_sample"),
    ("test_report.py", "test_notebook_05_on_small_sample"),
    ("test_report.py", "test_full_run_second_period_failure_and_only"),   # run_report on stand-in notebooks
    ("test_report.py", "test_full_pipeline_on_small_sample"),
    ("test_reproducibility.py", "test_report_csv_outputs_are_byte_identical"),
    ("test_scale.py", "test_notebook_engine_dask_saves_the_pandas_tables"),
    ("test_bad_inputs.py", "test_full_report_runs_on_a_tiny_hostile_export"),
    ("test_sources_report.py", "*"),   # whole reports from CSV, DuckDB and PostgreSQL
}
_NOTEBOOK_CALLS = ("execute_notebook(", "NotebookClient(", "nbclient.execute(", "run_report(")


def _calls_a_notebook(obj) -> bool:
    import inspect
    try:
        src = inspect.getsource(obj)
    except (OSError, TypeError):
        return False
    return any(s in src for s in _NOTEBOOK_CALLS)


def pytest_collection_modifyitems(config, items):
    mark = pytest.mark.notebook
    for item in items:
        fname = item.path.name if getattr(item, "path", None) else ""
        func = getattr(item, "originalname", None) or item.name
        hit = (fname, "*") in NOTEBOOK_TESTS or (fname, func) in NOTEBOOK_TESTS
        if not hit and getattr(item, "function", None) is not None and fname.startswith("test_"):
            hit = _calls_a_notebook(item.function)
            if not hit:
                info = getattr(item, "_fixtureinfo", None)
                for defs in (getattr(info, "name2fixturedefs", None) or {}).values():
                    if any(str(getattr(d, "baseid", "")).endswith(fname) and _calls_a_notebook(d.func)
                           for d in defs):
                        hit = True
                        break
        if hit:
            item.add_marker(mark)


@pytest.fixture(scope="module")
def cluster():
    """A 2-worker dask.distributed cluster (threads) for the tests that compare the
    partitioned engine with pandas; one per test module."""
    from abmkit import scale
    with scale.client(n_workers=2, threads_per_worker=1, processes=False) as c:
        yield c
