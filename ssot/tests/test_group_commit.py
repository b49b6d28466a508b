"""Group commit (issue 16): changes queued on the SSOT write lock are drafted into one commit, in order.

A first writer is held inside its draft at a gate (it leads: it holds the lock); the writers that arrive
meanwhile queue; released, the next leader drafts them all into one commit. Each draft is checked against
the head plus the drafts before it; one that fails gets its own error and the others commit.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest
from django.db import OperationalError, close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from core.errors import Conflict, SsotBusy, WrongState
from ssot import services, writing
from ssot.documents import dump_json
from ssot.mirror import MirrorFailed
from ssot.models import AuditEntry, Message, Task
from ssot.sync import sync
from ssot.verify import differences
from testing.api import jwt_client, make_user
from testing.content import commit, dispatch, task_doc

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("deciders"),
]


class _Arrivals(deque):
    """The write queue, announcing each arrival (so a test waits for writers to queue without sleeping)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Semaphore(0)

    def append(self, item: Any) -> None:
        super().append(item)
        self.arrived.release()


@pytest.fixture
def store(any_store):
    commit(any_store, {"README.md": b"the SSOT"})
    sync()
    return any_store


@pytest.fixture
def arrivals(monkeypatch) -> _Arrivals:
    queue = _Arrivals()
    monkeypatch.setattr(writing, "_queue", queue)
    return queue


class Held:
    """A first writer held inside its draft (so it holds the write lock) until `release()`."""

    def __init__(self, arrivals: _Arrivals) -> None:
        self.arrivals = arrivals
        self.inside = threading.Event()
        self.gate = threading.Event()
        self.results: dict[str, Any] = {}
        self.threads: list[threading.Thread] = []
        self.start(
            "held",
            lambda: services.message_create(raw=dispatch("T-0", n=999), sender="coordinator"),
            hold=True,
        )
        assert self.inside.wait(10)

    def start(self, name: str, call: Callable[[], Any], *, hold: bool = False) -> None:
        def run() -> None:
            try:
                if hold:
                    real = writing._draft

                    def held_draft(view, batch):
                        self.inside.set()
                        assert self.gate.wait(10)
                        return real(view, batch)

                    writing._draft = held_draft
                    try:
                        self.results[name] = call()
                    finally:
                        writing._draft = real
                else:
                    self.results[name] = call()
            except Exception as exc:
                self.results[name] = exc
            finally:
                close_old_connections()

        thread = threading.Thread(target=run, name=name)
        self.threads.append(thread)
        thread.start()
        if not hold:
            assert self.arrivals.arrived.acquire(timeout=10)  # queued behind the held writer

    def release(self) -> dict[str, Any]:
        self.gate.set()
        for thread in self.threads:
            thread.join(20)
        return self.results


def _hold(arrivals: _Arrivals) -> Held:
    holder = Held(arrivals)
    assert arrivals.arrived.acquire(timeout=10)  # the held writer itself queued first
    return holder


@pytest.fixture
def held(arrivals, store) -> Iterator[Held]:
    holder = _hold(arrivals)
    yield holder
    holder.release()


def _log(git_dir: Path) -> list[pygit2.Commit]:
    repo = pygit2.Repository(str(git_dir))
    return list(repo.walk(repo.head.target))


def test_writers_queued_behind_a_commit_share_the_next_commit_in_arrival_order(held, git_dir):
    before = len(_log(git_dir))
    for n in range(8):
        message = dispatch(f"T-{n}", n=n)
        held.start(
            f"m{n}", lambda message=message: services.message_create(raw=message, sender="coordinator")
        )

    results = held.release()

    assert all(results[f"m{n}"].created for n in range(8)), results
    log = _log(git_dir)
    assert len(log) == before + 2  # the held writer's commit, then one commit for the eight
    batch = log[0]
    assert batch.message.splitlines()[0] == "8 changes"
    assert [line.split()[1] for line in batch.message.splitlines()[2:]] == [
        dispatch(f"T-{n}", n=n)["msg_id"] for n in range(8)
    ]
    assert Message.objects.count() == 9
    sync()
    assert differences(writing.get_store()) == []


def test_a_failing_draft_gets_its_own_error_while_the_others_commit(arrivals, store, git_dir):
    taken = dispatch("T-1", n=1)
    other = {**taken, "payload": {**taken["payload"], "branch": "feature/other"}}
    commit(store, {f"messages/{taken['msg_id']}.json": other})
    sync()
    held = _hold(arrivals)
    before = len(_log(git_dir))
    good = [dispatch(f"T-{n}", n=n) for n in (2, 3)]
    held.start("good-1", lambda: services.message_create(raw=good[0], sender="coordinator"))
    held.start("taken", lambda: services.message_create(raw=taken, sender="coordinator"))
    held.start("good-2", lambda: services.message_create(raw=good[1], sender="coordinator"))

    results = held.release()

    assert isinstance(results["taken"], Conflict)
    assert "already exists with other content" in results["taken"].detail
    assert results["good-1"].created and results["good-2"].created
    assert len(_log(git_dir)) == before + 2
    assert set(Message.objects.values_list("msg_id", flat=True)) >= {m["msg_id"] for m in good}


def test_each_draft_sees_the_drafts_before_it(arrivals, store, git_dir):
    """A resend in the same batch writes nothing; a second approval of one task meets the first."""
    commit(store, {"tasks/T-5.json": task_doc("T-5", status="awaiting_approval")})
    sync()
    held = _hold(arrivals)
    message = dispatch("T-4", n=4)
    held.start("first", lambda: services.message_create(raw=message, sender="coordinator"))
    held.start("resend", lambda: services.message_create(raw=dict(message), sender="coordinator"))
    held.start("approve", lambda: services.task_approve(task_id="T-5", actor="alice", reason="ok"))
    held.start("again", lambda: services.task_approve(task_id="T-5", actor="bob", reason="me too"))

    results = held.release()

    assert results["first"].created is True
    assert results["resend"].created is False
    assert results["approve"].status == "approved"
    assert isinstance(results["again"], WrongState)
    assert Task.objects.get(task_id="T-5").status == "approved"
    assert _log(git_dir)[0].message.splitlines()[0] == "2 changes"


def test_each_change_keeps_its_own_audit_line(arrivals, store, git_dir):
    for n in (6, 7):
        commit(store, {f"tasks/T-{n}.json": task_doc(f"T-{n}", status="awaiting_approval")})
    sync()
    held = _hold(arrivals)
    held.start("a", lambda: services.task_approve(task_id="T-6", actor="alice", reason="first"))
    held.start("b", lambda: services.task_reject(task_id="T-7", actor="bob", reason="second"))

    results = held.release()

    assert results["a"].status == "approved" and results["b"].status == "rejected"
    rows = list(AuditEntry.objects.filter(action__in=["approved", "rejected"]).order_by("line_no"))
    assert [(row.actor, row.task_id) for row in rows] == [("alice", "T-6"), ("bob", "T-7")]
    assert rows[1].line_no == rows[0].line_no + 1 and rows[0].ssot_path == rows[1].ssot_path
    sync()
    assert differences(store) == []


def test_a_batch_is_bounded_and_the_rest_take_the_next_commit(held, git_dir, monkeypatch):
    monkeypatch.setattr(writing, "BATCH_FILES", 3)
    before = len(_log(git_dir))
    for n in range(5):
        message = dispatch(f"T-{n}", n=n)
        held.start(
            f"m{n}", lambda message=message: services.message_create(raw=message, sender="coordinator")
        )

    results = held.release()

    assert all(results[f"m{n}"].created for n in range(5))
    log = _log(git_dir)
    assert len(log) == before + 3  # the held one, then three, then two
    assert log[1].message.splitlines()[0] == "3 changes"
    assert log[0].message.splitlines()[0] == "2 changes"


def test_a_writer_past_its_wait_is_answered_503_with_retry_after_and_writes_nothing(
    held, settings, api_settings, git_dir
):
    settings.SSOT_WRITE_WAIT_SEC = 0.2
    client = jwt_client(make_user("coordinator"))
    before = len(_log(git_dir))

    response = client.post("/api/messages/", dispatch("T-9", n=9), format="json")

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "ssot_busy"
    assert int(response["Retry-After"]) >= 1
    held.release()
    assert len(_log(git_dir)) == before + 1  # only the held writer's commit
    assert not Message.objects.filter(msg_id=dispatch("T-9", n=9)["msg_id"]).exists()


def test_a_busy_error_is_a_503(held, settings):
    settings.SSOT_WRITE_WAIT_SEC = 0.05
    with pytest.raises(SsotBusy) as busy:
        services.message_create(raw=dispatch("T-8", n=8), sender="coordinator")
    assert busy.value.status == 503 and busy.value.retry_after >= 1


@pytest.mark.parametrize("dated", [False, True])
def test_dated_folders_hold_the_control_planes_messages_and_read_like_flat_ones(store, settings, dated):
    """SSOT_DATED_FOLDERS=true: messages the control plane writes go under messages/YYYY/MM/DD/; a resend
    writes nothing, the addressee acknowledges it, and the sync finds the rows exact."""
    settings.SSOT_DATED_FOLDERS = dated
    message = dispatch("T-1", n=1)
    first = services.message_create(raw=message, sender="coordinator")
    again = services.message_create(raw=dict(message), sender="coordinator")
    acked = services.message_ack(msg_id=message["msg_id"], by="executor")

    day = message["timestamp"][:10].replace("-", "/")
    expected = f"messages/{day}/{message['msg_id']}.json" if dated else f"messages/{message['msg_id']}.json"
    assert (first.created, again.created, acked.created) == (True, False, True)
    assert Message.objects.get(msg_id=message["msg_id"]).ssot_path == expected
    assert Message.objects.get(msg_id=message["msg_id"]).ack_state == "acked"
    assert services.message_file(message["msg_id"]) == expected
    sync(full=True)
    assert differences(store) == []


# -- reading ahead: what a batch's drafts declared is read in one query per table ----------------------


def _view(store) -> writing.HeadView:
    head = store.head()
    return writing.HeadView(store, head, ledger_exact=head == writing.mirrored_head())


def test_a_batch_of_messages_reads_the_ledger_and_the_rows_once_for_all_its_drafts(
    held, git_dir, monkeypatch
):
    """Eight new messages queued together: their drafts find nothing in one ledger query and one
    Message query for the whole batch (before, two queries each)."""
    counted: list[str] = []
    real = writing.select_in

    def counting(model, key, keys, fields=()):
        counted.append(f"{model.__name__} x{len(keys)}")
        return real(model, key, keys, fields)

    monkeypatch.setattr(writing, "select_in", counting)
    for n in range(8):
        message = dispatch(f"T-{n}", n=n)
        held.start(
            f"m{n}", lambda message=message: services.message_create(raw=message, sender="coordinator")
        )

    results = held.release()

    assert all(results[f"m{n}"].created for n in range(8)), results
    assert _log(git_dir)[0].message.splitlines()[0] == "8 changes"
    assert counted == ["SsotFile x16", "Message x8"]  # the flat and dated paths of each; each row


def test_a_prefetched_path_still_sees_the_draft_before_it(store):
    message = dispatch("T-1", n=1)
    path = f"messages/{message['msg_id']}.json"
    view = _view(store)
    view.prefetch([writing.Reads(paths=(path,), messages=(message["msg_id"],))])
    view.drafted[path] = dump_json(message)

    with CaptureQueriesContext(connection) as queries:
        at, found = view.find([path])

    assert at == path and found is not None and found[1] == dump_json(message)
    assert len(queries) == 0


def test_a_path_not_declared_is_still_looked_up(store):
    message = dispatch("T-2", n=2)
    path = f"messages/2020/01/01/{message['msg_id']}.json"  # not where its timestamp would put it
    commit(store, {path: message})
    sync()
    view = _view(store)
    view.prefetch([writing.Reads(paths=(f"messages/{message['msg_id']}.json",))])

    with CaptureQueriesContext(connection) as queries:
        row = view.row_path(Message, message["msg_id"])
        at, found = view.find([path])

    assert row == path and at == path and found is not None
    assert len(queries) == 2  # the row, then the ledger: neither was declared


def test_a_resend_finds_its_message_where_its_row_says_even_off_its_declared_paths(store, settings):
    message = dispatch("T-3", n=3)
    path = f"messages/2020/01/01/{message['msg_id']}.json"
    commit(store, {path: message})
    sync()
    other = {**message, "payload": {**message["payload"], "branch": "feature/other"}}

    again = services.message_create(raw=dict(message), sender="coordinator")
    with pytest.raises(Conflict, match="already exists with other content"):
        services.message_create(raw=other, sender="coordinator")

    assert again.created is False
    assert list(Message.objects.values_list("ssot_path", flat=True)) == [path]


def test_a_database_failure_around_the_drafts_fails_every_change_of_the_batch(held, git_dir, monkeypatch):
    """Not one of them returns as if it had nothing to write."""
    before = len(_log(git_dir))
    for n in range(3):
        message = dispatch(f"T-{n}", n=n)
        held.start(
            f"m{n}", lambda message=message: services.message_create(raw=message, sender="coordinator")
        )

    def unavailable() -> str:
        raise OperationalError("database is locked")

    monkeypatch.setattr(writing, "mirrored_head", unavailable)
    results = held.release()

    assert all(isinstance(results[f"m{n}"], OperationalError) for n in range(3)), results
    assert len(_log(git_dir)) == before + 1  # the held writer's commit only


def test_a_mirror_that_fails_leaves_every_change_of_the_batch_told_it_was_committed(
    held, git_dir, monkeypatch
):
    """The leader's own call raises; the others learn their message is written (the next sync repairs
    the rows), not that there was nothing to write."""
    for n in range(3):
        message = dispatch(f"T-{n}", n=n)
        held.start(
            f"m{n}", lambda message=message: services.message_create(raw=message, sender="coordinator")
        )

    def failing(self) -> None:
        raise MirrorFailed("mirroring: the test's failure")

    monkeypatch.setattr(writing.Mirror, "finish", failing)
    results = held.release()

    outcomes = [results[f"m{n}"] for n in range(3)]
    assert sum(isinstance(outcome, MirrorFailed) for outcome in outcomes) == 1, outcomes
    assert all(outcome.created for outcome in outcomes if not isinstance(outcome, MirrorFailed))
    assert _log(git_dir)[0].message.splitlines()[0] == "3 changes"
