"""The CRM's prediction service on BentoML.

``POST /score`` answers for one caller while the agent is on the line; ``POST
/score_batch`` scores a list (per-item errors, the good ones still scored); ``POST
/feedback`` takes back what the CRM did (``features.feedback``); ``POST
/reload`` swaps in the registry's current champions without dropping requests.

Prepared answers first: a customer whose answer was prepared for the current online
indicators and champions (``serving.prepared``, ``telcoml prepare``) is answered with one
key lookup; everyone else is scored live. ``answered_from`` in the answer says which.

Adaptive batching (live scoring): both scoring endpoints authenticate and validate, then hand the
customers to ``score_items``, a batchable API that BentoML's adaptive batcher feeds
with the customers of every caller waiting at that moment: one Feast lookup and one
pass of each model for all of them. A merged batch mixes callers, so no key can be
checked there: each item carries its caller's province scope and an HMAC grant made
by this process, and the batch refuses out-of-scope customers item by item (answered
like unknown ones: 404). ``score_items`` answers only this process's own client
(``serving.guard``): from outside it is an unknown path. ``/livez``,
``/readyz`` (champions loaded, store answering),
``/metrics`` and the OpenAPI document at ``/docs.json`` come from BentoML.

Every API takes an ``X-API-Key`` header; keys are scoped by province. Errors are JSON
``{"error": code, "message": ...}`` with a 4xx/5xx status, never a traceback and never
the input echoed; bodies, paths, logs and ``/metrics`` are bounded at the edge
(``serving.guard``).
The web console (``serving.console``) is mounted at ``/console`` on this service's own champions,
stores and keys; it bounds and answers its own requests (HTML forms and pages).
Configuration comes from the environment (``TELCOML_WORKDIR`` etc., see settings).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from typing import Any, Literal

import bentoml
import sqlalchemy.exc
from bentoml.exceptions import BentoMLException
from pydantic import Field
from starlette.responses import Response

from core.errors import TelcomlError
from core.logs import get_logger
from core.msisdn import MSISDN_PATTERN, mask_msisdn
from core.settings import get_settings
from core.tasks import TASKS
from features.feedback import MAX_EVENTS, FeedbackError, FeedbackStore, parse_events
from features.feedback import STATUSES as FEEDBACK_STATUSES
from monitoring.record import ScoreLog
from serving.answers import customer_answer, score_frame
from serving.autoprepare import start_background_prepare
from serving.champions import ModelSet, load_champions
from serving.console.app import PATH as CONSOLE_PATH
from serving.console.app import console_app
from serving.guard import (
    INTERNAL_HEADER,
    INTERNAL_TOKEN,
    RequestGuard,
    bound_metric_labels,
    guard_server_logs,
)
from serving.online import OnlineFeatures, StoreUnavailable
from serving.prepared import PreparedAnswers, unpack
from serving.scorelog import DeferredScoreLog
from serving.security import ALL_PROVINCES, ApiKey, KeyRing, may_score

log = get_logger("telcoml.serving", logging.INFO)
MAX_BATCH = 500
#: Largest /feedback body: 500 events of ~250 bytes with room to spare.
FEEDBACK_BODY_BYTES = 256 * 1024
#: Adaptive batching of ``score_items``: at most this many customers per merged batch, and
#: a request waiting longer than this is refused (503) rather than queued without bound.
MAX_BATCH_ITEMS = 64
MAX_LATENCY_MS = 2000
#: Items per internal call: well under the body limit, and the batcher can interleave callers.
ITEMS_PER_CALL = 50
#: What ``reasons`` may ask for: all evaluations, none, or one task's (TreeSHAP is most of a
#: call's model time, so a caller that shows only the credit grade's reasons can say so).
REASONS = ("all", "none", *TASKS)
Reasons = Literal[REASONS]  # type: ignore[valid-type]


def reasons_for(ask: str) -> tuple[str, ...]:
    """The tasks whose answers carry reasons for a caller's ``reasons``."""
    return tuple(TASKS) if ask == "all" else () if ask == "none" else (ask,)


_ANSWERED = None


def answered_counter():
    """``telcoml_answers_total{answered_from="prepared"|"live"}`` on ``/metrics``: how many
    customers each path answered. Created on first use, once BentoML's worker has set up
    Prometheus's multiprocess directory (as its docs ask)."""
    global _ANSWERED
    if _ANSWERED is None:
        from prometheus_client import Counter

        _ANSWERED = Counter("telcoml_answers", "Customers answered with 200, by path", ["answered_from"])
    return _ANSWERED


def _unknown(msisdn: str) -> dict:
    """A customer the caller cannot be answered for: not in the online store, or another
    province's (the same answer for both, so a province's key cannot learn whether a number
    is another province's subscriber)."""
    return {
        "msisdn": msisdn,
        "status": 404,
        "error": "unknown_customer",
        "message": f"customer {mask_msisdn(msisdn)} is not known to this key: not a subscriber "
        "(of the key's province), or not materialized",
    }


def _trim_reasons(answer: dict, reasons: str) -> dict:
    """A prepared answer (reasons for every evaluation) with reasons only where asked; a rule over
    the model (the black list capping the grade) stays, as live scoring keeps it."""
    wanted = reasons_for(reasons)
    for task in TASKS:
        if task in answer and task not in wanted:
            answer[task]["reasons"] = [r for r in answer[task]["reasons"] if r.get("rule")]
    return answer


def _error(ctx: bentoml.Context, status: int, code: str, message: str, **extra) -> dict:
    ctx.response.status_code = status
    return {"error": code, "message": message, **extra}


@bentoml.service(
    name="telcoml",
    traffic={"timeout": 30, "concurrency": 64},
    workers=int(os.environ.get("TELCOML_SERVE_WORKERS", "1")),
    # the runtime lock: main dependencies only, no test or notebook tools (`make lock` writes it)
    image=bentoml.images.Image(python_version="3.11").requirements_file("requirements-runtime.lock"),
)
# the web console (serving.console) on this service's own champions, stores and keys
@bentoml.asgi_app(console_app(backend=bentoml.get_current_service), path=CONSOLE_PATH)
class TelcomlService:
    """Loads every task's champion and the Feast online store once, then answers the CRM."""

    def __init__(self) -> None:
        self.settings = get_settings()
        self.keys = KeyRing(self.settings)  # re-read within seconds of `telcoml keys create|revoke`
        self.models: ModelSet = load_champions(self.settings)
        self.online = OnlineFeatures(self.settings)
        self.prepared = PreparedAnswers(self.settings) if self.settings.prepared_answers else None
        self.answered = {path: answered_counter().labels(answered_from=path) for path in ("prepared", "live")}
        # every answered customer goes to weekly monitoring (buffered, written off the request path)
        self.score_log = DeferredScoreLog(
            ScoreLog(self.settings, f"api-{os.getpid()}", flush_seconds=self.settings.record_flush_seconds)
        )
        self._reload_lock = threading.Lock()
        self._feedback: FeedbackStore | None = None  # opened on the first feedback (a database may be down)
        # signs the items the public endpoints hand to ``score_items``; never leaves the process
        self._grant_key = secrets.token_bytes(32)
        guard_server_logs()  # BentoML has configured its handlers by now
        log.info("loaded champions %s", self.models.versions)

    def __is_ready__(self) -> bool:
        try:
            self.online.fetch(["13800000000"])
        except StoreUnavailable:
            return False
        return bool(self.models.models or self.models.provinces)

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _presented(ctx: bentoml.Context) -> str | None:
        headers = ctx.request.headers
        presented = headers.get("x-api-key")
        if not presented and headers.get("authorization", "").lower().startswith("bearer "):
            presented = headers["authorization"][7:].strip()
        return presented

    def _caller(self, ctx: bentoml.Context) -> ApiKey | None:
        """The caller's valid key, or None (missing, unknown, revoked, expired: ``_unauthorized``)."""
        return self.keys.caller(self._presented(ctx))

    def _unauthorized(self, ctx: bentoml.Context) -> dict:
        """The 401, saying whether the key is unknown, revoked or expired."""
        return _error(ctx, 401, "unauthorized", self.keys.refusal(self._presented(ctx)))

    def _grant(self, msisdn: str, scope: str, reasons: str) -> str:
        return hmac.new(self._grant_key, f"{msisdn}|{scope}|{reasons}".encode(), hashlib.sha256).hexdigest()

    def _item(self, msisdn: str, caller: ApiKey, reasons: str) -> dict:
        """One customer to score, carrying the caller's scope and a grant that proves it."""
        return {
            "msisdn": msisdn,
            "scope": caller.province,
            "reasons": reasons,
            "grant": self._grant(msisdn, caller.province, reasons),
        }

    def _prepared(self, msisdns: list[str], caller: ApiKey, reasons: str) -> list[dict | bytes | None]:
        """Prepared answers that are current: the answer's JSON (``reasons`` all), the
        answer trimmed to the reasons asked, or a 404 (503: store down) item; None to score live."""
        if self.prepared is None:
            return [None] * len(msisdns)
        try:
            found = self.prepared.lookup(msisdns)
        except StoreUnavailable as err:  # the same store serves the live lookup: no second wait for it
            return [
                {"msisdn": m, "status": 503, "error": "store_unavailable", "message": str(err)}
                for m in msisdns
            ]
        models = self.models  # the set answering right now
        out: list[dict | bytes | None] = []
        for msisdn, hit in zip(msisdns, found):
            own = models.for_province(hit.province) if hit is not None else None
            if hit is None or hit.generation != self.prepared.current(own, hit.province):
                out.append(None)  # none prepared, or prepared for other indicators or champions
            elif not may_score(caller.province, hit.province):
                out.append(_unknown(msisdn))
            else:
                self.score_log.record_prepared(hit.indicators, hit.answer, own.names)
                self.answered["prepared"].inc()
                out.append(
                    hit.answer_json() if reasons == "all" else _trim_reasons(unpack(hit.answer), reasons)
                )
        return out

    async def _answers(self, items: list[dict]) -> list[dict]:
        """Hand items to the batchable ``score_items`` through BentoML's own client (so the
        adaptive batcher merges them with other callers'), in chunks under the body limit."""
        chunks = [items[i : i + ITEMS_PER_CALL] for i in range(0, len(items), ITEMS_PER_CALL)]
        client = self._internal_client()
        try:
            parts = await asyncio.gather(*(client.score_items(chunk) for chunk in chunks))
        except BentoMLException as err:
            if int(getattr(err, "error_code", 500)) != 503:
                raise
            # the batcher refused: waiting would have exceeded MAX_LATENCY_MS
            return [
                {
                    "msisdn": item["msisdn"],
                    "status": 503,
                    "error": "overloaded",
                    "message": "the service is busy; retry shortly",
                }
                for item in items
            ]
        return [answer for part in parts for answer in part]

    def _internal_client(self):
        """BentoML's in-process client of this service, without its periodic session refresh.

        BentoML 1.4.39's client closes its session every 100 requests (or 5 minutes) while
        other requests are still in flight on it; under concurrent load those fail with
        "Server disconnected" (bentoml/BentoML#5540, #5544). In process the session costs
        nothing to keep, so it is kept.
        """
        client = self.to_async
        manager = getattr(client, "_session_manager", None)
        if manager is not None and getattr(manager, "max_requests", None) != float("inf"):
            manager.max_requests = manager.max_age = float("inf")
            # the token that opens the internal batch endpoint (serving.guard); set before
            # the session is made, which copies the headers
            manager._headers[INTERNAL_HEADER] = INTERNAL_TOKEN
        return client

    def _score(self, items: list[dict]) -> list[dict]:
        """Answers (or per-customer errors) for items of possibly different callers, in order.

        Each item carries its caller's province scope; customers outside it are refused
        before the five models run, whoever else shares the batch.
        """
        models = self.models  # one consistent set for the whole batch, even during a reload
        answers: list[dict | None] = [None] * len(items)
        granted = []
        for i, item in enumerate(items):
            msisdn, scope, reasons = item.get("msisdn"), item.get("scope"), item.get("reasons", "all")
            if not (
                isinstance(msisdn, str)
                and isinstance(scope, str)
                and reasons in REASONS
                and hmac.compare_digest(str(item.get("grant", "")), self._grant(msisdn, scope, reasons))
            ):
                answers[i] = {
                    "msisdn": mask_msisdn(str(msisdn)),
                    "status": 401,
                    "error": "unauthorized",
                    "message": "items are accepted only from this service's own endpoints",
                }
            else:
                granted.append(i)
        if not granted:
            return answers
        try:
            features = self.online.fetch([items[i]["msisdn"] for i in granted])
        except StoreUnavailable as err:
            for i in granted:
                answers[i] = {
                    "msisdn": items[i]["msisdn"],
                    "status": 503,
                    "error": "store_unavailable",
                    "message": str(err),
                }
            return answers
        have = features.known()
        provinces = features["province"]
        in_scope = [
            k for k, i in enumerate(granted) if have[k] and may_score(items[i]["scope"], provinces[k])
        ]
        # only customers their caller may see are scored; reasons as asked, batched by the ask
        scored: dict[int, dict] = {}
        for reasons in {items[granted[k]].get("reasons", "all") for k in in_scope}:
            rows = [k for k in in_scope if items[granted[k]].get("reasons", "all") == reasons]
            # each province's customers by its own set (its champions where it has them)
            for province in dict.fromkeys(provinces[k] for k in rows):
                part = [k for k in rows if provinces[k] == province]
                subset, own = features.take(part), models.for_province(province)
                answered = score_frame(own, subset, reason_tasks=reasons_for(reasons))
                scored.update(zip(part, answered))
                self.score_log.record(subset, answered, own.names)
                self.answered["live"].inc(len(answered))
        for k, i in enumerate(granted):
            msisdn = items[i]["msisdn"]
            if k not in scored:  # not in the store, or out of the caller's scope: the same answer
                answers[i] = _unknown(msisdn)
            else:
                answers[i] = {
                    "status": 200,
                    **customer_answer(
                        msisdn,
                        provinces[k],
                        scored[k],
                        models.for_province(provinces[k]),
                        features.as_of[k],
                        "live",
                    ),
                }
        return answers

    # -- endpoints --------------------------------------------------------------------------
    @bentoml.api(route="/score")
    async def score(
        self,
        ctx: bentoml.Context,
        msisdn: str = Field(..., description="11-digit mobile number", examples=["13812342343"]),
        reasons: Reasons = Field("all", description="evaluations whose answers carry reasons"),
    ) -> dict:
        """Every evaluation of one customer, with reasons and handling guidance."""
        started = time.perf_counter()
        caller = self._caller(ctx)
        if caller is None:
            return self._unauthorized(ctx)
        if not MSISDN_PATTERN.match(msisdn):
            return _error(
                ctx,
                422,
                "invalid_msisdn",
                f"msisdn must be an 11-digit mobile number, got {mask_msisdn(msisdn)!r}",
            )
        prepared = self._prepared([msisdn], caller, reasons)[0]
        if isinstance(prepared, bytes):  # the prepared answer's own JSON, as stored
            log.info(
                "score %s -> 200 prepared in %.1f ms (key %s)",
                msisdn,
                1000 * (time.perf_counter() - started),
                caller.name,
            )
            return Response(prepared, media_type="application/json")
        answer = (
            prepared
            if prepared is not None
            else (await self._answers([self._item(msisdn, caller, reasons)]))[0]
        )
        status = answer.pop("status", 200)
        log.info(
            "score %s -> %s %s in %.1f ms (key %s)",
            msisdn,
            status,
            answer.get("answered_from", ""),
            1000 * (time.perf_counter() - started),
            caller.name,
        )
        if status == 503:
            return _error(ctx, 503, answer["error"], answer["message"])
        if status != 200:
            ctx.response.status_code = status
        return answer

    @bentoml.api(route="/score_batch")
    async def score_batch(
        self,
        ctx: bentoml.Context,
        msisdns: list[str] = Field(..., description=f"up to {MAX_BATCH} mobile numbers"),
        reasons: Reasons = Field("all", description="evaluations whose answers carry reasons"),
    ) -> dict:
        """Score a list in one pass: per-item results or errors; good items are still scored."""
        caller = self._caller(ctx)
        if caller is None:
            return self._unauthorized(ctx)
        if len(msisdns) > MAX_BATCH:
            return _error(
                ctx, 413, "batch_too_large", f"at most {MAX_BATCH} numbers per batch, got {len(msisdns)}"
            )
        valid = list(dict.fromkeys(m for m in msisdns if isinstance(m, str) and MSISDN_PATTERN.match(m)))
        prepared = dict(zip(valid, self._prepared(valid, caller, reasons))) if valid else {}
        live = [m for m in valid if prepared[m] is None]
        answered = {
            m: {"status": 200, **(json.loads(p) if isinstance(p, bytes) else p)}
            for m, p in prepared.items()
            if p is not None
        }
        answered.update(
            zip(live, await self._answers([self._item(m, caller, reasons) for m in live]) if live else [])
        )
        results = []
        for m in msisdns:
            if m in answered:
                results.append(answered[m])
            else:
                results.append(
                    {
                        "msisdn": m,
                        "status": 422,
                        "error": "invalid_msisdn",
                        "message": "msisdn must be an 11-digit mobile number",
                    }
                )
        unavailable = next((r for r in results if r["status"] == 503), None)
        if unavailable is not None:
            return _error(ctx, 503, unavailable["error"], unavailable["message"])
        log.info(
            "batch of %d from key %s: %d scored",
            len(msisdns),
            caller.name,
            sum(r["status"] == 200 for r in results),
        )
        return {"results": results, "scored": sum(r["status"] == 200 for r in results), "count": len(results)}

    @bentoml.api(
        route="/score_items", batchable=True, max_batch_size=MAX_BATCH_ITEMS, max_latency_ms=MAX_LATENCY_MS
    )
    def score_items(self, items: list[dict]) -> list[dict]:
        """Internal: customers from ``/score`` and ``/score_batch`` of any callers, merged by
        BentoML's adaptive batcher into one Feast lookup and one pass of each model.

        Only items granted by this process's own endpoints are scored (others get a 401
        item), so calling it from outside gains nothing.
        """
        return self._score(items)

    @bentoml.api(route="/feedback")
    async def feedback(self, body: dict[str, Any], /, ctx: bentoml.Context) -> dict:
        """What the CRM did: one event, or ``{"events": [...]}`` (up to 500). Each ``event_id`` is
        stored once (again: ``duplicate``; with other content: ``conflict``, not stored); one bad event
        and nothing of the request is stored."""
        caller = self._caller(ctx)
        if caller is None:
            return self._unauthorized(ctx)
        items = body.get("events") if set(body) == {"events"} else [body]
        if not isinstance(items, list) or not items:
            return _error(ctx, 422, "invalid_event", 'send one event, or {"events": [...]} with at least one')
        if len(items) > MAX_EVENTS:
            return _error(
                ctx, 413, "batch_too_large", f"at most {MAX_EVENTS} events per request, got {len(items)}"
            )
        try:
            events = parse_events(items, caller.province)
        except FeedbackError as err:
            if err.forbidden:
                return _error(ctx, 403, "forbidden", str(err), field=err.field)
            return _error(ctx, 422, "invalid_event", str(err), field=err.field)
        try:
            if self._feedback is None:
                self._feedback = FeedbackStore(self.settings.feedback_store)
            statuses = await asyncio.to_thread(self._feedback.add, events)
        except sqlalchemy.exc.SQLAlchemyError as err:
            log.warning("feedback store unavailable: %s", type(err).__name__)
            return _error(ctx, 503, "store_unavailable", "the feedback store is not answering; retry shortly")
        counts = {status: statuses.count(status) for status in FEEDBACK_STATUSES}
        log.info("feedback of %d from key %s: %s", len(events), caller.name, counts)
        return {
            "results": [{"event_id": e.event_id, "status": s} for e, s in zip(events, statuses)],
            **counts,
            "count": len(statuses),
        }

    def _campaign_caller(self, ctx: bentoml.Context, province: object) -> dict | None:
        """None if the caller may run a campaign of ``province``, else the error to answer."""
        caller = self._caller(ctx)
        if caller is None:
            return self._unauthorized(ctx)
        if caller.province != ALL_PROVINCES and province != caller.province:
            return _error(
                ctx, 403, "forbidden", f"a {caller.province} key may only run {caller.province} campaigns"
            )
        return None

    @bentoml.api(route="/campaigns/plan")
    async def campaign_plan(self, body: dict[str, Any], /, ctx: bentoml.Context) -> dict:
        """A campaign (the YAML's keys as JSON, plus ``"export": true`` to write the outbound files):
        its counts, suppressions by reason, control group and profile on the latest snapshot."""
        from pydantic import ValidationError

        from serving.campaign_config import Campaign
        from serving.campaign_run import run_campaign

        definition = {k: v for k, v in body.items() if k != "export"}
        refused = self._campaign_caller(ctx, definition.get("province"))
        if refused is not None:
            return refused
        try:
            campaign = Campaign.model_validate(definition, strict=False)
        except ValidationError as err:
            first = err.errors(include_url=False, include_input=False)[0]
            field = ".".join(str(p) for p in first["loc"])
            return _error(ctx, 422, "invalid_campaign", f"{field}: {first['msg']}", field=field)
        export = body.get("export") is True
        try:
            result = await asyncio.to_thread(run_campaign, self.settings, self.models, campaign, None, export)
        except TelcomlError as err:
            return _error(ctx, 409, "not_ready", str(err))
        files = {k: str(p.relative_to(self.settings.workdir)) for k, p in result.files.items()}
        return {**result.preview, "files": files}

    @bentoml.api(route="/campaigns/report")
    async def campaign_report(self, body: dict[str, Any], /, ctx: bentoml.Context) -> dict:
        """An exported campaign's response report (``{"name": ..., "as_of": "2026-07-31"}``): uplift
        against the control group with its interval, answers by wave, channel and contact count."""
        import datetime as dt

        from serving.campaign_config import CAMPAIGN_NAME
        from serving.campaign_report import plain, read_export, report_campaign

        name, as_of = body.get("name"), body.get("as_of")
        if not isinstance(name, str) or not CAMPAIGN_NAME.fullmatch(name):
            return _error(ctx, 422, "invalid_campaign", "name: an exported campaign's name", field="name")
        try:
            day = dt.date.fromisoformat(as_of) if as_of is not None else None
        except (TypeError, ValueError):
            return _error(ctx, 422, "invalid_campaign", "as_of: a date like 2026-07-31", field="as_of")
        try:
            export = await asyncio.to_thread(read_export, self.settings, name)
        except TelcomlError:
            return _error(ctx, 404, "not_found", f"no exported campaign {name}")
        refused = self._campaign_caller(ctx, export.campaign.province)
        if refused is not None:
            return refused
        result = await asyncio.to_thread(report_campaign, self.settings, name, day, False)
        return {"campaign": name, "province": export.campaign.province, **plain(result.report)}

    @bentoml.api(route="/reload")
    def reload(self, ctx: bentoml.Context) -> dict:
        """Load the registry's current champions, then swap them in at once (group keys only)."""
        caller = self._caller(ctx)
        if caller is None or caller.province != ALL_PROVINCES:
            return _error(
                ctx, 403 if caller else 401, "forbidden", "reload needs a group (all-province) API key"
            )
        with self._reload_lock:
            previous = self.models.versions
            self.models = load_champions(self.settings)  # a single reference swap
            self.keys.refresh(force=True)
        log.info("reloaded champions %s -> %s", previous, self.models.versions)
        # answers for the set now answering: provinces already current are skipped
        preparing = start_background_prepare(self.settings, "POST /reload") if self.prepared else None
        return {
            "previous": previous,
            "current": self.models.versions,
            "loaded_at": self.models.loaded_at,
            "provinces": {p: m.names for p, m in self.models.provinces.items()},
            "preparing": preparing is not None,
        }

    @bentoml.api(route="/models")
    def models_in_service(self, ctx: bentoml.Context) -> dict:
        """Which champion versions are answering (a province's key sees its own province's)."""
        caller = self._caller(ctx)
        if caller is None:
            return self._unauthorized(ctx)
        return {
            "versions": self.models.versions,
            "models": self.models.names,
            "loaded_at": self.models.loaded_at,
            "provinces": {
                p: m.names for p, m in self.models.provinces.items() if may_score(caller.province, p)
            },
            "prepared_answers": {
                "enabled": self.prepared is not None,
                "materialization": self.prepared.watermark if self.prepared else None,
            },
        }


#: Every API path, and those only this process's own client may call.
ROUTES = tuple(api.route for api in TelcomlService.apis.values())
INTERNAL_ROUTES = ("/score_items",)
bound_metric_labels(ROUTES, mounts=(CONSOLE_PATH,))
KEYED_ROUTES = tuple(r for r in ROUTES if r not in INTERNAL_ROUTES)
TelcomlService.add_asgi_middleware(
    RequestGuard,
    routes=ROUTES,
    internal=INTERNAL_ROUTES,
    keyed=KEYED_ROUTES,
    larger={"/feedback": FEEDBACK_BODY_BYTES},
    objects=("/feedback", "/campaigns/plan", "/campaigns/report"),
    mounts=(CONSOLE_PATH,),
)


__all__ = ["TelcomlService"]
