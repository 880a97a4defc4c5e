"""Screenshot the explorer on a run, with the sliders, interpolation and attribute panel set as given.

    python docs/explorer_screenshot.py RUN OUT.png [--z 1.2 -1.0] [--t 0.5] [--from-class 7 --to-class 9]
        [--strength 1.5]

Serves RUN on a free local port and drives Debian's headless Chromium through chromedriver (selenium).
"""
from __future__ import annotations

import argparse
import threading

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from genlab.runs.store import load_run
from genlab.serve.api import Explorer
from genlab.serve.server import make_server

SET_SELECT = ("const e = document.getElementById(arguments[0]); e.value = arguments[1]; "
              "e.dispatchEvent(new Event('change'));")
SET_RANGE = ("const e = document.getElementById(arguments[0]); e.value = arguments[1]; "
             "e.dispatchEvent(new Event('input'));")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("out", metavar="OUT.png")
    parser.add_argument("--z", type=float, nargs="+", default=[1.2, -1.0], help="the first sliders' values")
    parser.add_argument("--strength", type=float, default=1.5)
    parser.add_argument("--t", type=float, default=0.5)
    parser.add_argument("--from-class", type=int, help="the attribute panel's classes, by number")
    parser.add_argument("--to-class", type=int)
    args = parser.parse_args()
    server = make_server(Explorer(load_run(args.run)), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1150,1720"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
        for i, value in enumerate(args.z):
            driver.execute_script(SET_RANGE, f"s{i}", str(value))
        for select, value in (("from-class", args.from_class), ("to-class", args.to_class)):
            if value is not None:  # each change re-reads the class means and picks six new test images
                driver.execute_script(SET_SELECT, select, str(value))
                driver.execute_script("return new Promise(done => setTimeout(done, 1500))")
        for element, value in (("t", args.t), ("strength", args.strength)):
            if driver.execute_script(f"return document.getElementById('{element}') !== null"):
                driver.execute_script(SET_RANGE, element, str(value))
        driver.execute_script("return new Promise(done => setTimeout(done, 2000))")  # the last decodes land
        driver.save_screenshot(args.out)
    finally:
        driver.quit()
        server.shutdown()
    print(args.out)


if __name__ == "__main__":
    main()
