"""The explorer page in real headless Chromium (Debian's chromium + chromedriver): sliders decode, interpolation scrubs.

No skip: if Chromium cannot start here, this fails, since `make test` installs it.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from genlab.cli import main
from genlab.latent import slerp
from genlab.runs.store import load_run
from genlab.serve.api import Explorer
from genlab.serve.server import make_server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "explorer" / "browser-test.png"

# a checksum of an <img>'s pixels, drawn through a canvas (blob URLs change on every decode, pixels need not)
# (null while the image is still loading: a fresh blob URL has no pixels until it is decoded)
PIXELS = """const img = document.getElementById(arguments[0]);
if (!img.complete || img.naturalWidth === 0) return null;
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
return Array.from(g.getImageData(0, 0, c.width, c.height).data).reduce((s, v, i) => (s + v * (i % 97 + 1)) % 1000003, 0);"""
PAD_PIXEL = """const g = document.getElementById('pad').getContext('2d');
return Array.from(g.getImageData(arguments[0], arguments[1], 1, 1).data);"""
PAD_ROW = """const g = document.getElementById('pad').getContext('2d');
return Array.from(g.getImageData(0, arguments[0], 300, 1).data);"""
BLACK, AXIS = [0, 0, 0, 255], [140, 140, 140, 255]  # the pad's marker and its axes
SET_RANGE = """const e = document.getElementById(arguments[0]); e.value = arguments[1];
e.dispatchEvent(new Event('input'));"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "vae2d"
    assert main(["train", "vae", "--data", "shapes", "--epochs", "1", "--max-steps", "20", "--latent-dim", "2",
                 "--out", str(out)]) == 0
    httpd = make_server(Explorer(load_run(out)), port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1100,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def pixels_after(driver, image_id: str, before: int | None, timeout: float = 20) -> int:
    """Wait until the image is loaded and its pixels differ from `before`; return the new checksum."""
    seen = []
    WebDriverWait(driver, timeout).until(
        lambda d: seen.append(d.execute_script(PIXELS, image_id)) or seen[-1] not in (None, before))
    return seen[-1]


def marker_at(browser, z0: float, z1: float) -> bool:
    """Whether the pad's square marker is drawn around (z0, z1): its left edge is black there (50 px per unit)."""
    return browser.execute_script(PAD_PIXEL, round((z0 + 3) * 50) - 5, round((3 - z1) * 50) - 3) == BLACK


def test_the_pad_has_axes_and_its_marker_follows_the_sliders(server, browser) -> None:
    browser.get(server)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    assert marker_at(browser, 0, 0) and not marker_at(browser, 2.5, -2)
    row = browser.execute_script(PAD_ROW, 150)  # the z0 axis, through z1 = 0
    assert sum(row[i:i + 4] == AXIS for i in range(0, len(row), 4)) > 200, "the pad draws its z0 axis"
    column = [browser.execute_script(PAD_PIXEL, 150, y) for y in range(0, 300, 10)]
    assert sum(pixel == AXIS for pixel in column) > 20, "and its z1 axis"
    browser.execute_script(SET_RANGE, "s0", "2.5")
    browser.execute_script(SET_RANGE, "s1", "-2")
    WebDriverWait(browser, 10).until(lambda d: marker_at(d, 2.5, -2))
    assert not marker_at(browser, 0, 0), "the marker moved with the sliders, not copied"


def test_the_attribute_panel_shows_the_originals_beside_the_moved_images(server, browser) -> None:
    browser.get(server)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('#attr-originals img'), i => i.complete ? i.naturalWidth : 0)")
    assert widths == [28] * 6, "six original test images, one per moved image"
    moved = browser.execute_script("return document.getElementById('attr').naturalWidth")
    assert moved == 6 * 28 + 7 * 2


@pytest.fixture(scope="module")
def autoencoder_server(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "ae2d"
    assert main(["train", "ae", "--data", "shapes", "--epochs", "1", "--max-steps", "10", "--latent-dim", "2",
                 "--hidden", "32", "--out", str(out)]) == 0
    httpd = make_server(Explorer(load_run(out)), port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_an_autoencoder_gets_no_prior_controls(autoencoder_server, browser) -> None:
    browser.get(autoencoder_server)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    assert not browser.find_element("id", "prior-controls").is_displayed()
    assert not any(browser.find_element("id", button).is_displayed() for button in ("random", "reset"))
    assert browser.find_element("id", "pad-box").is_displayed() and browser.find_element("id", "sliders").is_displayed()
    assert browser.find_element("id", "error").text == ""


def test_the_page_decodes_live_and_interpolates(server, browser) -> None:
    browser.get(server)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    assert "vae" in browser.find_element("id", "title").text
    before = pixels_after(browser, "decoded", None)
    browser.execute_script(SET_RANGE, "s0", "2.5")
    moved = pixels_after(browser, "decoded", before)
    assert moved != before, "moving a slider must change the decoded image"
    middle = pixels_after(browser, "interp", None)  # t = 0.5 when the page is ready
    browser.execute_script(SET_RANGE, "t", "0")
    start = pixels_after(browser, "interp", middle)
    browser.execute_script(SET_RANGE, "t", "1")
    assert pixels_after(browser, "interp", start) != start, "scrubbing t must move along the interpolation"
    assert not browser.find_element("id", "pad-box").get_attribute("hidden"), "a 2-d latent shows the pad"
    assert browser.execute_script("return document.getElementById('attr').naturalWidth") == 6 * 28 + 7 * 2, \
        "the attribute panel shows six test images of the first class"
    assert browser.find_element("id", "error").text == ""
    assert browser.find_element("id", "prior-controls").is_displayed(), "a VAE has a prior: reset and sample"
    a, b = [1.0, 0.0, 2.0], [0.0, 3.0, -1.0]  # unequal norms: where the two textbook slerps differ
    for t in (0.0, 0.3, 0.5, 1.0):
        page = browser.execute_script("return mix(arguments[0], arguments[1], arguments[2], true)", a, b, t)
        python = slerp(torch.tensor(a), torch.tensor(b), torch.tensor([t]))[0]
        assert torch.allclose(torch.tensor(page, dtype=torch.float32), python, atol=1e-5), "the page's slerp is genlab's"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))  # git-ignored: look at it after `make test`
    assert Image.open(SCREENSHOT).size[0] >= 1000


XSS = '<img src=x onerror="window.pwned=1">'  # a class sub-folder named as an HTML tag


@pytest.fixture(scope="module")
def xss_server(tmp_path_factory):
    """The explorer on a 2-d VAE trained on a folder whose class names are HTML."""
    root = tmp_path_factory.mktemp("xss")
    for name, colour in ((XSS, 40), ("<b>bold", 200)):
        (root / "pictures" / name).mkdir(parents=True)
        for i in range(12):
            Image.new("L", (16, 16), colour + i).save(root / "pictures" / name / f"{i}.png")
    out = root / "run"
    assert main(["train", "vae", "--data", f"folder:{root / 'pictures'}", "--image-size", "16", "--epochs", "1",
                 "--max-steps", "2", "--latent-dim", "2", "--out", str(out)]) == 0
    httpd = make_server(Explorer(load_run(out)), port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_class_names_show_as_text_and_run_nothing(xss_server, browser) -> None:
    browser.get(xss_server)
    legend = WebDriverWait(browser, 60).until(lambda d: d.find_element("id", "legend").text and
                                              d.find_element("id", "legend"))
    assert XSS in legend.text and "<b>bold" in legend.text, "the names are shown as they are, as text"
    assert browser.execute_script("return document.querySelectorAll('#legend img, #legend b').length") == 0
    options = browser.execute_script("return Array.from(document.querySelectorAll('#from-class option'), o => o.text)")
    assert XSS in options
    # even markup that did reach the page could not run: the Content-Security-Policy forbids inline handlers
    browser.execute_script("document.getElementById('error').innerHTML = arguments[0]", XSS)
    time.sleep(0.5)  # long enough for the broken image's error event
    assert browser.execute_script("return window.pwned === undefined"), "a script from a class name ran"


@pytest.fixture(scope="module")
def faces_server(tmp_path_factory):
    """The explorer on a tiny conv-vae trained a few steps on faces:300: 64x64 RGB with named attributes."""
    out = tmp_path_factory.mktemp("browser") / "faces"
    assert main(["train", "conv-vae", "--data", "faces:300", "--epochs", "1", "--max-steps", "3",
                 "--conv-channels", "8", "16", "--out", str(out)]) == 0
    httpd = make_server(Explorer(load_run(out)), port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


ATTRIBUTE_SLIDERS = """return Array.from(document.querySelectorAll('#attribute-sliders .slider'),
  row => [row.querySelector('label').textContent, row.querySelector('input').dataset.attribute,
          row.querySelector('input').disabled]);"""
SET_ATTRIBUTE = """const e = document.querySelector(`#attribute-sliders input[data-attribute="${arguments[0]}"]`);
e.value = arguments[1]; e.dispatchEvent(new Event('input')); return e.nextSibling.textContent;"""
SHOWN = """const img = document.getElementById(arguments[0]), box = img.getBoundingClientRect();
return [box.width, box.height, getComputedStyle(img).imageRendering, img.naturalWidth];"""


def test_a_faces_run_gets_attribute_sliders_by_name_that_move_the_image(faces_server, browser) -> None:
    from genlab.data.faces import ATTRIBUTE_NAMES

    browser.get(faces_server)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    assert browser.find_element("id", "attributes-box").is_displayed()
    assert browser.execute_script(ATTRIBUTE_SLIDERS) == [[name, name, False] for name in ATTRIBUTE_NAMES]
    before = pixels_after(browser, "decoded", None)
    assert browser.execute_script(SET_ATTRIBUTE, "Smiling", "3") == "3.0"
    moved = pixels_after(browser, "decoded", before)
    assert moved != before, "moving Smiling must change the decoded image"
    browser.find_element("id", "attribute-reset").click()
    assert pixels_after(browser, "decoded", moved) == before, "reset puts every attribute back to 0"
    assert browser.execute_script(ATTRIBUTE_SLIDERS.replace("disabled", "value")) == \
        [[name, name, "0"] for name in ATTRIBUTE_NAMES]
    # 64 px images are scaled up, pixel by pixel, never shown smaller than a 28 px run's (224 px, 112 px strips)
    width, height, rendering, natural = browser.execute_script(SHOWN, "decoded")
    assert natural == 64 and width >= 224 and height >= 224 and rendering == "pixelated"
    width, height, rendering, natural = browser.execute_script(SHOWN, "attr")
    assert natural == 6 * 64 + 7 * 2 and height >= 112 and rendering == "pixelated"
    assert browser.find_element("id", "error").text == ""


def test_a_run_without_attributes_has_no_attribute_section(server, browser) -> None:
    browser.get(server)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    assert not browser.find_element("id", "attributes-box").is_displayed()
    assert browser.execute_script(ATTRIBUTE_SLIDERS) == []
