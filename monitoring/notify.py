"""Who is told: Apprise targets (NOTIFY_URLS, plus the Telegram shorthand) and the notification outbox.

The monitor creates `Notification` rows with its claims; `notifications_send` delivers them after
commit, to every target, retrying with backoff. A target is only ever named by its scheme in logs and
errors: the rest of an Apprise URL usually holds a token or a password.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import apprise
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from core.batches import delete_in_batches
from monitoring.models import Notification

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SEC = 4.0
READ_TIMEOUT_SEC = 8.0

BATCH = 50
MAX_ATTEMPTS = 8
BACKOFF_SEC = 30
BACKOFF_MAX_SEC = 3600
# How long a sender owns a notification it is sending; after that another sender may retry it.
LEASE = timedelta(minutes=5)

# The title's leading tag (see monitoring.services) says how Apprise should present the message.
_TYPES = {
    "[critical]": apprise.NotifyType.FAILURE,
    "[warning]": apprise.NotifyType.WARNING,
    "[recovered]": apprise.NotifyType.SUCCESS,
    "[reminder]": apprise.NotifyType.WARNING,
}


@dataclass(frozen=True)
class Delivery:
    """What one target did with one notification; `error` never holds the URL."""

    scheme: str
    ok: bool
    error: str = ""


def targets(*, escalate: bool = False) -> list[str]:
    """Every configured Apprise URL: NOTIFY_URLS, then `tgram://{token}/{chat_id}` when both are set;
    with `escalate`, NOTIFY_ESCALATE_URLS too (the ladder's next rung), each URL once."""
    urls = [url for url in settings.NOTIFY_URLS if url]
    if settings.TELEGRAM_BOT_TOKEN and settings.TELEGRAM_ADMIN_CHAT_ID:
        urls.append(f"tgram://{settings.TELEGRAM_BOT_TOKEN}/{settings.TELEGRAM_ADMIN_CHAT_ID}")
    if escalate:
        urls += [url for url in settings.NOTIFY_ESCALATE_URLS if url and url not in urls]
    return urls


def text(notification: Notification) -> str:
    """The body as sent: the notification's text, then the link to its page."""
    return f"{notification.body}\n\n{notification.link}" if notification.link else notification.body


def target_id(url: str) -> str:
    """A stable name for a target that reveals nothing of its URL."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def scheme(url: str) -> str:
    """The only part of a target that may be shown: `json`, `tgram`, ..."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep and head.isascii() and head.replace("+", "").isalnum() else "unknown"


def send(url: str, *, title: str, body: str) -> Delivery:
    """Send to one target with bounded timeouts; any failure is returned, never raised."""
    name = scheme(url)
    try:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            return Delivery(name, False, f"{name}: not a valid Apprise URL")
        # Timeouts named in the URL (?cto=, ?rto=) win; otherwise a dead target costs seconds, not minutes.
        query = parse_qs(urlsplit(url).query)
        if "cto" not in query:
            plugin.socket_connect_timeout = CONNECT_TIMEOUT_SEC
        if "rto" not in query:
            plugin.socket_read_timeout = READ_TIMEOUT_SEC
        tag = title.split(" ", 1)[0]
        # Through an Apprise object, saying the text is plain: a target that speaks HTML or Markdown
        # (Telegram, email) gets it escaped, so a task title with `<` neither breaks nor injects markup.
        runner = apprise.Apprise()
        runner.add(plugin)
        ok = runner.notify(
            body=body,
            title=title,
            notify_type=_TYPES.get(tag, apprise.NotifyType.INFO),
            body_format=apprise.NotifyFormat.TEXT,
        )
    except Exception as exc:  # a broken plugin must not take the sender down with it
        return Delivery(name, False, f"{name}: {type(exc).__name__}")
    return Delivery(name, bool(ok), "" if ok else f"{name}: delivery failed")


# -- sending the outbox ----------------------------------------------------------------------------------


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_SEC * 2 ** (attempts - 1), BACKOFF_MAX_SEC))


def notifications_send(*, limit: int = BATCH) -> SendReport:
    """Send due notifications to every target; a failing target is retried with backoff, never raised."""
    report = SendReport()
    now = timezone.now()
    due = Notification.objects.filter(state=Notification.State.PENDING, next_attempt_at__lte=now).order_by(
        "next_attempt_at"
    )[:limit]
    for notification in due:
        lease = timezone.now() + LEASE
        mine = Notification.objects.filter(
            pk=notification.pk,
            state=Notification.State.PENDING,
            next_attempt_at=notification.next_attempt_at,
        ).update(next_attempt_at=lease, attempts=F("attempts") + 1)
        if not mine:
            continue
        attempts = notification.attempts + 1
        urls = targets(escalate=notification.escalate)
        delivered = list(notification.delivered_to)
        errors = []
        for url in urls:
            if target_id(url) in delivered:
                continue
            delivery = send(url, title=notification.title, body=text(notification))
            if delivery.ok:
                delivered.append(target_id(url))
            else:
                errors.append(delivery.error)
        for error in errors:
            log.warning("notification %s (attempt %d): %s", notification.pk, attempts, error)
        done = timezone.now()
        owned = Notification.objects.filter(pk=notification.pk, next_attempt_at=lease)
        owned.update(delivered_to=delivered)
        if not errors:
            owned.update(state=Notification.State.SENT, sent_at=done, last_error="" if urls else "no targets")
            report.sent += 1
        elif attempts >= MAX_ATTEMPTS:
            owned.update(state=Notification.State.FAILED, last_error="; ".join(errors))
            report.failed += 1
        else:
            owned.update(next_attempt_at=done + _backoff(attempts), last_error="; ".join(errors))
            report.retrying += 1
    return report


def notifications_prune(*, before: datetime) -> int:
    """Delete notifications sent, or given up (failed, by creation), before `before`; pending ones stay."""
    state = Notification.State
    sent = Q(state=state.SENT, sent_at__lt=before)
    failed = Q(state=state.FAILED, created_at__lt=before)
    return delete_in_batches(Notification.objects.filter(sent | failed))
