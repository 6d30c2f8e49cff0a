"""What a console page is: a path, a title in both languages, a template and a handler.

Page modules import this, not ``serving.console.app``, so the app can list them without a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from serving.console.words import Language

MAX_QUERY_FIELDS = 10
MAX_QUERY_CHARS = 100


@dataclass(frozen=True)
class Visit:
    """One request to a page, once the key is known good and the form's CSRF token checked."""

    #: the signed-in key's name and province scope (``*``: every province)
    key_name: str
    scope: str
    lang: Language
    #: the submitted form's fields (POST), bounded and decoded; None for a GET
    form: dict[str, str] | None
    #: settings, keys, models (``ModelSet``), online (``OnlineFeatures``), prepared answers
    backend: Any
    #: the URL's query parameters (a GET's choices, e.g. ``?name=``), bounded: at most
    #: ``MAX_QUERY_FIELDS`` of ``MAX_QUERY_CHARS`` each
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """A page of the console, listed in ``serving.console.app.PAGES``."""

    path: str  # under /console, e.g. "/customer"
    title_zh: str
    title_en: str
    template: str
    #: the template's context for a visit (GET or POST); runs in a worker thread. A ``status`` in
    #: the context sets the HTTP status (a form shown again with its error: 422, unknown: 404)
    handler: Callable[[Visit], dict]
    methods: tuple[str, ...] = ("GET", "POST")
    #: shown in the navigation bar
    nav: bool = True

    def title(self, lang: Language) -> str:
        return self.title_zh if lang == "zh" else self.title_en
