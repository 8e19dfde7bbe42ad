from django.urls import path

from kizuna.portal import (
    views,
    views_community,
    views_line_login,
    views_preferences,
    views_privacy,
    views_support,
    views_surveys,
)

app_name = "portal"
urlpatterns = [
    path("p/<str:token>/", views_preferences.preferences, name="preferences"),
    path("p/<str:token>/line/", views_preferences.line_link, name="line_link"),
    path("u/<str:token>/", views_preferences.unsubscribe_confirm, name="unsubscribe"),
    path("c/<str:token>/", views_privacy.email_confirm, name="email_confirm"),
    path("s/<str:token>/", views_surveys.survey_answer, name="survey_answer"),
    path("survey/<slug:slug>/", views_surveys.survey_public, name="survey_public"),
    path("support/contact/", views_support.contact, name="support_contact"),
    path(
        "support/contact/<str:token>/handover/",
        views_support.handover,
        name="support_handover",
    ),
    path("line/callback/", views_line_login.line_login_callback, name="line_login_callback"),
    path("<str:token>/line-login/", views_line_login.line_login_start, name="line_login"),
    path("events/<str:token>/", views_community.events, name="community_events"),
    path(
        "events/<str:token>/ticket/<int:registration_id>.svg",
        views_community.ticket_qr,
        name="community_ticket",
    ),
    path("ideas/<str:token>/", views_community.ideas, name="community_ideas"),
    path("<str:token>/", views.member_card, name="member_card"),
    path("<str:token>/history/", views.member_history, name="member_history"),
    path("<str:token>/qr.svg", views.member_qr, name="member_qr"),
]
