"""The plan of a video's outputs, shared by both transcoders and by serving: the adaptive ladder, the layout under
the item's prefix, and HLS playlist rewriting. No decoder is imported here, so the web processes (which rewrite
playlists) never load one.

Layout (both transcoders write it, so reading and serving never ask which one ran), under the item's prefix:
``hls/master.m3u8``, ``hls/<rung>.m3u8`` with ``hls/<rung>_<n>.ts``, ``mp4/video.mp4``, ``poster.jpg``,
``thumbs/thumb_<n>.jpg``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    name: str
    short_side: int
    video_kbps: int


#: The adaptive ladder (short side of the upright picture), highest first; rungs above the source are dropped.
LADDER = (Rung("1080p", 1080, 5000), Rung("720p", 720, 2800), Rung("540p", 540, 1600), Rung("360p", 360, 800))
AUDIO_KBPS = 128
SEGMENT_S = 4
THUMB_EVERY_S = 10
MAX_THUMBS = 10
POSTER_WIDTH = 1280
THUMB_WIDTH = 320

HLS_DIR = "hls"
MASTER = "hls/master.m3u8"
MP4 = "mp4/video.mp4"
POSTER = "poster.jpg"
THUMBS_DIR = "thumbs"


def ladder(width: int, height: int) -> list[Rung]:
    """The rungs for an upright ``width`` × ``height`` picture: none above the source, at least one."""
    short = min(width, height)
    rungs = [r for r in LADDER if r.short_side <= short]
    if not rungs:
        rungs = [Rung(f"{short - short % 2}p", short - short % 2, 600)]
    return rungs


def rewrite_playlist(text: str, sign: Callable[[str], str]) -> str:
    """The playlist with every URI (a line that is not a tag or blank) replaced by ``sign(uri)``."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        lines.append(sign(stripped) if stripped and not stripped.startswith("#") else line)
    return "\n".join(lines) + "\n"


def playlist_uris(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
