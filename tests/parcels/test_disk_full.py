"""Disk full between begin and confirm, on a real small tmpfs in a private mount namespace.

The daemon runs in-process inside `unshare --mount` (tests/parcels/disk_full_scenario.py): the
mount is invisible to the rest of the machine and goes away with the process. What must hold:
the courier and the recipient are told `disk_full` (never `internal`), the deposit is never
`rolled_back` while the parcel is inside, the cabinet is `degraded: disk_full` meanwhile, and once
space returns both door cycles are recorded exactly once and the cabinet is `ready` again; also
when the daemon is stopped before space returns and started after (the side file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lockerd.privacy import NON_PERSONAL

TMPFS_SIZE = "24m"


def _scenario(tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run tests/parcels/disk_full_scenario.py on a private tmpfs; its JSON observations."""
    state = tmp_path / "state"
    state.mkdir()
    script = ('mount --make-rprivate / && mount -t tmpfs -o size="$1",mode=0700 tmpfs "$2" '
              '&& shift 3 && exec "$0" -m tests.parcels.disk_full_scenario "$@"')
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    res = subprocess.run(["unshare", "--mount", "--fork", "--", "sh", "-c", script,
                          sys.executable, TMPFS_SIZE, str(state), "-", str(tmp_path), *args],
                         check=False, capture_output=True, text=True, timeout=300, env=env,
                         cwd=repo)
    assert res.returncode == 0, res.stderr[-4000:]
    # the mount was private: nothing of it is visible here
    assert not (state / "filler").exists()
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def test_disk_full_between_begin_and_confirm(tmp_path: Path) -> None:
    out = _scenario(tmp_path)
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


def test_a_stop_while_the_disk_is_full_keeps_the_ends_for_the_next_start(tmp_path: Path) -> None:
    """The daemon stops before space returns: the two kept ends survive in the side file (ids,
    numbers and times only, 0600) and the next start records them, never rolling back."""
    out = _scenario(tmp_path, "restart")
    deposit = out["replies"]["deposit"]
    assert (deposit["ok"], deposit["code"]) == (False, "disk_full")
    assert out["while_full"]["kept"] == 2
    side, ids = out["side_file"], out["ids"]
    assert side["mode"] == "0o600"
    assert side["size"] == 4096
    assert sorted(side["kinds"]) == ["deliver.confirm", "pickup.confirm"]
    assert set(side["keys"]) <= NON_PERSONAL
    assert "SF100000000" not in side["text"]  # no waybill (nor code, name, phone)
    assert out["after_start"]["unrecorded"] == 0
    assert out["after_start"]["blocked"] == []
    after = out["after"]
    assert after["condition"] == ["ready", []]
    assert (after["deposit_status"], after["pickup_status"]) == ("in_locker", "closed")
    assert after["deliver_confirms"].count(ids["deposited"]) == 1
    assert after["pickup_confirms"] == [ids["first"]]
    assert after["rollbacks"] == []
    assert sorted(after["after_restart"]) == ["deliver.confirm", "pickup.confirm"]
