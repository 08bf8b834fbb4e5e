"""The fuller sport list: every sport has a family and a name, and is storable everywhere a sport is."""

from __future__ import annotations

from typing import Any

from models.activity import SPORTS


def test_sport_list_with_families(client: Any, login: Any) -> None:
    headers, _ = login("ann")
    sports = client.get("/api/v1/sports", headers=headers).json
    by_type = {s["sport_type"]: s for s in sports}
    assert len(sports) == len(SPORTS) >= 20
    assert by_type["trail_running"] == {"sport_type": "trail_running", "name": "Trail Run", "family": "run"}
    assert by_type["virtual_ride"]["family"] == by_type["e_bike_ride"]["family"] == "ride"
    assert {by_type[s]["family"] for s in ("rowing", "kayaking")} == {"water"}
    assert by_type["alpine_skiing"]["family"] == "winter" and by_type["yoga"]["family"] == "fitness"
    for sport in ("trail_running", "e_bike_ride", "backcountry_ski", "paddleboarding"):
        resp = client.post("/api/v1/activities", headers=headers, json={
            "sport_type": sport, "start_date": "2026-10-01T07:00:00+00:00", "elapsed_time_s": 600})
        assert resp.status_code == 201, resp.json
        assert resp.json["name"].endswith(by_type[sport]["name"]) or resp.json["sport_type"] == sport
    listed = client.get("/api/v1/me/activities?sport_type=e_bike_ride", headers=headers).json["items"]
    assert [a["sport_type"] for a in listed] == ["e_bike_ride"]
    segment = client.post("/api/v1/segments", headers=headers, json={
        "name": "Climb", "sport_type": "mountain_biking", "points": [[45.0, 6.0], [45.001, 6.001], [45.002, 6.002]]})
    assert segment.status_code == 201, segment.json
    assert client.post("/api/v1/activities", headers=headers, json={
        "sport_type": "curling", "start_date": "2026-10-01T07:00:00+00:00", "elapsed_time_s": 600}).status_code == 422
