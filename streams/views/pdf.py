"""Review pages as PDF: headless Chromium prints each written HTML page (``--print-to-pdf``).

The pages are offline by construction (no scripts, a Content-Security-Policy forbidding every
load), so printing them needs no server; Chromium runs with a fresh profile, no network
services and no sandbox (it runs as root in CI containers). One Chromium starts per page, two at a
time: the demo's 113 pages (100 accounts, 12 owners, the index) took 3 min 43 s on the shared
2-core machine under load, about 2 s a page; three pages take about 5 s.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from streams.views.read import ViewError

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ViewError(
        "--pdf needs headless Chromium and none was found on PATH; install it "
        "(Debian: apt-get install chromium) or leave out --pdf for the HTML pages"
    )


def chromium_command(page: Path, *extra: str) -> list[str]:
    """Chromium with the flags every use here shares and a fresh profile (``--user-data-dir``
    is appended by ``run_chromium``); ``extra`` says what to do with ``page``."""
    return [chromium(), *CHROMIUM_FLAGS, *extra, page.resolve().as_uri()]


def run_chromium(page: Path, *extra: str, timeout_s: float = 120.0) -> None:
    with tempfile.TemporaryDirectory(prefix="rapport-chromium-") as profile:
        command = chromium_command(page, *extra)
        command.insert(-1, f"--user-data-dir={profile}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise ViewError(f"Chromium could not render {page} (exit {done.returncode}): {done.stderr[-300:]}")


def print_pdf(page: Path) -> Path:
    """``page.html`` → ``page.pdf`` beside it (A4 landscape, from the page's own @page rule)."""
    pdf = page.with_suffix(".pdf")
    run_chromium(page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise ViewError(f"Chromium wrote no PDF for {page}")
    return pdf


def print_pdfs(pages: list[Path], parallel: int = 2) -> list[Path]:
    chromium()  # fail before starting any when there is no browser
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(print_pdf, pages))
