"""The deployment as documented: deploy/install.sh (twice), then the daemon run the way the unit
runs it and users of each role group calling lockerctl through the socket.

What is real: install.sh creating groups and users in the system's databases (with names unique
to this test, removed afterwards) and files under a prefix; the daemon as the unprivileged
service user with the unit's primary and supplementary groups, runtime directory owner and mode,
state directory mode, UMask, credentials directory, and /proc mounted hidepid=invisible in a
private mount namespace (the unit's ProtectProc=invisible: the daemon cannot see other users'
processes, so roles read from /proc/PID/status would be empty and every role check below would
fail); lockerctl run as each user with the groups a login gives it (setpriv --init-groups).
What is not: systemd itself (the container has none); the unit's settings are read from the
shipped file and applied with unshare/setpriv.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.daemon_proc import dump_toml, without_asyncio_debug
from tests.fixtures.paths import REPO
from tests.fixtures.peers import shared_workdir

INSTALL = REPO / "deploy" / "install.sh"
UNIT = REPO / "deploy" / "systemd" / "lockerd.service"

if os.geteuid() != 0:  # pragma: no cover - CI and the dev container run as root
    pytest.fail("the deployment test creates users and groups: run the suite as root")


def unit_settings() -> dict[str, str]:
    """The [Service] keys of the shipped unit (the last value of a repeated key)."""
    out: dict[str, str] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value
    return out


@dataclass
class Names:
    """System names of one test run; the unit's names map onto them."""

    tag: str

    @property
    def service(self) -> str:
        return f"lkd{self.tag}"

    def group(self, role: str) -> str:
        return f"lkd{self.tag}-{role}"

    def user(self, who: str) -> str:
        return f"lk{who}{self.tag}"


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kw)


def _tree(root: Path) -> dict[str, tuple[str, str]]:
    """path -> (mode owner group, content hash) for every file and directory under root."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "-"
        out[str(path.relative_to(root))] = (
            f"{st.st_mode:o} {pwd.getpwuid(st.st_uid).pw_name} {grp.getgrgid(st.st_gid).gr_name}",
            digest)
    return out


@pytest.fixture
def names() -> Iterator[Names]:
    n = Names(secrets.token_hex(3))
    yield n
    for who in ("p", "t", "a", "n", "x"):
        _run(["userdel", n.user(who)])
        _run(["groupdel", n.user(who)])
    _run(["userdel", n.service])
    for role in ("api", "panel", "tech", "audit", "gpio"):
        _run(["groupdel", n.group(role)])


def _install(root: Path, names: Names, *args: str) -> subprocess.CompletedProcess[str]:
    lockerctl = root.parent / "lockerctl"  # the venv's entry point: this checkout's lockerctl
    lockerctl.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} "
                         "-m lockerd.cli.lockerctl \"$@\"\n")
    lockerctl.chmod(0o755)
    env = {**os.environ, "ROOT": str(root), "SKIP_VENV": "1", "SERVICE_USER": names.service,
           "LOCKERCTL": str(lockerctl),
           "API_GROUP": names.group("api"), "PANEL_GROUP": names.group("panel"),
           "TECH_GROUP": names.group("tech"), "AUDIT_GROUP": names.group("audit"),
           "GPIO_GROUP": names.group("gpio")}
    return _run(["bash", str(INSTALL), *args], env=env)


def _python_exposed() -> str:
    """Shell lines that make this interpreter reachable for other users inside the namespace:
    the dev container keeps pyenv under /root (0700); a tmpfs over the closed directory with the
    interpreter's tree bound back in (CI's system python needs nothing)."""
    base = Path(sys.base_prefix)
    closed = next((p for p in reversed(base.parents) if p != Path("/")
                   and not os.stat(p).st_mode & 0o001), None)
    if closed is None:
        return ""
    keep = f"/tmp/lockerd-py-{os.getpid()}"
    return (f"mkdir -p {keep} && mount --bind {base} {keep} && "
            f"mount -t tmpfs -o mode=0755 tmpfs {closed} && mkdir -p {base} && "
            f"mount --bind {keep} {base} && ")


def _as_user_in_namespace(user: str, group: str, command: list[str], *, groups: str | None,
                          hide_proc: bool, umask: str | None = None) -> list[str]:
    """unshare a mount namespace, optionally mount /proc hidepid=invisible, drop to the user
    (with `groups`, or the group database's with None) and exec `command`."""
    script = _python_exposed()
    if hide_proc:
        script += "mount -t proc -o hidepid=invisible proc /proc && "
    if umask:
        script += f"umask {umask} && "
    setgroups = "--init-groups" if groups is None else f"--groups={groups}"
    script += (f"exec setpriv --reuid={user} --regid={group} {setgroups} --inh-caps=-all "
               f"--bounding-set=-all --no-new-privs -- \"$@\"")
    return ["unshare", "--mount", "--fork", "--", "sh", "-c", script, "sh", *command]


def test_unshare_works_here() -> None:
    """The deployment test needs a private mount namespace (root in a container allows it)."""
    res = _run(["unshare", "--mount", "--fork", "--", "sh", "-c",
                "mount -t proc -o hidepid=invisible proc /proc && grep -c hidepid=invisible "
                "/proc/self/mountinfo"])
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) >= 1


@pytest.fixture
def others_reach_this_checkout() -> Iterator[None]:
    """The service and role users run this checkout's code with its venv's interpreter: every
    directory on the way to them must let others through (o+x only, nothing listed or read that
    was not already). A clone in `mktemp -d` (0700) or under /root is not: traversal is opened
    for the test and put back after it."""
    opened: list[tuple[Path, int]] = []
    for target in (REPO, Path(sys.prefix), Path(sys.base_prefix)):
        for directory in (*reversed(target.parents), target):
            mode = os.stat(directory).st_mode
            if not mode & 0o001 and directory not in [d for d, _ in opened]:
                opened.append((directory, mode))
                os.chmod(directory, stat.S_IMODE(mode) | 0o001)
    try:
        yield
    finally:
        for directory, mode in reversed(opened):
            os.chmod(directory, stat.S_IMODE(mode))


@pytest.fixture
def work() -> Iterator[Path]:
    """A directory other users can traverse (pytest's are 0700), removed afterwards."""
    path = shared_workdir("lockerd-deploy-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.usefixtures("others_reach_this_checkout")
def test_install_is_idempotent_and_the_daemon_serves_each_role_exactly(
        names: Names, work: Path) -> None:
    root = work / "root"
    root.mkdir()
    # --- install.sh twice: the second run changes nothing
    first = _install(root, names)
    assert first.returncode == 0, first.stderr
    assert "changed:" in first.stderr
    tree = _tree(root)
    second = _install(root, names)
    assert second.returncode == 0, second.stderr
    assert "changed:" not in second.stderr, second.stderr
    assert _tree(root) == tree
    creds = root / "etc/lockerd/credentials"
    assert tree["etc/lockerd/credentials"][0].startswith("40700 root root")
    assert tree["etc/lockerd/credentials/oplog.key"][0] == "100600 root root"
    assert re.fullmatch(r"[0-9a-f]{64}\n", (creds / "oplog.key").read_text())
    # a carrier key placed next to it becomes a LoadCredential= line, once
    (creds / "sf.key").write_text(secrets.token_hex(32))
    assert _install(root, names).returncode == 0
    dropin = (root / "etc/systemd/system/lockerd.service.d/credentials.conf").read_text()
    assert "LoadCredential=sf.key:/etc/lockerd/credentials/sf.key" in dropin
    assert "changed:" not in _install(root, names).stderr
    assert (root / "etc/systemd/system/lockerd.service").read_bytes() == UNIT.read_bytes()
    assert "complete -F _lockerctl lockerctl" in (
        root / "usr/share/bash-completion/completions/lockerctl").read_text()
    assert (root / "usr/share/zsh/vendor-completions/_lockerctl").read_text().startswith(
        "#compdef lockerctl")
    assert (root / "usr/share/man/man1/lockerctl.1").read_text().startswith(".TH LOCKERCTL 1")
    service = pwd.getpwnam(names.service)
    assert grp.getgrgid(service.pw_gid).gr_name == names.group("api")
    # --- users of each role, added the documented way
    roles = {"p": ["panel"], "t": ["tech"], "a": ["audit"], "n": [], "x": None}
    for who, granted in roles.items():
        user = names.user(who)
        assert _run(["useradd", "--system", "--user-group", "--no-create-home", "--shell",
                     "/usr/sbin/nologin", user]).returncode == 0
        if granted is not None:
            res = _install(root, names, "grant", user, *granted) if granted else _run(
                ["usermod", "-a", "-G", names.group("api"), user])
            assert res.returncode == 0, res.stderr
    _run(["usermod", "-a", "-G", names.group("tech"), names.user("x")])  # tech, no api group
    # --- the daemon as the unit runs it
    unit = unit_settings()
    assert unit["User"] == "lockerd"
    assert unit["Group"] == "lockerd-api"
    runtime = work / "run" / unit["RuntimeDirectory"]
    state = work / "state" / unit["StateDirectory"]
    credentials = work / "credentials"
    for path, mode in ((runtime, unit["RuntimeDirectoryMode"]), (state, unit["StateDirectoryMode"]),
                       (credentials, "0500")):
        path.mkdir(parents=True)
        os.chown(path, service.pw_uid, service.pw_gid)
        os.chmod(path, int(mode, 8))
    os.chmod(runtime.parent, 0o755)
    os.chmod(state.parent, 0o755)
    shutil.copy(creds / "oplog.key", credentials / "oplog.key")
    os.chown(credentials / "oplog.key", service.pw_uid, service.pw_gid)
    os.chmod(credentials / "oplog.key", 0o400)
    cfg = tomllib.loads((root / "etc/lockerd/lockerd.toml").read_text())
    cfg["paths"] = {"state_dir": str(state), "socket": str(runtime / "api.sock")}
    cfg["api"].update(panel_group=names.group("panel"), tech_group=names.group("tech"),
                      audit_group=names.group("audit"))
    cfg["camera"].update(sample_hz=10.0, learn_frames=3, good_hold_s=0.3)
    config = work / "lockerd.toml"
    config.write_text(dump_toml(cfg))
    os.chmod(config, 0o644)
    supplementary = ",".join(g for g in unit["SupplementaryGroups"].split()
                             if _run(["getent", "group", g]).returncode == 0) or "-"
    env = {**without_asyncio_debug(os.environ), "CREDENTIALS_DIRECTORY": str(credentials),
           "PYTHONPATH": str(REPO), "HOME": "/nonexistent"}
    daemon = subprocess.Popen(
        _as_user_in_namespace(names.service, names.group("api"),
                              [sys.executable, "-m", "lockerd", "run", "-c", str(config)],
                              groups=supplementary if supplementary != "-" else "",
                              hide_proc=True, umask=unit["UMask"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)
    sock = runtime / "api.sock"
    try:
        deadline = time.monotonic() + 60
        while not sock.exists():
            if daemon.poll() is not None:
                raise AssertionError(daemon.communicate()[1])
            assert time.monotonic() < deadline, "the daemon did not bind its socket"
            time.sleep(0.2)
        # the unit's owners and modes, and the daemon really sees /proc hidepid=invisible
        st = sock.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (service.pw_uid, service.pw_gid,
                                                             0o660)
        st = runtime.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (
            service.pw_uid, service.pw_gid, int(unit["RuntimeDirectoryMode"], 8))
        lockerd_pid = _daemon_pid(service.pw_uid)
        mounts = Path(f"/proc/{lockerd_pid}/mountinfo").read_text()
        assert re.search(r" /proc .*hidepid=invisible", mounts), mounts
        assert oct(_umask_of(lockerd_pid)) == oct(int(unit["UMask"], 8))
        matrix = {who: _calls(names.user(who), sock, env) for who in roles}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGTERM)
        _out, err = daemon.communicate(timeout=60)
    assert "Traceback" not in err, err
    print(json.dumps(matrix, indent=1))
    assert matrix == {
        "p": {"status": "ok", "doors": "forbidden", "log": "forbidden", "panel": "wrong_code"},
        "t": {"status": "ok", "doors": "ok", "log": "ok", "panel": "forbidden"},
        "a": {"status": "ok", "doors": "forbidden", "log": "ok", "panel": "forbidden"},
        "n": {"status": "forbidden", "doors": "forbidden", "log": "forbidden",
              "panel": "forbidden"},
        "x": {"status": "unavailable", "doors": "unavailable", "log": "unavailable",
              "panel": "unavailable"},
    }, matrix


def _daemon_pid(uid: int) -> int:
    """The `lockerd run` process of the service user (root sees it: hidepid is in its
    namespace only)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid and b"lockerd\x00run" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    raise AssertionError("no lockerd run process of the service user")


def _umask_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask line")


def _calls(user: str, sock: Path, env: dict[str, str]) -> dict[str, str]:
    """lockerctl status/doors/log/panel as `user` (a login's groups): `ok` or the error code."""
    commands = {"status": ["status"], "doors": ["doors"], "log": ["log"],
                "panel": ["panel", "pickup"]}
    out = {}
    uid = pwd.getpwnam(user)
    for name, args in commands.items():
        res = _run(_as_user_in_namespace(
            user, grp.getgrgid(uid.pw_gid).gr_name,
            [sys.executable, "-m", "lockerd.cli.lockerctl", "--socket", str(sock), "--json",
             *args], groups=None, hide_proc=False),
            env={**env, "LOCKER_CODE": "00000000"})
        body = json.loads(res.stdout) if res.stdout.strip() else {}
        if res.returncode == 0:
            out[name] = "ok"
        else:
            assert "Traceback" not in res.stderr, res.stderr
            out[name] = body.get("error", {}).get("code", f"exit {res.returncode}: {res.stderr}")
    return out
