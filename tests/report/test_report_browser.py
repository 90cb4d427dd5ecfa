"""report.html in a real headless browser (Debian's chromium): it renders, and every image decodes.

A screenshot must not be blank and must show the bar colours of the figure; a copy of the page with a
small script appended reports, after the load event, how many images decoded (``naturalWidth > 0``) and
how many table rows exist, which ``--dump-dom`` prints. Skipped only when chromium is not installed
(``.ci/run`` installs it with apt-get).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from lvlm.report import ReportFiles
from lvlm.report.figures import PALETTE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium; .ci/run does this)"
)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
CHECK_SCRIPT = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter((image) => image.complete && image.naturalWidth > 0).length;
  const rows = document.querySelectorAll("#study-table tbody tr").length;
  const marker = document.createElement("pre");
  marker.id = "render-check";
  marker.textContent = `RENDER-CHECK images=${images.length} decoded=${decoded} rows=${rows}`;
  document.body.appendChild(marker);
});
</script>
"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def _near(pixel: tuple[int, int, int], colour: str, tolerance: int = 12) -> bool:
    target = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, target, strict=True))


def test_screenshot_is_not_blank_and_shows_the_figure(report: ReportFiles, tmp_path: Path) -> None:
    shot = report.out_dir / "screenshot.png"
    done = chromium(
        f"--screenshot={shot}", "--window-size=1280,2000", report.report_html.resolve().as_uri(),
        profile=tmp_path / "profile",
    )  # fmt: skip
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        rgb = image.convert("RGB")
    colours = rgb.getcolors(maxcolors=1 << 22)
    assert colours is not None and len(colours) > 200, "the screenshot is (nearly) one colour"
    non_white = sum(count for count, pixel in colours if sum(pixel) < 720)
    assert non_white > 0.05 * 1280 * 2000
    for colour in PALETTE[: len(report.table.rows)]:  # each model's bars are on screen
        assert sum(count for count, pixel in colours if _near(pixel, colour)) > 2000, colour


def test_every_image_decodes_and_the_table_has_its_rows(report: ReportFiles, tmp_path: Path) -> None:
    page = report.report_html.read_text(encoding="utf-8").replace("</body>", CHECK_SCRIPT + "</body>")
    checked = report.out_dir / "report_check.html"
    checked.write_text(page, encoding="utf-8")
    done = chromium(
        "--dump-dom", "--virtual-time-budget=5000", checked.resolve().as_uri(), profile=tmp_path / "p"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r"RENDER-CHECK images=(\d+) decoded=(\d+) rows=(\d+)", done.stdout)
    assert match, done.stdout[-2000:]
    images, decoded, rows = map(int, match.groups())
    assert images == 1 + len(report.table.rows)
    assert decoded == images
    assert rows == len(report.table.rows)
