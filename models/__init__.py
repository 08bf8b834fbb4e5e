"""SQLAlchemy models (one module per aggregate), the database handle and Redis-backed stores.

Importing this package registers every table on ``Base.metadata`` (Alembic and the drift test rely on it).
Nothing here imports ``webapp``, ``tasks`` or the domain.
"""

import os

from models.activity import Activity, ActivityStream, PrivacyZone, Upload
from models.beat import BeatRun as BeatRun
from models.chat import Conversation as Conversation
from models.chat import ConversationMember as ConversationMember
from models.chat import Message as Message
from models.content import Comment, Kudos, Post
from models.db import Base, db, utcnow
from models.device import Device as Device
from models.device import PushDelivery as PushDelivery
from models.group import Group, GroupMember
from models.live import LivePoint as LivePoint
from models.live import LiveSession as LiveSession
from models.notification import Notification
from models.pubsub import pubsub
from models.redis_store import redis_store
from models.segment import Achievement, Segment, SegmentEffort, SegmentStar
from models.social import Block, Follow
from models.user import Preferences, User

__all__ = [
    "Achievement", "Activity", "ActivityStream", "Base", "Block", "Comment", "Follow", "Group", "GroupMember",
    "Kudos", "Notification", "Post", "Preferences", "PrivacyZone", "Segment", "SegmentEffort", "SegmentStar",
    "Upload", "User", "db", "utcnow",
]


def reset_after_fork() -> None:
    """A forked child (a Celery pool process, a gunicorn worker) must not reuse its parent's connections:
    sockets shared across processes corrupt both. Registered with ``os.register_at_fork``, so it runs in every
    child whichever server forked it."""
    db.dispose_after_fork()
    redis_store.reset_after_fork()
    pubsub.reset_after_fork()


os.register_at_fork(after_in_child=reset_after_fork)
