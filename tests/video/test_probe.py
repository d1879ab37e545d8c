"""Probing real files of every test shape, and rejecting every kind of bad upload by name."""

from __future__ import annotations

from fractions import Fraction

import pytest

from netflix_assets.video.encode import SourceInfo
from netflix_assets.video.probe import UploadRejected, validate_upload


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("720p", {"width": 1280, "height": 720, "has_audio": True, "bit_depth": 8}),
        ("odd", {"width": 961, "height": 541, "fps": Fraction(25)}),
        ("silent", {"has_audio": False, "audio_codec": None}),
        ("10bit", {"bit_depth": 10, "codec": "hevc", "pix_fmt": "yuv420p10le"}),
        ("rotated", {"rotation": 90, "width": 960, "height": 540}),
        ("vfr", {"is_vfr": True, "nominal_fps": Fraction(30)}),
    ],
)
def test_probe_reads_each_shape(clip, shape: str, expected: dict) -> None:
    info = validate_upload(clip(shape))
    for field, value in expected.items():
        assert getattr(info, field) == value, field
    assert info.duration_s > 2
    if shape == "rotated":
        assert (info.display_width, info.display_height) == (540, 960)


def test_vfr_source_encodes_at_a_standard_rate(clip) -> None:
    info = validate_upload(clip("vfr"))
    assert info.fps != info.nominal_fps  # the average rate is not the nominal one
    assert SourceInfo.from_probe(info.to_dict()).encode_fps == Fraction(30)


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def test_zero_bytes(tmp_path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(UploadRejected, match="empty"):
        validate_upload(path)


def test_not_a_video(tmp_path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is a screenplay, not a video\n" * 50)
    with pytest.raises(UploadRejected, match="not a video"):
        validate_upload(path)


def test_truncated_mp4_without_its_index(clip, tmp_path) -> None:
    """moov at the end (FFmpeg's default): cutting the file loses the index."""
    data = clip("720p").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UploadRejected, match="truncated or damaged: it starts like an MP4"):
        validate_upload(path)


def test_truncated_faststart_mp4_missing_frames(clip, tmp_path) -> None:
    """moov at the front: the file opens and claims its full duration; the frames are gone."""
    import subprocess

    faststart = tmp_path / "faststart.mp4"
    subprocess.run(
        [
            _ffmpeg(),
            "-loglevel",
            "error",
            "-i",
            str(clip("720p")),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(faststart),
        ],
        check=True,
    )
    data = faststart.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(UploadRejected, match="truncated"):
        validate_upload(path)


def test_no_video_stream(tmp_path) -> None:
    import subprocess

    path = tmp_path / "tone.mp4"
    subprocess.run(
        [
            _ffmpeg(),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
    )
    with pytest.raises(UploadRejected, match="no video stream"):
        validate_upload(path)


def test_absurd_dimensions(tmp_path) -> None:
    import subprocess

    path = tmp_path / "sliver.mkv"
    subprocess.run(
        [
            _ffmpeg(),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=size=8400x16:duration=0.2:rate=5",
            "-c:v",
            "ffv1",
            str(path),
        ],
        check=True,
    )
    with pytest.raises(UploadRejected, match="absurd dimensions 8400x16"):
        validate_upload(path)
