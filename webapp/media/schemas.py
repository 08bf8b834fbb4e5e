from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from models.media import ATTACH_TYPES, KINDS, STATES


class AttachToSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    type = ma.fields.String(required=True, validate=validate.OneOf(ATTACH_TYPES))
    id = ma.fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1), metadata={
        "description": "The activity, post or chat message (yours); none for an avatar"})


class MediaCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    kind = ma.fields.String(required=True, validate=validate.OneOf(KINDS))
    content_type = ma.fields.String(required=True, validate=validate.Length(1, 64), metadata={
        "description": "image/jpeg, image/png, image/webp, image/heic, image/heif; video/mp4, video/quicktime"})
    size_bytes = ma.fields.Integer(required=True, strict=True, metadata={
        "description": "The exact size of the file; the upload must match it"})
    attach_to = ma.fields.Nested(AttachToSchema, load_default=None, allow_none=True)


class PartsRequestSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    part_numbers = ma.fields.List(ma.fields.Integer(strict=True), required=True,
                                  validate=validate.Length(1, 1000))


class RenditionSchema(ma.Schema):
    url = ma.fields.String(metadata={"description": "Pre-signed, short-lived"})
    width = ma.fields.Integer(allow_none=True)
    height = ma.fields.Integer(allow_none=True)
    content_type = ma.fields.String(allow_none=True)


class LocationSchema(ma.Schema):
    lat = ma.fields.Float()
    lng = ma.fields.Float()


class AttachedSchema(ma.Schema):
    type = ma.fields.String()
    id = ma.fields.Integer(allow_none=True)


class MediaSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"enum": list(KINDS)})
    state = ma.fields.String(metadata={"enum": list(STATES)})
    error = ma.fields.String(allow_none=True, metadata={"description": "Why it failed, for the athlete"})
    content_type = ma.fields.String()
    size_bytes = ma.fields.Integer()
    attach_to = ma.fields.Nested(AttachedSchema, allow_none=True)
    position = ma.fields.Integer()
    width = ma.fields.Integer(allow_none=True)
    height = ma.fields.Integer(allow_none=True)
    duration_s = ma.fields.Float(allow_none=True)
    blurhash = ma.fields.String(allow_none=True)
    renditions = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(RenditionSchema))
    hls_url = ma.fields.String(allow_none=True, metadata={
        "description": "The HLS master playlist; every playlist and segment URL in it is signed and short-lived"})
    poster_url = ma.fields.String(allow_none=True)
    mp4_url = ma.fields.String(allow_none=True)
    thumbnail_urls = ma.fields.List(ma.fields.String())
    original_url = ma.fields.String(allow_none=True, metadata={"description": "The owner's only"})
    taken_at = ma.fields.DateTime(allow_none=True)
    location = ma.fields.Nested(LocationSchema, allow_none=True, metadata={
        "description": "Where it was taken: the owner's; others only on an activity they may see, outside the "
                       "owner's privacy zones and hidden start/end"})
    created_at = ma.fields.DateTime()


class MediaCreatedSchema(MediaSchema):
    upload = ma.fields.Dict(metadata={
        "description": "{url, fields}: POST the fields then `file` to url; or {multipart: {upload_id, part_size, "
                       "part_count, parts_url, complete_url}}"})


class PartUrlSchema(ma.Schema):
    part_number = ma.fields.Integer()
    url = ma.fields.String()


class PartsSchema(ma.Schema):
    upload_id = ma.fields.String()
    expires_in = ma.fields.Integer()
    parts = ma.fields.List(ma.fields.Nested(PartUrlSchema))
