"""``fedtextgrad-graph report`` end to end: real runs, their report, the page in headless Chromium."""

from __future__ import annotations

import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Request, Route, sync_playwright

from ..conftest import wait_for
from .cli import SLOW_CLIENT_MODELS, cli, finished_clients, read_events, start_cli

VIEWPORT_WIDTH = 1280  # a laptop screen
PLOTS = ["validation.png", "client_train.png", "prompt_length.png", "updates.png", "surprisal.png"]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class PageVisit:
    """What loading a page in the browser showed: errors, network requests, images, text."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)
    image_widths: list[int] = field(default_factory=list)
    text: str = ""
    page_width: int = 0  # the document's scroll width: more than the viewport is a sideways scroll


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("headless Chromium is not installed: run scripts/provision-test-deps (apt-get install chromium)")
    return path


def visit(page_file: Path, screenshot: Path) -> PageVisit:
    """Open ``page_file`` in headless Chromium with the network cut off; save a full-page screenshot."""
    seen = PageVisit()

    def offline(route: Route, request: Request) -> None:
        if request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            seen.network_requests.append(request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": VIEWPORT_WIDTH, "height": 900})
            page.on("console", lambda message: message.type == "error" and seen.console_errors.append(message.text))
            page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
            page.route("**/*", offline)
            page.goto(page_file.as_uri(), wait_until="load")
            seen.image_widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
            seen.text = page.inner_text("body")
            seen.page_width = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


def _assert_clean_visit(seen: PageVisit, screenshot: Path) -> None:
    assert seen.console_errors == [] and seen.page_errors == []
    assert seen.network_requests == [], "the report page must not reach the network"
    assert seen.page_width <= VIEWPORT_WIDTH, f"the page is {seen.page_width} px wide: a wide table must scroll in its own box"
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 50_000


def test_report_of_a_finished_run_in_chromium(make_config, tmp_path: Path):
    config = make_config(clients=3, rounds=2, local_steps=2)
    done = cli("run", config, "--model", "simulated", "--run-id", "shown", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = cli("report", "shown", cwd=tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    folder = tmp_path / "runs" / "shown" / "report"
    assert f"report: {Path('runs/shown/report/report.html')}" in report.stdout
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(PLOTS)

    screenshot = folder / "screenshot.png"
    seen = visit(folder / "report.html", screenshot)
    _assert_clean_visit(seen, screenshot)
    assert len(seen.image_widths) == 5 and all(width > 0 for width in seen.image_widths)
    for text in ("FedTextGrad run shown", "completed", "SIMULATED MODEL", "Round 1", "Round 2", "client-3"):
        assert text in seen.text


def test_report_of_an_interrupted_run_in_redis(make_config, tmp_path: Path, redis_url: str):
    """A run killed in the middle of round 2, checkpointed in Redis; its report goes to --out."""
    config = make_config(clients=3, rounds=3, local_steps=2, models=SLOW_CLIENT_MODELS)
    run_dir = tmp_path / "runs" / "cut"
    process = start_cli("run", config, "--run-id", "cut", "--checkpoint", redis_url, cwd=tmp_path)
    try:
        wait_for(lambda: finished_clients(read_events(run_dir), 2) >= {"client-1", "client-2"}, 120, "clients 1-2 to finish round 2")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert "client-3" not in finished_clients(read_events(run_dir), 2), "client-3 finished before the kill"

    out = tmp_path / "cut-report"
    report = cli("report", "cut", "--checkpoint", redis_url, "--out", out, cwd=tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    screenshot = out / "screenshot.png"
    seen = visit(out / "report.html", screenshot)
    _assert_clean_visit(seen, screenshot)
    assert len(seen.image_widths) == 5 and all(width > 0 for width in seen.image_widths)
    for text in ("incomplete", "fedtextgrad-graph resume cut", "Round 1", "Round 2 (in progress)"):
        assert text in seen.text
    assert "resume cut --checkpoint" not in seen.text  # the run folder remembers where its checkpoint is
    # Clients 1 and 2 had uploaded (pending writes in the checkpoint); only client-3 had not.
    assert seen.text.count("not uploaded yet") == 1


def test_report_of_an_unknown_run(tmp_path: Path):
    missing = cli("report", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no checkpoint for run 'nope'" in missing.stderr
