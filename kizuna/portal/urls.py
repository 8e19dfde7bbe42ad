from django.urls import path

from kizuna.portal import views

app_name = "portal"
urlpatterns = [
    path("<str:token>/", views.member_card, name="member_card"),
    path("<str:token>/history/", views.member_history, name="member_history"),
    path("<str:token>/qr.svg", views.member_qr, name="member_qr"),
]
