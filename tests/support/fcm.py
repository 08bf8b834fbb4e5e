"""The local FCM stand-in, for tests and benchmarks: it lives in ``devstack.fcm_standin`` (the development stack
runs it too). ``python -m tests.support.fcm`` still serves on a free port and prints its URL."""

from __future__ import annotations

from devstack.fcm_standin import ERRORS, FcmServer, Request, error_body, main

__all__ = ["ERRORS", "FcmServer", "Request", "error_body", "main"]

if __name__ == "__main__":
    main()
