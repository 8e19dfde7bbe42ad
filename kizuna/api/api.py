"""The REST API, version 1: one NinjaAPI assembled from each app's router."""

from __future__ import annotations

from ninja import NinjaAPI, Swagger

from kizuna.accounts.api import router as accounts_router
from kizuna.analytics.api import router as analytics_router
from kizuna.api import errors
from kizuna.api.auth import AUTHENTICATED
from kizuna.api.transport import JSONObjectParser, LocalTimeJSONRenderer, body_size_guard
from kizuna.campaigns.api import router as campaigns_router
from kizuna.catalog.api import router as catalog_router
from kizuna.commerce.api import router as commerce_router
from kizuna.community.api import router as community_router
from kizuna.customers.api import router as customers_router
from kizuna.dataio.api import router as dataio_router
from kizuna.journeys.api import router as journeys_router
from kizuna.line_marketing.api import router as line_marketing_router
from kizuna.loyalty.api import router as loyalty_router
from kizuna.messaging.api import router as messaging_router
from kizuna.privacy.api import router as privacy_router
from kizuna.recommendations.api import router as recommendations_router
from kizuna.segments.api import router as segments_router
from kizuna.subscriptions.api import router as subscriptions_router
from kizuna.support.api import router as support_router
from kizuna.surveys.api import router as surveys_router

DESCRIPTION = """\
kizuna's REST API. Authenticate with an API key (`Authorization: Bearer kzk_...`, created in
the console by an administrator) or, from the browser, with a console staff session (unsafe
methods then need the `X-CSRFToken` header). Each route needs the permission of a role.

Errors are `{"detail": [{"field": "email", "message": "..."}]}`; money is integer minor units
with a `currency`; times are ISO 8601 with an offset. See docs/api.md.
"""

api = NinjaAPI(
    title="kizuna API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=AUTHENTICATED,
    parser=JSONObjectParser(),
    renderer=LocalTimeJSONRenderer(),
    # Swagger UI from ninja's bundled static files ("ninja" is in INSTALLED_APPS): no CDN.
    docs=Swagger(settings={"persistAuthorization": False, "tryItOutEnabled": False}),
    docs_url=None,  # served by kizuna.api.urls behind a staff login
)
errors.install(api)
api.add_decorator(body_size_guard(api), mode="view")

api.add_router("/customers", customers_router)
api.add_router("/", catalog_router)
api.add_router("/", commerce_router)
api.add_router("/", analytics_router)
api.add_router("/", recommendations_router)
api.add_router("/", loyalty_router)
api.add_router("/", dataio_router)
api.add_router("/", messaging_router)
api.add_router("/", segments_router)
api.add_router("/", campaigns_router)
api.add_router("/", line_marketing_router)
api.add_router("/", journeys_router)
api.add_router("/", surveys_router)
api.add_router("/", community_router)
api.add_router("/", subscriptions_router)
api.add_router("/", accounts_router)
api.add_router("/", support_router)
api.add_router("/", privacy_router)
