"""A user's password change or deactivation invalidates the JWTs issued before it; a deactivation
revokes the user's API keys too, so that re-activating it revives no credential (ssot.credentials)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from ssot import credentials

WATCHED = {"password", "is_active"}
DEACTIVATED = "deactivated"


@receiver(pre_save, sender=get_user_model())
def _remember_credentials(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    instance._agentos_revoke = None
    if instance.pk is None or (update_fields is not None and not WATCHED & set(update_fields)):
        return
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password:
        instance._agentos_revoke = "password changed"
    elif before["is_active"] and not instance.is_active:
        instance._agentos_revoke = DEACTIVATED


@receiver(post_save, sender=get_user_model())
def _revoke_tokens(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    reason = getattr(instance, "_agentos_revoke", None)
    if reason:
        instance._agentos_revoke = None
        credentials.tokens_revoke(user=instance, reason=reason, actor="system")
        if reason == DEACTIVATED:
            credentials.apikeys_revoke_all(user=instance, actor="system")
