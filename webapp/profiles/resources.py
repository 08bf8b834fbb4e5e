from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.social import profiles as service
from webapp.auth import current_user
from webapp.profiles.schemas import (
    AthletePageSchema,
    AthleteSearchArgsSchema,
    PreferencesSchema,
    ProfileSchema,
    PublicProfileSchema,
)

blp = Blueprint("profiles", __name__, url_prefix="/api/v1", description="Athlete profiles and preferences")


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, ProfileSchema)
    def get(self) -> dict[str, Any]:
        """The signed-in athlete's profile and preferences"""
        return service.own_profile(current_user())

    @blp.arguments(ProfileSchema(partial=True))
    @blp.response(200, ProfileSchema)
    def patch(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Update profile fields and/or preferences (only the fields sent change)"""
        return service.own_profile(service.update_profile(current_user(), changes))

    @blp.response(204)
    def delete(self) -> None:
        """Delete the account and all its data (activities, uploads, follows, …). Irreversible."""
        service.delete_account(current_user())


@blp.route("/me/preferences")
class MyPreferences(MethodView):
    @blp.response(200, PreferencesSchema)
    def get(self) -> dict[str, Any]:
        """The signed-in athlete's preferences"""
        return service.own_profile(current_user())["preferences"]

    @blp.arguments(PreferencesSchema(partial=True))
    @blp.response(200, PreferencesSchema)
    def patch(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Update preferences (notification categories merge with the current ones)"""
        user = service.update_profile(current_user(), {"preferences": changes})
        return service.own_profile(user)["preferences"]


@blp.route("/users/<int:user_id>")
class UserProfile(MethodView):
    @blp.response(200, PublicProfileSchema)
    def get(self, user_id: int) -> dict[str, Any]:
        """An athlete's public profile (details hidden for private accounts unless you follow them)"""
        viewer = current_user()
        return service.public_profile(viewer, service.get_visible_user(viewer, user_id))


@blp.route("/athletes")
class Athletes(MethodView):
    @blp.doc(operationId="searchAthletes")
    @blp.arguments(AthleteSearchArgsSchema, location="query")
    @blp.response(200, AthletePageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Find athletes by name (blocked and blocking accounts are never found)"""
        return service.search(current_user(), args["q"], args["cursor"], args["limit"])
