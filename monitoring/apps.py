from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from monitoring import approvals, checks  # noqa: F401  (registers the system checks)
        from ssot.events import committed

        committed.connect(approvals.on_event, dispatch_uid="monitoring.approvals")
