"""The HTML report in a real browser (Debian's headless Chromium, from a file:// URL, no network):
the DOM after the page's script ran shows the counts per status, a filter in the URL hides every
other row, and a screenshot is kept as a test artefact."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from casemate.report import changes, html_page

from .reports import recorded, with_waiver

ROOT = Path(__file__).resolve().parent.parent.parent
ARTEFACTS = Path(os.environ.get("CASEMATE_TEST_ARTEFACTS") or ROOT / ".casemate" / "test-artefacts")


def chromium(tmp_path: Path, *args: str) -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: scripts/host-setup.sh installs it")
    done = subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",  # tests run as root
            "--disable-gpu",
            "--no-proxy-server",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hung browser, not a speed check
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict[str, str | None]] = []
        self.shown = ""
        self.totals: dict[str, str] = {}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("class") == "result":
            self.rows.append(a)
        elif tag == "b" and a.get("id") == "shown":
            self._in = "shown"
        elif tag == "div" and (a.get("class") or "").startswith("total "):
            self._in = f"total:{a['data-status']}"

    def handle_data(self, data: str) -> None:
        if self._in == "shown":
            self.shown, self._in = data.strip(), None
        elif self._in and self._in.startswith("total:") and data.strip():
            self.totals[self._in.removeprefix("total:")], self._in = data.strip(), None


def dom(tmp_path: Path, url: str) -> Dom:
    parsed = Dom()
    parsed.feed(chromium(tmp_path, "--dump-dom", url))
    return parsed


def visible(d: Dom) -> list[dict[str, str | None]]:
    return [r for r in d.rows if "hidden" not in r]


def test_report_in_headless_chromium_filters_rows_and_is_screenshotted(tmp_path: Path) -> None:
    fresh, doc = recorded("fresh"), with_waiver(recorded("hardened"))
    page = tmp_path / "report.html"
    page.write_text(html_page.render(doc, changes.compare(fresh, doc)))
    url = page.as_uri()
    statuses = Counter(r["status"] for r in doc["results"])

    everything = dom(tmp_path, url)
    assert len(visible(everything)) == len(doc["results"]) == int(everything.shown)
    assert everything.totals == {s: str(n) for s, n in doc["summary"].items()}

    failing = dom(tmp_path, f"{url}?status=fail")
    assert len(failing.rows) == len(doc["results"])
    assert {r["data-status"] for r in visible(failing)} == {"fail"}
    assert len(visible(failing)) == statuses["fail"] == int(failing.shown)
    assert sum(1 for r in failing.rows if "hidden" in r) == len(doc["results"]) - statuses["fail"]

    host = doc["hosts"][1]["name"]
    narrow = dom(tmp_path, f"{url}?host={host}&benchmark=cis-docker&section=cis-docker%203&level=1")
    expected = [
        r
        for r in doc["results"]
        if r["host"] == host
        and r["benchmark"] == "cis-docker"
        and r["ref"].split(".")[0] == "3"
        and r["level"] == 1
    ]
    assert expected and len(visible(narrow)) == len(expected)
    waived = dom(tmp_path, f"{url}?status=waived")
    assert [r["data-host"] for r in visible(waived)] == [doc["hosts"][1]["name"]]

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "report-html.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, "--hide-scrollbars", "--window-size=1400,1600", f"--screenshot={shot}", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"\nscreenshot of the HTML report: {shot}")
