"""The dashboard in a real headless Chromium, against a real server: what a person sees.

Needs Debian's `chromium` and `chromium-driver`; without them the tests are skipped, except
under CI, where they fail. The screenshot is compared with `screenshots/dashboard.png`, taken
from the same data: `TASKFARM_UPDATE_SCREENSHOTS=1` writes it anew (look at it before
committing it).
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from taskfarm import __version__
from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.domain import FULL_PROGRESS, TaskChange, TaskState, WorkerRegistration
from tests.conftest import unavailable
from tests.fakes import FakeHasher
from tests.integration.live_server import LiveServer, running_server

pytestmark = pytest.mark.slow

REFERENCE = Path(__file__).with_name("screenshots") / "dashboard.png"
WIDTH, HEIGHT = 1280, 800
#: The colours of the progress bar (#1f883d) and of its track (#e3e8ee).
BAR, TRACK = (0x1F, 0x88, 0x3D), (0xE3, 0xE8, 0xEE)
#: How far, on average over the page shrunk eightfold in grey (0 to 255), the screenshot may
#: differ from the reference: other run uuids and another time of day make about 0.1, the
#: numbers of the table aligned left instead of right 1.0, a page without its style far more.
MOST_DIFFERENCE = 0.5

DONE = TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE)


@pytest.fixture
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium of its own: no credentials remembered from another test."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        unavailable(
            "Chromium", FileNotFoundError("apt-get install chromium chromium-driver to get it")
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    try:
        browser = webdriver.Chrome(options=options, service=Service(driver))
    except WebDriverException as error:
        unavailable("Chromium", error)
    try:
        # The page's own size, whatever room the window leaves it.
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """A server with three runs, and the uuid of the one half under way: 200 tasks of one
    attempt each, 80 done, 18 computing for worker-b on node18, 1 failed (worker-b's) and 1
    handed back. The others: a run of a billion untouched tasks, and a finished one of 50."""
    url = f"sqlite:///{tmp_path / 'taskfarm.db'}"
    services = bootstrap(Settings(database_url=url), hasher=FakeHasher())
    try:
        farm = services.taskfarm
        farm.register_worker(WorkerRegistration("worker-a", "node17", 4242))
        farm.register_worker(WorkerRegistration("worker-b", "node18", 777))
        run = farm.create_run(200, lease_seconds=600, max_attempts=1)
        farm.create_run(10**9)
        finished = farm.create_run(50)
        farm.claim_tasks(run.uuid, "worker-a", 60)
        farm.claim_tasks(run.uuid, "worker-b", 40)
        for index in range(80):
            farm.update_task(run.uuid, index, DONE)
        farm.update_task(run.uuid, 80, TaskChange(state=TaskState.FAILED))
        farm.update_task(run.uuid, 81, TaskChange(state=TaskState.WAITING))
        for index in range(50):
            farm.update_task(finished.uuid, index, DONE)
    finally:
        services.close()
    with running_server(url, tmp_path / "server.log", workers=1) as server:
        yield server, run.uuid


def sign_in(browser: WebDriver, server: LiveServer) -> None:
    """Opens the dashboard as a person does: its 401 makes the browser use the credentials
    (here in the URL, where a person would type them into the browser's prompt)."""
    parts = urllib.parse.urlsplit(server.url)
    credentials = f"{urllib.parse.quote(server.user)}:{urllib.parse.quote(server.password)}"
    browser.get(parts._replace(netloc=f"{credentials}@{parts.netloc}", path="/dashboard").geturl())


def visible_text(browser: WebDriver) -> str:
    return " ".join(browser.find_element(By.TAG_NAME, "body").text.split())


def test_before_signing_in_the_front_page_names_the_server_and_offers_to_sign_in(
    chromium: WebDriver, farm: tuple[LiveServer, str]
) -> None:
    server, run_uuid = farm
    chromium.get(server.url)
    seen = visible_text(chromium)
    assert f"taskfarm {__version__}" in seen
    assert run_uuid not in seen
    link = chromium.find_element(By.LINK_TEXT, "Sign in to see the runs")
    assert link.get_attribute("href") == server.url + "dashboard"


def test_a_person_signs_in_and_follows_a_run_from_the_overview_to_its_page(
    chromium: WebDriver, farm: tuple[LiveServer, str]
) -> None:
    server, run_uuid = farm
    sign_in(chromium, server)
    assert chromium.title == "Runs · taskfarm"
    assert f"signed in as {server.user}" in visible_text(chromium)

    # The browser keeps the credentials: the front page is now the dashboard.
    chromium.get(server.url)
    row = " ".join(chromium.find_element(By.ID, f"run-{run_uuid}").text.split())
    assert row == f"{run_uuid} 200 tasks 40.0 % 101 18 80 1 measuring… measuring…"
    seen = visible_text(chromium)
    assert "1,000,000,000 tasks 0.0 % 1,000,000,000 0 0 0" in seen
    assert "50 tasks 100.0 % 0 0 50 0 measuring… finished" in seen
    assert not chromium.find_elements(By.TAG_NAME, "script")
    refresh = chromium.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert refresh.get_attribute("content") == "10"

    chromium.find_element(By.LINK_TEXT, run_uuid).click()

    assert chromium.current_url == f"{server.url}dashboard/runs/{run_uuid}"
    seen = visible_text(chromium)
    assert f"Run {run_uuid}" in seen
    assert "Waiting Computing Done Failed 101 18 80 1" in seen
    assert "worker-b node18 777 18" in seen
    assert "1 failed task, by index Task Attempts Exit Host Ended Error 80 1 failed node18" in seen
    assert "Retry 1 failed task" in seen
    # Handed back, it gave its attempt back.
    assert "1 requeued task, by index Task Progress Attempts 81 0.0 % 0" in seen


def test_the_dashboard_looks_as_it_should(
    chromium: WebDriver, farm: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, run_uuid = farm
    sign_in(chromium, server)
    shot = tmp_path / "dashboard.png"
    assert chromium.save_screenshot(str(shot))
    page = Image.open(shot).convert("RGB")
    bar = chromium.find_element(By.CSS_SELECTOR, f"#run-{run_uuid} .bar").rect

    assert page.size == (WIDTH, HEIGHT)
    assert _share_not_white(page) > 0.03, f"the page looks blank: {shot}"
    assert _bar_filled(page, bar) == pytest.approx(0.40, abs=0.02), f"see {shot}"

    if os.environ.get("TASKFARM_UPDATE_SCREENSHOTS"):
        REFERENCE.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, REFERENCE)
    assert REFERENCE.exists(), "no reference screenshot: run with TASKFARM_UPDATE_SCREENSHOTS=1"
    difference = _difference(page, Image.open(REFERENCE).convert("RGB"))
    assert difference <= MOST_DIFFERENCE, f"{shot} differs from {REFERENCE} by {difference:.1f}"


def _share_not_white(page: Image.Image) -> float:
    grey = page.convert("L")
    histogram = grey.histogram()
    return 1 - sum(histogram[250:]) / (grey.width * grey.height)


def _bar_filled(page: Image.Image, rect: dict[str, float]) -> float:
    """The share of the bar's width, along its middle line, in the bar's colour; everything
    else on that line must be the track's."""
    y = round(rect["y"] + rect["height"] / 2)
    left, right = round(rect["x"]) + 3, round(rect["x"] + rect["width"]) - 3  # past the corners
    colours = [page.getpixel((x, y)) for x in range(left, right)]
    filled = sum(_near(colour, BAR) for colour in colours)
    track = sum(_near(colour, TRACK) for colour in colours)
    assert filled + track >= len(colours) - 2, f"the bar is not green on grey: {set(colours)}"
    return (filled + 3) / (right - left + 6)


def _near(colour: object, expected: tuple[int, int, int]) -> bool:
    assert isinstance(colour, tuple)
    return all(abs(a - b) <= 8 for a, b in zip(colour, expected, strict=True))


def _difference(page: Image.Image, reference: Image.Image) -> float:
    """The mean difference, from 0 to 255, of the two pages shrunk eightfold in grey: text
    that changes (uuids, times) barely counts, a layout or colours that change do."""
    small = (WIDTH // 8, HEIGHT // 8)

    def shrunk(image: Image.Image) -> Image.Image:
        return image.convert("L").resize(small, Image.Resampling.BOX)

    return float(ImageStat.Stat(ImageChops.difference(shrunk(page), shrunk(reference))).mean[0])
