from django.contrib import admin
from django.urls import include, path

from kizuna.api.urls import urlpatterns as api_urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_urlpatterns)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("m/", include("kizuna.portal.urls")),  # member portal (signed links)
    path("v1/", include("kizuna.tracking.urls")),  # Segment-compatible ingestion
    path("", include("kizuna.messaging.urls")),  # /t/ tracking + unsubscribe, /hooks/ inbound
    path("", include("kizuna.console.urls")),
]
