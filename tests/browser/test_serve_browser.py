"""The web page in a real browser: headless Debian Chromium driven by Selenium.

Chromium and chromedriver come from Debian (`chromium`, `chromium-driver`); `make test`
installs them with apt-get when they are missing. The server runs in a thread on a free
127.0.0.1 port; the browser is told not to reach anything else.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,1400",
)


def require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"browser test needs Debian chromium and chromium-driver ({', '.join(missing)} missing): "
            "run `make test`, which installs them with apt-get"
        )


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1 at a free port, in a background thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture(scope="module")
def server():
    import yoloxkit
    from yoloxkit.serve.app import create_app

    detector = yoloxkit.Detector("yolox-nano", device="cpu")
    with ServerThread(create_app(detector)) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


CANVAS_STATS_JS = """
const c = document.getElementById('canvas');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let sum = 0, sumSq = 0, distinct = new Set();
for (let i = 0; i < d.length; i += 4) {
  const v = d[i] + d[i + 1] + d[i + 2];
  sum += v; sumSq += v * v;
  if (i % 64 === 0) distinct.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
}
const n = d.length / 4, mean = sum / n;
return {width: c.width, height: c.height, std: Math.sqrt(sumSq / n - mean * mean), distinct: distinct.size};
"""


def table_rows(driver) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "#detections tbody tr")]


def test_page_detects_the_dog_in_a_real_browser(server, browser, dog_jpg, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: "yolox-nano" in d.find_element(By.ID, "model-info").text)
    browser.find_element(By.ID, "file-input").send_keys(str(dog_jpg.resolve()))
    wait.until(lambda d: len(table_rows(d)) > 0 or "error" in d.find_element(By.ID, "status").get_attribute("class"))
    rows = table_rows(browser)
    names = [row[1].strip() for row in rows]
    assert "dog" in names, f"detections table: {rows}; status: {browser.find_element(By.ID, 'status').text}"
    assert "bicycle" in names

    stats = browser.execute_script(CANVAS_STATS_JS)
    assert (stats["width"], stats["height"]) == (768, 576)  # the image's own size
    assert stats["std"] > 20 and stats["distinct"] > 500, stats  # a photo, not a blank canvas
    latency = browser.find_element(By.ID, "latency").text
    assert "yolox-nano" in latency and "ms" in latency

    # The slider and the class filter work on the one response: no second upload.
    shown = len(rows)
    browser.execute_script(
        "const s = document.getElementById('conf-slider'); s.value = '0.9';"
        "s.dispatchEvent(new Event('input'));"
    )
    assert len(table_rows(browser)) < shown
    browser.execute_script(
        "const s = document.getElementById('conf-slider'); s.value = s.min; s.dispatchEvent(new Event('input'));"
    )
    assert len(table_rows(browser)) >= shown
    browser.find_element(By.CSS_SELECTOR, "#class-filter input[value='dog']").click()
    assert "dog" not in [row[1].strip() for row in table_rows(browser)]
    browser.find_element(By.CSS_SELECTOR, "#class-filter input[value='dog']").click()
    assert "dog" in [row[1].strip() for row in table_rows(browser)]
    uploads = browser.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/detect')).length"
    )
    assert uploads == 1
    assert browser.save_screenshot(str(tmp_path / "serve_page.png"))


def test_page_shows_a_server_error_for_a_non_image(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not an image")
    browser.get(server.url)
    browser.find_element(By.ID, "file-input").send_keys(str(bogus))
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 30).until(lambda d: "error" in status.get_attribute("class"))
    assert "not an image" in status.text


DROP_CANVAS_AS_FILE_JS = """
const done = arguments[arguments.length - 1];
const source = document.createElement('canvas');
source.width = 320; source.height = 240;
const ctx = source.getContext('2d');
ctx.fillStyle = '#3a7'; ctx.fillRect(0, 0, 320, 240);
ctx.fillStyle = '#fff'; ctx.fillRect(40, 40, 120, 90);
source.toBlob((blob) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
  document.getElementById('drop-zone').dispatchEvent(
    new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
  done(true);
}, 'image/png');
"""


def test_dropping_an_image_on_the_page_uploads_it(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    assert browser.execute_async_script(DROP_CANVAS_AS_FILE_JS)
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 30).until(lambda d: status.text.startswith("dropped.png: 320×240"))
    stats = browser.execute_script(CANVAS_STATS_JS)
    assert (stats["width"], stats["height"]) == (320, 240) and stats["std"] > 10


def test_slice_control_sends_the_slice_and_reruns_on_change(server, browser, dog_jpg):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: "yolox-nano" in d.find_element(By.ID, "model-info").text)
    assert browser.find_element(By.ID, "slice-full").get_attribute("disabled")  # nothing to add to yet
    browser.find_element(By.ID, "slice-input").send_keys("256")
    browser.find_element(By.ID, "slice-full").click()
    browser.find_element(By.ID, "file-input").send_keys(str(dog_jpg.resolve()))
    status = browser.find_element(By.ID, "status")
    wait.until(lambda d: "sliced" in status.text or "error" in status.get_attribute("class"))
    assert status.text.startswith("dog.jpg: 768×576") and "sliced 256 + whole image" in status.text, status.text
    assert "dog" in [row[1].strip() for row in table_rows(browser)]
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/v1/detect'))"
    )
    assert len(urls) == 1 and "slice=256&slice_full=true" in urls[0], urls
    # a new slice runs the image again; one larger than the image is the server's one-line error
    browser.execute_script(
        "const s = document.getElementById('slice-input'); s.value = '1000'; s.dispatchEvent(new Event('change'));"
    )
    wait.until(lambda d: "error" in status.get_attribute("class"))
    assert "slice 1000x1000 is larger than image dog.jpg" in status.text, status.text
