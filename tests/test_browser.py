"""End-to-end: the gate-explorer notebook in a real JupyterLab, driven by headless Chromium (Playwright).

The test starts JupyterLab on 127.0.0.1 (a random free port, a random token, a throw-away settings folder that
switches off the news pop-up and starts the kernel without asking), opens a copy of the gate-explorer notebook,
runs all cells in fast mode (XLSTM_EDU_FAST=1), waits for the kernel to be idle and a slider to render, moves the
slider with the keyboard and checks that the figure under it is redrawn (its PNG changes). Screenshots go to
``screenshots/`` (git-ignored). The server is always stopped, pass or fail.

Needs Debian's ``chromium`` (``apt-get install chromium``; .ci/run installs it) and the ``playwright`` python
package; never ``playwright install``. Skips with the reason when either is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

pytestmark = pytest.mark.browser


def _chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def _notebook() -> Path:
    found = sorted((ROOT / "notebooks").glob("*gate_explorer*.ipynb"))
    if not found:
        pytest.fail("no notebook named *gate_explorer*.ipynb in notebooks/")
    return found[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    """User settings: never ask about (or fetch) Jupyter news, start the notebook's kernel without a dialog."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True},
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on loopback serving a temp folder with a copy of the notebook; stopped afterwards."""
    # skip before starting anything when the browser side is missing
    if _chromium_path() is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright python package is not installed")
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")
    work = tmp_path / "work"
    work.mkdir()
    nb = _notebook()
    shutil.copy(nb, work / nb.name)
    settings = tmp_path / "lab-settings"
    _write_settings(settings)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, XLSTM_EDU_FAST="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    env.pop("MPLBACKEND", None)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=",
           "--ServerApp.port_retries=0"]
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(tmp_path / 'jupyterlab.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.time() > deadline:
                pytest.fail("JupyterLab did not answer within 60 s")
            time.sleep(0.5)
        yield {"url": f"{base}/lab/tree/{nb.name}?token={token}", "log": tmp_path / "jupyterlab.log"}
    finally:
        # stop the server we started (its whole process group: server and kernels), politely first
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
        log.close()


def _wait_idle(page, status, timeout_s: float = 60.0) -> None:
    """Wait until the status bar has said "Idle" for a full second (widget redraws come in bursts)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if "Idle" in status.inner_text():
            page.wait_for_timeout(1000)
            if "Idle" in status.inner_text():
                return
        page.wait_for_timeout(250)
    pytest.fail(f"the kernel did not become idle within {timeout_s:.0f} s (status bar: {status.inner_text()!r})")


def test_gate_explorer_slider_redraws_figure(jupyterlab):
    from playwright import sync_api

    chromium = _chromium_path()
    SHOTS.mkdir(exist_ok=True)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(jupyterlab["url"])
            # the notebook is open and its kernel is idle
            page.locator(".jp-NotebookPanel").first.wait_for()
            status = page.locator("#jp-main-statusbar")
            sync_api.expect(status).to_contain_text("Idle", timeout=60_000)
            page.screenshot(path=str(SHOTS / "01_opened.png"))

            # Run > Run All Cells, through the menu like a learner
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            # all cells ran: no "[*]" prompt left and the kernel is idle again
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-InputPrompt')].every(e => !e.textContent.includes('*'))"
                " && [...document.querySelectorAll('.jp-InputPrompt')].some(e => /\\[\\d+\\]/.test(e.textContent))",
                timeout=90_000)
            sync_api.expect(status).to_contain_text("Idle", timeout=60_000)

            # the gate lab (the first explorer): its "ĩ at write" slider and its figure (inline backend PNG)
            lab = page.locator(".xlstm-gate-lab").first
            lab.wait_for(timeout=30_000)
            slider = lab.locator(".widget-slider .noUi-handle").first
            slider.wait_for(timeout=30_000)
            slider.scroll_into_view_if_needed()
            img = lab.locator(".widget-output .jp-OutputArea-output img").first
            img.wait_for(timeout=30_000)
            _wait_idle(page, status)
            before = img.get_attribute("src")
            assert before and before.startswith("data:image/png"), before[:80] if before else before
            page.screenshot(path=str(SHOTS / "02_before_slider.png"))
            readout = lab.locator(".widget-slider .widget-readout").first
            value_before = readout.inner_text()

            slider.focus()
            for _ in range(5):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "(before) => { const i = document.querySelector("
                "'.xlstm-gate-lab .widget-output .jp-OutputArea-output img');"
                " return i && i.src !== before; }", arg=before, timeout=30_000)
            _wait_idle(page, status)  # all five redraws done
            after = img.get_attribute("src")
            value_after = readout.inner_text()
            page.screenshot(path=str(SHOTS / "03_after_slider.png"))
            img.screenshot(path=str(SHOTS / "04_figure_after.png"))

            assert value_after != value_before, (value_before, value_after)
            assert after and after.startswith("data:image/png") and after != before

            # the other three explorers rendered too (a figure each): keep a picture of each
            for i, css in enumerate(("xlstm-matrix-memory", "xlstm-parallel-form", "xlstm-trained-model"), start=5):
                box = page.locator(f".{css}").first
                box.scroll_into_view_if_needed()
                box.locator(".widget-output .jp-OutputArea-output img").first.wait_for(timeout=30_000)
                box.screenshot(path=str(SHOTS / f"0{i}_{css.removeprefix('xlstm-')}.png"))
        finally:
            browser.close()
