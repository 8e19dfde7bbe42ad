from django.contrib.auth.views import LogoutView
from django.urls import path

from kizuna.console import (
    plotly_assets,
    views,
    views_analytics,
    views_campaigns,
    views_data,
    views_loyalty,
    views_messaging,
    views_recommendations,
    views_segments,
)

app_name = "console"
urlpatterns = [
    path("login/", views.ConsoleLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("", views.dashboard, name="dashboard"),
    path("customers/", views.customer_list, name="customer_list"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer_detail"),
    path("customers/<int:customer_id>/edit/", views.customer_edit, name="customer_edit"),
    path(
        "customers/<int:customer_id>/timeline/", views.customer_timeline, name="customer_timeline"
    ),
    path("customers/<int:customer_id>/identities/", views.identity_add, name="identity_add"),
    path("customers/<int:customer_id>/consents/", views.consent_add, name="consent_add"),
    path("products/", views.product_list, name="product_list"),
    path("products/<int:product_id>/", views.product_detail, name="product_detail"),
    path("orders/", views.order_list, name="order_list"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/refunds/", views.refund_add, name="refund_add"),
    path("loyalty/", views_loyalty.overview, name="loyalty_overview"),
    path("loyalty/liability/", views_loyalty.liability, name="loyalty_liability"),
    path(
        "customers/<int:customer_id>/loyalty/redeem/",
        views_loyalty.redeem,
        name="loyalty_redeem",
    ),
    path(
        "customers/<int:customer_id>/loyalty/adjust/",
        views_loyalty.adjust,
        name="loyalty_adjust",
    ),
    path("data/", views_data.data_home, name="data_home"),
    path("data/import/<slug:kind>/<str:token>/", views_data.data_preview, name="data_preview"),
    path("data/jobs/<int:job_id>/", views_data.import_job, name="data_job"),
    path(
        "data/jobs/<int:job_id>/progress/",
        views_data.import_job_progress,
        name="data_job_progress",
    ),
    path("data/jobs/<int:job_id>/errors.csv", views_data.import_job_errors, name="data_job_errors"),
    path("data/duplicates/", views_data.duplicates, name="data_duplicates"),
    path("data/merge/", views_data.merge, name="data_merge"),
    path("data/customers.csv", views_data.customers_csv, name="data_customers_csv"),
    path("data/sources/", views_data.sources, name="data_sources"),
    path("assets/plotly.css", plotly_assets.plotly_css_view, name="plotly_css"),
    path("insight/", views_analytics.overview, name="analytics_overview"),
    path("insight/scores/", views_analytics.score_list, name="analytics_scores"),
    path("insight/cohorts/", views_analytics.cohorts, name="analytics_cohorts"),
    path("insight/kpis/", views_analytics.kpis, name="analytics_kpis"),
    path("insight/kpis/goals/", views_analytics.goal_set, name="analytics_goal_set"),
    path(
        "insight/kpis/goals/<int:goal_id>/delete/",
        views_analytics.goal_delete,
        name="analytics_goal_delete",
    ),
    path("insight/models/", views_analytics.models, name="analytics_models"),
    path("insight/run/", views_analytics.run_now, name="analytics_run"),
    path("insight/csv/<slug:table>.csv", views_analytics.download, name="analytics_csv"),
    path("recommendations/", views_recommendations.report, name="recommendations_report"),
    path("recommendations/train/", views_recommendations.train_now, name="recommendations_train"),
    path(
        "recommendations/settings/",
        views_recommendations.setting_save,
        name="recommendations_setting_save",
    ),
    path(
        "recommendations/settings/<int:setting_id>/delete/",
        views_recommendations.setting_delete,
        name="recommendations_setting_delete",
    ),
    path("segments/", views_segments.segment_list, name="segment_list"),
    path("segments/new/", views_segments.segment_new, name="segment_new"),
    path("segments/builder/", views_segments.segment_builder, name="segment_builder"),
    path(
        "segments/builder/field/", views_segments.segment_field_inputs, name="segment_field_inputs"
    ),
    path("segments/preview/", views_segments.segment_preview, name="segment_preview"),
    path("segments/<int:segment_id>/", views_segments.segment_detail, name="segment_detail"),
    path("segments/<int:segment_id>/edit/", views_segments.segment_edit, name="segment_edit"),
    path(
        "segments/<int:segment_id>/refresh/", views_segments.segment_refresh, name="segment_refresh"
    ),
    path("segments/<int:segment_id>/list/", views_segments.segment_upload, name="segment_upload"),
    path("messaging/", views_messaging.deliveries, name="messaging_deliveries"),
    path(
        "messaging/deliveries/<int:delivery_id>/",
        views_messaging.delivery_detail,
        name="messaging_delivery",
    ),
    path("messaging/channels/", views_messaging.channels, name="messaging_channels"),
    path(
        "messaging/channels/new/<slug:kind>/",
        views_messaging.channel_edit,
        name="messaging_channel_new",
    ),
    path(
        "messaging/channels/<int:channel_id>/",
        views_messaging.channel_edit,
        name="messaging_channel",
    ),
    path("messaging/templates/", views_messaging.templates, name="messaging_templates"),
    path("messaging/templates/new/", views_messaging.template_edit, name="messaging_template_new"),
    path(
        "messaging/templates/<int:template_id>/",
        views_messaging.template_edit,
        name="messaging_template",
    ),
    path(
        "messaging/templates/<int:template_id>/test/",
        views_messaging.template_test_send,
        name="messaging_template_test",
    ),
    path(
        "messaging/preview/",
        views_messaging.template_preview,
        name="messaging_template_preview",
    ),
    path(
        "messaging/preview/<str:key>/",
        views_messaging.template_preview_frame,
        name="messaging_template_frame",
    ),
    path("messaging/suppressions/", views_messaging.suppressions, name="messaging_suppressions"),
    path("campaigns/", views_campaigns.campaign_list, name="campaign_list"),
    path("campaigns/new/", views_campaigns.campaign_edit, name="campaign_new"),
    path("campaigns/<int:campaign_id>/", views_campaigns.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/edit/", views_campaigns.campaign_edit, name="campaign_edit"),
    path(
        "campaigns/<int:campaign_id>/test/",
        views_campaigns.campaign_test_send,
        name="campaign_test_send",
    ),
    path(
        "campaigns/<int:campaign_id>/results.csv",
        views_campaigns.campaign_results_csv,
        name="campaign_results_csv",
    ),
    path(
        "campaigns/<int:campaign_id>/<slug:action>/",
        views_campaigns.campaign_action,
        name="campaign_action",
    ),
]
