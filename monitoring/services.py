"""The monitor (SPEC sections 6 and 10): agents' liveness, ACK deadlines, our own sync health, notifications.

It follows healthchecks' `sendalerts`: every state change is *claimed* with a conditional UPDATE
(`... WHERE status = old`) and acted on only by the worker whose UPDATE changed the row, so two workers
or a restart never act twice. A claim that must raise an escalation creates its `Notification` row in
the same transaction: that row is the durable record of the claim. The escalation is then written to
the SSOT outside any transaction, with a msg_id derived from the episode (`escalation_raise` is
idempotent on it); if that write fails (SSOT down, worker killed), a later check finds the notification
without its escalation and writes it then, from the same data. Notifications are sent afterwards, by
`monitoring.notify.notifications_send`, never inside a check.

Our outage is not theirs: while the SSOT cannot be read, the sync fails or the mirror is stale, no
agent is timed out and no ACK is called late (the write or the ACK may sit unsynced); one escalation
from `system` per episode says so instead: `ssot_sync_failed` when the SSOT answers but the sync itself
fails (the database, our code), `ssot_sync_stale` otherwise. An escalation cannot reach an unreachable
SSOT, so it is notified at once and written to the SSOT when the SSOT answers again (then resolved as
soon as a sync succeeds).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Subquery, Value, When, Window
from django.db.models.functions import Substr
from django.utils import timezone

import amp
from core.errors import Conflict, ServiceError, WrongState
from monitoring import approvals, envelopes, events, integrity
from monitoring.envelopes import (
    ACK_TIMEOUT,
    APPROVAL_EXPIRED,
    HEARTBEAT_TIMEOUT,
    MSG_SUBJECT,
    POLICY_INVALID,
    POLICY_SUBJECT,
    SYNC_FAILED,
    SYNC_STALE,
    SYNC_SUBJECT,
    SYSTEM,
    ack_escalation_id,
    approval_escalation_id,
    iso,
    policy_escalation_id,
    sync_escalation_id,
    timeout_escalation_id,
)
from monitoring.models import ApprovalWait, Notification
from ssot import events as ssot_events
from ssot import services as ssot_services
from ssot.locking import exclusive
from ssot.models import Ack, Agent, Escalation, Message, QuarantinedFile, SyncState, Task
from ssot.paths import POLICY_PATH
from ssot.policy import policy_in_force
from ssot.stores.base import StoreError
from ssot.stores.factory import branch, get_store, repository_label
from ssot.sync import UNAVAILABLE, sync_state

log = logging.getLogger(__name__)

MONITOR_FRACTION = 0.6
# django-q2's scheduler looks for due schedules about every 30 s (60 guard cycles of 0.5 s).
SCHEDULER_SLACK_SEC = 30

# Overdue messages claimed per scan: each is one SSOT commit (GitHub allows 80 writes a minute).
ACK_SCAN_LIMIT = 50
# A claim younger than this is still being written by the worker that made it.
CLAIM_GRACE = timedelta(seconds=30)
OPEN = (Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED)
# A sync that fails while the SSOT answers is escalated after this many failures in a row (or once
# stale): one failure may be a moment's lock; two polls in a row are an episode.
SYNC_FAILURES_TO_ESCALATE = 2
SYNC_KINDS = (SYNC_STALE, SYNC_FAILED)


def schedule_minutes(seconds: int) -> int:
    """How often a django-q2 schedule meant for every `seconds` runs: whole minutes, at least one."""
    return max(1, math.ceil(seconds / 60))


def sync_stale_after() -> timedelta:
    """The mirror is stale once two polls and one check have passed without a successful sync.

    Counted in the polls' real cadence (whole minutes, found up to ~30 s late by django-q2's
    scheduler), not in the configured seconds, or a healthy mirror would look stale between polls.
    """
    poll = schedule_minutes(settings.SSOT_POLL_SEC) * 60
    check = schedule_minutes(settings.HEARTBEAT_INTERVAL_SEC) * 60
    return timedelta(seconds=2 * poll + check + SCHEDULER_SLACK_SEC)


def expected_status(now: datetime) -> Case:
    """An agent's status from its last write, in SQL: > timeout -> timeout, > 60 % -> monitor, else ok."""
    timeout = timedelta(seconds=settings.HEARTBEAT_TIMEOUT_SEC)
    return Case(
        When(last_seen__isnull=True, then=Value(Agent.Status.UNKNOWN)),
        When(last_seen__lt=now - timeout, then=Value(Agent.Status.TIMEOUT)),
        When(last_seen__lt=now - timeout * MONITOR_FRACTION, then=Value(Agent.Status.MONITOR)),
        default=Value(Agent.Status.OK),
    )


# -- the sync's health ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncHealth:
    """Whether the mirror can be trusted to call agents silent and ACKs late, and if not, why."""

    trusted: bool
    reachable: bool
    escalate: bool
    reason: str
    last_success_at: datetime | None
    kind: str = SYNC_STALE

    @property
    def msg_id(self) -> str:
        return sync_escalation_id(self.last_success_at, self.kind)

    @property
    def episode_ids(self) -> tuple[str, ...]:
        """Both escalations this episode could have raised: one of them is enough."""
        return tuple(sync_escalation_id(self.last_success_at, kind) for kind in SYNC_KINDS)


def sync_health(state: SyncState, now: datetime) -> SyncHealth:
    """Read the SSOT head and judge the mirror: unreadable, failing, or stale means not trusted.

    `kind`: SYNC_FAILED when the SSOT answers but the sync itself failed (not on reading the SSOT),
    SYNC_STALE otherwise.
    """
    problems = []
    try:
        get_store().head()
        reachable = True
    except (StoreError, ImproperlyConfigured, OSError) as exc:
        reachable = False
        problems.append(f"the SSOT head cannot be read ({str(exc)[:300]})")
    if state.consecutive_errors:
        problems.append(f"the last {state.consecutive_errors} sync(s) failed: {state.last_error[:300]}")
    age = now - state.last_success_at if state.last_success_at else None
    stale = age is not None and age > sync_stale_after()
    if age is None:
        problems.append("the SSOT has never been synced successfully")
    elif stale:
        problems.append(f"no successful sync for {int(age.total_seconds())} s")
    # A failed poll or two is not yet an outage worth a message: suppress at once, escalate once stale,
    # or once the sync itself has failed twice in a row while the SSOT answers.
    ours = reachable and state.consecutive_errors > 0 and not state.last_error.startswith(UNAVAILABLE)
    escalate = bool(problems) and (
        stale
        or (age is None and (state.consecutive_errors > 0 or not reachable))
        or (ours and state.consecutive_errors >= SYNC_FAILURES_TO_ESCALATE)
    )
    return SyncHealth(
        trusted=not problems,
        reachable=reachable,
        escalate=escalate,
        reason="; ".join(problems),
        last_success_at=state.last_success_at,
        kind=SYNC_FAILED if ours else SYNC_STALE,
    )


# -- what a check did ----------------------------------------------------------------------------------


@dataclass
class CheckReport:
    now: datetime
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)
    failed_writes: list[str] = field(default_factory=list)
    suppressed: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        return data

    def lines(self) -> list[str]:
        """What changed, one line each, for the command's output."""
        out = [f"{name}: {old} -> {new}" for name, old, new in self.changes]
        out += [f"ACK overdue: {msg_id}" for msg_id in self.overdue]
        out += [f"escalation written: {msg_id}" for msg_id in self.raised]
        out += [f"escalation resolved: {msg_id}" for msg_id in self.resolved]
        out += [f"escalation not written yet (retried by the next check): {m}" for m in self.failed_writes]
        out += [f"notification queued: {title}" for title in self.notified]
        if self.suppressed:
            out.append(f"timeouts and ACK deadlines suspended: {self.suppressed}")
        return out


# -- the check ----------------------------------------------------------------------------------------------


class Monitor:
    """One pass of the monitor at `now`; each step is a plain method the tests can call on its own."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or timezone.now()
        self.report = CheckReport(now=self.now)
        self.names = [name for name in settings.AGENTS if amp.is_safe_id(name)]
        self.health: SyncHealth  # read by `read_health`, the first step

    # -- the steps, in the order `heartbeat_check` runs them ---------------------------------------

    def read_health(self) -> SyncHealth:
        """One query: the sync's state, with how many monitored agents have a row (creating the others)."""
        present = (
            Agent.objects.filter(name__in=self.names)
            .order_by()
            .annotate(n=Window(Count("id")))
            .values("n")[:1]
        )
        where = {"backend": get_store().backend, "repository": repository_label(), "branch": branch()}
        found = SyncState.objects.filter(**where).annotate(agents_present=Subquery(present)).first()
        if found is None:
            state = sync_state()
            agents_present = Agent.objects.filter(name__in=self.names).count()
        else:
            state, agents_present = found, found.agents_present
        if (agents_present or 0) < len(self.names):
            Agent.objects.bulk_create([Agent(name=name) for name in self.names], ignore_conflicts=True)
        self.health = sync_health(state, self.now)
        if not self.health.trusted:
            self.report.suppressed = self.health.reason
        return self.health

    def retry_unwritten(self) -> None:
        """Write the escalations that were claimed (a notification exists) but are not in the SSOT yet."""
        if not self.health.reachable:
            return
        unwritten = (
            Notification.objects.exclude(escalation_msg_id="")
            .filter(created_at__lt=self.now - CLAIM_GRACE)
            .filter(~Exists(Escalation.objects.filter(msg_id=OuterRef("escalation_msg_id"))))
            .order_by("created_at")
        )
        first: dict[str, Notification] = {}
        for notification in unwritten:
            first.setdefault(notification.escalation_msg_id, notification)
        for notification in first.values():
            self.write_escalation(notification)

    def report_sync(self) -> None:
        """Raise one sync escalation per episode (ssot_sync_failed or ssot_sync_stale, whichever comes
        first), notified even if the SSOT cannot take it."""
        health = self.health
        if not health.escalate:
            return
        msg_id = health.msg_id
        with exclusive("monitor-sync"):
            episode = health.episode_ids
            if (
                Escalation.objects.filter(msg_id__in=episode).exists()
                or Notification.objects.filter(escalation_msg_id__in=episode).exists()
            ):
                return
            title = "the sync fails" if health.kind == SYNC_FAILED else "monitoring is blind"
            notification = self._notification(
                f"[critical] {health.kind}: {title}",
                f"The control plane cannot trust its mirror of the SSOT: {health.reason}. Agents are not "
                f"timed out and ACK deadlines are not enforced until the sync is healthy again.",
                msg_id,
            )
        log.warning("sync is unhealthy (%s); %s claimed", health.reason, msg_id)
        if health.reachable:
            self.write_escalation(notification)
        else:
            self.report.failed_writes.append(msg_id)

    def report_policy(self) -> None:
        """One policy_invalid escalation per invalid version of the policy file (the previous valid policy
        stays in force meanwhile); resolved once the file is valid again or gone."""
        quarantined = QuarantinedFile.objects.filter(path=POLICY_PATH).only("blob_sha", "errors").first()
        current = policy_escalation_id(quarantined.blob_sha) if quarantined else ""
        for escalation in Escalation.objects.filter(
            escalation_type=POLICY_INVALID, subject=POLICY_SUBJECT, status__in=OPEN
        ).exclude(msg_id=current):
            source = policy_in_force().source
            self._resolve(
                escalation.msg_id,
                f"{POLICY_PATH} changed since: the policy in force is {source[:12]}",
                notify_title=f"[recovered] {POLICY_INVALID}: {POLICY_PATH} replaced",
            )
        if quarantined is None:
            return
        with exclusive("monitor-policy"):
            if self._already_claimed(current):
                return
            problems = "; ".join(f"{e.get('path')}: {e.get('message')}" for e in quarantined.errors[:5])
            in_force = policy_in_force().source
            notification = self._notification(
                f"[warning] {POLICY_INVALID}: {POLICY_PATH} is quarantined",
                f"{POLICY_PATH} (blob {quarantined.blob_sha[:12]}) is invalid: {problems}. The previous "
                f"valid policy ({in_force[:12]}) stays in force until the file is fixed.",
                current,
            )
        log.warning("%s is invalid; %s claimed", POLICY_PATH, current)
        if self.health.reachable:
            self.write_escalation(notification)
        else:
            self.report.failed_writes.append(current)

    def report_integrity(self) -> None:
        """One escalation per commit that rewrote mirrored audit lines, one per task version decided
        outside the control plane (monitoring/integrity.py); claimed once, like every escalation. The
        flags are the mirror's: while it is not trusted (the sync fails or is stale), they wait."""
        if not self.health.trusted:
            return
        for item in integrity.due():
            with exclusive("monitor-integrity"):
                if self._already_claimed(item.msg_id):
                    continue
                notification = self._notification(item.title, item.body, item.msg_id)
            log.warning("%s; %s claimed", item.title, item.msg_id)
            if self.health.reachable:
                self.write_escalation(notification)
            else:
                self.report.failed_writes.append(item.msg_id)

    def check_agents(self) -> None:
        """One query finds the agents whose status is wrong or whose recovery is not yet resolved."""
        candidates = (
            Agent.objects.filter(name__in=self.names)
            .annotate(expected=expected_status(self.now))
            .filter(~Q(expected=F("status")) | (~Q(timeout_msg_id="") & ~Q(status=Agent.Status.TIMEOUT)))
        )
        for agent in candidates:
            if agent.timeout_msg_id and agent.status != Agent.Status.TIMEOUT:
                self.resolve_episode(agent)
            if agent.expected == agent.status:
                continue
            if agent.expected == Agent.Status.TIMEOUT:
                if not self.health.trusted:
                    # Silent by our mirror, but the mirror is not to be trusted: a warning at most.
                    if agent.status != Agent.Status.MONITOR:
                        self.move(agent, Agent.Status.MONITOR)
                    continue
                notification = self.claim_timeout(agent)
                if notification is not None:
                    self.write_escalation(notification)
            elif agent.status == Agent.Status.TIMEOUT:
                if self.claim_recovery(agent, agent.expected):
                    self.resolve_episode(agent)
            else:
                self.move(agent, agent.expected)

    def settle_escalations(self) -> None:
        """One query: open escalations to resolve (late ACK, healthy sync) or to notify (from agents)."""
        acked = Exists(
            Message.objects.filter(
                msg_id=Substr(OuterRef("subject"), len(MSG_SUBJECT) + 1), ack_state=Message.AckState.ACKED
            )
        )
        notified = Exists(Notification.objects.filter(escalation_msg_id=OuterRef("msg_id")))
        wanted = Q(escalation_type=ACK_TIMEOUT, subject__startswith=MSG_SUBJECT, acked=True)
        wanted |= Q(status=Escalation.Status.OPEN, notified=False)
        if self.health.trusted:
            wanted |= Q(escalation_type__in=SYNC_KINDS, subject=SYNC_SUBJECT)
        settle = (
            Escalation.objects.filter(status__in=OPEN)
            .annotate(acked=acked, notified=notified)
            .filter(wanted)
            .order_by("created_at")
        )
        for escalation in settle:
            late_ack = escalation.acked and escalation.escalation_type == ACK_TIMEOUT
            if late_ack and self._acknowledged_late(escalation):
                continue
            sync_back = escalation.escalation_type in SYNC_KINDS and self.health.trusted
            if sync_back and self._sync_recovered(escalation):
                continue
            if not escalation.notified:
                self._notify_foreign(escalation)

    def scan_acks(self) -> None:
        """One query on the partial index: pending messages past their deadline, each claimed once."""
        if not self.health.trusted:
            return
        overdue = (
            Message.objects.filter(ack_state=Message.AckState.PENDING, ack_deadline__lt=self.now)
            .order_by("ack_deadline")
            .defer("envelope", "payload")[:ACK_SCAN_LIMIT]
        )
        for message in overdue:
            notification = self.claim_overdue(message)
            if notification is not None:
                self.write_escalation(notification)

    def watch_approvals(self) -> None:
        """The safety net of `approvals.watch` (a lost queue entry, a sync too large for events), then
        each waiting task's reminder (every APPROVAL_REMIND_SEC) and expiry (APPROVAL_EXPIRE_SEC).
        Not while the mirror cannot be trusted: what it says waits may have been decided meanwhile."""
        if not self.health.trusted:
            return
        for task_id in approvals.missing_watches():
            notification = approvals.watch(task_id, now=self.now)
            if notification is not None:
                self.report.notified.append(notification.title)
        waits = ApprovalWait.objects.filter(active=True, started_at__isnull=False).order_by("started_at")
        tasks = {t.task_id: t for t in Task.objects.filter(task_id__in=[w.task_id for w in waits])}
        for wait in waits:
            task = tasks.get(wait.task_id)
            if task is None or task.status != Task.AWAITING_APPROVAL or wait.started_at is None:
                continue
            waited = self.now - wait.started_at
            expire = settings.APPROVAL_EXPIRE_SEC
            if expire > 0 and waited >= timedelta(seconds=expire):
                if not wait.expired_msg_id and self.health.reachable:
                    notification = self.claim_approval_expired(wait, task)
                    if notification is not None:
                        self.write_escalation(notification)
                continue  # expired: the escalation's reminders take over
            remind = settings.APPROVAL_REMIND_SEC
            due = int(waited.total_seconds() // remind) if remind > 0 else 0
            if due > wait.reminders:
                self.claim_approval_reminder(wait, task, due)
        self.resolve_decided_expiries()

    def claim_approval_reminder(self, wait: ApprovalWait, task: Task, due: int) -> None:
        """The `due`-th reminder (a check that missed some sends one, not each)."""
        with transaction.atomic():
            claimed = ApprovalWait.objects.filter(
                pk=wait.pk, active=True, started_at=wait.started_at, reminders=wait.reminders
            ).update(reminders=due)
            if not claimed:
                return
            hours = (self.now - wait.started_at).total_seconds() / 3600 if wait.started_at else 0
            self._notification(
                f"[reminder] {approvals.subject(task)}",
                f"Still waiting for approval after {hours:.1f} h (reminder {due}).\n"
                f"{approvals.details(task)}",
                "",
                link=approvals.task_link(task.task_id, task.blob_sha),
                escalate=due >= settings.NOTIFY_ESCALATE_AFTER,
            )

    def claim_approval_expired(self, wait: ApprovalWait, task: Task) -> Notification | None:
        """One `approval_expired` escalation per wait; the task itself is never decided here."""
        assert wait.started_at is not None
        msg_id = approval_escalation_id(task.task_id, wait.started_at)
        with transaction.atomic():
            claimed = ApprovalWait.objects.filter(
                pk=wait.pk, active=True, started_at=wait.started_at, expired_msg_id=""
            ).update(expired_msg_id=msg_id)
            if not claimed or self._already_claimed(msg_id):
                return None
            hours = (self.now - wait.started_at).total_seconds() / 3600
            notification = self._notification(
                f"[warning] {APPROVAL_EXPIRED}: {approvals.subject(task)}",
                f"Task {task.task_id} has waited {hours:.1f} h for approval (since {iso(wait.started_at)}); "
                f"nobody approved or rejected it. The control plane does not decide it.",
                msg_id,
            )
        log.warning("approval of %s expired; %s claimed", task.task_id, msg_id)
        return notification

    def resolve_decided_expiries(self) -> None:
        """An open approval_expired escalation whose task no longer waits (decided) is resolved."""
        waiting = ApprovalWait.objects.filter(active=True).exclude(expired_msg_id="").values("expired_msg_id")
        done = Escalation.objects.filter(status__in=OPEN, escalation_type=APPROVAL_EXPIRED).exclude(
            msg_id__in=waiting
        )
        for escalation in done:
            task = Task.objects.filter(task_id=escalation.task_id).first()
            state = f"is {task.status}" if task is not None else "no longer exists"
            self._resolve(escalation.msg_id, f"decided: task {escalation.task_id} {state}", notify_title=None)

    def remind_escalations(self) -> None:
        """Open escalations are re-notified every ESCALATION_REMIND_SEC until acknowledged or resolved;
        from the NOTIFY_ESCALATE_AFTER-th reminder on, NOTIFY_ESCALATE_URLS get them too. The n-th
        reminder of an escalation is claimed by its unique key."""
        every = settings.ESCALATION_REMIND_SEC
        if every <= 0:
            return
        for escalation in Escalation.objects.filter(status=Escalation.Status.OPEN).order_by("created_at"):
            sent = Notification.objects.filter(escalation_msg_id=escalation.msg_id)
            last = sent.order_by("-created_at").values_list("created_at", flat=True).first()
            if last is None or self.now - last < timedelta(seconds=every):
                continue  # not notified yet (settle_escalations does it), or not due
            n = sent.filter(key__startswith=f"remind:{escalation.msg_id}:").count() + 1
            try:
                with transaction.atomic():
                    self._notification(
                        f"[reminder] {escalation.escalation_type}: task {escalation.task_id} "
                        f"(open since {iso(escalation.created_at)})",
                        f"Still open, neither acknowledged nor resolved (reminder {n}).\n"
                        f"{escalation.description}",
                        escalation.msg_id,
                        key=f"remind:{escalation.msg_id}:{n}",
                        escalate=n >= settings.NOTIFY_ESCALATE_AFTER,
                    )
            except IntegrityError:
                self.report.notified.pop()  # another worker claimed this reminder

    # -- claims: a conditional UPDATE, and what goes with it in the same transaction -----------------

    def move(self, agent: Agent, new: str) -> bool:
        """A status change with nothing to write to the SSOT (unknown/ok/monitor)."""
        previous = agent.status
        with transaction.atomic():
            claimed = Agent.objects.filter(pk=agent.pk, status=previous).update(
                status=new, status_since=self.now
            )
            if claimed:
                self._changed(agent, previous, new)
        return bool(claimed)

    def claim_timeout(self, agent: Agent) -> Notification | None:
        """Enter `timeout`: claim the episode's escalation id; the notification is the claim's record."""
        previous, last_seen = agent.status, agent.last_seen
        if last_seen is None:  # never seen: `unknown`, never timed out
            return None
        msg_id = timeout_escalation_id(agent.name, last_seen)
        with transaction.atomic():
            claimed = Agent.objects.filter(pk=agent.pk, status=previous, timeout_msg_id="").update(
                status=Agent.Status.TIMEOUT, status_since=self.now, timeout_msg_id=msg_id
            )
            if not claimed:
                return None
            agent.timeout_msg_id = msg_id
            self._changed(agent, previous, Agent.Status.TIMEOUT)
            if self._already_claimed(msg_id):
                return None
            elapsed = self.now - last_seen
            notification = self._notification(
                f"[critical] {HEARTBEAT_TIMEOUT}: {agent.name}",
                f"{agent.name.upper()} has not written to SSOT for {int(elapsed.total_seconds() // 60)} "
                f"minutes. Last heartbeat: {iso(agent.last_seen)}. "
                f"System is suspending dependent operations.",
                msg_id,
            )
        log.warning("%s timed out (silent for %s); %s claimed", agent.name, elapsed, msg_id)
        return notification

    def claim_recovery(self, agent: Agent, new: str) -> bool:
        """Leave `timeout`: the agent wrote again; its escalation is resolved next (`resolve_episode`)."""
        with transaction.atomic():
            claimed = Agent.objects.filter(pk=agent.pk, status=Agent.Status.TIMEOUT).update(
                status=new, status_since=self.now
            )
            if not claimed:
                return False
            self._changed(agent, Agent.Status.TIMEOUT, new)
            if agent.timeout_msg_id:
                self._notification(
                    f"[recovered] heartbeat: {agent.name}",
                    f"{agent.name} wrote to the SSOT again at {iso(agent.last_seen)} "
                    f"({agent.last_seen_via or 'unknown'}); it is {new} now.",
                    agent.timeout_msg_id,
                )
        log.info("%s recovered (%s)", agent.name, new)
        return True

    def claim_overdue(self, message: Message) -> Notification | None:
        """A message past its ACK deadline: pending -> overdue, once; the notification records the claim."""
        msg_id = ack_escalation_id(message.msg_id)
        with transaction.atomic():
            claimed = Message.objects.filter(pk=message.pk, ack_state=Message.AckState.PENDING).update(
                ack_state=Message.AckState.OVERDUE
            )
            if not claimed:
                return None
            message.ack_state = Message.AckState.OVERDUE
            ssot_events.broadcast_on_commit(ssot_events.message(message))
            self.report.overdue.append(message.msg_id)
            if self._already_claimed(msg_id):
                return None
            notification = self._notification(
                f"[warning] {ACK_TIMEOUT}: {message.msg_id}",
                f"{message.recipient} has not acknowledged {message.type} {message.msg_id} from "
                f"{message.sender} (task {message.task_id}); "
                f"the ACK was due at {iso(message.ack_deadline)}.",
                msg_id,
            )
        log.warning("ACK of %s overdue since %s; %s claimed", message.msg_id, message.ack_deadline, msg_id)
        return notification

    # -- writing to the SSOT (outside any transaction) ---------------------------------------------------

    def write_escalation(self, notification: Notification) -> bool:
        """Write the escalation a claim recorded; idempotent on its msg_id. False if it must wait."""
        msg_id = notification.escalation_msg_id
        try:
            envelope = envelopes.build(notification)
        except amp.AmpValidationError as exc:
            log.error("cannot build escalation %s: %s", msg_id, exc.errors)
            return False
        if envelope is None:
            # Its subject is gone from the mirror (deleted from the SSOT): drop the claim, keep the notice.
            log.warning("escalation %s: its subject no longer exists; not written", msg_id)
            Notification.objects.filter(escalation_msg_id=msg_id).update(escalation_msg_id="")
            return False
        try:
            written = ssot_services.escalation_raise(envelope=envelope, actor=SYSTEM)
        except Conflict:
            # Same id, other content (a task written since): the escalation of this episode is there.
            if not _in_ssot(msg_id):
                self.report.failed_writes.append(msg_id)
                return False
        except ServiceError as exc:
            log.warning("escalation %s not written yet (%s); the next check retries", msg_id, exc)
            self.report.failed_writes.append(msg_id)
            return False
        else:
            if written.created:
                self.report.raised.append(msg_id)
        return True

    def resolve_episode(self, agent: Agent) -> None:
        """Resolve the heartbeat_timeout escalation of a recovered agent, then forget the episode."""
        msg_id = agent.timeout_msg_id
        when = f"at {iso(agent.last_seen)}" if agent.last_seen else "again"
        reason = f"recovered: {agent.name} wrote to the SSOT {when} ({agent.last_seen_via or 'unknown'})"
        if self._resolve(msg_id, reason, notify_title=None):
            Agent.objects.filter(pk=agent.pk, timeout_msg_id=msg_id).exclude(
                status=Agent.Status.TIMEOUT
            ).update(timeout_msg_id="")
            agent.timeout_msg_id = ""

    # -- helpers --------------------------------------------------------------------------------------------

    def _changed(self, agent: Agent, previous: str, new: str) -> None:
        agent.status, agent.status_since = new, self.now
        self.report.changes.append((agent.name, previous, new))
        ssot_events.broadcast_on_commit(events.agent_health(agent, previous=previous, now=self.now))

    def _notification(
        self, title: str, body: str, msg_id: str, *, link: str = "", key: str = "", escalate: bool = False
    ) -> Notification:
        self.report.notified.append(title)
        return Notification.objects.create(
            title=title[:250],
            body=body,
            escalation_msg_id=msg_id,
            next_attempt_at=self.now,
            link=link or (approvals.escalation_link(msg_id) if msg_id else ""),
            key=key,
            escalate=escalate,
        )

    @staticmethod
    def _already_claimed(msg_id: str) -> bool:
        """The escalation exists, or was claimed before (a mirror rebuilt from the SSOT re-claims)."""
        return (
            Escalation.objects.filter(msg_id=msg_id).exists()
            or Notification.objects.filter(escalation_msg_id=msg_id).exists()
        )

    def _resolve(self, msg_id: str, reason: str, *, notify_title: str | None) -> bool:
        """Resolve an open escalation once (under a lock); True when it is resolved or will never exist."""
        if not self.health.reachable:
            return False
        with exclusive("monitor-resolve"):
            escalation = Escalation.objects.filter(msg_id=msg_id).first()
            if escalation is None:
                # Not mirrored yet (retried), unless nothing will ever write it.
                return not Notification.objects.filter(escalation_msg_id=msg_id).exists()
            if escalation.status not in OPEN:
                return True
            try:
                ssot_services.escalation_resolve(escalation_id=escalation.pk, actor=SYSTEM, reason=reason)
            except WrongState:
                return True
            except ServiceError as exc:
                log.warning("escalation %s not resolved yet (%s); the next check retries", msg_id, exc)
                return False
            if notify_title:
                self._notification(notify_title, reason, msg_id)
        self.report.resolved.append(msg_id)
        return True

    def _acknowledged_late(self, escalation: Escalation) -> bool:
        msg_id = escalation.subject[len(MSG_SUBJECT) :]
        ack = Ack.objects.filter(msg_id=msg_id).first()
        detail = f" by {ack.by} at {iso(ack.at)} (via {ack.via})" if ack else ""
        return self._resolve(
            escalation.msg_id,
            f"acknowledged late: {msg_id}{detail}",
            notify_title=f"[recovered] {ACK_TIMEOUT}: {msg_id} acknowledged",
        )

    def _sync_recovered(self, escalation: Escalation) -> bool:
        return self._resolve(
            escalation.msg_id,
            f"recovered: the SSOT sync is healthy again at {iso(self.now)}",
            notify_title=f"[recovered] {escalation.escalation_type}: the sync is healthy again",
        )

    def _notify_foreign(self, escalation: Escalation) -> None:
        """An open escalation nobody was told about (an agent raised it): notify it once."""
        if escalation.status != Escalation.Status.OPEN:
            return
        with exclusive("monitor-notify"):
            if Notification.objects.filter(escalation_msg_id=escalation.msg_id).exists():
                return
            self._notification(
                f"[{escalation.severity}] {escalation.escalation_type}: task {escalation.task_id} "
                f"(from {escalation.triggered_by})",
                escalation.description,
                escalation.msg_id,
            )


def _in_ssot(msg_id: str) -> bool:
    store = get_store()
    try:
        head = store.head()
        return head is not None and store.entry(head, ssot_services.message_file(msg_id)) is not None
    except StoreError:
        return False


# -- entry points -------------------------------------------------------------------------------------------


def heartbeat_check(*, now: datetime | None = None) -> Monitor:
    """Agents' liveness and the sync's health, plus resolutions; returns the monitor (its `.report`)."""
    monitor = Monitor(now)
    monitor.read_health()
    monitor.retry_unwritten()
    monitor.report_sync()
    monitor.report_policy()
    monitor.report_integrity()
    monitor.check_agents()
    monitor.settle_escalations()
    monitor.watch_approvals()
    monitor.remind_escalations()
    return monitor


def ack_scan(*, now: datetime | None = None, monitor: Monitor | None = None) -> CheckReport:
    """Claim the messages past their ACK deadline (only while the mirror is trusted)."""
    if monitor is None:
        monitor = Monitor(now)
        monitor.read_health()
    monitor.scan_acks()
    return monitor.report


def run_checks(*, now: datetime | None = None) -> CheckReport:
    """One heartbeat check and one ACK scan: what the schedule and `manage.py heartbeat_check` run."""
    monitor = heartbeat_check(now=now)
    return ack_scan(monitor=monitor)
