"""Tools of the kiosk's browser tests: Debian's Chromium under Playwright, screenshots, axe-core, timings."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".artifacts" / "kiosk"
CACHE = REPO / ".artifacts" / "cache"
CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium as it is, never a browser Playwright downloads.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SMALL = {"width": 1024, "height": 600}
LARGE = {"width": 1280, "height": 800}


def need_browser() -> None:
    """Fail clearly (scripts/test installs both) when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: scripts/test installs Debian's chromium")
    pytest.importorskip("playwright.async_api", reason="playwright (dev extra) not installed")


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """One headless Chromium for a test module."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def snap(page: Any, name: str) -> None:
    """Screenshots of what the page shows now, in Chinese and in English (back to Chinese after)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for lang in ("zh", "en"):
        await set_lang(page, lang)
        await page.screenshot(path=str(ARTIFACTS / f"{name}.{lang}.png"))
    await set_lang(page, "zh")


async def set_lang(page: Any, lang: str) -> None:
    """Switch the screen's language with its own button."""
    want = "en" if lang == "en" else "zh-CN"
    if await page.evaluate("document.documentElement.lang") != want:
        await page.click("#lang")
        await page.wait_for_function("w => document.documentElement.lang === w", arg=want)


def axe_source() -> str:
    """axe-core's browser build, fetched from the npm registry once into a cache (not committed)."""
    target = CACHE / "axe-core" / "axe.min.js"
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to fetch axe-core for the accessibility check")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([npm, "pack", "axe-core@4", "--silent", "--pack-destination", tmp],
                                 capture_output=True, text=True, timeout=180, check=False)
            if out.returncode != 0:
                pytest.fail(f"npm pack axe-core@4 failed: {out.stderr[-500:]}")
            tarball = next(Path(tmp).glob("axe-core-*.tgz"))
            with tarfile.open(tarball) as tar:
                member = tar.extractfile("package/axe.min.js")
                assert member is not None
                target.write_bytes(member.read())
    return target.read_text(encoding="utf-8")


async def axe_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(source)
    result = await page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def small_targets(page: Any) -> list[str]:
    """Visible buttons, inputs and check-box labels smaller than 48x48 CSS pixels."""
    found: list[str] = await page.evaluate("""() => {
        const out = [];
        for (const el of document.querySelectorAll('button, input, label.check')) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) continue;
            if (el.matches('label.check input')) continue;  // the label is the target
            const name = el.id || el.textContent.trim();
            if (r.width < 48 || r.height < 48) out.push(`${name}: ${r.width}x${r.height}`);
        }
        return out;
    }""")
    return found


async def overflow(page: Any) -> bool:
    """True when the page scrolls sideways (not readable on that screen size)."""
    result: bool = await page.evaluate(
        "document.documentElement.scrollWidth > window.innerWidth + 1")
    return result


class Timer:
    """Figures of a test module written next to the screenshots (for the closing note)."""

    def write(self, name: str, data: dict[str, Any]) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{name}.json").write_text(json.dumps(data, indent=2))
