from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.health import sleep as service
from webapp.auth import current_user
from webapp.sleep.schemas import (
    DeviceEventsResultSchema,
    DeviceEventsSchema,
    SleepArgsSchema,
    SleepCreateSchema,
    SleepPageSchema,
    SleepPatchSchema,
    SleepSchema,
)

blp = Blueprint("sleep", __name__, url_prefix="/api/v1", description="Your sleep (private to you)")


@blp.route("/me/sleep")
class Sleep(MethodView):
    @blp.arguments(SleepArgsSchema, location="query")
    @blp.response(200, SleepPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your sleep sessions from every source, newest first, each saying whether it counts for its night"""
        return service.list_sleep(current_user(), args)

    @blp.arguments(SleepCreateSchema)
    @blp.response(201, SleepSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Enter a sleep session (at most 24 hours; not overlapping another you entered)"""
        return service.serialize(service.create_sleep(current_user(), data))


@blp.route("/me/sleep/<int:sleep_id>")
class SleepById(MethodView):
    @blp.response(200, SleepSchema)
    def get(self, sleep_id: int) -> dict[str, Any]:
        """One of your sleep sessions"""
        return service.serialize(service.get_sleep(current_user(), sleep_id))

    @blp.arguments(SleepPatchSchema)
    @blp.response(200, SleepSchema)
    def patch(self, changes: dict[str, Any], sleep_id: int) -> dict[str, Any]:
        """Rate or annotate a session; move one you entered"""
        return service.serialize(service.update_sleep(current_user(), sleep_id, changes))

    @blp.response(204)
    def delete(self, sleep_id: int) -> None:
        """Delete a session"""
        service.delete_sleep(current_user(), sleep_id)


@blp.route("/me/device-events")
class DeviceEvents(MethodView):
    @blp.arguments(DeviceEventsSchema)
    @blp.response(200, DeviceEventsResultSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Phone interaction events (oldest first); the nights they touch are estimated again"""
        return service.record_events(current_user(), data["events"])
