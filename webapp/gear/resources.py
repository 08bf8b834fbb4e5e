from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain import gear as service
from webapp.auth import current_user
from webapp.gear.schemas import GearCreateSchema, GearPatchSchema, GearSchema

blp = Blueprint("gear", __name__, url_prefix="/api/v1",
                description="Gear: shoes and bikes, their distance, the default per sport, retired gear")


@blp.route("/me/gear")
class MyGear(MethodView):
    @blp.response(200, GearSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Your gear with the distance each has done (active first, then retired)"""
        return service.list_gear(current_user())

    @blp.arguments(GearCreateSchema)
    @blp.response(201, GearSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add shoes or a bike (optionally the default for some sports)"""
        return service.serialize(service.create(current_user(), data))


@blp.route("/me/gear/<int:gear_id>")
class GearById(MethodView):
    @blp.response(200, GearSchema)
    def get(self, gear_id: int) -> dict[str, Any]:
        """One of your gear"""
        return service.serialize(service.get_own(current_user(), gear_id))

    @blp.arguments(GearPatchSchema)
    @blp.response(200, GearSchema)
    def patch(self, changes: dict[str, Any], gear_id: int) -> dict[str, Any]:
        """Rename, retire (which drops its defaults) or change the sports it is the default for"""
        return service.serialize(service.update(current_user(), gear_id, changes))

    @blp.response(204)
    def delete(self, gear_id: int) -> None:
        """Delete gear; its activities keep their distance, without gear"""
        service.delete(current_user(), gear_id)
