"""The nutrition log: meals of foods (grams or household portions), and each day's totals against targets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from domain.algorithms import nutrition
from domain.errors import refuse
from domain.health import common
from domain.health.foods import nutrients_of
from models import Activity, Food, FoodPortion, Meal, MealItem, User, db
from models.health import NUTRIENTS

MAX_DAYS = 93
MAX_ITEM_GRAMS = 5000.0


def _item_rows(user: User, items: list[dict[str, Any]]) -> list[MealItem]:
    rows = []
    for i, item in enumerate(items):
        food = db.session.get(Food, item["food_id"])
        if food is None or (food.user_id is not None and food.user_id != user.id):
            refuse(422, "Unknown food.", errors={"json": {"items": {str(i): {"food_id": ["Unknown food."]}}}})
        portion_id, quantity = item.get("portion_id"), item.get("quantity")
        if portion_id is not None:
            portion = db.session.get(FoodPortion, portion_id)
            if portion is None or portion.food_id != food.id:
                refuse(422, "That portion is not one of this food's.",
                       errors={"json": {"items": {str(i): {"portion_id": ["Not a portion of this food."]}}}})
            grams = portion.grams * float(quantity or 1.0)
        else:
            grams = float(item["grams"])
        if not 0 < grams <= MAX_ITEM_GRAMS:
            refuse(422, f"An item weighs more than 0 g and at most {MAX_ITEM_GRAMS:.0f} g.",
                   errors={"json": {"items": {str(i): {"grams": ["Out of range."]}}}})
        amounts = nutrition.scale_nutrients(nutrients_of(food), grams)
        rows.append(MealItem(food_id=food.id, name=food.name, grams=round(grams, 2), portion_id=portion_id,
                             quantity=quantity, nutrients={k: v for k, v in amounts.items() if v is not None}))
    return rows


def serialize(meal: Meal, items: list[MealItem] | None = None) -> dict[str, Any]:
    if items is None:
        items = list(db.session.scalars(select(MealItem).where(MealItem.meal_id == meal.id).order_by(MealItem.id)))
    return {
        "id": meal.id, "meal_type": meal.meal_type, "eaten_at": meal.eaten_at, "notes": meal.notes,
        "source": meal.source,
        "items": [{"id": i.id, "food_id": i.food_id, "name": i.name, "grams": i.grams, "portion_id": i.portion_id,
                   "quantity": i.quantity, "nutrients": i.nutrients} for i in items],
        "totals": nutrition.sum_nutrients((i.nutrients for i in items), NUTRIENTS),
        "created_at": meal.created_at, "updated_at": meal.updated_at,
    }


def create_meal(user: User, data: dict[str, Any], *, source: str = "manual") -> Meal:
    eaten_at = common.check_time(data["eaten_at"], "eaten_at")
    items = _item_rows(user, data["items"])  # all validated before anything is written
    meal = Meal(user_id=user.id, meal_type=data["meal_type"], eaten_at=eaten_at, notes=data.get("notes"),
                source=source)
    db.session.add(meal)
    db.session.flush()
    for item in items:
        item.meal_id = meal.id
        db.session.add(item)
    db.session.commit()
    return meal


def get_meal(user: User, meal_id: int) -> Meal:
    return common.owned(Meal, meal_id, user, "Meal")


def update_meal(user: User, meal_id: int, changes: dict[str, Any]) -> Meal:
    meal = get_meal(user, meal_id)
    if "eaten_at" in changes:
        changes["eaten_at"] = common.check_time(changes["eaten_at"], "eaten_at")
    items = _item_rows(user, changes.pop("items")) if "items" in changes else None
    for key, value in changes.items():
        setattr(meal, key, value)
    if items is not None:
        db.session.execute(delete(MealItem).where(MealItem.meal_id == meal.id))
        for item in items:
            item.meal_id = meal.id
            db.session.add(item)
    meal.updated_at = datetime.now(UTC)
    db.session.commit()
    return meal


def delete_meal(user: User, meal_id: int) -> None:
    db.session.delete(get_meal(user, meal_id))
    db.session.commit()


def list_meals(user: User, args: dict[str, Any]) -> dict[str, Any]:
    query = select(Meal).where(Meal.user_id == user.id)
    if args.get("from") is not None:
        query = query.where(Meal.eaten_at >= args["from"])
    if args.get("to") is not None:
        query = query.where(Meal.eaten_at < args["to"])
    return common.page(query, Meal.eaten_at, Meal.id, args.get("cursor"), args["limit"], serialize)


def check_days(first: date, last: date) -> None:
    if first.year < 1900 or last.year > 2200:
        refuse(422, "Dates between the years 1900 and 2200.", errors={"query": {"from": ["Out of range."]}})
    if last < first:
        refuse(422, "'to' is before 'from'.", errors={"query": {"to": ["Before from."]}})
    if (last - first).days + 1 > MAX_DAYS:
        refuse(422, f"At most {MAX_DAYS} days at a time.", errors={"query": {"to": ["Range too long."]}})


def _workouts(user: User, start: datetime, end: datetime) -> list[Activity]:
    return list(db.session.scalars(select(Activity).where(Activity.user_id == user.id, Activity.start_time >= start,
                                                          Activity.start_time < end)))


def energy_of(activity: Activity, user: User, weight: float, age: int | None, basal: float) -> tuple[float, str]:
    details = activity.details or {}
    workout = nutrition.Workout(sport=activity.sport_type, duration_s=activity.moving_time_s or activity.elapsed_time_s,
                                device_kcal=details.get("energy_kcal"), avg_hr=activity.avg_hr)
    return nutrition.activity_energy_kcal(workout, sex=user.sex, age_years=age, weight_kg=weight,
                                          basal_kcal_day=basal)


#: Without a weight on file, an activity's energy is estimated for this one (and says so in its method).
DEFAULT_WEIGHT_KG = 70.0


def activity_energy(activity: Activity, user: User) -> tuple[float, str]:
    """One activity's energy by the rule the nutrition targets use (device figure, else heart rate, else MET),
    with the athlete's facts as of that day; a weight of 70 kg where none is known (method ``…_default_weight``)."""
    weight, height = common.body_on(user.id, activity.start_time)
    weight = weight or user.weight_kg
    age = common.age_on(user, activity.start_time.date())
    if weight is not None and height is not None and age is not None:
        return energy_of(activity, user, weight, age, nutrition.mifflin_st_jeor(user.sex, age, height, weight))
    workout_s = activity.moving_time_s or activity.elapsed_time_s
    kcal = nutrition.met_energy_kcal(activity.sport_type, workout_s, weight or DEFAULT_WEIGHT_KG)
    device = (activity.details or {}).get("energy_kcal")
    if device:
        return float(device), "device"
    return kcal, "met" if weight is not None else "met_default_weight"


def nutrition_days(user: User, first: date, last: date) -> dict[str, Any]:
    """Each local day's totals and targets: basal rate (Mifflin–St Jeor) × daily life + the day's workouts."""
    check_days(first, last)
    zone = common.zone_of(user)
    prof = common.profile(user)
    db.session.commit()  # the profile row, if this made it
    days = []
    day = first
    while day <= last:
        start, end = common.local_day_bounds(day, zone)
        items = db.session.scalars(select(MealItem.nutrients).join(Meal, Meal.id == MealItem.meal_id)
                                   .where(Meal.user_id == user.id, Meal.eaten_at >= start, Meal.eaten_at < end))
        totals = nutrition.sum_nutrients(items, NUTRIENTS)
        weight = common.latest_metric(user.id, "weight", end) or user.weight_kg
        height = common.latest_metric(user.id, "height", end) or prof.height_cm
        age = common.age_on(user, day)
        missing = [name for name, value in (("weight", weight), ("height", height), ("birth_year", age))
                   if value is None]
        target: dict[str, Any] | None = None
        if not missing:
            assert weight is not None and height is not None and age is not None
            basal = nutrition.mifflin_st_jeor(user.sex, age, height, weight)
            workouts = [energy_of(a, user, weight, age, basal) for a in _workouts(user, start, end)]
            activity_kcal = sum(kcal for kcal, _ in workouts)
            energy = nutrition.energy_target_kcal(basal, activity_kcal)
            target = {"basal_kcal": round(basal, 1), "activity_kcal": round(activity_kcal, 1),
                      "activity_methods": sorted({method for _, method in workouts}),
                      "energy_kcal": round(energy, 1),
                      **{k: round(v, 1) for k, v in nutrition.macro_targets_g(
                          energy, prof.protein_pct, prof.carbohydrate_pct, prof.fat_pct).items()}}
        days.append({"date": day.isoformat(), "totals": {k: round(v, 2) for k, v in totals.items()},
                     "target": target, "missing": missing})
        day += timedelta(days=1)
    return {"items": days, "next_cursor": None}
