"""Accepting uploads: store the bytes durably, commit the row, then enqueue (so a worker always finds the row)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import BindParameter, Boolean, Select, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert

from domain import jobs, offload
from domain.algorithms.parsing import ParseError, check_size, count_health_workouts, detect_type, iter_zip
from domain.errors import Refusal, refuse
from domain.pagination import decode_cursor, encode_cursor
from models import Activity, Upload, User, db
from models.db import returned_row, returning, table_of
from models.storage import LocalStorage, StorageError, storage

log = logging.getLogger(__name__)


def _storage_key(user_id: int, sha256: str, data_type: str) -> str:
    # Content-addressed per athlete: storing the same file twice writes the same object, and a retried
    # request can never leave two copies behind.
    return f"uploads/{user_id}/{sha256}.{data_type}"


def _put(key: str, data: bytes) -> None:
    """Store the file durably before its row is committed; 503 (nothing saved) when storage is down."""
    try:
        # Writing (and fsyncing) a local file blocks the whole thread: under gevent, that is every socket of the
        # process. S3 goes through sockets, which gevent already makes cooperative.
        if isinstance(storage.backend, LocalStorage):
            offload.cpu(storage.put, key, data)
        else:
            storage.put(key, data)
    except (StorageError, OSError) as exc:
        log.error("object storage unavailable: %s", exc)
        refuse(503, "Uploads are temporarily unavailable; nothing was saved. Please retry.")


def _refuse_empty(data: bytes) -> None:
    if not data:
        refuse(422, "The file is empty.", errors={"files": {"file": ["The file is empty."]}})


def _existing_by_key(user_id: int, key: str) -> Upload | None:
    return db.session.scalar(select(Upload).where(Upload.user_id == user_id, Upload.idempotency_key == key))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _part_sha(content_sha: str, part: int) -> str:
    """The identity of workout ``part`` of a multi-workout file (its activity's ``source_sha256``)."""
    return hashlib.sha256(f"{content_sha}:part:{part}".encode()).hexdigest()


def _quota_start() -> datetime:
    """The quota counts the uploads of the last 24 hours."""
    return datetime.now(UTC) - timedelta(days=1)


def _uploads_since(user_id: int | BindParameter[int], since: datetime | BindParameter[datetime]) -> Select[int]:
    return select(func.count()).select_from(Upload).where(Upload.user_id == user_id, Upload.created_at > since)


def check_quota(user: User, new_uploads: int, used: int | None = None) -> None:
    """Refuse a request that would create more uploads than the account may create in a day (each one costs a
    parse, a store and segment matching on the workers, whatever the size of the request that made it).
    ``used``: the uploads of the last 24 hours, when the caller counted them already."""
    limit = int(current_app.config["UPLOAD_DAILY_QUOTA"])
    if used is None:
        used = db.session.scalar(_uploads_since(user.id, _quota_start())) or 0
    if used + new_uploads > limit:
        refuse(429, f"This would create {new_uploads:,} uploads, and your account may create {limit:,} a day "
                    f"({used:,} in the last 24 hours). Please try again later or upload fewer activities.",
               headers={"Retry-After": "3600"})


def _check_items(count: int, what: str) -> None:
    cap = int(current_app.config["UPLOAD_MAX_ITEMS_PER_FILE"])
    if count > cap:
        refuse(422, f"The {what} contains {count:,} activities; at most {cap:,} can be imported from one file. "
                    "Please split it into smaller files.", errors={"files": {"file": ["Too many activities."]}})


#: Every upload request runs these: prepared once, the values coming as parameters (models.db.returning).
_USED_AND_DUPLICATE = select(
    _uploads_since(bindparam("user_id"), bindparam("since")).where(bindparam("count", type_=Boolean)).scalar_subquery(),
    select(Activity.id).where(Activity.user_id == bindparam("user_id"), Activity.source_sha256 == bindparam("sha256"))
    .limit(1).scalar_subquery())
_INSERT = returning(Upload, insert(table_of(Upload)))
# Two concurrent requests with the same key: the unique index lets exactly one in.
_INSERT_KEYED = returning(Upload, insert(table_of(Upload)).on_conflict_do_nothing(
    index_elements=["user_id", "idempotency_key"], index_where=Upload.idempotency_key.isnot(None)))


def accept_file(user: User, data: bytes, filename: str | None, form: dict[str, Any], *,
                idempotency_key: str | None = None, batch_id: str | None = None, content_sha: str | None = None,
                data_type: str | None = None, quota_checked: bool = False) -> Upload:
    """Create (or, for a repeated Idempotency-Key, return) the upload of one activity file.

    ``content_sha`` is the file's SHA-256 when the caller computed it already (off the event loop)."""
    sha256 = content_sha or offload.cpu(_sha256, data)
    if idempotency_key:
        existing = _existing_by_key(user.id, idempotency_key)
        if existing is not None:
            return _same_key(existing, sha256)
    _refuse_empty(data)
    # The day's count and the same file's activity in one round trip (every upload asks both).
    used, duplicate_of = db.session.execute(_USED_AND_DUPLICATE, {
        "user_id": user.id, "since": _quota_start(), "count": not quota_checked,
        "sha256": sha256}).one()
    if not quota_checked:
        check_quota(user, 1, used or 0)
    data_type = data_type or form.get("data_type") or sniff_type(filename, data)
    if data_type != "health":
        try:
            # A bomb or a file of millions of points is refused here, in bounded memory and off the event loop,
            # rather than accepted only for a worker to inflate it and fail.
            offload.cpu(check_size, data, data_type)
        except ParseError as exc:
            refuse(422, str(exc), errors={"files": {"file": [str(exc)]}})

    key = _storage_key(user.id, sha256, data_type)
    if duplicate_of is None:
        _put(key, data)
    values = {
        "user_id": user.id, "storage_key": key, "size_bytes": len(data), "sha256": sha256,
        "data_type": data_type, "filename": (filename or "")[:255] or None,
        "idempotency_key": idempotency_key, "batch_id": batch_id, "part": None,
        "external_id": form.get("external_id"), "name": form.get("name"), "description": form.get("description"),
        "sport_type": form.get("sport_type"), "visibility": form.get("visibility"),
        "trainer": form.get("trainer"), "commute": form.get("commute"),
        "status": "duplicate" if duplicate_of else "queued", "activity_id": duplicate_of,
        "error": "This file was already uploaded." if duplicate_of else None,
    }
    # The row comes back from the INSERT (the answer needs it; no SELECT after the commit).
    upload = returned_row(Upload, _INSERT_KEYED if idempotency_key else _INSERT, values)
    db.session.commit()  # committed before the chain is enqueued: the worker must find the row
    if upload is None:
        existing = _existing_by_key(user.id, idempotency_key or "")
        assert existing is not None
        return _same_key(existing, sha256)
    if not duplicate_of:
        jobs.send(jobs.INGEST_UPLOAD, upload.id)
    log.info("upload %s accepted (%d bytes%s)", upload.id, len(data), ", a duplicate" if duplicate_of else "")
    return upload


def sniff_type(filename: str | None, data: bytes) -> str:
    try:
        return detect_type(filename, data[:4096])
    except ParseError as exc:
        refuse(422, str(exc), errors={"form": {"data_type": [str(exc)]}})
    raise AssertionError("unreachable")


def _inspect_health(data: bytes) -> tuple[str, int]:
    """(SHA-256, number of workouts) of an Apple Health export; CPU work, run off the event loop."""
    return _sha256(data), count_health_workouts(data)


def accept_health_export(user: User, data: bytes, filename: str | None, form: dict[str, Any], *,
                         idempotency_key: str | None = None) -> Upload | dict[str, Any]:
    """An Apple Health export: one upload per workout (a single-workout export answers like any file).

    The export is stored once and read once: every workout's upload row points at the same stored object, and
    one message is sent for the batch (its ingest stage parses the file a single time and stores every
    workout, see domain.activities.ingest.ingest_export)."""
    _refuse_empty(data)
    try:
        content_sha, count = offload.cpu(_inspect_health, data)
    except ParseError as exc:
        refuse(422, str(exc), errors={"files": {"file": [str(exc)]}})
    if count == 0:
        refuse(422, "The Apple Health export contains no workouts.")
    _check_items(count, "Apple Health export")
    if count == 1:
        return accept_file(user, data, filename, form, idempotency_key=idempotency_key, data_type="health",
                           content_sha=content_sha)
    check_quota(user, count)
    shas = [_part_sha(content_sha, i) for i in range(count)]
    existing = {sha: activity_id for sha, activity_id in db.session.execute(select(
        Activity.source_sha256, Activity.id).where(Activity.user_id == user.id, Activity.source_sha256.in_(shas)))}
    key = _storage_key(user.id, content_sha, "health")
    if len(existing) < count:
        _put(key, data)
    batch_id = str(uuid.uuid4())
    common = {
        "user_id": user.id, "storage_key": key, "size_bytes": len(data), "data_type": "health",
        "filename": (filename or "")[:255] or None, "batch_id": batch_id,
        "external_id": form.get("external_id"), "name": form.get("name"), "description": form.get("description"),
        "sport_type": form.get("sport_type"), "visibility": form.get("visibility"),
    }
    rows = [{**common, "part": i, "sha256": sha, "status": "duplicate" if sha in existing else "queued",
             "activity_id": existing.get(sha), "error": "This file was already uploaded." if sha in existing else None}
            for i, sha in enumerate(shas)]
    ids = list(db.session.scalars(insert(Upload).values(rows).returning(Upload.id)))
    db.session.commit()  # committed before the batch is enqueued: the worker must find every row
    queued = [i for i, row in zip(ids, rows, strict=True) if row["status"] == "queued"]
    if queued:
        # One message: its ingest stage stores every queued workout of the batch from one parse.
        jobs.send(jobs.INGEST_UPLOAD, queued[0])
    uploads = list(db.session.scalars(select(Upload).where(Upload.id.in_(ids)).order_by(Upload.part)))
    return {"batch_id": batch_id, "uploads": uploads}


def _same_key(existing: Upload, sha256: str) -> Upload:
    if existing.sha256 != sha256:
        refuse(409, "This Idempotency-Key was already used for a different file.")
    return existing


def _expand_zip(data: bytes) -> list[tuple[str, bytes, str]]:
    """(name, bytes, SHA-256) of every activity file in a zip; CPU work (inflate, hash), run off the event loop."""
    return [(name, content, _sha256(content)) for name, content in iter_zip(data)]


def accept_zip(user: User, data: bytes, form: dict[str, Any]) -> dict[str, Any]:
    """One upload per activity file inside the archive; a bad member fails alone."""
    batch_id = str(uuid.uuid4())
    try:
        members = offload.cpu(_expand_zip, data)
    except ParseError as exc:
        refuse(422, str(exc), errors={"files": {"file": [str(exc)]}})
    if not members:
        refuse(422, "The zip archive contains no activity files (gpx, tcx, fit).")
    _check_items(len(members), "zip archive")
    check_quota(user, len(members))
    member_form = {k: v for k, v in form.items() if k in ("sport_type", "visibility")}
    uploads = []
    for name, content, sha in members:
        try:
            uploads.append(accept_file(user, content, name, member_form, batch_id=batch_id, content_sha=sha,
                                       quota_checked=True))
        except Exception as exc:  # includes the 422 of an unrecognisable member
            db.session.rollback()
            uploads.append(_failed_member(user, name, content, sha, batch_id, exc))
    return {"batch_id": batch_id, "uploads": uploads}


def _failed_member(user: User, name: str, content: bytes, sha: str, batch_id: str, exc: Exception) -> Upload:
    message = exc.message if isinstance(exc, Refusal) else None
    upload = Upload(user_id=user.id, storage_key="", size_bytes=len(content), sha256=sha, filename=name[:255],
                    batch_id=batch_id, status="failed", error=message or "This file could not be accepted.")
    db.session.add(upload)
    db.session.commit()
    return upload


def get_own_upload(user: User, upload_id: int) -> Upload:
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.user_id != user.id:
        refuse(404, "Upload not found.")
    return upload


def list_uploads(user: User, cursor: str | None, limit: int, batch_id: str | None) -> dict[str, Any]:
    query = select(Upload).where(Upload.user_id == user.id)
    if batch_id:
        query = query.where(Upload.batch_id == batch_id)
    after = decode_cursor(cursor, 1)
    if after is not None:
        query = query.where(Upload.id < int(after[0]))
    rows = list(db.session.scalars(query.order_by(Upload.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}

