"""Strava API v3 compatibility (``/api/v3``): Strava's routes, field names, units, error shape and rate-limit
headers, translated onto the same domain operations as ``/api/v1`` (docs/strava-api.md)."""
