"""Django app for the AMP/1.0 protocol (it only contributes the `amp_validate` command)."""

from django.apps import AppConfig


class AmpConfig(AppConfig):
    name = "amp"
    verbose_name = "AMP/1.0 protocol"
