"""The web page of `wq exporter --ui` in a real browser (Debian's chromium, driven by Selenium
through Debian's chromedriver) against a run that real workers process: the numbers on the page
equal `wq status --json`, the progress moves while the page stays open, items and errors that
hold markup show as text, dead items come with their errors, the search finds an item by text
and by position, and the downloads equal `wq report`.

With WQ_TEST_SCREENSHOTS=DIR it writes DIR/ui-running.png and DIR/ui-finished.png (the
README's: `make ui-screenshots`). The exporter runs as the README's Web page section says,
on the test's own Redis and a free port."""

import json
import os
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docs.readme import ROOT, readme_blocks
from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.test_exporter import private_redis, wait_for_start
from wq.store.local_redis import RedisServer

__all__ = ["private_redis"]  # a fixture, used below by name

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
RUN = "thumbnails"
SCRIPT_ITEM = "<script>alert(1)</script>"
BOLD_ITEM = "<b>x</b>"
POISON = "poison <img src=x onerror=alert(2)>"  # fails every attempt: dead, markup in its error
ITEMS = [f"photo-{n:03d}.jpg" for n in range(90)]
ITEMS[20:20] = [SCRIPT_ITEM, BOLD_ITEM]
ITEMS.append(POISON)
WORKERS = 2
ITEM_S = "0.15"  # each item's sleep: the run takes seconds, long enough to watch it move
DEADLINE_S = 90.0
# What the page shows of `wq status --json`, by field (app.js FIELDS).
SHOWN = ("total", "pending", "in_flight", "done", "dead", "retried", "digest")
FROZEN = ("elapsed_s", "rate", "item_p50_s", "item_p99_s", "eta_s")  # once drained


THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()
README_REDIS, README_PORT = "redis://127.0.0.1:6379/0", "9899"


def readme_exporter(redis_url: str) -> list[str]:
    """The README's command for the page, on this Redis and a free port."""
    [block] = [b for b in readme_blocks() if b.tested_by == THIS]
    [line] = block.body.splitlines()
    args = shlex.split(line.removeprefix("$ "))
    assert args[:2] == ["wq", "exporter"]
    assert (README_REDIS in args, README_PORT in args) == (True, True)
    swap = {README_REDIS: redis_url, README_PORT: "0"}
    return wq_argv(*(swap.get(a, a) for a in args[1:]))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.is_file():
            pytest.fail(f"{program} is missing: `make prereqs` installs it", pytrace=False)
    options = webdriver.ChromeOptions()
    # Both programs named: Selenium Manager never looks for (or downloads) a browser.
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--window-size=1200,1100"):
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(argv, env=wq_env(env), stdout=out, stderr=subprocess.STDOUT)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# The page redraws every few seconds: it is read in one script call, never element by element
# (an element read after a redraw is stale).
FIELDS_JS = """
const shown = {state: document.getElementById("run-state").textContent};
for (const dd of document.querySelectorAll("#fields dd[data-field]")) {
  shown[dd.dataset.field] = JSON.parse(dd.dataset.value);
}
return shown;
"""
ROWS_JS = """
return [...document.querySelectorAll(`#${arguments[0]} tbody tr`)].map(
  (row) => [...row.cells].map((cell) => cell.textContent));
"""


def page_fields(driver: Any) -> dict[str, Any]:
    """The run's numbers as the page holds them (data-value: the JSON value shown), and its
    state."""
    return dict(driver.execute_script(FIELDS_JS))


def finished_on_page(driver: Any) -> int:
    return int(driver.execute_script('return document.getElementById("bar").value'))


def status(env: dict[str, str]) -> dict[str, Any]:
    result = wq("status", "--json", "--run", RUN, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def page_equals_status(driver: Any, env: dict[str, str], keys: tuple[str, ...]) -> bool:
    shown = page_fields(driver)
    expected = status(env)
    return all(shown.get(k) == expected[k] for k in (*keys, "state"))


def screenshot(driver: Any, name: str, scratch: Path) -> None:
    """The page as a PNG: into WQ_TEST_SCREENSHOTS (`make ui-screenshots`: the README's), else
    into `scratch`, so that every run takes the path that `make ui-screenshots` takes."""
    path = Path(os.environ.get("WQ_TEST_SCREENSHOTS") or scratch) / name
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(path)), path
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), path


def rows(driver: Any, table: str) -> list[list[str]]:
    """Each row's cells as the browser renders their text content."""
    return [list(r) for r in driver.execute_script(ROWS_JS, table)]


def search(driver: Any, query: str) -> list[list[str]]:
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(query)
    driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
    # The page says "searching…" as the search starts: the count waited for is this search's.
    wait_until(
        f"the search for {query!r}",
        lambda: driver.find_element(By.ID, "search-summary").text.endswith("match(es)"),
        DEADLINE_S,
    )
    return rows(driver, "search-results")


@pytest.mark.slow
def test_the_page_follows_a_run_as_wq_status_does(
    private_redis: RedisServer, browser: Any, tmp_path: Path
) -> None:
    driver = browser
    env = {"WQ_REDIS_URL": private_redis.url, "WQ_TEST_SLEEP": ITEM_S}
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    seeded = wq("seed", "--run", RUN, "--items-file", str(items), env=env)
    assert seeded.returncode == 0, seeded.stderr
    exporter_log = tmp_path / "exporter.log"
    exporter = start(readme_exporter(private_redis.url), env, exporter_log)
    procs = [exporter]
    try:
        base = wait_for_start(exporter_log).removesuffix("metrics")
        driver.get(f"{base}#run={RUN}")
        wait_until("the page to show the seeded run", lambda: page_fields(driver).get("total"), 60)
        assert page_fields(driver)["pending"] == len(ITEMS)

        work = ["work", "--run", RUN, "--handler", "python", "--max-attempts", "2"]
        handler = ["--python", "tests.unit.sample_handlers:slow_with_poison"]
        workers = [
            start(wq_argv(*work, *handler), env, tmp_path / f"worker-{n}.log")
            for n in range(WORKERS)
        ]
        procs += workers
        wait_until("the page to show progress", lambda: finished_on_page(driver) > 0, DEADLINE_S)

        # Workers paused, the counts hold still: the page must show them as `wq status` does.
        for w in workers:
            w.send_signal(signal.SIGSTOP)
        wait_until(
            lambda: f"the page to equal wq status: {page_fields(driver)} vs {status(env)}",
            lambda: page_equals_status(driver, env, SHOWN),
            DEADLINE_S,
        )
        paused_at = finished_on_page(driver)
        assert 0 < paused_at < len(ITEMS)
        screenshot(driver, "ui-running.png", tmp_path)
        for w in workers:
            w.send_signal(signal.SIGCONT)
        # The page moves on by itself, no reload.
        wait_until("the progress to move", lambda: finished_on_page(driver) > paused_at, 60)
        for w in workers:
            assert w.wait(DEADLINE_S) == 0

        # Drained: every figure, time and rate too, is frozen and equal to `wq status`.
        wait_until(
            lambda: f"the page to equal wq status: {page_fields(driver)} vs {status(env)}",
            lambda: page_equals_status(driver, env, SHOWN + FROZEN),
            DEADLINE_S,
        )
        assert status(env)["state"] == "drained with dead items"
        assert finished_on_page(driver) == len(ITEMS)
        assert page_fields(driver)["rate"] > 0

        # The dead item with its error, both as text.
        wait_until("the dead item", lambda: rows(driver, "dead"), DEADLINE_S)
        [dead] = rows(driver, "dead")
        assert dead == [str(ITEMS.index(POISON)), "2", f"cannot digest <i>{POISON}</i>", POISON]
        screenshot(driver, "ui-finished.png", tmp_path)

        # Markup in items shows as text: no element made of it, no script run.
        found = search(driver, "<script>")
        assert [r[5] for r in found] == [SCRIPT_ITEM]
        assert [r[5] for r in search(driver, "<B>")] == [BOLD_ITEM]  # text, any case
        for table in ("search-results", "dead"):
            markup = driver.find_elements(By.CSS_SELECTOR, f"#{table} b, #{table} i, #{table} img")
            assert markup == []
        assert len(driver.find_elements(By.TAG_NAME, "script")) == 2  # uPlot and app.js
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018
        by_position = {int(r[0]): r[5] for r in search(driver, "57")}
        assert by_position[57] == ITEMS[57]

        # The downloads are `wq report`, byte for byte.
        for fmt in ("jsonl", "csv"):
            driver.find_element(By.ID, f"dl-{fmt}").click()
            path = driver.downloads / f"{RUN}.{fmt}"
            wait_until(f"the {fmt} download", path.is_file, DEADLINE_S)
            report = wq("report", "--run", RUN, "--format", fmt, env=env)
            assert path.read_bytes() == report.stdout.encode()

        # Nothing refused by the Content-Security-Policy, no script error.
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        stop(procs)
