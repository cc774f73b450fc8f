"""`lockerd camera-check`: one JSON line per frame with the verdict, the deciding check and the regime."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from lockerd.camera.check import main
from lockerd.sim.camera import SimCamera


def test_prints_one_json_line_per_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cam = SimCamera(640, 480)
    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), cam.render("normal", 0.0))
    files = {}
    for mode in ("normal", "person", "covered", "blurred", "turned", "saturated"):
        files[mode] = tmp_path / f"{mode}.png"
        cv2.imwrite(str(files[mode]), cam.render(mode, 1.0))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    args = ["--reference", str(ref), *(str(p) for p in files.values()), str(junk)]
    assert main(args) == 1  # some frames fail
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in lines] == [*(str(p) for p in files.values()), str(junk)]
    by_mode = dict(zip(files, lines, strict=False))
    assert by_mode["normal"]["ok"]
    assert by_mode["normal"]["reason"] is None
    assert (by_mode["normal"]["check"], by_mode["normal"]["regime"]) == ("ok", "day")
    assert by_mode["normal"]["reference_regime"] == "day"
    assert by_mode["person"]["ok"]
    assert (by_mode["covered"]["ok"], by_mode["covered"]["reason"]) == (False, "covered")
    assert by_mode["blurred"]["reason"] == "defocused"
    assert by_mode["turned"]["reason"] == "redirected"
    assert by_mode["saturated"]["reason"] == "blinded"
    assert set(by_mode["normal"]["scores"]) >= {"brightness", "similarity", "sharpness_ratio"}
    assert by_mode["covered"]["check"] in {"uniform", "tiles_flattened"}
    assert lines[-1] == {"file": str(junk), "ok": False, "reason": "unreadable", "check": "read",
                         "regime": None, "scores": {}}


def test_exit_zero_only_when_every_frame_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cam = SimCamera(640, 480)
    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), cam.render("normal", 0.0))
    frames = []
    for mode in ("normal", "shake", "ir", "night"):
        frames.append(tmp_path / f"{mode}.png")
        cv2.imwrite(str(frames[-1]), cam.render(mode, 2.0))
    assert main(["--reference", str(ref), *map(str, frames)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["ok"] for line in lines] == [True] * 4
    assert [line["regime"] for line in lines] == ["day", "day", "ir", "night"]
    assert main(["--reference", str(ref), str(frames[0]), str(tmp_path / "missing.png")]) == 1


def test_unreadable_reference_and_usage_errors(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--reference", str(tmp_path / "missing.png"), str(tmp_path / "f.png")]) == 2
    assert "cannot read reference" in capsys.readouterr().err
    assert main([]) == 2


def test_thresholds_from_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = Path(__file__).resolve().parents[2]
    cfg = tmp_path / "c.toml"
    text = (repo / "lockerd" / "config" / "example.toml").read_text().replace(
        "similarity_min = 0.25", "similarity_min = 0.999")
    cfg.write_text(text)
    cam = SimCamera(640, 480)
    ref, frame = tmp_path / "ref.png", tmp_path / "person.png"
    cv2.imwrite(str(ref), cam.render("normal", 0.0))
    cv2.imwrite(str(frame), cam.render("person", 0.0))
    assert main(["-c", str(cfg), "--reference", str(ref), str(frame)]) == 1
    line = json.loads(capsys.readouterr().out)
    assert (line["reason"], line["check"]) == ("redirected", "similarity")
