"""The one place webapp touches firebase-admin's private internals: where the ID-token verifier fetches its
signing certificates.

Tests point it at a local server holding a test key so real RS256 tokens are checked offline; production
refuses FIREBASE_CERTS_URL. firebase-admin has no public option for it: ``auth._get_client(app)`` returns the
app's auth client, whose ``_token_verifier.id_token_verifier.cert_url`` is the URL. setup.cfg pins firebase-admin
exactly; :func:`check_internals` (a test calls it) names whichever link of that chain a new release removed.
"""

from __future__ import annotations

from typing import Any

import firebase_admin
from firebase_admin import auth as fb_auth

from domain.notifications.fcm import FirebaseInternalsError as FirebaseInternalsError  # what check_internals raises
from domain.notifications.fcm import firebase_internal, on_throwaway_app


def _internal(owner: object, name: str, where: str) -> Any:
    return firebase_internal(owner, name, where, "FIREBASE_CERTS_URL (webapp/firebase_internals.py)")


def _id_token_verifier(app: firebase_admin.App) -> Any:
    """The object holding ``cert_url`` for ID tokens (checked to exist, so setting it is never a no-op)."""
    client = _internal(fb_auth, "_get_client", "firebase_admin.auth")(app)
    verifier = _internal(_internal(client, "_token_verifier", "auth.Client"), "id_token_verifier",
                         "_token_gen.TokenVerifier")
    _internal(verifier, "cert_url", "_token_gen._JWTVerifier")
    return verifier


def use_certificate_url(app: firebase_admin.App, url: str) -> None:
    """Make ``auth.verify_id_token(..., app=app)`` fetch the signing certificates from ``url``."""
    _id_token_verifier(app).cert_url = url


def check_internals() -> None:
    """Raise :class:`FirebaseInternalsError` naming the first internal the installed firebase-admin lacks, looked
    up on a throwaway app exactly as :func:`use_certificate_url` does."""
    on_throwaway_app(_id_token_verifier, "auth")
