"""Camera at rest: what a sample costs on the capture thread, and whether the steady-scene
shortcut (lockerd/camera/steady.py) ever lets a tampered frame through unjudged.

1. Safety. For every scene of bench/camera_guard.py's labelled set (both splits), the shortcut
   remembers a benign frame of the right light (plain sensor noise; the dim scene for a dim
   cover; the infrared picture for an infrared cover) as judged good, then is shown each
   tampered frame of every mode and strength: a frame it calls "unchanged" would have reused
   the good verdict without the full judgement. Target: none at medium and full strength
   (weak tampering is reported, but does not close intake alone in any case). Also printed: the
   share of each benign mode's frames it would spare (the saving; a benign frame it does not
   spare is simply judged in full).
2. Cost per sample on one thread (median thread CPU ms, 640x480 MJPEG frame of a photograph):
   full decode vs decode straight to 160x120 (DCT scaling), the steady check, the full judgement.
   bench/idle_cpu.py gives the whole daemon's idle figure with the camera.

Run: .venv/bin/python bench/camera_steady.py [--quick] (needs the `bench` extra).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from camera_guard import (
    BENIGN,
    HELD_OUT,
    STRENGTHS,
    TAMPER,
    TUNING,
    SceneCtx,
    Sensor,
    benign_frame,
    load_scene,
    tamper_frame,
    view,
)
from camera_people import extra_prints

from lockerd.camera.analyser import Analyser
from lockerd.camera.frames import prepare
from lockerd.camera.steady import SteadyScene
from lockerd.config import Camera

CFG = Camera()
SIZE = (CFG.analysis_width, CFG.analysis_height)
#: the benign picture a tamper mode's cover lands on (same light regime)
BEFORE = {"covered_dim": ("dim_scene", "medium"), "covered_ir": ("ir", "medium")}


def steady() -> SteadyScene:
    return SteadyScene(max_mean_diff=CFG.steady_mean_diff, max_cell_diff=CFG.steady_cell_diff,
                       live_diff=CFG.frozen_diff, recheck_s=CFG.recheck_s)


def scenes(names: list[str]) -> list[SceneCtx]:
    all_names = TUNING + HELD_OUT
    loaded = {n: load_scene(n) for n in all_names}
    prints = extra_prints()
    out = []
    for name in names:
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        other = all_names[(all_names.index(name) + 5) % len(all_names)]
        wardrobe = [loaded[n] for n in all_names if n != name] + prints
        out.append(SceneCtx(name, loaded[name], view(loaded[name]), view(loaded[other]),
                            Sensor(rng), rng, wardrobe))
    return out


def safety(ctxs: list[SceneCtx], frames: int) -> tuple[dict[tuple[str, str], list[int]],
                                                       dict[tuple[str, str], list[int]]]:
    """[spared, shown] per tamper (mode, strength) and per benign (mode, strength)."""
    tampered: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    benign: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for ctx in ctxs:
        for mode in TAMPER:
            if mode == "frozen":
                continue  # no noise at all: never spared by construction (tests/camera/test_steady.py)
            before_mode, before_strength = BEFORE.get(mode, ("noise", "weak"))
            for strength in STRENGTHS:
                for _ in range(frames):
                    scene = steady()
                    good = prepare(benign_frame(before_mode, before_strength, ctx, 0, 1), SIZE)
                    scene.remember(good, 0.0, good=True)
                    rng = np.random.default_rng(int(ctx.rng.integers(2**32)))
                    shown = prepare(tamper_frame(mode, strength, ctx, rng), SIZE)
                    counts = tampered[(mode, strength)]
                    counts[0] += scene.unchanged(shown, 0.2)
                    counts[1] += 1
        for mode in BENIGN:
            for strength in STRENGTHS:
                scene = steady()
                scene.remember(prepare(benign_frame(mode, strength, ctx, 0, frames + 1), SIZE),
                               0.0, good=True)
                for i in range(1, frames + 1):
                    counts = benign[(mode, strength)]
                    counts[0] += scene.unchanged(
                        prepare(benign_frame(mode, strength, ctx, i, frames + 1), SIZE), 0.2)
                    counts[1] += 1
    return tampered, benign


def _median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return 1000 * statistics.median(times)


def cost(ctx: SceneCtx, n: int) -> list[tuple[str, float]]:
    frame = benign_frame("noise", "weak", ctx, 0, 1)
    packet = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    small = np.asarray(cv2.imdecode(packet, cv2.IMREAD_REDUCED_COLOR_4), np.uint8)
    analyser = Analyser(CFG)
    t = 0.0
    for _ in range(CFG.learn_frames + 10):
        t += 0.2
        analyser.analyse(small, t, True)
    scene = steady()
    scene.remember(prepare(small, SIZE), t, good=True)
    again = np.asarray(cv2.imdecode(cv2.imencode(".jpg", benign_frame("noise", "weak", ctx, 1, 2),
                                                 [cv2.IMWRITE_JPEG_QUALITY, 90])[1],
                                    cv2.IMREAD_REDUCED_COLOR_4), np.uint8)

    def judge() -> None:
        nonlocal t
        t += 0.2
        analyser.analyse(again, t, True)

    return [
        ("decode 640x480 JPEG in full", _median_ms(lambda: cv2.imdecode(packet, cv2.IMREAD_COLOR), n)),
        ("decode it straight to 160x120 (IMREAD_REDUCED_COLOR_4)",
         _median_ms(lambda: cv2.imdecode(packet, cv2.IMREAD_REDUCED_COLOR_4), n)),
        ("prepare (gray, colour spread) at 160x120", _median_ms(lambda: prepare(again, SIZE), n)),
        ("steady check", _median_ms(lambda: scene.unchanged(prepare(again, SIZE), t + 0.1), n)),
        ("full judgement (Analyser.analyse) of the 160x120 frame", _median_ms(judge, n)),
    ]


def _pct(counts: list[int]) -> str:
    return f"{100 * counts[0] / counts[1]:5.1f} % ({counts[0]}/{counts[1]})" if counts[1] else "-"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer frames and timing rounds")
    args = parser.parse_args(argv)
    cv2.setNumThreads(CFG.cv_threads)
    frames = 2 if args.quick else 6
    ctxs = scenes(TUNING + HELD_OUT)
    tampered, benign = safety(ctxs, frames)
    print(f"steady-scene shortcut (mean <= {CFG.steady_mean_diff}, cell <= {CFG.steady_cell_diff}, "
          f"live > {CFG.frozen_diff}), {len(ctxs)} scenes, both splits")
    print("tampered frames it would have spared the full judgement (target: 0 at medium and full)")
    missed = 0
    for mode in TAMPER:
        if mode == "frozen":
            continue
        row = "  ".join(f"{s}: {_pct(tampered[(mode, s)])}" for s in STRENGTHS)
        print(f"  {mode:12s} {row}")
        missed += tampered[(mode, "medium")][0] + tampered[(mode, "full")][0]
    print(f"  -> medium and full: {missed} spared (target 0: {'met' if missed == 0 else 'NOT met'})")
    print("benign frames it spares (the saving; the rest are judged in full)")
    for mode in BENIGN:
        row = "  ".join(f"{s}: {_pct(benign[(mode, s)])}" for s in STRENGTHS)
        print(f"  {mode:14s} {row}")
    print("cost per sample on one thread (median thread CPU)")
    for label, ms in cost(ctxs[0], 40 if args.quick else 200):
        print(f"  {label:58s} {ms:6.3f} ms")
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
