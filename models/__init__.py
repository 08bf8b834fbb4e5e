"""SQLAlchemy models (one module per aggregate), the database handle and Redis-backed stores.

Importing this package registers every table on ``Base.metadata`` (Alembic and the drift test rely on it).
Nothing here imports ``webapp``, ``tasks`` or the domain.
"""

import os

from models.activity import AccountExport, Activity, ActivityShare, ActivityStream, PrivacyZone, Upload
from models.beat import BeatRun as BeatRun
from models.chat import Conversation as Conversation
from models.chat import ConversationMember as ConversationMember
from models.chat import Message as Message
from models.content import Comment, Kudos, Post
from models.db import Base, db, utcnow
from models.device import Device as Device
from models.device import PushDelivery as PushDelivery
from models.gear import Gear as Gear
from models.group import Group, GroupMember
from models.health import (
    BodyMetric,
    DeviceEvent,
    Food,
    FoodPortion,
    HealthProfile,
    HealthSyncItem,
    HealthSyncState,
    HydrationReminder,
    Meal,
    MealItem,
    RecipeItem,
    SleepSession,
    WaterLog,
)
from models.insights import ActivityLoad as ActivityLoad
from models.insights import Insight as Insight
from models.insights import PlannedWorkout as PlannedWorkout
from models.insights import TrainingDay as TrainingDay
from models.insights import TrainingSettings as TrainingSettings
from models.insights import WeeklySummary as WeeklySummary
from models.live import LivePoint as LivePoint
from models.live import LiveSession as LiveSession
from models.media import MediaEvent as MediaEvent
from models.media import MediaItem as MediaItem
from models.media import MediaPurge as MediaPurge
from models.media_storage import media_bucket
from models.notification import Notification
from models.pubsub import pubsub
from models.redis_store import redis_store
from models.segment import Achievement, Segment, SegmentEffort, SegmentStar
from models.social import Block, Follow
from models.user import Preferences, User

__all__ = [
    "AccountExport",
    "Achievement",
    "Activity",
    "ActivityShare",
    "ActivityStream",
    "Base",
    "Block",
    "BodyMetric",
    "Comment",
    "DeviceEvent",
    "Follow",
    "Food",
    "FoodPortion",
    "Group",
    "GroupMember",
    "HealthProfile",
    "HealthSyncItem",
    "HealthSyncState",
    "HydrationReminder",
    "Kudos",
    "Meal",
    "MealItem",
    "Notification",
    "Post",
    "Preferences",
    "PrivacyZone",
    "RecipeItem",
    "Segment",
    "SegmentEffort",
    "SegmentStar",
    "SleepSession",
    "Upload",
    "User",
    "WaterLog",
    "db",
    "utcnow",
]


def reset_after_fork() -> None:
    """A forked child (a Celery pool process, a gunicorn worker) must not reuse its parent's connections:
    sockets shared across processes corrupt both. Registered with ``os.register_at_fork``, so it runs in every
    child whichever server forked it."""
    db.dispose_after_fork()
    redis_store.reset_after_fork()
    pubsub.reset_after_fork()
    media_bucket.reset_after_fork()


os.register_at_fork(after_in_child=reset_after_fork)
