"""The AWS Elemental MediaConvert job of one video: the same outputs as the embedded ffmpeg transcoder (an HLS
ladder with its master playlist, a progressive MP4, a poster and thumbnails) under the item's prefix.

MediaConvert names files from the destination and each output's name modifier, so the master playlist is
``hls/master.m3u8`` as with ffmpeg; the variant and segment names differ, which does not matter: serving follows
the URIs the playlists name. The rotation metadata is applied (``Rotate: AUTO``) and no input metadata is copied
into the outputs.
"""

from __future__ import annotations

from typing import Any

from domain.algorithms.media.plan import AUDIO_KBPS, LADDER, MAX_THUMBS, SEGMENT_S, THUMB_EVERY_S, THUMB_WIDTH


def client_request_token(media_id: int, prefix: str) -> str:
    """The same for every retry of this item's submission: MediaConvert then starts one job, not two."""
    return f"media-{media_id}-" + prefix.rstrip("/").rsplit("/", 1)[-1]


def _h264(kbps: int) -> dict[str, Any]:
    return {"Codec": "H_264", "H264Settings": {
        "RateControlMode": "QVBR", "MaxBitrate": kbps * 1000, "QvbrSettings": {"QvbrQualityLevel": 7},
        "GopSize": 2, "GopSizeUnits": "SECONDS", "SceneChangeDetect": "TRANSITION_DETECTION",
        "CodecProfile": "HIGH", "CodecLevel": "AUTO"}}


def _aac() -> dict[str, Any]:
    return {"AudioSourceName": "Audio Selector 1", "CodecSettings": {"Codec": "AAC", "AacSettings": {
        "Bitrate": AUDIO_KBPS * 1000, "CodingMode": "CODING_MODE_2_0", "SampleRate": 48000}}}


def job_request(*, media_id: int, bucket: str, prefix: str, original_key: str, role_arn: str,
                queue_arn: str | None, has_audio: bool = True) -> dict[str, Any]:
    """The keyword arguments of ``mediaconvert.create_job`` for this item."""
    dest = f"s3://{bucket}/{prefix}"
    audio = [_aac()] if has_audio else []
    hls_outputs = [{
        "NameModifier": f"_{rung.name}", "ContainerSettings": {"Container": "M3U8"},
        "VideoDescription": {"Height": rung.short_side, "ScalingBehavior": "DEFAULT",
                             "CodecSettings": _h264(rung.video_kbps)},
        "AudioDescriptions": audio,
    } for rung in LADDER]
    settings: dict[str, Any] = {
        "TimecodeConfig": {"Source": "ZEROBASED"},
        "Inputs": [{
            "FileInput": f"s3://{bucket}/{original_key}",
            "VideoSelector": {"Rotate": "AUTO"},
            "AudioSelectors": {"Audio Selector 1": {"DefaultSelection": "DEFAULT"}},
            "TimecodeSource": "ZEROBASED",
        }],
        "OutputGroups": [
            {"Name": "HLS", "OutputGroupSettings": {"Type": "HLS_GROUP_SETTINGS", "HlsGroupSettings": {
                "Destination": f"{dest}hls/master", "SegmentLength": SEGMENT_S, "MinSegmentLength": 0,
                "DirectoryStructure": "SINGLE_DIRECTORY", "ManifestDurationFormat": "FLOATING_POINT"}},
             "Outputs": hls_outputs},
            {"Name": "MP4", "OutputGroupSettings": {"Type": "FILE_GROUP_SETTINGS",
                                                    "FileGroupSettings": {"Destination": f"{dest}mp4/video"}},
             "Outputs": [{"ContainerSettings": {"Container": "MP4",
                                                "Mp4Settings": {"MoovPlacement": "PROGRESSIVE_DOWNLOAD"}},
                          "VideoDescription": {"Height": 720, "CodecSettings": _h264(2800)},
                          "AudioDescriptions": audio}]},
            {"Name": "Poster", "OutputGroupSettings": {"Type": "FILE_GROUP_SETTINGS",
                                                       "FileGroupSettings": {"Destination": f"{dest}poster"}},
             "Outputs": [{"ContainerSettings": {"Container": "RAW"}, "VideoDescription": {"CodecSettings": {
                 "Codec": "FRAME_CAPTURE", "FrameCaptureSettings": {
                     "FramerateNumerator": 1, "FramerateDenominator": 1, "MaxCaptures": 1, "Quality": 80}}}}]},
            {"Name": "Thumbnails", "OutputGroupSettings": {"Type": "FILE_GROUP_SETTINGS",
                                                           "FileGroupSettings": {"Destination": f"{dest}thumbs/thumb"}},
             "Outputs": [{"ContainerSettings": {"Container": "RAW"}, "VideoDescription": {
                 "Width": THUMB_WIDTH, "CodecSettings": {"Codec": "FRAME_CAPTURE", "FrameCaptureSettings": {
                     "FramerateNumerator": 1, "FramerateDenominator": THUMB_EVERY_S, "MaxCaptures": MAX_THUMBS,
                     "Quality": 70}}}}]},
        ],
    }
    request: dict[str, Any] = {
        "Role": role_arn, "Settings": settings, "UserMetadata": {"media_id": str(media_id)},
        "ClientRequestToken": client_request_token(media_id, prefix),
        "StatusUpdateInterval": "SECONDS_60", "Tags": {"app": "strava-plus-one"},
    }
    if queue_arn:
        request["Queue"] = queue_arn
    return request


def outputs_from_keys(prefix: str, keys: list[str]) -> dict[str, Any]:
    """Which object is which, from the keys MediaConvert (or ffmpeg) wrote under ``prefix``."""
    rel = sorted(k[len(prefix):] for k in keys if k.startswith(prefix))
    found: dict[str, Any] = {}
    if "hls/master.m3u8" in rel:
        found["hls"] = {"key": prefix + "hls/master.m3u8"}
    mp4 = [k for k in rel if k.startswith("mp4/") and k.endswith(".mp4")]
    if mp4:
        found["mp4"] = {"key": prefix + mp4[0], "content_type": "video/mp4"}
    poster = [k for k in rel if k.startswith("poster") and k.endswith(".jpg")]
    if poster:
        found["poster"] = {"key": prefix + poster[0], "content_type": "image/jpeg"}
    thumbs = [k for k in rel if k.startswith("thumbs/") and k.endswith(".jpg")]
    if thumbs:
        found["thumbs"] = [prefix + k for k in thumbs]
    return found
