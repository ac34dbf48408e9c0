"""Runtime of the partitioned engine: the dask.distributed client, running one task per
partition with a progress bar, and gathering the (small) results.
"""
from __future__ import annotations

from .._extras import require


def _require_scale() -> None:
    """dask and distributed (the ``scale`` extra) or an error naming the pip command:
    this module imports them only where they run, so the notebooks can import it
    without them and stay on the pandas path."""
    require("scale", "abmkit.scale (the dask engine)")


def _active_client():
    """The active ``dask.distributed`` client, or None when there is none (the tasks
    then run on dask's local scheduler). dask and distributed are the ``scale`` extra:
    without them this is an error that says what to install."""
    _require_scale()
    from distributed import get_client
    try:
        return get_client()
    except ValueError:  # distributed's "No global client found": a normal local run
        return None


def _share(obj):
    """``obj`` for tasks: scattered once to every worker of the active distributed
    client (not embedded in the task graph), else a delayed constant."""
    import dask
    c = _active_client()
    if c is not None:
        return c.scatter(obj, broadcast=True, hash=False)
    return dask.delayed(obj, pure=True, traverse=False)


def _submit(tasks: list) -> tuple:
    """Start ``tasks`` on the active distributed client (futures: this process goes
    on meanwhile) or, without one, keep them for :func:`_gather` to run."""
    c = _active_client()
    if c is not None:
        return True, c.compute(tasks)
    return False, tasks


def _gather(pending: tuple, desc: str, progress: bool | None = None) -> list:
    """Results of :func:`_submit`, in task order, with a progress bar (shown on a terminal
    or in an interactive notebook; ``progress`` and ``ABMKIT_PROGRESS`` decide first:
    :mod:`abmkit.progress`)."""
    _require_scale()
    import dask
    from ..progress import progress_bar
    started, items = pending
    bar = progress_bar(total=len(items), desc=desc, unit=" task", progress=progress)
    try:
        if started:
            from distributed import as_completed
            for _ in as_completed(items):
                bar.update(1)
            return [f.result() for f in items]
        from dask.callbacks import Callback
        top = {t.key for t in items}

        class _Tick(Callback):  # local schedulers: count the tasks asked for as they finish
            def _posttask(self, key, result, dsk, state, worker_id):
                if key in top:
                    bar.update(1)
        with _Tick():
            return list(dask.compute(*items))
    finally:
        bar.close()


def _compute(tasks: list, desc: str, progress: bool | None = None) -> list:
    """``dask.compute(*tasks)`` with a progress bar; results in task order."""
    return _gather(_submit(tasks), desc, progress)


def _map(parts, fn, *args, _progress: tuple = (None, None), **kwargs) -> list:
    """Run ``fn((dataset, contact_accounts), *args, **kwargs)`` on every partition;
    results gathered (they are small: counts, sums, per-account rows), with a
    progress bar named ``_progress[0]`` (on a terminal, or forced by ``_progress[1]``)."""
    _require_scale()
    import dask

    from .partition import _loaders
    tasks = [dask.delayed(fn, pure=True)(load, *args, **kwargs) for load in _loaders(parts)]
    desc, progress = _progress
    if progress is None:  # the handle's choice (abmkit.open_dataset(..., progress=...)), else: on a terminal
        progress = getattr(parts, "options", {}).get("progress")
    return _compute(tasks, desc or getattr(fn, "__name__", "partitions").strip("_").replace("_", " "), progress)


def client(scheduler: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 1,
           memory_limit: str = "auto", processes: bool = True, **cluster_kwargs):
    """A ``distributed.Client``: connected to ``scheduler`` (e.g. ``"tcp://10.0.0.5:8786"``)
    when given, else on a new local cluster that the client owns (closing the client
    stops it). A plain ``distributed.Client``, so ``isinstance`` and every Client
    method work; use it as a context manager. The partitioned analyses run on the
    active client (or dask's local scheduler when there is none).

    Example
    -------
    >>> with client(n_workers=2) as c:           # doctest: +SKIP
    ...     abmkit.progression.stage_history(parts)
    """
    _require_scale()
    from distributed import Client
    if scheduler:
        return Client(scheduler)
    return Client(n_workers=n_workers, threads_per_worker=threads_per_worker, memory_limit=memory_limit,
                  processes=processes, dashboard_address=":0", **cluster_kwargs)
