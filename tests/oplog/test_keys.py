"""Key handling: refusals (missing, permissions, owner, example, malformed), wrong key, rekey."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from lockerd.oplog import EXAMPLE_KEY_HEX, KeyRefused, OpLog, OplogKey, WrongKey, load_key
from lockerd.oplog.keys import write_key_file


def test_loads_good_key_file(key_file: Path, key: OplogKey) -> None:
    assert load_key(key_file).raw == key.raw


def test_credentials_directory(tmp_path: Path, key: OplogKey) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    write_key_file(creds / "oplog.key", key)
    os.chmod(creds / "oplog.key", 0o400)
    assert load_key(None, env={"CREDENTIALS_DIRECTORY": str(creds)}).raw == key.raw


def test_missing_key_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyRefused, match="missing"):
        load_key(tmp_path / "nope.key")
    with pytest.raises(KeyRefused, match="no operation-log key"):
        load_key(None, env={})
    with pytest.raises(KeyRefused, match="missing"):
        load_key(None, env={"CREDENTIALS_DIRECTORY": str(tmp_path)})


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o610])
def test_group_or_world_accessible_key_refused(key_file: Path, mode: int) -> None:
    os.chmod(key_file, mode)
    with pytest.raises(KeyRefused, match="group or others"):
        load_key(key_file)


def test_wrong_owner_refused(key_file: Path) -> None:
    with pytest.raises(KeyRefused, match="owned by uid"):
        load_key(key_file, owner_uid=os.geteuid() + 4242)


def test_symlink_refused(tmp_path: Path, key_file: Path) -> None:
    link = tmp_path / "link.key"
    link.symlink_to(key_file)
    with pytest.raises(KeyRefused):
        load_key(link)


@pytest.mark.parametrize("text", [EXAMPLE_KEY_HEX, EXAMPLE_KEY_HEX.upper() + "\n", "ab" * 32 + "\n",
                                  "not hex at all", "abcd", "0x" + "12" * 31])
def test_example_or_malformed_key_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "k"
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(KeyRefused):
        load_key(path)


async def test_wrong_key_is_clear_and_never_overwrites(db_path: Path, key: OplogKey,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    log = await OpLog.open(db_path, key)
    await log.append("a", actor="x", body={})
    await log.close()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
              for p in db_path.parent.iterdir()}
    with pytest.raises(WrongKey, match="cannot decrypt"):
        await OpLog.open(db_path, OplogKey.generate())
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in db_path.parent.iterdir()}
    assert after == before
    _out, err = capfd.readouterr()
    assert "hmac" not in err.lower()
    assert "Traceback" not in err
    log = await OpLog.open(db_path, key)
    try:
        assert (await log.verify()).ok
        assert log.head[0] == 1
    finally:
        await log.close()


async def test_plain_file_is_not_a_log(tmp_path: Path, key: OplogKey) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"hello, this is not a database" * 100)
    with pytest.raises(WrongKey):
        await OpLog.open(path, key)
    assert path.read_bytes() == b"hello, this is not a database" * 100


async def test_rekey_recorded_and_old_key_refused(db_path: Path, key: OplogKey) -> None:
    log = await OpLog.open(db_path, key)
    await log.append("a", actor="x", body={})
    new = OplogKey.generate()
    op = await log.rekey(new, actor="uid:0")
    assert op.kind == "oplog.rekeyed"
    assert op.body == {"old_key": key.fingerprint, "new_key": new.fingerprint}
    # readers were reopened with the new key
    assert (await log.verify()).ok
    await log.append("b", actor="x", body={})
    await log.close()
    with pytest.raises(WrongKey):
        await OpLog.open(db_path, key)
    log = await OpLog.open(db_path, new)
    try:
        result = await log.verify()
        assert result.ok
        assert result.head_seq == 3
    finally:
        await log.close()


def test_fifo_key_refused_at_once(tmp_path: Path) -> None:
    """Before: open() of a FIFO with no writer blocked start-up forever. The load runs in a
    child thread here so a regression fails the test instead of hanging it."""
    import threading

    fifo = tmp_path / "oplog.key"
    os.mkfifo(fifo, 0o600)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_key(fifo)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(2.0)
    if thread.is_alive():
        # unblock the hung open() so the thread ends, then fail
        with open(fifo, "w"):
            pass
        thread.join(2.0)
        pytest.fail("load_key blocked on a FIFO")
    assert isinstance(outcome[0], KeyRefused)
    assert "FIFO" in str(outcome[0])


def test_device_key_refused() -> None:
    with pytest.raises(KeyRefused, match="character device"):
        load_key(Path("/dev/zero"), owner_uid=0)


@pytest.mark.parametrize("text", ["deadbeef" * 8, "0011223344556677" * 4,
                                  bytes(range(32)).hex(), bytes(range(255, 223, -1)).hex(),
                                  ("a1b2c3d4e5f60718" * 4)])
def test_low_entropy_key_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "k"
    path.write_text(text + "\n")
    os.chmod(path, 0o600)
    with pytest.raises(KeyRefused, match="low entropy"):
        load_key(path)


def test_random_keys_are_never_taken_for_patterns(tmp_path: Path) -> None:
    path = tmp_path / "k"
    for _ in range(2000):
        write_key_file(path, OplogKey.generate())
        load_key(path)


def test_symlinked_parent_directory_refused(tmp_path: Path, key: OplogKey) -> None:
    real = tmp_path / "real"
    real.mkdir()
    write_key_file(real / "oplog.key", key)
    (tmp_path / "linked").symlink_to(real)
    assert load_key(real / "oplog.key").raw == key.raw
    with pytest.raises(KeyRefused, match="symbolic link"):
        load_key(tmp_path / "linked" / "oplog.key")
    with pytest.raises(KeyRefused, match="symbolic link"):
        load_key(None, env={"CREDENTIALS_DIRECTORY": str(tmp_path / "linked")})
