"""The activity files committed under tests/data/corpus (copied real exports and generated ones), and their manifest.

Every file is listed in ``MANIFEST.tsv`` (format, expected outcome, source) and in tests/data/PROVENANCE.tsv
(source repository, commit, path, licence). A missing file or manifest raises at collection: a test that
needs real data fails loudly rather than skipping, so every checkout runs the same tests.
"""

from __future__ import annotations

import csv
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "corpus"
MANIFEST = CORPUS / "MANIFEST.tsv"


class MissingFixture(FileNotFoundError):
    """A committed test data file is not where the tests expect it."""


def corpus_file(relative: str) -> Path:
    """The path of one corpus file (``gpx/…``, ``fit/…``); raises when it is missing."""
    path = CORPUS / relative
    if not path.is_file():
        raise MissingFixture(f"test data file missing: {path}")
    return path


def corpus_match(pattern: str) -> Path:
    """The one corpus file matching a glob such as ``fit/*run.fit``; raises unless exactly one matches."""
    found = sorted(CORPUS.glob(pattern))
    if len(found) != 1:
        raise MissingFixture(f"expected exactly one test data file matching {CORPUS / pattern}, found {found}")
    return found[0]


def manifest_rows(fmt: str | None = None) -> list[dict[str, str]]:
    """The manifest rows (all, or those of one format), each checked to name an existing file."""
    if not MANIFEST.is_file():
        raise MissingFixture(f"test data manifest missing: {MANIFEST}")
    with MANIFEST.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if fmt is None or r["format"] == fmt]
    if not rows:
        raise MissingFixture(f"no {fmt or 'corpus'} rows in {MANIFEST}")
    for row in rows:
        corpus_file(row["file"])
    return rows
