"""The admin's phone, end to end, in Debian's Chromium at a phone viewport, against daphne and a django-q2
worker in subprocesses: an agent's plain `git push` of a task to awaiting_approval goes through the hook,
the webhook and the worker to one notification at a local HTTP receiver (the Apprise target); its link,
after the login, opens the task page with what changed and the acceptance criteria; a change while open
is announced live and the stale decision refused with the new version offered; the approval with a note
lands in the SSOT with its audit line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

import amp
from ssot.documents import dump_json
from ssot.sync import sync
from testing.content import BASE_TIME, task_doc
from testing.factories import UserFactory
from testing.git import git_push
from testing.monitor import Receiver, audit_lines, receiver
from testing.server import Daphne, free_port, hook_to, server_env, serving

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"
LIVE_SEC = 20_000  # ms Playwright waits for something the server pushes
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def approver():
    return UserFactory(username="alice", password=PASSWORD, groups=["approvers"])


@pytest.fixture
def seeded(store):
    envelope = amp.build_envelope(
        msg_type="task_dispatch",
        sender="coordinator",
        recipient="executor",
        task_id="DEMO-1",
        payload={"branch": "feature/offline", "acceptance_criteria": ["Drafts survive a restart <b>"]},
        now=BASE_TIME,
    )
    store.commit(
        parent=store.head(),
        writes={
            "tasks/DEMO-1.json": dump_json(
                task_doc("DEMO-1", "in_progress", title="Add offline mode", risk_level="high")
            ),
            f"messages/{envelope['msg_id']}.json": dump_json(envelope),
        },
        message="coordinator: dispatch DEMO-1",
        author="coordinator",
    )
    sync()
    return store


@pytest.fixture
def phone_target() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


@pytest.fixture
def stack(seeded, ssot_path: Path, tmp_path: Path, monkeypatch, phone_target) -> Iterator[Daphne]:
    port = free_port()
    # The hook reads the pusher's SSOT_HOOK_URL first: make sure it is ours.
    monkeypatch.setenv("SSOT_HOOK_URL", hook_to(ssot_path, port, tmp_path))
    env = server_env(
        ssot_path=ssot_path,
        redis_url=None,
        prefix=f"phone_{uuid.uuid4().hex[:8]}",
        Q_WORKERS="1",
        NOTIFY_URLS=phone_target.url("phone"),
        PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    with serving(env, port) as server:
        yield server


@pytest.fixture
def browser(chromium) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**chromium)
        try:
            yield browser
        finally:
            browser.close()


def push(ssot_path: Path, **fields) -> None:
    document = task_doc("DEMO-1", "awaiting_approval", title="Add offline mode", risk_level="high", **fields)
    git_push(ssot_path, {"tasks/DEMO-1.json": dump_json(document)}, author="executor")


def test_from_the_notification_to_a_decision_on_a_phone(
    stack, approver, browser, ssot_path, seeded, phone_target
):
    push(ssot_path, description="Drafts are kept locally.", last_writer="executor")
    [notification] = phone_target.wait_for(1, "/phone")
    assert notification["title"] == "[approval] DEMO-1 (high): Add offline mode"
    link = notification["message"].splitlines()[-1]
    assert link.startswith(f"{stack.url}/dashboard/tasks/DEMO-1/?sha=")

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    first: Page = context.new_page()
    first.goto(link)
    # Anonymous: the login, then back to the link.
    first.fill("#id_username", "alice")
    first.fill("#id_password", PASSWORD)
    first.click("input[type=submit]")
    first.wait_for_url(link)
    assert first.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    diff = first.locator("#diff")
    expect(diff).to_contain_text("description")
    expect(diff).to_contain_text("Drafts are kept locally.")
    expect(diff).to_contain_text("awaiting_approval")
    expect(first.locator("#criteria")).to_contain_text("Drafts survive a restart <b>")
    assert first.locator("#criteria b").count() == 0
    expect(first.locator("#task-page")).to_have_attribute("data-live", "true", timeout=LIVE_SEC)

    # A second tab on the same (notified) version.
    second: Page = context.new_page()
    second.goto(link)
    expect(second.locator("#task-page")).to_have_attribute("data-live", "true", timeout=LIVE_SEC)

    # The agent changes the task while both are open: one more notification, and the pages say so live.
    push(ssot_path, description="Drafts are kept locally, encrypted.", last_writer="executor")
    changed = phone_target.wait_for(2, "/phone")[1]
    assert changed["title"].endswith("(changed)")
    expect(first.locator("#live-change")).to_be_visible(timeout=LIVE_SEC)
    expect(second.locator("#live-change")).to_be_visible(timeout=LIVE_SEC)

    # The first tab decides on what it showed: refused, and the new version is offered.
    first.click("#approve-form button[type=submit]")
    expect(first.locator("#problem")).to_contain_text("changed since you opened it")
    expect(first.locator("#diff")).to_contain_text("Drafts are kept locally, encrypted.")

    # On the new version, one tap (and a note): approved.
    first.fill("#approve-note", "ship it")
    first.click("#approve-form button[type=submit]")
    expect(first.locator(".notice-ok")).to_contain_text("Approved DEMO-1")
    expect(first.locator("#task-status")).to_have_text("approved")
    head = seeded.head()
    document = json.loads(seeded.read(seeded.entry(head, "tasks/DEMO-1.json").sha))
    assert (document["status"], document["approved_by"], document["approval_reason"]) == (
        "approved",
        "alice",
        "ship it",
    )
    assert [(line["actor"], line["action"]) for line in audit_lines(seeded) if line["task_id"] == "DEMO-1"][
        -1
    ] == (
        "alice",
        "approved",
    )

    # The second tab, still on the old version: refused, the new version offered.
    second.click("#approve-form button[type=submit]")
    expect(second.locator("#problem")).to_contain_text("changed since you opened it")
    expect(second.locator("#task-status")).to_have_text("approved")
    context.close()


@pytest.fixture
def second_approver():
    return UserFactory(username="bob", password=PASSWORD, groups=["approvers"])


def test_an_open_task_page_counts_another_approvers_approval_live(
    stack, approver, second_approver, browser, ssot_path, seeded
):
    """Two approvals needed; bob has the task page open when alice approves on hers: without a reload,
    bob's page says one so far, by alice. A push emptying the approvals file brings both pages back to
    none (and names nobody), and bob's approval then shows on alice's page, by bob."""
    git_push(
        ssot_path,
        {
            "policy/approvals.json": dump_json(
                {"levels": {"high": {"approvals": 2, "groups": ["approvers"]}}}
            ),
            "tasks/DEMO-1.json": dump_json(
                task_doc("DEMO-1", "awaiting_approval", title="Add offline mode", risk_level="high")
            ),
        },
        author="executor",
    )
    page_url = f"{stack.url}/dashboard/tasks/DEMO-1/"

    def open_as(name: str) -> Page:
        page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
        page.goto(page_url)
        page.fill("#id_username", name)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(page_url)
        expect(page.locator("#task-page")).to_have_attribute("data-live", "true", timeout=LIVE_SEC)
        return page

    bob = open_as("bob")
    expect(bob.locator("#policy-need")).to_contain_text(
        "Needs 2 approvals at risk high (0 so far on this version)."
    )
    alice = open_as("alice")
    alice.click("#approve-form button[type=submit]")
    expect(alice.locator("#policy-need")).to_contain_text("(1 so far on this version): alice.")

    expect(bob.locator("#policy-have")).to_have_text("1", timeout=LIVE_SEC)
    expect(bob.locator("#policy-need")).to_contain_text("(1 so far on this version): alice.")
    expect(bob.locator("#live-change")).to_be_hidden()

    # Someone with push access empties the approvals file: the task summary's count, which names nobody.
    pending = json.loads(seeded.read(seeded.entry(seeded.head(), "approvals/DEMO-1.json").sha))
    git_push(ssot_path, {"approvals/DEMO-1.json": dump_json({**pending, "approvals": []})}, author="executor")
    expect(bob.locator("#policy-have")).to_have_text("0", timeout=LIVE_SEC)
    expect(bob.locator("#policy-need")).to_contain_text("(0 so far on this version).")

    bob.click("#approve-form button[type=submit]")
    expect(bob.locator("#policy-need")).to_contain_text("(1 so far on this version): bob.")
    expect(alice.locator("#policy-need")).to_contain_text(
        "(1 so far on this version): bob.", timeout=LIVE_SEC
    )
    expect(alice.locator("#task-status")).to_have_text("awaiting_approval")
    expect(alice.locator("#live-change")).to_be_hidden()
