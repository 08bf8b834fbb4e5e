"""What the smoke scripts (``smoke_realtime.py``, ``smoke_social.py``) share: the PASS/FAIL report, the API client
with development tokens, and polling. They run against a stack started with ``make run``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from webapp.auth import dev_token  # noqa: E402  (the same function as `flask --app webapp dev-token EMAIL`)


class Failed(Exception):
    """A step the later checks depend on failed: stop here."""


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {name}{'  — ' + detail if detail else ''}", flush=True)
        return ok

    def require(self, name: str, ok: bool, detail: str = "") -> None:
        if not self.check(name, ok, detail):
            raise Failed(name)


class Api:
    """REST calls as athletes of this run (unique emails per run, so reruns work on the same ``.data``)."""

    def __init__(self, base_url: str, project: str, run: str) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.ws_url = self.base.replace("http://", "ws://").replace("https://", "wss://") + "/ws"
        self.project = project
        self.run = run
        self.http = requests.Session()

    def token(self, name: str) -> str:
        return dev_token(f"{name}-{self.run}@smoke.example.com", self.project)

    def call(self, method: str, path: str, token: str, expect: Iterable[int] = (200, 201, 204),
             **kwargs: Any) -> requests.Response:
        # Concurrent callers pass fresh=True: a requests Session is not meant to be shared between threads.
        sender = requests if kwargs.pop("fresh", False) else self.http
        response = sender.request(method, self.base + path, headers={"Authorization": f"Bearer {token}"},
                                  timeout=30, **kwargs)
        if response.status_code not in tuple(expect):
            raise Failed(f"{method} {path} → {response.status_code} {response.text[:300]}")
        return response


def run_steps(report: Report, *steps: Callable[[], None], label: str = "smoke run completed") -> int:
    """Run the steps in order (a step that stops with Failed is reported and the next one runs), print the
    totals and return the exit status: 1 if any check failed."""
    started = time.monotonic()
    for step in steps:
        try:
            step()
        except Failed as exc:
            report.check(label, False, str(exc))
    print(f"{report.passed} passed, {report.failed} failed in {time.monotonic() - started:.1f} s", flush=True)
    return 1 if report.failed else 0


def until(pred: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
