"""stravalib, unmodified, pointed at our server: a requests session whose adapter sends what stravalib addresses to
Strava's host to ours instead (stravalib takes a ``requests_session`` for exactly this kind of configuration)."""

from __future__ import annotations

import os
from typing import Any

import requests
from requests.adapters import HTTPAdapter

STRAVA = "https://www.strava.com"


class ToOurServer(HTTPAdapter):
    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        assert request.url is not None
        request.url = self.base_url + request.url[len(STRAVA):]
        return super().send(request, *args, **kwargs)


def strava_client(base_url: str, token: str) -> Any:
    """A ``stravalib.Client`` for ``token`` against ``base_url`` (our /api/v3 stands where Strava's does)."""
    from stravalib import Client

    os.environ.setdefault("SILENCE_TOKEN_WARNINGS", "true")  # no Strava OAuth app: the token is a Firebase one
    session = requests.Session()
    session.mount(STRAVA, ToOurServer(base_url))
    return Client(access_token=token, requests_session=session)
