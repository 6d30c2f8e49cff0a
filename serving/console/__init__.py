"""The web console: pages for the people the evaluations serve, on the platform itself.

``telcoml console`` serves it alone (uvicorn, http://127.0.0.1:8700/console/), and the BentoML
service mounts it at ``/console`` (``serving.service``), so the CRM's deployment serves it too.
Same API keys and province scope as the HTTP API: an agent signs in with a key once, the
session is a signed cookie (HttpOnly, SameSite=Strict, never the key itself), every form
carries a CSRF token, and a key scoped to one province sees another province's customer
exactly as it sees a number that is no one's. Chinese and English; plain HTML and a little
CSS, no front-end build.

**Adding a page** (a module, a template, one line):

1. ``serving/console/<page>.py``: the content as pure functions (frames or answers in, plain
   dicts out), and a ``PAGE = Page(...)`` (``serving.console.pages``) naming its path, its
   title in both languages, its template and its handler. The handler gets a ``Visit`` (the
   signed-in key, its province scope, the language, the submitted form if any, and the
   backend: settings, champions, online store) and returns the template's context; it runs
   in a worker thread, so it may read files and stores. ``Visit.scope`` is the key's province
   (``*`` for a group key): filter what the page shows with ``serving.security.may_score``.
2. ``serving/console/templates/<page>.html``: ``{% extends "base.html" %}``, text through
   ``t("key")`` (``serving.console.words``: add the key in both languages) and the business's
   own words from the context. Charts: build the figure with plotly in the page module
   (``plotly.io.to_json``), put it in a ``<script type="application/json">`` block and load
   ``static/plotly.min.js`` (served from the installed plotly package, no CDN) and a small
   static script that draws it: the pages' Content-Security-Policy allows scripts from the
   console only, not inline ones.
3. Add ``<page>.PAGE`` to ``PAGES`` in ``serving/console/app.py``: the navigation, the route,
   the sign-in check and the CSRF check come with it.

Tests: ``tests/serving/test_console.py`` (a real server, headless Chromium through Playwright;
``browser`` marker, screenshots in ``$TELCOML_TEST_ARTIFACTS`` or ``tests/artifacts/``).
"""
