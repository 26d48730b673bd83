"""The browser app in real headless Chromium, over grpc-web through the stack's Envoy.

A tenant of its own ingests two small pages (through the SDK); the page served
from web/ signs in with a token the stack's key minted and is used as a person
would: ask a question and watch the answer's tokens arrive one after another,
see a calculator call and its result, follow citations to their source, rate
the answer (read back through the API), reopen and delete a session, delete a
document in the documents view, and read a bad token's error in words. A
screenshot of the conversation view is saved under RAGMESH_TEST_ARTIFACTS
(default .artifacts/ in the checkout).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

import ragmesh_client
from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from tests.support.auth import stack_bearer
from tests.support.tenants import new_tenant

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SUBJECT = "web-user"
#: How long a page waits for an answer (a real model on a loaded 2-core machine).
ANSWER_TIMEOUT_MS = 300_000

PAGES = {
    "brindlewick-beacons.md": (
        "# Brindlewick beacons\n\n"
        "A Brindlewick beacon turns amber when its relay loses quorum. "
        "The on-call engineer silences an amber beacon with the command `brindle ack --beacon NAME`, "
        "and the beacon returns to green once the relay regains quorum.\n"
    ),
    "brindlewick-relays.md": (
        "# Brindlewick relays\n\n"
        "Every Brindlewick relay keeps five replicas and needs three of them for quorum. "
        "A relay that stays below quorum for ten minutes pages the storage team.\n"
    ),
}


def _token(tenant: str) -> str:
    from mesh.cli.common import dev_token

    return dev_token(tenant, subject=SUBJECT, roles=("reader", "editor"))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def web_origin() -> Iterator[str]:
    """web/ served over HTTP on a free port (the app's dist/app.js is built by make deps / make web)."""
    assert (WEB / "dist" / "app.js").is_file(), "web/dist/app.js is missing: run make web"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(WEB)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def tenant(settings: MeshSettings) -> Iterator[str]:
    """A tenant of this test's own with the two pages ingested (graph skipped)."""
    name = new_tenant("web")
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    folder.chmod(0o755)
    for file, text in PAGES.items():
        (folder / file).write_text(text, encoding="utf-8")
    with ragmesh_client.Client(settings.edge_addr, lambda: _token(name)) as client:
        events = list(client.ingest([folder], skip_graph=True, timeout_s=600))
    assert events and events[-1].job is not None
    assert events[-1].job.state == ragmesh_client.ingest.JobState.SUCCEEDED, events[-1].job.failure
    yield name
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, web_origin: str, settings: MeshSettings, tenant: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.goto(f"{web_origin}/index.html?edge=http://{settings.edge_addr}#token={_token(tenant)}")
    expect(opened.locator("#app")).to_be_visible()
    expect(opened.locator("#signin")).to_be_hidden()
    yield opened
    context.close()


def _artifacts() -> Path:
    folder = Path(os.environ.get("RAGMESH_TEST_ARTIFACTS", ROOT / ".artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _watch_answer_growth(page: Page) -> None:
    """Records, from inside the page, when the newest answer's text grew and to what length."""
    page.evaluate(
        """() => {
          window.answerGrowth = [];
          new MutationObserver(() => {
            const answers = document.querySelectorAll('#thread .turn .answer');
            const last = answers[answers.length - 1];
            const length = last ? last.textContent.length : 0;
            const seen = window.answerGrowth;
            if (!seen.length || seen[seen.length - 1][1] !== length) seen.push([performance.now(), length]);
          }).observe(document.getElementById('thread'), {childList: true, subtree: true, characterData: true});
        }"""
    )


def _ask(page: Page, question: str) -> Locator:
    """Asks afresh (no answer cache) and waits for the turn to finish; returns the turn's locator."""
    before = page.locator("#thread .turn").count()
    page.check("#fresh")
    page.fill("#question", question)
    page.click("#send")
    turn = page.locator("#thread .turn").nth(before)
    page.wait_for_selector(
        f"#thread .turn:nth-child({before + 1})[data-done=true], #error:not(:empty)", timeout=ANSWER_TIMEOUT_MS
    )
    assert page.inner_text("#error") == "", page.inner_text("#error")
    return turn


def test_a_conversation_streams_cites_calls_tools_and_keeps_feedback(
    page: Page, settings: MeshSettings, tenant: str
) -> None:
    _watch_answer_growth(page)
    first = _ask(page, "What command silences an amber Brindlewick beacon?")

    # Tokens arrived one after another: the answer grew in several steps, over time.
    growth = page.evaluate("() => window.answerGrowth")
    lengths = [length for _, length in growth]
    assert len(growth) >= 3, growth
    assert lengths == sorted(lengths) and growth[-1][0] > growth[0][0], growth
    assert int(first.locator(".answer").get_attribute("data-deltas") or 0) >= 2
    expect(first.locator(".steps li")).not_to_have_count(0)
    expect(first.locator(".latency")).to_contain_text("first token")

    # Citations link to their source, with the cited snippet.
    links = first.locator(".citations a")
    expect(links).not_to_have_count(0)
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    assert any(href.endswith("/brindlewick-beacons.md") for href in hrefs), hrefs
    assert first.locator(".citations .snippet").first.inner_text().strip()

    # Thumbs up is stored: the API gives it back on the session's answer.
    first.locator("button[aria-label=Helpful]").click()
    expect(first.locator("[role=status]")).to_have_text("Thanks, recorded.")
    message_id = first.get_attribute("data-message-id")
    with grpc.insecure_channel(settings.edge_addr) as channel:
        agent = apb_grpc.AgentServiceStub(channel)
        sessions = agent.ListSessions(apb.ListSessionsRequest(), metadata=stack_bearer(tenant, SUBJECT))
        assert len(sessions.sessions) == 1
        session_id = sessions.sessions[0].session_id
        stored = agent.GetSession(apb.GetSessionRequest(session_id=session_id), metadata=stack_bearer(tenant, SUBJECT))
    rated = [m for m in stored.session.messages if m.message_id == message_id]
    assert [m.rating for m in rated] == [apb.RATING_UP]

    # A calculator call and its result show up in the same conversation.
    second = _ask(page, "What is 12 * (3 + 4)?")
    expect(second.locator(".tool-call code")).to_contain_text("calculator")
    expect(second.locator(".tool-result")).to_contain_text("84")

    page.screenshot(path=str(_artifacts() / "web-conversation.png"), full_page=True)

    # Reopened from the session list, the conversation has both turns and the rating given.
    page.click("#new-session")
    expect(page.locator("#thread .turn")).to_have_count(0)
    page.locator(f"#sessions li[data-session-id='{session_id}'] .open").click()
    turns = page.locator("#thread .turn")
    expect(turns).to_have_count(2)
    expect(turns.nth(0).locator(".question")).to_have_text("What command silences an amber Brindlewick beacon?")
    expect(turns.nth(0)).to_have_attribute("data-rated", "up")
    expect(turns.nth(0).locator("button[aria-label=Helpful]")).to_have_attribute("aria-pressed", "true")
    expect(turns.nth(1).locator(".question")).to_have_text("What is 12 * (3 + 4)?")

    # Deleting the session from the list removes it for the API too.
    page.locator(f"#sessions li[data-session-id='{session_id}'] .delete").click()
    expect(page.locator(f"#sessions li[data-session-id='{session_id}']")).to_have_count(0)
    with grpc.insecure_channel(settings.edge_addr) as channel:
        left = apb_grpc.AgentServiceStub(channel).ListSessions(
            apb.ListSessionsRequest(), metadata=stack_bearer(tenant, SUBJECT)
        )
    assert session_id not in {s.session_id for s in left.sessions}


def test_the_documents_view_lists_and_deletes_the_tenants_documents(
    page: Page, settings: MeshSettings, tenant: str
) -> None:
    page.click("#tab-docs")
    rows = page.locator("#documents tbody tr")
    expect(rows).to_have_count(2)
    relays = page.locator("#documents tbody tr", has_text="brindlewick-relays.md")
    relays.locator("button", has_text="Delete").click()
    expect(rows).to_have_count(1)
    with grpc.insecure_channel(settings.edge_addr) as channel:
        listed = gpb_grpc.IngestServiceStub(channel).ListDocuments(
            gpb.ListDocumentsRequest(), metadata=stack_bearer(tenant, SUBJECT)
        )
    assert [Path(d.source_uri).name for d in listed.documents] == ["brindlewick-beacons.md"]


def test_a_bad_token_is_explained_in_words_and_signing_in_again_works(
    browser: Browser, web_origin: str, settings: MeshSettings, tenant: str
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{web_origin}/index.html?edge=http://{settings.edge_addr}#token=not.a.token")
        page.fill("#question", "What is a Pod?")
        page.click("#send")
        expect(page.locator("#error")).to_contain_text("sign-in token is missing, expired or not valid")
        # Sign out, then in again with a good token pasted into the form, as a person would.
        page.click("#signout")
        expect(page.locator("#signin")).to_be_visible()
        page.fill("#token", _token(tenant))
        page.click("#signin button")
        expect(page.locator("#identity")).to_contain_text(f"signed in as {SUBJECT}")
        expect(page.locator("#identity")).to_contain_text(tenant)
        expect(page.locator("#app")).to_be_visible()
    finally:
        context.close()
