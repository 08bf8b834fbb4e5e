"""File-type detection and the compressed containers (gzip, zip), with hard size caps.

Uploads are untrusted, so decompression never trusts a declared size: gzip is inflated in bounded
chunks and zip members are read in chunks while counting the bytes actually produced. A bomb is
stopped as soon as the running total crosses the cap, so memory never grows past it.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator

from domain.algorithms.track import ParseError

#: Largest decompressed size accepted for one file (a gzip stream or one zip member).
MAX_DECOMPRESSED_BYTES = 200 * 1024 * 1024
#: Largest total decompressed size read out of one zip archive.
MAX_ZIP_TOTAL_BYTES = 500 * 1024 * 1024
#: Most entries a zip archive may list (directories and skipped files included).
MAX_ZIP_MEMBERS = 1000
#: Inflate in steps of this many output bytes.
_CHUNK = 1 << 20

#: "health" is an Apple Health ``export.xml`` (recognised by content only: its name says nothing). It is
#: accepted uncompressed only; the iPhone's export zip is not opened as one (see :func:`iter_zip`).
TYPES = ("gpx", "tcx", "fit", "gpx.gz", "tcx.gz", "fit.gz", "zip", "health")
ACTIVITY_EXTENSIONS = (".gpx", ".tcx", ".fit", ".gpx.gz", ".tcx.gz", ".fit.gz")

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; empty archive
# First element name after the prolog (XML declaration, comments, PIs, whitespace).
_ROOT = re.compile(rb"\s*<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)[\s/>]")
_PROLOG_SKIP = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.S)
_XML_ROOTS = {b"gpx": "gpx", b"TrainingCenterDatabase": "tcx", b"HealthData": "health"}
# Apple Health exports open with a long internal DTD subset (often more than the sniffed head), which
# _PROLOG_SKIP cannot step over; its DOCTYPE names the root element, so that name identifies the file.
_DOCTYPE_NAME = re.compile(rb"\s*<!DOCTYPE\s+([A-Za-z_][\w.\-:]*)")
_DOCTYPE_ROOTS = {b"HealthData": "health"}


def _sniff_content(head: bytes) -> str | None:
    """Format from the first bytes of an uncompressed file, or None when they say nothing."""
    if len(head) >= 12 and head[8:12] == b".FIT":
        return "fit"
    text = head
    if text.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = text.decode("utf-16").encode("utf-8", "replace")
        except UnicodeDecodeError:
            text = text[2:].replace(b"\x00", b"")
    text = text.removeprefix(b"\xef\xbb\xbf")
    pos = 0
    while (m := _PROLOG_SKIP.match(text, pos)) is not None and m.end() > pos:
        doctype = _DOCTYPE_NAME.match(text, pos)
        if doctype is not None and doctype.group(1) in _DOCTYPE_ROOTS:
            return _DOCTYPE_ROOTS[doctype.group(1)]
        pos = m.end()
    m = _ROOT.match(text, pos)
    if m is None:
        return None
    return _XML_ROOTS.get(m.group(2))


def _type_from_name(filename: str | None) -> str | None:
    name = (filename or "").strip().lower()
    for ext in (".gpx.gz", ".tcx.gz", ".fit.gz", ".gpx", ".tcx", ".fit", ".zip"):
        if name.endswith(ext):
            return ext[1:]
    return None


def detect_type(filename: str | None, head: bytes) -> str:
    """One of TYPES, from magic bytes first and the file name second.

    Content wins over the name (a FIT renamed .gpx is still FIT). For gzip the inner format comes
    from the name (``x.gpx.gz``) or, failing that, from the first inflated bytes.
    """
    head = bytes(head[:65536])
    by_name = _type_from_name(filename)
    if head.startswith(_GZIP_MAGIC):
        inner = by_name[:-3] if by_name and by_name.endswith(".gz") else None
        if inner is None:
            inner = _sniff_content(_peek_gzip(head))
        if inner is None and by_name in ("gpx", "tcx", "fit"):
            inner = by_name
        if inner is None:
            raise ParseError(f"Unrecognised file type: {_label(filename)} is gzip-compressed but "
                             "does not contain a GPX, TCX or FIT file")
        if inner == "health":
            raise ParseError(f"Unrecognised file type: {_label(filename)} is a gzip-compressed Apple Health "
                             "export; please upload the uncompressed export.xml")
        return f"{inner}.gz"
    if head.startswith(_ZIP_MAGICS):
        return "zip"
    sniffed = _sniff_content(head)
    if sniffed is not None:
        return sniffed
    if by_name is not None:
        # Unknown content but a known name: let the parser explain what is wrong with the file.
        return by_name
    raise ParseError(f"Unrecognised file type: {_label(filename)} is not a GPX, TCX, FIT, Apple Health export, "
                     "gzip or zip file")


def _label(filename: str | None) -> str:
    return repr(filename[:100]) if filename else "the file"


def _peek_gzip(head: bytes, size: int = 4096) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, size)
    except zlib.error:
        return b""


def gunzip(data: bytes | bytearray | memoryview, limit: int = MAX_DECOMPRESSED_BYTES) -> bytearray:
    """Inflate a gzip file (several concatenated members allowed) without ever exceeding ``limit``."""
    out = bytearray()
    try:
        return _gunzip_into(out, data, limit)
    except BaseException:
        # The traceback keeps this frame alive (a task runner may hold it for long): don't let it keep the
        # hundreds of MB inflated so far.
        out.clear()
        raise


def _gunzip_into(out: bytearray, data: bytes | bytearray | memoryview, limit: int) -> bytearray:
    for chunk in _inflate(data, limit):
        out += chunk
    return out


def _inflate(data: bytes | bytearray | memoryview, limit: int) -> Iterator[bytes]:
    """The inflated bytes of a gzip file (several members allowed), chunk by chunk: ParseError once they pass
    ``limit`` bytes (max_length bounds each step, so a bomb costs at most ``limit`` + one chunk), or when the file
    is not valid gzip or is truncated. Trailing padding after the last member is ignored, as gzip(1) does."""
    total = 0
    view = memoryview(data)
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending: bytes | memoryview = view
        try:
            while not inflater.eof:
                chunk = inflater.decompress(pending, _CHUNK)
                pending = inflater.unconsumed_tail
                if not chunk and not pending:
                    break
                total += len(chunk)
                if total > limit:
                    raise ParseError("The file is too large once decompressed")
                yield chunk
        except zlib.error as exc:
            raise ParseError(f"The file is not a valid gzip file: {exc}") from None
        if not inflater.eof:
            raise ParseError("The gzip file is truncated")
        rest = inflater.unused_data
        if not rest.startswith(_GZIP_MAGIC):
            return
        view = memoryview(rest)


def scan_gzip(data: bytes | bytearray | memoryview, limit: int, tag: bytes | None, max_tags: int) -> None:
    """Inflate a gzip file (several members allowed) without keeping it, raising ParseError once it passes
    ``limit`` bytes or holds more than ``max_tags`` occurrences of ``tag``. Memory stays at one chunk."""
    tags = 0
    carry = b""
    keep = len(tag) - 1 if tag else 0
    for chunk in _inflate(data, limit):
        if tag:
            # A tag split across two chunks is counted once: the carried bytes are too short to hold it.
            window = carry + chunk
            tags += window.count(tag)
            carry = window[-keep:] if keep else b""
            if tags > max_tags:
                raise ParseError(f"The file has more than {max_tags:,} track points, which is more "
                                 "than we can process")


def _is_activity_member(info: zipfile.ZipInfo) -> bool:
    name = info.filename.replace("\\", "/")
    parts = [p for p in name.split("/") if p]
    if info.is_dir() or not parts:
        return False
    if any(p == "__MACOSX" or p.startswith(".") for p in parts):
        return False
    return parts[-1].lower().endswith(ACTIVITY_EXTENSIONS)


def iter_zip(data: bytes | bytearray | memoryview) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, bytes)`` for each activity file inside a zip archive.

    Directories, macOS resource forks, hidden files and other extensions are skipped. That includes
    ``apple_health_export/export.xml`` in the iPhone's "Export All Health Data" zip: it is often larger
    than the member cap and holds the athlete's whole health record, so workouts are imported from an
    uploaded export.xml instead; the route GPX files in ``workout-routes/`` are yielded as any GPX. The
    member count, each member's size and the total are capped on the bytes actually inflated (a header can
    lie about sizes). Nested archives are not opened.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ParseError(f"The file is not a valid zip archive: {exc}") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ParseError(f"The zip archive contains more than {MAX_ZIP_MEMBERS} files")
    total = 0
    with archive:
        for info in infos:
            if not _is_activity_member(info):
                continue
            if info.file_size > MAX_DECOMPRESSED_BYTES:
                raise ParseError(f"{info.filename[:100]} in the zip archive is too large once decompressed")
            content = _read_member(archive, info, MAX_DECOMPRESSED_BYTES, MAX_ZIP_TOTAL_BYTES - total)
            total += len(content)
            yield info.filename, content


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, remaining: int) -> bytes:
    out = bytearray()
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                out += chunk
                if len(out) > limit:
                    raise ParseError(f"{info.filename[:100]} in the zip archive is too large once decompressed")
                if len(out) > remaining:
                    raise ParseError("The zip archive is too large once decompressed")
    except ParseError:
        raise
    except RuntimeError as exc:  # encrypted member
        raise ParseError(f"Cannot read {info.filename[:100]} in the zip archive: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError, ValueError, EOFError) as exc:
        raise ParseError(f"The zip archive is damaged ({info.filename[:100]}): {exc}") from None
    return bytes(out)
