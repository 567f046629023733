"""A real headless browser for the report's tests: Debian's Chromium through Python Playwright.

The ``browser`` fixture (``conftest.py``) launches it; :class:`Watched` opens
a page and records every request, console error, page error and dialog, so a
test can assert the page stayed offline and quiet; the pixel helpers read
the colours a user would see.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Chromium's hint when a canvas is read back pixel by pixel: only the tests' pixel() does that
READBACK_HINT = "Canvas2D: Multiple readback operations"


class Watched:
    """A page whose requests, console errors, page errors and dialogs are recorded."""

    def __init__(self, browser, html: Path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.requests, self.errors, self.dialogs = [], [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(m.text)
                if m.type in ("error", "warning") and not m.text.startswith(READBACK_HINT)
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.url = html.as_uri()
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_function("document.body.dataset.ready === '1'", timeout=10_000)

    def select(self, probe: str, layer: int, matrix: str) -> None:
        page = self.page
        index = page.evaluate(
            """([probe, layer, matrix]) => {
            const D = JSON.parse(document.getElementById('mutascope-data').textContent);
            return [D.probes.findIndex(p => p.id === probe),
                    D.matrices.findIndex(m => m.layer === layer && m.matrix === matrix)]; }""",
            [probe, layer, matrix],
        )
        page.select_option("#probe-select", str(index[0]))
        page.select_option("#matrix-select", str(index[1]))

    def tile_point(self, row: int, col: int) -> tuple[float, float]:
        canvas = self.page.locator("#tilemap")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        cell = int(canvas.get_attribute("data-cell"))
        scale = box["width"] / int(canvas.get_attribute("width"))
        return box["x"] + (col + 0.5) * cell * scale, box["y"] + (row + 0.5) * cell * scale

    def external_requests(self) -> list[str]:
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]


def pixel(page, canvas_id: str, x: float, y: float) -> tuple[int, int, int]:
    """The RGB colour of a canvas at (x, y) in its own pixel coordinates."""
    return tuple(
        page.evaluate(
            "([id, x, y]) => Array.from(document.getElementById(id).getContext('2d')"
            ".getImageData(Math.floor(x), Math.floor(y), 1, 1).data.slice(0, 3))",
            [canvas_id, x, y],
        )
    )


def tile_pixel(page, row: int, col: int) -> tuple[int, int, int]:
    """The colour at the centre of a tile of the drawn map."""
    cell = int(page.locator("#tilemap").get_attribute("data-cell"))
    return pixel(page, "tilemap", (col + 0.5) * cell, (row + 0.5) * cell)


def lightness(rgb) -> float:
    """Relative luminance (0-1): cividis, the effect colour scale, grows in lightness with the value."""
    r, g, b = (c / 255 for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
