"""plotly.js for the console's charts, served from the installed `plotly` package.

A static-files finder that exposes exactly one file, `vendor/plotly/plotly.min.js`, read
from `plotly/package_data/` of the installed Python package: no copy in the repository, no
CDN, and the version always matches the `plotly` that builds the figures. WhiteNoise serves
it like any other static file (and `collectstatic` picks it up in production).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage, Error
from django.core.files.storage import FileSystemStorage
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import cache_control

PREFIX = "vendor/plotly"
FILENAME = "plotly.min.js"
STATIC_PATH = f"{PREFIX}/{FILENAME}"


def package_data_dir() -> Path | None:
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "package_data"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        directory = package_data_dir()
        self.storage: FileSystemStorage | None = None
        if directory is not None and (directory / FILENAME).is_file():
            self.storage = FileSystemStorage(location=str(directory))
            self.storage.prefix = PREFIX  # type: ignore[attr-defined]

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        if self.storage is None:
            return [Error("plotly.min.js was not found in the installed plotly package")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        if self.storage is None or path != STATIC_PATH:
            return [] if find_all else None
        found = self.storage.path(FILENAME)
        return [found] if find_all else found

    def list(self, ignore_patterns: Any) -> Any:
        if self.storage is not None:
            yield FILENAME, self.storage


# --- plotly.js's own CSS ------------------------------------------------------------------
# plotly.js injects its stylesheet (modebar, hover labels, ...) with a <style> element, which
# the `style-src 'self'` CSP blocks. plotly.js skips the injection when the page already has
# an element with id "plotly.js-style-global" and class "no-inline-styles": the console
# links this stylesheet with that id and class. Its rules are read from the installed
# plotly.min.js (the same object plotly.js would insert), so they always match the version.

_CSS_OBJECT = re.compile(r'\{"X,X div":')
_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)":(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\')')


@lru_cache(maxsize=1)
def plotly_css() -> str:
    directory = package_data_dir()
    if directory is None:
        return ""
    source = (directory / FILENAME).read_text(encoding="utf-8")
    match = _CSS_OBJECT.search(source)
    if match is None:
        return ""
    start = match.start()
    depth = 0
    end = start
    for end in range(start, len(source)):
        if source[end] == "{":
            depth += 1
        elif source[end] == "}":
            depth -= 1
            if depth == 0:
                break
    rules = []
    for key, double, single in _PAIR.findall(source[start : end + 1]):
        selector = (
            re.sub(r"^,", " ,", key)
            .replace("X", ".js-plotly-plot .plotly")
            .replace("Y", ".plotly-notifier")
        )
        rules.append(f"{selector}{{{double or single}}}")
    # plotly.js inserts each rule at the top of its sheet: the last one comes first.
    return "\n".join(reversed(rules)) + "\n"


@cache_control(public=True, max_age=86400)
def plotly_css_view(request: HttpRequest) -> HttpResponse:
    css = plotly_css()
    if not css:
        raise Http404("plotly CSS not found in the installed plotly package")
    return HttpResponse(css, content_type="text/css; charset=utf-8")


_STYLE_GUARD = re.compile(
    r'if\(!document\.getElementById\("([0-9a-f]{64})"\)\)\{'
    r'var \w+=document\.createElement\("style"\)'
)


@lru_cache(maxsize=1)
def style_guard_ids() -> tuple[str, ...]:
    """Ids that bundled libraries (MapLibre's CSS in plotly.js) check before injecting a
    <style> element: the page carries empty elements with these ids so nothing is injected
    (map traces, the only users of those styles, are not used by the console)."""
    directory = package_data_dir()
    if directory is None:
        return ()
    source = (directory / FILENAME).read_text(encoding="utf-8")
    return tuple(dict.fromkeys(_STYLE_GUARD.findall(source)))
