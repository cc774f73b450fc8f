"""`lockerd demo --kiosk` runs the demo cabinet with the kiosk, prints its URL and stops on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request


def test_demo_kiosk_serves_the_screen_until_interrupted() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "lockerd", "demo", "--kiosk", "--kiosk-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while not any(line.startswith("kiosk: ") for line in lines):
            assert time.monotonic() < deadline, lines
            line = proc.stdout.readline()
            assert line, f"demo ended early: {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line.strip())
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", lines[-1])
        assert match is not None
        assert any(re.fullmatch(r"demo parcel in door \d+: pickup code \d{6,8}", ln) for ln in lines)
        with urllib.request.urlopen(match.group(0), timeout=10) as page:
            assert page.status == 200
            assert "/static/app.js" in page.read().decode()
        with urllib.request.urlopen(match.group(0) + "api/home", timeout=10) as home:
            assert b"Demo Garden Locker 3" in home.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.strip().endswith("demo finished")
    assert "Traceback" not in err
