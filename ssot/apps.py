from django.apps import AppConfig


class SsotConfig(AppConfig):
    name = "ssot"
    verbose_name = "SSOT mirror"
    default_auto_field = "django.db.models.BigAutoField"
