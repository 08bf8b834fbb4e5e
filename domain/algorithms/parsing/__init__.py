"""Activity-file parsing: GPX, TCX and FIT (plain, gzipped or inside a zip) and Apple Health exports → :class:`Track`.

Typical use::

    kind = detect_type(filename, data[:4096])
    if kind == "zip":
        files = [(name, detect_type(name, content), content) for name, content in iter_zip(data)]
    track = normalize(parse_bytes(data, kind))

An Apple Health export (kind ``"health"``) holds many workouts: ``parse_bytes`` gives the first, and
:func:`count_health_workouts` / :func:`parse_health_workout` (one) or :func:`parse_health_workouts`
(all, one pass) give the rest. The workout's own totals are on ``Track.totals``.

Every problem with the input - malformed XML, a damaged FIT, a decompression bomb, a file without
usable points - is raised as :class:`ParseError` with a message meant for the athlete. No other
exception type escapes :func:`parse_bytes`, :func:`iter_zip`, :func:`normalize` or the Apple Health
functions for any input bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

from domain.algorithms.parsing import container
from domain.algorithms.parsing.common import MAX_POINTS, too_many_points
from domain.algorithms.parsing.container import MAX_DECOMPRESSED_BYTES, MAX_ZIP_MEMBERS, detect_type, gunzip
from domain.algorithms.parsing.fit import parse_fit
from domain.algorithms.parsing.gpx import parse_gpx
from domain.algorithms.parsing.healthkit import count_health_workouts as _count_health_workouts
from domain.algorithms.parsing.healthkit import parse_health_workout as _parse_health_workout
from domain.algorithms.parsing.healthkit import parse_health_workouts as _parse_health_workouts
from domain.algorithms.parsing.normalize import MAX_SPEED_MPS
from domain.algorithms.parsing.normalize import normalize as _normalize
from domain.algorithms.parsing.tcx import parse_tcx
from domain.algorithms.track import ParseError, Track

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "MAX_SPEED_MPS",
    "MAX_ZIP_MEMBERS",
    "ParseError",
    "Track",
    "check_size",
    "count_health_workouts",
    "detect_type",
    "iter_zip",
    "normalize",
    "parse_bytes",
    "parse_health_workout",
    "parse_health_workouts",
]

log = logging.getLogger(__name__)

_PARSERS: dict[str, Callable[[bytes | bytearray | memoryview], Track]] = {
    "gpx": parse_gpx,
    "tcx": parse_tcx,
    "fit": parse_fit,
    "health": lambda data: _parse_health_workout(data, 0),
}
#: How a type is named in messages ("The GPX file could not be read …"), when not just upper-cased.
_LABELS = {"health": "Apple Health"}

_T = TypeVar("_T")


def _guarded(what: str, func: Callable[[], _T]) -> _T:
    """Run ``func`` so that only ParseError can leave it.

    Anything else is a bug or an input we did not anticipate; the athlete still gets a clear
    sentence, and the traceback is logged for us.
    """
    try:
        return func()
    except ParseError:
        raise
    except MemoryError:
        raise ParseError("The file is too large to process") from None
    except RecursionError:
        raise ParseError(f"The {what} file is too deeply nested to process") from None
    except Exception as exc:
        log.warning("unexpected error while reading a %s file", what, exc_info=True)
        raise ParseError(f"The {what} file could not be read ({type(exc).__name__})") from exc


def parse_bytes(data: bytes, data_type: str) -> Track:
    """Parse one activity file of ``data_type`` (see :func:`detect_type`) into a raw Track.

    ``.gz`` types are inflated first with a hard cap (MAX_DECOMPRESSED_BYTES). A ``zip`` holding
    exactly one activity file is parsed as that file; with several, use :func:`iter_zip`.
    """
    kind = (data_type or "").lower().lstrip(".")
    if kind == "zip":
        members = list(iter_zip(data))
        if len(members) != 1:
            raise ParseError(f"The zip archive contains {len(members)} activity files; expected exactly one")
        name, content = members[0]
        return parse_bytes(content, detect_type(name, content[:4096]))
    compressed = kind.endswith(".gz")
    base = kind[:-3] if compressed else kind
    parser = _PARSERS.get(base)
    if parser is None:
        raise ParseError(f"Unrecognised file type: {data_type!r}")
    label = _LABELS.get(base, base.upper())

    def run() -> Track:
        payload = gunzip(data) if compressed else data
        _refuse_too_many_points(payload, base)
        return parser(payload)

    return _guarded(label, run)


#: The start tag of one point, per XML format (without a namespace prefix, as nearly every file writes it).
_POINT_TAGS = {"gpx": b"<trkpt", "tcx": b"<Trackpoint"}


def _refuse_too_many_points(payload: bytes | bytearray | memoryview, base: str) -> None:
    """Fail a file with far too many points before parsing it: the parsers only stop at MAX_POINTS after
    building that many, which costs seconds and leaves the process's heap hundreds of MB larger. Counting
    the start tags is one pass in C. (A tag inside a comment is counted too: only a hostile file has millions.)"""
    tag = _POINT_TAGS.get(base)
    # Below MAX_POINTS times the shortest point element (``<trkpt/>``, 8 bytes) the count cannot exceed the cap:
    # the pass is skipped for every real activity file.
    if tag is not None and isinstance(payload, bytes | bytearray) and len(payload) > 8 * MAX_POINTS \
            and payload.count(tag) > MAX_POINTS:
        raise too_many_points()


def check_size(data: bytes, data_type: str) -> None:
    """Refuse, without parsing, an activity file that would only fail later for its size: a gzip stream that
    inflates past MAX_DECOMPRESSED_BYTES (a bomb) or a GPX/TCX with more than MAX_POINTS points.

    Meant for accepting an upload: it inflates into a small reused buffer (memory stays flat whatever the
    file) and counts point tags as it goes, so the athlete gets the sentence at once instead of a failed
    upload, and no worker ever holds the inflated bomb."""
    kind = (data_type or "").lower().lstrip(".")
    compressed = kind.endswith(".gz")
    base = kind[:-3] if compressed else kind
    tag = _POINT_TAGS.get(base)
    if not compressed:
        _refuse_too_many_points(data, base)
        return
    _guarded(base.upper(), lambda: container.scan_gzip(data, MAX_DECOMPRESSED_BYTES, tag, MAX_POINTS))


def count_health_workouts(data: bytes) -> int:
    """Number of workouts in an Apple Health export (a cheap streaming pass)."""
    return _guarded("Apple Health", lambda: _count_health_workouts(data))


def parse_health_workout(data: bytes, index: int) -> Track:
    """The ``index``-th (0-based, document order) workout of an Apple Health export as a raw Track."""
    return _guarded("Apple Health", lambda: _parse_health_workout(data, index))


def parse_health_workouts(data: bytes) -> list[Track]:
    """Every workout of an Apple Health export, read in one pass (prefer this to a loop over indices)."""
    return _guarded("Apple Health", lambda: _parse_health_workouts(data))


def iter_zip(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, bytes)`` for every activity file inside a zip archive (capped, see container)."""
    it = container.iter_zip(data)
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except ParseError:
            raise
        except MemoryError:
            raise ParseError("The zip archive is too large to process") from None
        except Exception as exc:
            log.warning("unexpected error while reading a zip archive", exc_info=True)
            raise ParseError(f"The zip archive could not be read ({type(exc).__name__})") from exc
        yield item


def normalize(track: Track, *, max_speed_mps: float = MAX_SPEED_MPS) -> Track:
    """Clean a parsed track for the metrics (see :mod:`domain.algorithms.parsing.normalize`)."""
    return _guarded("activity", lambda: _normalize(track, max_speed_mps=max_speed_mps))
