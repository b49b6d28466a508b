"""The dashboard page; its data arrives over the `/ws/events/` WebSocket."""

from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
