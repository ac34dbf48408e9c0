"""Headless Chromium for the browser tests: the one DevTools client they share.

The report pages carry a Content-Security-Policy without scripts, so a page cannot
measure itself. :class:`Browser` drives Chromium over its DevTools pipe
(``--remote-debugging-pipe``: commands on fd 3, replies and events on fd 4, JSON
separated by NUL bytes; no port, no network, no extra package) and evaluates JavaScript
from outside the page (DevTools evaluation is not subject to the page's CSP). A
:class:`Tab` gives a page's layout (:data:`WIDE_ELEMENTS_JS`: the elements that pass
the right edge of the window), its text and DOM, its console messages, its A4 print
page count and a screenshot. :func:`evaluate` is the one-shot form (a browser for one
expression).

Example
-------
>>> WIDE_ELEMENTS_JS.startswith("(() =>")
True
"""
from __future__ import annotations

import base64
import json
import os
import re
import select
import subprocess
import tempfile
import time
from pathlib import Path

from abmkit.report_assets import BROWSERS, find_chromium  # noqa: F401 - one lookup of the browser

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]

#: {"viewport": px, "scroll_width": px, "n": count, "wide": [[tag.class, width px, right edge px, text], ...]}:
#: the visible elements whose right edge passes the window or that are wider than it
WIDE_ELEMENTS_JS = """(() => {
  const vw = document.documentElement.clientWidth, wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > vw + 1 || r.width > vw + 1)
      wide.push([el.tagName + '.' + String(el.className || '').slice(0, 40), Math.round(r.width),
                 Math.round(r.right), (el.textContent || '').trim().slice(0, 60)]);
  }
  return {viewport: vw, scroll_width: document.documentElement.scrollWidth, n: wide.length, wide: wide.slice(0, 15)};
})()"""
#: DevTools events that are console output (a script error, a CSP violation, a log line)
CONSOLE_EVENTS = ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")
#: A4 in inches (Page.printToPDF)
A4 = {"paperWidth": 8.27, "paperHeight": 11.69}


class Browser:
    """A headless Chromium on a DevTools pipe; open pages with :meth:`open`, end with
    :meth:`close` (or use it as a context manager)."""

    def __init__(self, chromium: str, profile: str | Path | None = None, *, timeout: float = 120):
        self.timeout = timeout
        self._tmp = None if profile is not None else tempfile.TemporaryDirectory(prefix="abmkit-cdp-")
        profile = profile if profile is not None else self._tmp.name
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()

        def fds():  # in the child: Chromium reads fd 3 and writes fd 4
            a, b = os.dup(to_r), os.dup(from_w)   # out of the way of 3 and 4 first (they may be 3 or 4)
            os.dup2(a, 3)                          # dup2 onto another fd clears close-on-exec
            os.dup2(b, 4)

        self.proc = subprocess.Popen([chromium, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
                                      "about:blank"], preexec_fn=fds, close_fds=False, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self._buf, self._id, self.events = b"", 0, []

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _message(self, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._from_r], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer within {timeout:.0f} s")
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed its DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}, **({"sessionId": session} if session else {})}
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._message(timeout or self.timeout)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait(self, method: str, session: str, timeout: float | None = None) -> dict:
        """The next event ``method`` of ``session``."""
        end = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, m in enumerate(self.events):
                if m.get("method") == method and m.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._message(max(0.01, end - time.monotonic())))

    def open(self, page: str | Path, width: int = 1280, height: int = 900) -> "Tab":
        """A new tab at ``width`` × ``height`` CSS pixels with ``page`` (a path or a URL) loaded."""
        url = page if isinstance(page, str) and "://" in page else Path(page).resolve().as_uri()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(method, session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait("Page.loadEventFired", session)
        return Tab(self, session)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (OSError, TimeoutError, EOFError, RuntimeError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_w)
        os.close(self._from_r)
        if self._tmp is not None:
            self._tmp.cleanup()


class Tab:
    """One loaded page of a :class:`Browser`."""

    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def eval(self, expression: str):
        r = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                              session=self.session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def layout(self) -> dict:
        """:data:`WIDE_ELEMENTS_JS` on this page."""
        return self.eval(WIDE_ELEMENTS_JS)

    def text(self) -> str:
        return self.eval("document.body.innerText")

    def dom(self) -> str:
        return self.eval("document.documentElement.outerHTML")

    def console(self) -> list[dict]:
        """The console messages of this page so far (errors, CSP violations, logs)."""
        return [m["params"] for m in self.browser.events if m.get("sessionId") == self.session
                and m.get("method") in CONSOLE_EVENTS]

    def pdf_pages(self) -> int:
        """Pages of this page printed on A4 (its print CSS applies)."""
        data = base64.b64decode(self.browser.send("Page.printToPDF", A4, session=self.session)["data"])
        return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page when ``full_page``, else the window)."""
        params = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        data = self.browser.send("Page.captureScreenshot", params, session=self.session)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path


def evaluate(chromium: str, url: str, expression: str, *, width: int = 1280, height: int = 900,
             timeout: float = 90):
    """Open ``url`` in a fresh headless Chromium at ``width`` × ``height`` CSS pixels, wait
    for the load, and return the value of ``expression``."""
    with Browser(chromium, timeout=timeout) as browser:
        return browser.open(url, width=width, height=height).eval(expression)
