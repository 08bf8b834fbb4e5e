"""Real RS256 Firebase-style ID tokens signed by a test key, and the local server that publishes its
certificate the way Google does (a JSON map of key id → PEM certificate), so verification runs offline."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


class SigningKey:
    def __init__(self, kid: str = "test-key-1") -> None:
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.private_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                .sign(self.private_key, hashes.SHA256()))
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, alg: str = "RS256") -> str:
        return jwt.encode(claims, self.private_key, algorithm=alg, headers={"kid": kid or self.kid})


def id_token_claims(uid: str, project_id: str, *, email: str | None = None, ttl_s: int = 3600,
                    **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": f"https://securetoken.google.com/{project_id}", "aud": project_id, "auth_time": now,
        "user_id": uid, "sub": uid, "iat": now, "exp": now + ttl_s,
        "email": email or f"{uid}@example.com", "email_verified": True,
        "firebase": {"sign_in_provider": "password"},
    }
    claims.update(overrides)
    return claims


class CertServer:
    """Serves {kid: cert_pem} on 127.0.0.1 like https://www.googleapis.com/robot/v1/metadata/x509/…"""

    def __init__(self, certs: dict[str, str]) -> None:
        body = json.dumps(certs).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=3600")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
