"""The ingest results of every corpus file stay what they were when tests/data/corpus_results.json was written.

The parsers and metrics are tuned for speed again and again (other engines, vectorised number and time decoding,
pure-Python paths for short tracks); this pins what the athlete sees for each real file: the parsed columns
bit for bit, the cleaned track, the summary figures, or the exact sentence a refused file gets.

After a deliberate change of results, rewrite the file from the repository root and review its diff::

    .venv/bin/python -m tests.domain.algorithms.parsing.test_corpus_results
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pytest

from domain.algorithms.metrics import compute_metrics
from domain.algorithms.parsing import ParseError, detect_type, normalize, parse_bytes
from domain.algorithms.track import COLUMNS, Track
from tests.support.corpus import DATA, corpus_file, manifest_rows

RESULTS = DATA / "corpus_results.json"
FORMATS = ("gpx", "tcx", "fit")


def _digest(track: Track) -> dict[str, str]:
    """Every column's exact bytes (NaN positions included), hashed."""
    return {c: hashlib.sha256(np.asarray(getattr(track, c), dtype=np.float64).tobytes()).hexdigest()[:24]
            for c in COLUMNS}


def ingest_result(relative: str) -> dict[str, Any]:
    """What the ingest stage makes of one corpus file: parse, normalize, metrics (or the refusal)."""
    data = corpus_file(relative).read_bytes()
    out: dict[str, Any] = {}
    try:
        raw = parse_bytes(data, detect_type(relative, data[:4096]))
        out["parsed"] = {"points": len(raw), "sport": raw.sport, "name": raw.name, "device": raw.device,
                         "columns": _digest(raw)}
        track = normalize(raw)
        out["normalized"] = {"points": len(track), "columns": _digest(track)}
        out["metrics"] = compute_metrics(track).as_dict()
    except ParseError as exc:
        out["error"] = str(exc)
    return out


def _files() -> list[str]:
    return [r["file"] for r in manifest_rows() if r["format"] in FORMATS]


def _assert_close(got: Any, want: Any, where: str) -> None:
    """Equal, floats to 1e-12 relative (a different but equally exact summation order may change the last bit)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), where
        for k in want:
            _assert_close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-9), (where, got, want)
    else:
        assert got == want, (where, got, want)


@pytest.mark.parametrize("relative", _files())
def test_corpus_file_results_are_unchanged(relative: str) -> None:
    recorded = json.loads(RESULTS.read_text(encoding="utf-8"))
    assert relative in recorded, f"no recorded result for {relative}: rewrite {RESULTS.name} (see module docstring)"
    got = ingest_result(relative)
    want = recorded[relative]
    for part in ("error", "parsed", "normalized"):
        assert got.get(part) == want.get(part), (relative, part)
    _assert_close(got.get("metrics"), want.get("metrics"), relative)


def test_every_recorded_file_is_in_the_corpus() -> None:
    assert sorted(json.loads(RESULTS.read_text(encoding="utf-8"))) == sorted(_files())


if __name__ == "__main__":
    RESULTS.write_text(json.dumps({f: ingest_result(f) for f in _files()}, indent=1, sort_keys=True) + "\n",
                       encoding="utf-8")
    print(f"wrote {RESULTS}")
