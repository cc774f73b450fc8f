"""Evidence store: snapshots encrypted at rest in a real SQLCipher file, hashes verify, retention."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from lockerd.camera.evidence import EvidenceError, EvidenceStore
from lockerd.sim.camera import SimCamera

KEY = bytes(range(32))


def frame_getter(cam: SimCamera) -> tuple[float, np.ndarray]:
    return (1.0, cam.render("normal", 0.0))


async def test_snapshots_are_encrypted_at_rest_and_verify(tmp_path: Path) -> None:
    cam = SimCamera(320, 240)
    path = tmp_path / "evidence.db"
    store = EvidenceStore(path, KEY, lambda: frame_getter(cam),
                          camera_state=lambda: {"verdict": "ok", "intake_open": True})
    await store.open()
    try:
        ref_open = await store.snapshot("op-1:door_open")
        ref_close = await store.snapshot("op-1:door_close")
        assert ref_open is not None
        assert ref_close is not None
        assert ref_open.id != ref_close.id
        assert len(ref_open.sha256) == 64
        assert ref_open.ts.endswith("Z")
        assert await store.verify(ref_open)
        assert await store.verify(ref_close)
        jpeg = await store.load(ref_open.id)
        assert jpeg is not None
        assert jpeg[:3] == b"\xff\xd8\xff"
        assert hashlib.sha256(jpeg).hexdigest() == ref_open.sha256
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (240, 320, 3)
        forged = type(ref_open)(ref_open.id, "0" * 64, ref_open.ts, ref_open.label)
        assert not await store.verify(forged)
    finally:
        await store.close()
    assert_encrypted_at_rest(path)


def assert_encrypted_at_rest(path: Path) -> None:
    """Raw bytes of the database and any WAL/SHM left behind hold no plain JPEG, SQLite or label."""
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    for f in path.parent.iterdir():
        raw = f.read_bytes()
        assert b"\xff\xd8\xff" not in raw, f"JPEG magic in plain text in {f.name}"
        assert b"SQLite format 3" not in raw, f"{f.name} is a plain SQLite file"
        assert b"door_open" not in raw
        assert b"intake_open" not in raw


async def test_wrong_key_cannot_open_and_reopen_with_right_key_works(tmp_path: Path) -> None:
    path = tmp_path / "evidence.db"
    cam = SimCamera(160, 120)
    store = EvidenceStore(path, KEY, lambda: frame_getter(cam))
    await store.open()
    ref = await store.snapshot("op-2:door_open")
    await store.close()
    other = EvidenceStore(path, os.urandom(32), lambda: None)
    with pytest.raises(EvidenceError):
        await other.open()
    again = EvidenceStore(path, KEY, lambda: None)
    await again.open()
    try:
        assert ref is not None
        assert await again.verify(ref)
        assert await again.snapshot("op-3:door_open") is None  # no frame: nothing stored
        assert await again.count() == 1
    finally:
        await again.close()


async def test_retention_deletes_old_snapshots(tmp_path: Path) -> None:
    now = [1_000_000.0]
    cam = SimCamera(160, 120)
    store = EvidenceStore(tmp_path / "e.db", KEY, lambda: frame_getter(cam), retention_days=2,
                          clock=lambda: now[0])
    await store.open()
    try:
        old = await store.snapshot("op-1:door_open")
        now[0] += 86400 * 1.5
        new = await store.snapshot("op-2:door_open")
        assert await store.purge() == 0
        now[0] += 86400 * 1.0
        assert await store.purge() == 1
        assert old is not None
        assert new is not None
        assert await store.load(old.id) is None
        assert await store.verify(new)
    finally:
        await store.close()


async def test_labels_with_personal_data_shape_are_refused(tmp_path: Path) -> None:
    cam = SimCamera(160, 120)
    store = EvidenceStore(tmp_path / "e.db", KEY, lambda: frame_getter(cam))
    await store.open()
    try:
        for bad in ("张三 13800138000", "", "x" * 81, "op 1"):
            with pytest.raises(ValueError):
                await store.snapshot(bad)
    finally:
        await store.close()


def test_short_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError):
        EvidenceStore(tmp_path / "e.db", b"short", lambda: None)


async def test_a_wide_frame_is_stored_at_the_configured_width_keeping_its_aspect(
        tmp_path: Path) -> None:
    # issue 19: a 1280x720 camera's snapshot is kept at 640x360 (about a quarter of the bytes)
    cam = SimCamera(1280, 720)
    store = EvidenceStore(tmp_path / "evidence.db", KEY, lambda: (1.0, cam.render("normal", 0.0)),
                          max_width=640)
    await store.open()
    try:
        ref = await store.snapshot("op-2:door_open")
        assert ref is not None
        jpeg = await store.load(ref.id)
        assert jpeg is not None
        picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == (360, 640, 3)
        full = cv2.imencode(".jpg", cam.render("normal", 0.0), [cv2.IMWRITE_JPEG_QUALITY, 70])[1]
        assert len(jpeg) < len(full) / 2
    finally:
        await store.close()
