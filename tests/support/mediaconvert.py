"""A local stand-in for AWS Elemental MediaConvert's CreateJob, speaking its REST JSON, so the production
transcoder path runs through the real boto3 client. It answers like the service: one job per
ClientRequestToken (a retried submission gets the job it already started), and records what it was sent."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class MediaConvertStandin:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.rstrip("/") != "/2017-08-29/jobs":
                    self._answer(404, {"message": "not found"})
                    return
                standin.requests.append(body)
                token = body.get("clientRequestToken") or str(uuid.uuid4())
                job = standin.jobs.get(token)
                if job is None:
                    job = {"id": f"{len(standin.jobs) + 1:013d}-{uuid.uuid4().hex[:6]}", "status": "SUBMITTED",
                           "role": body.get("role"), "settings": body.get("settings", {}),
                           "userMetadata": body.get("userMetadata", {}), "createdAt": 1_700_000_000}
                    standin.jobs[token] = job
                self._answer(201, {"job": job})

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
