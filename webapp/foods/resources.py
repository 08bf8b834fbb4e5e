from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.health import foods as service
from domain.pagination import PageArgsSchema
from webapp.auth import current_user
from webapp.foods.schemas import FoodCreateSchema, FoodPageSchema, FoodPatchSchema, FoodSchema, FoodSearchArgsSchema

blp = Blueprint("foods", __name__, url_prefix="/api/v1", description="The food catalogue and your own foods")


@blp.route("/foods")
class Foods(MethodView):
    @blp.arguments(FoodSearchArgsSchema, location="query")
    @blp.response(200, FoodPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search the catalogue and your own foods, best match first (typos and prefixes welcome)"""
        return service.search(current_user(), args["q"], args["limit"])

    @blp.arguments(FoodCreateSchema)
    @blp.response(201, FoodSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add a food or product of your own (nutrients per 100 g), or a recipe made of foods"""
        return service.serialize(service.create_food(current_user(), data))


@blp.route("/me/foods")
class OwnFoods(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, FoodPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your own foods, products and recipes, newest first"""
        return service.list_own_foods(current_user(), args["cursor"], args["limit"])


@blp.route("/foods/barcode/<string:ean>")
class FoodByBarcode(MethodView):
    @blp.response(200, FoodSchema)
    def get(self, ean: str) -> dict[str, Any]:
        """The product with this barcode (yours first, then the catalogue's)"""
        return service.by_barcode(current_user(), ean)


@blp.route("/foods/<int:food_id>")
class FoodById(MethodView):
    @blp.response(200, FoodSchema)
    def get(self, food_id: int) -> dict[str, Any]:
        """A catalogue food or one of your own"""
        return service.serialize(service.visible_food(current_user(), food_id))

    @blp.arguments(FoodPatchSchema)
    @blp.response(200, FoodSchema)
    def patch(self, changes: dict[str, Any], food_id: int) -> dict[str, Any]:
        """Edit a food of your own (meals already logged keep what they recorded)"""
        return service.serialize(service.update_food(current_user(), food_id, changes))

    @blp.response(204)
    def delete(self, food_id: int) -> None:
        """Delete a food of your own"""
        service.delete_food(current_user(), food_id)
