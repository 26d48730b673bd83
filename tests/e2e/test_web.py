"""The browser page: a real headless Chromium asks through grpc-web at the edge and renders a streamed, cited answer."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.cli.common import dev_token
from mesh.settings import MeshSettings

pytestmark = pytest.mark.e2e

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    if not (WEB_DIR / "dist" / "app.js").is_file():
        pytest.fail("web/dist/app.js is missing: run `make web` (make deps builds it)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(WEB_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


def test_browser_streams_a_cited_answer(settings: MeshSettings, page_url: str, sample_corpus_tenant: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        page.goto(f"{page_url}?edge=http://{settings.edge_addr}")
        # Not signed in: the edge refuses, and the page says what to do.
        page.fill("#question", "What is a Pod in Kubernetes?")
        page.click("#send")
        page.wait_for_function("document.body.dataset.done === 'error'", timeout=60_000)
        assert "sign in" in (page.text_content("#error") or "").lower()
        # Sign in with a token of the sample tenant, pasted as a person would.
        token = dev_token(sample_corpus_tenant, subject="browser-user", roles=("reader",))
        page.fill("#token", token)
        page.click("#signin button")
        assert "browser-user" in (page.text_content("#identity") or "")
        page.fill("#question", "What is a Pod in Kubernetes?")
        page.click("#send")
        page.wait_for_function(
            "document.body.dataset.done === 'true' || document.body.dataset.done === 'error'", timeout=180_000
        )
        error = page.text_content("#error")
        assert page.evaluate("document.body.dataset.done") == "true", error
        deltas = int(page.get_attribute("#answer", "data-deltas") or "0")
        assert deltas > 1, "the answer should arrive in several deltas"
        assert (page.text_content("#answer") or "").strip()
        citations = page.query_selector_all("#citations li")
        assert citations, "a cited answer shows its sources"
        assert all(c.get_attribute("data-chunk-id") for c in citations)
        browser.close()
