"""The embedded servers `make run` starts are its own, never a server that already answered on the port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devstack.embedded import EmbeddedRedis


def test_embedded_redis_refuses_a_port_another_server_answers_on(tmp_path: Path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        redis = EmbeddedRedis(tmp_path, port=other.getsockname()[1], persist=False)
        try:
            with pytest.raises(RuntimeError, match="already in use"):
                redis.start()
        finally:
            redis.stop()
