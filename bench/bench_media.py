"""Figures of the media chains (issue 12), printed:

- photo chain on a 12-megapixel phone photo: ms per photo (p50) and the peak RSS of the process running it;
- video chain with the embedded ffmpeg on a 30 s 1080p clip: processing time as a multiple of the clip's
  duration, and the peak RSS (the worker process and its ffmpeg children);
- bytes of each rendition against the original.

    .venv/bin/python bench/bench_media.py [--photo PATH] [--runs 5] [--video-seconds 30]

The photo is a real 12 MP phone photo when one is given (``--photo``, e.g. an iPhone HEIC), otherwise a generated
4000 × 3000 JPEG with camera-like noise. The clip is made here with
ffmpeg (a moving test pattern with audio, rotated 90° as a phone records portrait). Each chain runs in a child
process of its own, as on a worker, so its peak RSS is its own. Nothing touches S3 or the database: this is the
CPU and memory of the chain itself.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child_generate(path: str) -> None:
    """In a process of its own: on Linux a child started later would inherit this one's peak RSS across exec."""
    data, _ = _generated_photo()
    Path(path).write_bytes(data)


def _generated_photo() -> tuple[bytes, str]:
    import numpy as np
    from PIL import Image

    from tests.support.media import private_exif

    rng = np.random.default_rng(12)
    y, x = np.mgrid[0:3000, 0:4000]
    base = np.stack([(x / 16) % 256, (y / 12) % 256, ((x + y) / 24) % 256], axis=-1)
    pixels = np.clip(base + rng.normal(0, 18, base.shape), 0, 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90, exif=private_exif(6).tobytes())
    return out.getvalue(), "image/jpeg"


def child_photo(path: str, content_type: str, runs: int) -> None:
    from domain.algorithms.media.photos import process_photo

    data = Path(path).read_bytes()
    times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = process_photo(data, content_type, max_pixels=100_000_000)
        times.append((time.perf_counter() - started) * 1000)
    assert result is not None
    print(json.dumps({"ms": times, "width": result.width, "height": result.height,
                      "renditions": {r.name: [len(r.data), r.width, r.height] for r in result.renditions},
                      "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def child_video(path: str, out: str) -> None:
    import imageio_ffmpeg

    from domain.algorithms.media import video as vid

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    src, target = Path(path), Path(out)
    for sub in (vid.HLS_DIR, "mp4", vid.THUMBS_DIR):
        (target / sub).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    info = vid.probe(src, max_duration_s=600)
    subprocess.run(vid.hls_command(ffmpeg, src, target, info), check=True)
    subprocess.run(vid.mp4_command(ffmpeg, target, vid.ladder(info.width, info.height)[0].name), check=True)
    for cmd in vid.stills_command(ffmpeg, src, target, info):
        subprocess.run(cmd, check=True)
    elapsed = time.perf_counter() - started
    sizes: dict[str, int] = {}
    for p in target.rglob("*"):
        if p.is_file():
            rel = str(p.relative_to(target))
            group = rel.split("_")[0] if rel.startswith("hls/") and rel.endswith(".ts") else rel
            sizes[group] = sizes.get(group, 0) + p.stat().st_size
    print(json.dumps({"s": elapsed, "duration": info.duration_s, "size": [info.width, info.height],
                      "rungs": [r.name for r in vid.ladder(info.width, info.height)], "sizes": sizes,
                      "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "children_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))


def _run_child(*args: str) -> dict:
    # ru_maxrss survives exec on Linux: this process stays small (files, not pixels), so the figure is the child's.
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB" if n < 10 * 2**20 else f"{n / 2**20:,.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--video-seconds", type=int, default=30)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "generate":
            child_generate(args.child[1])
        elif args.child[0] == "photo":
            child_photo(args.child[1], args.child[2], int(args.child[3]))
        else:
            child_video(args.child[1], args.child[2])
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        folder = Path(tmp)
        photo = args.photo
        if photo is not None:
            data = photo.read_bytes()
            content_type = "image/heic" if photo.suffix.lower() in (".heic", ".heif") else "image/jpeg"
            source = photo.name
        else:
            subprocess.run([sys.executable, __file__, "--child", "generate", str(folder / "photo")], check=True)
            data, content_type = (folder / "photo").read_bytes(), "image/jpeg"
            source = "generated 4000x3000 JPEG"
        photo_path = folder / "photo"
        photo_path.write_bytes(data)
        p = _run_child("photo", str(photo_path), content_type, str(args.runs))
        print(f"photo chain: {source} ({content_type}, {p['width']}x{p['height']} = "
              f"{p['width'] * p['height'] / 1e6:.1f} MP, {_kib(len(data))})")
        print(f"  p50 {statistics.median(p['ms']):,.0f} ms per photo (min {min(p['ms']):,.0f}, max "
              f"{max(p['ms']):,.0f}, {args.runs} runs); peak RSS of the process {p['rss_kb'] / 1024:,.0f} MiB")
        for name, (size, w, h) in p["renditions"].items():
            print(f"  {name:7s} {w}x{h} JPEG {_kib(size):>10s} = {size / len(data):6.1%} of the original")

        from tests.support.media import ffmpeg

        base, clip = folder / "base.mp4", folder / "clip.mp4"
        seconds = args.video_seconds
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}", "-f", "lavfi", "-i",
               f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "12M",
               "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(base))
        ffmpeg("-display_rotation:v:0", "90", "-i", str(base), "-c", "copy", str(clip))
        v = _run_child("video", str(clip), str(folder / "out"))
        original = clip.stat().st_size
        print(f"video chain (embedded ffmpeg): {seconds} s 1080p clip rotated 90° (upright {v['size'][0]}x"
              f"{v['size'][1]}), rungs {', '.join(v['rungs'])}, {_kib(original)}")
        print(f"  {v['s']:.1f} s = {v['s'] / v['duration']:.2f}x the clip's duration; peak RSS worker "
              f"{v['rss_kb'] / 1024:,.0f} MiB, largest ffmpeg child {v['children_rss_kb'] / 1024:,.0f} MiB")
        for name, size in sorted(v["sizes"].items()):
            print(f"  {name:24s} {_kib(size):>10s} = {size / original:6.1%} of the original")
    return 0


if __name__ == "__main__":
    sys.exit(main())
