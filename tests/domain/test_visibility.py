"""The visibility rule, checked whole: for every viewer × visibility × private account, the Python predicate
(``allows`` / ``can_see``), the SQL builder (``visible_sql``) and what the REST read paths return all agree
with one truth table written out here, on real rows in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import product
from typing import Any

import pytest
from sqlalchemy import select

from domain import visibility
from domain.social.groups import iso_week_start
from models import Activity, Block, Follow, GroupMember, User, db
from models.social import ACCEPTED, PENDING
from models.user import VISIBILITIES

API = "/api/v1"
RELATIONS = ("owner", "stranger", "follower", "pending", "blocked_by_owner", "blocking_owner")
PRIVATE = (False, True)


def expected(relation: str, visibility_: str, private: bool) -> bool:
    """The rule as the product states it, written independently of the code under test."""
    if relation == "owner":
        return True
    if visibility_ == "only_me" or relation in ("blocked_by_owner", "blocking_owner"):
        return False
    if visibility_ == "followers" or private:
        return relation == "follower"
    return True


def _relate(viewer_id: int, owner_id: int, relation: str) -> None:
    if relation in ("follower", "pending"):
        db.session.add(Follow(follower_id=viewer_id, followee_id=owner_id,
                              status=ACCEPTED if relation == "follower" else PENDING))
    elif relation == "blocked_by_owner":
        db.session.add(Block(blocker_id=owner_id, blocked_id=viewer_id))
    elif relation == "blocking_owner":
        db.session.add(Block(blocker_id=viewer_id, blocked_id=owner_id))


@pytest.fixture
def world(client: Any, login: Any) -> dict[str, Any]:
    """One owner (public or private) and one viewer per relation, each owner with an activity of every
    visibility this week, all owners members of one open group run by a neutral athlete."""
    club, club_id = login("club")
    group = client.post(f"{API}/groups", headers=club, json={"name": "Matrix club"}).json
    now = datetime.now(UTC)
    start = iso_week_start(now) + (now - iso_week_start(now)) / 2
    cases = {}
    for relation, private in product(RELATIONS, PRIVATE):
        tag = f"{relation[:8]}{int(private)}"
        owner_h, owner_id = login(f"o-{tag}")
        viewer_h, viewer_id = (owner_h, owner_id) if relation == "owner" else login(f"v-{tag}")
        activities = {}
        for vis in VISIBILITIES:
            resp = client.post(f"{API}/activities", headers=owner_h, json={
                "sport_type": "running", "start_date": start.isoformat(), "elapsed_time_s": 600,
                "distance_m": 1000, "visibility": vis})
            assert resp.status_code == 201, resp.json
            activities[vis] = resp.json["id"]
        db.session.add(GroupMember(group_id=group["id"], user_id=owner_id, role="member", status="active"))
        db.session.get(User, owner_id).is_private = private
        if relation != "owner":
            _relate(viewer_id, owner_id, relation)
        db.session.commit()
        cases[(relation, private)] = {"owner_id": owner_id, "viewer_id": viewer_id, "viewer": viewer_h,
                                      "activities": activities}
    return {"group_id": group["id"], "club_id": club_id, "cases": cases}


def test_predicate_sql_and_rest_agree_on_every_combination(client: Any, world: dict[str, Any]) -> None:
    checked = 0
    for (relation, private), case in world["cases"].items():
        owner_id, viewer_id, headers = case["owner_id"], case["viewer_id"], case["viewer"]
        ids = case["activities"]
        blocked = relation in ("blocked_by_owner", "blocking_owner")
        want = {vis: expected(relation, vis, private) for vis in VISIBILITIES}

        # The predicate, on facts and looked up.
        for vis in VISIBILITIES:
            label = (relation, vis, private)
            assert visibility.allows(vis, is_owner=relation == "owner", blocked=blocked,
                                     follower=relation == "follower", owner_private=private) is want[vis], label
            assert visibility.can_see(viewer_id, owner_id, private, vis) is want[vis], label

        # Its SQL twin.
        shown_sql = set(db.session.scalars(
            select(Activity.id).join(User, User.id == Activity.user_id).where(
                Activity.user_id == owner_id,
                visibility.visible_sql(viewer_id, Activity.user_id, Activity.visibility, User.is_private))))
        assert shown_sql == {ids[v] for v in want if want[v]}, (relation, private)

        # GET activity: 200 or 404, never 403.
        for vis, activity_id in ids.items():
            status = client.get(f"{API}/activities/{activity_id}", headers=headers).status_code
            assert status == (200 if want[vis] else 404), (relation, vis, private, status)

        # The athlete's activity list (the athlete doesn't exist across a block).
        listed = client.get(f"{API}/users/{owner_id}/activities", headers=headers)
        if blocked:
            assert listed.status_code == 404
        else:
            assert {a["id"] for a in listed.json["items"]} == shown_sql, (relation, private)

        # The home feed: own items and accepted followees' items, each only if the rule allows it.
        feed = client.get(f"{API}/feed?limit=50", headers=headers).json["items"]
        in_feed = {i["id"] for i in feed if i["type"] == "activity" and i["activity"]["athlete"]["id"] == owner_id}
        reaches_feed = relation in ("owner", "follower")
        assert in_feed == (shown_sql if reaches_feed else set()), (relation, private)

        # The group's weekly board: what the viewer may see of the owner's shared (not only_me) activities.
        board = client.get(f"{API}/groups/{world['group_id']}/leaderboard", headers=headers).json["entries"]
        counted = {e["athlete"]["id"]: e["activity_count"] for e in board}.get(owner_id, 0)
        assert counted == sum(1 for v in ("everyone", "followers") if want[v]), (relation, private)
        checked += len(VISIBILITIES)
    assert checked == len(RELATIONS) * len(VISIBILITIES) * len(PRIVATE) == 36
