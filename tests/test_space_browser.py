"""The Space in a real browser: headless Debian chromium, driven by selenium through its chromedriver, opens the app
served on 127.0.0.1, uploads a SynthAffect clip, presses Analyze and waits for the per-frame table and the figure.

The screenshot is saved in the test's tmp folder and, when ABAW_SCREENSHOT names a file, there too;
ABAW_SCREENSHOT_MODEL (a model folder) replaces the random tiny model, for a README picture whose predictions mean
something:

    ABAW_SCREENSHOT=docs/space.png ABAW_SCREENSHOT_MODEL=demo_output/finetune/final pytest tests/test_space_browser.py
"""

import importlib.util
import os
import shutil
from pathlib import Path

import av
import pytest

from modeling_abaw.tasks import AU, VA

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

APP_FILE = Path(__file__).resolve().parents[1] / "spaces" / "app.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# Long enough for the first analysis on a loaded CI machine (model warm-up, face detection, figures).
ANALYSIS_TIMEOUT_S = 60

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver; .ci/run does this)",
)


def load_app(cache):
    """spaces/app.py as a module, its examples and results under `cache`. Imported by path: `import spaces.app`
    would find the ZeroGPU `spaces` package."""
    spec = importlib.util.spec_from_file_location("space_app", APP_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.EXAMPLES_DIR, module.RESULTS_DIR = cache / "examples", cache / "results"
    return module


@pytest.fixture
def space_url(tiny_face_mae_affect_dir, tmp_path, monkeypatch):
    # Gradio keeps uploads and outputs in GRADIO_TEMP_DIR: this test's tmp folder, not the shared /tmp/gradio.
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    app = load_app(tmp_path)
    demo = app.build_demo([os.environ.get("ABAW_SCREENSHOT_MODEL") or tiny_face_mae_affect_dir])
    demo.queue(max_size=app.QUEUE_MAX_SIZE).launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield demo.local_url
    demo.close()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def video_frames(path):
    with av.open(str(path)) as container:
        return container.streams.video[0].frames


def figure_is_drawn(driver):
    """The figure as an image with a source (the package's PNG) or as a drawn plot (canvas or SVG)."""
    images = driver.find_elements(By.CSS_SELECTOR, "#affect-figure img")
    plots = driver.find_elements(By.CSS_SELECTOR, "#affect-figure canvas, #affect-figure svg.main-svg")
    return any(image.get_attribute("src") for image in images) or bool(plots)


def save_full_page(driver, path):
    """A screenshot of the whole page: the window grows to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, height)
    driver.save_screenshot(str(path))


def test_upload_analyze_and_see_the_table_and_figure(space_url, browser, tiny_synthaffect, tmp_path):
    video = tiny_synthaffect / "videos" / "synth_000.mp4"
    browser.get(space_url)
    wait = WebDriverWait(browser, ANALYSIS_TIMEOUT_S)

    # Gradio hides the file input behind its drop zone; selenium can still give it a file.
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#input-video input[type=file]"))
    upload.send_keys(str(video))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#input-video video"))
    browser.find_element(By.ID, "analyze-button").click()

    # The table is virtual (only the visible rows are in the page); its grid reports the count: a header + frames.
    grid = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#frame-table [role=grid]:not([aria-rowcount='1'])"))
    assert int(grid.get_attribute("aria-rowcount")) == 1 + video_frames(video)
    columns = [cell.get_attribute("title") for cell in browser.find_elements(By.CSS_SELECTOR, "#frame-table th")]
    assert {"frame", "has_face", "expression", *AU.labels, *VA.labels} <= set(columns)
    wait.until(figure_is_drawn)

    screenshot = tmp_path / "space.png"
    save_full_page(browser, screenshot)
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("ABAW_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["ABAW_SCREENSHOT"])
