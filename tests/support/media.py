"""Test media made on the fly: photos with every kind of private metadata (Pillow, pillow-heif), short videos
(the ffmpeg of the imageio-ffmpeg wheel), and the impostors of the bad-input list. Nothing is downloaded."""

from __future__ import annotations

import io
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import imageio_ffmpeg
import pillow_heif
from PIL import Image

#: A made-up place (central Annecy) written into the test files' location tags.
LAT, LNG = 45.8992, 6.1294
MAKER_NOTE = b"MAKERNOTE-SERIAL-0451-SECRET"
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="45,53.952N"/>'
       b"</rdf:RDF></x:xmpmeta>")


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = round(((value - d) * 60 - m) * 60, 4)
    return (float(d), float(m), s)


def private_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "TestCam"  # Make
    exif[0x0132] = "2026:05:01 09:30:00"
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = "2026:05:01 09:30:00"  # DateTimeOriginal
    ifd[0x927C] = MAKER_NOTE  # MakerNote
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N" if LAT >= 0 else "S", 2: _dms(LAT), 3: "E" if LNG >= 0 else "W", 4: _dms(LNG)})
    return exif


def two_tone(size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Red top half, blue bottom half: where the red ends up tells the orientation applied."""
    im = Image.new("RGB", size, (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, size[0], size[1] // 2))
    return im


def gps_jpeg(orientation: int = 1, size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    two_tone(size).save(out, "JPEG", quality=90, exif=private_exif(orientation).tobytes(), xmp=XMP)
    return out.getvalue()


def heic(size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    pillow_heif.from_pillow(two_tone(size)).save(out, format="HEIF", exif=private_exif(1).tobytes(), quality=60)
    return out.getvalue()


def png(size: tuple[int, int] = (200, 100)) -> bytes:
    out = io.BytesIO()
    two_tone(size).save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pixel_bomb(side: int = 100_000) -> bytes:
    """A valid-looking PNG of a few dozen bytes declaring ``side`` × ``side`` pixels."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        _chunk(b"IEND", b"")


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("holiday.jpg", b"not really a photo")
    return out.getvalue()


def executable() -> bytes:
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 57 + b"\x90" * 200


def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True, capture_output=True)


def make_videos(folder: Path) -> dict[str, Path]:
    """Tiny clips: rotated (90°) with a location tag and audio; audio only (no video stream); truncated; 5 s."""
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / "base.mp4"
    location = f"{LAT:+08.4f}{LNG:+09.4f}/"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", "-metadata", f"location={location}", str(base))
    rotated = folder / "rotated.mp4"
    ffmpeg("-display_rotation:v:0", "90", "-i", str(base), "-c", "copy", "-metadata", f"location={location}",
           str(rotated))
    audio = folder / "audio-only.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(audio))
    long = folder / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=5:duration=5", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(long))
    truncated = folder / "truncated.mp4"
    data = rotated.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    return {"rotated": rotated, "audio_only": audio, "long": long, "truncated": truncated}


def has_private_metadata(data: bytes) -> list[str]:
    """What private metadata these bytes still hold (empty: none)."""
    found = []
    if MAKER_NOTE in data:
        found.append("maker note")
    if b"xmpmeta" in data or b"XMP " in data:
        found.append("XMP")
    if b"Exif\x00\x00" in data or b"EXIF" in data:
        found.append("EXIF")
    try:
        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()
            if exif.get_ifd(0x8825) or 0x8825 in exif:
                found.append("GPS IFD")
    except Exception:
        pass
    return found
