"""The shipped food catalogue is the file its provenance row describes, and holds what the product promises."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json

from domain.health.catalogue import derive_sr28
from domain.health.foods import CATALOGUE

NUTRIENTS = set(derive_sr28.NUTRIENTS.values())


def test_catalogue_matches_its_provenance():
    with (CATALOGUE.parent / "PROVENANCE.tsv").open(newline="") as fh:
        [row] = list(csv.DictReader(fh, delimiter="\t"))
    data = CATALOGUE.read_bytes()
    assert row["file"] == CATALOGUE.name
    assert hashlib.sha256(data).hexdigest() == row["sha256"]
    assert row["licence"].startswith("public domain") and "Release 28" in row["source"]
    foods = [json.loads(line) for line in gzip.decompress(data).splitlines()]
    assert len(foods) == int(row["foods"]) == 8789
    assert sum(len(f["portions"]) for f in foods) == int(row["portions"])
    assert len(data) < 3_000_000  # compact: it ships in the repository


def test_catalogue_rows_carry_the_nutrients_and_portions():
    foods = {f["name"]: f for f in map(json.loads, gzip.decompress(CATALOGUE.read_bytes()).splitlines())}
    banana = foods["Bananas, raw"]
    assert set(banana) >= NUTRIENTS
    assert (banana["energy_kcal"], banana["protein_g"], banana["potassium_mg"]) == (89.0, 1.09, 358.0)
    assert [1.0, "NLEA serving", 126.0] in banana["portions"]
    assert all(f["energy_kcal"] is None or 0 <= f["energy_kcal"] <= 902 for f in foods.values())
    assert all(g > 0 for f in foods.values() for _, _, g in f["portions"])
