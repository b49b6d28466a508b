"""The dashboard in a real Chromium, against daphne and a django-q2 worker in subprocesses.

A push from a plain git clone goes through the SSOT's post-receive hook to /webhooks/github, the worker
syncs, and the row changes without a reload; an approval from the dashboard lands in the SSOT; a killed
and restarted server is reconnected to, and the page shows the fresh snapshot.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Page, expect, sync_playwright

from ssot import services
from ssot.documents import dump_json
from ssot.sync import sync
from testing.content import task_doc
from testing.factories import UserFactory
from testing.git import git_push
from testing.server import Daphne, free_port, hook_to, server_env, serving

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"
LIVE_SEC = 20_000  # ms Playwright waits for something the server pushes


@pytest.fixture
def approver():
    return UserFactory(username="alice", password=PASSWORD, groups=["approvers"])


@pytest.fixture
def seeded(store):
    store.commit(
        parent=store.head(),
        writes={
            "tasks/T-300.json": dump_json(task_doc("T-300", "in_progress", title="<b>not bold</b>")),
            "tasks/T-301.json": dump_json(task_doc("T-301", "in_progress", title="Offline mode")),
        },
        message="seed",
        author="coordinator",
    )
    sync()
    return store


@pytest.fixture
def stack(seeded, ssot_path: Path, tmp_path: Path, monkeypatch) -> Iterator[Daphne]:
    """daphne with the SSOT's post-receive hook pointing at it, and the worker that processes deliveries.

    A single server process: the in-memory channel layer and the ORM broker, on every database.
    """
    port = free_port()
    # The hook reads the pusher's SSOT_HOOK_URL first: make sure it is ours.
    monkeypatch.setenv("SSOT_HOOK_URL", hook_to(ssot_path, port, tmp_path))
    env = server_env(
        ssot_path=ssot_path, redis_url=None, prefix=f"browser_{uuid.uuid4().hex[:8]}", Q_WORKERS="1"
    )
    with serving(env, port) as server:
        yield server


@pytest.fixture
def page(chromium) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**chromium)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def log_in(page: Page, server: Daphne) -> None:
    page.goto(f"{server.url}/dashboard/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.url}/dashboard/")
    expect(page.locator("#dashboard")).to_have_attribute("data-connection", "live", timeout=LIVE_SEC)


def row(page: Page, task_id: str):
    return page.locator(f'#tasks tr[data-task-id="{task_id}"]')


def test_the_dashboard_follows_a_push_an_approval_and_a_server_restart(
    stack, approver, page, ssot_path, seeded, monkeypatch
):
    log_in(page, stack)
    expect(row(page, "T-301")).to_have_attribute("data-status", "in_progress")
    # Agent-provided text is shown as text, never as markup.
    expect(row(page, "T-300").locator(".task-title")).to_have_text("<b>not bold</b>")
    assert row(page, "T-300").locator("b").count() == 0
    page.evaluate("window.notReloaded = true")

    # A push from a plain clone: hook -> webhook -> worker -> sync -> event -> row.
    git_push(
        ssot_path,
        {"tasks/T-301.json": dump_json(task_doc("T-301", "awaiting_approval", title="Offline mode"))},
        author="coordinator",
    )
    expect(row(page, "T-301")).to_have_attribute("data-status", "awaiting_approval", timeout=LIVE_SEC)

    # Approve from the dashboard, with a note.
    row(page, "T-301").get_by_role("button", name="Approve").click()
    page.fill("#decision-reason", "ship it")
    page.click("#decision-submit")
    expect(row(page, "T-301")).to_have_attribute("data-status", "approved", timeout=LIVE_SEC)
    expect(page.locator("#decision")).not_to_be_visible()
    document = json.loads(seeded.read(seeded.entry(seeded.head(), "tasks/T-301.json").sha))
    assert (document["status"], document["approved_by"], document["approval_reason"]) == (
        "approved",
        "alice",
        "ship it",
    )

    # The server dies; a change lands meanwhile; the restarted server is found and its snapshot shown.
    stack.kill()
    expect(page.locator("#dashboard")).to_have_attribute("data-connection", "retrying", timeout=LIVE_SEC)
    # Playwright's sync API runs an event loop in this thread; the DB calls here are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    services.task_override(task_id="T-300", actor="alice", reason="paused by hand", status="blocked")
    # That call had a connection of its own (asgiref's context under the running loop): close it here.
    connections.close_all()
    stack.start()
    expect(page.locator("#dashboard")).to_have_attribute("data-connection", "live", timeout=LIVE_SEC)
    expect(row(page, "T-300")).to_have_attribute("data-status", "blocked")
    assert page.evaluate("window.notReloaded") is True


def test_a_reject_needs_a_reason_and_shows_the_servers_refusal(stack, approver, page, ssot_path, seeded):
    git_push(ssot_path, {"tasks/T-301.json": dump_json(task_doc("T-301", "awaiting_approval"))})
    log_in(page, stack)
    expect(row(page, "T-301")).to_have_attribute("data-status", "awaiting_approval", timeout=LIVE_SEC)

    row(page, "T-301").get_by_role("button", name="Reject").click()
    page.click("#decision-submit")
    # The browser itself refuses to submit a rejection without a reason.
    expect(page.locator("#decision")).to_be_visible()
    assert page.evaluate("document.getElementById('decision-reason').validity.valueMissing") is True

    # The task changes under the open dialog: the server refuses the stale decision, with its reason.
    git_push(
        ssot_path, {"tasks/T-301.json": dump_json(task_doc("T-301", "awaiting_approval", risk_level="low"))}
    )
    expect(row(page, "T-301").locator(".badge.risk-low")).to_be_visible(timeout=LIVE_SEC)
    page.fill("#decision-reason", "no tests")
    page.click("#decision-submit")
    expect(page.locator("#decision-error")).to_contain_text("changed since it was shown", timeout=LIVE_SEC)


def test_a_task_needing_two_approvals_shows_how_many_it_has(stack, approver, page, ssot_path):
    """The row says "0 of 2" under a policy needing two, and "1 of 2" once the first approval from the
    dashboard is recorded (its approval_progress event); the task stays awaiting approval."""
    git_push(
        ssot_path,
        {
            "policy/approvals.json": dump_json(
                {"levels": {"high": {"approvals": 2, "groups": ["approvers"]}}}
            ),
            "tasks/T-301.json": dump_json(task_doc("T-301", "awaiting_approval", risk_level="high")),
        },
    )
    log_in(page, stack)
    count = row(page, "T-301").locator(".approvals")
    expect(count).to_have_text("0 of 2", timeout=LIVE_SEC)

    row(page, "T-301").get_by_role("button", name="Approve").click()
    page.click("#decision-submit")
    expect(page.locator("#decision")).not_to_be_visible(timeout=LIVE_SEC)
    expect(count).to_have_text("1 of 2", timeout=LIVE_SEC)
    expect(row(page, "T-301")).to_have_attribute("data-status", "awaiting_approval")
    expect(row(page, "T-300").locator(".approvals")).to_have_count(0)


def test_the_dashboard_fits_a_phone(stack, approver, page):
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, stack)
    expect(page.locator("#tasks thead")).to_be_hidden()
    expect(row(page, "T-301")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_a_failing_sync_is_shown_in_the_header_with_its_reason(stack, approver, page, ssot_path, monkeypatch):
    from testing.dbfaults import table_missing

    # Playwright's sync API runs an event loop in this thread; the DB calls here are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    log_in(page, stack)
    header = page.locator("#sync")
    expect(header).to_contain_text("main@")
    with table_missing("ssot_task"):
        # The worker's sync of this push fails on the database, not on the file.
        git_push(ssot_path, {"tasks/T-302.json": dump_json(task_doc("T-302", "in_progress"))})
        expect(header).to_have_class(re.compile(r"\bfailing\b"), timeout=LIVE_SEC)
        expect(header).to_contain_text("SSOT sync failing")
        expect(header).to_contain_text("tasks/T-302.json")
    git_push(ssot_path, {"tasks/T-303.json": dump_json(task_doc("T-303", "in_progress"))})
    expect(header).not_to_have_class(re.compile(r"\bfailing\b"), timeout=LIVE_SEC)
    expect(row(page, "T-302")).to_be_visible()
    expect(row(page, "T-303")).to_be_visible()
    connections.close_all()
