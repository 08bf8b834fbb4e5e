"""The library internals our code relies on: present in the pinned releases, and a loud, named failure if not.

firebase-admin (messaging in domain.notifications.fcm, the token verifier in webapp.firebase_internals) and
fitdecode (profile tables in domain.algorithms.parsing.fitprofile) are pinned exactly in setup.cfg; upgrading
either must make this file fail before anything else does if a release dropped what we use.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import firebase_admin
import fitdecode
import pytest
from firebase_admin import _http_client, _token_gen, messaging
from firebase_admin import auth as fb_auth

from domain.algorithms.parsing import fitprofile
from domain.notifications import fcm
from webapp import firebase_internals

ROOT = Path(__file__).resolve().parents[1]
CHECKS: dict[str, Callable[[], None]] = {
    "fcm": fcm.check_internals,
    "auth": firebase_internals.check_internals,
    "fitdecode": fitprofile.check_internals,
}
ERRORS: dict[str, type[RuntimeError]] = {
    "fcm": fcm.FirebaseInternalsError,
    "auth": firebase_internals.FirebaseInternalsError,
    "fitdecode": fitprofile.FitdecodeInternalsError,
}


def _pins() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    pins = {}
    for line in parser["options"]["install_requires"].splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==(\S+)\s*", line)
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def test_libraries_with_used_internals_are_pinned_and_installed_at_the_pin() -> None:
    pins = _pins()
    assert {"firebase-admin", "fitdecode"} <= pins.keys()
    for name in ("firebase-admin", "fitdecode"):
        assert metadata.version(name) == pins[name], f"{name} differs from the version setup.cfg pins"


@pytest.mark.parametrize("adapter", sorted(CHECKS))
def test_the_installed_release_has_every_internal_we_use(adapter: str) -> None:
    CHECKS[adapter]()


def _drop_after_init(monkeypatch: pytest.MonkeyPatch, cls: type[Any], attr: str) -> None:
    """Simulate a release whose instances no longer carry ``attr`` (an attribute set in ``__init__``)."""
    original = cls.__init__

    def init(self: object, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        delattr(self, attr)

    monkeypatch.setattr(cls, "__init__", init)


REMOVALS: list[tuple[str, Callable[[pytest.MonkeyPatch], None], str]] = [
    ("fcm", lambda mp: mp.delattr(messaging, "_get_messaging_service"),
     "firebase_admin.messaging._get_messaging_service"),
    ("fcm", lambda mp: _drop_after_init(mp, messaging._MessagingService, "_fcm_url"), "_MessagingService._fcm_url"),
    ("fcm", lambda mp: _drop_after_init(mp, messaging._MessagingService, "_client"), "_MessagingService._client"),
    ("fcm", lambda mp: mp.delattr(_http_client, "DEFAULT_RETRY_CONFIG"), "_http_client.DEFAULT_RETRY_CONFIG"),
    ("auth", lambda mp: mp.delattr(fb_auth, "_get_client"), "firebase_admin.auth._get_client"),
    ("auth", lambda mp: _drop_after_init(mp, _token_gen.TokenVerifier, "id_token_verifier"),
     "TokenVerifier.id_token_verifier"),
    ("auth", lambda mp: _drop_after_init(mp, _token_gen._JWTVerifier, "cert_url"), "_JWTVerifier.cert_url"),
    ("fitdecode", lambda mp: mp.delattr(fitdecode.profile, "MESSAGE_TYPES"), "fitdecode.profile.MESSAGE_TYPES"),
    ("fitdecode", lambda mp: mp.delattr(fitdecode.profile, "MESG_NUM_HR"), "fitdecode.profile.MESG_NUM_HR"),
    ("fitdecode", lambda mp: mp.delattr(fitdecode.types, "BASE_TYPE_BYTE"), "fitdecode.types.BASE_TYPE_BYTE"),
    ("fitdecode", lambda mp: mp.delattr(fitdecode.types.BaseType, "parse"), "BaseType.parse"),
    ("fitdecode", lambda mp: mp.delattr(fitdecode.types.ComponentField, "accumulate"), "ComponentField.accumulate"),
    ("fitdecode", lambda mp: mp.delattr(fitdecode.types.SubField, "ref_fields"), "SubField.ref_fields"),
]


@pytest.mark.parametrize(("adapter", "remove", "named"), REMOVALS, ids=[r[2] for r in REMOVALS])
def test_a_release_without_an_internal_fails_naming_it(
        monkeypatch: pytest.MonkeyPatch, adapter: str, remove: Callable[[pytest.MonkeyPatch], None],
        named: str) -> None:
    remove(monkeypatch)
    with pytest.raises(ERRORS[adapter], match=re.escape(named)) as caught:
        CHECKS[adapter]()
    assert "setup.cfg pins" in str(caught.value)


def test_no_adapter_check_leaves_a_firebase_app_behind() -> None:
    before = set(firebase_admin._apps)
    fcm.check_internals()
    firebase_internals.check_internals()
    assert set(firebase_admin._apps) == before


#: The internals each adapter owns; product code elsewhere must go through the adapter.
OWNED = {
    "domain/notifications/fcm.py": r"_get_messaging_service|_fcm_url|_http_client",
    "webapp/firebase_internals.py": r"\._get_client\b|_token_verifier|\bcert_url\b",
    "domain/algorithms/parsing/fitprofile.py": r"fitdecode(\.| import )(profile|types)\b",
}


def test_only_the_adapters_touch_the_internals() -> None:
    offenders = []
    for package in ("webapp", "tasks", "domain", "models", "config", "devstack"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8")
            offenders += [f"{rel}: {pattern}" for owner, pattern in OWNED.items()
                          if owner != rel and re.search(pattern, text)]
    assert offenders == []
