"""Firebase ID-token authentication for every /api/v1 route except the documentation.

Production verifies with firebase-admin (RS256 signature against Google's certificates, expiry, audience =
project id, issuer), and so does every other environment unless emulator mode is asked for explicitly
(``FIREBASE_AUTH_EMULATOR_HOST``: ``make run`` does, for itself, on loopback only). In that mode firebase-admin
accepts the unsigned tokens the firebase-tools Auth emulator issues; ``flask dev-token`` mints one.
Tests point the verifier's certificate URL at a local server holding a test key, so real signed tokens are
checked offline. The first authenticated request provisions the athlete.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import time
from typing import Any

import click
import firebase_admin
import google.auth.credentials
from firebase_admin import auth as fb_auth
from firebase_admin import credentials
from flask import Flask, g, request
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert

# flask_smorest.abort is this function re-exported without types; from here the checker knows it never returns.
from webargs.flaskparser import abort

from config import ConfigError, check_listeners
from models import Preferences, User, db
from webapp.firebase_internals import use_certificate_url

log = logging.getLogger(__name__)

#: HLS playlists (domain.media.service.hls_playlist): authorised by the signed token in their URL.
HLS_PLAYLIST = re.compile(r"^/api/v1/media/\d+/hls/[^/]+$")
PUBLIC_PREFIXES = ("/api/v1/openapi.json", "/api/v1/asyncapi.json", "/api/v1/docs", "/api/v1/redoc")
EMULATOR_ENV = "FIREBASE_AUTH_EMULATOR_HOST"
#: Leeway for clocks that disagree, on expiry and issue time alike.
CLOCK_SKEW_S = 5


class _VerifyOnlyCredential(credentials.Base):
    """Verifying ID tokens needs Google's public certificates, not a service account."""

    def get_credential(self) -> google.auth.credentials.Credentials:
        return google.auth.credentials.AnonymousCredentials()


class TokenVerifier:
    def __init__(self, *, project_id: str, emulator_host: str, certs_url: str, credentials_path: str) -> None:
        # firebase-admin reads emulator mode from the process environment at verification time; keep the
        # environment in step with this app's config so a stray variable can never switch checks off.
        if emulator_host:
            os.environ[EMULATOR_ENV] = emulator_host
        else:
            os.environ.pop(EMULATOR_ENV, None)
        cred: credentials.Base = (
            credentials.Certificate(credentials_path) if credentials_path else _VerifyOnlyCredential()
        )
        self.emulated = bool(emulator_host)
        name = f"auth-{project_id}-{id(self)}"
        self.app = firebase_admin.initialize_app(cred, {"projectId": project_id}, name=name)
        if certs_url:
            # Tests only (production refuses FIREBASE_CERTS_URL): point the verifier at the local certificates.
            use_certificate_url(self.app, certs_url)

    def verify(self, token: str) -> dict[str, Any]:
        claims: dict[str, Any] = fb_auth.verify_id_token(token, app=self.app, clock_skew_seconds=CLOCK_SKEW_S)
        if self.emulated:
            check_lifetime(claims)
        return claims


def check_lifetime(claims: dict[str, Any], now: float | None = None) -> None:
    """In emulator mode firebase-admin checks the audience and issuer but skips, with the signature, the expiry
    and issue time. Check them here, as production does, so a client's refresh path can be tested locally."""
    now = time.time() if now is None else now
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise fb_auth.InvalidIdTokenError("The token has no numeric exp or iat claim.")
    if exp < now - CLOCK_SKEW_S:
        raise fb_auth.ExpiredIdTokenError("Token expired", cause=None)
    if iat > now + CLOCK_SKEW_S:
        raise fb_auth.InvalidIdTokenError("The token is issued in the future (iat).")


def dev_token(email: str, project_id: str, *, uid: str | None = None, ttl_s: int = 3600) -> str:
    """An unsigned ID token in the exact form the Firebase Auth emulator issues (accepted in emulator mode)."""
    now = int(time.time())
    uid = uid or "dev-" + base64.urlsafe_b64encode(email.lower().encode()).decode().rstrip("=")[:100]
    header = {"alg": "none", "typ": "JWT"}
    claims = {
        "iss": f"https://securetoken.google.com/{project_id}", "aud": project_id, "auth_time": now,
        "user_id": uid, "sub": uid, "iat": now, "exp": now + ttl_s, "email": email, "email_verified": True,
        "firebase": {"identities": {"email": [email]}, "sign_in_provider": "password"},
    }

    def enc(part: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(part, separators=(",", ":")).encode()).decode().rstrip("=")

    return f"{enc(header)}.{enc(claims)}."


#: Every authenticated request runs it: prepared once (a statement built per call costs more than it runs).
_USER_BY_UID = select(User).where(User.firebase_uid == bindparam("uid"))


def provision_user(claims: dict[str, Any]) -> User:
    """Get or create the athlete for a verified token; safe under concurrent first requests."""
    uid = claims["uid"]
    user = db.session.scalar(_USER_BY_UID, {"uid": uid})
    if user is not None:
        return user
    email = claims.get("email")
    display_name = (claims.get("name") or (email.split("@")[0] if email else "Athlete"))[:80]
    stmt = insert(User).values(firebase_uid=uid, email=email, display_name=display_name)
    user_id = db.session.scalar(stmt.on_conflict_do_nothing(index_elements=["firebase_uid"]).returning(User.id))
    if user_id is not None:
        db.session.execute(insert(Preferences).values(user_id=user_id).on_conflict_do_nothing())
    db.session.commit()
    return db.session.scalars(select(User).where(User.firebase_uid == uid)).one()


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TokenRejected(Exception):
    """Why an ID token was refused: ``expired``, ``invalid`` or ``unavailable`` (Google's certificates could not
    be fetched). REST answers 401/503 (``authenticate``), the socket closes with 4401/1013 (``webapp.realtime``)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def verify_token(token: str) -> dict[str, Any]:
    """The verified claims of a Firebase ID token, or ``TokenRejected``."""
    verifier: TokenVerifier = g.get("_verifier") or _verifier()
    try:
        return verifier.verify(token)
    except fb_auth.ExpiredIdTokenError:
        raise TokenRejected("expired") from None
    except (fb_auth.InvalidIdTokenError, ValueError) as exc:
        log.info("rejected token: %s", exc)
        raise TokenRejected("invalid") from None
    except fb_auth.CertificateFetchError:
        log.exception("could not fetch token signing certificates")
        raise TokenRejected("unavailable") from None


def authenticate(token: str | None) -> User:
    if token is None:
        abort(401, message="Missing bearer token: send 'Authorization: Bearer <Firebase ID token>'.",
              headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = verify_token(token)
    except TokenRejected as exc:
        if exc.kind == "unavailable":
            abort(503, message="Sign-in is temporarily unavailable; retry shortly.")
        abort(401, message="The ID token has expired; refresh it and retry." if exc.kind == "expired"
              else "The ID token is not valid.", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    g.token_expires_at = claims.get("exp")  # a socket ticket inherits it (webapp.realtime)
    return provision_user(claims)


def _verifier() -> TokenVerifier:
    from flask import current_app

    return current_app.extensions["token_verifier"]


def current_user() -> User:
    user = g.get("user")
    if user is None:  # a view outside /api/v1 asked for a user
        abort(401, message="Authentication required.")
    return user


def requires_token(path: str) -> bool:
    """The routes the bearer-token guard covers (the socket authenticates in its own handshake)."""
    # HLS playlists: players cannot send a bearer token, so a signed, short-lived token in the URL instead.
    return (path.startswith("/api/v1") and not path.startswith(PUBLIC_PREFIXES) and path != "/api/v1/ws"
            and not HLS_PLAYLIST.match(path))


def check_dev_server_host(app: Flask) -> None:
    """``flask run --host …`` listens where its option says, not WEB_BIND_HOST (gunicorn's settings check their
    own listeners): refuse emulator mode there too, before the development server opens its socket."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.info_name == "run" and isinstance(ctx.params.get("host"), str):
        try:
            check_listeners(app.config, [(ctx.params["host"], ctx.params.get("port"))])
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None  # the CLI's one-line "Error: …", exit status 1


def register_auth(app: Flask) -> None:
    check_dev_server_host(app)
    app.extensions["token_verifier"] = TokenVerifier(
        project_id=app.config["FIREBASE_PROJECT_ID"],
        emulator_host=app.config["FIREBASE_AUTH_EMULATOR_HOST"],
        certs_url=app.config["FIREBASE_CERTS_URL"],
        credentials_path=app.config["GOOGLE_APPLICATION_CREDENTIALS"],
    )

    @app.before_request
    def _require_token() -> None:
        if request.method == "OPTIONS" or not requires_token(request.path):
            return
        g.user = authenticate(bearer_token())
