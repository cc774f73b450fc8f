"""Benchmark: where the daemon's resident memory goes before it does anything, by import.

Each step imports more in a fresh interpreter and reads VmRSS, so the figures are what each
group of modules costs on its own: the interpreter, the third-party libraries the daemon always
needs, lockerd's daemon without a camera (OpenCV and numpy are loaded only with a camera), and
the camera guard (OpenCV, numpy). Also printed: RSS split into anonymous memory and mapped
files (shared libraries count in RSS although other processes could share them).
Target (issue 19): RSS <= 80 MB with the camera, for the running daemon (bench/idle_cpu.py
measures that; this bench shows how much of it is spent at import).

Usage: python bench/rss_imports.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_MB = 80.0
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("python", ()),
    ("+ asyncio", ("asyncio",)),
    ("+ pydantic, sqlcipher3, paho, cryptography", (
        "pydantic", "sqlcipher3.dbapi2", "paho.mqtt.client",
        "cryptography.hazmat.primitives.asymmetric.ed25519")),
    ("+ pymodbus client, pyserial", ("pymodbus.client", "serial")),
    ("+ lockerd daemon (no camera)", ("lockerd.app.daemon",)),
    ("+ camera guard (OpenCV, numpy)", ("lockerd.camera.guard", "lockerd.drivers.camera")),
)
PROBE = """
import json, sys
for m in sys.argv[1:]:
    __import__(m)
f = {l.split(':')[0]: int(l.split()[1]) / 1024 for l in open('/proc/self/status')
     if l.startswith(('VmRSS', 'RssAnon', 'RssFile'))}
print(json.dumps({"rss": f["VmRSS"], "anon": f["RssAnon"], "file": f["RssFile"],
                  "cv2": "cv2" in sys.modules, "numpy": "numpy" in sys.modules}))
"""


def measure(modules: list[str]) -> dict[str, float]:
    """RSS figures of a fresh interpreter after importing `modules`."""
    out = subprocess.run([sys.executable, "-c", PROBE, *modules], cwd=REPO, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(REPO)})
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    print("RSS after import, fresh interpreter per step (MB): total (anonymous + mapped files)")
    modules: list[str] = []
    prev = 0.0
    last: dict[str, float] = {}
    for label, more in STEPS:
        modules += more
        last = measure(modules)
        extra = " (cv2 loaded)" if last["cv2"] and "camera" not in label else ""
        print(f"{label:45s} {last['rss']:6.1f} ({last['anon']:5.1f} + {last['file']:5.1f})  "
              f"step {last['rss'] - prev:+5.1f}{extra}")
        prev = last["rss"]
    print(f"target: the running daemon with the camera <= {TARGET_MB:g} MB; "
          f"{last['rss']:.1f} MB is spent at import alone")


if __name__ == "__main__":
    main()
