"""Technician tool `lockerd camera-check`: judge saved frames against a reference, no daemon needed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2

from lockerd.camera.analyser import bands_from, bounds_from, thresholds_from
from lockerd.camera.analysis import Verdict, decide, score
from lockerd.camera.frames import prepare_frame
from lockerd.camera.regimes import RegimeBank
from lockerd.config import Camera, ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="lockerd camera-check",
        description="Print one JSON line per frame: {file, ok, reason, check, regime, scores}. "
                    "Exit 0 when every frame is OK, 1 when any frame fails or cannot be read, "
                    "2 on usage errors.")
    ap.add_argument("--reference", required=True, type=Path, help="image of the empty scene")
    ap.add_argument("-c", "--config", type=Path, default=None,
                    help="take thresholds and analysis size from this config's [camera] section")
    ap.add_argument("frames", nargs="+", type=Path, help="frames to check")
    return ap


def main(argv: list[str]) -> int:
    """Run the check; 0 when every frame is OK, 1 when any is not (or unreadable), 2 on usage errors."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    cam = Camera()
    if args.config is not None:
        try:
            cam = load_config(args.config).camera
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 2
    thresholds, bounds = thresholds_from(cam), bounds_from(cam)
    size = (cam.analysis_width, cam.analysis_height)
    ref_img = cv2.imread(str(args.reference), cv2.IMREAD_COLOR)
    if ref_img is None:
        print(f"camera-check: cannot read reference image {args.reference}", file=sys.stderr)
        return 2
    bank = RegimeBank(bands_from(cam))
    p_ref = prepare_frame(ref_img, size)
    ref_regime = bank.regime_of(float(p_ref.gray.mean()), p_ref.chroma)
    ref = bank.learn(ref_regime, p_ref.gray)
    failed = False
    for path in args.frames:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        line: dict[str, Any]
        if img is None:
            line = {"file": str(path), "ok": False, "reason": "unreadable", "check": "read",
                    "regime": None, "scores": {}}
        else:
            p = prepare_frame(img, size)
            regime = bank.regime_of(float(p.gray.mean()), p.chroma)
            s, _ = score(ref, p.gray, None, bounds=bounds, tile_min=thresholds.tile_similarity_min)
            verdict, check = decide(s, thresholds, ref.stats)
            line = {"file": str(path), "ok": verdict is Verdict.OK,
                    "reason": None if verdict is Verdict.OK else verdict.value, "check": check,
                    "regime": regime.value, "reference_regime": ref_regime.value,
                    "scores": s.as_dict()}
        failed = failed or not line["ok"]
        print(json.dumps(line, sort_keys=False), flush=True)
    return 1 if failed else 0
