"""In a real Chromium, on a phone-sized screen: log into the admin and approve a task with a reason."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from ssot.models import Task
from testing.api import PASSWORD, awaiting, make_user, put_tasks
from testing.content import read_json


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_approver_approves_a_task_with_a_reason_in_the_admin(live_server, store, api_settings, chromium):
    put_tasks(store, awaiting("T-42", title="Ship the login form"))
    approver = make_user("approver")
    task = Task.objects.get(task_id="T-42")
    # The ORM stays out of the Playwright block: its sync API runs an event loop in this thread.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**chromium)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page.set_default_timeout(15_000)
            page.goto(f"{live_server.url}/admin/")
            page.fill("#id_username", approver.username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page.locator("#site-name")).to_contain_text("AgentOS control plane")

            page.goto(f"{live_server.url}/admin/ssot/task/?status__exact=awaiting_approval")
            page.check(f"input[name=_selected_action][value='{task.pk}']")
            page.select_option("select[name=action]", "approve_tasks")
            page.click("button[name=index]")

            expect(page.locator("h1")).to_have_text("Approve tasks")
            expect(page.locator(f"input[name=sha_{task.pk}]")).to_have_value(task.blob_sha)
            page.fill("textarea[name=reason]", "Reviewed on my phone: ship it")
            page.click("input[name=apply]")

            expect(page.locator("ul.messagelist")).to_contain_text(
                "T-42: approved (awaiting_approval → approved)."
            )
            page.goto(f"{live_server.url}/admin/ssot/task/")
            expect(page.locator("#result_list tbody tr", has_text="T-42")).to_contain_text("approved")
        finally:
            browser.close()

    document = read_json(store, "tasks/T-42.json")
    assert (document["status"], document["approved_by"], document["approval_reason"]) == (
        "approved",
        approver.username,
        "Reviewed on my phone: ship it",
    )
    assert Task.objects.get(task_id="T-42").blob_sha == store.entry(store.head(), "tasks/T-42.json").sha
