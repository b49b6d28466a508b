from django.apps import AppConfig


class AgentosSiteConfig(AppConfig):
    name = "agentos_site"
    verbose_name = "AgentOS site"
