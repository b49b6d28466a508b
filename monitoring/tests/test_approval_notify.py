"""Asking reaches the approvers (SPEC 5, 10): a task entering awaiting_approval is notified once per version,
to a real HTTP receiver as the Apprise target, whoever wrote it; reminders, expiry, escalation reminders and
the ladder at their cadence (time-machine)."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from monitoring import notify, services
from monitoring.models import ApprovalWait, Notification
from ssot import services as ssot_services
from ssot.models import Escalation, Task
from ssot.paths import task_path
from ssot.sync import sync
from testing.factories import UserFactory
from testing.git import clone, git_commit, push
from testing.monitor import T0, at, audit_lines, concurrently, receiver, ssot_paths

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings")]

HOUR = 3600


@pytest.fixture
def phone(settings):
    """The approvers' target: a local HTTP receiver as `json://`; the queue runs inline (django-q2 sync)."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    settings.PUBLIC_URL = "https://agentos.example.com"
    settings.APPROVAL_REMIND_SEC = HOUR
    settings.APPROVAL_EXPIRE_SEC = 24 * HOUR
    settings.ESCALATION_REMIND_SEC = HOUR
    settings.NOTIFY_ESCALATE_AFTER = 2
    with receiver() as server:
        settings.NOTIFY_URLS = [server.url("phone")]
        yield server


def doc(task_id: str = "DEMO-1", status: str = "awaiting_approval", **fields) -> dict:
    return {
        "task_id": task_id,
        "title": "Add offline mode to the mobile client so that drafts survive a lost connection",
        "status": status,
        "risk_level": "high",
        "branch": "feature/offline",
        "last_writer": "executor",
        "description": "Drafts are kept locally.",
        **fields,
    }


class Agent:
    """An agent's clone of the local SSOT: commits with git and pushes with plain `git push`."""

    def __init__(self, remote: Path) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="agentos-agent-"))
        self.work = clone(remote, self.base / "work")

    def push(self, document: dict, *, author: str = "executor") -> None:
        path = task_path(document["task_id"])
        files: dict[str, str | bytes] = {path: json.dumps(document, indent=2)}
        git_commit(self.work, f"{author}: {document['status']}", files, author=author)
        result = push(self.work)
        assert result.returncode == 0, result.stderr

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def agent(ssot_path, store):
    executor = Agent(ssot_path)
    yield executor
    executor.close()


def arrive(capture) -> None:
    """What the post-receive hook's webhook does with a push: one sync, its events after commit."""
    with capture(execute=True):
        sync()


def approvals(server) -> list[dict]:
    return [body for body in server.bodies("/phone") if body["title"].startswith("[approval]")]


def test_a_plain_git_push_to_awaiting_approval_notifies_once_with_the_link(
    phone, agent, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)
    agent.push(doc(status="in_progress"))
    arrive(django_capture_on_commit_callbacks)
    assert phone.received == []

    agent.push(doc())
    arrive(django_capture_on_commit_callbacks)

    task = Task.objects.get(task_id="DEMO-1")
    [body] = phone.bodies("/phone")
    assert body["title"] == "[approval] DEMO-1 (high): Add offline mode to the mobile client so that drafts…"
    assert "Branch: feature/offline" in body["message"]
    assert "Asked by: executor" in body["message"]
    assert "CI: no checks reported" in body["message"]
    assert "PR: none" in body["message"]
    assert body["message"].endswith(
        f"https://agentos.example.com/dashboard/tasks/DEMO-1/?sha={task.blob_sha}"
    )

    # The same version seen again (another sync, the monitor's safety net, a restart): nothing more.
    arrive(django_capture_on_commit_callbacks)
    services.run_checks()
    notify.notifications_send()
    assert len(phone.bodies("/phone")) == 1


def test_a_change_while_waiting_is_one_more_notification(
    phone, agent, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)
    agent.push(doc())
    arrive(django_capture_on_commit_callbacks)
    agent.push(doc(description="Drafts are kept locally, encrypted."))
    arrive(django_capture_on_commit_callbacks)
    services.run_checks()
    notify.notifications_send()

    first, second = approvals(phone)
    task = Task.objects.get(task_id="DEMO-1")
    assert second["title"].startswith("[approval] DEMO-1 (high): Add offline mode")
    assert second["title"].endswith("(changed)")
    assert "changed while it waits" in second["message"]
    assert second["message"].endswith(f"?sha={task.blob_sha}")
    assert first["message"] != second["message"]


def test_a_task_set_to_awaiting_through_the_api_is_notified(
    phone, store, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(T0, tick=False)
    from testing.monitor import task as write_task

    write_task(store, "DEMO-2", status="in_progress")
    with django_capture_on_commit_callbacks(execute=True):
        ssot_services.task_override(
            task_id="DEMO-2", actor="admin", reason="ready for review", status="awaiting_approval"
        )
    [body] = approvals(phone)
    assert body["title"].startswith("[approval] DEMO-2 (medium)")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_monitor_runs_still_notify_once(phone, store, time_machine):
    time_machine.move_to(T0, tick=False)
    from testing.content import commit

    commit(store, {task_path("DEMO-1"): doc()}, author="executor")
    sync()  # no events reach the listener here (no commit callbacks): the monitor finds it

    concurrently(services.run_checks, workers=2)
    notify.notifications_send()

    assert len(approvals(phone)) == 1
    assert Notification.objects.filter(title__startswith="[approval]").count() == 1


def test_reminders_at_their_cadence_then_one_expiry_escalation_never_a_decision(
    phone, settings, store, django_capture_on_commit_callbacks, time_machine
):
    settings.APPROVAL_EXPIRE_SEC = 3 * HOUR + 60
    time_machine.move_to(T0, tick=False)
    from testing.content import commit

    commit(store, {task_path("DEMO-1"): doc()}, author="executor")
    arrive(django_capture_on_commit_callbacks)

    def check_at(seconds: float) -> list[dict]:
        time_machine.move_to(at(seconds), tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            sync()
            services.run_checks()
        notify.notifications_send()
        return [b for b in phone.bodies("/phone") if b["title"].startswith("[reminder]")]

    assert check_at(HOUR - 1) == []
    assert len(check_at(HOUR)) == 1
    assert len(check_at(HOUR + 30)) == 1
    reminders = check_at(2 * HOUR)
    assert len(reminders) == 2 and reminders[0]["title"].startswith("[reminder] DEMO-1 (high)")
    assert "/dashboard/tasks/DEMO-1/?sha=" in reminders[1]["message"]
    check_at(3 * HOUR)
    assert not Escalation.objects.exists()

    check_at(3 * HOUR + 60)
    check_at(3 * HOUR + 120)
    [escalation] = Escalation.objects.all()
    assert (escalation.escalation_type, escalation.triggered_by, escalation.task_id) == (
        "approval_expired",
        "system",
        "DEMO-1",
    )
    expired = [b for b in phone.bodies("/phone") if "approval_expired" in b["title"]]
    assert len(expired) == 1 and expired[0]["title"].startswith("[warning] approval_expired: DEMO-1")
    assert expired[0]["message"].endswith(f"/dashboard/escalations/{escalation.msg_id}/")
    assert [line["action"] for line in audit_lines(store) if line["msg_id"] == escalation.msg_id] == [
        "escalation"
    ]
    assert Task.objects.get(task_id="DEMO-1").status == "awaiting_approval"
    assert [p for p in ssot_paths(store, "messages/") if "approval" in p]

    # Approved at last: the expiry escalation is resolved, the reminders stop.
    with django_capture_on_commit_callbacks(execute=True):
        # The admin `make run` creates: a superuser decides at every level of the approval policy.
        UserFactory(username="admin", is_superuser=True)
        ssot_services.task_approve(task_id="DEMO-1", actor="admin", reason="")
    count = len(phone.bodies("/phone"))
    check_at(6 * HOUR)
    escalation.refresh_from_db()
    assert escalation.status == "resolved" and "decided" in escalation.resolution
    assert not ApprovalWait.objects.filter(active=True).exists()
    assert len([b for b in phone.bodies("/phone")[count:] if b["title"].startswith("[reminder] DEMO-1")]) == 0


def test_zero_turns_approval_reminders_off(
    phone, settings, store, django_capture_on_commit_callbacks, time_machine
):
    settings.APPROVAL_REMIND_SEC = 0
    settings.APPROVAL_EXPIRE_SEC = 0
    time_machine.move_to(T0, tick=False)
    from testing.content import commit

    commit(store, {task_path("DEMO-1"): doc()}, author="executor")
    arrive(django_capture_on_commit_callbacks)
    time_machine.move_to(at(100 * HOUR), tick=False)
    sync()
    services.run_checks()
    notify.notifications_send()
    assert [b["title"][:10] for b in phone.bodies("/phone") if "DEMO-1" in b["title"]] == ["[approval]"]
    assert not Escalation.objects.filter(escalation_type="approval_expired").exists()


def test_open_escalations_are_reminded_until_acknowledged_and_the_ladder_adds_the_next_rung(
    phone, settings, store, time_machine, django_capture_on_commit_callbacks
):
    from testing.monitor import heartbeat

    with receiver() as second:
        settings.NOTIFY_ESCALATE_URLS = [second.url("deputy")]
        time_machine.move_to(T0, tick=False)
        heartbeat(store, "executor", T0)

        def check_at(seconds: float) -> None:
            time_machine.move_to(at(seconds), tick=False)
            with django_capture_on_commit_callbacks(execute=True):
                from testing.monitor import heartbeat as beat

                for name in ("coordinator", "reviewer"):
                    beat(store, name, at(seconds))
                services.run_checks()
            notify.notifications_send()

        check_at(400)  # executor silent past TIMEOUT: one heartbeat_timeout escalation, notified
        [escalation] = Escalation.objects.filter(escalation_type="heartbeat_timeout")
        titles = [b["title"] for b in phone.bodies("/phone")]
        assert titles == ["[critical] heartbeat_timeout: executor"]
        assert phone.bodies("/phone")[0]["message"].endswith(f"/dashboard/escalations/{escalation.msg_id}/")

        check_at(400 + HOUR - 5)
        assert len(phone.bodies("/phone")) == 1
        check_at(400 + HOUR)
        check_at(400 + HOUR + 60)
        reminders = [b for b in phone.bodies("/phone") if b["title"].startswith("[reminder]")]
        assert len(reminders) == 1 and reminders[0]["title"].startswith("[reminder] heartbeat_timeout")
        assert second.bodies("/deputy") == []  # the first reminder: not yet the next rung

        check_at(400 + 2 * HOUR)
        assert len([b for b in phone.bodies("/phone") if b["title"].startswith("[reminder]")]) == 2
        [deputy] = second.bodies("/deputy")
        assert deputy["title"].startswith("[reminder] heartbeat_timeout")

        with django_capture_on_commit_callbacks(execute=True):
            ssot_services.escalation_acknowledge(escalation_id=escalation.pk, actor="admin")
        check_at(400 + 5 * HOUR)
        assert len([b for b in phone.bodies("/phone") if b["title"].startswith("[reminder]")]) == 2


def test_notification_bodies_hold_no_secret(
    phone, settings, agent, django_capture_on_commit_callbacks, time_machine
):
    settings.NOTIFY_URLS = [phone.url("phone", auth="user:s3cret-token@")]
    time_machine.move_to(T0, tick=False)
    agent.push(doc())
    arrive(django_capture_on_commit_callbacks)
    [body] = phone.bodies("/phone")
    assert "s3cret" not in json.dumps(body)
    assert settings.SECRET_KEY not in json.dumps(body)


def test_public_url_must_be_https_in_production(settings):
    from monitoring.checks import public_url

    settings.PUBLIC_URL = "http://127.0.0.1:8000"
    assert public_url() == []
    settings.PRODUCTION = True
    assert [m.id for m in public_url()] == ["monitoring.E002"]
    settings.PUBLIC_URL = "https://agentos.example.com"
    assert public_url() == []
    settings.PUBLIC_URL = "agentos.example.com"
    assert [m.id for m in public_url()] == ["monitoring.E001"]


def test_the_escalation_expiry_id_fits_a_long_task_id():
    from monitoring.envelopes import approval_escalation_id

    msg_id = approval_escalation_id("T" * 128, T0 + timedelta(hours=1))
    assert len(msg_id) <= 128 and msg_id.startswith("escalation-approval-")


def test_a_sync_too_large_for_events_still_notifies_at_once(phone, store, django_capture_on_commit_callbacks):
    """Over EVENTS_PER_BATCH changed rows the sync sends one `sync` event (reload), no per-task event: the
    listener looks for the waits that are out of date."""
    from ssot.mirror import EVENTS_PER_BATCH
    from testing.content import commit, task_doc

    files = {task_path(f"BULK-{n}"): task_doc(f"BULK-{n}") for n in range(EVENTS_PER_BATCH + 1)}
    files[task_path("DEMO-1")] = doc()
    commit(store, files, author="coordinator")
    sync()  # the first sync is full and sends no per-row events either
    changed = {path: {**document, "v": 2} for path, document in files.items()}
    commit(store, {**changed, task_path("DEMO-2"): doc("DEMO-2")})

    arrive(django_capture_on_commit_callbacks)

    assert sorted(body["title"].split()[1] for body in approvals(phone)) == ["DEMO-1", "DEMO-2"]


def test_a_target_that_speaks_html_gets_the_agents_text_escaped(
    phone, settings, store, django_capture_on_commit_callbacks
):
    from testing.content import commit

    settings.NOTIFY_URLS = [phone.url("phone") + "?format=html"]
    commit(store, {task_path("DEMO-1"): doc(branch="feature/<b>bold</b>")}, author="executor")
    arrive(django_capture_on_commit_callbacks)

    [body] = phone.bodies("/phone")
    assert "<b>bold</b>" not in body["message"]
    assert "&lt;b&gt;bold&lt;/b&gt;" in body["message"]
