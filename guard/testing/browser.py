"""Headless Chromium driven over the DevTools protocol, with the network blocked: open a page,
record every request it tries and every console error, evaluate expressions, take a screenshot.

For tests of the HTML report (a person would open it in a browser): no Selenium or Playwright
(they download their own browsers), only Debian's ``chromium`` and ``websocket-client``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

from guard.report.pdf import chromium_flags, find_chromium
from guard.testing.processes import stop_process


@dataclass
class PageRun:
    """What the page did while loading: requests other than itself, console and script errors."""

    url: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


class Browser:
    def __init__(self, ws_url: str) -> None:
        self._ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})  # type: ignore[no-any-return]
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        if "method" not in message:
            return  # the answer to a command sent without waiting
        self.events.append(message)
        if message["method"] == "Fetch.requestPaused":  # blocked: fail it now, or the load waits
            request = message["params"]["requestId"]
            params = {"requestId": request, "errorReason": "BlockedByClient"}
            self._ws.send(
                json.dumps({"id": next(self._ids), "method": "Fetch.failRequest", "params": params})
            )

    def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e["method"] == event for e in self.events):
                return
            self._event(json.loads(self._ws.recv()))
        raise TimeoutError(f"no {event} within {timeout} s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, path: Path) -> PageRun:
        """Load ``path`` with every network request failed (and recorded)."""
        url = path.resolve().as_uri()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Fetch.enable", patterns=[{"urlPattern": "http*"}, {"urlPattern": "ws*"}])
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate("1")  # drain events sent before the load
        run = PageRun(url=url)
        for e in self.events:
            p = e.get("params", {})
            if e["method"] in ("Network.requestWillBeSent", "Fetch.requestPaused"):
                if p["request"]["url"] not in (url, *run.requests):
                    run.requests.append(p["request"]["url"])
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                run.console_errors.append(json.dumps(p.get("args")))
            elif e["method"] == "Runtime.exceptionThrown":
                run.console_errors.append(json.dumps(p.get("exceptionDetails")))
            elif e["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                run.console_errors.append(p["entry"].get("text", ""))
        return run

    def screenshot(self, out: Path, width: int = 1200) -> None:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=min(height, 1600),
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.call("Page.captureScreenshot", format="png")["data"]
        out.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()


@contextlib.contextmanager
def chromium_page() -> Iterator[Browser]:
    """A headless Chromium with one blank page, closed (and its profile removed) on exit."""
    chromium = find_chromium()
    profile = Path(tempfile.mkdtemp(prefix="guard-browser-"))
    proc = subprocess.Popen(  # noqa: S603
        [chromium, *chromium_flags(profile), "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{chromium} did not start its DevTools endpoint")
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        import urllib.request  # noqa: PLC0415

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            pages = [t for t in json.load(answer) if t.get("type") == "page"]
        browser = Browser(pages[0]["webSocketDebuggerUrl"])
        try:
            yield browser
        finally:
            browser.close()
    finally:
        stop_process(proc)
        shutil.rmtree(profile, ignore_errors=True)
