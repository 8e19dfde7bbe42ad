from django.urls import path

from kizuna.tracking import views

app_name = "tracking"
urlpatterns = [
    path("<slug:kind>", views.ingest, name="ingest"),
    path("<slug:kind>/", views.ingest),
]
