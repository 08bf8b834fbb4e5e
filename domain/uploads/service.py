"""Accepting uploads: store the bytes durably, commit the row, then enqueue (so a worker always finds the row)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from domain import jobs
from domain.algorithms.parsing import ParseError, count_health_workouts, detect_type, iter_zip
from domain.errors import refuse
from domain.pagination import decode_cursor, encode_cursor
from models import Activity, Upload, User, db
from models.storage import StorageError, storage

log = logging.getLogger(__name__)


def _storage_key(user_id: int, sha256: str, data_type: str) -> str:
    # Content-addressed per athlete: storing the same file twice writes the same object, and a retried
    # request can never leave two copies behind.
    return f"uploads/{user_id}/{sha256}.{data_type}"


def _existing_by_key(user_id: int, key: str) -> Upload | None:
    return db.session.scalar(select(Upload).where(Upload.user_id == user_id, Upload.idempotency_key == key))


def accept_file(user: User, data: bytes, filename: str | None, form: dict[str, Any], *,
                idempotency_key: str | None = None, batch_id: str | None = None, part: int | None = None,
                data_type: str | None = None) -> Upload:
    """Create (or, for a repeated Idempotency-Key, return) the upload of one activity file — or of workout
    ``part`` of a multi-workout file, which shares the stored file but is its own activity."""
    content_sha = hashlib.sha256(data).hexdigest()
    sha256 = content_sha if part is None else hashlib.sha256(f"{content_sha}:part:{part}".encode()).hexdigest()
    if idempotency_key:
        existing = _existing_by_key(user.id, idempotency_key)
        if existing is not None:
            return _same_key(existing, sha256)
    if not data:
        refuse(422, "The file is empty.", errors={"files": {"file": ["The file is empty."]}})
    data_type = data_type or form.get("data_type") or sniff_type(filename, data)

    duplicate_of = db.session.scalar(
        select(Activity.id).where(Activity.user_id == user.id, Activity.source_sha256 == sha256))
    key = _storage_key(user.id, content_sha, data_type)
    if duplicate_of is None:
        try:
            storage.put(key, data)
        except (StorageError, OSError) as exc:
            log.error("object storage unavailable: %s", exc)
            refuse(503, "Uploads are temporarily unavailable; nothing was saved. Please retry.")
    values = {
        "user_id": user.id, "storage_key": key, "size_bytes": len(data), "sha256": sha256,
        "data_type": data_type, "filename": (filename or "")[:255] or None,
        "idempotency_key": idempotency_key, "batch_id": batch_id, "part": part,
        "external_id": form.get("external_id"), "name": form.get("name"), "description": form.get("description"),
        "sport_type": form.get("sport_type"), "visibility": form.get("visibility"),
        "status": "duplicate" if duplicate_of else "queued", "activity_id": duplicate_of,
        "error": "This file was already uploaded." if duplicate_of else None,
    }
    stmt = insert(Upload).values(**values)
    if idempotency_key:
        # Two concurrent requests with the same key: the unique index lets exactly one in.
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["user_id", "idempotency_key"], index_where=Upload.idempotency_key.isnot(None))
    upload_id = db.session.scalar(stmt.returning(Upload.id))
    db.session.commit()  # committed before the chain is enqueued: the worker must find the row
    if upload_id is None:
        existing = _existing_by_key(user.id, idempotency_key or "")
        assert existing is not None
        return _same_key(existing, sha256)
    if not duplicate_of:
        jobs.send(jobs.INGEST_UPLOAD, upload_id)
    upload = db.session.get(Upload, upload_id)
    assert upload is not None
    return upload


def sniff_type(filename: str | None, data: bytes) -> str:
    try:
        return detect_type(filename, data[:4096])
    except ParseError as exc:
        refuse(422, str(exc), errors={"form": {"data_type": [str(exc)]}})
    raise AssertionError("unreachable")


def accept_health_export(user: User, data: bytes, filename: str | None, form: dict[str, Any], *,
                         idempotency_key: str | None = None) -> Upload | dict[str, Any]:
    """An Apple Health export: one upload per workout (a single-workout export answers like any file)."""
    try:
        count = count_health_workouts(data)
    except ParseError as exc:
        refuse(422, str(exc), errors={"files": {"file": [str(exc)]}})
    if count == 0:
        refuse(422, "The Apple Health export contains no workouts.")
    if count == 1:
        return accept_file(user, data, filename, form, idempotency_key=idempotency_key, data_type="health")
    batch_id = str(uuid.uuid4())
    uploads = [accept_file(user, data, filename, form, batch_id=batch_id, part=i, data_type="health")
               for i in range(count)]
    return {"batch_id": batch_id, "uploads": uploads}


def _same_key(existing: Upload, sha256: str) -> Upload:
    if existing.sha256 != sha256:
        refuse(409, "This Idempotency-Key was already used for a different file.")
    return existing


def accept_zip(user: User, data: bytes, form: dict[str, Any]) -> dict[str, Any]:
    """One upload per activity file inside the archive; a bad member fails alone."""
    batch_id = str(uuid.uuid4())
    try:
        members = list(iter_zip(data))
    except ParseError as exc:
        refuse(422, str(exc), errors={"files": {"file": [str(exc)]}})
    if not members:
        refuse(422, "The zip archive contains no activity files (gpx, tcx, fit).")
    member_form = {k: v for k, v in form.items() if k in ("sport_type", "visibility")}
    uploads = []
    for name, content in members:
        try:
            uploads.append(accept_file(user, content, name, member_form, batch_id=batch_id))
        except Exception as exc:  # includes the 422 of an unrecognisable member
            db.session.rollback()
            uploads.append(_failed_member(user, name, content, batch_id, exc))
    return {"batch_id": batch_id, "uploads": uploads}


def _failed_member(user: User, name: str, content: bytes, batch_id: str, exc: Exception) -> Upload:
    message = getattr(exc, "data", {}).get("message") if hasattr(exc, "data") else None
    upload = Upload(user_id=user.id, storage_key="", size_bytes=len(content),
                    sha256=hashlib.sha256(content).hexdigest(), filename=name[:255], batch_id=batch_id,
                    status="failed", error=message or "This file could not be accepted.")
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

