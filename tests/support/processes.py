"""Servers the tests start as processes of their own: a real gunicorn (gevent workers) on a free port, waited for
until it answers, and stopped however the test ended."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Terminate, and kill what does not stop in ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def exit_of(cmd: list[str], env: Mapping[str, str], timeout: float, started: str) -> tuple[int, str]:
    """Run a server command that is expected to refuse to start: its exit code and stderr. Still running after
    ``timeout`` seconds means it started serving: killed, and the test fails with ``started``."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(started) from None
    return proc.returncode, err


def answers_readyz(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def gunicorn(app: str, env: Mapping[str, str], *, workers: int,
             ready: Callable[[int], bool] = answers_readyz, timeout: float = 40.0) -> Iterator[int]:
    """``gunicorn -c config/gunicorn.py APP`` with ``workers`` gevent processes on loopback, in ``env``; yields its
    port once ``ready(port)`` holds (fails the test if it never does, or if gunicorn exits)."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", "python:config.gunicorn", app], cwd=ROOT,
        env={**env, "PORT": str(port), "WEB_BIND_HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers),
             "WEB_WORKER_CLASS": "gevent", "WEB_ACCESS_LOG": "", "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: proc.poll() is not None or ready(port), timeout), "gunicorn did not come up"
        assert proc.poll() is None, "gunicorn exited"
        yield port
    finally:
        stop(proc)
