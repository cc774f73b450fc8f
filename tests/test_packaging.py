"""The wheel: one top-level package (no generic `drivers`/`sim`), the example config inside, runs anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO


def _clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH: the fresh venv must see only what it installed."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--disable-pip-version-check", "-w", str(out), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=300, env=_clean_env())
    (whl,) = out.glob("lockerd-*.whl")
    return whl


def test_wheel_holds_one_namespace_and_the_example_config(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"lockerd"}
    assert "lockerd/config/example.toml" in names
    assert "lockerd/drivers/base.py" in names
    assert "lockerd/sim/physics.py" in names


def test_installed_wheel_prints_and_checks_its_example_outside_the_checkout(
        wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
                    str(wheel)], check=True, capture_output=True, timeout=300, env=_clean_env())
    # The wheel's dependencies come from this test environment's site-packages, added after the
    # fresh venv's own, so `lockerd` itself is the installed wheel, not this checkout.
    deps = sysconfig.get_paths()["purelib"]
    code = ("import sys; sys.path.append(sys.argv[1]); import lockerd; print(lockerd.__file__); "
            "from lockerd.cli.main import main; sys.exit(main(['config', 'example']))")
    run = subprocess.run([py, "-c", code, deps], check=False, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=_clean_env())
    assert run.returncode == 0, run.stderr
    where, _, example = run.stdout.partition("\n")
    assert where.startswith(str(env_dir)), where
    assert example == (REPO / "lockerd" / "config" / "example.toml").read_text(encoding="utf-8")
