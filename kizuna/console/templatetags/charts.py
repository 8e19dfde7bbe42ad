"""`{% plotly_assets %}`: what a console page with Plotly charts needs in its page."""

from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from kizuna.console.plotly_assets import STATIC_PATH, style_guard_ids

register = template.Library()


@register.simple_tag
def plotly_assets() -> SafeString:
    """plotly.js's stylesheet (linked with the id and class that stop plotly.js injecting
    a <style> element, which the CSP would block), placeholders that stop bundled
    libraries injecting theirs, plotly.min.js from the installed package and charts.js."""
    guards = format_html_join(
        "", '<template id="{}"></template>', ((guard,) for guard in style_guard_ids())
    )
    return format_html(
        '<link rel="stylesheet" id="plotly.js-style-global" class="no-inline-styles" '
        'href="{}">{}<script src="{}" defer></script><script src="{}" defer></script>',
        reverse("console:plotly_css"),
        guards,
        static(STATIC_PATH),
        static("console/charts.js"),
    )
