"""Chat rules, shared by the REST views and the socket frames (both thin: they only translate ``ChatError``).

Who sees what: only members read or write a conversation; for anyone else it does not exist (404), like
everything else in the API one may not see. Who may message whom (:func:`refusal`): anyone with a public
account, unless either blocked the other; a private account only people it follows or whose follow it accepted.
That rule gates starting a direct conversation and being added to a group conversation; across a block the other
athlete doesn't exist there (404, or "unknown" in a list of members), as everywhere else. Afterwards a block
(either way) stops a direct conversation (403 on send) but not a group one: a group message goes to the whole
group, and ``notify`` already writes nothing across a block.

Direct conversations: one per pair (unique ordered pair), nobody leaves or joins them; mute instead.
Group conversations: the creator is the first admin; admins rename, add, remove and promote; anyone leaves;
the last admin leaving promotes the longest-standing member; the last member leaving deletes the conversation.
A group's chat (``group_id``) is created by the group's owner or an admin, and its membership and admins mirror
the group's (a trigger on ``group_members``): it can't be joined, left or managed here — only through the group.

Messages: committed before they are published (``publish_on_commit``), idempotent on ``(sender, client_id)``,
and numbered under a global lock held until commit (:data:`SEND_LOCK`) so that commit order equals id order:
without it a message could commit after a later-numbered one was already delivered, and a client catching up
"after its last seen id" would skip it for good. The cursor is global (``chat.sync`` reads every conversation of
the user after one id), so a per-conversation lock would not do. Sending is the hot path of the socket: it runs
three statements built once (:data:`_SEND_CHECKS`, :data:`_SEND_WRITE`, then ``notify_many``'s insert), so the
lock is held for two statements and the commit (ORM statements and one ``notify`` per member cost 4-10 times
the CPU per send, most of it building SQL in Python).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import redis
from flask import current_app
from sqlalchemy import BigInteger, and_, delete, func, literal_column, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from domain.errors import Refusal
from domain.notifications.outbox import notify_many
from domain.pagination import decode_cursor, encode_cursor
from domain.visibility import as_sql_text, not_blocked_with
from models import Group, GroupMember, User, db
from models.chat import ADMIN, DIRECT, GROUP, MEMBER, Conversation, ConversationMember, Message
from models.pubsub import publish_on_commit, pubsub
from models.ratelimit import over_budget
from models.redis_store import redis_store
from models.social import is_blocked_either_way, is_follower

log = logging.getLogger(__name__)

#: pg_advisory_xact_lock key serialising message numbering with commit ("chat" in ASCII).
SEND_LOCK = 0x63686174
#: Members shown per conversation in the list (the single-conversation view shows all).
LIST_MEMBERS = 10
PREVIEW_CHARS = 140


class ChatError(Refusal):
    """A refusal of the chat service; ``field`` names the request field it is about, ``retry_after`` the seconds
    to wait on 429. The web layer answers it as JSON, the socket as an ``error`` frame."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(status, message, code=code,
                         errors={"json": {field: [message]}} if field else None,
                         headers={"Retry-After": str(retry_after)} if retry_after is not None else None)
        self.field = field
        self.retry_after = retry_after


def _not_found() -> ChatError:
    return ChatError(404, "not_found", "Conversation not found.")


# --- who may message whom ------------------------------------------------------------------------------


def refusal(actor_id: int, target: User) -> str | None:
    """Why ``actor`` may not start a conversation with (or add) ``target``; None when they may."""
    if is_blocked_either_way(actor_id, target.id):
        return "You can't message this athlete: one of you has blocked the other."
    if target.is_private and not (is_follower(target.id, actor_id) or is_follower(actor_id, target.id)):
        return ("This athlete's account is private: they accept messages only from people they follow or whose "
                "follow request they accepted.")
    return None


def _user_or_404(user_id: int, viewer_id: int | None = None) -> User:
    """The athlete, or 404 when absent or (given the viewer) in a block with the viewer: a block hides the
    account on every path, so starting a conversation can't tell a blocked athlete that the other exists."""
    user = db.session.get(User, user_id)
    if user is None or (viewer_id is not None and is_blocked_either_way(viewer_id, user.id)):
        raise ChatError(404, "not_found", "Athlete not found.", field="user_id")
    return user


# --- lookups and serialization -------------------------------------------------------------------------


def _membership(conversation_id: int, user_id: int, *, lock: bool = False) -> tuple[Conversation, ConversationMember]:
    """The conversation and the viewer's membership; 404 for non-members. ``lock``: the conversation row."""
    stmt = (select(Conversation, ConversationMember)
            .join(ConversationMember, ConversationMember.conversation_id == Conversation.id)
            .where(Conversation.id == conversation_id, ConversationMember.user_id == user_id)
            .execution_options(populate_existing=True))
    if lock:
        stmt = stmt.with_for_update(of=Conversation)
    row = db.session.execute(stmt).first()
    if row is None:
        raise _not_found()
    return row[0], row[1]


def _athlete(user: Any) -> dict[str, Any]:
    return {"id": user.id, "display_name": user.display_name, "avatar_url": user.avatar_url}


def _message_dict(message: Message, sender: Any) -> dict[str, Any]:
    return {"id": message.id, "conversation_id": message.conversation_id, "sender": _athlete(sender),
            "client_id": message.client_id, "body": message.body, "created_at": message.created_at}


def message_json(message: dict[str, Any]) -> dict[str, Any]:
    """The REST message JSON (what ``MessageSchema`` dumps; a test keeps the two equal), for frames. Built by
    hand: every send makes it twice (the ack and the published frame) and marshmallow's dump costs ~20 times as
    much."""
    sender = message["sender"]
    created_at = message["created_at"]
    return {"id": message["id"], "conversation_id": message["conversation_id"],
            "sender": {"id": sender["id"], "display_name": sender["display_name"],
                       "avatar_url": sender["avatar_url"]},
            "client_id": message["client_id"], "body": message["body"],
            "created_at": created_at.isoformat() if created_at is not None else None}


def _messages(stmt: Any) -> list[dict[str, Any]]:
    """Rows of (Message, User) → message dicts, in the statement's order."""
    return [_message_dict(m, u) for m, u in db.session.execute(stmt).all()]


def _with_sender(query: Any) -> Any:
    return query.join(User, User.id == Message.sender_id)


def _member_dicts(conversation_ids: list[int], per_conversation: int | None) -> dict[int, list[dict[str, Any]]]:
    ranked = select(ConversationMember, User, func.row_number().over(
        partition_by=ConversationMember.conversation_id,
        order_by=(ConversationMember.joined_at, ConversationMember.user_id)).label("n")).join(
        User, User.id == ConversationMember.user_id).where(
        ConversationMember.conversation_id.in_(conversation_ids)).subquery()
    member_cls = ranked.c
    stmt = select(member_cls.conversation_id, member_cls.role, member_cls.last_read_message_id, member_cls.joined_at,
                  member_cls.id, member_cls.display_name, member_cls.avatar_url)
    if per_conversation is not None:
        stmt = stmt.where(member_cls.n <= per_conversation)
    out: dict[int, list[dict[str, Any]]] = {cid: [] for cid in conversation_ids}
    for row in db.session.execute(stmt.order_by(member_cls.conversation_id, member_cls.n)):
        out[row.conversation_id].append({
            "athlete": {"id": row.id, "display_name": row.display_name, "avatar_url": row.avatar_url},
            "role": row.role, "last_read_message_id": row.last_read_message_id, "joined_at": row.joined_at})
    return out


def _conversation_dicts(viewer_id: int, rows: list[tuple[Conversation, ConversationMember]], *,
                        all_members: bool = False) -> list[dict[str, Any]]:
    """One query each for members, member counts, last messages and unread counts, whatever the page size."""
    if not rows:
        return []
    ids = [c.id for c, _ in rows]
    members = _member_dicts(ids, None if all_members else LIST_MEMBERS)
    counts = dict(db.session.execute(select(ConversationMember.conversation_id, func.count()).where(
        ConversationMember.conversation_id.in_(ids)).group_by(ConversationMember.conversation_id)).all())
    last_ids = [c.last_message_id for c, _ in rows if c.last_message_id]
    last = {m["conversation_id"]: m for m in _messages(
        _with_sender(select(Message, User)).where(Message.id.in_(last_ids)))} if last_ids else {}
    me = ConversationMember
    unread = dict(db.session.execute(
        select(Message.conversation_id, func.count())
        .join(me, and_(me.conversation_id == Message.conversation_id, me.user_id == viewer_id))
        .where(Message.conversation_id.in_(ids), Message.id > me.last_read_message_id,
               Message.sender_id != viewer_id)
        .group_by(Message.conversation_id)).all())
    return [{
        "id": c.id, "kind": c.kind, "name": c.name, "group_id": c.group_id, "member_count": counts.get(c.id, 0),
        "members": members[c.id], "last_message": last.get(c.id), "last_activity_at": c.last_activity_at,
        "unread_count": unread.get(c.id, 0), "last_read_message_id": m.last_read_message_id, "role": m.role,
        "muted": m.muted, "created_at": c.created_at,
    } for c, m in rows]


def describe(viewer_id: int, conversation_id: int) -> dict[str, Any]:
    return _conversation_dicts(viewer_id, [_membership(conversation_id, viewer_id)], all_members=True)[0]


def member_ids(conversation_id: int) -> list[int]:
    return list(db.session.scalars(select(ConversationMember.user_id).where(
        ConversationMember.conversation_id == conversation_id)))


def _publish_members(conversation_id: int, action: str, user_ids: list[int], actor_id: int,
                     also: tuple[int, ...] = ()) -> None:
    frame = {"type": "chat.member", "conversation_id": conversation_id, "action": action, "user_ids": user_ids,
             "actor_id": actor_id}
    publish_on_commit(db.session(), [*member_ids(conversation_id), *also], frame)


# --- conversations -------------------------------------------------------------------------------------


def create_direct(viewer: User, other_id: int) -> tuple[dict[str, Any], bool]:
    """The pair's conversation: (existing, False) or (new, True). Unique pair, so concurrent starts make one."""
    if other_id == viewer.id:
        raise ChatError(422, "invalid", "A direct conversation needs another athlete.", field="user_id")
    other = _user_or_404(other_id, viewer.id)
    low, high = sorted((viewer.id, other.id))
    existing = db.session.scalar(select(Conversation.id).where(
        Conversation.user_low_id == low, Conversation.user_high_id == high))
    if existing is not None:
        return describe(viewer.id, existing), False
    reason = refusal(viewer.id, other)
    if reason:
        raise ChatError(403, "forbidden", reason)
    new_id = db.session.scalar(
        insert(Conversation).values(kind=DIRECT, user_low_id=low, user_high_id=high, created_by_id=viewer.id)
        .on_conflict_do_nothing(index_elements=["user_low_id", "user_high_id"]).returning(Conversation.id))
    if new_id is None:  # the other athlete started it at the same moment
        db.session.rollback()
        existing = db.session.scalar(select(Conversation.id).where(
            Conversation.user_low_id == low, Conversation.user_high_id == high))
        if existing is None:  # pragma: no cover - the conflicting row was committed, so it exists
            raise ChatError(409, "conflict", "The conversation could not be started; retry.")
        return describe(viewer.id, existing), False
    db.session.execute(insert(ConversationMember), [
        {"conversation_id": new_id, "user_id": uid, "role": MEMBER} for uid in (low, high)])
    db.session.commit()
    return describe(viewer.id, new_id), True


def create_group(viewer: User, name: str, ids: list[int]) -> dict[str, Any]:
    """A group conversation: the creator (admin) and ``ids``, each checked with :func:`refusal`."""
    wanted = list(dict.fromkeys(i for i in ids if i != viewer.id))
    limit = current_app.config["CHAT_MAX_GROUP_MEMBERS"]
    if len(wanted) + 1 > limit:
        raise ChatError(422, "too_many_members", f"A group conversation has at most {limit} members.",
                        field="member_ids")
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(wanted)))} if wanted else {}
    # An athlete in a block with the creator is as unknown to them as one who doesn't exist.
    unknown = [i for i in wanted if i not in users or is_blocked_either_way(viewer.id, i)]
    if unknown:
        raise ChatError(422, "invalid", f"Unknown athletes: {', '.join(map(str, unknown))}.", field="member_ids")
    for uid in wanted:
        reason = refusal(viewer.id, users[uid])
        if reason:
            raise ChatError(403, "forbidden", f"Athlete {uid}: {reason}")
    conversation = Conversation(kind=GROUP, name=name.strip(), created_by_id=viewer.id)
    db.session.add(conversation)
    db.session.flush()
    db.session.execute(insert(ConversationMember), [
        {"conversation_id": conversation.id, "user_id": viewer.id, "role": ADMIN},
        *({"conversation_id": conversation.id, "user_id": uid, "role": MEMBER} for uid in wanted)])
    _publish_members(conversation.id, "added", [viewer.id, *wanted], viewer.id)
    db.session.commit()
    return describe(viewer.id, conversation.id)


def create_group_chat(viewer: User, group_id: int, name: str | None) -> tuple[dict[str, Any], bool]:
    """The chat of a group (owner/admins create it; one per group). Members follow the group from then on.

    The group row is locked first: a join in flight holds the FK's key-share lock on it, so it finishes before
    the members are copied, and a later join waits until the conversation is committed and its trigger sees it.
    """
    group = db.session.scalar(select(Group).where(Group.id == group_id).with_for_update())
    if group is None or (group.owner_id != viewer.id and is_blocked_either_way(viewer.id, group.owner_id)):
        raise ChatError(404, "not_found", "Group not found.", field="group_id")
    role = db.session.scalar(select(GroupMember.role).where(
        GroupMember.group_id == group.id, GroupMember.user_id == viewer.id, GroupMember.status == "active"))
    if role not in ("owner", "admin"):
        raise ChatError(403, "forbidden", "Only the group's owner and admins can create its chat.")
    existing = db.session.scalar(select(Conversation.id).where(Conversation.group_id == group.id))
    if existing is not None:
        db.session.rollback()
        return describe(viewer.id, existing), False
    conversation = Conversation(kind=GROUP, name=(name or group.name).strip(), group_id=group.id,
                                created_by_id=viewer.id)
    db.session.add(conversation)
    db.session.flush()
    db.session.execute(insert(ConversationMember), [
        {"conversation_id": conversation.id, "user_id": uid, "role": ADMIN if r in ("owner", "admin") else MEMBER}
        for uid, r in db.session.execute(select(GroupMember.user_id, GroupMember.role).where(
            GroupMember.group_id == group.id, GroupMember.status == "active")).all()])
    db.session.commit()
    return describe(viewer.id, conversation.id), True


def list_conversations(viewer_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    """The viewer's conversations, most recent activity first (keyset on last_activity_at, id)."""
    query = (select(Conversation, ConversationMember)
             .join(ConversationMember, ConversationMember.conversation_id == Conversation.id)
             .where(ConversationMember.user_id == viewer_id))
    after = decode_cursor(cursor, 2)
    if after is not None:
        try:
            ts, last_id = datetime.fromisoformat(str(after[0])), int(after[1])
        except (TypeError, ValueError):
            raise ChatError(400, "invalid_cursor", "Invalid cursor: pass back next_cursor unchanged.") from None
        query = query.where(or_(Conversation.last_activity_at < ts,
                                and_(Conversation.last_activity_at == ts, Conversation.id < last_id)))
    rows = [(c, m) for c, m in db.session.execute(
        query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit + 1)
        .execution_options(populate_existing=True)).all()]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor(last.last_activity_at.isoformat(), last.id)
    return {"items": _conversation_dicts(viewer_id, rows[:limit]), "next_cursor": next_cursor}


def update_conversation(viewer_id: int, conversation_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Rename (group conversations, admins) and/or mute for oneself."""
    conversation, me = _membership(conversation_id, viewer_id, lock="name" in changes)
    if "name" in changes:
        if conversation.kind == DIRECT:
            raise ChatError(422, "invalid", "A direct conversation has no name.", field="name")
        if me.role != ADMIN:
            raise ChatError(403, "forbidden", "Only the conversation's admins can rename it.")
        conversation.name = changes["name"].strip()
        _publish_members(conversation.id, "renamed", [], viewer_id)
    if "muted" in changes:
        me.muted = bool(changes["muted"])
    db.session.commit()
    return describe(viewer_id, conversation_id)


# --- messages ------------------------------------------------------------------------------------------


def history(viewer_id: int, conversation_id: int, before: int | None, after: int | None,
            limit: int) -> dict[str, Any]:
    """Newest first (default, ``before``) or oldest first (``after``), one more row fetched for has_more."""
    _membership(conversation_id, viewer_id)
    query = _with_sender(select(Message, User)).where(Message.conversation_id == conversation_id)
    if after is not None:
        query = query.where(Message.id > after).order_by(Message.id.asc())
    else:
        if before is not None:
            query = query.where(Message.id < before)
        query = query.order_by(Message.id.desc())
    items = _messages(query.limit(limit + 1))
    return {"items": items[:limit], "has_more": len(items) > limit}


def sync(viewer_id: int, after_id: int, limit: int) -> dict[str, Any]:
    """Every message after ``after_id`` in the viewer's conversations, oldest first (catch-up after a drop)."""
    query = (_with_sender(select(Message, User))
             .join(ConversationMember, and_(ConversationMember.conversation_id == Message.conversation_id,
                                            ConversationMember.user_id == viewer_id))
             .where(Message.id > after_id).order_by(Message.id.asc()).limit(limit + 1))
    items = _messages(query)
    return {"messages": items[:limit], "has_more": len(items) > limit}


def _check_body(body: str) -> None:
    if not body.strip():
        raise ChatError(422, "invalid", "The message is empty.", field="body")
    limit = current_app.config["CHAT_MAX_BODY_CHARS"]
    if len(body) > limit:
        raise ChatError(422, "too_long", f"The message is too long: {len(body)} characters, at most {limit}.",
                        field="body")


def _take_send_budget(sender_id: int) -> None:
    """Fixed window per sender in Redis; fail-open like the write budget (a Redis outage must not stop chat)."""
    limit = current_app.config["CHAT_RATE_LIMIT_MESSAGES"]
    window = current_app.config["CHAT_RATE_LIMIT_WINDOW_S"]
    if limit <= 0 or window <= 0:
        return
    retry_after = over_budget(f"chat:rate:{sender_id}", limit, window)
    if retry_after is not None:
        raise ChatError(429, "rate_limited", f"Too many messages: at most {limit} every {window} s. "
                                             f"Retry in {retry_after} s.", retry_after=retry_after)


def _existing(sender_id: int, client_id: str, conversation_id: int, body: str) -> dict[str, Any] | None:
    """The message already stored under this client_id (a resend), or None; 409 if it is not the same one."""
    row = db.session.execute(_with_sender(select(Message, User)).where(
        Message.sender_id == sender_id, Message.client_id == client_id)).first()
    if row is None:
        return None
    message, sender = row
    if message.conversation_id != conversation_id or message.body != body:
        raise ChatError(409, "client_id_reused", "This client_id was already used for another message; "
                                                 "pick a new one for a new message.", field="client_id")
    return _message_dict(message, sender)


#: Everything the checks before the lock need, in one round trip: membership (no row: 404), the conversation, the
#: sender's profile, the message already stored under this client_id (a resend) and, for a direct
#: conversation, whether either athlete blocked the other.
_NOT_BLOCKED = as_sql_text(not_blocked_with(literal_column(":sender_id", BigInteger), literal_column("o.other_id")))
_SEND_CHECKS = text(f"""
SELECT c.kind, c.name, u.display_name, u.avatar_url,
       e.id AS e_id, e.conversation_id AS e_conversation_id, e.body AS e_body, e.created_at AS e_created_at,
       c.kind = 'direct' AND NOT ({_NOT_BLOCKED}) AS blocked
FROM conversations c
JOIN conversation_members m ON m.conversation_id = c.id AND m.user_id = :sender_id
JOIN users u ON u.id = :sender_id
CROSS JOIN LATERAL (SELECT CASE WHEN c.user_low_id = :sender_id THEN c.user_high_id
                                ELSE c.user_low_id END AS other_id) o
LEFT JOIN messages e ON e.sender_id = :sender_id AND e.client_id = :client_id
WHERE c.id = :conversation_id
""")

#: The writes, in one statement: take the numbering lock (the INSERT reads from ``locked``, so its id is drawn
#: after the lock is held), store the message (nothing on a concurrent resend), move the conversation's last
#: activity and the sender's own read receipt, and return who gets the frame and who gets a notification
#: (unmuted members but the sender). Data-modifying CTEs always run to completion, read or not.
_SEND_WRITE = text("""
WITH locked AS (SELECT pg_advisory_xact_lock(:lock_key)),
msg AS (
    INSERT INTO messages (conversation_id, sender_id, client_id, body)
    SELECT :conversation_id, :sender_id, :client_id, :body FROM locked
    ON CONFLICT (sender_id, client_id) DO NOTHING
    RETURNING id, created_at),
conversation AS (
    UPDATE conversations SET last_message_id = msg.id, last_activity_at = clock_timestamp()
    FROM msg WHERE conversations.id = :conversation_id),
own_receipt AS (
    UPDATE conversation_members SET last_read_message_id = msg.id
    FROM msg
    WHERE conversation_members.conversation_id = :conversation_id AND conversation_members.user_id = :sender_id
      AND conversation_members.last_read_message_id < msg.id)
SELECT msg.id, msg.created_at,
       ARRAY(SELECT user_id FROM conversation_members WHERE conversation_id = :conversation_id) AS members,
       ARRAY(SELECT user_id FROM conversation_members
             WHERE conversation_id = :conversation_id AND user_id <> :sender_id AND NOT muted) AS to_notify
FROM msg
""")


def send(sender_id: int, conversation_id: int, client_id: str, body: str) -> tuple[dict[str, Any], bool]:
    """Store a message (or find the resent one): (message, created).

    Checks (membership 404, body 422, resend, block 403, budget 429) run before the global numbering lock, so
    the lock covers only the writes: the message, the conversation's last activity, the sender's own read
    receipt and one notification per unmuted member. The frame to every member goes out after the commit.
    """
    checks = db.session.execute(_SEND_CHECKS, {"sender_id": sender_id, "client_id": client_id,
                                               "conversation_id": conversation_id}).first()
    if checks is None:
        raise _not_found()
    _check_body(body)
    sender = {"id": sender_id, "display_name": checks.display_name, "avatar_url": checks.avatar_url}
    if checks.e_id is not None:  # a resend
        if checks.e_conversation_id != conversation_id or checks.e_body != body:
            raise ChatError(409, "client_id_reused", "This client_id was already used for another message; "
                                                     "pick a new one for a new message.", field="client_id")
        db.session.rollback()  # end the read transaction before answering
        return {"id": checks.e_id, "conversation_id": conversation_id, "sender": sender, "client_id": client_id,
                "body": body, "created_at": checks.e_created_at}, False
    if checks.blocked:
        raise ChatError(403, "blocked", "You can't message this athlete: one of you has blocked the other.")
    _take_send_budget(sender_id)

    row = db.session.execute(_SEND_WRITE, {"lock_key": SEND_LOCK, "conversation_id": conversation_id,
                                           "sender_id": sender_id, "client_id": client_id, "body": body}).first()
    if row is None:  # a concurrent resend won (it committed before we got the lock)
        db.session.rollback()
        found = _existing(sender_id, client_id, conversation_id, body)
        if found is None:  # pragma: no cover - the row that conflicted must exist
            raise ChatError(409, "conflict", "The message could not be stored; retry.")
        return found, False
    message_id = row.id
    notify_many(row.to_notify, "message", f"message:{message_id}", actor_id=sender_id, payload={
        "conversation_id": conversation_id, "message_id": message_id, "conversation_kind": checks.kind,
        "conversation_name": checks.name, "display_name": checks.display_name, "preview": body[:PREVIEW_CHARS]})
    result = {"id": message_id, "conversation_id": conversation_id, "sender": sender, "client_id": client_id,
              "body": body, "created_at": row.created_at}
    publish_on_commit(db.session(), row.members, {"type": "chat.message", "message": message_json(result)})
    db.session.commit()
    return result, True


def mark_read(viewer_id: int, conversation_id: int, message_id: int) -> dict[str, Any]:
    """Move the viewer's read receipt forward to ``message_id`` (never back); members hear of a move."""
    _membership(conversation_id, viewer_id)
    exists_here = db.session.scalar(select(Message.id).where(
        Message.id == message_id, Message.conversation_id == conversation_id))
    if exists_here is None:
        raise ChatError(404, "not_found", "Message not found in this conversation.", field="message_id")
    moved = db.session.scalar(update(ConversationMember).where(
        ConversationMember.conversation_id == conversation_id, ConversationMember.user_id == viewer_id,
        ConversationMember.last_read_message_id < message_id).values(last_read_message_id=message_id)
        .returning(ConversationMember.last_read_message_id))
    if moved is not None:
        publish_on_commit(db.session(), member_ids(conversation_id), {
            "type": "chat.read", "conversation_id": conversation_id, "user_id": viewer_id, "message_id": moved})
    db.session.commit()
    return read_state(viewer_id, conversation_id)


def read_state(viewer_id: int, conversation_id: int) -> dict[str, Any]:
    _, me = _membership(conversation_id, viewer_id)
    unread = db.session.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == conversation_id, Message.id > me.last_read_message_id,
        Message.sender_id != viewer_id))
    return {"conversation_id": conversation_id, "last_read_message_id": me.last_read_message_id,
            "unread_count": int(unread or 0)}


def typing(viewer_id: int, conversation_id: int) -> bool:
    """Tell the other members (not stored); at most one per CHAT_TYPING_INTERVAL_S per user and conversation."""
    _membership(conversation_id, viewer_id)
    others = [uid for uid in member_ids(conversation_id) if uid != viewer_id]
    db.session.rollback()  # nothing to write: end the read transaction before talking to Redis
    interval = current_app.config["CHAT_TYPING_INTERVAL_S"]
    try:
        if interval > 0 and not redis_store.client.set(f"chat:typing:{viewer_id}:{conversation_id}", 1,
                                                         nx=True, ex=interval):
            return False
        pubsub.publish_users(others, {"type": "chat.typing", "conversation_id": conversation_id,
                                      "user_id": viewer_id})
    except (redis.RedisError, RuntimeError):
        log.warning("typing indicator dropped", exc_info=True)
        return False
    return True


# --- members -------------------------------------------------------------------------------------------


def _managed(conversation: Conversation) -> None:
    if conversation.kind == DIRECT:
        raise ChatError(422, "invalid", "A direct conversation always has its two athletes; mute it instead.")
    if conversation.group_id is not None:
        raise ChatError(409, "group_managed", "This is a group's chat: its members and admins follow the group's "
                                              "(join, leave or manage the group instead), or mute it.")


def _member_dict(conversation_id: int, user_id: int) -> dict[str, Any]:
    return next(m for m in _member_dicts([conversation_id], None)[conversation_id] if m["athlete"]["id"] == user_id)


def add_member(viewer_id: int, conversation_id: int, user_id: int) -> tuple[dict[str, Any], bool]:
    """Admins add an athlete allowed by :func:`refusal`; (member, created), adding a member again is a no-op."""
    conversation, me = _membership(conversation_id, viewer_id, lock=True)
    _managed(conversation)
    if me.role != ADMIN:
        raise ChatError(403, "forbidden", "Only the conversation's admins can add members.")
    target = _user_or_404(user_id, viewer_id)
    if db.session.get(ConversationMember, (conversation.id, target.id)) is not None:
        db.session.rollback()
        return _member_dict(conversation.id, target.id), False
    reason = refusal(viewer_id, target)
    if reason:
        raise ChatError(403, "forbidden", reason)
    limit = current_app.config["CHAT_MAX_GROUP_MEMBERS"]
    if len(member_ids(conversation.id)) >= limit:
        raise ChatError(422, "too_many_members", f"A group conversation has at most {limit} members.")
    db.session.add(ConversationMember(conversation_id=conversation.id, user_id=target.id, role=MEMBER,
                                      last_read_message_id=conversation.last_message_id or 0))
    db.session.flush()
    _publish_members(conversation.id, "added", [target.id], viewer_id)
    db.session.commit()
    return _member_dict(conversation.id, target.id), True


def remove_member(viewer_id: int, conversation_id: int, user_id: int) -> None:
    """Admins remove anyone; anyone removes themselves (leaves). The last admin leaving promotes the
    longest-standing member; the last member leaving deletes the conversation."""
    conversation, me = _membership(conversation_id, viewer_id, lock=True)
    _managed(conversation)
    if user_id != viewer_id and me.role != ADMIN:
        raise ChatError(403, "forbidden", "Only the conversation's admins can remove members.")
    target = db.session.get(ConversationMember, (conversation.id, user_id))
    if target is None:
        raise ChatError(404, "not_found", "Not a member of this conversation.")
    db.session.delete(target)
    db.session.flush()
    remaining = db.session.scalars(select(ConversationMember).where(
        ConversationMember.conversation_id == conversation.id)
        .order_by(ConversationMember.joined_at, ConversationMember.user_id)).all()
    if not remaining:
        db.session.execute(delete(Conversation).where(Conversation.id == conversation.id))
        db.session.commit()
        return
    if not any(m.role == ADMIN for m in remaining):
        remaining[0].role = ADMIN
    _publish_members(conversation.id, "left" if user_id == viewer_id else "removed", [user_id], viewer_id,
                     also=(user_id,))
    db.session.commit()


def set_role(viewer_id: int, conversation_id: int, user_id: int, role: str) -> dict[str, Any]:
    """Admins promote or demote; the last admin can't step down (someone must run the conversation)."""
    conversation, me = _membership(conversation_id, viewer_id, lock=True)
    _managed(conversation)
    if me.role != ADMIN:
        raise ChatError(403, "forbidden", "Only the conversation's admins can change roles.")
    target = db.session.get(ConversationMember, (conversation.id, user_id))
    if target is None:
        raise ChatError(404, "not_found", "Not a member of this conversation.")
    if target.role == ADMIN and role != ADMIN:
        admins = db.session.scalar(select(func.count()).select_from(ConversationMember).where(
            ConversationMember.conversation_id == conversation.id, ConversationMember.role == ADMIN))
        if (admins or 0) <= 1:
            raise ChatError(422, "last_admin", "The last admin can't step down: promote someone first.", field="role")
    if target.role != role:
        target.role = role
        _publish_members(conversation.id, "role", [user_id], viewer_id)
    db.session.commit()
    return _member_dict(conversation.id, user_id)
