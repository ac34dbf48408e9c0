"""abmkit.progress: one rule for every progress bar (argument, ABMKIT_PROGRESS, terminal or
Jupyter kernel), and the report's kernels run without bars."""
from __future__ import annotations

import io
import sys
import types

import pytest

from abmkit import progress


class _TTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)  # not in a kernel unless a test says so


def test_argument_wins_over_everything(monkeypatch):
    monkeypatch.setenv(progress.ENV_VAR, "1")
    assert progress.show_progress(False) is False
    monkeypatch.setenv(progress.ENV_VAR, "0")
    assert progress.show_progress(True) is True


@pytest.mark.parametrize("value, shown", [("0", False), ("off", False), ("1", True), ("yes", True)])
def test_environment_variable_decides_when_no_argument(monkeypatch, value, shown):
    monkeypatch.setenv(progress.ENV_VAR, value)
    monkeypatch.setattr(sys, "stderr", _TTY() if not shown else io.StringIO())  # the env wins over the tty
    assert progress.show_progress(None) is shown


def test_terminal_shows_and_a_pipe_is_quiet(monkeypatch, no_env):
    monkeypatch.setattr(sys, "stderr", _TTY())
    assert progress.show_progress(None) is True
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress.show_progress(None) is False


def test_an_interactive_jupyter_kernel_shows(monkeypatch, no_env):
    monkeypatch.setattr(sys, "stderr", io.StringIO())          # a kernel's stderr is not a terminal
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert progress.show_progress(None) is True
    terminal_ipython = types.SimpleNamespace(config={"TerminalIPythonApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: terminal_ipython))
    assert progress.show_progress(None) is False                  # plain IPython on a pipe: quiet


def test_bar_writes_only_when_shown(monkeypatch, no_env):
    out = io.StringIO()
    bar = progress.progress_bar(total=2, desc="demo-bar", progress=True, file=out)
    bar.update(2)
    bar.close()
    assert "demo-bar" in out.getvalue()
    quiet = io.StringIO()
    bar = progress.progress_bar(total=2, desc="demo-bar", progress=None, file=quiet)
    bar.update(2)
    bar.close()
    assert quiet.getvalue() == ""


def test_report_kernels_run_without_bars():
    from abmkit.report import _kernel_env
    assert _kernel_env()[progress.ENV_VAR] == "0"
