from django.apps import AppConfig


class SsotConfig(AppConfig):
    name = "ssot"
    verbose_name = "SSOT mirror"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ssot import lockout, signals  # noqa: F401 (connect their receivers)
