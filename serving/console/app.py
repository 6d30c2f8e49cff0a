"""The console's web app: sign-in with an API key, the pages of ``PAGES``, the language, static files.

``console_app`` is a Starlette app meant to sit under ``/console``: ``telcoml console`` serves it
alone (``standalone_app``), the BentoML service mounts it (``serving.service``). How to add a
page: ``serving.console``'s docstring.

Every page needs a valid session (else it goes to the sign-in page); every POST is a
url-encoded form of at most ``MAX_FORM_BYTES`` with the session's CSRF token. Responses carry a
strict Content-Security-Policy (scripts from the console only), are never cached, and say how
long the server took (``Server-Timing: app;dur=...``, read by ``benchmarks/bench_console.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.logs import get_logger
from core.settings import Settings
from serving.console import campaign_reports, campaigns, customer, health, overview
from serving.console.lookup import LazyBackend
from serving.console.pages import MAX_QUERY_CHARS, MAX_QUERY_FIELDS, Page, Visit
from serving.console.session import COOKIE, Sessions, csrf_ok, new_token, session_key, signed_in
from serving.console.words import LANGUAGES, words
from serving.security import ALL_PROVINCES

#: Every page of the console, in the navigation's order. A new page: its module's ``PAGE`` here.
PAGES: tuple[Page, ...] = (customer.PAGE, campaigns.PAGE, campaign_reports.PAGE, overview.PAGE, health.PAGE)

#: Largest form accepted (the outcome form is ~300 bytes), and most fields in it (the campaign form,
#: every condition's value ticked: 46).
MAX_FORM_BYTES = 8 * 1024
MAX_FORM_FIELDS = 60
#: Longest API key accepted at sign-in (ours are 36 characters).
MAX_KEY_CHARS = 200
PATH = "/console"
HERE = Path(__file__).parent
#: plotly.js starts by adding an empty ``<style>`` element it then fills through the CSS object model;
#: the hash of the empty text allows that element alone (no inline style with content, no script).
PLOTLY_STYLE = b"'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' "
        + PLOTLY_STYLE
        + b"; img-src 'self' data:; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]

log = get_logger("telcoml.console", logging.INFO)
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
)


class FormRefused(Exception):
    def __init__(self, status: int, word: str):
        self.status, self.word = status, word


async def read_form(request: Request) -> dict[str, str]:
    """A url-encoded form read up to ``MAX_FORM_BYTES`` (413 past it), ``MAX_FORM_FIELDS`` at most;
    a field given twice keeps its first value."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise FormRefused(415, "bad_form")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        raise FormRefused(413, "bad_form")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused(413, "bad_form")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, "bad_form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every response of the console (pages, redirects, static files)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class Console:
    """The app's state: where the backend comes from, the session signer (made on first use, from
    the work directory's secret)."""

    def __init__(self, backend: Callable, settings: Settings | None, https_only: bool):
        self.backend = backend
        self.settings = settings
        self.https_only = https_only
        self._sessions: Sessions | None = None

    @property
    def sessions(self) -> Sessions:
        if self._sessions is None:
            settings = self.settings or self.backend().settings
            self._sessions = Sessions(settings, self.https_only)
        return self._sessions

    # -- responses ----------------------------------------------------------------------------
    def render(
        self, request: Request, template: str, context: dict, session: dict, status: int = 200, key=None
    ) -> HTMLResponse:
        lang = session.get("lang", "zh")
        base = request.scope.get("root_path", "")
        html = TEMPLATES.get_template(template).render(
            t=words(lang),
            lang=lang,
            base=base,
            csrf=session.get("csrf", ""),
            key_name=key.name if key else None,
            scope=(key.province if key.province != ALL_PROVINCES else words(lang)("all_provinces"))
            if key
            else None,
            nav=[{"path": p.path, "title": p.title(lang)} for p in PAGES if p.nav] if key else [],
            here=request.url.path[len(base) :],
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def redirect(self, request: Request, to: str) -> RedirectResponse:
        return RedirectResponse(request.scope.get("root_path", "") + to, status_code=303)

    def keep(self, request: Request, response: Response, session: dict) -> Response:
        path = request.scope.get("root_path", "") or "/"
        response.headers.append("set-cookie", self.sessions.cookie(session, path))
        return response

    def session(self, request: Request) -> dict:
        return self.sessions.read(request.cookies.get(COOKIE))


def _timed(response: Response, started: float) -> Response:
    response.headers["server-timing"] = f"app;dur={1000 * (time.perf_counter() - started):.1f}"
    return response


async def _refused(console: Console, request: Request, session: dict, err: FormRefused) -> Response:
    return console.render(request, "message.html", {"message": err.word}, session, err.status)


async def posted_form(console: Console, request: Request, session: dict, key=None) -> dict | Response:
    """The posted form with its CSRF token checked, or the refusal page to answer with."""
    try:
        form = await read_form(request)
    except FormRefused as err:
        return await _refused(console, request, session, err)
    if not csrf_ok(session, form):
        return console.render(request, "message.html", {"message": "csrf"}, session, 403, key)
    return form


def page_endpoint(page: Page):
    """The route of a page: the session's key checked, the form read and its CSRF token checked,
    the handler run in a worker thread, its context rendered."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        console: Console = request.app.state.console
        session = console.session(request)
        backend = console.backend()
        key = session_key(backend.keys, session)
        if key is None:
            return console.redirect(request, "/login?expired=1" if session.get("key") else "/login")
        form = None
        if request.method == "POST":
            form = await posted_form(console, request, session, key)
            if isinstance(form, Response):
                return form
        query = {k: v[:MAX_QUERY_CHARS] for k, v in list(request.query_params.items())[:MAX_QUERY_FIELDS]}
        visit = Visit(key.name, key.province, session.get("lang", "zh"), form, backend, query)
        context = await run_in_threadpool(page.handler, visit)
        status = context.pop("status", 200)
        return _timed(console.render(request, page.template, context, session, status, key), started)

    return endpoint


async def campaign_download(request: Request) -> Response:
    """An exported campaign's outbound CSV, as an attachment, for a signed-in key that may see it
    (404 otherwise, the same as for no such campaign)."""
    console: Console = request.app.state.console
    session = console.session(request)
    backend = console.backend()
    key = session_key(backend.keys, session)
    if key is None:
        return console.redirect(request, "/login?expired=1" if session.get("key") else "/login")
    name = request.path_params["name"]
    path = await run_in_threadpool(campaigns.export_file, backend, key.province, name)
    if path is None:
        return console.render(request, "message.html", {"message": "not_found"}, session, 404, key)
    log.info("console campaign %s downloaded by key %s", name, key.name)
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=path.name)


async def overview_export(request: Request) -> Response:
    """The managers' overview's current table as CSV (``overview.export_csv``): the overview form
    posted here, CSRF checked, the key's scope; a choice off the lists gets 422."""
    console: Console = request.app.state.console
    session = console.session(request)
    backend = console.backend()
    key = session_key(backend.keys, session)
    if key is None:
        return console.redirect(request, "/login?expired=1" if session.get("key") else "/login")
    form = await posted_form(console, request, session, key)
    if isinstance(form, Response):
        return form
    visit = Visit(key.name, key.province, session.get("lang", "zh"), form, backend)
    status, filename, text = await run_in_threadpool(overview.export_csv, visit)
    if status != 200:
        message = "bad_form" if status == 422 else "not_found"
        return console.render(request, "message.html", {"message": message}, session, status, key)
    log.info("console overview %s exported by key %s", filename, key.name)
    return Response(
        text.encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


async def login(request: Request) -> Response:
    """GET: the sign-in form (and a session holding its CSRF token). POST: the key checked like an
    API call's; a new session on success. The key travels in the form's body only."""
    console: Console = request.app.state.console
    session = console.session(request)
    if not session.get("csrf"):
        session = {"csrf": new_token(), "lang": session.get("lang", "zh")}
    if request.method == "GET":
        message = "session_expired" if request.query_params.get("expired") else None
        return console.keep(
            request, console.render(request, "login.html", {"message": message}, session), session
        )
    try:
        form = await read_form(request)
    except FormRefused as err:
        return await _refused(console, request, session, err)
    if not csrf_ok(session, form):
        return console.keep(
            request, console.render(request, "login.html", {"message": "csrf"}, session, 403), session
        )
    presented = form.get("key", "").strip()[: MAX_KEY_CHARS + 1]
    ring = console.backend().keys
    key = ring.caller(presented) if len(presented) <= MAX_KEY_CHARS else None
    if key is None:
        refusal = ring.refusal(presented)
        log.info("console sign-in refused")
        return console.render(request, "login.html", {"message": None, "refusal": refusal}, session, 401)
    log.info("console sign-in with key %s (%s)", key.name, key.province)
    fresh = signed_in(session, key)
    return console.keep(request, console.redirect(request, PAGES[0].path), fresh)


async def logout(request: Request) -> Response:
    console: Console = request.app.state.console
    session = console.session(request)
    form = await posted_form(console, request, session)
    if isinstance(form, Response):
        return form
    response = console.redirect(request, "/login")
    response.headers.append("set-cookie", console.sessions.cleared(request.scope.get("root_path", "") or "/"))
    return response


async def language(request: Request) -> Response:
    """The language for this session (zh or en), then back to the page it was chosen on."""
    console: Console = request.app.state.console
    session = console.session(request)
    form = await posted_form(console, request, session)
    if isinstance(form, Response):
        return form
    if form.get("lang") not in LANGUAGES:
        return console.render(request, "message.html", {"message": "csrf"}, session, 403)
    back = form.get("next", "")
    back = back if back in {p.path for p in PAGES} or back == "/login" else PAGES[0].path
    return console.keep(request, console.redirect(request, back), {**session, "lang": form["lang"]})


async def home(request: Request) -> Response:
    return request.app.state.console.redirect(request, PAGES[0].path)


async def plotly_js(request: Request) -> Response:
    """plotly.js from the installed plotly package: charts work offline, no CDN."""
    import plotly

    return FileResponse(
        Path(plotly.__file__).parent / "package_data" / "plotly.min.js", media_type="text/javascript"
    )


def console_app(
    settings: Settings | None = None,
    models=None,
    *,
    backend: Callable | None = None,
    https_only: bool = False,
) -> Starlette:
    """The console under ``/console``: on ``settings`` (champions, stores and keys loaded on first use;
    ``models`` to give a loaded ``ModelSet``), or on ``backend``, a callable returning an object with
    ``settings``, ``keys``, ``models``, ``online`` and ``prepared`` (the BentoML service instance).
    ``https_only`` marks the cookie Secure (behind TLS)."""
    if backend is None:
        if settings is None:
            raise ValueError("console_app needs settings or a backend")
        backend = LazyBackend(settings, models)
    routes = [
        Route("/", home),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang", language, methods=["POST"]),
        Route("/static/plotly.min.js", plotly_js),
        Route("/campaigns/{name}/download", campaign_download),
        Route("/overview/export", overview_export, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        *(Route(p.path, page_endpoint(p), methods=list(p.methods)) for p in PAGES),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.console = Console(backend, settings, https_only)
    return app


def standalone_app(settings: Settings, backend=None, https_only: bool = False) -> Starlette:
    """``telcoml console``'s app: the console at ``/console``, ``/`` leading there; on a loaded
    ``Backend`` if given."""
    console = console_app(
        settings, backend=(lambda: backend) if backend is not None else None, https_only=https_only
    )

    async def root(request: Request) -> Response:
        return RedirectResponse(PATH + "/", status_code=307)

    return Starlette(routes=[Route("/", root), Mount(PATH, app=console)])


def serve_console(
    settings: Settings, host: str = "127.0.0.1", port: int = 8700, backend=None, https_only: bool = False
) -> None:
    """Run the console alone (uvicorn); phone numbers masked in the server's logs, as the service's."""
    import uvicorn

    from serving.guard import guard_server_logs

    # plain records (uvicorn's access formatter reads the record's arguments, which masking replaces)
    plain = {"format": "%(asctime)s [%(levelname)s] [%(name)s] %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    log_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": plain},
        "handlers": {"stderr": handler},
        "loggers": {
            name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
            for name in ("uvicorn", "uvicorn.access")
        },
    }
    config = uvicorn.Config(
        standalone_app(settings, backend, https_only), host=host, port=port, log_config=log_config
    )
    server = uvicorn.Server(config)
    guard_server_logs()  # uvicorn configured its handlers in Config
    server.run()
