"""No leak through side channels: achievements, segment boards, segments and shared activities tell a viewer no
more than the visibility rule lets them see (rows written directly, read through the REST API)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import insert, update

from domain import board_rebuilds
from domain.algorithms.geo import from_local_xy
from domain.algorithms.streams import encode_track
from domain.segments import efforts as engine
from domain.segments import rematch
from models import Achievement, Activity, ActivityStream, Block, Follow, Post, Segment, SegmentEffort, User, db
from models.social import ACCEPTED
from models.user import Preferences
from tests.support.synthetic import track_along

API = "/api/v1"


def _activity(client: Any, headers: dict[str, str], visibility: str = "everyone") -> int:
    resp = client.post(f"{API}/activities", headers=headers, json={
        "sport_type": "cycling", "start_date": "2026-10-01T07:00:00+00:00", "elapsed_time_s": 1800,
        "distance_m": 5000, "visibility": visibility})
    assert resp.status_code == 201, resp.json
    return int(resp.json["id"])


def _segment(creator_id: int, name: str = "Climb") -> Segment:
    lat, lon = np.array([46.05, 46.06]), np.array([14.50, 14.51])
    segment = Segment(creator_id=creator_id, name=name, sport_type="cycling", distance_m=1300.0,
                      min_lat=46.05, min_lng=14.50, max_lat=46.06, max_lng=14.51, start_lat=46.05, start_lng=14.50,
                      end_lat=46.06, end_lng=14.51, polyline="_p~iF~ps|U_ulLnnqC", path=engine.encode_path(lat, lon))
    db.session.add(segment)
    db.session.flush()
    return segment


def _effort(segment: Segment, activity_id: int, user_id: int, seconds: float, *, hidden: bool = False,
            start: int = 0) -> int:
    activity = db.session.get(Activity, activity_id)
    assert activity is not None
    effort = SegmentEffort(segment_id=segment.id, activity_id=activity_id, user_id=user_id, start_index=start,
                           end_index=start + 10, start_time=activity.start_time, elapsed_time_s=seconds,
                           moving_time_s=seconds, hidden_by_privacy=hidden)
    db.session.add(effort)
    db.session.flush()
    return effort.id


def test_achievements_on_efforts_hidden_by_a_privacy_zone_are_shown_to_the_owner_only(client, login):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    activity_id = _activity(client, ann)
    home = _segment(ann_id, "Home street")
    hidden_effort = _effort(home, activity_id, ann_id, 100.0, hidden=True)
    park = _segment(ann_id, "Park")
    shown_effort = _effort(park, activity_id, ann_id, 90.0)
    for key, effort, segment in (("pr:home", hidden_effort, home), ("pr:park", shown_effort, park)):
        db.session.add(Achievement(user_id=ann_id, activity_id=activity_id, effort_id=effort, segment_id=segment.id,
                                   kind="pr", key=key, rank=1, value=100.0))
    db.session.commit()

    def segments_seen(headers: dict[str, str]) -> set[int]:
        resp = client.get(f"{API}/users/{ann_id}/achievements", headers=headers)
        assert resp.status_code == 200, resp.json
        return {a["segment_id"] for a in resp.json["items"] if a["segment_id"] is not None}

    assert segments_seen(ann) == {home.id, park.id}
    # The segment's line would place ann's home: bob never learns of that PR.
    assert segments_seen(bob) == {park.id}


def test_a_segment_is_made_only_from_an_activity_everyone_may_see(client, login):
    ann, _ = login("ann")
    s = np.arange(0, 3000, 20.0)
    lat, lon = from_local_xy(s, 150 * np.sin(s / 400.0), 46.05, 14.50)
    track, _ = track_along(lat, lon, 7.0, seed=1)
    ids = {}
    for visibility in ("everyone", "followers", "only_me"):
        activity_id = _activity(client, ann, visibility)
        db.session.execute(update(Activity).where(Activity.id == activity_id).values(has_gps=True))
        db.session.add(ActivityStream(activity_id=activity_id, point_count=len(track), data=encode_track(track)))
        ids[visibility] = activity_id
    db.session.commit()
    for visibility, activity_id in ids.items():
        resp = client.post(f"{API}/segments", headers=ann, json={
            "name": f"from {visibility}", "activity_id": activity_id, "start_index": 10, "end_index": 120})
        # A segment's line, start and creator are public: only a public activity may become one.
        assert resp.status_code == (201 if visibility == "everyone" else 422), (visibility, resp.json)
        if visibility != "everyone":
            assert "activity_id" in resp.json["errors"]["json"]


def test_segment_board_pages_are_filtered_against_the_rule_at_read_time(client, login, redis_clean):
    viewer, viewer_id = login("viewer")
    riders = {name: login(name) for name in ("fast", "made_private", "went_only_me", "opted_out", "blocker")}
    segment = _segment(viewer_id)
    activities = {}
    for i, (name, (headers, uid)) in enumerate(riders.items()):
        activities[name] = _activity(client, headers)
        _effort(segment, activities[name], uid, 100.0 + i)
    db.session.commit()
    engine.rebuild_segment(segment.id)  # the boards as the jobs left them, before anything below changes

    def shown() -> list[str]:
        resp = client.get(f"{API}/segments/{segment.id}/leaderboard", headers=viewer)
        assert resp.status_code == 200, resp.json
        return [e["athlete"]["display_name"] for e in resp.json["entries"]]

    assert shown() == list(riders)
    # A block hides the athlete from the page and from the count.
    db.session.add(Block(blocker_id=riders["blocker"][1], blocked_id=viewer_id))
    db.session.commit()
    assert shown() == list(riders)[:-1]
    assert client.get(f"{API}/segments/{segment.id}/leaderboard", headers=viewer).json["entry_count"] == 4
    # Changes whose correcting jobs have not run (or were lost): Redis still holds every effort.
    db.session.execute(update(User).where(User.id == riders["made_private"][1]).values(is_private=True))
    db.session.execute(update(Activity).where(Activity.id == activities["went_only_me"]).values(visibility="only_me"))
    db.session.execute(update(Preferences).where(Preferences.user_id == riders["opted_out"][1])
                       .values(hide_from_leaderboards=True))
    db.session.commit()
    assert shown() == ["fast"]
    # A follower of the private account still doesn't see it on a public board: boards are public.
    db.session.add(Follow(follower_id=viewer_id, followee_id=riders["made_private"][1], status=ACCEPTED))
    db.session.commit()
    assert shown() == ["fast"]


def test_a_post_shows_the_id_of_a_shared_activity_only_to_those_who_may_see_it(client, login):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    hidden = _activity(client, ann, "only_me")
    post = client.post(f"{API}/posts", headers=ann, json={"text": "secret ride", "activity_id": hidden,
                                                           "visibility": "everyone"}).json
    assert post["activity_id"] == hidden
    seen = client.get(f"{API}/posts/{post['id']}", headers=bob).json
    assert seen["activity_id"] is None and seen["activity"] is None
    # The same in a group's discussion.
    group = client.post(f"{API}/groups", headers=ann, json={"name": "Riders"}).json
    db.session.add(Post(user_id=ann_id, group_id=group["id"], text="look", visibility="everyone", activity_id=hidden))
    db.session.commit()
    items = client.get(f"{API}/groups/{group['id']}/feed", headers=bob).json["items"]
    assert [i["activity_id"] for i in items] == [None]
    assert [i["activity_id"] for i in client.get(f"{API}/groups/{group['id']}/feed", headers=ann).json["items"]] == [
        hidden]


def test_a_group_in_a_block_with_its_owner_is_not_found_when_posting(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    group = client.post(f"{API}/groups", headers=ann, json={"name": "Riders"}).json
    assert client.post(f"{API}/groups/{group['id']}/join", headers=bob).status_code == 200
    db.session.add(Block(blocker_id=ann_id, blocked_id=bob_id))
    db.session.commit()
    resp = client.post(f"{API}/posts", headers=bob, json={"text": "hi", "group_id": group["id"]})
    assert resp.status_code == 404, resp.json


def test_counts_leave_out_kudos_and_comments_the_viewer_may_not_see(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    cat, _ = login("cat")
    dan, dan_id = login("dan")
    client.post(f"{API}/users/{ann_id}/follow", headers=dan)
    activity_id = _activity(client, ann)
    post = client.post(f"{API}/posts", headers=ann, json={"text": "hello", "visibility": "everyone"}).json
    group = client.post(f"{API}/groups", headers=ann, json={"name": "Riders"}).json
    group_post = client.post(f"{API}/posts", headers=ann, json={"text": "hi club", "group_id": group["id"]}).json
    for who in (bob, cat):
        for path in (f"activities/{activity_id}", f"posts/{post['id']}", f"posts/{group_post['id']}"):
            assert client.post(f"{API}/{path}/kudos", headers=who).status_code in (200, 201)
            assert client.post(f"{API}/{path}/comments", headers=who, json={"text": "nice"}).status_code == 201
    db.session.add(Block(blocker_id=bob_id, blocked_id=dan_id))  # dan no longer sees bob's kudos or comments
    db.session.commit()

    def counts(body: dict[str, Any]) -> tuple[int, int]:
        return body["kudos_count"], body["comment_count"]

    assert counts(client.get(f"{API}/activities/{activity_id}", headers=ann).json) == (2, 2)
    assert counts(client.get(f"{API}/activities/{activity_id}", headers=dan).json) == (1, 1)
    listed = client.get(f"{API}/users/{ann_id}/activities", headers=dan).json["items"]
    assert [counts(a) for a in listed] == [(1, 1)]
    assert counts(client.get(f"{API}/posts/{post['id']}", headers=dan).json) == (1, 1)
    feed = client.get(f"{API}/feed", headers=dan).json["items"]
    assert sorted(counts(i[i["type"]]) for i in feed) == [(1, 1), (1, 1)]
    assert sorted(counts(i[i["type"]]) for i in client.get(f"{API}/feed", headers=ann).json["items"]) == [
        (2, 2), (2, 2)]
    club = client.get(f"{API}/groups/{group['id']}/feed", headers=dan).json["items"]
    assert [counts(i) for i in club] == [(1, 1)]
    kudos_list = client.get(f"{API}/activities/{activity_id}/kudos", headers=dan).json["items"]
    assert len(kudos_list) == 1


def test_segment_counts_leave_out_athletes_nobody_else_may_see(client, login, redis_clean):
    viewer, viewer_id = login("viewer")
    other, _ = login("other")
    riders = {name: login(name) for name in ("fast", "made_private", "only_me", "opted_out", "zoned", "blocker")}
    db.session.execute(update(User).where(User.id == riders["made_private"][1]).values(is_private=True))
    db.session.execute(update(Preferences).where(Preferences.user_id == riders["opted_out"][1])
                       .values(hide_from_leaderboards=True))
    segment = _segment(viewer_id)
    activities = {name: _activity(client, headers, "only_me" if name == "only_me" else "everyone")
                  for name, (headers, _) in riders.items()}
    for name, (_, uid) in riders.items():
        _effort(segment, activities[name], uid, 100.0, hidden=name == "zoned")
    _effort(segment, activities["fast"], riders["fast"][1], 99.0, start=20)
    db.session.add(Block(blocker_id=riders["blocker"][1], blocked_id=viewer_id))
    db.session.commit()
    rematch.rebuild_boards([segment.id])  # efforts written directly: the rebuild brings their flags up to date

    def counts(headers: dict[str, str]) -> tuple[int, int]:
        body = client.get(f"{API}/segments/{segment.id}", headers=headers).json
        return body["effort_count"], body["athlete_count"]

    # fast's two efforts and blocker's one; the blocked viewer doesn't count the blocker either.
    assert counts(other) == (3, 2)
    assert counts(viewer) == (2, 1)
    # A change whose rebuild has not run yet (its job queued or lost): counted from the rule meanwhile.
    db.session.execute(update(Activity).where(Activity.id == activities["fast"]).values(visibility="only_me"))
    board_rebuilds.rebuild_later([segment.id])
    db.session.commit()
    assert counts(other) == (1, 1)
    # A board read rebuilds a stale segment first, so its entry_count is the truth too.
    board = client.get(f"{API}/segments/{segment.id}/leaderboard", headers=other).json
    assert (board["entry_count"], [e["athlete"]["id"] for e in board["entries"]]) == (1, [riders["blocker"][1]])
    db.session.expire_all()
    stored = db.session.get(Segment, segment.id)
    assert stored is not None
    assert (stored.boards_stale_since, stored.effort_count, stored.athlete_count) == (None, 1, 1)


def test_segment_counts_follow_multi_row_inserts_and_cascading_deletes(client, login):
    riders = {name: login(name) for name in ("ann", "bob", "cat")}
    segment = _segment(riders["ann"][1])
    activities = {name: _activity(client, headers) for name, (headers, _) in riders.items()}
    db.session.commit()

    def row(name: str, start: int, on_boards: bool = True) -> dict[str, Any]:
        activity = db.session.get(Activity, activities[name])
        assert activity is not None
        return {"segment_id": segment.id, "activity_id": activities[name], "user_id": riders[name][1],
                "start_index": start, "end_index": start + 10, "start_time": activity.start_time,
                "elapsed_time_s": 100.0 + start, "moving_time_s": 100.0, "on_boards": on_boards}

    def stored() -> tuple[int, int]:
        db.session.expire_all()
        s = db.session.get(Segment, segment.id)
        assert s is not None
        return s.effort_count, s.athlete_count

    # One statement: ann twice, bob once, cat off the boards: each athlete counted once.
    db.session.execute(insert(SegmentEffort), [row("ann", 0), row("ann", 20), row("bob", 0), row("cat", 0, False)])
    db.session.commit()
    assert stored() == (3, 2)
    db.session.execute(insert(SegmentEffort), [row("ann", 40), row("cat", 20, False)])
    db.session.commit()
    assert stored() == (4, 2)
    # Deleting ann's activity removes her three efforts by cascade, and her from the athletes.
    assert client.delete(f"{API}/activities/{activities['ann']}", headers=riders["ann"][0]).status_code == 204
    assert stored() == (1, 1)
