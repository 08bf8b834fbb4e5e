"""Removing an activity, in the caller's transaction: what the athlete's delete does, and what a health-app sync
does when a synced workout is deleted or replaced, so every removal cleans up the same things.

In the transaction (:func:`remove`): the uploads it came from, the training-load series marked stale from its
day, the segment boards it counted on queued for a rebuild, the row itself (streams, efforts, kudos, media rows
cascade). After the caller's commit (:func:`after_commit`): the feeds, the media purge and the stored files,
which must not be touched for a transaction that rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import delete, select

from domain import board_rebuilds, jobs
from domain.activities import same_workout
from domain.feed import fanout as feed
from domain.insights import loads
from domain.segments.efforts import segments_touched_by
from models import Activity, Upload, db
from models.storage import storage


@dataclass
class Removed:
    """What is left to do once the removals are committed."""

    #: (activity id, author id) of each removed activity, for the feeds.
    activities: list[tuple[int, int]] = field(default_factory=list)
    #: Stored files of removed uploads (deleted unless another upload still uses the object).
    storage_keys: set[str] = field(default_factory=set)

    def __iadd__(self, other: Removed) -> Removed:
        self.activities += other.activities
        self.storage_keys |= other.storage_keys
        return self


def remove(activity: Activity, timezone: str) -> Removed:
    """Delete ``activity`` and the uploads it came from (``timezone``: the athlete's, for the day its load counted
    on when the activity has no zone of its own)."""
    same_workout.lock(activity.user_id)  # a file being stored may be replacing this very activity
    touched = segments_touched_by(activity.id)
    keys = set(db.session.scalars(select(Upload.storage_key).where(Upload.activity_id == activity.id)))
    # Its own upload, and the later uploads of the same file (marked duplicates of it).
    db.session.execute(delete(Upload).where(Upload.activity_id == activity.id))
    loads.activity_removed(activity, timezone)
    db.session.delete(activity)
    board_rebuilds.rebuild_later(touched)
    db.session.flush()
    return Removed([(activity.id, activity.user_id)], {k for k in keys if k})


def remove_upload(user_id: int, upload_id: int, timezone: str) -> Removed:
    """Delete an upload and the activity it produced, whatever stage it is at. The athlete's workout lock comes
    first (the store step holds it to its commit, and takes it before touching the row, so in this order there
    is no deadlock): a store step running right now finishes before this looks, and its activity goes too; one
    that runs later finds no upload and stores nothing (``domain.uploads.lifecycle.claim``,
    ``ingest.store_track``). An upload that was a duplicate of another activity leaves that activity alone."""
    same_workout.lock(user_id)
    upload = db.session.scalar(select(Upload).where(Upload.id == upload_id, Upload.user_id == user_id)
                               .with_for_update())
    if upload is None:
        return Removed()
    removed = Removed()
    made = db.session.scalar(select(Activity).where(Activity.upload_id == upload.id, Activity.user_id == user_id))
    if made is not None:
        removed += remove(made, timezone)
    db.session.execute(delete(Upload).where(Upload.id == upload.id))
    if upload.storage_key:
        removed.storage_keys.add(upload.storage_key)
    return removed


def after_commit(removed: Removed) -> None:
    """The work of committed removals that lives outside PostgreSQL."""
    if not removed.activities and not removed.storage_keys:
        return
    if removed.activities:
        # Their media rows went with them (cascade); the database recorded the objects for the purge.
        jobs.send(jobs.MEDIA_PURGE)
    for activity_id, author_id in removed.activities:
        feed.enqueue_item_removed("activity", activity_id, author_id)
    for key in sorted(removed.storage_keys):
        # Stored content-addressed per athlete: the same file uploaded again shares the object.
        still_used = db.session.scalar(select(Upload.id).where(Upload.storage_key == key).limit(1))
        if still_used is None:
            try:
                storage.delete(key)
            except Exception:
                current_app.logger.warning("could not delete stored object %s", key, exc_info=True)
