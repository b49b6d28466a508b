"""bootstrap: before `make run` serves: the SSOT (demo tasks on first run), an admin login, the schedules."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Prepare a development control plane: SSOT, admin login (printed once), schedules."

    def handle(self, *args, **options):
        first_run = settings.SSOT_BACKEND == "local" and not settings.SSOT_LOCAL_PATH.exists()
        call_command("ssot_init", demo=first_run, stdout=self.stdout)
        self._ensure_admin()
        self._ensure_agents()
        call_command("setup_schedules", stdout=self.stdout)

    def _ensure_agents(self) -> None:
        """A user per monitored agent, in the `agents` group, without a password: agents use API keys."""
        users, group = get_user_model(), Group.objects.get(name="agents")
        created = []
        for name in settings.AGENTS:
            agent, new = users.objects.get_or_create(username=name)
            if new:
                agent.set_unusable_password()
                agent.save(update_fields=["password"])
                created.append(name)
            agent.groups.add(group)
        if created:
            self.stdout.write(
                f"agent users: {', '.join(created)} (an API key: manage.py apikey_create {created[0]}, "
                "or in /admin/ under API keys)"
            )

    def _ensure_admin(self) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        admin = users.objects.create_superuser("admin", "admin@localhost", password)
        admin.groups.add(*Group.objects.filter(name__in=["approvers", "operators"]))
        # Shown once, on the terminal of the person who ran `make run`; never logged or stored in clear.
        self.stdout.write(
            self.style.SUCCESS(f"admin login: admin / {password}  (shown once; change it in /admin/)")
        )
