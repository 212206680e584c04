"""The search page (`/`) in headless Chromium against a real `dlk serve` over a fully materialized lake:
the key goes in, each source is searched, and what a person would see is checked in the browser itself
(thumbnails decoded, clips with metadata, snippets, lineage JSON, the service's error message)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

# Debian's chromium and chromium-driver (the CI machine installs both); never Selenium Manager, which downloads.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 60  # the first search of a source loads nothing (encoders are warm), but a busy 2-core machine is slow


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1600", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, condition, message: str, timeout: float = WAIT_S):
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message)


def open_page(driver, base: str, key: str) -> None:
    """A fresh page with `key` entered, once it has asked the service which sources it has."""
    driver.get(base + "/")
    driver.execute_script("localStorage.clear();")
    driver.get(base + "/")
    field = driver.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    driver.find_element(By.ID, "save-key").click()
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-sources") in ("loaded", "failed"),
         "the page never loaded the source list")


def search(driver, source: str, query: str, mode: str | None = None) -> None:
    box = driver.find_element(By.ID, f"q-{source}")
    box.clear()
    box.send_keys(query)
    if mode:
        Select(driver.find_element(By.ID, f"mode-{source}")).select_by_value(mode)
    driver.find_element(By.ID, f"go-{source}").click()


def hits(driver, source: str) -> list:
    """The source's hits once they are shown; an error message the page shows instead fails at once."""
    def shown(d):
        error = d.find_element(By.ID, f"error-{source}").text
        if error:
            raise AssertionError(f"{source}: the page shows an error: {error}")
        return d.find_elements(By.CSS_SELECTOR, f"#results-{source} .hit") or False
    return wait(driver, shown, f"no {source} hits shown")


def test_images_show_as_loaded_thumbnails_and_the_key_is_remembered(browser, demo_service):
    open_page(browser, demo_service.base, demo_service.keys["local"])
    search(browser, "coco", "a cat")
    found = hits(browser, "coco")
    items = [hit.find_element(By.CSS_SELECTOR, ".item").text for hit in found]
    assert "900002" in items[:3], items  # the cat photo (dlk_assets/data/probes/coco.yaml)
    assert [hit.find_element(By.CSS_SELECTOR, ".rank").text for hit in found] == [f"#{n}" for n in range(1, len(found) + 1)]
    assert all(hit.find_element(By.CSS_SELECTOR, ".score").text.startswith("score ") for hit in found)

    # <img> cannot send the key: each thumbnail is fetched with it, and is shown from a blob URL once decoded.
    loaded = wait(browser, lambda d: d.execute_script("""
        const imgs = [...document.querySelectorAll('#results-coco .thumb')];
        return imgs.length && imgs.every(i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0)
            ? imgs.length : 0;"""), "the thumbnails never loaded")
    assert loaded == len(found)
    assert not browser.find_elements(By.CSS_SELECTOR, "#results-coco .error:not(:empty)")

    browser.get(demo_service.base + "/")  # the key stays in localStorage
    assert browser.find_element(By.ID, "key").get_attribute("value") == demo_service.keys["local"]


def test_clips_play_from_blob_urls(browser, demo_service):
    open_page(browser, demo_service.base, demo_service.keys["local"])
    search(browser, "videos", "a cat")
    found = hits(browser, "videos")
    items = [hit.find_element(By.CSS_SELECTOR, ".item").text for hit in found]
    assert any(item.startswith("scene_001__camera_0001:") for item in items[:3]), items  # probes/videos.yaml

    def clips_ready(d):
        state = d.execute_script("""
            return [...document.querySelectorAll('#results-videos video.clip')].map(v => ({
                src: v.src, ready: v.readyState, width: v.videoWidth, controls: v.controls,
                error: v.error && v.error.message}));""")
        failed = [clip for clip in state if clip["error"]]
        if failed:
            raise AssertionError(f"a clip did not decode: {failed}")
        return state if state and all(clip["src"].startswith("blob:") and (clip["ready"] >= 1 or clip["width"] > 0)
                                      for clip in state) else False
    clips = wait(browser, clips_ready, "the clips' metadata never loaded")
    assert len(clips) == len(found)
    assert all(clip["controls"] and clip["width"] > 0 for clip in clips)


def test_memory_modes_snippets_and_lineage(browser, demo_service):
    open_page(browser, demo_service.base, demo_service.keys["local"])
    modes = [option.get_attribute("value") for option in Select(browser.find_element(By.ID, "mode-memory")).options]
    assert sorted(modes) == ["bm25", "hybrid", "vector"]
    search(browser, "memory", "refresh_session_token", mode="bm25")
    found = hits(browser, "memory")
    assert "mode bm25" in browser.find_element(By.ID, "meta-memory").text
    assert all(hit.find_element(By.CSS_SELECTOR, ".snippet").text for hit in found)
    assert "refresh_session_token" in found[0].find_element(By.CSS_SELECTOR, ".title").text

    first = found[0]
    item = first.find_element(By.CSS_SELECTOR, ".item").text
    first.find_element(By.CSS_SELECTOR, ".lineage").click()
    shown = wait(browser, lambda d: first.find_element(By.CSS_SELECTOR, ".lineage-json").text, "no lineage shown")
    lineage = json.loads(shown)
    assert lineage["source"] == "memory" and lineage["item"] == item
    assert lineage["rows"] and all(row["row_key"].startswith("swe:") and row["embeddings"] for row in lineage["rows"])


def test_documents_are_searched_when_the_service_has_them(browser, demo_service):
    key = demo_service.keys["local"]
    listed = requests.get(f"{demo_service.base}/api/v1/sources", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    open_page(browser, demo_service.base, key)
    if "documents" not in {source["name"] for source in listed.json()["sources"]}:
        assert "not available" in browser.find_element(By.ID, "note-documents").text
        assert not browser.find_element(By.ID, "q-documents").is_enabled()
        return
    search(browser, "documents", "cats", mode="hybrid")
    found = hits(browser, "documents")
    assert all(hit.find_element(By.CSS_SELECTOR, ".snippet").text for hit in found)


def test_a_wrong_key_shows_the_services_error_and_no_results(browser, demo_service):
    open_page(browser, demo_service.base, "not-a-key-of-anyone-0000")
    assert "UNAUTHORIZED" in browser.find_element(By.ID, "sources-error").text
    search(browser, "coco", "a cat")
    error = wait(browser, lambda d: d.find_element(By.ID, "error-coco").text, "no error shown")
    assert error.startswith("UNAUTHORIZED") and "unknown API key" in error
    assert not browser.find_elements(By.CSS_SELECTOR, "#results-coco .hit")


def test_the_page_inserts_no_markup_from_data(demo_service):
    page = requests.get(demo_service.base + "/", timeout=30)
    assert page.ok and page.headers["content-type"].startswith("text/html")
    assert "innerHTML" not in page.text and "insertAdjacentHTML" not in page.text
    # Self-contained: every src/href in the markup is inline data or an anchor, never another server.
    assert not re.findall(r"""(?:src|href)=["'](?!data:|#)""", page.text)
