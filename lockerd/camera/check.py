"""Technician tool `lockerd camera-check`: judge saved frames against a reference, no daemon needed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from lockerd.camera.analysis import Thresholds, Verdict, classify, make_reference, prepare, score
from lockerd.config import ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="lockerd camera-check",
        description="Print one JSON line per frame: {file, ok, reason, scores}.")
    ap.add_argument("--reference", required=True, type=Path, help="image of the empty scene")
    ap.add_argument("-c", "--config", type=Path, default=None,
                    help="take thresholds and analysis size from this config's [camera] section")
    ap.add_argument("frames", nargs="+", type=Path, help="frames to check")
    return ap


def main(argv: list[str]) -> int:
    """Run the check; 0 when every frame was judged (tampered or not), 2 on usage errors."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    thresholds, size = Thresholds(), (160, 120)
    if args.config is not None:
        from lockerd.camera.guard import thresholds_from

        try:
            cam = load_config(args.config).camera
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        thresholds, size = thresholds_from(cam), (cam.analysis_width, cam.analysis_height)
    ref_img = cv2.imread(str(args.reference), cv2.IMREAD_COLOR)
    if ref_img is None:
        print(f"camera-check: cannot read reference image {args.reference}", file=sys.stderr)
        return 2
    ref = make_reference(prepare(ref_img, size))
    for path in args.frames:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            line = {"file": str(path), "ok": False, "reason": "unreadable", "scores": {}}
        else:
            s = score(ref, prepare(img, size), None)
            verdict = classify(s, thresholds)
            line = {"file": str(path), "ok": verdict is Verdict.OK,
                    "reason": None if verdict is Verdict.OK else verdict.value,
                    "scores": s.as_dict()}
        print(json.dumps(line, sort_keys=False), flush=True)
    return 0
