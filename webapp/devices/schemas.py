from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from models.device import MAX_TOKEN_LENGTH, PLATFORMS, Device
from webapp.columns import ColumnLength


class DeviceInSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    token = ma.fields.String(required=True, validate=[
        validate.Length(1, MAX_TOKEN_LENGTH),
        # Tokens travel in the DELETE path: no slashes, no whitespace.
        validate.Regexp(r"^[^\s/]+$", error="A push token has no whitespace or slashes."),
    ], metadata={"description": "The FCM registration token of this app install"})
    platform = ma.fields.String(required=True, validate=validate.OneOf(PLATFORMS))
    app_version = ma.fields.String(load_default=None, allow_none=True, validate=ColumnLength(Device.app_version))


class DeviceSchema(ma.Schema):
    id = ma.fields.Integer()
    token = ma.fields.String()
    platform = ma.fields.String()
    app_version = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class DeviceListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(DeviceSchema))
