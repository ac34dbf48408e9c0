"""A throw-away PostgreSQL server for the tests (from the system's PostgreSQL binaries).

``start()`` runs ``initdb`` and ``pg_ctl start`` in a temporary folder (as the
``postgres`` user when the tests run as root, since PostgreSQL refuses to run as root),
listening only on a Unix socket in that folder; ``stop()`` removes everything. When no
server can start (no binaries, no ``postgres`` user) it raises :class:`Unavailable` with
the reason, which the tests turn into a skip that says what to install.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile


class Unavailable(RuntimeError):
    pass


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


class Server:
    def __init__(self):
        self.initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise Unavailable("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's `postgresql` "
                              "package (.ci/run does) to run the PostgreSQL source tests")
        self.dir = tempfile.mkdtemp(prefix="abmkit-pg-")
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            import pwd
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise Unavailable("running as root and no `postgres` user to run the server as") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.dir, "data")
        self.port = 5432 + (os.getpid() % 20000)

    def _run(self, *args, check=True):
        r = subprocess.run(self.run_as + list(args), capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise Unavailable(f"{os.path.basename(args[0])} failed: {(r.stderr or r.stdout)[-400:]}")
        return r

    def start(self) -> "Server":
        try:
            self._run(self.initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
            self._run(self.pg_ctl, "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                      f"-k {self.dir} -p {self.port} -c listen_addresses='' -c fsync=off -c full_page_writes=off",
                      "start")
        except Exception:
            self.stop()
            raise
        return self

    def url(self, database: str = "postgres", schema: str | None = None) -> str:
        url = f"postgresql+psycopg://postgres@/{database}?host={self.dir}&port={self.port}"
        return url + (f"&schema={schema}" if schema else "")

    def stop(self) -> None:
        if os.path.isdir(self.data):
            self._run(self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
