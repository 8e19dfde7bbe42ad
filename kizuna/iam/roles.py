"""Staff roles and the Django permissions each one holds.

Roles are Django groups kept in step with this table after every migrate, so a new
permission reaches every installation without a data migration.
"""

from __future__ import annotations

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class Role(TextChoices):
    ADMIN = "admin", _("Administrator")
    MARKETER = "marketer", _("Marketer")
    ANALYST = "analyst", _("Analyst")
    SUPPORT = "support", _("Support")
    SALES = "sales", _("Sales")


_VIEW_ALL = [
    "customers.view_customer",
    "customers.view_identity",
    "customers.view_consententry",
    "customers.view_event",
    "customers.view_traitdefinition",
    "catalog.view_product",
    "catalog.view_category",
    "commerce.view_order",
    "commerce.view_refund",
    "loyalty.view_programme",
    "loyalty.view_account",
    "loyalty.view_ledgerentry",
    "loyalty.view_reward",
    "loyalty.view_coupondefinition",
    "analytics.view_customerscore",
    "analytics.view_scoringrun",
    "analytics.view_kpigoal",
    "messaging.view_channel",
    "messaging.view_template",
    "messaging.view_delivery",
    "messaging.view_suppression",
    "campaigns.view_campaign",
    "journeys.view_journey",
    "recommendations.view_modelversion",
    "recommendations.view_trainingrun",
    "recommendations.view_itemsetting",
]
# Customer insight: run scoring on demand and plan KPI goals (admin, marketer, analyst).
_INSIGHT_WRITE = [
    "analytics.add_scoringrun",
    "analytics.add_kpigoal",
    "analytics.delete_kpigoal",
    "recommendations.add_trainingrun",  # train recommendations on demand
]
# Recommendations: which products and categories are consumable or excluded (admin, marketer).
_RECOMMENDATIONS_MANAGE = [
    "recommendations.add_itemsetting",
    "recommendations.change_itemsetting",
    "recommendations.delete_itemsetting",
]
_LOYALTY_SERVE = [  # serving members at the counter or on the phone
    "loyalty.add_redemption",
    "loyalty.add_couponuse",
]
_LOYALTY_MANAGE = [
    *_LOYALTY_SERVE,
    "loyalty.add_reward",
    "loyalty.change_reward",
    "loyalty.add_coupondefinition",
    "loyalty.change_coupondefinition",
    "loyalty.add_coupon",
]

# Messaging: author templates and send (admin, marketer); channels and their credentials
# (admin); the suppression list grows from staff too (admin, marketer, support).
_MESSAGING_AUTHOR = [
    "messaging.add_template",
    "messaging.change_template",
    "messaging.add_delivery",
    "messaging.add_suppression",
]
_MESSAGING_ADMIN = [*_MESSAGING_AUTHOR, "messaging.add_channel", "messaging.change_channel"]
# Campaigns: marketers author them and submit them for approval; administrators hold the
# send permission (schedule, approve, reject, resume).
_CAMPAIGNS_AUTHOR = ["campaigns.add_campaign", "campaigns.change_campaign"]
_CAMPAIGNS_SEND = [*_CAMPAIGNS_AUTHOR, "campaigns.send_campaign"]
# Journeys: marketers and administrators build, publish, pause and resume them.
_JOURNEYS_MANAGE = ["journeys.add_journey", "journeys.change_journey"]
# Segments: marketers and administrators build and refresh audiences; analysts read them.
_SEGMENTS_VIEW = ["segments.view_segment"]
_SEGMENTS_MANAGE = [
    *_SEGMENTS_VIEW,
    "segments.add_segment",
    "segments.change_segment",
    "segments.delete_segment",
]
# LINE marketing (issue 13): marketers and administrators upload audiences, narrowcast and
# manage rich menus; analysts read them.
_LINE_VIEW = [
    "line_marketing.view_lineaudience",
    "line_marketing.view_narrowcast",
    "line_marketing.view_richmenu",
]
_LINE_SEND = [
    *_LINE_VIEW,
    "line_marketing.add_lineaudience",
    "line_marketing.add_narrowcast",
    "line_marketing.add_richmenu",
    "line_marketing.change_richmenu",
]

# Accounts and deals (issue 14): sales staff work their own deals and tasks; holders of
# accounts.view_all_deals (managers: admin, marketer; analysts read-only) see everyone's.
_ACCOUNTS_VIEW = [
    "accounts.view_account",
    "accounts.view_accountcontact",
    "accounts.view_pipeline",
    "accounts.view_deal",
    "accounts.view_activity",
    "accounts.view_customercare",
    "subscriptions.view_plan",
    "subscriptions.view_subscription",
]
_ACCOUNTS_SELL = [
    *_ACCOUNTS_VIEW,
    "accounts.add_account",
    "accounts.change_account",
    "accounts.add_accountcontact",
    "accounts.delete_accountcontact",
    "accounts.add_deal",
    "accounts.change_deal",
    "accounts.add_activity",
    "accounts.change_activity",
]
_ACCOUNTS_MANAGE = [
    *_ACCOUNTS_SELL,
    "accounts.view_all_deals",
    "accounts.add_pipeline",
    "accounts.change_pipeline",
    "accounts.change_customercare",
    "accounts.change_servicelevelrule",
]
_SUBSCRIPTIONS_MANAGE = [
    "subscriptions.add_plan",
    "subscriptions.change_plan",
    "subscriptions.add_subscription",
    "subscriptions.change_subscription",
]
# Surveys and community (issue 9): every role reads results, events and ideas; admins and
# marketers build surveys and run events and the idea board; support checks guests in.
_LISTEN_VIEW = [
    "surveys.view_survey",
    "surveys.view_response",
    "community.view_communityevent",
    "community.view_registration",
    "community.view_idea",
]
_COMMUNITY_CHECK_IN = ["community.change_registration"]
_LISTEN_MANAGE = [
    *_LISTEN_VIEW,
    *_COMMUNITY_CHECK_IN,
    "surveys.add_survey",
    "surveys.change_survey",
    "surveys.add_response",  # answers collected elsewhere, recorded through the API
    "community.add_communityevent",
    "community.change_communityevent",
    "community.change_idea",
    "community.delete_ideacomment",
]
# Support (issue 9): support staff and administrators work inquiries and keep the FAQ and
# canned answers; marketers and analysts read them.
_SUPPORT_VIEW = [
    "support.view_inquiry",
    "support.view_message",
    "support.view_faqarticle",
    "support.view_cannedanswer",
]
_SUPPORT_MANAGE = [
    *_SUPPORT_VIEW,
    "support.add_inquiry",
    "support.change_inquiry",
    "support.add_message",
    "support.add_faqarticle",
    "support.change_faqarticle",
    "support.delete_faqarticle",
    "support.add_cannedanswer",
    "support.change_cannedanswer",
    "support.change_slapolicy",
]
# Sales (issue 14): their own accounts' deals, contacts and tasks (no view_all_deals), and
# read access to customers like every role. A role for staff and API keys alike.
SALES = Role.SALES

# Privacy (issue 11): support opens data-subject requests and hands out exports;
# administrators also erase customers and publish purpose-of-use notices.
_PRIVACY_SERVE = [
    "privacy.view_datasubjectrequest",
    "privacy.add_datasubjectrequest",
    "privacy.change_datasubjectrequest",
    "privacy.export_customer",
    "privacy.view_purposenotice",
]
_PRIVACY_ADMIN = [
    *_PRIVACY_SERVE,
    "privacy.erase_customer",
    "privacy.view_erasurerecord",
    "privacy.add_purposenotice",
    "privacy.view_retentionrun",  # the retention runs' reports
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.ADMIN: [
        *_INSIGHT_WRITE,
        *_VIEW_ALL,
        "customers.add_customer",
        "customers.change_customer",
        "customers.delete_customer",
        "customers.add_identity",
        "customers.delete_identity",
        "customers.add_consententry",
        "customers.add_event",
        "customers.add_traitdefinition",
        "customers.change_traitdefinition",
        "customers.view_customermerge",
        "customers.add_customermerge",
        "tracking.view_source",
        "tracking.add_source",
        "tracking.change_source",
        "catalog.add_product",
        "catalog.change_product",
        "catalog.add_category",
        "catalog.change_category",
        "commerce.add_order",
        "commerce.change_order",
        "commerce.add_refund",
        "iam.view_apikey",
        "iam.add_apikey",
        "iam.change_apikey",
        "auditlog.view_logentry",
        *_LOYALTY_MANAGE,
        "loyalty.change_programme",
        "loyalty.add_ledgerentry",
        *_MESSAGING_ADMIN,
        *_CAMPAIGNS_SEND,
        *_JOURNEYS_MANAGE,
        *_SEGMENTS_MANAGE,
        *_LINE_SEND,
        *_RECOMMENDATIONS_MANAGE,
        *_ACCOUNTS_MANAGE,
        *_SUBSCRIPTIONS_MANAGE,
        *_LISTEN_MANAGE,
        *_SUPPORT_MANAGE,
        *_PRIVACY_ADMIN,
    ],
    Role.MARKETER: [
        *_INSIGHT_WRITE,
        *_VIEW_ALL,
        "customers.add_customer",
        "customers.change_customer",
        "customers.view_customermerge",
        "customers.add_customermerge",
        "customers.add_identity",
        "customers.add_consententry",
        "customers.add_event",
        "catalog.add_product",
        "catalog.change_product",
        *_LOYALTY_MANAGE,
        *_MESSAGING_AUTHOR,
        *_CAMPAIGNS_AUTHOR,
        *_JOURNEYS_MANAGE,
        *_SEGMENTS_MANAGE,
        *_LINE_SEND,
        *_RECOMMENDATIONS_MANAGE,
        *_ACCOUNTS_MANAGE,
        *_SUBSCRIPTIONS_MANAGE,
        *_LISTEN_MANAGE,
        *_SUPPORT_VIEW,
        "privacy.view_purposenotice",
    ],
    Role.ANALYST: [
        *_VIEW_ALL,
        *_INSIGHT_WRITE,
        *_SEGMENTS_VIEW,
        *_LINE_VIEW,
        *_ACCOUNTS_VIEW,
        "accounts.view_all_deals",
        *_LISTEN_VIEW,
        *_SUPPORT_VIEW,
    ],
    Role.SUPPORT: [
        *_VIEW_ALL,
        "customers.change_customer",
        "customers.add_identity",
        "customers.add_consententry",
        "customers.add_event",
        "commerce.add_refund",
        *_LOYALTY_SERVE,
        "messaging.add_suppression",
        *_ACCOUNTS_VIEW,
        "accounts.add_activity",
        "subscriptions.change_subscription",
        *_LISTEN_VIEW,
        *_COMMUNITY_CHECK_IN,
        *_SUPPORT_MANAGE,
        *_PRIVACY_SERVE,
    ],
    Role.SALES: [*_VIEW_ALL, *_ACCOUNTS_SELL],
}
