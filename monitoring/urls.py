"""The dashboard (its data arrives over the `/ws/events/` WebSocket), and the task and escalation pages."""

from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("tasks/<str:task_id>/", views.task_page, name="task"),
    path("tasks/<str:task_id>/decide/", views.task_decide, name="task-decide"),
    path("escalations/<str:ref>/", views.escalation_page, name="escalation"),
    path("escalations/<str:ref>/act/", views.escalation_act, name="escalation-act"),
]
