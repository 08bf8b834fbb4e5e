"""The whole-account export (data portability): one zip with everything the athlete gave us.

``request_export`` (the API) records the request and sends the job; a second request while one is queued or
running gets that one (a partial unique index decides, so two at once make one). ``build_export`` (the task on
the ``default`` queue) writes the zip to a temporary file, activity by activity, so memory stays flat however
many activities there are; stores it; and notifies the athlete with a link that works for
``ACCOUNT_EXPORT_LINK_TTL_S`` (signed with SECRET_KEY: the link itself is the credential, so it can be opened
from the notification in a browser).

The zip:
    README.txt, profile.json (profile, preferences, privacy zones as the athlete set them)
    activities.json (every activity's fields), activities/<id>.gpx (the whole recorded track),
    activities/<id>/original.<type> (the file as uploaded), efforts.json, achievements.json,
    posts.json, comments.json, kudos.json, messages.json (chat messages the athlete sent)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from domain import jobs
from domain.algorithms.gpx_writer import to_gpx
from domain.algorithms.streams import decode_track
from domain.errors import refuse
from domain.notifications.outbox import notify
from domain.social.profiles import own_profile
from models import (
    AccountExport,
    Achievement,
    Activity,
    ActivityStream,
    Comment,
    Kudos,
    Post,
    PrivacyZone,
    SegmentEffort,
    Upload,
    User,
    db,
    utcnow,
)
from models.chat import Message
from models.storage import storage

log = logging.getLogger(__name__)

BATCH = 200
#: Longer than the task's hard time limit plus its retries' back-off (tasks/exports.py).
STALE_AFTER_S = 3 * 3600
#: Files already compressed are stored as they are: deflating them again costs CPU for nothing.
COMPRESSED = (".gz", ".fit", ".zip")
README = """Your Strava+1 data, as of {when} (UTC).

profile.json        your profile, preferences and privacy zones
activities.json     every activity (figures, times, names, visibility, map polylines)
activities/ID.gpx   the whole recorded track of each activity with GPS, as GPX 1.1
activities/ID/      the file you uploaded, as you uploaded it
efforts.json        your segment efforts; achievements.json your achievements
posts.json, comments.json, kudos.json, messages.json (the chat messages you sent)
"""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _row(obj: Any, skip: Iterable[str] = ()) -> dict[str, Any]:
    return {c.key: _jsonable(getattr(obj, c.key)) for c in obj.__table__.columns if c.key not in set(skip)}


def as_json(export: AccountExport) -> dict[str, Any]:
    out: dict[str, Any] = {"id": export.id, "status": export.status, "size_bytes": export.size_bytes,
                           "error": export.error, "created_at": export.created_at,
                           "finished_at": export.finished_at, "download_url": None, "expires_at": None}
    if export.status == "ready":
        expires = int(time.time()) + int(current_app.config["ACCOUNT_EXPORT_LINK_TTL_S"])
        out["download_url"] = download_path(export.id, expires)
        out["expires_at"] = datetime.fromtimestamp(expires, UTC)
    return out


# -- the link --------------------------------------------------------------------------------------------------

def _signature(export_id: int, expires: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"account-export:{export_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def download_path(export_id: int, expires: int) -> str:
    return f"/downloads/account-exports/{export_id}?expires={expires}&sig={_signature(export_id, expires)}"


def download(export_id: int, expires: int, sig: str) -> tuple[bytes, str]:
    """The zip of a valid, unexpired link (404 for anything else: a wrong or expired link says nothing)."""
    if expires < time.time() or not hmac.compare_digest(sig, _signature(export_id, expires)):
        refuse(404, "This download link is not valid or has expired; request a new one from the app.")
    export = db.session.get(AccountExport, export_id)
    if export is None or export.status != "ready" or not export.storage_key:
        refuse(404, "This download link is not valid or has expired; request a new one from the app.")
    try:
        return storage.get(export.storage_key), f"strava-plus-one-export-{export.id}.zip"
    except KeyError:
        refuse(404, "This export is no longer stored; request a new one from the app.")
    raise AssertionError("unreachable")


# -- requesting ------------------------------------------------------------------------------------------------

def request_export(user: User) -> tuple[AccountExport, bool]:
    """(the export, whether this request started it): one queued or running export per athlete at a time."""
    # An export still "running" long after any task could have (its message lost with a broker) must not block
    # the athlete for good: it is failed here, and this request starts a new one.
    db.session.execute(update(AccountExport).where(
        AccountExport.user_id == user.id, AccountExport.status.in_(("queued", "running")),
        AccountExport.created_at < utcnow() - timedelta(seconds=STALE_AFTER_S))
        .values(status="failed", error="The export did not finish; please request a new one.", finished_at=utcnow()))
    new_id = db.session.scalar(insert(AccountExport).values(user_id=user.id, status="queued")
                               .on_conflict_do_nothing(index_elements=["user_id"],
                                                       index_where=AccountExport.status.in_(("queued", "running")))
                               .returning(AccountExport.id))
    db.session.commit()
    if new_id is not None:
        jobs.send(jobs.ACCOUNT_EXPORT, new_id)
        export = db.session.get(AccountExport, new_id)
        assert export is not None
        return export, True
    running = db.session.scalar(select(AccountExport).where(AccountExport.user_id == user.id,
                                                            AccountExport.status.in_(("queued", "running"))))
    if running is None:  # it finished between the two statements: ask again
        return request_export(user)
    return running, False


def latest_export(user: User) -> AccountExport:
    export = db.session.scalar(select(AccountExport).where(AccountExport.user_id == user.id)
                               .order_by(AccountExport.id.desc()).limit(1))
    if export is None:
        refuse(404, "You have not requested an export yet.")
    return export


# -- building --------------------------------------------------------------------------------------------------

def build_export(export_id: int) -> str:
    """Write, store and announce the export (the task). Safe to run twice: a finished export is left alone."""
    claimed = db.session.execute(update(AccountExport).where(AccountExport.id == export_id,
                                                             AccountExport.status.in_(("queued", "running")))
                                 .values(status="running").returning(AccountExport.user_id)).first()
    db.session.commit()
    if claimed is None:
        return "done"
    user = db.session.get(User, claimed.user_id)
    if user is None:
        return "gone"
    fd, path = tempfile.mkstemp(prefix="account-export-", suffix=".zip")
    os.close(fd)
    try:
        write_zip(user, path)
        key = f"exports/{user.id}/{export_id}.zip"
        storage.put_file(key, path)
        size = os.path.getsize(path)
    finally:
        os.unlink(path)
    export = db.session.get(AccountExport, export_id)
    assert export is not None
    export.status, export.storage_key, export.size_bytes, export.finished_at = "ready", key, size, utcnow()
    link = as_json(export)
    notify(user.id, "account_export", f"account_export:{export_id}",
           payload={"export_id": export_id, "download_url": link["download_url"],
                    "expires_at": link["expires_at"].isoformat()})
    db.session.commit()
    return "ready"


def fail_export(export_id: int, message: str) -> None:
    db.session.execute(update(AccountExport).where(AccountExport.id == export_id, AccountExport.status != "ready")
                       .values(status="failed", error=message, finished_at=utcnow()))
    db.session.commit()


def _json_lines(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """A JSON array written item by item (never the whole list in memory)."""
    yield b"["
    first = True
    for row in rows:
        yield (b"" if first else b",\n") + json.dumps(row, default=str).encode()
        first = False
    yield b"]\n"


def _write_json(zf: zipfile.ZipFile, name: str, rows: Iterator[dict[str, Any]]) -> None:
    with zf.open(name, "w", force_zip64=True) as out:
        for chunk in _json_lines(rows):
            out.write(chunk)


def _rows(model: Any, where: Any, skip: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    for obj in db.session.scalars(select(model).where(where).order_by(model.id).execution_options(yield_per=BATCH)):
        yield _row(obj, skip)


def _activity_ids(user: User) -> list[int]:
    return list(db.session.scalars(select(Activity.id).where(Activity.user_id == user.id).order_by(Activity.id)))


def write_zip(user: User, path: str) -> None:
    ids = _activity_ids(user)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("README.txt", README.format(when=utcnow().strftime("%Y-%m-%d %H:%M")))
        profile = own_profile(user)
        zones = db.session.scalars(select(PrivacyZone).where(PrivacyZone.user_id == user.id))
        # As the athlete set them: the displaced discs actually filtered stay secret even from their owner.
        profile["privacy_zones"] = [_row(z, skip=("hidden_lat", "hidden_lng", "hidden_radius_m", "user_id"))
                                    for z in zones]
        zf.writestr("profile.json", json.dumps(profile, default=_jsonable, indent=1))
        # The stored public view is derived data (and holds no more than the rest): left out.
        _write_json(zf, "activities.json", _rows(Activity, Activity.user_id == user.id, skip=("public",)))
        for start in range(0, len(ids), BATCH):
            _write_tracks(zf, ids[start:start + BATCH])
            db.session.expunge_all()  # keep the session (and memory) small across thousands of activities
        _write_json(zf, "efforts.json", _rows(SegmentEffort, SegmentEffort.user_id == user.id))
        _write_json(zf, "achievements.json", _rows(Achievement, Achievement.user_id == user.id))
        _write_json(zf, "posts.json", _rows(Post, Post.user_id == user.id))
        _write_json(zf, "comments.json", _rows(Comment, Comment.user_id == user.id))
        _write_json(zf, "kudos.json", _rows(Kudos, Kudos.user_id == user.id))
        _write_json(zf, "messages.json", _rows(Message, Message.sender_id == user.id))


def _write_tracks(zf: zipfile.ZipFile, ids: list[int]) -> None:
    activities = {a.id: a for a in db.session.scalars(select(Activity).where(Activity.id.in_(ids)))}
    uploads = {u.activity_id: u for u in db.session.scalars(select(Upload).where(Upload.activity_id.in_(ids)))}
    for activity_id in ids:
        stream = db.session.get(ActivityStream, activity_id)
        if stream is not None:
            track = decode_track(stream.data)
            track.name, track.sport = activities[activity_id].name, activities[activity_id].sport_type
            if track.has_gps:
                zf.writestr(f"activities/{activity_id}.gpx", to_gpx(track))
            db.session.expunge(stream)
        upload = uploads.get(activity_id)
        if upload is not None and upload.storage_key:
            try:
                data = storage.get(upload.storage_key)
            except KeyError:
                log.warning("export: the original of activity %s is missing from storage", activity_id)
                continue
            name = f"activities/{activity_id}/original.{upload.data_type or 'bin'}"
            compress = zipfile.ZIP_STORED if name.endswith(COMPRESSED) else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=compress)
