"""Publishing a report: a lock per period, versioned folders behind an atomic pointer, and
input fingerprints. Used by :func:`abmkit.report.run_report`;
see docs/report_and_scheduling.md ("Publication") and docs/security.md.

Layout under the reports folder ``<out>``::

    <out>/<period>                      -> .versions/<period>/<run-id>     (symbolic link)
    <out>/.versions/<period>/<run-id>/     a complete report (never changed once in place)
    <out>/.data/<period>                -> .versions/<period>/<run-id>     (symbolic link)
    <out>/.data/.versions/<period>/<run-id>/   that report's private data (0700 / 0600)
    <out>/.locks/<period>.lock             held (flock) by the run of that period

**Publication** (:func:`publish`) renames the finished staging folders into new version
folders, points ``<period>`` at the new report and then ``.data/<period>`` at its data.
Each pointer is switched with ``os.replace`` of a new symbolic link, which is atomic: a
reader, or a crash at any instant, sees the complete previous report or the complete new
one, never a mix and never no report. The switch of ``<period>`` is the commit; tools find
the data of a report through the report's version (:func:`data_of`), never through the
``.data/<period>`` pointer, so a crash between the two switches cannot pair a report with
another run's data (the pointer lags until the next run of the period puts it right,
:func:`reconcile`). A report folder of the earlier layout (a real folder at ``<period>``)
is moved into ``.versions`` and replaced by the link with two renames; a crash between them
leaves no ``<period>``, and :func:`reconcile` restores it from the newest complete version. The previous version is kept (a reader in the middle of a page still
finds it); older versions, and versions of runs that crashed before their commit, are
removed by the next successful run (:func:`prune`).

**The lock** (:class:`PeriodLock`) is a file holding the pid, host and start time of its
run, locked with ``flock``: the kernel releases it when the process dies, so a lock left
by a killed run (its pid dead on this host) is taken over with a note. A lock of another
host cannot be checked and is respected.

**Fingerprints** (:func:`fingerprint_files`, :func:`changed`): size, ``mtime_ns`` and
sha256 of every input file, taken at the start of a run and compared at the end.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path

__all__ = ["VERSIONS", "LOCKS", "LOCK_HELD_EXIT", "LockHeld", "PeriodLock", "new_run_id", "current_version",
           "data_of", "publish", "reconcile", "prune", "PUBLISH_STEPS", "fingerprint", "fingerprint_files",
           "changed", "version_dir", "data_version_dir", "published_labels"]

VERSIONS = ".versions"
LOCKS = ".locks"
#: exit code of a run refused because another run of the same period holds the lock
#: (sysexits EX_TEMPFAIL: nothing was changed, try again later)
LOCK_HELD_EXIT = 75
#: the steps of :func:`publish`, in order (a crash may happen before any of them)
PUBLISH_STEPS = ("move_report", "move_data", "point_report", "point_data", "cleanup")
_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}(-legacy)?")


def _before_step(name: str) -> None:
    """Called before each step of :func:`publish` (tests replace it to inject a crash)."""


def new_run_id(now: float | None = None) -> str:
    """``20261001T060000Z-3fa9c1``: sortable by time, unique."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def version_dir(out_dir: Path, label: str, run_id: str) -> Path:
    return Path(out_dir) / VERSIONS / label / run_id


def data_version_dir(out_dir: Path, label: str, run_id: str) -> Path:
    return Path(out_dir) / ".data" / VERSIONS / label / run_id


# --------------------------------------------------------------------------- the lock
def _proc_start(pid: int) -> str | None:
    """The start time of a live process (clock ticks since boot, Linux), to tell a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


class LockHeld(RuntimeError):
    """Another run of the same period holds the lock (exit code :data:`LOCK_HELD_EXIT`)."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = Path(path), dict(holder or {})
        h = self.holder
        who = (f"pid {h.get('pid', '?')} on {h.get('host', '?')}, started {h.get('started', '?')}"
               if h else "a run that is starting")
        other_host = h.get("host") not in (None, socket.gethostname())
        tail = (f"; it runs on another machine: if no run is active there, delete {self.path}"
                if other_host else "")
        super().__init__(f"another report run of {h.get('label') or self.path.stem} is in progress ({who}; lock "
                         f"{self.path}){tail}. Nothing was changed: try again when it has finished.")


class PeriodLock:
    """The lock of one output period: ``<out>/.locks/<label>.lock``.

    ``acquire()`` returns a note when it took over a stale lock (its pid dead on this
    host, or reused by another process), raises :class:`LockHeld` when a live run holds
    it. The file stays locked (``flock``) until :meth:`release` or the process ends.
    """

    def __init__(self, out_dir: str | Path, label: str, run_id: str = ""):
        self.path = Path(out_dir) / LOCKS / f"{label}.lock"
        self.label, self.run_id = label, run_id
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def _read(self, fd: int) -> dict:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            raw = os.read(fd, 65536)
            info = json.loads(raw.decode("utf-8")) if raw.strip() else {}
            return info if isinstance(info, dict) else {}
        except (OSError, ValueError):
            return {}

    def acquire(self) -> str | None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = self._read(fd)
                os.close(fd)
                raise LockHeld(self.path, info) from None
            try:  # the file may have been released (unlinked) and re-created since we opened it
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = self._read(fd)
            note = None
            if previous:
                here = socket.gethostname()
                pid = previous.get("pid")
                if previous.get("host") != here:
                    os.close(fd)  # cannot tell whether that run is alive: respect it
                    raise LockHeld(self.path, previous)
                if isinstance(pid, int) and _pid_alive(pid) and previous.get("proc_start") == _proc_start(pid):
                    os.close(fd)  # alive, yet not holding the flock: do not guess
                    raise LockHeld(self.path, previous)
                note = (f"took over the lock {self.path} left by pid {pid} (started {previous.get('started')}), "
                        "which is no longer running")
            info = {"pid": os.getpid(), "host": socket.gethostname(), "proc_start": _proc_start(os.getpid()),
                    "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "label": self.label, "run_id": self.run_id}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(info) + "\n").encode("utf-8"))
            os.fsync(fd)
            self.fd = fd
            return note
        raise LockHeld(self.path, {})

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                os.unlink(self.path)  # while still holding it: a waiting opener re-checks the inode
        except OSError:
            pass
        os.close(fd)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


# --------------------------------------------------------------------------- versions
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_version(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / "index.html").is_file()


def current_version(out_dir: str | Path, label: str) -> tuple[Path, str | None] | None:
    """``(report folder, run id)`` of the published report of ``label``, None if there is
    none. The run id is None for a report of the earlier layout (a real folder)."""
    link = Path(out_dir) / label
    if link.is_symlink():
        target = Path(os.readlink(link))
        run_id = target.name
        real = link.parent / target
        if _RUN_ID.fullmatch(run_id) and _is_version(real):
            return real, run_id
        return None
    if link.is_dir():
        return link, None
    return None


def published_labels(out_dir: str | Path) -> set[str]:
    """The periods with a published report in ``out_dir`` (a ``<label>`` link to a
    complete version, or a report folder of the earlier layout); hidden folders and
    staging folders are not periods.

    >>> published_labels("/nonexistent")
    set()
    """
    out = Path(out_dir)
    try:
        names = [p.name for p in out.iterdir() if not p.name.startswith(".")]
    except OSError:
        return set()
    return {n for n in names if current_version(out, n) is not None and (out / n / "index.html").is_file()}


def data_of(out_dir: str | Path, label: str, run_id: str | None) -> Path:
    """The private data folder of the report version ``run_id`` (of the earlier layout: ``.data/<label>``)."""
    if run_id is None:
        return Path(out_dir) / ".data" / label
    return data_version_dir(Path(out_dir), label, run_id)


def _point(link: Path, target: str) -> None:
    """Make ``link`` a symbolic link to ``target`` atomically (a new link renamed over it).
    A real folder at ``link`` (the earlier layout) is moved into ``.versions`` first."""
    tmp = link.with_name(f".tmp-{link.name}-{uuid.uuid4().hex[:8]}")
    os.symlink(target, tmp)
    try:
        if link.is_dir() and not link.is_symlink():
            _replace_folder(link, tmp)
        else:
            os.replace(tmp, link)
    except BaseException:
        try:
            if tmp.is_symlink():
                tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(link.parent)


def _legacy_home(folder: Path) -> Path:
    """Where a report folder of the earlier layout goes: a version of its own."""
    parent = folder.parent
    label = folder.name
    stamp = new_run_id(folder.stat().st_mtime)
    return parent / VERSIONS / label / f"{stamp}-legacy"


def _replace_folder(link: Path, tmp_link: Path) -> None:
    """Move a report folder of the earlier layout into ``.versions`` and put the new link
    in its place: two renames. A crash between them leaves no ``link``, which
    :func:`reconcile` restores from the newest complete version on the next run (this
    happens once per period, when the layout is migrated)."""
    home = _legacy_home(link)
    home.parent.mkdir(parents=True, exist_ok=True)
    os.replace(link, home)
    os.replace(tmp_link, link)


def publish(out_dir: str | Path, label: str, run_id: str, report_src: Path, data_src: Path) -> tuple[Path, Path]:
    """Put the finished ``report_src`` and ``data_src`` (staging folders) in place as the
    version ``run_id`` of ``label`` (see the module docstring); returns the new version's
    ``(report, data)`` folders. Call it holding the period's lock. A crash at any point
    leaves ``<out>/<label>`` the complete previous report or the complete new one."""
    out_dir = Path(out_dir)
    report_dst, data_dst = version_dir(out_dir, label, run_id), data_version_dir(out_dir, label, run_id)
    from .private import private_dir

    _before_step("move_report")
    report_dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(report_src, report_dst)
    _before_step("move_data")
    private_dir(data_dst.parent, tighten=True)
    private_dir(data_dst.parent.parent, tighten=True)
    os.replace(data_src, data_dst)
    _fsync_dir(report_dst.parent)
    _fsync_dir(data_dst.parent)
    _before_step("point_report")
    _point(out_dir / label, f"{VERSIONS}/{label}/{run_id}")  # the commit
    _before_step("point_data")
    _point(out_dir / ".data" / label, f"{VERSIONS}/{label}/{run_id}")  # follows (reconcile() after a crash)
    _before_step("cleanup")
    return report_dst, data_dst


def _versions(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if _RUN_ID.fullmatch(p.name))
    except OSError:
        return []


def reconcile(out_dir: str | Path, label: str) -> list[str]:
    """Put the pointers of ``label`` right after a crash (call it holding the lock): a
    missing ``<label>`` is pointed at the newest complete version (report and data), and
    ``.data/<label>`` at the data of the published report. Returns notes of what it did."""
    out_dir = Path(out_dir)
    notes = []
    link = out_dir / label
    missing = not link.exists() and not link.is_symlink()
    broken = link.is_symlink() and current_version(out_dir, label) is None
    if missing or broken:
        complete = [v for v in _versions(out_dir / VERSIONS / label)
                    if _is_version(v) and data_version_dir(out_dir, label, v.name).is_dir()]
        if complete:
            _point(link, f"{VERSIONS}/{label}/{complete[-1].name}")
            notes.append(f"{link} was missing (a crash during publication): restored it to the complete "
                         f"report {complete[-1].name}")
    cur = current_version(out_dir, label)
    if cur is not None and cur[1] is not None:
        want = f"{VERSIONS}/{label}/{cur[1]}"
        dlink = out_dir / ".data" / label
        have = os.readlink(dlink) if dlink.is_symlink() else None
        if have != want and data_version_dir(out_dir, label, cur[1]).is_dir():
            _point(dlink, want)
            notes.append(f"{dlink} now points at the data of the published report {cur[1]}")
    return notes


def prune(out_dir: str | Path, label: str, keep: tuple[str | None, ...]) -> list[Path]:
    """Remove the versions of ``label`` (report and data) other than ``keep`` (run ids),
    and the temporary links a crashed switch left. Call it holding the lock, after a
    successful publication, with the new and the previous run id."""
    out_dir = Path(out_dir)
    keep_set = {k for k in keep if k}
    removed = []
    for folder in (out_dir / VERSIONS / label, out_dir / ".data" / VERSIONS / label):
        for v in _versions(folder):
            if v.name not in keep_set:
                shutil.rmtree(v, ignore_errors=True)
                removed.append(v)
    tmp = re.compile(r"\.tmp-" + re.escape(label) + r"-[0-9a-f]{8}")
    for folder in (out_dir, out_dir / ".data"):
        try:
            leftovers = [p for p in folder.iterdir() if tmp.fullmatch(p.name)]
        except OSError:
            continue
        for p in leftovers:
            if p.is_symlink() or p.is_file():
                p.unlink()
            else:
                shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


# --------------------------------------------------------------------------- fingerprints
def fingerprint(path: str | Path, role: str = "data") -> dict:
    """``{"role", "path", "size", "mtime_ns", "sha256"}`` of one file (streamed, 1 MiB at a time)."""
    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"role": role, "path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": h.hexdigest()}


def fingerprint_files(files: dict[str, list[Path]]) -> list[dict]:
    """Fingerprints of ``{role: [files]}`` (a file missing now is recorded as missing)."""
    out = []
    for role, paths in files.items():
        for p in dict.fromkeys(Path(x).resolve() for x in paths):
            try:
                out.append(fingerprint(p, role))
            except FileNotFoundError:
                out.append({"role": role, "path": str(p), "size": None, "mtime_ns": None, "sha256": None})
    return out


def changed(before: list[dict], after: list[dict]) -> list[str]:
    """What differs between two fingerprint lists: one line per file."""
    b = {f["path"]: f for f in before}
    a = {f["path"]: f for f in after}
    lines = []
    for path in sorted(set(b) | set(a)):
        old, new = b.get(path), a.get(path)
        if old is None:
            lines.append(f"{path}: appeared during the run")
        elif new is None or new.get("sha256") is None:
            lines.append(f"{path}: removed during the run")
        elif old.get("sha256") != new.get("sha256") and old.get("size") is None:  # a database table
            lines.append(f"{path}: changed during the run (its row count changed)")
        elif old.get("sha256") != new.get("sha256") or old.get("size") != new.get("size"):
            lines.append(f"{path}: changed during the run (size {old.get('size'):,} -> {new.get('size'):,} bytes, "
                         f"sha256 {str(old.get('sha256'))[:12]} -> {str(new.get('sha256'))[:12]})")
        elif old.get("mtime_ns") != new.get("mtime_ns"):
            lines.append(f"{path}: rewritten during the run (same content, new modification time)")
    return lines
