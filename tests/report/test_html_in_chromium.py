"""report.html in headless Chromium, offline: no console errors, no request leaves the file, every image decodes,
and the page renders (a screenshot of more than one colour). Chromium is driven over the DevTools protocol through
a pipe (--remote-debugging-pipe: commands on fd 3, replies on fd 4), so no Python dependency is needed."""
from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from edgeslim.report import build_report

pytestmark = pytest.mark.slow   # the session's tiny run takes ~40 s to build once

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-extensions", "--disable-sync", "--remote-debugging-pipe", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--window-size=1280,1600"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


class Chromium:
    """A headless Chromium process and a DevTools connection to it over a pipe."""

    def __init__(self, exe: str, profile: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def on_fds_3_and_4():   # in the child, before exec: Chromium reads commands on fd 3, writes on fd 4
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._log = open(profile.parent / "chromium.log", "wb")
        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=on_fds_3_and_4, close_fds=False, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out_r], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            e = self._read_message(deadline)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()      # our own child, by its handle
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._out_r)
        self._log.close()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium; `make test` installs it when "
                    "run as root)")
    browser = Chromium(exe, tmp_path_factory.mktemp("chromium") / "profile")
    yield browser
    browser.close()


def open_page(browser: Chromium, html: Path) -> tuple[str, list[str]]:
    """Load `html` in a new tab; returns the session and every URL the page requested."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1,
                                                      "uploadThroughput": -1}, session=session)
    browser.events.clear()
    browser.send("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
    browser.wait_for("Page.loadEventFired")
    urls = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    return session, urls


def evaluate(browser: Chromium, session: str, expression: str):
    res = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                       session=session)
    if "exceptionDetails" in res:
        raise AssertionError(f"page script failed: {res['exceptionDetails']}")
    return res["result"]["value"]


def console_errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(json.dumps(p.get("args")))
        elif m == "Runtime.exceptionThrown":
            out.append(json.dumps(p.get("exceptionDetails")))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(p["entry"].get("text", ""))
        elif m == "Network.loadingFailed":
            out.append(f"request failed: {p.get('errorText')}")
    return out


DECODE_IMAGES = """Promise.all(Array.from(document.images).map(img => img.decode().then(
    () => ({ok: true, w: img.naturalWidth, h: img.naturalHeight, alt: img.alt}),
    err => ({ok: false, error: String(err), alt: img.alt}))))"""


@pytest.mark.parametrize("which", ["full", "plain"])
def test_report_opens_offline_without_errors_and_renders(chromium, report_runs, which):
    from PIL import Image

    run = getattr(report_runs, which)
    html = Path(build_report(run)["html"])
    session, urls = open_page(chromium, html)
    others = [u[:80] for u in urls if u != html.resolve().as_uri() and not u.startswith("data:image/png;base64,")]
    assert others == [], f"the page requested more than itself and its inline images: {others}"
    assert urls.count(html.resolve().as_uri()) == 1
    assert console_errors(chromium.events) == []
    images = evaluate(chromium, session, DECODE_IMAGES)
    assert len(images) == 3 and all(i["ok"] and i["w"] > 0 and i["h"] > 0 for i in images), images
    assert evaluate(chromium, session, "document.querySelectorAll('#steps-table tr').length") > 2
    assert evaluate(chromium, session, "!!document.querySelector('#headline')") == (which == "full")
    height = evaluate(chromium, session, "document.documentElement.scrollHeight")
    shot = chromium.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                     "clip": {"x": 0, "y": 0, "width": 1280,
                                                              "height": min(height, 6000), "scale": 1}},
                         session=session)
    img = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    colors = img.getcolors(maxcolors=1 << 24)
    top_share = max(n for n, _ in colors) / (img.width * img.height)
    assert len(colors) > 100 and top_share < 0.97, (len(colors), top_share)
    assert console_errors(chromium.events) == []
