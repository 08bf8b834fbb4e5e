"""What a file really is, from its first bytes: the declared content type is the client's claim, not a fact."""

from __future__ import annotations

PHOTO_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp", "image/heic": "heif",
               "image/heif": "heif"}
VIDEO_TYPES = {"video/mp4": "mp4", "video/quicktime": "mp4", "video/x-m4v": "mp4"}

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"heif", b"avif"}
_ISO_VIDEO_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"qt  ", b"M4V ",
                     b"M4VP", b"3gp4", b"3gp5", b"3g2a", b"dash", b"MSNV", b"f4v "}

_DESCRIPTIONS = {"jpeg": "a JPEG image", "png": "a PNG image", "webp": "a WebP image", "heif": "a HEIC/HEIF image",
                 "mp4": "an MP4/QuickTime video", "zip": "a ZIP archive", "exe": "a program",
                 "pdf": "a PDF document", "gif": "a GIF image", "empty": "empty", None: "of an unknown type"}


def sniff(head: bytes) -> str | None:
    """The family of a file from its first bytes (at least 32): jpeg, png, webp, heif, mp4, or a few common
    impostors (zip, exe, pdf, gif, empty); None when unknown."""
    if not head:
        return "empty"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brands = {head[8:12]} | {head[i:i + 4] for i in range(16, min(len(head), 64) - 3, 4)}
        if brands & _HEIF_BRANDS and head[8:12] not in _ISO_VIDEO_BRANDS:
            return "heif"
        return "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):  # old QuickTime files start with a bare atom
        return "mp4"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"MZ") or head.startswith(b"\x7fELF") or head[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        return "exe"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def check_declared(head: bytes, content_type: str) -> str:
    """The family, when the bytes are what ``content_type`` says; otherwise a MediaRejected sentence."""
    from domain.algorithms.media import MediaRejected

    expected = PHOTO_TYPES.get(content_type) or VIDEO_TYPES.get(content_type)
    found = sniff(head)
    if found == "empty":
        raise MediaRejected("The file is empty.")
    if expected is None or found != expected:
        said = _DESCRIPTIONS.get(expected, content_type)
        raise MediaRejected(f"The file was declared as {said} but its contents are {_DESCRIPTIONS.get(found, found)}.")
    return found


def describe(family: str | None) -> str:
    return _DESCRIPTIONS.get(family, str(family))
