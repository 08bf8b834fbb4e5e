"""The food catalogue and athletes' own foods: loading, search, barcodes, own foods and recipes, importers.

Catalogue foods (``user_id`` NULL) are shared and read-only; an athlete's own foods, products and recipes are
theirs alone (404 for anyone else). Search: see ``domain.algorithms.food_search``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert

from domain.algorithms import food_search, nutrition
from domain.errors import refuse
from domain.health.common import invalid, owned
from domain.pagination import decode_cursor, encode_cursor
from models import Food, FoodPortion, RecipeItem, User, db
from models.health import NUTRIENTS

CATALOGUE = Path(__file__).resolve().parent / "catalogue" / "sr28.jsonl.gz"
#: Candidates fetched from the index before the final ranking: enough that the right food is among them for
#: a one-word query ("banana": about 60 foods), few enough to rank in well under a millisecond.
CANDIDATES = 300
MAX_OWN_FOODS = 5000
VOCABULARY_TTL_S = 60.0
BATCH = 1000


# -- loading catalogues ---------------------------------------------------------------------------------------

def _food_row(source: str, source_id: str, name: str, *, group: str = "", common: str = "", brand: str = "",
              barcode: str | None = None, nutrients: dict[str, Any]) -> dict[str, Any]:
    head, rest = food_search.split_name(name)
    return {
        "user_id": None, "source": source, "source_id": source_id[:32], "name": name[:200],
        "brand": brand[:120] or None, "food_group": group[:80] or None, "common_names": common[:200] or None,
        "barcode": barcode, "search_head": head[:200], "search_rest": rest[:400],
        "search_extra": food_search.fold(f"{brand} {common}")[:400],
        **{n: nutrients.get(n) for n in NUTRIENTS},
    }


def _upsert(rows: list[dict[str, Any]], portions: dict[str, list[tuple[float, str, float]]]) -> int:
    """Insert catalogue foods not there yet (by source and source id) and their portions; returns how many."""
    if not rows:
        return 0
    stmt = (insert(Food).values(rows)
            .on_conflict_do_nothing(index_elements=["source", "source_id"], index_where=text("user_id IS NULL"))
            .returning(Food.id, Food.source_id))
    inserted = db.session.execute(stmt).all()
    portion_rows = [
        {"food_id": food_id, "seq": seq, "amount": amount, "description": desc[:120], "grams": grams}
        for food_id, source_id in inserted
        for seq, (amount, desc, grams) in enumerate(portions.get(source_id or "", []), start=1)
        if grams > 0 and amount > 0
    ]
    if portion_rows:
        db.session.execute(insert(FoodPortion), portion_rows)
    return len(inserted)


def _batched(records: Iterable[tuple[dict[str, Any], list[tuple[float, str, float]]]]) -> int:
    count = 0
    rows: list[dict[str, Any]] = []
    portions: dict[str, list[tuple[float, str, float]]] = {}
    for row, row_portions in records:
        rows.append(row)
        portions[row["source_id"]] = row_portions
        if len(rows) >= BATCH:
            count += _upsert(rows, portions)
            rows, portions = [], {}
    count += _upsert(rows, portions)
    db.session.commit()
    forget_vocabulary()
    return count


def _sr28_records(path: Path) -> Iterator[tuple[dict[str, Any], list[tuple[float, str, float]]]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            yield (_food_row("sr28", rec["ndb"], rec["name"], group=rec["group"], common=rec["common"],
                             nutrients=rec),
                   [(float(a), str(d), float(g)) for a, d, g in rec["portions"]])


def import_catalogue(path: Path = CATALOGUE) -> int:
    """Load the shipped catalogue (idempotent: foods already there are left alone); returns foods added."""
    return _batched(_sr28_records(path))


def catalogue_size(source: str | None = None) -> int:
    query = select(func.count()).select_from(Food).where(Food.user_id.is_(None))
    if source is not None:
        query = query.where(Food.source == source)
    return int(db.session.scalar(query) or 0)


def _number(value: str | None, scale: float = 1.0) -> float | None:
    try:
        number = float(value) * scale if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 1e6 else None


#: Open Food Facts CSV columns (per 100 g) → ours, with the factor to our unit (OFF gives minerals in grams).
OFF_COLUMNS = {
    "energy-kcal_100g": ("energy_kcal", 1.0), "proteins_100g": ("protein_g", 1.0), "fat_100g": ("fat_g", 1.0),
    "saturated-fat_100g": ("saturated_fat_g", 1.0), "carbohydrates_100g": ("carbohydrate_g", 1.0),
    "fiber_100g": ("fiber_g", 1.0), "sugars_100g": ("sugars_g", 1.0), "sodium_100g": ("sodium_mg", 1000.0),
    "potassium_100g": ("potassium_mg", 1000.0), "calcium_100g": ("calcium_mg", 1000.0),
    "iron_100g": ("iron_mg", 1000.0),
}


def _barcode(value: str | None) -> str | None:
    code = (value or "").strip()
    return code if code.isdigit() and 8 <= len(code) <= 14 else None


def _off_records(stream: IO[str]) -> Iterator[tuple[dict[str, Any], list[tuple[float, str, float]]]]:
    # The dump is one tab-separated file of millions of rows: read it as a stream, never whole.
    csv.field_size_limit(1 << 20)
    for rec in csv.DictReader(stream, delimiter="\t", quoting=csv.QUOTE_NONE):
        code, name = _barcode(rec.get("code")), (rec.get("product_name") or "").strip()
        if code is None or not name:
            continue
        nutrients = {ours: _number(rec.get(col), factor) for col, (ours, factor) in OFF_COLUMNS.items()}
        if nutrients["energy_kcal"] is None:
            continue  # a product without its energy can't be logged meaningfully
        grams = _number(rec.get("serving_quantity"))
        portions = [(1.0, f"serving ({rec.get('serving_size') or ''})".replace(" ()", "")[:120], grams)] \
            if grams else []
        brand = (rec.get("brands") or "").split(",")[0].strip()
        yield (_food_row("off", code, name, brand=brand, barcode=code, nutrients=nutrients), portions)


def import_open_food_facts(stream: IO[str]) -> int:
    """Load products from an Open Food Facts CSV export (tab-separated, as published)."""
    return _batched(_off_records(stream))


#: FoodData Central nutrient ids → ours (its CSV gives each nutrient in the unit ours are named with).
FDC_NUTRIENTS = {"1008": "energy_kcal", "1003": "protein_g", "1004": "fat_g", "1258": "saturated_fat_g",
                 "1005": "carbohydrate_g", "1079": "fiber_g", "2000": "sugars_g", "1093": "sodium_mg",
                 "1092": "potassium_mg", "1087": "calcium_mg", "1089": "iron_mg", "1051": "water_g"}


def _fdc_records(folder: Path) -> Iterator[tuple[dict[str, Any], list[tuple[float, str, float]]]]:
    nutrients: dict[str, dict[str, float]] = {}
    with (folder / "food_nutrient.csv").open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            ours = FDC_NUTRIENTS.get(rec.get("nutrient_id") or "")
            value = _number(rec.get("amount"))
            if ours and value is not None:
                nutrients.setdefault(rec["fdc_id"], {})[ours] = value
    branded: dict[str, tuple[str, str | None]] = {}
    if (folder / "branded_food.csv").is_file():
        with (folder / "branded_food.csv").open(encoding="utf-8", newline="") as fh:
            for rec in csv.DictReader(fh):
                branded[rec["fdc_id"]] = ((rec.get("brand_owner") or "").strip(), _barcode(rec.get("gtin_upc")))
    portions: dict[str, list[tuple[float, str, float]]] = {}
    if (folder / "food_portion.csv").is_file():
        with (folder / "food_portion.csv").open(encoding="utf-8", newline="") as fh:
            for rec in csv.DictReader(fh):
                grams, amount = _number(rec.get("gram_weight")), _number(rec.get("amount")) or 1.0
                desc = (rec.get("portion_description") or rec.get("modifier") or "").strip()
                if grams and desc:
                    portions.setdefault(rec["fdc_id"], []).append((amount, desc, grams))
    with (folder / "food.csv").open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            fdc_id, name = rec.get("fdc_id") or "", (rec.get("description") or "").strip()
            if not fdc_id or not name or "energy_kcal" not in nutrients.get(fdc_id, {}):
                continue
            brand, code = branded.get(fdc_id, ("", None))
            yield (_food_row("fdc", fdc_id, name, brand=brand, barcode=code, nutrients=nutrients[fdc_id]),
                   portions.get(fdc_id, []))


def import_fooddata_central(folder: Path) -> int:
    """Load foods from a FoodData Central CSV download (food.csv, food_nutrient.csv; branded_food.csv and
    food_portion.csv when present)."""
    return _batched(_fdc_records(folder))


# -- search ---------------------------------------------------------------------------------------------------

_vocabulary: food_search.Vocabulary | None = None
_vocabulary_key: tuple[int, int] | None = None
_vocabulary_checked = 0.0
_vocabulary_lock = threading.Lock()


def forget_vocabulary() -> None:
    global _vocabulary, _vocabulary_key
    with _vocabulary_lock:
        _vocabulary, _vocabulary_key = None, None


def vocabulary() -> food_search.Vocabulary:
    """The catalogue's words, kept per process and reloaded when the catalogue changed (checked each minute)."""
    global _vocabulary, _vocabulary_key, _vocabulary_checked
    now = time.monotonic()
    if _vocabulary is not None and now - _vocabulary_checked < VOCABULARY_TTL_S:
        return _vocabulary
    key_row = db.session.execute(select(func.count(), func.coalesce(func.max(Food.id), 0))
                                 .where(Food.user_id.is_(None))).one()
    key = (int(key_row[0]), int(key_row[1]))
    with _vocabulary_lock:
        if _vocabulary is None or key != _vocabulary_key:
            texts = db.session.scalars(select(Food.search_head + " " + Food.search_rest + " " + Food.search_extra)
                                       .where(Food.user_id.is_(None)))
            _vocabulary, _vocabulary_key = food_search.vocabulary_of(texts), key
        _vocabulary_checked = now
        return _vocabulary


_CANDIDATES = text("""
SELECT id, search_head, search_rest, search_extra, user_id IS NOT NULL AS own, ts_rank(search_vector, q) AS rank
FROM foods, to_tsquery('english', :q) AS q
WHERE search_vector @@ q AND (user_id IS NULL OR user_id = :user_id)
ORDER BY rank DESC, id
LIMIT :candidates
""")


def search_ids(user_id: int, query: str, limit: int) -> list[int]:
    terms = food_search.plan(query, vocabulary())
    if not terms:
        return []
    found: list[food_search.Candidate] = []
    for every in (True, False):  # every word; failing that, any word (best matches still rank first)
        q = food_search.tsquery(terms, every=every)
        if not q:
            return []
        rows = db.session.execute(_CANDIDATES, {"q": q, "user_id": user_id, "candidates": CANDIDATES}).all()
        found = [food_search.Candidate(r.id, r.search_head, r.search_rest, float(r.rank), bool(r.own), r.search_extra)
                 for r in rows]
        if found or len(terms) == 1:
            break
    return [c.id for c in food_search.rank(terms, found)[:limit]]


def search(user: User, query: str, limit: int) -> dict[str, Any]:
    ids = search_ids(user.id, query, limit)
    return {"items": serialize_many(ids), "next_cursor": None}


# -- reading and writing foods --------------------------------------------------------------------------------

def visible_food(user: User, food_id: int) -> Food:
    food = db.session.get(Food, food_id)
    if food is None or (food.user_id is not None and food.user_id != user.id):
        refuse(404, "Food not found.")
    return food


def nutrients_of(food: Food) -> dict[str, float | None]:
    return {n: getattr(food, n) for n in NUTRIENTS}


_FOODS_WITH_PORTIONS = text(f"""
SELECT f.id, f.name, f.brand, f.barcode, f.food_group, f.source, f.user_id, f.is_recipe, f.created_at,
       {", ".join(f"f.{n}" for n in NUTRIENTS)},
       COALESCE((SELECT json_agg(json_build_object('id', p.id, 'amount', p.amount, 'description', p.description,
                                                   'grams', p.grams) ORDER BY p.seq)
                 FROM food_portions p WHERE p.food_id = f.id), '[]'::json) AS portions
FROM foods f
WHERE f.id = ANY(CAST(:ids AS bigint[]))
""")


def serialize_many(ids: list[int]) -> list[dict[str, Any]]:
    """Foods with their portions in the order of ``ids``, in one query (rows, not ORM objects: a search page is
    read-only, and this is a good part of its cost)."""
    if not ids:
        return []
    foods = {row.id: row for row in db.session.execute(_FOODS_WITH_PORTIONS, {"ids": ids})}
    return [{
        "id": f.id, "name": f.name, "brand": f.brand, "barcode": f.barcode, "food_group": f.food_group,
        "source": f.source, "own": f.user_id is not None, "is_recipe": f.is_recipe,
        **{n: getattr(f, n) for n in NUTRIENTS}, "portions": f.portions, "created_at": f.created_at,
    } for f in (foods[i] for i in ids if i in foods)]


def serialize(food: Food, portions: list[FoodPortion] | None = None) -> dict[str, Any]:
    if portions is None:
        portions = list(db.session.scalars(select(FoodPortion).where(FoodPortion.food_id == food.id)
                                           .order_by(FoodPortion.seq)))
    return {
        "id": food.id, "name": food.name, "brand": food.brand, "barcode": food.barcode,
        "food_group": food.food_group, "source": food.source, "own": food.user_id is not None,
        "is_recipe": food.is_recipe, **nutrients_of(food),
        "portions": [{"id": p.id, "amount": p.amount, "description": p.description, "grams": p.grams}
                     for p in portions],
        "created_at": food.created_at,
    }


def by_barcode(user: User, ean: str) -> dict[str, Any]:
    code = _barcode(ean)
    if code is None:
        refuse(422, "A barcode is 8 to 14 digits (EAN-8, UPC-A, EAN-13, GTIN-14).",
               errors={"path": {"ean": ["8 to 14 digits."]}})
    # The athlete's own product first (they may have corrected a catalogue entry), then the catalogue.
    food_id = db.session.scalar(
        select(Food.id).where(Food.barcode == code, (Food.user_id == user.id) | Food.user_id.is_(None))
        .order_by(Food.user_id.is_(None), Food.id).limit(1))
    if food_id is None:
        refuse(404, "No food with this barcode.")
    return serialize_many([food_id])[0]


def _recipe_nutrients(user: User, items: list[dict[str, Any]]) -> tuple[dict[str, float], list[RecipeItem]]:
    pairs, rows = [], []
    for i, item in enumerate(items):
        food = db.session.get(Food, item["food_id"])
        if food is None or (food.user_id is not None and food.user_id != user.id):
            refuse(422, "Unknown food.", errors={"json": {"items": {str(i): {"food_id": ["Unknown food."]}}}})
        pairs.append((nutrients_of(food), float(item["grams"])))
        rows.append(RecipeItem(food_id=food.id, name=food.name, grams=float(item["grams"])))
    return nutrition.per_100g(pairs, NUTRIENTS), rows


def _own_count(user: User) -> int:
    return int(db.session.scalar(select(func.count()).select_from(Food).where(Food.user_id == user.id)) or 0)


def create_food(user: User, data: dict[str, Any]) -> Food:
    """An athlete's own food or product (nutrients per 100 g given) or recipe (``items``: nutrients computed)."""
    if _own_count(user) >= MAX_OWN_FOODS:
        refuse(409, f"You have {MAX_OWN_FOODS} foods of your own already: delete some first.")
    values = {n: data.get(n) for n in NUTRIENTS}
    recipe_items: list[RecipeItem] = []
    items = data.get("items")
    if items:
        if any(data.get(n) is not None for n in NUTRIENTS):
            invalid("items", "A recipe's nutrients come from its items: give one or the other.")
        values, recipe_items = _recipe_nutrients(user, items)  # type: ignore[assignment]
    elif data.get("energy_kcal") is None:
        invalid("energy_kcal", "Give the energy per 100 g (or the recipe's items).")
    head, rest = food_search.split_name(data["name"])
    food = Food(user_id=user.id, source="user", name=data["name"], brand=data.get("brand"),
                barcode=data.get("barcode"), is_recipe=bool(items), search_head=head[:200], search_rest=rest[:400],
                search_extra=food_search.fold(data.get("brand") or "")[:400],
                **values)
    db.session.add(food)
    db.session.flush()
    for item in recipe_items:
        item.recipe_id = food.id
        db.session.add(item)
    portions = list(data.get("portions") or [])
    if items and not portions:
        portions = [{"description": "whole recipe", "grams": sum(i.grams for i in recipe_items), "amount": 1.0}]
    for seq, p in enumerate(portions, start=1):
        db.session.add(FoodPortion(food_id=food.id, seq=seq, amount=p.get("amount", 1.0),
                                   description=p["description"], grams=p["grams"]))
    db.session.commit()
    return food


def update_food(user: User, food_id: int, changes: dict[str, Any]) -> Food:
    food = owned(Food, food_id, user, "Food")
    if food.is_recipe and any(n in changes for n in NUTRIENTS):
        invalid("energy_kcal", "A recipe's nutrients come from its items.")
    for key, value in changes.items():
        setattr(food, key, value)
    if "name" in changes or "brand" in changes:
        head, rest = food_search.split_name(food.name)
        food.search_head, food.search_rest = head[:200], rest[:400]
        food.search_extra = food_search.fold(food.brand or "")[:400]
    db.session.commit()
    return food


def delete_food(user: User, food_id: int) -> None:
    """Meals that used it keep their name and nutrients (computed when logged)."""
    food = owned(Food, food_id, user, "Food")
    db.session.execute(delete(Food).where(Food.id == food.id))
    db.session.commit()


def list_own_foods(user: User, cursor: str | None, limit: int) -> dict[str, Any]:
    after = decode_cursor(cursor, 1)
    query = select(Food.id).where(Food.user_id == user.id)
    if after is not None:
        query = query.where(Food.id < int(after[0]))
    ids = list(db.session.scalars(query.order_by(Food.id.desc()).limit(limit + 1)))
    return {"items": serialize_many(ids[:limit]), "next_cursor": encode_cursor(ids[limit - 1]) if len(ids) > limit
            else None}


def open_text(path: Path) -> IO[str]:
    """A CSV dump, gzipped or not."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")
