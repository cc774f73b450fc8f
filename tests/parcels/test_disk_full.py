"""Disk full between begin and confirm, on a real small tmpfs in a private mount namespace.

The daemon runs in-process inside `unshare --mount` (tests/parcels/disk_full_scenario.py): the
mount is invisible to the rest of the machine and goes away with the process. What must hold:
the courier and the recipient are told `disk_full` (never `internal`), the deposit is never
`rolled_back` while the parcel is inside, the cabinet is `degraded: disk_full` meanwhile, and once
space returns both door cycles are recorded exactly once and the cabinet is `ready` again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TMPFS_SIZE = "24m"


def test_disk_full_between_begin_and_confirm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    script = ('mount --make-rprivate / && mount -t tmpfs -o size="$1",mode=0700 tmpfs "$2" '
              '&& exec "$3" -m tests.parcels.disk_full_scenario "$4"')
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    res = subprocess.run(["unshare", "--mount", "--fork", "--", "sh", "-c", script, "sh",
                          TMPFS_SIZE, str(state), sys.executable, str(tmp_path)],
                         check=False, capture_output=True, text=True, timeout=300, env=env,
                         cwd=repo)
    assert res.returncode == 0, res.stderr[-4000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["ready_before"] == ["ready", []]
    assert out["filler_bytes"] > 0
    deposit, pickup = out["replies"]["deposit"], out["replies"]["pickup"]
    assert (deposit["ok"], deposit["code"]) == (False, "disk_full")
    assert (pickup["ok"], pickup["code"]) == (False, "disk_full")
    assert deposit["result"]["recorded"] is False
    full = out["while_full"]
    assert full["condition"][0] == "degraded"
    assert "disk_full" in full["condition"][1]
    # held as they were at the begin, in memory, never rolled back
    assert (full["deposit_status"], full["pickup_status"], full["kept"]) == (
        "depositing", "in_locker", 2)
    assert out["new_begin"] == "disk_full"
    after, ids = out["after"], out["ids"]
    assert after["condition"] == ["ready", []]
    assert (after["deposit_status"], after["pickup_status"]) == ("in_locker", "closed")
    assert after["deliver_confirms"].count(ids["deposited"]) == 1
    assert after["pickup_confirms"] == [ids["first"]]
    assert after["rollbacks"] == []
    assert after["recorded_late"] == 2
    # the mount was private: nothing of it is visible here
    assert not (state / "filler").exists()
