"""Media items as the API sees them: asking to upload, the multipart parts, the client's fallback "complete",
reading (signed URLs, only for those who may see the parent) and deleting."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from flask import current_app, has_request_context, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select

from domain import jobs
from domain.algorithms.media.plan import rewrite_playlist
from domain.algorithms.media.upload import Limits, UploadRefused, part_count, plan_upload, post_policy
from domain.errors import refuse
from domain.media import access, lifecycle
from domain.visibility import get_own as get_own_activity
from models import Post, User, db, utcnow
from models.chat import Message
from models.media import FAILED, PENDING, READY, VIDEO, MediaItem
from models.media_storage import media_bucket
from models.storage import StorageError

_HLS_SALT = "media-hls"


def _limits() -> Limits:
    cfg = current_app.config
    return Limits(photo_max_bytes=cfg["MEDIA_PHOTO_MAX_BYTES"], video_max_bytes=cfg["MEDIA_VIDEO_MAX_BYTES"],
                  multipart_threshold=cfg["MEDIA_MULTIPART_THRESHOLD"], part_bytes=cfg["MEDIA_PART_BYTES"])


def _attach(viewer: User, attach: dict[str, Any] | None) -> dict[str, Any]:
    """The parent columns for ``attach_to``: only the athlete's own activity, post or message (404 otherwise)."""
    if not attach:
        return {}
    kind, parent_id = attach["type"], attach.get("id")
    if kind == "avatar":
        return {"attach_type": "avatar"}
    if parent_id is None:
        refuse(422, "attach_to needs the id of the activity, post or message.",
               errors={"json": {"attach_to": {"id": ["Missing data for required field."]}}})
    if kind == "activity":
        get_own_activity(viewer, parent_id)
        column = MediaItem.activity_id
    elif kind == "post":
        post = db.session.get(Post, parent_id)
        if post is None or post.user_id != viewer.id:
            refuse(404, "Post not found.")
        column = MediaItem.post_id
    else:
        message = db.session.get(Message, parent_id)
        if message is None or message.sender_id != viewer.id:
            refuse(404, "Message not found.")
        column = MediaItem.message_id
    position = db.session.scalar(select(func.count()).where(column == parent_id)) or 0
    return {"attach_type": kind, column.key: parent_id, "position": int(position)}


def _check_quota(viewer: User, size_bytes: int) -> None:
    cfg = current_app.config
    since = utcnow() - timedelta(hours=24)
    recent = db.session.scalar(select(func.count()).select_from(MediaItem).where(
        MediaItem.user_id == viewer.id, MediaItem.created_at >= since)) or 0
    if recent >= cfg["MEDIA_DAILY_QUOTA"]:
        refuse(429, f"You can add at most {cfg['MEDIA_DAILY_QUOTA']} photos and videos a day; try again tomorrow.")
    kept = db.session.scalar(select(func.coalesce(func.sum(MediaItem.size_bytes), 0)).where(
        MediaItem.user_id == viewer.id, MediaItem.state != FAILED)) or 0
    if int(kept) + size_bytes > cfg["MEDIA_STORAGE_QUOTA_BYTES"]:
        refuse(413, "Your photos and videos have reached your storage limit; delete some to add more.")


def create(viewer: User, data: dict[str, Any]) -> dict[str, Any]:
    """A pending item and the pre-signed request that lets the phone upload it straight to the bucket."""
    kind, content_type, size = data["kind"], data["content_type"].lower(), int(data["size_bytes"])
    try:
        plan = plan_upload(kind, content_type, size, _limits())
    except UploadRefused as exc:
        refuse(exc.status, str(exc), errors={"json": {exc.field: [str(exc)]}} if exc.field else None)
    parent = _attach(viewer, data.get("attach_to"))
    _check_quota(viewer, size)
    # A random token in the key: keys are not guessable, and a re-used id never meets an old object.
    prefix = f"media/{viewer.id}/{secrets.token_urlsafe(12)}/"
    item = MediaItem(user_id=viewer.id, kind=kind, content_type=content_type, size_bytes=size, prefix=prefix,
                     original_key=prefix + "original", renditions={}, **parent)
    db.session.add(item)
    db.session.flush()
    ttl = current_app.config["MEDIA_UPLOAD_URL_TTL_S"]
    try:
        if plan == "multipart":
            item.multipart_upload_id = media_bucket.create_multipart(item.original_key, content_type)
            upload: dict[str, Any] = {"multipart": {
                "upload_id": item.multipart_upload_id, "part_size": current_app.config["MEDIA_PART_BYTES"],
                "part_count": part_count(size, current_app.config["MEDIA_PART_BYTES"]),
                "parts_url": f"/api/v1/media/{item.id}/parts", "complete_url": f"/api/v1/media/{item.id}/complete"}}
        else:
            fields, conditions = post_policy(content_type, size)
            post = media_bucket.presigned_post(item.original_key, fields=fields, conditions=conditions,
                                               expires_s=ttl)
            upload = {"url": post["url"], "fields": post["fields"], "expires_in": ttl}
    except (StorageError, BotoCoreError, ClientError) as exc:  # storage unreachable: nothing was promised yet
        db.session.rollback()
        current_app.logger.warning("media upload request failed: %s", exc)
        refuse(503, "Storage is unavailable; try again shortly.")
    db.session.commit()
    return {**serialize(viewer, item), "upload": upload}


def part_urls(viewer: User, media_id: int, part_numbers: list[int]) -> dict[str, Any]:
    item = access.get_own(viewer, media_id)
    if item.multipart_upload_id is None or item.state != PENDING:
        refuse(409, "This item is not waiting for a multipart upload.")
    total = part_count(item.size_bytes, current_app.config["MEDIA_PART_BYTES"])
    bad = [n for n in part_numbers if not 1 <= n <= total]
    if bad:
        refuse(422, f"Part numbers run from 1 to {total}.", errors={"json": {"part_numbers": [f"Out of range: {bad}"]}})
    ttl = current_app.config["MEDIA_UPLOAD_URL_TTL_S"]
    return {"upload_id": item.multipart_upload_id, "expires_in": ttl, "parts": [
        {"part_number": n, "url": media_bucket.presigned_part_url(item.original_key, item.multipart_upload_id, n, ttl)}
        for n in part_numbers]}


def complete(viewer: User, media_id: int) -> dict[str, Any]:
    """The client's fallback when it cannot wait for the S3 event: the object must exist with the declared size
    and type. Ends in the same idempotent step as the event (lifecycle.mark_uploaded)."""
    item = access.get_own(viewer, media_id)
    if item.state == PENDING:
        if item.multipart_upload_id is not None:
            lifecycle.complete_multipart(item)
        head = media_bucket.head(item.original_key)
        if head is None:
            refuse(409, "The file has not arrived in storage yet; upload it first.")
        if head["size"] != item.size_bytes:
            lifecycle.fail(item.id, f"The file is {head['size']} bytes, not the {item.size_bytes} declared.")
        elif head["content_type"] and head["content_type"].lower() != item.content_type:
            lifecycle.fail(item.id, f"The file was stored as {head['content_type']}, not {item.content_type}.")
        else:
            lifecycle.mark_uploaded(item.id, head["etag"])
        db.session.refresh(item)
    return serialize(viewer, item)


def get(viewer: User, media_id: int) -> dict[str, Any]:
    return serialize(viewer, access.get_visible(viewer, media_id))


def delete(viewer: User, media_id: int) -> None:
    """Remove the item; its objects go by the purge the database records for every deleted item."""
    item = access.get_own(viewer, media_id)
    db.session.delete(item)
    db.session.commit()
    purge_later()


def purge_later() -> None:
    """After a commit that deleted items (directly or through a parent's cascade): delete their objects now
    rather than at the next sweep."""
    jobs.send(jobs.MEDIA_PURGE)


# --- reading ------------------------------------------------------------------------------------------------

def _url(key: str | None) -> str | None:
    if not key:
        return None
    return media_bucket.signed_get_url(key, current_app.config["MEDIA_READ_URL_TTL_S"])


def _api_root() -> str:
    return request.url_root.rstrip("/") if has_request_context() else ""


def _hls_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_HLS_SALT)


def hls_token(viewer_id: int, media_id: int) -> str:
    return _hls_signer().dumps({"m": media_id, "v": viewer_id})


def serialize(viewer: User, item: MediaItem) -> dict[str, Any]:
    """The contract's item: signed, short-lived URLs; the original to its owner only; the location by rule."""
    out: dict[str, Any] = {
        "id": item.id, "kind": item.kind, "state": item.state, "error": item.error,
        "content_type": item.content_type, "size_bytes": item.size_bytes,
        "attach_to": _attach_json(item), "position": item.position,
        "width": item.width, "height": item.height, "duration_s": item.duration_s, "blurhash": item.blurhash,
        "renditions": {}, "hls_url": None, "poster_url": None, "mp4_url": None, "thumbnail_urls": [],
        "original_url": None, "taken_at": item.taken_at, "location": access.shown_location(viewer, item),
        "created_at": item.created_at,
    }
    if item.state == READY:
        rend = item.renditions or {}
        out["renditions"] = {name: {"url": _url(r["key"]), "width": r.get("width"), "height": r.get("height"),
                                    "content_type": r.get("content_type")}
                             for name, r in rend.items()
                             if isinstance(r, dict) and name in ("large", "medium", "thumb")}
        if item.kind == VIDEO:
            if rend.get("hls"):
                out["hls_url"] = (f"{_api_root()}/api/v1/media/{item.id}/hls/master.m3u8"
                                  f"?token={hls_token(viewer.id, item.id)}")
            out["poster_url"] = _url((rend.get("poster") or {}).get("key"))
            out["mp4_url"] = _url((rend.get("mp4") or {}).get("key"))
            out["thumbnail_urls"] = [_url(k) for k in rend.get("thumbs", [])]
            if rend.get("poster"):
                out["renditions"]["poster"] = {"url": out["poster_url"], "width": rend["poster"].get("width"),
                                               "height": rend["poster"].get("height"), "content_type": "image/jpeg"}
    if viewer.id == item.user_id and item.state in (READY, "uploaded", "processing"):
        out["original_url"] = _url(item.original_key)
    return out


def _attach_json(item: MediaItem) -> dict[str, Any] | None:
    if item.attach_type is None:
        return None
    parent = item.activity_id or item.post_id or item.message_id
    return {"type": item.attach_type, "id": parent}


def media_for(viewer: User, kind: str, parent_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The ready media of several activities / posts / messages (``kind``), as ``viewer`` may see them (the caller
    already checked the viewer may see each parent); the owner also sees their items still processing."""
    if not parent_ids:
        return {}
    column = {"activity": MediaItem.activity_id, "post": MediaItem.post_id, "message": MediaItem.message_id}[kind]
    rows = db.session.scalars(select(MediaItem).where(
        column.in_(parent_ids), (MediaItem.state == READY) | (MediaItem.user_id == viewer.id))
        .order_by(column, MediaItem.position, MediaItem.id))
    found: dict[int, list[dict[str, Any]]] = {}
    for item in rows:
        found.setdefault(getattr(item, column.key), []).append(serialize(viewer, item))
    return found


# --- HLS ------------------------------------------------------------------------------------------------------

def hls_playlist(token: str, media_id: int, name: str) -> str:
    """A playlist of the item, its URIs signed: variant playlists through this endpoint (same token), segments
    as pre-signed GET URLs. The token names the viewer, whose right to see the item is checked again."""
    ttl = current_app.config["MEDIA_READ_URL_TTL_S"]
    try:
        claims = _hls_signer().loads(token, max_age=ttl)
        signed_media, viewer_id = int(claims["m"]), int(claims["v"])
    except (BadSignature, KeyError, TypeError, ValueError):
        refuse(404, "Media not found.")
    if signed_media != media_id:
        refuse(404, "Media not found.")
    viewer = db.session.get(User, viewer_id)
    if viewer is None:
        refuse(404, "Media not found.")
    item = access.get_visible(viewer, media_id)
    hls = (item.renditions or {}).get("hls")
    if item.state != READY or not hls or not name.endswith(".m3u8") or "/" in name or name.startswith("."):
        refuse(404, "Playlist not found.")
    folder = hls["key"].rsplit("/", 1)[0] + "/"
    try:
        text = media_bucket.get_bytes(folder + name).decode("utf-8")
    except KeyError:
        refuse(404, "Playlist not found.")

    def sign(uri: str) -> str:
        if "/" in uri or uri.startswith("."):
            return uri  # only names within the item's own folder are served
        if uri.endswith(".m3u8"):
            return f"{_api_root()}/api/v1/media/{item.id}/hls/{uri}?token={token}"
        return media_bucket.signed_get_url(folder + uri, ttl)

    return rewrite_playlist(text, sign)
