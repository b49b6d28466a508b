from django.apps import AppConfig


class AgentosSiteConfig(AppConfig):
    name = "agentos_site"
    verbose_name = "AgentOS site"

    def ready(self) -> None:
        from agentos_site import forking

        forking.install()
