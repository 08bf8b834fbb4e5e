"""Push devices of the signed-in athlete: register (upsert by token), list, remove."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert

# flask_smorest.abort is this function re-exported without types; from here the checker knows it never returns.
from webargs.flaskparser import abort

from models import Device, User, db
from models.device import MAX_DEVICES_PER_USER
from webapp.auth import current_user
from webapp.devices.schemas import DeviceInSchema, DeviceListSchema, DeviceSchema

blp = Blueprint("devices", __name__, url_prefix="/api/v1", description="Push devices (FCM registration tokens)")


def register(user: User, token: str, platform: str, app_version: str | None) -> tuple[Device, bool]:
    """Upsert by token; returns the device and whether it is new to this athlete.

    A token belongs to one app install, so registering a token another account holds moves it: the old row
    goes (with any push still queued for it, which was meant for the other account) and a new one is made.
    """
    db.session.execute(delete(Device).where(Device.token == token, Device.user_id != user.id))
    known = db.session.scalar(select(Device.id).where(Device.token == token))
    stmt = insert(Device).values(user_id=user.id, token=token, platform=platform, app_version=app_version)
    device_id = db.session.scalar(stmt.on_conflict_do_update(
        index_elements=["token"],
        set_={"platform": stmt.excluded.platform, "app_version": stmt.excluded.app_version, "updated_at": func.now()},
    ).returning(Device.id))
    # Reinstalls leave dead tokens behind that FCM may take weeks to report: keep the newest few.
    keep = (select(Device.id).where(Device.user_id == user.id)
            .order_by(Device.updated_at.desc(), Device.id.desc()).limit(MAX_DEVICES_PER_USER))
    db.session.execute(delete(Device).where(Device.user_id == user.id, Device.id.not_in(keep.scalar_subquery())))
    db.session.commit()
    return db.session.get_one(Device, device_id, populate_existing=True), known is None


def _own_device(user: User, ref: str) -> Device:
    cond = Device.token == ref
    # ASCII digits only: str.isdigit() also accepts "¹" and "²", which int() refuses; 18 digits fit a bigint.
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:
        cond = or_(cond, Device.id == int(ref))
    device = db.session.scalar(select(Device).where(Device.user_id == user.id, cond).limit(1))
    if device is None:
        abort(404, message="Device not found.")
    return device


@blp.route("/me/devices")
class Devices(MethodView):
    @blp.response(200, DeviceListSchema)
    def get(self) -> dict[str, Any]:
        """Your registered push devices, most recently registered first"""
        rows = db.session.scalars(select(Device).where(Device.user_id == current_user().id)
                                  .order_by(Device.updated_at.desc(), Device.id.desc()))
        return {"items": list(rows)}

    @blp.arguments(DeviceInSchema)
    @blp.response(201, DeviceSchema)
    @blp.alt_response(200, schema=DeviceSchema, description="The token was registered already: updated")
    def post(self, data: dict[str, Any]) -> tuple[Device, int]:
        """Register this app install for push (upsert by token; a token another account held moves here)"""
        device, created = register(current_user(), data["token"], data["platform"], data["app_version"])
        return device, 201 if created else 200


@blp.route("/me/devices/<string:ref>")
class DeviceByRef(MethodView):
    @blp.response(204)
    def delete(self, ref: str) -> None:
        """Stop pushes to a device, by its token or its id (sign-out)"""
        db.session.delete(_own_device(current_user(), ref))
        db.session.commit()
