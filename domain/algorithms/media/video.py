"""The video chain's pure part: what a file holds (PyAV) and the ffmpeg command lines of the embedded
transcoder (the ladder, layout and playlist rewriting, which need no decoder, are in ``plan``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av

from domain.algorithms.media import MediaRejected
from domain.algorithms.media.plan import (
    AUDIO_KBPS,
    HLS_DIR,
    MAX_THUMBS,
    MP4,
    POSTER,
    POSTER_WIDTH,
    SEGMENT_S,
    THUMB_EVERY_S,
    THUMB_WIDTH,
    THUMBS_DIR,
    Rung,
    ladder,
    playlist_uris,
    rewrite_playlist,
)

__all__ = ["HLS_DIR", "MP4", "POSTER", "THUMBS_DIR", "VideoInfo", "hls_command", "ladder", "mp4_command",
           "parse_iso6709", "playlist_uris", "probe", "rewrite_playlist", "stills_command"]


@dataclass
class VideoInfo:
    duration_s: float
    width: int  # upright, after the rotation metadata
    height: int
    rotation: int
    has_audio: bool
    taken_at: datetime | None
    lat: float | None
    lng: float | None


_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")


def parse_iso6709(value: str) -> tuple[float, float] | None:
    """``+48.8577+002.2950+035.000/`` (QuickTime's location tag) → (lat, lng)."""
    match = _ISO6709.match(value.strip())
    if not match:
        return None
    lat, lng = float(match.group(1)), float(match.group(2))
    return (lat, lng) if -90 <= lat <= 90 and -180 <= lng <= 180 else None


def _rotation(stream: av.video.stream.VideoStream) -> int:
    try:
        from av.sidedata.sidedata import Type

        for side in stream.side_data if hasattr(stream, "side_data") else []:
            if getattr(side, "type", None) == Type.DISPLAYMATRIX:
                return round(side.rotation)
    except Exception:
        pass
    tag = stream.metadata.get("rotate")
    if tag and tag.lstrip("-").isdigit():
        return int(tag)
    return 0


def probe(path: Path, *, max_duration_s: float) -> VideoInfo:
    """What the file holds, or MediaRejected: not a video, no video stream, damaged, too long."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            videos = list(container.streams.video)
            if not videos:
                raise MediaRejected("The file has no video in it.")
            stream = videos[0]
            duration = 0.0
            if container.duration:
                duration = float(container.duration) / av.time_base
            elif stream.duration and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            width, height = int(stream.codec_context.width), int(stream.codec_context.height)
            rotation = _rotation(stream) or _rotation_from_frame(container, stream)
            has_audio = bool(container.streams.audio)
            meta = {k.lower(): v for k, v in container.metadata.items()}
    except MediaRejected:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError, StopIteration):
        raise MediaRejected("The video is damaged or incomplete and cannot be read.") from None
    if width <= 0 or height <= 0 or duration <= 0:
        raise MediaRejected("The video is damaged or incomplete and cannot be read.")
    if duration > max_duration_s:
        raise MediaRejected(f"The video is {duration / 60:.1f} minutes long; the limit is "
                            f"{max_duration_s / 60:.0f} minutes.")
    if rotation % 180:
        width, height = height, width
    location = None
    for key in ("com.apple.quicktime.location.iso6709", "location", "location-eng"):
        if meta.get(key):
            location = parse_iso6709(meta[key])
            break
    taken = None
    stamp = meta.get("com.apple.quicktime.creationdate") or meta.get("creation_time")
    if stamp:
        try:
            taken = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            taken = None
    return VideoInfo(duration_s=round(duration, 3), width=width, height=height, rotation=rotation % 360,
                     has_audio=has_audio, taken_at=taken, lat=location[0] if location else None,
                     lng=location[1] if location else None)


def _rotation_from_frame(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """PyAV exposes the display matrix on decoded frames (``frame.rotation``) in recent versions."""
    try:
        for frame in container.decode(stream):
            return -int(getattr(frame, "rotation", 0) or 0) % 360
    except av.FFmpegError:
        raise MediaRejected("The video is damaged or incomplete and cannot be read.") from None
    return 0


def _scale(rung: Rung, portrait: bool) -> str:
    # Even dimensions (H.264 4:2:0); the long side follows the aspect ratio.
    return f"scale=w={rung.short_side}:h=-2" if portrait else f"scale=w=-2:h={rung.short_side}"


def hls_command(ffmpeg: str, src: Path, out: Path, info: VideoInfo, *, preset: str = "veryfast",
                threads: int = 0) -> list[str]:
    """One ffmpeg run: decode once (rotation applied), scale to each rung, H.264/AAC HLS variants and a master
    playlist. Metadata (the location tag included) is not copied: ``-map_metadata -1``."""
    rungs = ladder(info.width, info.height)
    portrait = info.height > info.width
    split = f"[0:v]split={len(rungs)}" + "".join(f"[s{i}]" for i in range(len(rungs)))
    scales = [f"[s{i}]{_scale(r, portrait)}[v{i}]" for i, r in enumerate(rungs)]
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(src),
           "-filter_complex", ";".join([split, *scales]), "-map_metadata", "-1", "-map_chapters", "-1"]
    stream_map = []
    for i, rung in enumerate(rungs):
        cmd += ["-map", f"[v{i}]", f"-c:v:{i}", "libx264", f"-b:v:{i}", f"{rung.video_kbps}k",
                f"-maxrate:v:{i}", f"{int(rung.video_kbps * 1.2)}k", f"-bufsize:v:{i}", f"{rung.video_kbps * 2}k"]
        if info.has_audio:
            cmd += ["-map", "0:a:0", f"-c:a:{i}", "aac", f"-b:a:{i}", f"{AUDIO_KBPS}k", f"-ac:a:{i}", "2"]
            stream_map.append(f"v:{i},a:{i},name:{rung.name}")
        else:
            stream_map.append(f"v:{i},name:{rung.name}")
    cmd += ["-preset", preset, "-profile:v", "high", "-pix_fmt", "yuv420p", "-g", "48", "-keyint_min", "48",
            "-sc_threshold", "0", "-threads", str(threads),
            "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod", "-hls_flags", "independent_segments",
            "-hls_segment_filename", str(out / HLS_DIR / "%v_%05d.ts"), "-master_pl_name", "master.m3u8",
            "-var_stream_map", " ".join(stream_map), str(out / HLS_DIR / "%v.m3u8")]
    return cmd


def mp4_command(ffmpeg: str, out: Path, top_rung: str) -> list[str]:
    """The progressive download: the top rung's segments joined into one MP4 without re-encoding."""
    top = out / HLS_DIR / f"{top_rung}.m3u8"
    return [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(top),
            "-c", "copy", "-map_metadata", "-1", "-bsf:a", "aac_adtstoasc", "-movflags", "+faststart",
            str(out / MP4)]


# JPEG wants full-range pixels; no metadata of the source is copied into a still.
_JPEG = ["-pix_fmt", "yuvj420p", "-map_metadata", "-1", "-fflags", "+bitexact"]


def stills_command(ffmpeg: str, src: Path, out: Path, info: VideoInfo) -> list[list[str]]:
    """The poster (a frame a little way in) and thumbnails every THUMB_EVERY_S seconds; rotation applied."""
    at = min(1.0, info.duration_s / 2)
    poster = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-ss", f"{at:.3f}", "-i", str(src),
              "-frames:v", "1", "-vf", f"scale=w='min({POSTER_WIDTH},iw)':h=-2:out_range=full", *_JPEG,
              "-q:v", "3", str(out / POSTER)]
    count = max(1, min(MAX_THUMBS, int(info.duration_s // THUMB_EVERY_S) + 1))
    thumbs = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(src),
              "-vf", f"select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,{THUMB_EVERY_S})',"
              f"scale=w={THUMB_WIDTH}:h=-2:out_range=full", "-fps_mode", "vfr", "-frames:v", str(count), *_JPEG,
              "-q:v", "5", str(out / THUMBS_DIR / "thumb_%04d.jpg")]
    return [poster, thumbs]
