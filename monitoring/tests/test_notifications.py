"""Notifications through Apprise to a real HTTP receiver on loopback: fan-out, failures, retries, secrets."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

import amp
from monitoring import notify, tasks
from monitoring.models import Notification
from ssot import services as ssot_services
from ssot.sync import sync
from testing.factories import NotificationFactory
from testing.monitor import T0, TIMEOUT, at, check, closed_port, heartbeat, receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_settings")]


@pytest.fixture
def http():
    with receiver() as server:
        yield server


def test_targets_are_the_notify_urls_then_the_telegram_shorthand(settings):
    settings.NOTIFY_URLS = ["json://127.0.0.1:9/a", "form://127.0.0.1:9/b"]
    settings.TELEGRAM_BOT_TOKEN = "123456:ABC-secret"
    settings.TELEGRAM_ADMIN_CHAT_ID = "-100200300"

    assert notify.targets() == [
        "json://127.0.0.1:9/a",
        "form://127.0.0.1:9/b",
        "tgram://123456:ABC-secret/-100200300",
    ]


def test_the_telegram_shorthand_needs_both_settings(settings):
    settings.TELEGRAM_BOT_TOKEN = "123456:ABC-secret"

    assert notify.targets() == []


def test_a_notification_reaches_every_target(settings, http):
    settings.NOTIFY_URLS = [http.url("ok"), http.url("ok2")]
    notification = NotificationFactory.create(
        title="[critical] heartbeat_timeout: executor", body="EXECUTOR is silent"
    )

    report = notify.notifications_send()

    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    for path in ("/ok", "/ok2"):
        [body] = http.bodies(path)
        assert (body["title"], body["message"], body["type"]) == (
            "[critical] heartbeat_timeout: executor",
            "EXECUTOR is silent",
            "failure",
        )
    notification.refresh_from_db()
    assert (notification.state, notification.attempts, notification.last_error) == ("sent", 1, "")
    assert notify.notifications_send().sent == 0


def test_a_failing_target_does_not_stop_the_others_and_is_retried(settings, http, time_machine, caplog):
    time_machine.move_to(T0, tick=False)
    settings.NOTIFY_URLS = [
        f"json://127.0.0.1:{closed_port()}/dead",
        http.url("fail", auth="user:s3cret@"),
        http.url("ok"),
    ]
    notification = NotificationFactory.create()

    with caplog.at_level(logging.WARNING, logger="monitoring"):
        report = notify.notifications_send()

    assert (report.sent, report.retrying) == (0, 1)
    assert len(http.bodies("/ok")) == 1 and len(http.bodies("/fail")) == 1
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == ("pending", 1)
    assert notification.next_attempt_at == T0 + timedelta(seconds=30)
    assert notification.last_error == "json: delivery failed; json: delivery failed"
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("monitoring"))
    assert "json: delivery failed" in ours
    assert "s3cret" not in ours and "127.0.0.1" not in ours and "s3cret" not in notification.last_error


def test_a_retry_goes_only_to_the_targets_that_missed_it(settings, http, time_machine):
    time_machine.move_to(T0, tick=False)
    settings.NOTIFY_URLS = [http.url("ok"), http.url("fail")]
    notification = NotificationFactory.create()
    notify.notifications_send()
    notification.refresh_from_db()
    assert notification.delivered_to == [notify.target_id(http.url("ok"))]
    assert "127.0.0.1" not in str(notification.delivered_to)
    settings.NOTIFY_URLS = [http.url("ok"), http.url("repaired")]  # the failing target was fixed
    time_machine.move_to(T0 + timedelta(seconds=31), tick=False)
    assert notify.notifications_send().sent == 1
    assert (len(http.bodies("/ok")), len(http.bodies("/repaired"))) == (1, 1)


def test_retries_back_off_exponentially_then_give_up(settings, time_machine):
    settings.NOTIFY_URLS = [f"json://127.0.0.1:{closed_port()}/dead"]
    time_machine.move_to(T0, tick=False)
    notification = NotificationFactory.create()
    waits = []

    for _ in range(notify.MAX_ATTEMPTS):
        notify.notifications_send()
        notification.refresh_from_db()
        if notification.state == "pending":
            waits.append(int((notification.next_attempt_at - timezone.now()).total_seconds()))
            time_machine.move_to(notification.next_attempt_at, tick=False)

    assert waits == [30, 60, 120, 240, 480, 960, 1920]
    assert (notification.state, notification.attempts) == ("failed", notify.MAX_ATTEMPTS)


def test_a_notification_not_due_yet_waits(settings, http):
    settings.NOTIFY_URLS = [http.url("ok")]
    NotificationFactory(next_attempt_at=timezone.now() + timedelta(minutes=1))

    assert notify.notifications_send().sent == 0
    assert http.received == []


def test_an_invalid_url_is_a_failed_target_named_by_its_scheme(settings, http):
    settings.NOTIFY_URLS = ["nosuchscheme://token@host/path", http.url("ok")]
    notification = NotificationFactory.create()

    notify.notifications_send()

    notification.refresh_from_db()
    assert notification.last_error == "nosuchscheme: not a valid Apprise URL"
    assert len(http.bodies("/ok")) == 1


def test_without_targets_a_notification_is_done(settings):
    notification = NotificationFactory.create()

    notify.notifications_send()

    notification.refresh_from_db()
    assert (notification.state, notification.last_error) == ("sent", "no targets")


def test_a_failing_target_never_breaks_the_check(settings, store, http, time_machine):
    settings.NOTIFY_URLS = [f"json://127.0.0.1:{closed_port()}/dead", http.url("fail"), http.url("ok")]
    time_machine.move_to(T0, tick=False)
    heartbeat(store, "executor", T0)
    time_machine.move_to(at(TIMEOUT + 1), tick=False)
    sync()

    result = tasks.heartbeat_check()

    assert result["raised"] == ["escalation-agent-executor-1772442000000"]
    assert result["notifications"] == {"sent": 0, "retrying": 1, "failed": 0}
    [body] = http.bodies("/ok")
    assert body["title"] == "[critical] heartbeat_timeout: executor"
    assert check(time_machine, at(TIMEOUT + 11)).changes == []
    assert Notification.objects.get().attempts == 1


def test_an_escalation_an_agent_raises_is_notified_once(store, time_machine):
    time_machine.move_to(T0, tick=False)
    envelope = amp.build_envelope(
        msg_type="escalation",
        sender="executor",
        recipient="admin",
        task_id="T-5",
        requires_ack=False,
        payload={
            "escalation_type": "blocked",
            "severity": "warning",
            "triggered_by": "executor",
            "description": "The build needs a secret I do not have.",
        },
        now=T0,
    )
    ssot_services.message_create(raw=envelope, sender="executor")

    first = check(time_machine, at(5))
    again = check(time_machine, at(15))

    assert first.notified == ["[warning] blocked: task T-5 (from executor)"]
    assert again.notified == []
    [notification] = Notification.objects.all()
    assert (notification.body, notification.escalation_msg_id) == (
        "The build needs a secret I do not have.",
        envelope["msg_id"],
    )
