"""Layer rules read from the source with ast: a pure domain, use cases off the adapters, a tidy package.

The rules are the data table below; the checker functions under it read any package directory,
so the last tests run them over a synthetic package with a forbidden import to show they can fail.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest

STDLIB = "<stdlib>"


@dataclass(frozen=True)
class ImportRule:
    """Modules matching `modules` (globs relative to the package's parent) may import only
    `allow_only` (when given) and never `forbid`; entries match a dotted name and its submodules."""

    name: str
    modules: tuple[str, ...]
    allow_only: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()


# ---- the rules -------------------------------------------------------------------------------------

IMPORT_RULES = (
    ImportRule("the domain is pure: itself, the standard library and pydantic only",
               modules=("lockerd/domain/*",),
               allow_only=("lockerd.domain", "pydantic", STDLIB)),
    ImportRule("the use-case core knows no API server, MQTT or door controller",
               modules=("lockerd/parcels/service.py", "lockerd/parcels/ports.py",
                        "lockerd/parcels/store.py"),
               forbid=("lockerd.api", "lockerd.sync", "paho", "lockerd.doors")),
)
#: Modules allowed directly in `lockerd/`; everything else lives in a subpackage ...
TOP_LEVEL_MODULES = frozenset({"__init__.py", "__main__.py", "privacy.py"})
#: ... except at most this many more small shared modules.
TOP_LEVEL_EXTRA = 1
#: Longest module without a stated reason; the reason goes in the first docstring line.
MAX_LINES = 450
LONG_REASON = "long because"

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lockerd"


# ---- the checker -----------------------------------------------------------------------------------

def _modules(package: Path) -> Iterator[tuple[Path, str]]:
    """Every .py file of the package with its dotted module name."""
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str) -> set[str]:
    """Dotted names a module imports (`from a import b` gives `a.b`), relative imports resolved,
    imports inside functions and `TYPE_CHECKING` blocks included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names)
    return found


def _matches(name: str, entry: str) -> bool:
    if entry == STDLIB:
        return name.split(".", maxsplit=1)[0] in sys.stdlib_module_names
    return name == entry or name.startswith(entry + ".")


def import_violations(package: Path, rules: tuple[ImportRule, ...] = IMPORT_RULES) -> list[str]:
    """`path: imports name (rule)` for every import a rule does not allow."""
    out: list[str] = []
    for path, module in _modules(package):
        rel = path.relative_to(package.parent).as_posix()
        for rule in rules:
            if not any(fnmatch(rel, pattern) for pattern in rule.modules):
                continue
            for name in sorted(imports_of(path, module)):
                if (rule.allow_only and not any(_matches(name, e) for e in rule.allow_only)) \
                        or any(_matches(name, e) for e in rule.forbid):
                    out.append(f"{rel}: imports {name} ({rule.name})")
    return out


def layout_violations(package: Path) -> list[str]:
    """Top-level modules beyond the allowed ones and the extra allowance."""
    extra = sorted(p.name for p in package.glob("*.py") if p.name not in TOP_LEVEL_MODULES)
    if len(extra) <= TOP_LEVEL_EXTRA:
        return []
    return [f"{package.name}/ holds {len(extra)} modules outside a subpackage (at most "
            f"{TOP_LEVEL_EXTRA} besides {sorted(TOP_LEVEL_MODULES)}): {extra}"]


def size_violations(package: Path) -> list[str]:
    """Modules over MAX_LINES whose first docstring line does not say why."""
    out: list[str] = []
    for path, _ in _modules(package):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        first = doc.splitlines()[0] if doc else ""
        if LONG_REASON not in first.lower():
            out.append(f"{path.relative_to(package.parent).as_posix()}: {lines} lines and its first "
                       f"docstring line does not say why ('{LONG_REASON} ...')")
    return out


# ---- lockerd itself --------------------------------------------------------------------------------

def test_every_import_rule_applies_to_some_module() -> None:
    rels = [p.relative_to(REPO).as_posix() for p, _ in _modules(PACKAGE)]
    for rule in IMPORT_RULES:
        assert any(fnmatch(rel, pattern) for rel in rels for pattern in rule.modules), rule.name


def test_lockerd_keeps_its_import_rules() -> None:
    assert import_violations(PACKAGE) == []


def test_lockerd_modules_live_in_subpackages() -> None:
    assert layout_violations(PACKAGE) == []


def test_no_lockerd_module_is_long_without_a_reason() -> None:
    assert size_violations(PACKAGE) == []


# ---- the checker catches what it should -------------------------------------------------------------

def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """A small `lockerd` package that keeps every rule."""
    for rel, text in {
        "lockerd/__init__.py": '"""Package."""\n',
        "lockerd/privacy.py": '"""Masking."""\nimport re\n',
        "lockerd/domain/__init__.py": '"""Domain."""\nfrom .model import Thing\n',
        "lockerd/domain/model.py": '"""Model."""\nfrom datetime import UTC\nfrom pydantic import BaseModel\n',
        "lockerd/parcels/__init__.py": "",
        "lockerd/parcels/service.py": '"""Use cases."""\nfrom lockerd.domain import Thing\nimport asyncio\n',
        "lockerd/api/__init__.py": "",
        "lockerd/api/server.py": '"""Server."""\nfrom lockerd.parcels import service\n',
    }.items():
        _write(tmp_path, rel, text)
    return tmp_path / "lockerd"


def test_a_clean_synthetic_package_passes(synthetic: Path) -> None:
    assert import_violations(synthetic) == []
    assert layout_violations(synthetic) == []
    assert size_violations(synthetic) == []


@pytest.mark.parametrize(("rel", "line", "name"), [
    ("lockerd/domain/model.py", "from lockerd.api.server import ApiServer", "lockerd.api.server.ApiServer"),
    ("lockerd/domain/model.py", "from lockerd import config", "lockerd.config"),
    ("lockerd/domain/model.py", "from .. import sync", "lockerd.sync"),
    ("lockerd/domain/model.py", "import numpy", "numpy"),
    ("lockerd/domain/model.py", "def f():\n    import lockerd.doors.controller", "lockerd.doors.controller"),
    ("lockerd/parcels/service.py", "import paho.mqtt.client as mqtt", "paho.mqtt.client"),
    ("lockerd/parcels/service.py", "from lockerd.doors.controller import DoorController",
     "lockerd.doors.controller.DoorController"),
    ("lockerd/parcels/service.py", "from lockerd.sync import payloads", "lockerd.sync.payloads"),
])
def test_a_forbidden_import_is_reported(synthetic: Path, rel: str, line: str, name: str) -> None:
    path = synthetic.parent / rel
    path.write_text(path.read_text() + line + "\n")
    found = import_violations(synthetic)
    assert len(found) == 1
    assert found[0].startswith(f"{rel}: imports {name} (")


def test_a_stray_top_level_module_is_reported(synthetic: Path) -> None:
    _write(synthetic.parent, "lockerd/timefmt.py", '"""One shared helper is allowed."""\n')
    assert layout_violations(synthetic) == []
    _write(synthetic.parent, "lockerd/helpers.py", '"""A second one is not."""\n')
    assert len(layout_violations(synthetic)) == 1


def test_a_long_module_needs_a_reason(synthetic: Path) -> None:
    body = "x = 1\n" * MAX_LINES
    _write(synthetic.parent, "lockerd/domain/big.py", '"""Does many things."""\n' + body)
    assert [v.split(":")[0] for v in size_violations(synthetic)] == ["lockerd/domain/big.py"]
    _write(synthetic.parent, "lockerd/domain/big.py",
           '"""Protocol tables, long because each frame is listed once."""\n' + body)
    assert size_violations(synthetic) == []
