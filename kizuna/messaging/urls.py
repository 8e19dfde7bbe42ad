from django.urls import path

from kizuna.messaging import views

app_name = "messaging"
urlpatterns = [
    path("t/o/<str:token>.gif", views.open_pixel, name="open"),
    path("t/c/<str:token>/", views.click, name="click"),
    path("t/u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("hooks/line/<int:channel_id>/", views.line_webhook, name="line_webhook"),
    path("hooks/bounce/<int:channel_id>/", views.bounce_inbound, name="bounce_inbound"),
    path("hooks/complaint/<int:channel_id>/", views.complaint_inbound, name="complaint_inbound"),
]
