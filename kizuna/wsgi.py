import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")
_full = get_wsgi_application()

from kizuna.tracking.wsgi import IngestHandler, dispatch  # noqa: E402 (after setup)

# `/v1/` (Segment-compatible ingestion) skips the staff site's middleware.
application = dispatch(_full, IngestHandler())
