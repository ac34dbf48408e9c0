"""Progress bars of long work: shown to a person, quiet for machines.

One rule for every bar of the kit (the bootstrap of ``compare_models``, campaign
influence, partitioning, every pass over Dask partitions):

1. ``progress=True`` / ``False`` given to the analysis decides;
2. else the environment variable ``ABMKIT_PROGRESS`` (``1`` shows, ``0`` hides): the
   report runner sets ``0`` for its notebook kernels, whose output is the report, and
   shows papermill's bar of the notebooks instead;
3. else a bar shows on a terminal (the CLI, a Python shell) and in an interactive
   Jupyter kernel, and stays quiet anywhere else (cron, CI, a log file).

Example
-------
>>> show_progress(False)
False
>>> bar = progress_bar(total=3, desc="demo", progress=False)
>>> bar.update(3); bar.close()
"""
from __future__ import annotations

import os
import sys

__all__ = ["ENV_VAR", "progress_bar", "show_progress"]

#: the environment variable that shows (``1``) or hides (``0``) every bar
ENV_VAR = "ABMKIT_PROGRESS"


def _in_jupyter_kernel() -> bool:
    """Whether this process is an IPython kernel (JupyterLab, a papermill run): its
    stderr is not a terminal, but a person may be watching the cell."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # noqa: BLE001 - an IPython too old or half imported: no kernel
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def show_progress(progress: bool | None = None) -> bool:
    """Whether a progress bar shows (the rule of this module).

    >>> show_progress(True)
    True
    """
    if progress is not None:
        return bool(progress)
    env = os.environ.get(ENV_VAR, "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("1", "true", "yes", "on"):
        return True
    try:
        tty = sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stderr
        tty = False
    return tty or _in_jupyter_kernel()


def progress_bar(*, total=None, desc: str, unit: str = " it", progress: bool | None = None, **kwargs):
    """A ``tqdm`` bar, shown by :func:`show_progress`'s rule and removed when done."""
    from tqdm import tqdm
    kwargs.setdefault("leave", False)
    return tqdm(total=total, desc=desc, unit=unit, disable=not show_progress(progress), **kwargs)
