"""A hardened, streaming expat parser for the XML formats.

Why expat directly instead of ElementTree: the GPX/TCX parsers need only a handful of values per
point, and expat callbacks let them write those straight into columns without building elements
(ElementTree's C builder alone was slower than the whole callback parser, and ``iterparse`` keeps
cleared children attached to their parent, so memory grows with the file).

Hardening: activity files never need a DTD, so *any* document type declaration aborts the parse the
moment expat reports it - before an internal subset can define an entity (billion laughs) or an
external one (XXE). Parameter-entity parsing is switched off and entity declarations / external
references abort too, as a second line of defence. Because expat decodes the document itself, the
check holds for every encoding (UTF-16, single-byte code pages), unlike a byte-level search.
"""

from __future__ import annotations

import pyexpat
from collections.abc import Callable
from pyexpat import errors as expat_errors
from typing import Any, NoReturn

from domain.algorithms.track import ParseError

#: Feed expat this much at a time so its internal buffers stay small on huge inputs.
FEED_CHUNK = 1 << 20

# Messages (pyexpat.errors exposes them as the XML_ERROR_* strings) that mean "the data stopped early".
_TRUNCATED = {
    expat_errors.XML_ERROR_NO_ELEMENTS,
    expat_errors.XML_ERROR_UNCLOSED_TOKEN,
    expat_errors.XML_ERROR_PARTIAL_CHAR,
    expat_errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
}


class ForbiddenXML(Exception):
    """Raised from inside expat callbacks to abort on a DTD or entity declaration."""


def _forbid_dtd(*_: Any) -> NoReturn:
    raise ForbiddenXML("it contains a document type declaration (DTD), which is not allowed")


def _forbid_entity(*_: Any) -> NoReturn:
    raise ForbiddenXML("it declares or references external entities, which is not allowed")


def new_parser() -> pyexpat.XMLParserType:
    """An expat parser (no namespace processing: callers match on local names) that rejects DTDs."""
    parser = pyexpat.ParserCreate()
    parser.buffer_text = True
    parser.buffer_size = 1 << 16
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid_dtd
    parser.EntityDeclHandler = _forbid_entity
    parser.UnparsedEntityDeclHandler = _forbid_entity
    parser.ExternalEntityRefHandler = _forbid_entity
    return parser


def run(parser: pyexpat.XMLParserType, data: bytes | bytearray | memoryview, label: str, *,
        final: bool = True) -> None:
    """Feed ``data`` through ``parser`` in chunks, turning every XML problem into a ParseError.

    ``label`` names the format in the message: "The file is not valid GPX: …". With ``final=False``
    the end of the document is not checked (used to read a prefix).
    """
    view = memoryview(data)
    try:
        for offset in range(0, len(view), FEED_CHUNK):
            parser.Parse(view[offset:offset + FEED_CHUNK], False)
        if final:
            parser.Parse(b"", True)
    except ForbiddenXML as exc:
        raise ParseError(f"The file is not valid {label}: {exc}") from None
    except pyexpat.ExpatError as exc:
        raise ParseError(f"The file is not valid {label}: {describe_expat_error(exc)}") from None
    finally:
        view.release()


def describe_expat_error(exc: pyexpat.ExpatError) -> str:
    if not exc.code:
        return f"{exc} (line {exc.lineno}, column {exc.offset})"
    return describe_expat_failure(exc.code, exc.lineno, exc.offset)


def describe_expat_failure(code: int, line: int, column: int) -> str:
    """What went wrong, for people, from expat's error code and position (the C engine reports these)."""
    reason = pyexpat.ErrorString(code)
    where = f"line {line}, column {column}"
    if reason in _TRUNCATED:
        return f"it ends unexpectedly, the file is probably truncated ({where})"
    return f"{reason} ({where})"


def local_name_cache(limit: int = 10_000) -> Callable[[str], str]:
    """Memoised 'prefix:tag' → 'tag'. Bounded so a file with endless distinct tag names cannot grow it."""
    cache: dict[str, str] = {}

    def local(name: str) -> str:
        hit = cache.get(name)
        if hit is None:
            hit = name[name.rfind(":") + 1:]
            if len(cache) < limit:
                cache[name] = hit
        return hit

    return local
