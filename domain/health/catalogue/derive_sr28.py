"""Derive the compact food catalogue shipped with the product from USDA SR28's ASCII tables.

    python -m domain.health.catalogue.derive_sr28 PATH/TO/usda-sr28 [OUT]

Reads FOOD_DES, FD_GROUP, NUT_DATA (gzipped) and WEIGHT (format: ``^``-separated fields, text in ``~``, CRLF,
some Latin-1) and writes one JSON object per food, sorted by NDB number, gzipped with a fixed mtime so the same
source gives the same bytes. Only the twelve nutrients the product shows are kept (per 100 g of edible portion),
plus every household portion. Standard library only: it runs before the product is installed.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: SR28 nutrient number → the catalogue's field name (units in the name, as SR28 gives them).
NUTRIENTS = {
    "208": "energy_kcal", "203": "protein_g", "204": "fat_g", "606": "saturated_fat_g", "205": "carbohydrate_g",
    "291": "fiber_g", "269": "sugars_g", "307": "sodium_mg", "306": "potassium_mg", "301": "calcium_mg",
    "303": "iron_mg", "255": "water_g",
}
OUTPUT = Path(__file__).with_name("sr28.jsonl.gz")


def _rows(raw: bytes) -> Iterator[list[str]]:
    for line in raw.decode("latin-1").splitlines():
        if line.strip():
            yield [field.strip("~") for field in line.split("^")]


def derive(source: Path) -> bytes:
    groups = {row[0]: row[1] for row in _rows((source / "FD_GROUP.txt").read_bytes())}
    nutrients: dict[str, dict[str, float]] = defaultdict(dict)
    with gzip.open(source / "NUT_DATA.txt.gz", "rb") as fh:
        for row in _rows(fh.read()):
            name = NUTRIENTS.get(row[1])
            if name is not None and row[2] != "":
                nutrients[row[0]][name] = float(row[2])
    portions: dict[str, list[tuple[int, float, str, float]]] = defaultdict(list)
    for row in _rows((source / "WEIGHT.txt").read_bytes()):
        portions[row[0]].append((int(row[1]), float(row[2]), row[3], float(row[4])))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        for row in sorted(_rows((source / "FOOD_DES.txt").read_bytes()), key=lambda r: r[0]):
            ndb = row[0]
            record: dict[str, Any] = {
                "ndb": ndb, "name": row[2], "group": groups.get(row[1], ""), "common": row[4],
                **{name: nutrients[ndb].get(name) for name in NUTRIENTS.values()},
                "portions": [[amount, desc, grams] for _, amount, desc, grams in sorted(portions[ndb])],
            }
            gz.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    return out.getvalue()


def main(argv: list[str]) -> None:
    target = Path(argv[2]) if len(argv) > 2 else OUTPUT
    data = derive(Path(argv[1]))
    target.write_bytes(data)
    print(f"wrote {target} ({len(data)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
