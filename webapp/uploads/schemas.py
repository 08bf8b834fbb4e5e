from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload as UploadField
from marshmallow import validate

from models.activity import DATA_TYPES, SPORT_TYPES, UPLOAD_STATUSES, Upload
from models.user import VISIBILITIES
from webapp.columns import ColumnLength


class UploadFormSchema(ma.Schema):
    data_type = ma.fields.String(validate=validate.OneOf([*DATA_TYPES, "zip"]), metadata={
        "description": "gpx, gpx.gz, tcx, tcx.gz, fit, fit.gz, health (an Apple Health export.xml) or zip "
                       "(many files); inferred from the name and content when absent"})
    external_id = ma.fields.String(validate=ColumnLength(Upload.external_id, 1))
    name = ma.fields.String(validate=ColumnLength(Upload.name, 1))
    description = ma.fields.String(validate=validate.Length(0, 10000))
    sport_type = ma.fields.String(validate=validate.OneOf(SPORT_TYPES))
    visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES))


class UploadFileSchema(ma.Schema):
    file = UploadField(required=True, metadata={"description": "The activity file (or a .zip of them)"})


class UploadSchema(ma.Schema):
    class Meta:
        example = {
            "id": 901, "status": "ready", "error": None, "activity_id": 4711, "external_id": None,
            "stage": "done", "data_type": "gpx", "filename": "morning.gpx", "batch_id": None,
            "created_at": "2026-10-01T08:01:09+00:00", "updated_at": "2026-10-01T08:01:12+00:00"}

    id = ma.fields.Integer()
    status = ma.fields.String(metadata={"enum": list(UPLOAD_STATUSES)})
    error = ma.fields.String(allow_none=True, metadata={"description": "Why it failed, in words for the athlete"})
    activity_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "The activity when ready; for a duplicate, the activity that already has this file"})
    external_id = ma.fields.String(allow_none=True)
    stage = ma.fields.String(allow_none=True, metadata={"description": "Current processing stage"})
    data_type = ma.fields.String(allow_none=True)
    filename = ma.fields.String(allow_none=True)
    batch_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class BatchSchema(ma.Schema):
    batch_id = ma.fields.String()
    uploads = ma.fields.List(ma.fields.Nested(UploadSchema))


class UploadListArgsSchema(ma.Schema):
    cursor = ma.fields.String(load_default=None)
    limit = ma.fields.Integer(load_default=30, validate=validate.Range(1, 200))
    batch_id = ma.fields.String(load_default=None, validate=ColumnLength(Upload.batch_id))


class UploadPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(UploadSchema))
    next_cursor = ma.fields.String(allow_none=True)
