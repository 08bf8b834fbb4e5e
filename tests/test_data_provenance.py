"""Every committed test data file is accounted for: one provenance row, the recorded bytes, a licence text.

Copied files name their upstream repository and commit; the files we make ourselves say ``generated`` and
are regenerated here by tests/data/make_corpus_files.py, which must give the committed bytes.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import re

from tests.support.corpus import CORPUS, DATA, manifest_rows

PROVENANCE = DATA / "PROVENANCE.tsv"
GENERATOR = DATA / "make_corpus_files.py"
COLUMNS = ["file", "source_repository", "commit", "path", "licence", "licence_text", "git_blob", "verified"]


def _rows() -> list[dict[str, str]]:
    with PROVENANCE.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        assert reader.fieldnames == COLUMNS
        return list(reader)


def _git_blob(data: bytes) -> str:
    """The id git gives these bytes: upstream repositories can be checked for the same object."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_every_corpus_file_has_one_provenance_row() -> None:
    on_disk = sorted(str(p.relative_to(DATA)) for p in CORPUS.rglob("*") if p.is_file() and p.name != "MANIFEST.tsv")
    recorded = [r["file"] for r in _rows()]
    assert sorted(recorded) == on_disk
    assert len(set(recorded)) == len(recorded)
    assert sorted(f"corpus/{r['file']}" for r in manifest_rows()) == on_disk


def _generated() -> dict[str, bytes]:
    spec = importlib.util.spec_from_file_location("make_corpus_files", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def test_provenance_rows_are_complete_and_match_the_bytes() -> None:
    generated = _generated()
    assert sorted(r["file"] for r in _rows() if r["source_repository"] == "generated") == sorted(generated)
    for row in _rows():
        if row["source_repository"] == "generated":
            assert row["path"] == "tests/data/make_corpus_files.py" and not row["commit"], row
            assert row["licence"] == "AGPL-3.0-or-later" and row["verified"], row  # the project's own (setup.cfg)
            data = (DATA / row["file"]).read_bytes()
            assert _git_blob(data) == row["git_blob"], row["file"]
            assert generated[row["file"]] == data, f"{row['file']} differs from what {GENERATOR.name} writes"
            continue
        assert row["source_repository"].startswith("https://github.com/"), row
        assert re.fullmatch(r"[0-9a-f]{40}", row["commit"]) and re.fullmatch(r"[0-9a-f]{40}", row["git_blob"]), row
        assert row["path"] and row["licence"] and row["verified"], row
        assert _git_blob((DATA / row["file"]).read_bytes()) == row["git_blob"], row["file"]
        if row["licence_text"]:
            assert (DATA / row["licence_text"]).is_file(), row["licence_text"]
        else:
            assert row["licence"] == "NONE DECLARED", row


def test_schema_files_match_their_provenance_rows() -> None:
    """The XML schemas exports are validated against (tests/data/schemas): copied unchanged from the recorded
    upstream commit, byte for byte."""
    schemas = DATA / "schemas"
    with (schemas / "PROVENANCE.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    on_disk = sorted(p.name for p in schemas.iterdir() if p.suffix == ".xsd")
    assert sorted(r["file"] for r in rows) == on_disk
    for row in rows:
        assert row["source_repository"].startswith("https://github.com/") and re.fullmatch(r"[0-9a-f]{40}",
                                                                                           row["commit"])
        assert _git_blob((schemas / row["file"]).read_bytes()) == row["git_blob"], row["file"]
