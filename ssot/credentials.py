"""Credentials an admin can revoke (SPEC section 7): API keys, and the per-user cutoff of JWTs.

An API key is `agos_<key_id>_<secret>`: the id finds the row, the secret is checked against its SHA-256.
Every check reads the row, so a revocation holds at once in every process. Creations and revocations
are audited (queued for the SSOT) with the key's id, never its secret.

A JWT carries `auth_epoch`, the user's cutoff when it was issued (0 before any); a password change, a
deactivation or "sign out everywhere" moves the cutoff, and every token issued before stops working,
re-activation included. "Sign out everywhere" also ends the user's browser sessions (`sessions_end`): a
password change already does (Django's session hash), and a deactivated user's session names nobody.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from core.errors import Invalid, NotFound
from core.permissions import AGENTS_GROUP, know_agent
from ssot.audit import audit_queue
from ssot.models import ApiKey, TokenCutoff

log = logging.getLogger(__name__)

PREFIX = "agos_"
KEY_PATTERN = re.compile(r"^agos_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
DEFAULT_DAYS = 90
MAX_DAYS = 365
MAX_NAME = 100
# last_used_at is written at most this often per key: a busy agent costs no write per request.
LAST_USED_EVERY = timedelta(minutes=1)
EPOCH_CLAIM = "auth_epoch"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# -- API keys ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewKey:
    """A key just created: the row, and the only copy of its plaintext (shown once, never stored)."""

    key: ApiKey
    plaintext: str


def _days(days: int | None) -> int:
    days = DEFAULT_DAYS if days is None else days
    if not 1 <= days <= MAX_DAYS:
        raise Invalid(
            f"An API key lives from 1 to {MAX_DAYS} days, not {days}.",
            [{"path": "days", "message": f"from 1 to {MAX_DAYS}"}],
        )
    return days


def apikey_create(*, owner: Any, name: str = "", days: int | None = None, actor: str) -> NewKey:
    """Create a key for an active user; the plaintext is in the result and nowhere else."""
    days = _days(days)
    name = (name or "").strip() or f"key of {owner.get_username()}"
    if len(name) > MAX_NAME:
        raise Invalid(
            f"The name is too long ({len(name)} characters; at most {MAX_NAME}).",
            [{"path": "name", "message": f"at most {MAX_NAME} characters"}],
        )
    if not owner.is_active:
        raise Invalid(
            f"User {owner.get_username()!r} is inactive; no key is created.",
            [{"path": "owner", "message": "inactive user"}],
        )
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        key = ApiKey.objects.create(
            key_id=key_id,
            owner=owner,
            name=name,
            secret_sha256=_sha256(secret),
            created_by=actor[:150],
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        audit_queue(
            actor=actor,
            action="apikey_created",
            detail=f"API key {key_id} for {owner.get_username()}, expires {key.expires_at:%Y-%m-%d}",
            extra={"key_id": key_id, "owner": owner.get_username()},
        )
    log.info("API key %s created for %s by %s", key_id, owner.get_username(), actor)
    return NewKey(key=key, plaintext=f"{PREFIX}{key_id}_{secret}")


def apikey_revoke(*, key_id: str, actor: str, queryset: Any = None) -> ApiKey:
    """Revoke a key now (idempotent: a revoked key stays revoked at its first time)."""
    rows = ApiKey.objects.all() if queryset is None else queryset
    with transaction.atomic():
        key = rows.select_for_update().filter(key_id=key_id).first()
        if key is None:
            raise NotFound(f"No API key {key_id[:40]!r}.")
        if key.revoked_at is None:
            key.revoked_at, key.revoked_by = timezone.now(), actor[:150]
            key.save(update_fields=["revoked_at", "revoked_by"])
            audit_queue(
                actor=actor,
                action="apikey_revoked",
                detail=f"API key {key.key_id} of {key.owner.get_username()} revoked",
                extra={"key_id": key.key_id, "owner": key.owner.get_username()},
            )
            log.info("API key %s revoked by %s", key.key_id, actor)
    return key


def apikeys_revoke_all(*, user: Any, actor: str) -> int:
    """Revoke every live key of a user (deactivation: re-activating it must not bring them back)."""
    live = ApiKey.objects.filter(owner_id=user.pk, revoked_at__isnull=True).values_list("key_id", flat=True)
    ids = list(live)
    for key_id in ids:
        apikey_revoke(key_id=key_id, actor=actor)
    return len(ids)


def is_agent_column(user_ref: str) -> Exists:
    """Whether the user `user_ref` names is in the group `agents`, as a column of the same query."""
    return Exists(Group.objects.filter(name=AGENTS_GROUP, user=OuterRef(user_ref)))


def apikey_user(raw: str) -> tuple[Any, ApiKey] | None:
    """The active owner of a valid key (knowing whether it is an agent) and the key (its last use
    recorded), or None: one query."""
    match = KEY_PATTERN.match(raw)
    if match is None:
        return None
    key_id, secret = match.groups()
    now = timezone.now()
    key = (
        ApiKey.objects.select_related("owner")
        .annotate(owner_is_agent=is_agent_column("owner_id"))
        .filter(key_id=key_id, revoked_at__isnull=True, expires_at__gt=now, owner__is_active=True)
        .first()
    )
    if key is None or not hmac.compare_digest(key.secret_sha256, _sha256(secret)):
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
        key.last_used_at = now
    know_agent(key.owner, key.owner_is_agent)
    return key.owner, key


def looks_like_key(raw: str) -> bool:
    return raw.startswith(PREFIX)


# -- JWT cutoff ----------------------------------------------------------------------------------------


def epoch_of(when: datetime | None) -> int:
    """A cutoff as the integer a token carries (microseconds since the Unix epoch; 0: never)."""
    return int(when.timestamp() * 1_000_000) if when else 0


def current_epoch(user: Any) -> int:
    when = TokenCutoff.objects.filter(user_id=user.pk).values_list("valid_after", flat=True).first()
    return epoch_of(when)


def tokens_revoke(*, user: Any, reason: str, actor: str) -> datetime:
    """Invalidate every JWT `user` holds now; new ones carry the new cutoff."""
    now = timezone.now()
    TokenCutoff.objects.update_or_create(
        user_id=user.pk, defaults={"valid_after": now, "reason": reason[:64]}
    )
    audit_queue(
        actor=actor,
        action="tokens_revoked",
        detail=f"JWTs of {user.get_username()} issued before now are refused ({reason})",
        extra={"user": user.get_username(), "reason": reason},
    )
    log.info("JWTs of %s revoked (%s) by %s", user.get_username(), reason, actor)
    return now


def sessions_end(user: Any) -> int:
    """End every live browser session of `user`; returns how many. The sessions are found by reading
    them (Django keeps no index of sessions by user), which the database and cached-database engines
    allow; the store's own delete clears a cached copy too."""
    from django.contrib.sessions.models import Session

    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            store().delete(session.session_key)
            ended += 1
    log.info("%d browser session(s) of %s ended", ended, user.get_username())
    return ended


def sign_out_everywhere(*, user: Any, actor: str) -> int:
    """Refuse every JWT `user` holds and end its browser sessions; returns the sessions ended."""
    tokens_revoke(user=user, reason="signed out everywhere", actor=actor)
    return sessions_end(user)


def key_id_of(value: str) -> str:
    """A key's id from its id or from the whole key (so a leaked key pasted whole can be revoked)."""
    match = KEY_PATTERN.match(value)
    return match.group(1) if match else value.strip()
