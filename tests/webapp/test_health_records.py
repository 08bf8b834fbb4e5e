"""Meals, water, sleep, device events, body metrics and settings through the API: the owner's alone, bad input
refused with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.foods import food_named

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def post(client, headers, path, body, expect=201):
    resp = client.post(f"/api/v1{path}", json=body, headers=headers)
    assert resp.status_code == expect, resp.json
    return resp.json


def test_meal_nutrients_from_grams_and_portions(client, login, food_catalogue):
    ann, _ = login("ann")
    banana = food_named(client, ann, "Bananas, raw")
    medium = next(p for p in banana["portions"] if p["description"].startswith("medium"))  # 118 g
    meal = post(client, ann, "/me/meals", {"meal_type": "breakfast", "eaten_at": iso(NOW - timedelta(hours=1)),
                                           "items": [{"food_id": banana["id"], "grams": 100},
                                                     {"food_id": banana["id"], "portion_id": medium["id"],
                                                      "quantity": 2}]})
    assert [i["grams"] for i in meal["items"]] == [100.0, 236.0]
    assert meal["totals"]["energy_kcal"] == pytest.approx(89 * 3.36)
    assert meal["items"][1]["nutrients"]["potassium_mg"] == pytest.approx(358 * 2.36)
    got = client.get(f"/api/v1/me/meals/{meal['id']}", headers=ann).json
    assert got["totals"] == meal["totals"]
    patched = client.patch(f"/api/v1/me/meals/{meal['id']}", headers=ann,
                           json={"meal_type": "snack", "items": [{"food_id": banana["id"], "grams": 50}]}).json
    assert patched["meal_type"] == "snack" and patched["totals"]["energy_kcal"] == pytest.approx(44.5)
    page = client.get("/api/v1/me/meals", headers=ann).json
    assert [m["id"] for m in page["items"]] == [meal["id"]] and page["next_cursor"] is None
    assert client.delete(f"/api/v1/me/meals/{meal['id']}", headers=ann).status_code == 204
    assert client.get(f"/api/v1/me/meals/{meal['id']}", headers=ann).status_code == 404


@pytest.mark.parametrize("item", [
    {"food_id": 999999999, "grams": 10}, {"grams": 10}, {"food_id": "BANANA", "grams": -5},
    "BANANA_GRAMS_NEG", "BANANA_NO_AMOUNT", "BANANA_BOTH", "BANANA_WRONG_PORTION", "BANANA_HUGE",
])
def test_bad_meals_are_4xx_and_write_nothing(client, login, food_catalogue, item):
    ann, _ = login("ann")
    banana = food_named(client, ann, "Bananas, raw")
    apple = food_named(client, ann, "Strawberries, raw")
    items = {
        "BANANA_GRAMS_NEG": {"food_id": banana["id"], "grams": -5},
        "BANANA_NO_AMOUNT": {"food_id": banana["id"]},
        "BANANA_BOTH": {"food_id": banana["id"], "grams": 5, "portion_id": banana["portions"][0]["id"]},
        "BANANA_WRONG_PORTION": {"food_id": banana["id"], "portion_id": apple["portions"][0]["id"]},
        "BANANA_HUGE": {"food_id": banana["id"], "portion_id": banana["portions"][0]["id"], "quantity": 49},
    }.get(item, item) if isinstance(item, str) else item
    if isinstance(items, dict) and items.get("food_id") == "BANANA":
        items = {**items, "food_id": banana["id"]}
    resp = client.post("/api/v1/me/meals", headers=ann, json={"meal_type": "lunch", "eaten_at": iso(NOW),
                                                                "items": [{"food_id": banana["id"], "grams": 10},
                                                                          items]})
    assert resp.status_code == 422, resp.json
    assert client.get("/api/v1/me/meals", headers=ann).json["items"] == []


@pytest.mark.parametrize("body", [
    {"meal_type": "brunch", "eaten_at": iso(NOW), "items": []},
    {"meal_type": "lunch", "eaten_at": iso(NOW + timedelta(days=30)), "items": "FOOD"},
    {"meal_type": "lunch", "eaten_at": "2026-12-04T12:00:00", "items": "FOOD"},
    {"meal_type": "lunch", "eaten_at": iso(NOW), "items": []},
])
def test_meal_fields_are_checked(client, login, food_catalogue, body):
    ann, _ = login("ann")
    banana = food_named(client, ann, "Bananas, raw")
    if body["items"] == "FOOD":
        body = {**body, "items": [{"food_id": banana["id"], "grams": 100}]}
    assert client.post("/api/v1/me/meals", headers=ann, json=body).status_code == 422
    assert client.get("/api/v1/me/meals", headers=ann).json["items"] == []


def test_nutrition_days_totals_and_targets(client, login, food_catalogue):
    ann, _ = login("ann", sex="M", birth_year=NOW.year - 30, weight_kg=75)
    today = NOW.date()
    day = client.get("/api/v1/me/nutrition/days", headers=ann,
                     query_string={"from": today.isoformat(), "to": today.isoformat()}).json["items"][0]
    assert day["target"] is None and day["missing"] == ["height"]
    assert client.patch("/api/v1/me/health/settings", headers=ann,
                        json={"height_cm": 180, "protein_pct": 25, "carbohydrate_pct": 45, "fat_pct": 30}
                        ).status_code == 200
    banana = food_named(client, ann, "Bananas, raw")
    post(client, ann, "/me/meals", {"meal_type": "snack", "eaten_at": iso(NOW),
                                     "items": [{"food_id": banana["id"], "grams": 200}]})
    days = client.get("/api/v1/me/nutrition/days", headers=ann, query_string={
        "from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}).json["items"]
    assert [d["date"] for d in days] == [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    target = days[1]["target"]
    assert target["basal_kcal"] == pytest.approx(1730.0)  # the age is today's year − birth year
    assert target["energy_kcal"] == pytest.approx(1730 * 1.2) and target["activity_kcal"] == 0
    assert target["protein_g"] == pytest.approx(1730 * 1.2 * 0.25 / 4, abs=0.1)
    assert days[1]["totals"]["energy_kcal"] == pytest.approx(178.0)
    bad = client.get("/api/v1/me/nutrition/days", headers=ann,
                     query_string={"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()})
    assert bad.status_code == 422
    assert client.get("/api/v1/me/nutrition/days", headers=ann, query_string={
        "from": "2020-01-01", "to": "2026-01-01"}).status_code == 422
    assert client.patch("/api/v1/me/health/settings", headers=ann,
                        json={"protein_pct": 40}).status_code == 422  # 40 + 45 + 30


def test_a_time_zone_that_does_not_exist_is_refused(client, login):
    ann, _ = login("ann")
    resp = client.patch("/api/v1/me/preferences", json={"timezone": "Mars/Olympus_Mons"}, headers=ann)
    assert resp.status_code == 422
    assert client.get("/api/v1/me/preferences", headers=ann).json["timezone"] == "UTC"


def test_water_and_hydration_days(client, login):
    ann, _ = login("ann", sex="F")
    drink = post(client, ann, "/me/water", {"ml": 500, "drunk_at": iso(NOW), "drink": "tea"})
    assert drink["ml"] == 500 and drink["drink"] == "tea"
    assert client.get(f"/api/v1/me/water/{drink['id']}", headers=ann).json == drink
    fixed = client.patch(f"/api/v1/me/water/{drink['id']}", json={"ml": 500, "drink": "water"}, headers=ann)
    assert fixed.status_code == 200 and fixed.json["drink"] == "water"
    assert client.patch(f"/api/v1/me/water/{drink['id']}", json={"ml": 80000}, headers=ann).status_code == 422
    day = client.get("/api/v1/me/hydration/days", headers=ann, query_string={
        "from": NOW.date().isoformat(), "to": NOW.date().isoformat()}).json["items"][0]
    assert day["drunk_ml"] == 500 and day["goal_ml"] == 1600 and day["progress"] == pytest.approx(0.312, abs=0.001)
    for body in ({"ml": -5, "drunk_at": iso(NOW)}, {"ml": 80000, "drunk_at": iso(NOW)}, {"ml": 0, "drunk_at": iso(NOW)},
                 {"ml": 200, "drunk_at": iso(NOW + timedelta(days=3))}, {"ml": 200}):
        assert client.post("/api/v1/me/water", json=body, headers=ann).status_code == 422
    assert len(client.get("/api/v1/me/water", headers=ann).json["items"]) == 1
    assert client.delete(f"/api/v1/me/water/{drink['id']}", headers=ann).status_code == 204


def test_manual_sleep_rules(client, login):
    ann, _ = login("ann")
    night = NOW - timedelta(days=2)
    s = post(client, ann, "/me/sleep", {"start": iso(night), "end": iso(night + timedelta(hours=8)), "quality": 4})
    assert s["source"] == "manual" and s["duration_min"] == 480 and s["counted"] is True
    overlap = client.post("/api/v1/me/sleep", headers=ann, json={
        "start": iso(night + timedelta(hours=7)), "end": iso(night + timedelta(hours=9))})
    assert overlap.status_code == 409
    for body in ({"start": iso(night), "end": iso(night + timedelta(hours=30))},
                 {"start": iso(night), "end": iso(night - timedelta(hours=1))},
                 {"start": iso(night - timedelta(days=5)), "end": iso(night - timedelta(days=5, hours=-1)),
                  "quality": 6},
                 {"start": iso(NOW + timedelta(days=5)), "end": iso(NOW + timedelta(days=5, hours=8))}):
        assert client.post("/api/v1/me/sleep", json=body, headers=ann).status_code == 422
    assert len(client.get("/api/v1/me/sleep", headers=ann).json["items"]) == 1
    moved = client.patch(f"/api/v1/me/sleep/{s['id']}", headers=ann,
                         json={"end": iso(night + timedelta(hours=7)), "notes": "woke early"}).json
    assert moved["duration_min"] == 420 and moved["notes"] == "woke early"


def night_events(evening: datetime) -> list[dict[str, str]]:
    """Phone use in the evening, put down at +3h05, picked up at +10h45."""
    marks = [(0, "screen_on"), (30, "screen_off"), (110, "unlock"), (185, "screen_off"), (645, "unlock"),
             (660, "screen_off")]
    return [{"type": kind, "at": iso(evening + timedelta(minutes=m))} for m, kind in marks]


def test_estimated_sleep_from_device_events_and_priority(client, login):
    ann, _ = login("ann")  # UTC; night window 20:00–12:00
    evening = datetime.combine(NOW.date() - timedelta(days=3), datetime.min.time(), UTC).replace(hour=20, minute=0)
    result = post(client, ann, "/me/device-events", {"events": night_events(evening)}, expect=200)
    assert result["accepted"] == 6 and len(result["sessions"]) == 1
    estimate = result["sessions"][0]
    assert estimate["source"] == "estimated" and estimate["uncertainty_min"] == 25
    assert estimate["start"].startswith((evening + timedelta(minutes=195)).strftime("%Y-%m-%dT%H:%M"))
    assert estimate["end"].startswith((evening + timedelta(minutes=645)).strftime("%Y-%m-%dT%H:%M"))
    # A late batch (a wake at 02:00 for half an hour) moves the same night's estimate instead of adding one.
    late = [{"type": "unlock", "at": iso(evening + timedelta(hours=6))},
            {"type": "screen_off", "at": iso(evening + timedelta(hours=6, minutes=30))}]
    again = post(client, ann, "/me/device-events", {"events": late}, expect=200)["sessions"][0]
    assert again["id"] == estimate["id"] and again["start"] > estimate["start"]
    listed = client.get("/api/v1/me/sleep", headers=ann, query_string={"source": "estimated"}).json["items"]
    assert [s["id"] for s in listed] == [estimate["id"]]
    # The athlete enters the night themselves: theirs counts, the estimate doesn't.
    manual = post(client, ann, "/me/sleep", {"start": iso(evening + timedelta(hours=3)),
                                             "end": iso(evening + timedelta(hours=10, minutes=30))})
    counted = {s["id"]: s["counted"] for s in client.get("/api/v1/me/sleep", headers=ann).json["items"]}
    assert counted == {manual["id"]: True, estimate["id"]: False}


def test_device_events_bad_input(client, login):
    ann, _ = login("ann")
    t = NOW - timedelta(days=1)
    out_of_order = [{"type": "unlock", "at": iso(t)}, {"type": "screen_off", "at": iso(t - timedelta(minutes=1))}]
    assert client.post("/api/v1/me/device-events", json={"events": out_of_order}, headers=ann).status_code == 422
    assert client.post("/api/v1/me/device-events", json={"events": [{"type": "wave", "at": iso(t)}]},
                       headers=ann).status_code == 422
    years = [{"type": "unlock", "at": iso(t - timedelta(days=400))}, {"type": "unlock", "at": iso(t)}]
    assert client.post("/api/v1/me/device-events", json={"events": years}, headers=ann).status_code == 422
    future = [{"type": "unlock", "at": iso(NOW + timedelta(days=10))}]
    assert client.post("/api/v1/me/device-events", json={"events": future}, headers=ann).status_code == 422
    assert client.get("/api/v1/me/sleep", headers=ann).json["items"] == []


def test_body_metrics_units_and_ranges(client, login):
    ann, _ = login("ann")
    kg = post(client, ann, "/me/body-metrics", {"kind": "weight", "value": 165, "unit": "lb",
                                                "measured_at": iso(NOW)})
    assert kg["unit"] == "kg" and kg["value"] == pytest.approx(74.843, abs=0.001)
    hrv = post(client, ann, "/me/body-metrics", {"kind": "hrv_rmssd", "value": 0.045, "unit": "s",
                                                 "measured_at": iso(NOW)})
    assert hrv["unit"] == "ms" and hrv["value"] == pytest.approx(45.0)
    post(client, ann, "/me/body-metrics", {"kind": "hrv_sdnn", "value": 60, "measured_at": iso(NOW)})
    for body in ({"kind": "weight", "value": 4000, "measured_at": iso(NOW)},
                 {"kind": "weight", "value": 70, "unit": "stone", "measured_at": iso(NOW)},
                 {"kind": "mood", "value": 3, "measured_at": iso(NOW)},
                 {"kind": "resting_heart_rate", "value": 300, "measured_at": iso(NOW)}):
        assert client.post("/api/v1/me/body-metrics", json=body, headers=ann).status_code == 422
    weights = client.get("/api/v1/me/body-metrics", headers=ann, query_string={"kind": "weight"}).json["items"]
    assert [w["id"] for w in weights] == [kg["id"]]
    assert client.patch(f"/api/v1/me/body-metrics/{kg['id']}", json={"value": 74}, headers=ann).json["value"] == 74


def test_pages_follow_the_cursor(client, login):
    ann, _ = login("ann")
    ids = [post(client, ann, "/me/water", {"ml": 100 + i, "drunk_at": iso(NOW - timedelta(minutes=i))})["id"]
           for i in range(5)]
    first = client.get("/api/v1/me/water", headers=ann, query_string={"limit": 2}).json
    second = client.get("/api/v1/me/water", headers=ann, query_string={"limit": 2,
                                                                         "cursor": first["next_cursor"]}).json
    third = client.get("/api/v1/me/water", headers=ann, query_string={"limit": 2,
                                                                        "cursor": second["next_cursor"]}).json
    assert [w["id"] for w in first["items"] + second["items"] + third["items"]] == ids
    assert third["next_cursor"] is None
    assert client.get("/api/v1/me/water", headers=ann, query_string={"cursor": "forged.x"}).status_code == 400


def test_another_athlete_gets_404_on_every_record(client, login, food_catalogue):
    ann, _ = login("ann")
    bob, _ = login("bob")
    banana = food_named(client, ann, "Bananas, raw")
    t = NOW - timedelta(days=1)
    records = {
        "meals": post(client, ann, "/me/meals", {"meal_type": "lunch", "eaten_at": iso(t),
                                                 "items": [{"food_id": banana["id"], "grams": 10}]})["id"],
        "water": post(client, ann, "/me/water", {"ml": 250, "drunk_at": iso(t)})["id"],
        "sleep": post(client, ann, "/me/sleep", {"start": iso(t), "end": iso(t + timedelta(hours=7))})["id"],
        "body-metrics": post(client, ann, "/me/body-metrics", {"kind": "weight", "value": 70,
                                                               "measured_at": iso(t)})["id"],
    }
    for path, record_id in records.items():
        url = f"/api/v1/me/{path}/{record_id}"
        assert client.get(url, headers=bob).status_code == 404, path
        assert client.delete(url, headers=bob).status_code == 404, path
        assert client.patch(url, json={}, headers=bob).status_code == 404, path
        assert client.get(url, headers=ann).status_code == 200, path
        assert client.get(f"/api/v1/me/{path}", headers=bob).json["items"] == [], path


def test_account_deletion_removes_health_records(client, login, food_catalogue):
    from sqlalchemy import func, select

    from models import (
        BodyMetric,
        DeviceEvent,
        Food,
        HealthProfile,
        Meal,
        MealItem,
        SleepSession,
        WaterLog,
        db,
    )

    ann, ann_id = login("ann")
    banana = food_named(client, ann, "Bananas, raw")
    t = NOW - timedelta(days=1)
    own = post(client, ann, "/foods", {"name": "My bar", "energy_kcal": 400})
    post(client, ann, "/me/meals", {"meal_type": "lunch", "eaten_at": iso(t),
                                     "items": [{"food_id": banana["id"], "grams": 10}, {"food_id": own["id"],
                                                                                         "grams": 30}]})
    post(client, ann, "/me/water", {"ml": 250, "drunk_at": iso(t)})
    post(client, ann, "/me/sleep", {"start": iso(t), "end": iso(t + timedelta(hours=7))})
    post(client, ann, "/me/body-metrics", {"kind": "weight", "value": 70, "measured_at": iso(t)})
    post(client, ann, "/me/device-events", {"events": [{"type": "unlock", "at": iso(t)}]}, expect=200)
    client.patch("/api/v1/me/health/settings", json={"height_cm": 170}, headers=ann)
    assert client.delete("/api/v1/me", headers=ann).status_code == 204
    for model in (Meal, WaterLog, SleepSession, BodyMetric, DeviceEvent, HealthProfile, Food):
        assert db.session.scalar(select(func.count()).select_from(model).where(model.user_id == ann_id)) == 0
    assert db.session.scalar(select(func.count()).select_from(MealItem).where(MealItem.name == "My bar")) == 0
    assert db.session.get(Food, banana["id"]) is not None  # the shared catalogue stays
