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
        call_command("setup_schedules", stdout=self.stdout)

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
