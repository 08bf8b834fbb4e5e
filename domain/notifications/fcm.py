"""firebase-admin messaging for push: the app pushes go through, FCM messages per platform, and what an FCM
error means for the device (drop it, retry, give up).

This is the one module that touches firebase-admin's messaging internals (``messaging._get_messaging_service``,
the service's ``_fcm_url`` and ``_client.session``, ``firebase_admin._http_client.DEFAULT_RETRY_CONFIG``), only
to point the real client at a local FCM stand-in. setup.cfg pins firebase-admin exactly; ``check_internals``
(a test calls it) names whichever of them a new release removed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import firebase_admin
import google.auth.credentials
import google.oauth2.credentials
import requests
from firebase_admin import _http_client, credentials, exceptions, messaging

# --- pure: FCM messages and errors ---------------------------------------------------------------------------

def build_message(content: Mapping[str, Any], token: str, platform: str) -> messaging.Message:
    """The FCM message for one device: notification, deep-link data, and the platform's delivery options."""
    collapse_id, thread_id = content.get("collapse_id"), content.get("thread_id")
    chat = content.get("kind") == "message"
    android = apns = webpush = None
    if platform == "web":
        webpush = messaging.WebpushConfig(headers={"Urgency": "high"},
                                          notification=messaging.WebpushNotification(tag=collapse_id or thread_id))
    else:
        android = messaging.AndroidConfig(
            priority="high", collapse_key=collapse_id,
            notification=messaging.AndroidNotification(sound="default", tag=collapse_id,
                                                       channel_id="chat" if chat else "activity",
                                                       notification_count=content.get("badge")))
        headers = {"apns-priority": "10", "apns-push-type": "alert"}
        if collapse_id:
            headers["apns-collapse-id"] = collapse_id[:64]
        apns = messaging.APNSConfig(headers=headers, payload=messaging.APNSPayload(aps=messaging.Aps(
            badge=content.get("badge"), sound="default", thread_id=thread_id)))
    # ``token``: clients register FCM registration tokens (what the FCM SDKs hand out and HTTP v1 addresses);
    # firebase-admin 7.7 marks it deprecated in favour of installation ids, which would change the device API.
    return messaging.Message(
        token=token, data=dict(content.get("data") or {}),
        notification=messaging.Notification(title=content.get("title"), body=content.get("body")),
        android=android, apns=apns, webpush=webpush)


#: What to do about a failed send: drop the device, try again later, or give up on this push.
REMOVE, RETRY, FAIL = "remove", "retry", "fail"


def _token_rejected(exc: exceptions.InvalidArgumentError) -> bool:
    """FCM answers INVALID_ARGUMENT both for a malformed token and for a malformed message; only the first
    (a ``message.token`` field violation) means the device is gone."""
    response = getattr(exc, "http_response", None)
    try:
        details = response.json()["error"].get("details", []) if response is not None else []
    except (ValueError, KeyError, AttributeError):
        details = []
    for detail in details:
        for violation in detail.get("fieldViolations", []) or []:
            if violation.get("field") == "message.token":
                return True
    return "registration token" in str(exc).lower()


def classify(exc: BaseException) -> str:
    if isinstance(exc, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        return REMOVE
    if isinstance(exc, exceptions.InvalidArgumentError):
        return REMOVE if _token_rejected(exc) else FAIL
    if isinstance(exc, exceptions.UnavailableError | exceptions.InternalError | messaging.QuotaExceededError
                  | exceptions.DeadlineExceededError | exceptions.UnknownError):
        return RETRY
    return FAIL


def error_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None) or type(exc).__name__
    return f"{type(exc).__name__}: {code}"[:200]


# --- the firebase-admin app ----------------------------------------------------------------------------------

class StaticTokenCredential(credentials.Base):
    """For a local FCM stand-in: a fixed bearer token instead of a service account's OAuth flow."""

    def __init__(self, token: str = "local-fcm-access-token") -> None:
        self._credential = google.oauth2.credentials.Credentials(token=token)

    def get_credential(self) -> google.auth.credentials.Credentials:
        return self._credential


_apps: dict[tuple[Any, ...], firebase_admin.App] = {}
_apps_lock = threading.Lock()


def fcm_app(config: Mapping[str, Any]) -> firebase_admin.App | None:
    """The firebase-admin app pushes go through (one per process and settings), or None when pushes are not
    configured (development without credentials): deliveries are then logged and skipped."""
    endpoint = str(config.get("FCM_ENDPOINT") or "")
    creds_path = str(config.get("GOOGLE_APPLICATION_CREDENTIALS") or "")
    if not endpoint and not creds_path and config.get("APP_ENV") != "production":
        return None
    project = config["FIREBASE_PROJECT_ID"]
    key = (os.getpid(), project, endpoint, creds_path)  # a forked worker builds its own HTTP session
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            cred: credentials.Base
            if endpoint:
                cred = StaticTokenCredential()
            elif creds_path:
                cred = credentials.Certificate(creds_path)
            else:
                cred = credentials.ApplicationDefault()  # production on Google Cloud: the metadata server
            app = firebase_admin.initialize_app(cred, {"projectId": project, "httpTimeout": 10},
                                                name=f"push-{len(_apps)}-{os.getpid()}")
            if endpoint:
                _use_endpoint(app, endpoint, project)
            _apps[key] = app
    return app


class FirebaseInternalsError(RuntimeError):
    """The installed firebase-admin lacks a private attribute we rely on (here, or in the auth adapter)."""


def firebase_internal(owner: object, name: str, where: str, needed_for: str) -> Any:
    """``owner.name``, or a :class:`FirebaseInternalsError` saying which internal is missing and what needs it."""
    try:
        return getattr(owner, name)
    except AttributeError:
        raise FirebaseInternalsError(
            f"firebase-admin {firebase_admin.__version__} has no {where}.{name}, which {needed_for} needs; "
            "install the version setup.cfg pins or adapt that adapter") from None


def _internal(owner: object, name: str, where: str) -> Any:
    return firebase_internal(owner, name, where, "pointing pushes at FCM_ENDPOINT (domain/notifications/fcm.py)")


def _messaging_internals(app: firebase_admin.App) -> tuple[Any, requests.Session, Any]:
    """The app's messaging service, the session it posts with and the library's retry settings."""
    retry = _internal(_http_client, "DEFAULT_RETRY_CONFIG", "firebase_admin._http_client")
    service = _internal(messaging, "_get_messaging_service", "firebase_admin.messaging")(app)
    _internal(service, "_fcm_url", "messaging._MessagingService")
    session = _internal(_internal(service, "_client", "messaging._MessagingService"), "session",
                        "_http_client.JsonHttpClient")
    return service, session, retry


def _use_endpoint(app: firebase_admin.App, endpoint: str, project: str) -> None:
    """Point the real client at another FCM HTTP v1 endpoint (tests and development only: production refuses
    FCM_ENDPOINT). firebase-admin has no public option for it: the send URL and the session it posts with
    are the attributes involved."""
    service, session, retry = _messaging_internals(app)
    base = endpoint.rstrip("/")
    service._fcm_url = f"{base}/v1/projects/{project}/messages:send"
    # The same pool and low-level retry settings the library mounts for fcm.googleapis.com.
    session.mount(base, requests.adapters.HTTPAdapter(pool_connections=100, pool_maxsize=100, max_retries=retry))


def on_throwaway_app(lookup: Callable[[firebase_admin.App], object], label: str) -> None:
    """Run ``lookup`` (an adapter's walk through firebase-admin's internals) on an app made for the check and
    deleted after it, so a check leaves no app behind and touches no real one."""
    app = firebase_admin.initialize_app(StaticTokenCredential(), {"projectId": "internals-check"},
                                        name=f"{label}-internals-check-{os.getpid()}-{threading.get_ident()}")
    try:
        lookup(app)
    finally:
        firebase_admin.delete_app(app)


def check_internals() -> None:
    """Raise :class:`FirebaseInternalsError` naming the first messaging internal the installed firebase-admin
    lacks, looked up on a throwaway app exactly as :func:`_use_endpoint` does."""
    on_throwaway_app(_messaging_internals, "fcm")
