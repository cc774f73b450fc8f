"""The locks: agree with pyproject.toml, are what the tests run on, and install on a cabinet.

The cabinets run Raspberry Pi OS 12 (bookworm) 64-bit: CPython 3.11 on aarch64 with glibc 2.36.
pip is asked (network to PyPI) for every locked package's wheel for that platform, and the file
it picks must carry one of the lock's hashes, or `pip install --require-hashes` on the cabinet
would refuse it. This test is never skipped: a package without such a wheel fails it by name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.fixtures.paths import REPO

LOCK = REPO / "requirements.lock"
PI_LOCK = REPO / "requirements-pi.lock"  # the same pins plus the [pi] extra: what cabinets install
# The target: pip's own tag for manylinux2014 (glibc 2.17) plus every manylinux_2_x up to the
# glibc of Raspberry Pi OS 12; numpy and sqlcipher3 ship aarch64 wheels only as manylinux_2_28.
TARGET_GLIBC_MINOR = 36
PLATFORMS = ["manylinux2014_aarch64",
             *(f"manylinux_2_{minor}_aarch64" for minor in range(17, TARGET_GLIBC_MINOR + 1))]
# colorzero declares setuptools but nothing imports it at run time; the lock holds a current
# release, while a venv made by `python -m venv` (like the shared development one) carries the
# interpreter's bundled copy until scripts/venv.sh installs the lock into it.
NOT_IMPORTED = {"setuptools"}


def parse_lock(text: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, hashes) of every `name==version \\ --hash=...` entry."""
    entries: dict[str, tuple[str, set[str]]] = {}
    current: str | None = None
    for line in text.splitlines():
        pin = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", line)
        if pin:
            current = canonicalize_name(pin.group(1))
            entries[current] = (pin.group(2), set())
        elif current and (digest := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            entries[current][1].add(digest.group(1))
        elif line.strip() and not line.lstrip().startswith(("#", "--hash")):
            raise AssertionError(f"unexpected line in requirements.lock: {line!r}")
    return entries


LOCKED = parse_lock(LOCK.read_text())
PI_LOCKED = parse_lock(PI_LOCK.read_text())


def _dependencies(extra: str | None = None) -> list[Requirement]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    texts = data["dependencies"] if extra is None else data["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


def _closure(roots: list[Requirement]) -> set[str]:
    """Every distribution the runtime dependencies pull in on the cabinet's Python (3.11).

    Read from the installed metadata; a root not installed here (lgpio, the [pi] extra, is only
    on cabinets) counts alone: the lock's own comments name what pulls in what.
    """
    env = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.2",
           "extra": ""}
    seen: set[str] = set()
    todo = [r for r in roots if r.marker is None or r.marker.evaluate(env)]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            needed = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in needed:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate(env):
                todo.append(sub)
    return seen


def test_every_entry_is_pinned_with_hashes() -> None:
    assert LOCKED
    for name, (pinned, hashes) in {**LOCKED, **PI_LOCKED}.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", pinned), name
        assert hashes, f"{name} has no --hash"


def test_the_lock_agrees_with_pyproject() -> None:
    """Each dependency is locked at a version its specifier allows, and the lock holds exactly
    the runtime closure (nothing stale, nothing missing): regenerate with scripts/lock."""
    for req in _dependencies():
        name = canonicalize_name(req.name)
        assert name in LOCKED, f"{req.name} is in pyproject.toml but not locked"
        assert req.specifier.contains(LOCKED[name][0], prereleases=True), (
            f"{req.name}: locked {LOCKED[name][0]}, pyproject.toml asks {req.specifier}")
    assert set(LOCKED) == _closure(_dependencies())


def test_the_cabinet_lock_is_the_runtime_lock_plus_the_pi_extra() -> None:
    extra = _dependencies("pi")
    for req in extra:
        name = canonicalize_name(req.name)
        assert name in PI_LOCKED, f"{req.name} ([pi]) is not in requirements-pi.lock"
        assert req.specifier.contains(PI_LOCKED[name][0], prereleases=True), req
    assert {n: e for n, e in PI_LOCKED.items() if n in LOCKED} == LOCKED
    assert set(PI_LOCKED) - set(LOCKED) == _closure(extra) - set(LOCKED)


def test_the_suite_runs_on_the_locked_versions() -> None:
    wrong = {}
    for name, (pinned, _hashes) in LOCKED.items():
        if name in NOT_IMPORTED:
            continue
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if installed != pinned:
            wrong[name] = f"installed {installed}, locked {pinned}"
    assert not wrong, f"not the locked set (install with scripts/venv.sh): {wrong}"


def _download(tmp: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    """pip download of the named cabinet-lock entries for the cabinet, hash-checked."""
    reqs = tmp / f"req-{len(names)}-{names[0]}.txt"
    reqs.write_text("".join(f"{n}=={PI_LOCKED[n][0]} "
                            + " ".join(f"--hash=sha256:{h}" for h in sorted(PI_LOCKED[n][1]))
                            + "\n" for n in names))
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
           "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
           "--require-hashes", "-d", str(tmp / "wheels"), "-r", str(reqs)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PIP_NO_INPUT": "1"})


def test_every_locked_dependency_has_a_wheel_for_the_cabinets(tmp_path: Path) -> None:
    names = sorted(PI_LOCKED)  # the runtime lock and lgpio
    result = _download(tmp_path, names)
    if result.returncode != 0:
        # Name every package that fails, not only the first pip stopped at.
        failing = {}
        for name in names:
            one = _download(tmp_path, [name])
            if one.returncode != 0:
                failing[name] = [ln for ln in one.stderr.splitlines() if "ERROR" in ln][-1:]
        raise AssertionError(f"no hash-matching wheel for CPython 3.11 on manylinux aarch64 "
                             f"(glibc <= 2.{TARGET_GLIBC_MINOR}): {failing or result.stderr}")
    wheels = sorted(p.name for p in (tmp_path / "wheels").iterdir())
    assert len(wheels) == len(names), wheels
    assert all(w.endswith(".whl") for w in wheels)
