"""The web page of `tiller serve` in a real browser: Debian's headless chromium
driven through chromedriver by Selenium. A person's steps: type a prompt, choose
a control vector and move its scale slider and its to-block slider with the
keyboard, add an ActAdd pair, press Generate; both columns must fill and finish
with different texts and their tokens/s shown. Screenshots go to
build-python/test-output/page.png (and page-phone.png, the same page at a
phone's width).

chromium and chromium-driver are Debian packages (scripts/setup.sh installs them;
CI has them): without them the test fails rather than skips."""

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from conftest import REPO, model_path
from server_support import running_server, write_push_vector

MODEL = "smollm2-135m-instruct"
CHROMEDRIVER = "/usr/bin/chromedriver"
OUTPUT = REPO / "build-python" / "test-output"


def browser_or_fail():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", CHROMEDRIVER))
               if not path or not Path(path).is_file()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not installed: run scripts/setup.sh "
                    "(Debian's chromium and chromium-driver)")
    try:
        from selenium import webdriver  # noqa: F401  (the test extra of pyproject.toml)
    except ImportError:
        pytest.fail("selenium is not installed: pip install the package's [test] extra")
    return chromium


_VECTOR_DIRS = {}


def server_vectors(url):
    return _VECTOR_DIRS[url]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = model_path(MODEL)
    vectors = tmp_path_factory.mktemp("vectors")
    write_push_vector(path, vectors / "push.gguf")
    # --parallel 2: the steered and the unsteered choice stream at the same time.
    with running_server(path, "-t", "2", "-c", "512", "--parallel", "2", "--vector-dir", str(vectors),
                        ready_timeout=30, stop_timeout=20) as served:
        _VECTOR_DIRS[served.url] = vectors
        yield served.url


@pytest.fixture(scope="module")
def browser():
    chromium = browser_or_fail()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def wait_for(driver, condition, seconds, what):
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: condition(d))
    except Exception as error:  # selenium's TimeoutException: say what never happened
        columns = {c.get_attribute("id"): (c.get_attribute("data-state"), c.text[:200])
                   for c in driver.find_elements("css selector", ".column")}
        error_box = driver.find_element("id", "error").text
        raise AssertionError(f"{what} within {seconds} s; columns {columns}; error box {error_box!r}") from error


def test_page_streams_steered_and_unsteered_side_by_side(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    started = time.time()
    browser.get(server + "/")
    wait_for(browser, lambda d: d.find_element(By.ID, "health").get_attribute("data-state") == "ok", 15,
             "the page never saw the server ready")
    wait_for(browser, lambda d: d.find_element(By.ID, "model").text == MODEL, 10, "the model name never showed")
    wait_for(browser, lambda d: d.find_element(By.ID, "vector-status").text
             or d.find_elements(By.CSS_SELECTOR, "[data-vector]"), 10, "the vector panel never loaded")

    prompt = browser.find_element(By.ID, "prompt")
    prompt.send_keys("Tell me about your day.")
    for field, value in (("seed", "42"), ("max-tokens", "24")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)

    # The registry lists the vector; a server without it (GET /v1/vectors 404)
    # takes the name typed in.
    listed = browser.find_elements(By.CSS_SELECTOR, '[data-vector="push"]')
    if listed:
        print("page: choosing 'push' from the vector registry's list")
        listed[0].click()
        # Upload through the file input: the registry takes it and the page lists it, chosen.
        upload = tmp_path / "uploaded.gguf"
        shutil.copy(server_vectors(server) / "push.gguf", upload)
        browser.find_element(By.ID, "vector-file").send_keys(str(upload))
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-vector="uploaded"]:checked'), 10,
                 "the uploaded vector never showed chosen")
        browser.find_element(By.CSS_SELECTOR, '[data-vector="uploaded"]').click()  # not part of this request
    else:
        assert "No vector registry" in browser.find_element(By.ID, "vector-status").text
        print("page: no vector registry on this server; naming 'push' from --vector-dir")
        browser.find_element(By.ID, "vector-name").send_keys("push")
        browser.find_element(By.ID, "vector-add").click()
    scale = browser.find_element(By.CSS_SELECTOR, 'input[data-control="scale-push"]')
    assert scale.is_displayed()
    for _ in range(10):  # 1.0 -> 1.5 in steps of 0.05, as a keyboard user moves it
        scale.send_keys(Keys.ARROW_RIGHT)
    assert float(browser.find_element(By.CSS_SELECTOR, 'input[data-control="scale-push-number"]')
                 .get_attribute("value")) == pytest.approx(1.5)
    # The vector's own block range starts at every block (1 to the last, 29 of
    # the model's 30); to-block down 9 steps, so it steers blocks 1 to 20 only.
    last = browser.find_element(By.CSS_SELECTOR, 'input[data-control="to-block-push"]')
    assert last.is_displayed()
    last_block = int(last.get_attribute("max"))
    assert last_block >= 10 and last.get_attribute("value") == str(last_block)
    for _ in range(9):
        last.send_keys(Keys.ARROW_LEFT)
    assert browser.find_element(By.CSS_SELECTOR, 'input[data-control="to-block-push-number"]') \
        .get_attribute("value") == str(last_block - 9)

    browser.find_element(By.ID, "pair-add").click()
    pair = browser.find_element(By.CSS_SELECTOR, ".pair")
    pair.find_element(By.CSS_SELECTOR, '[data-control="positive"]').send_keys("Love")
    pair.find_element(By.CSS_SELECTOR, '[data-control="negative"]').send_keys("Hate")
    coef = pair.find_element(By.CSS_SELECTOR, 'input[data-control="pair-coef"]')
    for _ in range(4):  # 4 -> 6
        coef.send_keys(Keys.ARROW_RIGHT)

    # What the page will send says what the controls did.
    sent = json.loads(browser.find_element(By.ID, "request-json").get_attribute("textContent"))
    assert sent["compare"] is True and sent["seed"] == 42 and sent["max_tokens"] == 24
    assert sent["steering"]["control_vectors"] == [{"name": "push", "scale": 1.5,
                                                    "layer_range": [1, last_block - 9]}]
    assert "layer_range" not in sent["steering"]  # each vector carries its own
    assert sent["steering"]["actadd"][0]["positive"] == "Love"
    assert sent["steering"]["actadd"][0]["coef"] == 6

    browser.find_element(By.ID, "generate").click()
    steered = browser.find_element(By.ID, "col-steered")
    plain = browser.find_element(By.ID, "col-plain")
    wait_for(browser, lambda d: steered.get_attribute("data-state") in ("streaming", "done")
             and plain.get_attribute("data-state") in ("streaming", "done"), 20, "the two columns never both streamed")
    wait_for(browser, lambda d: steered.get_attribute("data-state") == "done"
             and plain.get_attribute("data-state") == "done", 30, "the two columns never both finished")

    assert not browser.find_element(By.ID, "error").is_displayed(), browser.find_element(By.ID, "error").text
    steered_text = steered.find_element(By.CSS_SELECTOR, ".text").text
    plain_text = plain.find_element(By.CSS_SELECTOR, ".text").text
    assert steered_text and plain_text
    assert steered_text != plain_text
    for column in (steered, plain):
        assert re.search(r"\d+\.\d tok/s", column.find_element(By.CSS_SELECTOR, ".stats").text), column.text
    assert "seed 42" in browser.find_element(By.ID, "seed-used").text
    assert "completion tokens" in browser.find_element(By.ID, "usage").text

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "page.png"
    browser.save_screenshot(str(shot))
    print(f"page: screenshot {shot} ({time.time() - started:.1f} s)")
    # The same page at a phone's width: one column, nothing cut off sideways.
    browser.set_window_size(390, 1400)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    phone = OUTPUT / "page-phone.png"
    browser.save_screenshot(str(phone))
    print(f"page: screenshot {phone}")
    browser.set_window_size(1400, 1000)


def test_page_stop_ends_both_streams(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    wait_for(browser, lambda d: d.find_element(By.ID, "model").text == MODEL, 15, "the model name never showed")
    browser.find_element(By.ID, "prompt").send_keys("Write a long story about a lighthouse.")
    box = browser.find_element(By.ID, "max-tokens")
    box.clear()
    box.send_keys("400")
    browser.find_element(By.ID, "pair-add").click()
    browser.find_element(By.CSS_SELECTOR, '[data-control="positive"]').send_keys("Happy")
    browser.find_element(By.CSS_SELECTOR, '[data-control="negative"]').send_keys("Sad")
    browser.find_element(By.ID, "generate").click()
    plain = browser.find_element(By.ID, "col-plain")
    wait_for(browser, lambda d: plain.get_attribute("data-state") == "streaming", 20, "the stream never started")
    browser.find_element(By.ID, "stop").click()
    wait_for(browser, lambda d: plain.get_attribute("data-state") == "stopped"
             and d.find_element(By.ID, "generate").is_enabled(), 5, "Stop did not end the streams")
