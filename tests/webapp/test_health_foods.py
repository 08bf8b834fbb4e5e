"""The food catalogue through the API: search as people type, barcodes, own foods and recipes, importers."""

from __future__ import annotations

import io

import pytest

from tests.support.foods import food_named


def search(client, headers, q, limit=5):
    resp = client.get("/api/v1/foods", query_string={"q": q, "limit": limit}, headers=headers)
    assert resp.status_code == 200, resp.json
    return [item["name"] for item in resp.json["items"]]


def test_the_whole_catalogue_is_loaded(food_catalogue):
    assert food_catalogue == 8789


@pytest.mark.parametrize(("query", "expected_first"), [
    ("banana", "Bananas, raw"),
    ("bananas", "Bananas, raw"),
    ("broccoli", "Broccoli, raw"),
    ("brocoli", "Broccoli, raw"),
    ("strawbery", "Strawberries, raw"),
    ("orange juice", "Orange juice, raw"),
])
def test_search_ranks_the_food_people_mean_first(client, login, food_catalogue, query, expected_first):
    ann, _ = login("ann")
    assert search(client, ann, query)[0] == expected_first


def test_banana_finds_raw_bananas_before_banana_bread(client, login, food_catalogue):
    ann, _ = login("ann")
    names = search(client, ann, "banana", limit=50)
    bread = next(i for i, n in enumerate(names) if n.startswith("Bread, banana"))
    assert names.index("Bananas, raw") < bread


def test_typos_and_prefixes(client, login, food_catalogue):
    ann, _ = login("ann")
    assert all("chicken" in n.lower() and "breast" in n.lower() for n in search(client, ann, "chiken brest", 3))
    assert search(client, ann, "ban")[0] == "Bananas, raw"  # while typing
    assert "Cheese, cheddar" in search(client, ann, "chedd", 3)


def test_a_food_carries_nutrients_per_100g_and_portions(client, login, food_catalogue):
    ann, _ = login("ann")
    banana = food_named(client, ann, "Bananas, raw")
    assert banana["energy_kcal"] == 89.0 and banana["potassium_mg"] == 358.0 and banana["water_g"] == 74.91
    assert {"description": "medium (7\" to 7-7/8\" long)", "grams": 118.0} in [
        {"description": p["description"], "grams": p["grams"]} for p in banana["portions"]]
    assert client.get(f"/api/v1/foods/{banana['id']}", headers=ann).json["name"] == "Bananas, raw"


@pytest.mark.parametrize("query", [{"q": ""}, {"q": "x" * 101}, {}, {"q": "a", "limit": 0}, {"q": "a", "limit": 51}])
def test_bad_search_args_are_422(client, login, query):
    ann, _ = login("ann")
    assert client.get("/api/v1/foods", query_string=query, headers=ann).status_code == 422


def test_nothing_found_is_an_empty_page(client, login, food_catalogue):
    ann, _ = login("ann")
    resp = client.get("/api/v1/foods", query_string={"q": "zzzzqqqq"}, headers=ann)
    assert resp.status_code == 200 and resp.json == {"items": [], "next_cursor": None}
    assert client.get("/api/v1/foods", query_string={"q": "&|!():*"}, headers=ann).status_code == 200


def test_own_products_by_barcode_are_private(client, login, food_catalogue):
    ann, _ = login("ann")
    bob, _ = login("bob")
    body = {"name": "Trail Mix Deluxe", "brand": "Hikers", "barcode": "4006381333931", "energy_kcal": 480,
            "protein_g": 14, "fat_g": 30, "carbohydrate_g": 40, "portions": [{"description": "bag", "grams": 50}]}
    created = client.post("/api/v1/foods", json=body, headers=ann)
    assert created.status_code == 201, created.json
    food = created.json
    assert food["own"] and food["source"] == "user" and food["portions"][0]["grams"] == 50
    assert client.get("/api/v1/foods/barcode/4006381333931", headers=ann).json["id"] == food["id"]
    assert client.get("/api/v1/foods/barcode/4006381333931", headers=bob).status_code == 404
    assert client.get(f"/api/v1/foods/{food['id']}", headers=bob).status_code == 404
    assert client.patch(f"/api/v1/foods/{food['id']}", json={"name": "x"}, headers=bob).status_code == 404
    assert client.delete(f"/api/v1/foods/{food['id']}", headers=bob).status_code == 404
    assert "Trail Mix Deluxe" in search(client, ann, "trail mix")
    assert "Trail Mix Deluxe" not in search(client, bob, "trail mix")
    assert client.get("/api/v1/foods/barcode/12ab", headers=ann).status_code == 422
    assert client.get("/api/v1/foods/barcode/00000000", headers=ann).status_code == 404
    assert [f["id"] for f in client.get("/api/v1/me/foods", headers=ann).json["items"]] == [food["id"]]


def test_catalogue_foods_are_read_only(client, login, food_catalogue):
    ann, _ = login("ann")
    banana = food_named(client, ann, "Bananas, raw")
    assert client.patch(f"/api/v1/foods/{banana['id']}", json={"name": "Mine"}, headers=ann).status_code == 404
    assert client.delete(f"/api/v1/foods/{banana['id']}", headers=ann).status_code == 404


def test_recipe_nutrients_come_from_its_items(client, login, food_catalogue):
    ann, _ = login("ann")
    banana = food_named(client, ann, "Bananas, raw")  # 89 kcal / 100 g
    oats = food_named(client, ann, "Cereals, oats, regular and quick, not fortified, dry")  # 379 kcal / 100 g
    resp = client.post("/api/v1/foods", headers=ann, json={
        "name": "Banana porridge", "items": [{"food_id": banana["id"], "grams": 100},
                                             {"food_id": oats["id"], "grams": 50}]})
    assert resp.status_code == 201, resp.json
    recipe = resp.json
    # (89 + 189.5) kcal in 150 g → 185.67 kcal / 100 g
    assert recipe["is_recipe"] and recipe["energy_kcal"] == pytest.approx((89 + 379 / 2) / 1.5, abs=0.01)
    assert recipe["portions"][0] == {"id": recipe["portions"][0]["id"], "amount": 1.0,
                                     "description": "whole recipe", "grams": 150.0}


@pytest.mark.parametrize("body", [
    {"name": "x", "energy_kcal": -5}, {"name": "x", "energy_kcal": 5000}, {"name": "x"},
    {"name": "", "energy_kcal": 10}, {"name": "x", "energy_kcal": 10, "barcode": "12"},
    {"name": "x", "items": [{"food_id": 999999999, "grams": 10}]},
    {"name": "x", "items": [{"food_id": 1, "grams": -5}]},
    {"name": "x", "energy_kcal": 10, "portions": [{"description": "cup", "grams": 0}]},
])
def test_bad_foods_are_422_and_write_nothing(client, login, food_catalogue, body):
    ann, _ = login("ann")
    assert client.post("/api/v1/foods", json=body, headers=ann).status_code == 422
    assert client.get("/api/v1/me/foods", headers=ann).json["items"] == []


OFF_SAMPLE = (
    "code\tproduct_name\tbrands\tserving_size\tserving_quantity\tenergy-kcal_100g\tproteins_100g\tfat_100g\t"
    "saturated-fat_100g\tcarbohydrates_100g\tfiber_100g\tsugars_100g\tsodium_100g\tpotassium_100g\t"
    "calcium_100g\tiron_100g\n"
    "3017620422003\tNutella\tFerrero\t15 g\t15\t539\t6.3\t30.9\t10.6\t57.5\t\t56.3\t0.0428\t\t\t\n"
    "5000159484695\tOat Bar\tAcme,Other\t\t\t420\t8\t15\t2\t60\t6\t20\t0.2\t0.3\t0.05\t0.002\n"
    "not-a-code\tBroken\t\t\t\t100\t\t\t\t\t\t\t\t\t\t\n"
    "4001234567890\tNo energy\t\t\t\t\t1\t1\t\t\t\t\t\t\t\t\n"
)

FDC_FILES = {
    "food.csv": 'fdc_id,data_type,description,food_category_id,publication_date\n'
                '900001,branded_food,"GRANOLA, HONEY ALMOND",,2021-01-01\n'
                '900002,foundation_food,"Lentils, dry",,2021-01-01\n',
    "food_nutrient.csv": 'id,fdc_id,nutrient_id,amount\n1,900001,1008,450\n2,900001,1003,10\n'
                         '3,900001,1093,120\n4,900002,1008,352\n5,900002,1003,24.6\n',
    "branded_food.csv": 'fdc_id,brand_owner,gtin_upc\n900001,Acme Foods,0012345678905\n',
    "food_portion.csv": 'id,fdc_id,seq_num,amount,measure_unit_id,portion_description,modifier,gram_weight\n'
                        '1,900002,1,1,1000,"1 cup",,192\n',
}


def test_open_food_facts_and_fooddata_central_importers(app, db_tx, tmp_path):
    from domain.health import foods
    from models import Food, FoodPortion, db

    with app.app_context():
        assert foods.import_open_food_facts(io.StringIO(OFF_SAMPLE)) == 2
        assert foods.import_open_food_facts(io.StringIO(OFF_SAMPLE)) == 0  # idempotent
        nutella = db.session.query(Food).filter_by(source="off", barcode="3017620422003").one()
        assert nutella.brand == "Ferrero" and nutella.energy_kcal == 539 and nutella.sodium_mg == pytest.approx(42.8)
        oat = db.session.query(Food).filter_by(source="off", source_id="5000159484695").one()
        assert oat.brand == "Acme" and oat.iron_mg == pytest.approx(2.0)
        for name, text in FDC_FILES.items():
            (tmp_path / name).write_text(text)
        assert foods.import_fooddata_central(tmp_path) == 2
        granola = db.session.query(Food).filter_by(source="fdc", source_id="900001").one()
        assert granola.barcode == "0012345678905" and granola.brand == "Acme Foods" and granola.sodium_mg == 120
        lentils = db.session.query(Food).filter_by(source="fdc", source_id="900002").one()
        assert [(p.description, p.grams) for p in db.session.query(FoodPortion).filter_by(food_id=lentils.id)] == [
            ("1 cup", 192.0)]
