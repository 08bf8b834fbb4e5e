"""Public share pages: only public activities, revocable, closed at once by revocation, a visibility change or
deletion; the page, its map and its preview image hold nothing of the owner's privacy zone."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from domain.algorithms.geo import haversine_m
from domain.algorithms.polylines import decode
from tests.support import share_checks
from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload

RADIUS_M = 300


@pytest.fixture
def shared(client, login, app):
    """Ann's public run with a privacy zone at its start, shared; (ann, bob, activity id, token, home, track)."""
    from tasks import stages

    ann, _ = login("ann")
    bob, _ = login("bob")
    track = synthetic_track(seed=51, n_points=5000, speed_mps=3.0, noise_m=2.0)
    home = (float(track.lat[0]), float(track.lon[0]))
    assert client.post("/api/v1/me/privacy-zones", headers=ann,
                       json={"lat": home[0], "lng": home[1], "radius_m": RADIUS_M}).status_code == 201
    resp = upload(client, ann, to_gpx(track), "run.gpx")
    with app.app_context():
        stages.ingest.run(resp.json["id"], last=True)
    activity_id = client.get(f"/api/v1/uploads/{resp.json['id']}", headers=ann).json["activity_id"]
    link = client.post(f"/api/v1/activities/{activity_id}/share", headers=ann)
    assert link.status_code == 201, link.json
    return ann, bob, activity_id, link.json["token"], home, track


def _stranger_lines(client, headers, activity_id):
    seen = client.get(f"/api/v1/activities/{activity_id}", headers=headers).json
    return [decode(p) for p in seen["map"]["polylines"]]


def test_page_shows_the_visible_part_only(client, shared):
    ann, bob, activity_id, token, home, track = shared
    assert len(token) == 43
    again = client.post(f"/api/v1/activities/{activity_id}/share", headers=ann).json
    assert again["token"] == token and again["url"].endswith(f"/a/{token}")
    assert client.get(f"/api/v1/activities/{activity_id}/share", headers=ann).json["token"] == token

    page = client.get(f"/a/{token}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.data.decode()
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src" not in page.headers["Content-Security-Policy"] and "<script" not in html
    for tag in ('property="og:title"', 'property="og:image"', 'name="twitter:card" content="summary_large_image"'):
        assert tag in html
    assert re.search(r'property="og:image" content="http://[^"]+/a/' + token + r'/preview.png"', html)
    assert 'name="viewport"' in html and "http" not in re.sub(r'content="http[^"]*"', "", html).replace(
        'xmlns="http://www.w3.org/2000/svg"', "")  # no third-party resource: no URL but our own

    # Every vertex drawn on the map, mapped back to the ground, lies outside the zone.
    lines = _stranger_lines(client, bob, activity_id)
    lat, lng = share_checks.drawn_route(html, lines)
    assert 100 < lat.size <= sum(a.size for a, _ in lines)
    assert share_checks.nearest_m(lat, lng, home) > RADIUS_M
    # The elevation chart is drawn, and no raw coordinate of the hidden part is in the page as text.
    assert re.search(r'<path class="profile-line" d="M[^"]+"', html)
    hidden = haversine_m(home[0], home[1], track.lat, track.lon) < RADIUS_M
    for la, lo in zip(track.lat[hidden][::50], track.lon[hidden][::50], strict=True):
        assert f"{la:.4f}" not in html and f"{lo:.4f}" not in html


def test_preview_image_draws_nothing_inside_the_zone(client, shared):
    _ann, bob, activity_id, token, home, _track = shared
    resp = client.get(f"/a/{token}/preview.png")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert Image.open(io.BytesIO(resp.data)).size == (1200, 630)
    lat, lng, metres_per_px = share_checks.preview_route(resp.data, _stranger_lines(client, bob, activity_id))
    assert lat.size > 100, "the route is drawn"
    # The line is 6 px wide: its pixels may lie 3 px beside the route.
    assert share_checks.nearest_m(lat, lng, home) > RADIUS_M - 4 * metres_per_px

def test_revoking_hiding_or_deleting_closes_the_page_at_once(client, shared):
    ann, _bob, activity_id, token, _home, _track = shared
    assert client.get(f"/a/{token}").status_code == 200
    client.patch(f"/api/v1/activities/{activity_id}", headers=ann, json={"visibility": "followers"})
    closed = client.get(f"/a/{token}")
    assert closed.status_code == 404 and "not available" in closed.data.decode()
    assert client.get(f"/a/{token}/preview.png").status_code == 404
    client.patch(f"/api/v1/activities/{activity_id}", headers=ann, json={"visibility": "everyone"})
    assert client.get(f"/a/{token}").status_code == 200
    client.patch("/api/v1/me", headers=ann, json={"is_private": True})
    assert client.get(f"/a/{token}").status_code == 404
    client.patch("/api/v1/me", headers=ann, json={"is_private": False})
    assert client.get(f"/a/{token}").status_code == 200

    assert client.delete(f"/api/v1/activities/{activity_id}/share", headers=ann).status_code == 204
    assert client.get(f"/a/{token}").status_code == 404
    assert client.get(f"/api/v1/activities/{activity_id}/share", headers=ann).status_code == 404
    fresh = client.post(f"/api/v1/activities/{activity_id}/share", headers=ann).json["token"]
    assert fresh != token and client.get(f"/a/{token}").status_code == 404
    assert client.get(f"/a/{fresh}").status_code == 200
    assert client.delete(f"/api/v1/activities/{activity_id}", headers=ann).status_code == 204
    assert client.get(f"/a/{fresh}").status_code == 404


def test_guessed_truncated_and_foreign_tokens(client, shared):
    ann, bob, activity_id, token, _home, _track = shared
    for bad in (token[:-1], token[:20], "A" * 43, token + "x", "../etc/passwd", token.swapcase()):
        assert client.get(f"/a/{bad}").status_code == 404
    # Only the owner shares or revokes; only public activities can be shared.
    assert client.post(f"/api/v1/activities/{activity_id}/share", headers=bob).status_code == 404
    assert client.delete(f"/api/v1/activities/{activity_id}/share", headers=bob).status_code == 404
    client.patch(f"/api/v1/activities/{activity_id}", headers=ann, json={"visibility": "only_me"})
    refused = client.post(f"/api/v1/activities/{activity_id}/share", headers=ann)
    assert refused.status_code == 409 and "everyone" in refused.json["message"]
