"""make run names a busy port and exits before starting anything, instead of half-starting."""

from __future__ import annotations

import socket

from devstack.embedded import free_port
from devstack.stack import busy_ports


def test_busy_ports_are_named() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        free = free_port(20000)
        assert busy_ports({"PORT": str(taken), "FLOWER_PORT": str(free)}) == [("PORT", taken)]
        assert busy_ports({"PORT": str(free), "FLOWER_PORT": str(taken)}) == [("FLOWER_PORT", taken)]
        assert busy_ports({"PORT": str(free), "FLOWER_PORT": str(free + 1), "EMBEDDED_FCM_PORT": str(taken)}) == [
            ("EMBEDDED_FCM_PORT", taken)]
        assert busy_ports({"PORT": str(free), "FLOWER_PORT": str(free + 1), "EMBEDDED_FCM_PORT": "0"}) == []
