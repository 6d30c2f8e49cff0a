"""The service's edge: what a request must be before BentoML parses it, what an error looks
like on the way out, and what the server's logs and ``/metrics`` may hold.

An API caller, or anyone who can reach the port, meets these rules:

- **Bodies are bounded by the bytes read**, whatever the framing: a ``Content-Length``
  over the limit is refused at once, and a chunked body is read only up to the limit
  (413), so neither parsing nor memory grows with what a client sends.
- **One error shape** for every 4xx and 5xx: ``{"error": code, "message": text}``. BentoML's
  own validation errors are rewritten into it, naming the field and what is wrong with
  it, never echoing the input.
- **Unknown paths are 404 in that shape**, and ``/metrics`` counts them under one label
  (``/{unmatched}``): a scan of random paths (or of phone numbers as paths) adds nothing
  to ``/metrics`` and keeps no number.
- **The internal batch endpoint** (``/score_items``) answers only this process's own
  client, which carries a per-process token; from outside it is 404 like any unknown path.
- **Logs**: every record passing the server's handlers has its phone numbers masked; a
  client's malformed request is one WARNING line naming the field, not a traceback with
  the input in it; a server error keeps its traceback, masked.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from collections.abc import Iterable

from core.msisdn import mask_msisdn

#: Largest request body accepted, in bytes read (a /score_batch of 500 numbers is ~8 KB).
MAX_BODY_BYTES = 64 * 1024
#: Largest error body of BentoML's that is rewritten (its own errors are a few KB at most).
MAX_ERROR_BYTES = 256 * 1024
#: The label under which ``/metrics`` counts requests to paths the service does not have.
UNMATCHED = "/{unmatched}"
#: Paths BentoML serves besides the service's APIs.
BENTOML_PATHS = ("/", "/docs.json", "/schema.json", "/livez", "/readyz", "/healthz", "/metrics")
#: Path prefixes BentoML serves (the index page's and the Swagger UI's files).
BENTOML_PREFIXES = ("/assets/", "/static_content/")
#: The header the service's own client sends to reach the internal batch endpoint.
INTERNAL_HEADER = "x-telcoml-internal"
#: This process's token for it: each worker has its own, and it never leaves the process.
INTERNAL_TOKEN = secrets.token_urlsafe(32)
INTERNAL_HEADER_BYTES = INTERNAL_HEADER.encode()


def known_path(path: str, routes: Iterable[str]) -> bool:
    """Whether the service (or BentoML around it) answers ``path``."""
    return path in routes or path in BENTOML_PATHS or path.startswith(BENTOML_PREFIXES)


def mounted(path: str, mounts: Iterable[str]) -> str | None:
    """The mounted app's prefix ``path`` is under (``/console``), or None."""
    return next((m for m in mounts if path == m or path.startswith(m + "/")), None)


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": code, "message": message}, ensure_ascii=False).encode()


class RequestGuard:
    """ASGI middleware in front of the service's routes (inside BentoML's metrics and log layers).

    ``routes`` are the service's API paths; ``internal`` the ones only its own client may
    call; ``keyed`` the ones that need an API key (refused before the body is read when
    no key is presented at all). ``mounts`` are the prefixes of mounted apps (the console), which
    bound, check and answer their own requests (forms, not JSON; HTML pages, not JSON errors).
    """

    def __init__(
        self,
        app,
        routes: Iterable[str] = (),
        internal: Iterable[str] = (),
        keyed: Iterable[str] = (),
        max_bytes: int = MAX_BODY_BYTES,
        larger: dict[str, int] | None = None,
        objects: Iterable[str] = (),
        mounts: Iterable[str] = (),
    ):
        self.app = app
        self.mounts = tuple(mounts)
        self.routes = frozenset(routes)
        self.internal = frozenset(internal)
        self.keyed = frozenset(keyed)
        self.max_bytes = max_bytes
        #: routes whose bodies may be larger (``/feedback``: 500 events of ~250 bytes)
        self.larger = dict(larger or {})
        #: routes taking the whole body as one JSON object (BentoML's root input): the guard parses
        #: it first, as BentoML answers a body that is not JSON there with a 500
        self.objects = frozenset(objects)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if mounted(path, self.mounts):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if not known_path(path, self.routes) or (
            path in self.internal
            # bytes, not text: compare_digest refuses non-ASCII text (a 500 for a crafted header)
            and not secrets.compare_digest(headers.get(INTERNAL_HEADER_BYTES, b""), INTERNAL_TOKEN.encode())
        ):
            return await _refuse(send, 404, "not_found", "no such endpoint; the API is in /docs.json")
        if scope.get("method") == "POST":
            limit = self.larger.get(path, self.max_bytes)
            length = headers.get(b"content-length")
            media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
            if length is not None and (not length.isdigit() or int(length) > limit):
                return await _refuse(send, 413, "body_too_large", f"request body over {limit} bytes")
            if media != b"application/json":
                return await _refuse(
                    send, 415, "unsupported_media_type", "send the request body as application/json"
                )
            if (
                path in self.keyed
                and b"x-api-key" not in headers
                and not headers.get(b"authorization", b"").lower().startswith(b"bearer ")
            ):
                return await _refuse(send, 401, "unauthorized", "missing API key (header X-API-Key)")
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return
                body += message.get("body", b"")
                if len(body) > limit:
                    return await _refuse(send, 413, "body_too_large", f"request body over {limit} bytes")
                if not message.get("more_body", False):
                    break
            if path in self.objects and not _json_object(bytes(body)):
                return await _refuse(send, 400, "invalid_request", "the request body must be one JSON object")
            receive = _replay(bytes(body), receive)
        await self.app(scope, receive, _ErrorShape(send))


def _json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


def _replay(body: bytes, receive):
    """A ``receive`` that hands the app the body already read, then the client's own events."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send, status: int, code: str, message: str) -> None:
    body = error_body(code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _ErrorShape:
    """Rewrites an error response that is not in the service's shape (BentoML's validation
    errors, Starlette's plain-text ones) into ``{"error", "message"}`` without the input."""

    def __init__(self, send):
        self.send = send
        self.held: dict | None = None  # an error's start, held until its body is seen
        self.body = bytearray()
        self.done = False

    async def __call__(self, message):
        if self.done:  # the rewritten error went out whole; the rest of the original is dropped
            return None
        if message["type"] == "http.response.start":
            if message["status"] < 400:
                return await self.send(message)
            self.held = message
            return None
        if self.held is None or message["type"] != "http.response.body":
            return await self.send(message)
        self.body += message.get("body", b"")
        if message.get("more_body", False) and len(self.body) <= MAX_ERROR_BYTES:
            return None
        status = self.held["status"]
        shaped = reshape_error(status, bytes(self.body))
        headers = [
            (k, v)
            for k, v in self.held.get("headers", [])
            if k.lower() not in (b"content-length", b"content-type")
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(shaped)).encode())]
        self.done = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": shaped})


#: Error codes for statuses whose body is not already in the service's shape.
_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "body_too_large",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


def reshape_error(status: int, body: bytes) -> bytes:
    """An error body in the service's shape: kept if it already is, otherwise rebuilt from
    the fields a validation error names (location and problem, never the input)."""
    try:
        data = json.loads(body) if len(body) <= MAX_ERROR_BYTES else None
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str) and isinstance(data.get("message"), str):
        return body  # the service's own
    code = _CODES.get(status, "server_error" if status >= 500 else "invalid_request")
    if status == 503:
        return error_body(code, "not ready, or busy: retry shortly")
    if status >= 500:
        return error_body(code, "an unexpected error; it is in the server log")
    return error_body(code, validation_summary(data) or "the request body does not fit this endpoint")


def validation_summary(data) -> str:
    """``msisdn: Input should be a valid string`` for each problem of a validation error."""
    details = data.get("detail") if isinstance(data, dict) else None
    if isinstance(details, list):
        parts = []
        for item in details[:10]:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body",))
                parts.append(f"{where or 'body'}: {item.get('msg', 'invalid')}"[:200])
        return "; ".join(parts)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return mask_msisdn(data["error"].splitlines()[0])[:200]
    return ""


# -- /metrics: route templates only ------------------------------------------------------
def bound_metric_labels(routes: Iterable[str], mounts: Iterable[str] = ()) -> None:
    """Make BentoML's request metrics label unknown paths ``/{unmatched}``, and every path of a
    mounted app ``<prefix>/{page}``.

    BentoML 1.4 labels ``bentoml_service_request_*`` with the raw request path, so every
    path a client invents becomes a permanent series (a phone number as a path ends up in
    the unauthenticated ``/metrics``; 10,000 random paths made it 37 MB). The middleware is
    looked up when the app is built, so a subclass put in its place before that sees
    every request with the path relabelled and hands the app the original.
    """
    from bentoml._internal.server.http import instruments

    if getattr(instruments.RunnerTrafficMetricsMiddleware, "bounded", False):
        return
    known, prefixes = frozenset(routes), tuple(mounts)
    base = instruments.RunnerTrafficMetricsMiddleware

    class RouteTemplateMetrics(base):  # type: ignore[misc, valid-type]
        bounded = True

        def __init__(self, app, **options):
            super().__init__(_RestorePath(app), **options)

        async def __call__(self, scope, receive, send):
            path = scope.get("path", "") if scope["type"] == "http" else None
            if path is not None and not known_path(path, known):
                mount = mounted(path, prefixes)
                label = f"{mount}/{{page}}" if mount else UNMATCHED
                scope = {**scope, "path": label, "telcoml.path": path}
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = RouteTemplateMetrics


class _RestorePath:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if "telcoml.path" in scope:
            scope = {**scope, "path": scope.pop("telcoml.path")}
        await self.app(scope, receive, send)


# -- logs ----------------------------------------------------------------------------------
class ServerLogFilter(logging.Filter):
    """On the server's handlers: numbers masked in every record; a client's bad request one
    WARNING line naming what was wrong; a server error's traceback kept, masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "telcoml_filtered", False):
            return True
        record.telcoml_filtered = True
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            if _client_error(err):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                if hasattr(record, "levelname_bracketed"):  # BentoML's filter ran first
                    record.levelname_bracketed = "[WARNING]"
                message = f"{message}: rejected ({type(err).__name__}: {_describe(err)})"
            else:
                record.exc_text = mask_msisdn("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask_msisdn(record.exc_text)
        record.msg, record.args = mask_msisdn(message), ()
        return True


def _client_error(err: BaseException) -> bool:
    """A request the client got wrong (BentoML logs these with a traceback, as if ours)."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError | json.JSONDecodeError | UnicodeDecodeError):
        return True
    code = getattr(err, "error_code", None)
    return code is not None and 400 <= int(code) < 500


def _describe(err: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        return validation_summary({"detail": err.errors(include_input=False, include_context=False)})
    return str(err).splitlines()[0][:200] if str(err) else "no detail"


def guard_server_logs(
    names: Iterable[str] = ("", "bentoml", "uvicorn", "uvicorn.error", "uvicorn.access"),
) -> None:
    """Put ``ServerLogFilter`` on every handler of the server's loggers (once each)."""
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, ServerLogFilter) for f in handler.filters):
                handler.addFilter(ServerLogFilter())


__all__ = [
    "INTERNAL_HEADER",
    "INTERNAL_TOKEN",
    "MAX_BODY_BYTES",
    "RequestGuard",
    "bound_metric_labels",
    "error_body",
    "guard_server_logs",
]
