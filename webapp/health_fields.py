"""Schema pieces the health resources share: time ranges, pages, HH:MM fields, nutrient fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import validate

from domain.pagination import DEFAULT_LIMIT, MAX_LIMIT
from models.health import NUTRIENTS

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Use HH:MM, 24-hour clock.")

#: Per 100 g: nothing has more than 100 g of a macronutrient in 100 g, nor more than 900 kcal (pure fat).
NUTRIENT_MAX = {"energy_kcal": 900.0, "sodium_mg": 40_000.0, "potassium_mg": 20_000.0, "calcium_mg": 40_000.0,
                "iron_mg": 1_000.0}


class UtcDateTime(ma.fields.AwareDateTime):
    """An ISO 8601 time with its offset, turned into UTC and kept to 1900–2200: PostgreSQL refuses offsets beyond
    ±15:59 and Python dates before year 1, which would otherwise reach them from a query string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            utc = moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ma.ValidationError("Out of range.") from None
        if not 1900 <= utc.year <= 2200:
            raise ma.ValidationError("Between the years 1900 and 2200.")
        return utc


def nutrient_fields(**kwargs: Any) -> dict[str, ma.fields.Field]:
    return {n: ma.fields.Float(validate=validate.Range(0, NUTRIENT_MAX.get(n, 100.0)), **kwargs) for n in NUTRIENTS}


class RangePageArgsSchema(ma.Schema):
    """A page of a time series: newest first, optionally within [from, to)."""

    class Meta:
        unknown = ma.RAISE

    cursor = ma.fields.String(load_default=None, metadata={"description": "next_cursor of the previous page"})
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT))
    from_ = UtcDateTime(data_key="from", attribute="from", load_default=None)
    to = UtcDateTime(load_default=None)


class DaysArgsSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    from_ = ma.fields.Date(data_key="from", attribute="from", required=True)
    to = ma.fields.Date(required=True)
