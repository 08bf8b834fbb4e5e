"""Pure media functions: recognising files by their bytes, photo renditions, video plans, upload policies, and
reading S3 / MediaConvert events. No framework, database or storage import: bytes and paths in, values out."""

from __future__ import annotations


class MediaRejected(ValueError):
    """The athlete's file cannot become a media item; the message is a sentence for them."""


class TranscodeError(RuntimeError):
    """The transcoder failed on a file it could read (a bug or a resource problem, not the athlete's file)."""
