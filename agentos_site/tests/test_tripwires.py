"""Tripwires: the library text that our overrides and copies were written against.

Each fenced module leans on the exact source of something in Django, asgiref, psycopg, psycopg_pool,
django-q2, simplejwt, daphne or Twisted (a copy, an overridden private method, a private attribute, a
behaviour worked around). An upgrade that changes that text fails here, saying what to re-check; once
re-checked, record the new digest.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sqlite3
from dataclasses import dataclass
from importlib import metadata

import pytest

PINNED = (
    "Django",
    "asgiref",
    "psycopg",
    "psycopg-pool",
    "django-q2",
    "djangorestframework-simplejwt",
    "daphne",
    "Twisted",
)


@dataclass(frozen=True)
class Fence:
    upstream: str  # "module:qualified.name"
    sha256: str  # of inspect.getsource(upstream) at the pinned versions
    ours: str
    recheck: str

    def source(self) -> str:
        module, name = self.upstream.split(":")
        target = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
        return inspect.getsource(target.fget if isinstance(target, property) else target)


FENCES = [
    Fence(
        "django.core.handlers.asgi:ASGIHandler",
        "22f8000ae0f2f5ea466d8b01937c14868c858b357d2039a2dc7b191c3186377d",
        "agentos_site/asgi_handler.py",
        (
            "ControlPlaneASGIHandler.handle is a copy of ASGIHandler.handle with one difference (a sync "
            "view's request_started is sent in the thread hop that runs it); __call__ re-implements "
            "ASGIHandler.__call__ with a reused executor; both call the class's other methods: port what "
            "changed into the copy"
        ),
    ),
    Fence(
        "django.core.handlers.base:BaseHandler.get_response",
        "3d6a79b124c2cccb709071aa82e68030f0a172c3c4662b68351e6b8161b9a848",
        "agentos_site/asgi_handler.py",
        (
            "a sync view's request runs through BaseHandler.get_response in one thread, instead of "
            "get_response_async: both must still do the same (urlconf, request_finished, error logging)"
        ),
    ),
    Fence(
        "django.core.handlers.base:BaseHandler.get_response_async",
        "ad82c920df0cebbb52b1ebafe6ab8b5541f200c39fa954a148b01f60725b715b",
        "agentos_site/asgi_handler.py",
        "the same as get_response: what changed here must hold for the sync chain too",
    ),
    Fence(
        "django.core.handlers.base:BaseHandler.load_middleware",
        "a1fb7ee5f8586195da2174d1bbc2bbfc7ca19b9d26ea66412cb434f45bf6d467",
        "agentos_site/asgi_handler.py",
        (
            "the middleware is loaded twice, async and sync (SyncChainHandler): both chains must stay "
            "equivalent"
        ),
    ),
    Fence(
        "asgiref.sync:ThreadSensitiveContext",
        "da8ec00f861b8bdf79b0d318c32d1c6b844b1fd68e18ff7a70e4cae0990047d6",
        "agentos_site/asgi_handler.py",
        (
            "each request's context is given an idle executor (ThreadSensitiveContext(executor=...)) that"
            " is reused after the request: check the context still runs its sync calls there and leaves "
            "it open"
        ),
    ),
    Fence(
        "asgiref.sync:SyncToAsync.__call__",
        "6376e33c6d3d94c58df80c3f2386c38401d19a543d08626a34721abe309845f6",
        "agentos_site/asgi_handler.py",
        "thread-sensitive calls must still run in the executor of the current ThreadSensitiveContext",
    ),
    Fence(
        "django.db.backends.sqlite3.base:DatabaseWrapper._start_transaction_under_autocommit",
        "7315cfc61c1dde12afa3e1dd77790b874b07c8261f505760fcd5f169d1aae763",
        "agentos_site/sqlite/base.py",
        "overridden to queue BEGIN IMMEDIATE on the process's write lock first",
    ),
    Fence(
        "django.db.backends.sqlite3.base:DatabaseWrapper.get_new_connection",
        "99ddcd0012130edd98ad85bc9354b476fb061c0a84561f05a4fb221265c1c381",
        "agentos_site/sqlite/base.py",
        "overridden to hand out pooled connections: a pooled one must be set up as a new one is",
    ),
    Fence(
        "django.db.backends.sqlite3.base:DatabaseWrapper.create_cursor",
        "9e8198be0a5d41e944459b89cc4e00a46c50a7dcec1d2c8b294fec55e6bf6983",
        "agentos_site/sqlite/base.py",
        "overridden to use the retrying CursorWrapper",
    ),
    Fence(
        "django.db.backends.sqlite3.base:DatabaseWrapper.close",
        "3a46dac491ee95d575aef7a5e31932686e81ac4a9551d400ec3f3fb8099bbea2",
        "agentos_site/sqlite/base.py",
        "the pool relies on close() reaching _close() for file databases only",
    ),
    Fence(
        "django.db.backends.sqlite3.base:DatabaseWrapper.is_in_memory_db",
        "170ee74d791fa55503d3b6dfea1fbc249d71d1cc6677b941e3a0ac8964b90176",
        "agentos_site/sqlite/base.py",
        "in-memory databases are never pooled",
    ),
    Fence(
        "django.db.backends.base.base:BaseDatabaseWrapper._commit",
        "8ebc361e1e8fcb8d33ccb0e4074b5d638269a87a037b7013d6a86fe116388b39",
        "agentos_site/sqlite/base.py",
        "overridden to release the process's write lock after the commit",
    ),
    Fence(
        "django.db.backends.base.base:BaseDatabaseWrapper._rollback",
        "d671ec3bb3c8ed44da28e4a9c17ad387daa3eaee712d38b7af61219492916e07",
        "agentos_site/sqlite/base.py",
        "overridden to release the process's write lock after the rollback",
    ),
    Fence(
        "django.db.backends.base.base:BaseDatabaseWrapper._close",
        "d1a3f0e9a11cd0842ea402c2f180e6d1f116753ccc15064e1daef66faa531e7a",
        "agentos_site/sqlite/base.py",
        "overridden to put a clean connection back in the pool instead of closing it",
    ),
    Fence(
        "django.db.backends.sqlite3.base:SQLiteCursorWrapper",
        "48f67df372beca0b1c83ac8b8116b22380506219acd9ba73d5b12ea2c187adc5",
        "agentos_site/sqlite/base.py",
        (
            "CursorWrapper retries execute and runs executemany in one transaction: check both still map "
            "to sqlite3's execute and executemany"
        ),
    ),
    Fence(
        "django.db.backends.postgresql.base:DatabaseWrapper.pool",
        "e5c2654fdf2d50900fec9db41948d0b026da988e24d0eba1b4b9a9d4aacb1b17",
        "agentos_site/forking.py",
        "a forked child empties DatabaseWrapper._connection_pools so that pool() opens a new pool there",
    ),
    Fence(
        "django.db.backends.postgresql.base:DatabaseWrapper.close_pool",
        "9680149e647d7fdfb15aad22ce81b8fcdcbc04600cd8c9e611e16ed63ba2803c",
        "agentos_site/forking.py",
        "pools are still kept in the class attribute _connection_pools, keyed by alias",
    ),
    Fence(
        "psycopg_pool.pool:ConnectionPool.__del__",
        "fea02ef3a60dda00223395f5d667846665ca8d404d13e77d0fa8ef67d1980ff9",
        "agentos_site/forking.py",
        "the parent's pools are kept referenced in a forked child so this finalizer never runs there",
    ),
    Fence(
        "psycopg._connection_base:BaseConnection.__del__",
        "48256aae84c1bac385b204ac8fe9d9cd2ae7737c124f4628d77144736e5b3450",
        "agentos_site/forking.py",
        "the parent's connections are kept referenced in a forked child so this finalizer never runs there",
    ),
    Fence(
        "django_q.cluster:Cluster.__init__",
        "140f22e15d6980b0d4b84bcc3f263cf64ec0595f33eddbfae668e2c8a335adc7",
        "agentos_site/worker.py",
        (
            "the relay turns a group SIGTERM into SIGINT to qcluster alone, because the cluster deadlocks"
            " when its whole group gets SIGTERM: check whether that is fixed (then the Procfile can run "
            "qcluster itself)"
        ),
    ),
    Fence(
        "django_q.cluster:Cluster.stop",
        "0230e6a459b68502cdb428f015df781f90072e413f726173a718ac3edb899a32",
        "agentos_site/worker.py",
        "the same: the stop that deadlocks",
    ),
    Fence(
        "django_q.cluster:Cluster.sig_handler",
        "e17fb87045374b3238d10cdf58676d2756c7557990b9be8f77894bf213de3591",
        "agentos_site/worker.py",
        "the same: SIGINT must still stop the cluster",
    ),
    Fence(
        "django_q.cluster:Sentinel.__init__",
        "6ddfa0bde90a4a736269e83ebca477160d284342897f25f6c85e9189746a77d4",
        "agentos_site/worker.py",
        "the same: the sentinel (and the workers it forks) must still ignore SIGINT",
    ),
    Fence(
        "rest_framework_simplejwt.authentication:JWTAuthentication.get_user",
        "780afd0c20b4c03456b5795efaad4afa31f6b86e83e09df079a843e0891b92cb",
        "ssot/authentication.py",
        (
            "RevocableJWTAuthentication.get_user is a copy with the user lookup joined to the cutoff and "
            "the agent check: port every refusal that changed (claims, inactive users, revoke claim)"
        ),
    ),
    Fence(
        "daphne.http_protocol:HTTPFactory.buildProtocol",
        "35e878a6e0e41af21a217987f9ce6d49762b9e24e953f7fb74d556b25463e176",
        "agentos_site/serving.py",
        "daphne must still make its requests from the module global WebRequest that install() replaces",
    ),
    Fence(
        "twisted.web.http:Request.__init__",
        "2d3f7dbd28d0ce02f4b8f99942bd6e2f62165fc512304e8f366b361444278e29",
        "agentos_site/serving.py",
        "parsePOSTFormSubmission must still be the keyword that turns the form parsing off",
    ),
    Fence(
        "twisted.web.http:Request.requestReceived",
        "99ca6c5e24305de4a0cf1270a1cf624046cded1ceb23fb1c62bd743074f61d3f",
        "agentos_site/serving.py",
        (
            "with parsePOSTFormSubmission off, the body must still be left whole in request.content "
            "(daphne reads it from there) and nothing else may parse it"
        ),
    ),
]


def versions() -> str:
    return ", ".join(f"{name} {metadata.version(name)}" for name in PINNED)


@pytest.mark.parametrize("fence", FENCES, ids=lambda fence: fence.upstream)
def test_the_upstream_text_an_override_leans_on_is_unchanged(fence: Fence) -> None:
    digest = hashlib.sha256(fence.source().encode()).hexdigest()
    assert digest == fence.sha256, (
        f"{fence.upstream} is not the text {fence.ours} was written against (installed: {versions()}). "
        f"Re-check: {fence.recheck}. Then record its new digest in this file: {digest}"
    )


def test_a_fence_that_changed_says_what_to_recheck() -> None:
    fence = Fence("django.db.backends.base.base:BaseDatabaseWrapper._commit", "0" * 64, "ours.py", "why")
    with pytest.raises(
        AssertionError, match=r"_commit is not the text ours.py was written against .*Re-check: why"
    ):
        test_the_upstream_text_an_override_leans_on_is_unchanged(fence)


def test_sqlite_still_says_database_is_locked_when_the_write_lock_is_taken(tmp_path) -> None:
    """agentos_site/sqlite/base.py retries on this exact text (`_locked`): SQLite's words for SQLITE_BUSY."""
    from agentos_site.sqlite.base import _locked

    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as error:
            other.execute("BEGIN IMMEDIATE")
        assert _locked(error.value), f"SQLite {sqlite3.sqlite_version} said {error.value!s}"
    finally:
        holder.close()
        other.close()
