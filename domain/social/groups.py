"""Group rules: who may see, join, run and read a group.

Seeing: every group's card (name, description, policy, member count) is public, for approval groups too, so
athletes can find a club and ask to join. The exception is an athlete in a block with the owner (either
way): for them the group does not exist (404 everywhere, discovery included), which is also why they can't
join. A block hides everything both ways, and a 404 doesn't tell a blocked athlete who blocked them.

Reading: the discussion (posts with this ``group_id``), the member list and the weekly leaderboard are open
to anyone for open groups and to active members only for approval groups; everyone else gets 404.

Running: exactly one ``owner`` (mirrored in ``groups.owner_id``), any number of ``admin``s. Owner and admins
approve, decline and remove (admins can't remove the owner or other admins); only the owner changes roles,
hands over ownership and deletes the group. Every management write locks the group row first, so two of them
on one group never interleave (e.g. a transfer of ownership and the new owner leaving).

``groups.member_count`` is kept exact by a database trigger on ``group_members``: this module only changes
membership rows and re-reads the group (``populate_existing``) to return the new count.

The ids and roles here are meant to be reused as they are by a group conversation later: its participants
are the active members and its moderators the owner and admins.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import aliased

from domain.errors import refuse
from domain.notifications.outbox import notify
from domain.pagination import decode_cursor, encode_cursor
from domain.privacy.public_view import shown_figure_sql
from domain.visibility import not_blocked_with, seen_counts, unseen_counts, visible_sql
from models import Activity, Group, GroupMember, Post, Preferences, User, db
from models.db import rowcount, table_of

OWNER, ADMIN, MEMBER = "owner", "admin", "member"
MANAGERS = (OWNER, ADMIN)
ACTIVE, PENDING = "active", "pending"
OPEN, APPROVAL = "open", "approval"
#: Board metric → the activity figure summed (as the viewer is shown it: see ``shown_figure_sql``).
METRIC_COLUMNS = {"distance": "distance_m", "moving_time": "moving_time_s"}


# --- lookups -------------------------------------------------------------------------------------------


def _load_group(group_id: int, *, lock: bool = False) -> Group | None:
    """The group as stored right now: ``populate_existing`` picks up the trigger-maintained member_count."""
    stmt = select(Group).where(Group.id == group_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt)


def membership(group_id: int, user_id: int) -> GroupMember | None:
    return db.session.scalar(
        select(GroupMember).where(GroupMember.group_id == group_id, GroupMember.user_id == user_id)
        .execution_options(populate_existing=True))


def _hidden_by_block(viewer: User, group: Group) -> bool:
    if group.owner_id == viewer.id:
        return False
    return not db.session.scalar(select(not_blocked_with(viewer.id, group.owner_id)))


def get_visible(viewer: User, group_id: int, *, lock: bool = False) -> Group:
    group = _load_group(group_id, lock=lock)
    if group is None or _hidden_by_block(viewer, group):
        refuse(404, "Group not found.")
    return group


def can_read(group: Group, member: GroupMember | None) -> bool:
    """Discussion, members and board: anyone for open groups, active members for approval groups."""
    return group.join_policy == OPEN or (member is not None and member.status == ACTIVE)


def get_readable(viewer: User, group_id: int) -> tuple[Group, GroupMember | None]:
    group = get_visible(viewer, group_id)
    member = membership(group.id, viewer.id)
    if not can_read(group, member):
        refuse(404, "Not found: this group's discussion, members and leaderboard are for its members.")
    return group, member


def _require_manager(viewer: User, group: Group) -> GroupMember:
    member = membership(group.id, viewer.id)
    if member is None or member.status != ACTIVE or member.role not in MANAGERS:
        refuse(403, "Only the group's owner and admins can do this.")
    return member


def _require_owner(viewer: User, group: Group) -> GroupMember:
    member = _require_manager(viewer, group)
    if member.role != OWNER:
        refuse(403, "Only the group's owner can do this.")
    return member


def _manager_ids(group_id: int) -> list[int]:
    return list(db.session.scalars(select(GroupMember.user_id).where(
        GroupMember.group_id == group_id, GroupMember.status == ACTIVE, GroupMember.role.in_(MANAGERS))))


# --- serialization -------------------------------------------------------------------------------------


def _athlete(user: User | Any) -> dict[str, Any]:
    return {"id": user.id, "display_name": user.display_name, "avatar_url": user.avatar_url}


def _group_dict(group: Group, owner: User | None, member: GroupMember | None) -> dict[str, Any]:
    out: dict[str, Any] = {c: getattr(group, c) for c in (
        "id", "name", "description", "join_policy", "sport_type", "avatar_url", "member_count", "created_at",
        "updated_at")}
    out["owner"] = _athlete(owner) if owner is not None else None
    out["membership"] = {"role": member.role, "status": member.status} if member is not None else None
    return out


def serialize(viewer: User, group: Group) -> dict[str, Any]:
    return _group_dict(group, db.session.get(User, group.owner_id), membership(group.id, viewer.id))


def _serialize_many(viewer: User, groups: list[Group]) -> list[dict[str, Any]]:
    """One query for the owners and one for the viewer's memberships, whatever the page size."""
    if not groups:
        return []
    owner_ids = {g.owner_id for g in groups}
    owners = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(owner_ids)))}
    mine = {m.group_id: m for m in db.session.scalars(select(GroupMember).where(
        GroupMember.user_id == viewer.id, GroupMember.group_id.in_([g.id for g in groups])))}
    return [_group_dict(g, owners.get(g.owner_id), mine.get(g.id)) for g in groups]


def _member_dict(user: User | Any, member: GroupMember) -> dict[str, Any]:
    return {"athlete": _athlete(user), "role": member.role, "status": member.status, "since": member.created_at}


# --- groups --------------------------------------------------------------------------------------------


def create(viewer: User, data: dict[str, Any]) -> dict[str, Any]:
    group = Group(owner_id=viewer.id, name=data["name"].strip(), description=data.get("description") or "",
                  join_policy=data.get("join_policy") or OPEN, sport_type=data.get("sport_type"),
                  avatar_url=data.get("avatar_url"))
    db.session.add(group)
    db.session.flush()
    db.session.add(GroupMember(group_id=group.id, user_id=viewer.id, role=OWNER, status=ACTIVE))
    db.session.commit()
    return serialize(viewer, _load_group(group.id) or group)


def describe(viewer: User, group_id: int) -> dict[str, Any]:
    return serialize(viewer, get_visible(viewer, group_id))


def update(viewer: User, group_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Edit the group (owner/admins). Opening an approval group admits everyone waiting, as the
    policy they asked under no longer applies."""
    group = get_visible(viewer, group_id, lock=True)
    _require_manager(viewer, group)
    opening = changes.get("join_policy") == OPEN and group.join_policy == APPROVAL
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    for key, value in changes.items():
        setattr(group, key, value)
    if opening:
        admitted = db.session.scalars(
            table_of(GroupMember).update()
            .where(GroupMember.group_id == group.id, GroupMember.status == PENDING)
            .values(status=ACTIVE).returning(GroupMember.user_id))
        for user_id in list(admitted):
            _notify_joined(user_id, viewer, group)
    db.session.commit()
    return serialize(viewer, _load_group(group.id) or group)


def delete(viewer: User, group_id: int) -> None:
    """Delete the group (owner only); memberships, its posts and its notifications go with it (FK cascades)."""
    group = get_visible(viewer, group_id, lock=True)
    _require_owner(viewer, group)
    db.session.delete(group)
    db.session.commit()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def discover(viewer: User, q: str | None, sport_type: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
    """Public discovery, most members first (keyset on member_count, id); ``q`` filters on the name."""
    query = select(Group).where(not_blocked_with(viewer.id, Group.owner_id))
    if q and q.strip():
        query = query.where(Group.name.ilike(f"%{_escape_like(q.strip())}%", escape="\\"))
    if sport_type:
        query = query.where(Group.sport_type == sport_type)
    after = decode_cursor(cursor, 2)
    if after is not None:
        count, last_id = int(after[0]), int(after[1])
        query = query.where(or_(Group.member_count < count, and_(Group.member_count == count, Group.id < last_id)))
    rows = list(db.session.scalars(query.order_by(Group.member_count.desc(), Group.id.desc()).limit(limit + 1)
                                   .execution_options(populate_existing=True)))
    next_cursor = encode_cursor(rows[limit - 1].member_count, rows[limit - 1].id) if len(rows) > limit else None
    return {"items": _serialize_many(viewer, rows[:limit]), "next_cursor": next_cursor}


def my_groups(viewer: User, cursor: str | None, limit: int) -> dict[str, Any]:
    """The viewer's groups, pending requests included, most recently joined first."""
    query = select(Group, GroupMember.created_at).join(GroupMember, GroupMember.group_id == Group.id).where(
        GroupMember.user_id == viewer.id, not_blocked_with(viewer.id, Group.owner_id))
    after = decode_cursor(cursor, 2)
    if after is not None:
        ts, last_id = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(GroupMember.created_at < ts, and_(GroupMember.created_at == ts, Group.id < last_id)))
    rows = db.session.execute(query.order_by(GroupMember.created_at.desc(), Group.id.desc()).limit(limit + 1)
                              .execution_options(populate_existing=True)).all()
    next_cursor = None
    if len(rows) > limit:
        last_group, since = rows[limit - 1]
        next_cursor = encode_cursor(since.isoformat(), last_group.id)
    return {"items": _serialize_many(viewer, [g for g, _ in rows[:limit]]), "next_cursor": next_cursor}


# --- membership ----------------------------------------------------------------------------------------


def _notify_joined(user_id: int, actor: User, group: Group) -> None:
    # One key per (group, athlete): retries and leave/re-join loops can't turn into a stream of notifications.
    notify(user_id, "group_joined", f"group_joined:{group.id}", actor_id=actor.id, group_id=group.id,
           payload={"group_name": group.name, "display_name": actor.display_name})


def join(viewer: User, group_id: int) -> dict[str, Any]:
    """Join an open group at once, or ask to join an approval group (each owner/admin is notified).

    Joining again is a no-op that keeps the existing membership (an active member never turns pending).
    """
    group = get_visible(viewer, group_id)
    status = ACTIVE if group.join_policy == OPEN else PENDING
    stmt = insert(GroupMember).values(group_id=group.id, user_id=viewer.id, role=MEMBER, status=status)
    created = rowcount(db.session.execute(stmt.on_conflict_do_nothing()))
    if created and status == PENDING:
        for manager_id in _manager_ids(group.id):
            notify(manager_id, "group_join_request", f"group_join_request:{group.id}:{viewer.id}",
                   actor_id=viewer.id, group_id=group.id,
                   payload={"group_name": group.name, "display_name": viewer.display_name})
    db.session.commit()
    return serialize(viewer, _load_group(group.id) or group)


def leave(viewer: User, group_id: int) -> None:
    """Leave, or withdraw a pending request. Idempotent for non-members.

    No visibility check on purpose: an athlete the owner blocked after they joined must still be able to go.
    """
    group = _load_group(group_id, lock=True)
    if group is None:
        refuse(404, "Group not found.")
    member = membership(group.id, viewer.id)
    if member is None:
        return
    if member.role == OWNER:
        refuse(422, "The owner can't leave: hand ownership to another member first "
                           "(PATCH /groups/{id}/members/{user_id} with role owner), or delete the group.")
    db.session.delete(member)
    db.session.commit()


def approve(viewer: User, group_id: int, user_id: int) -> dict[str, Any]:
    group = get_visible(viewer, group_id, lock=True)
    _require_manager(viewer, group)
    member = membership(group.id, user_id)
    if member is None or member.status != PENDING:
        refuse(404, "No pending request from this athlete.")
    member.status = ACTIVE
    _notify_joined(user_id, viewer, group)
    db.session.commit()
    return _member_dict(db.session.get(User, user_id), member)


def remove_member(viewer: User, group_id: int, user_id: int) -> None:
    """Decline a request or remove a member (owner/admins; admins can't remove the owner or other admins)."""
    group = get_visible(viewer, group_id, lock=True)
    actor = _require_manager(viewer, group)
    if user_id == viewer.id:
        refuse(422, "To leave the group use POST /groups/{id}/leave.")
    member = membership(group.id, user_id)
    if member is None:
        refuse(404, "This athlete is not a member of the group and has no pending request.")
    if actor.role == ADMIN and member.role in MANAGERS:
        refuse(403, "Admins can't remove the owner or other admins.")
    db.session.delete(member)
    db.session.commit()


def set_role(viewer: User, group_id: int, user_id: int, role: str) -> dict[str, Any]:
    """Owner only: make an active member admin or member, or hand over ownership (old owner → admin)."""
    group = get_visible(viewer, group_id, lock=True)
    actor = _require_owner(viewer, group)
    if user_id == viewer.id:
        refuse(422, "The owner's role changes only by handing ownership to another member.")
    member = membership(group.id, user_id)
    if member is None:
        refuse(404, "This athlete is not a member of the group.")
    if member.status != ACTIVE:
        refuse(422, "Approve the athlete's request before giving them a role.")
    if role == OWNER:
        actor.role = ADMIN
        group.owner_id = member.user_id
    member.role = role
    db.session.commit()
    return _member_dict(db.session.get(User, user_id), member)


def members(viewer: User, group_id: int, status: str, cursor: str | None, limit: int) -> dict[str, Any]:
    """Members (or, for owner/admins, pending requests) in joining order; keyset on (created_at, user id)."""
    group, _ = get_readable(viewer, group_id)
    if status == PENDING:
        _require_manager(viewer, group)
    query = (select(User, GroupMember).join(GroupMember, GroupMember.user_id == User.id)
             .where(GroupMember.group_id == group.id, GroupMember.status == status,
                    or_(User.id == viewer.id, not_blocked_with(viewer.id, User.id))))
    after = decode_cursor(cursor, 2)
    if after is not None:
        ts, last_id = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(GroupMember.created_at > ts, and_(GroupMember.created_at == ts, User.id > last_id)))
    rows = db.session.execute(query.order_by(GroupMember.created_at, User.id).limit(limit + 1)
                              .execution_options(populate_existing=True)).all()
    next_cursor = None
    if len(rows) > limit:
        last_user, last_member = rows[limit - 1]
        next_cursor = encode_cursor(last_member.created_at.isoformat(), last_user.id)
    return {"items": [_member_dict(u, m) for u, m in rows[:limit]], "next_cursor": next_cursor}


# --- reading -------------------------------------------------------------------------------------------


def feed(viewer: User, group_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    """The group's posts, newest first (keyset on created_at, id).

    A group post is addressed to the group's audience (checked by ``get_readable``), so its author's private
    account doesn't narrow it further; the shared rule then leaves out posts across a block with the viewer
    (group posts are stored as ``everyone``). A shared activity's id is given only to viewers who may see that
    activity: sharing never widens an activity's audience.
    """
    group, _ = get_readable(viewer, group_id)
    owner = aliased(User, name="shared_owner")
    shared_visible = and_(Activity.id.is_not(None), visible_sql(viewer.id, Activity.user_id, Activity.visibility,
                                                                 owner.is_private))
    query = (select(Post, User, shared_visible.label("shared_visible")).join(User, User.id == Post.user_id)
             .outerjoin(Activity, Activity.id == Post.activity_id)
             .outerjoin(owner, owner.id == Activity.user_id)
             .where(Post.group_id == group.id, visible_sql(viewer.id, Post.user_id, Post.visibility, False)))
    after = decode_cursor(cursor, 2)
    if after is not None:
        ts, last_id = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(Post.created_at < ts, and_(Post.created_at == ts, Post.id < last_id)))
    rows = db.session.execute(query.order_by(Post.created_at.desc(), Post.id.desc()).limit(limit + 1)).all()
    unseen = unseen_counts(viewer.id, "post", [p.id for p, _, _ in rows[:limit]])
    items = [{"id": p.id, "athlete": _athlete(u), "group_id": p.group_id, "text": p.text,
              "activity_id": p.activity_id if shared else None, **seen_counts(viewer.id, "post", p, unseen),
              "created_at": p.created_at, "updated_at": p.updated_at}
             for p, u, shared in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last_post = rows[limit - 1][0]
        next_cursor = encode_cursor(last_post.created_at.isoformat(), last_post.id)
    return {"items": items, "next_cursor": next_cursor}


def iso_week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week containing ``now``."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def competition_ranks(values: list[float]) -> list[int]:
    """1-based ranks of values sorted highest first; equal values share a rank ("1, 1, 3")."""
    ranks: list[int] = []
    for i, value in enumerate(values):
        ranks.append(ranks[-1] if i and value == values[i - 1] else i + 1)
    return ranks


def leaderboard(viewer: User, group_id: int, sport_type: str | None, metric: str, limit: int,
                now: datetime | None = None) -> dict[str, Any]:
    """This ISO week's totals per active member, highest first.

    Counts only the activities this viewer may see (the shared rule: never ``only_me`` ones, ``followers``
    ones and a private account's only for accepted followers, nothing across a block), so a board readable
    by non-members tells them no more than the athletes' activity lists do. Members who chose
    ``hide_from_leaderboards`` are left out before ranking, so ranks have no gaps that would hint at them.
    Members without a counted activity this week aren't listed. A board compares what athletes share, so
    ``only_me`` activities don't count even on their owner's own view of it.
    """
    group, _ = get_readable(viewer, group_id)
    start = iso_week_start(now or datetime.now(UTC))
    end = start + timedelta(days=7)
    value = func.coalesce(func.sum(shown_figure_sql(METRIC_COLUMNS[metric], viewer.id)), 0.0).label("value")
    count = func.count(Activity.id).label("activity_count")
    query = (
        select(User.id, User.display_name, User.avatar_url, value, count)
        .select_from(Activity)
        .join(GroupMember, and_(GroupMember.user_id == Activity.user_id, GroupMember.group_id == group.id,
                                GroupMember.status == ACTIVE))
        .join(User, User.id == Activity.user_id)
        .join(Preferences, Preferences.user_id == User.id)
        .where(Activity.start_time >= start, Activity.start_time < end,
               Preferences.hide_from_leaderboards.is_(False), Activity.visibility != "only_me",
               visible_sql(viewer.id, Activity.user_id, Activity.visibility, User.is_private))
        .group_by(User.id, User.display_name, User.avatar_url)
    )
    if sport_type:
        query = query.where(Activity.sport_type == sport_type)
    rows = db.session.execute(query.order_by(value.desc(), User.id).limit(limit)).all()
    ranks = competition_ranks([float(r.value) for r in rows])
    entries = [{"rank": rank, "athlete": {"id": r.id, "display_name": r.display_name, "avatar_url": r.avatar_url},
                "value": float(r.value), "activity_count": int(r.activity_count)}
               for rank, r in zip(ranks, rows, strict=True)]
    return {"metric": metric, "sport_type": sport_type, "week_start": start, "week_end": end, "entries": entries}
