from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from domain.social.groups import competition_ranks, iso_week_start

API = "/api/v1"


def make_group(client, headers, **fields) -> dict:
    body = {"name": "Sunday Runners", **fields}
    resp = client.post(f"{API}/groups", headers=headers, json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def notifications(user_id: int, kind: str) -> list:
    from models import Notification, db

    return list(db.session.scalars(select(Notification).where(
        Notification.user_id == user_id, Notification.kind == kind).order_by(Notification.id)))


def add_post(user_id: int, group_id: int | None, text: str = "hi", visibility: str = "everyone") -> int:
    """Group posts are written by the posts API; the group feed reads the rows, so tests write rows directly."""
    from models import Post, db

    post = Post(user_id=user_id, group_id=group_id, text=text, visibility=visibility)
    db.session.add(post)
    db.session.commit()
    return post.id


def member_ids(page: dict) -> list[int]:
    return [item["athlete"]["id"] for item in page["items"]]


def walk(client, headers, url: str) -> list[dict]:
    """Every item of a cursor-paginated listing."""
    items: list[dict] = []
    sep = "&" if "?" in url else "?"
    page = client.get(url, headers=headers).json
    items += page["items"]
    while page["next_cursor"]:
        assert len(items) < 100, "the cursor never reaches the end"
        page = client.get(f"{url}{sep}cursor={page['next_cursor']}", headers=headers).json
        items += page["items"]
    return items


# --- create / describe / edit / delete -----------------------------------------------------------------


def test_create_makes_the_creator_owner_and_describe_shows_membership(client, login):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    group = make_group(client, ann, name="  Tuesday Track  ", description="Intervals at 7", join_policy="approval",
                       sport_type="running", avatar_url="https://example.com/a.png")
    assert group["name"] == "Tuesday Track" and group["join_policy"] == "approval"
    assert group["member_count"] == 1
    assert group["owner"]["id"] == ann_id
    assert group["membership"] == {"role": "owner", "status": "active"}
    seen = client.get(f"{API}/groups/{group['id']}", headers=bob)
    assert seen.status_code == 200
    assert seen.json["membership"] is None and seen.json["description"] == "Intervals at 7"
    assert client.get(f"{API}/groups/999999", headers=bob).status_code == 404


def test_create_validates_input(client, login):
    ann, _ = login("ann")
    for bad in ({"name": ""}, {"name": "   "}, {"name": "x" * 121}, {"name": "ok", "description": "d" * 5001},
                {"name": "ok", "join_policy": "secret"}, {"name": "ok", "sport_type": "quidditch"},
                {"name": "ok", "avatar_url": "javascript:alert(1)"}, {"name": "ok", "member_count": 5}, {}):
        resp = client.post(f"{API}/groups", headers=ann, json=bad)
        assert resp.status_code == 422, bad
    assert client.post(f"{API}/groups", headers=ann, json={"name": "x" * 120, "description": "d" * 5000}
                       ).status_code == 201


def test_patch_by_owner_or_admin_and_delete_by_owner_only(client, login):
    ann, _ = login("ann")
    bob, bob_id = login("bob")
    cat, _ = login("cat")
    group = make_group(client, ann)
    gid = group["id"]
    client.post(f"{API}/groups/{gid}/join", headers=bob)
    client.post(f"{API}/groups/{gid}/join", headers=cat)
    assert client.patch(f"{API}/groups/{gid}", headers=bob, json={"name": "Mine"}).status_code == 403
    assert client.patch(f"{API}/groups/{gid}/members/{bob_id}", headers=ann, json={"role": "admin"}).status_code == 200
    resp = client.patch(f"{API}/groups/{gid}", headers=bob, json={"name": "Renamed", "sport_type": "cycling"})
    assert resp.status_code == 200 and resp.json["name"] == "Renamed" and resp.json["sport_type"] == "cycling"
    assert client.patch(f"{API}/groups/{gid}", headers=ann, json={"member_count": 99}).status_code == 422
    assert client.patch(f"{API}/groups/{gid}", headers=ann, json={"name": ""}).status_code == 422
    # Admins edit but don't delete; plain members do neither.
    assert client.delete(f"{API}/groups/{gid}", headers=bob).status_code == 403
    assert client.delete(f"{API}/groups/{gid}", headers=cat).status_code == 403
    post_id = add_post(bob_id, gid)
    assert client.delete(f"{API}/groups/{gid}", headers=ann).status_code == 204
    assert client.get(f"{API}/groups/{gid}", headers=ann).status_code == 404
    from models import Post, db

    assert db.session.get(Post, post_id) is None  # the discussion goes with the group


# --- join / leave ---------------------------------------------------------------------------------------


def test_open_group_join_is_immediate_idempotent_and_counted(client, login):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    gid = make_group(client, ann)["id"]
    joined = client.post(f"{API}/groups/{gid}/join", headers=bob)
    assert joined.status_code == 200
    assert joined.json["membership"] == {"role": "member", "status": "active"}
    assert joined.json["member_count"] == 2
    again = client.post(f"{API}/groups/{gid}/join", headers=bob)
    assert again.json["member_count"] == 2 and again.json["membership"]["status"] == "active"
    # Open groups notify nobody.
    assert notifications(ann_id, "group_join_request") == []
    assert client.post(f"{API}/groups/{gid}/leave", headers=bob).status_code == 204
    after = client.get(f"{API}/groups/{gid}", headers=bob).json
    assert after["membership"] is None and after["member_count"] == 1
    # Leaving twice is fine; leaving a group that doesn't exist is not.
    assert client.post(f"{API}/groups/{gid}/leave", headers=bob).status_code == 204
    assert client.post(f"{API}/groups/999999/leave", headers=bob).status_code == 404


def test_owner_cannot_leave_until_ownership_is_transferred(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    gid = make_group(client, ann)["id"]
    client.post(f"{API}/groups/{gid}/join", headers=bob)
    resp = client.post(f"{API}/groups/{gid}/leave", headers=ann)
    assert resp.status_code == 422 and "ownership" in resp.json["message"]
    transfer = client.patch(f"{API}/groups/{gid}/members/{bob_id}", headers=ann, json={"role": "owner"})
    assert transfer.status_code == 200 and transfer.json["role"] == "owner"
    group = client.get(f"{API}/groups/{gid}", headers=ann).json
    assert group["owner"]["id"] == bob_id and group["membership"] == {"role": "admin", "status": "active"}
    # The old owner is an admin now: no longer allowed to hand out roles, free to leave.
    assert client.patch(f"{API}/groups/{gid}/members/{bob_id}", headers=ann, json={"role": "member"}
                        ).status_code == 403
    assert client.post(f"{API}/groups/{gid}/leave", headers=bob).status_code == 422
    assert client.post(f"{API}/groups/{gid}/leave", headers=ann).status_code == 204
    members = client.get(f"{API}/groups/{gid}/members", headers=bob).json
    assert [(m["athlete"]["id"], m["role"]) for m in members["items"]] == [(bob_id, "owner")]
    assert ann_id not in member_ids(members)


# --- approval groups ------------------------------------------------------------------------------------


def test_approval_flow_with_notifications(client, login):
    ann, ann_id = login("ann")
    adm, adm_id = login("adm")
    mem, mem_id = login("mem")
    bob, bob_id = login("bob")
    cat, cat_id = login("cat")
    gid = make_group(client, ann, join_policy="open")["id"]
    client.post(f"{API}/groups/{gid}/join", headers=adm)
    client.post(f"{API}/groups/{gid}/join", headers=mem)
    client.patch(f"{API}/groups/{gid}/members/{adm_id}", headers=ann, json={"role": "admin"})
    client.patch(f"{API}/groups/{gid}", headers=ann, json={"join_policy": "approval"})

    resp = client.post(f"{API}/groups/{gid}/join", headers=bob)
    assert resp.status_code == 200
    assert resp.json["membership"] == {"role": "member", "status": "pending"} and resp.json["member_count"] == 3
    client.post(f"{API}/groups/{gid}/join", headers=cat)
    # Every owner/admin hears about each request; plain members don't.
    for manager in (ann_id, adm_id):
        rows = notifications(manager, "group_join_request")
        assert [(n.actor_id, n.group_id) for n in rows] == [(bob_id, gid), (cat_id, gid)]
        assert rows[0].payload["display_name"] == "bob"
    assert notifications(mem_id, "group_join_request") == []
    # Withdrawing and asking again doesn't notify twice (dedupe key per group and athlete).
    assert client.post(f"{API}/groups/{gid}/leave", headers=bob).status_code == 204
    assert client.post(f"{API}/groups/{gid}/join", headers=bob).json["membership"]["status"] == "pending"
    assert len(notifications(ann_id, "group_join_request")) == 2

    # Requests are visible to the owner and admins only.
    pending = client.get(f"{API}/groups/{gid}/members?status=pending", headers=adm)
    assert pending.status_code == 200 and set(member_ids(pending.json)) == {bob_id, cat_id}
    assert all(m["status"] == "pending" for m in pending.json["items"])
    assert client.get(f"{API}/groups/{gid}/members?status=pending", headers=mem).status_code == 403
    assert client.get(f"{API}/groups/{gid}/members?status=pending", headers=bob).status_code == 404
    assert client.get(f"{API}/groups/{gid}/members?status=gone", headers=ann).status_code == 422
    # A plain member can't approve; an admin can, and the athlete is notified.
    assert client.post(f"{API}/groups/{gid}/members/{bob_id}/approve", headers=mem).status_code == 403
    approved = client.post(f"{API}/groups/{gid}/members/{bob_id}/approve", headers=adm)
    assert approved.status_code == 200 and approved.json["status"] == "active"
    assert approved.json["athlete"]["id"] == bob_id
    joined = notifications(bob_id, "group_joined")
    assert len(joined) == 1 and joined[0].actor_id == adm_id and joined[0].group_id == gid
    assert client.post(f"{API}/groups/{gid}/members/{bob_id}/approve", headers=adm).status_code == 404
    assert client.get(f"{API}/groups/{gid}", headers=bob).json["member_count"] == 4
    # Declining is removing the request.
    assert client.delete(f"{API}/groups/{gid}/members/{cat_id}", headers=adm).status_code == 204
    assert client.get(f"{API}/groups/{gid}", headers=cat).json["membership"] is None
    assert client.post(f"{API}/groups/{gid}/members/{cat_id}/approve", headers=ann).status_code == 404
    assert notifications(cat_id, "group_joined") == []


def test_approval_group_shows_its_card_to_anyone_but_content_to_members_only(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    out, _ = login("out")
    gid = make_group(client, ann, join_policy="approval", description="Members only rides")["id"]
    add_post(ann_id, gid, "welcome")
    client.post(f"{API}/groups/{gid}/join", headers=bob)
    for headers in (out, bob):  # a stranger and a pending member
        assert client.get(f"{API}/groups/{gid}", headers=headers).json["description"] == "Members only rides"
        for path in ("feed", "members", "leaderboard"):
            assert client.get(f"{API}/groups/{gid}/{path}", headers=headers).status_code == 404, path
    # Discovery lists approval groups too.
    assert gid in [g["id"] for g in client.get(f"{API}/groups", headers=out).json["items"]]
    client.post(f"{API}/groups/{gid}/members/{bob_id}/approve", headers=ann)
    for path in ("feed", "members", "leaderboard"):
        assert client.get(f"{API}/groups/{gid}/{path}", headers=bob).status_code == 200, path


def test_opening_an_approval_group_admits_everyone_waiting(client, login):
    ann, _ = login("ann")
    bob, bob_id = login("bob")
    gid = make_group(client, ann, join_policy="approval")["id"]
    client.post(f"{API}/groups/{gid}/join", headers=bob)
    opened = client.patch(f"{API}/groups/{gid}", headers=ann, json={"join_policy": "open"})
    assert opened.status_code == 200 and opened.json["member_count"] == 2
    assert client.get(f"{API}/groups/{gid}", headers=bob).json["membership"]["status"] == "active"
    assert len(notifications(bob_id, "group_joined")) == 1


# --- roles ----------------------------------------------------------------------------------------------


def test_role_rules_for_removing_and_promoting(client, login):
    own, own_id = login("own")
    ad1, ad1_id = login("ad1")
    ad2, ad2_id = login("ad2")
    mem, mem_id = login("mem")
    m2, m2_id = login("m2")
    gid = make_group(client, own)["id"]
    for h in (ad1, ad2, mem, m2):
        client.post(f"{API}/groups/{gid}/join", headers=h)
    for uid in (ad1_id, ad2_id):
        resp = client.patch(f"{API}/groups/{gid}/members/{uid}", headers=own, json={"role": "admin"})
        assert resp.status_code == 200 and resp.json["role"] == "admin"
    # Only the owner hands out roles.
    assert client.patch(f"{API}/groups/{gid}/members/{mem_id}", headers=ad1, json={"role": "admin"}
                        ).status_code == 403
    assert client.patch(f"{API}/groups/{gid}/members/{mem_id}", headers=own, json={"role": "boss"}
                        ).status_code == 422
    assert client.patch(f"{API}/groups/{gid}/members/{own_id}", headers=own, json={"role": "member"}
                        ).status_code == 422
    assert client.patch(f"{API}/groups/{gid}/members/999999", headers=own, json={"role": "admin"}
                        ).status_code == 404
    # Admins can't remove the owner or another admin; members can't remove anyone.
    assert client.delete(f"{API}/groups/{gid}/members/{own_id}", headers=ad1).status_code == 403
    assert client.delete(f"{API}/groups/{gid}/members/{ad2_id}", headers=ad1).status_code == 403
    assert client.delete(f"{API}/groups/{gid}/members/{m2_id}", headers=mem).status_code == 403
    assert client.delete(f"{API}/groups/{gid}/members/{ad1_id}", headers=ad1).status_code == 422  # use /leave
    assert client.delete(f"{API}/groups/{gid}/members/{m2_id}", headers=ad1).status_code == 204
    assert client.delete(f"{API}/groups/{gid}/members/{m2_id}", headers=ad1).status_code == 404
    # The owner can remove an admin, and demote one.
    assert client.delete(f"{API}/groups/{gid}/members/{ad2_id}", headers=own).status_code == 204
    demoted = client.patch(f"{API}/groups/{gid}/members/{ad1_id}", headers=own, json={"role": "member"})
    assert demoted.status_code == 200 and demoted.json["role"] == "member"
    assert client.delete(f"{API}/groups/{gid}/members/{mem_id}", headers=ad1).status_code == 403
    roles = {m["athlete"]["id"]: m["role"] for m in client.get(f"{API}/groups/{gid}/members", headers=mem).json[
        "items"]}
    assert roles == {own_id: "owner", ad1_id: "member", mem_id: "member"}
    assert client.get(f"{API}/groups/{gid}", headers=own).json["member_count"] == 3


def test_pending_athlete_gets_no_role_before_approval(client, login):
    ann, _ = login("ann")
    bob, bob_id = login("bob")
    gid = make_group(client, ann, join_policy="approval")["id"]
    client.post(f"{API}/groups/{gid}/join", headers=bob)
    assert client.patch(f"{API}/groups/{gid}/members/{bob_id}", headers=ann, json={"role": "owner"}
                        ).status_code == 422
    assert client.get(f"{API}/groups/{gid}", headers=ann).json["owner"]["id"] != bob_id
    assert client.post(f"{API}/groups/{gid}/members/{bob_id}/approve", headers=ann).status_code == 200
    assert client.patch(f"{API}/groups/{gid}/members/{bob_id}", headers=ann, json={"role": "admin"}
                        ).status_code == 200


# --- blocks ---------------------------------------------------------------------------------------------


def test_an_athlete_in_a_block_with_the_owner_cannot_see_or_join(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    cat, _ = login("cat")
    dan, dan_id = login("dan")
    gid = make_group(client, ann, name="Blocky")["id"]
    client.post(f"{API}/users/{bob_id}/block", headers=ann)
    assert client.get(f"{API}/groups/{gid}", headers=bob).status_code == 404
    assert client.post(f"{API}/groups/{gid}/join", headers=bob).status_code == 404
    assert client.get(f"{API}/groups/{gid}/feed", headers=bob).status_code == 404
    assert gid not in [g["id"] for g in client.get(f"{API}/groups?q=Blocky", headers=bob).json["items"]]
    # The block works both ways; others are unaffected.
    client.post(f"{API}/users/{ann_id}/block", headers=dan)
    assert client.post(f"{API}/groups/{gid}/join", headers=dan).status_code == 404
    assert client.post(f"{API}/groups/{gid}/join", headers=cat).status_code == 200
    # A member the owner blocks later can still leave.
    client.delete(f"{API}/users/{dan_id}/block", headers=dan)
    client.post(f"{API}/groups/{gid}/join", headers=dan)
    client.post(f"{API}/users/{dan_id}/block", headers=ann)
    assert client.post(f"{API}/groups/{gid}/leave", headers=dan).status_code == 204
    assert client.get(f"{API}/groups/{gid}", headers=cat).json["member_count"] == 2


# --- listings -------------------------------------------------------------------------------------------


def test_discovery_most_members_first_search_filter_and_cursor(client, login):
    ann, _ = login("ann")
    fans = [login(f"fan{i}")[0] for i in range(3)]
    small = make_group(client, ann, name="Small Swim Club", sport_type="swimming")["id"]
    big = make_group(client, ann, name="Big Run Club", sport_type="running")["id"]
    mid = make_group(client, ann, name="Mid 100% Ride", sport_type="cycling")["id"]
    for h in fans:
        client.post(f"{API}/groups/{big}/join", headers=h)
    client.post(f"{API}/groups/{mid}/join", headers=fans[0])
    order = [g["id"] for g in client.get(f"{API}/groups", headers=fans[0]).json["items"]]
    assert order == [big, mid, small]
    listed = client.get(f"{API}/groups", headers=fans[0]).json["items"]
    assert [g["member_count"] for g in listed] == [4, 2, 1]
    assert listed[0]["membership"] == {"role": "member", "status": "active"} and listed[2]["membership"] is None
    assert [g["id"] for g in client.get(f"{API}/groups?q=club", headers=ann).json["items"]] == [big, small]
    assert [g["id"] for g in client.get(f"{API}/groups?q=100%25", headers=ann).json["items"]] == [mid]
    assert client.get(f"{API}/groups?q=1_0", headers=ann).json["items"] == []  # _ is not a wildcard
    assert [g["id"] for g in client.get(f"{API}/groups?sport_type=swimming", headers=ann).json["items"]] == [small]
    assert client.get(f"{API}/groups?sport_type=quidditch", headers=ann).status_code == 422
    # Pages of one never skip or repeat.
    paged = [g["id"] for g in walk(client, ann, f"{API}/groups?limit=1")]
    assert paged == [big, mid, small]
    assert client.get(f"{API}/groups?cursor=@@@", headers=ann).status_code == 400


def test_my_groups_includes_requests_and_paginates(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    open_ids = [make_group(client, ann, name=f"Open {i}")["id"] for i in range(3)]
    closed = make_group(client, ann, name="Closed", join_policy="approval")["id"]
    for gid in [*open_ids, closed]:
        client.post(f"{API}/groups/{gid}/join", headers=bob)
    mine = walk(client, bob, f"{API}/me/groups?limit=2")
    assert sorted(g["id"] for g in mine) == sorted([*open_ids, closed])
    assert len(mine) == 4
    statuses = {g["id"]: g["membership"]["status"] for g in mine}
    assert statuses[closed] == "pending" and all(statuses[g] == "active" for g in open_ids)
    assert len(client.get(f"{API}/me/groups", headers=ann).json["items"]) == 4
    assert client.get(f"{API}/me/groups?limit=0", headers=ann).status_code == 422


def test_members_paginate_in_joining_order(client, login):
    ann, ann_id = login("ann")
    gid = make_group(client, ann)["id"]
    joined = [ann_id]
    for i in range(5):
        h, uid = login(f"m{i}")
        client.post(f"{API}/groups/{gid}/join", headers=h)
        joined.append(uid)
    items = walk(client, ann, f"{API}/groups/{gid}/members?limit=2")
    assert [m["athlete"]["id"] for m in items] == joined
    outsider, _ = login("outsider")
    assert len(client.get(f"{API}/groups/{gid}/members", headers=outsider).json["items"]) == 6  # open group


# --- feed -----------------------------------------------------------------------------------------------


def test_feed_newest_first_with_cursor_and_hidden_posts(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    _cat, cat_id = login("cat")
    gid = make_group(client, ann)["id"]
    other = make_group(client, ann, name="Other")["id"]
    client.post(f"{API}/groups/{gid}/join", headers=bob)
    ids = [add_post(ann_id if i % 2 else bob_id, gid, f"post {i}") for i in range(5)]
    add_post(ann_id, other, "elsewhere")
    add_post(ann_id, None, "not in a group")
    own_private = add_post(bob_id, gid, "note to self", visibility="only_me")
    blocked_post = add_post(cat_id, gid, "from cat")
    client.post(f"{API}/users/{cat_id}/block", headers=bob)

    stranger, _ = login("stranger")  # open group: anyone reads
    page = client.get(f"{API}/groups/{gid}/feed?limit=2", headers=stranger).json
    assert [p["id"] for p in page["items"]] == [blocked_post, ids[4]]
    assert page["items"][1]["athlete"]["id"] == bob_id and page["items"][1]["group_id"] == gid
    # A post arriving between pages doesn't shift the next one.
    late = add_post(ann_id, gid, "late")
    rest = client.get(f"{API}/groups/{gid}/feed?limit=2&cursor={page['next_cursor']}", headers=stranger).json
    assert [p["id"] for p in rest["items"]] == [ids[3], ids[2]]
    every = [p["id"] for p in walk(client, stranger, f"{API}/groups/{gid}/feed?limit=3")]
    assert every == [late, blocked_post, *reversed(ids)]
    # The author sees their only_me post; a blocker doesn't see the blocked athlete's posts.
    bobs = [p["id"] for p in walk(client, bob, f"{API}/groups/{gid}/feed")]
    assert own_private in bobs and blocked_post not in bobs
    assert client.get(f"{API}/groups/{gid}/feed?cursor=nope", headers=bob).status_code == 400


# --- leaderboard ----------------------------------------------------------------------------------------


def _activity(client, headers, start: datetime, *, distance: float, seconds: float, sport: str = "running",
              visibility: str = "everyone") -> int:
    resp = client.post(f"{API}/activities", headers=headers, json={
        "sport_type": sport, "start_date": start.isoformat(), "elapsed_time_s": seconds, "distance_m": distance,
        "visibility": visibility})
    assert resp.status_code == 201, resp.json
    return resp.json["id"]


def test_leaderboard_counts_this_weeks_shared_activities_of_active_members(client, login):
    now = datetime.now(UTC)
    week = iso_week_start(now)
    this_week = week + (now - week) / 2
    last_week = week - timedelta(hours=1)
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    cat, cat_id = login("cat")
    out, _ = login("out")
    pen, _ = login("pen")
    gid = make_group(client, ann)["id"]
    for h in (bob, cat):
        client.post(f"{API}/groups/{gid}/join", headers=h)

    _activity(client, ann, this_week, distance=5000, seconds=1500)
    _activity(client, ann, this_week, distance=3000, seconds=900, visibility="followers")
    _activity(client, bob, this_week, distance=20000, seconds=2400, sport="cycling")
    _activity(client, bob, last_week, distance=90000, seconds=9000, sport="cycling")  # last week: no
    hidden = _activity(client, cat, this_week, distance=50000, seconds=600, visibility="only_me")  # only_me: no
    _activity(client, out, this_week, distance=99000, seconds=9900)  # not a member: no

    board = client.get(f"{API}/groups/{gid}/leaderboard", headers=out)
    assert board.status_code == 200
    body = board.json
    assert body["metric"] == "distance" and body["sport_type"] is None
    assert datetime.fromisoformat(body["week_start"]) == week
    assert datetime.fromisoformat(body["week_end"]) == week + timedelta(days=7)
    # "out" doesn't follow ann: her followers-only activity isn't counted for them.
    assert [(e["rank"], e["athlete"]["id"], e["value"], e["activity_count"]) for e in body["entries"]] == [
        (1, bob_id, 20000.0, 1), (2, ann_id, 5000.0, 1)]
    assert body["entries"][0]["athlete"]["display_name"] == "bob"

    by_time = client.get(f"{API}/groups/{gid}/leaderboard?metric=moving_time", headers=ann).json["entries"]
    assert [(e["athlete"]["id"], e["value"]) for e in by_time] == [(ann_id, 2400.0), (bob_id, 2400.0)]
    assert [e["rank"] for e in by_time] == [1, 1]  # equal totals share a rank
    runs = client.get(f"{API}/groups/{gid}/leaderboard?sport_type=running", headers=ann).json["entries"]
    assert [e["athlete"]["id"] for e in runs] == [ann_id]
    assert client.get(f"{API}/groups/{gid}/leaderboard?metric=elevation", headers=ann).status_code == 422

    # Once cat shares that activity she leads; leaving the group takes her off again.
    client.patch(f"{API}/activities/{hidden}", headers=cat, json={"visibility": "everyone"})
    top = client.get(f"{API}/groups/{gid}/leaderboard", headers=ann).json["entries"][0]
    assert (top["rank"], top["athlete"]["id"], top["value"]) == (1, cat_id, 50000.0)
    client.post(f"{API}/groups/{gid}/leave", headers=cat)
    assert cat_id not in [e["athlete"]["id"] for e in client.get(f"{API}/groups/{gid}/leaderboard",
                                                                   headers=ann).json["entries"]]
    # Pending members of an approval group don't count either.
    closed = make_group(client, ann, name="Closed", join_policy="approval")["id"]
    client.post(f"{API}/groups/{closed}/join", headers=pen)
    _activity(client, pen, this_week, distance=7000, seconds=2000)
    assert [e["athlete"]["id"] for e in client.get(f"{API}/groups/{closed}/leaderboard", headers=ann).json[
        "entries"]] == [ann_id]


def test_leaderboard_leaves_out_athletes_hidden_from_leaderboards(client, login):
    now = datetime.now(UTC)
    week = iso_week_start(now)
    ann, ann_id = login("ann")
    bob, _bob_id = login("bob")
    gid = make_group(client, ann)["id"]
    client.post(f"{API}/groups/{gid}/join", headers=bob)
    _activity(client, ann, week + (now - week) / 2, distance=1000, seconds=300)
    _activity(client, bob, week + (now - week) / 2, distance=2000, seconds=600)
    assert client.patch(f"{API}/me/preferences", headers=bob, json={"hide_from_leaderboards": True}
                        ).status_code == 200
    entries = client.get(f"{API}/groups/{gid}/leaderboard", headers=ann).json["entries"]
    assert [(e["rank"], e["athlete"]["id"]) for e in entries] == [(1, ann_id)]


# --- pure helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "monday"), [
    (datetime(2026, 11, 18, 15, 30, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC)),  # a Wednesday
    (datetime(2026, 11, 16, 0, 0, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC)),  # Monday midnight itself
    (datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC)),  # Sunday night
    # Monday 00:30 in Ljubljana is still Sunday in UTC: the week is the UTC one.
    (datetime(2026, 11, 23, 0, 30, tzinfo=timezone(timedelta(hours=1))), datetime(2026, 11, 16, tzinfo=UTC)),
])
def test_iso_week_start_is_monday_midnight_utc(now, monday):
    assert iso_week_start(now) == monday


def test_competition_ranks_share_ties():
    assert competition_ranks([9.0, 5.0, 5.0, 1.0]) == [1, 2, 2, 4]
    assert competition_ranks([]) == []
