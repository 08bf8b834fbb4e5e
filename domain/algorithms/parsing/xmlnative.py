"""The streaming engine (xmlpoints.stream_points) with its expat callbacks in C: the first engine for GPX and TCX.

Same rules, same results (tests compare the two on the corpus, on edge-case and on fuzzed documents); it only
costs less. On a 1-hour GPX of 3,600 points the Python engine spends ~20 interpreted callbacks per point and
the numpy path (gpxscan) an extra expat pass plus ~1 ms of numpy calls; here expat calls C, and a file costs
little more than expat's well-formedness pass itself (bench/bench_ingest_files.py prints the figures).

Malformed XML raises the Python engine's ParseError, worded from expat's error code and position (expat stops at
the same place in both engines; the tests compare the messages). :func:`scan` returns None - and the caller runs
the Python engines, which word any error as they always have - for what it does not read itself:

* documents that are not UTF-8 / ASCII, or whose prolog holds a document type declaration (pyexpat's C API has no
  entity declaration handlers, so the DTD ban is a test of the bytes before the root element, exact in UTF-8;
  xmlsafe then refuses the file);
* anything else the Python engine reports as an error (a wrong root, the on_element hook raising);
* a checkout where the extension was not built (no C compiler): the Python engines read every file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from domain.algorithms.parsing import common
from domain.algorithms.parsing.common import N_SLOTS, too_many_points
from domain.algorithms.parsing.gpxfast import eligible
from domain.algorithms.parsing.timeparse import parse_times
from domain.algorithms.parsing.xmlpoints import TIME, XmlSpec
from domain.algorithms.parsing.xmlsafe import describe_expat_failure
from domain.algorithms.track import ParseError

try:
    from domain.algorithms.parsing import _xmlscan  # type: ignore[attr-defined]
except ImportError:  # built by `pip install` (setup.py); optional so that an install without a compiler works
    _xmlscan = None


def available() -> bool:
    """True when the C engine was built (the test suite requires it)."""
    return _xmlscan is not None


@dataclass
class NativePoints:
    """One sink's points as numpy columns (the read interface of common.Points)."""

    _columns: tuple[np.ndarray, ...]  # N_SLOTS slots, then the time

    def __len__(self) -> int:
        return int(self._columns[-1].shape[0])

    def column(self, slot: int) -> np.ndarray:
        return self._columns[slot]

    def times(self) -> np.ndarray:
        return self._columns[-1]


@dataclass
class NativeResult:
    sinks: tuple[NativePoints, ...]
    meta: dict[tuple[str, str], str]
    bad_coords: str | None


def scan(data: bytes | bytearray | memoryview, spec: XmlSpec) -> NativeResult | None:
    """Read a whole document as stream_points(data, spec) would, or return None (see the module docstring).

    On None, run the fallback with a fresh spec: ``spec.on_element`` may already have been called."""
    if _xmlscan is None:
        return None
    if not isinstance(data, bytes):
        data = bytes(data)
    if not eligible(data) or _declaration_in_prolog(data):
        return None
    out = _xmlscan.scan(data, spec.root, spec.point_tags, spec.fields, frozenset(spec.meta), spec.on_element,
                        spec.n_sinks, spec.meta_before_points, N_SLOTS, TIME, common.MAX_POINTS, parse_times)
    if out is None:
        return None
    if out is False:
        raise too_many_points()
    if isinstance(out, list):  # not well-formed: [expat's error code, line, column]
        raise ParseError(f"The file is not valid {spec.label}: {describe_expat_failure(*out)}")
    sinks, meta, bad = out
    points = tuple(NativePoints(_EMPTY if cols is None else tuple(np.frombuffer(col, dtype=np.float64) for col in cols))
                   for cols in sinks)
    return NativeResult(sinks=points, meta=meta, bad_coords=bad)


#: The columns of a sink without points (nothing can be written into a zero-length array).
_EMPTY = tuple(np.zeros(0) for _ in range(N_SLOTS + 1))
#: What may come before the root element besides a document type declaration: a byte order mark, blanks, the XML
#: declaration, processing instructions and comments.
_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)


def _declaration_in_prolog(data: bytes) -> bool:
    """True when a ``<!`` markup (a DOCTYPE; or a comment left open) precedes the root element.

    A document type declaration can only stand there, so this is the whole DTD test; searching the entire file
    for ``<!DOCTYPE`` instead cost ~0.12 ms per 360 kB. A prolog the pattern cannot read ends the match early and
    the expat pass that follows rejects the document."""
    end = _PROLOG.match(data)
    return data.startswith(b"<!", end.end() if end else 0)
