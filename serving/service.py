"""The CRM's prediction service on BentoML.

``POST /score`` answers for one caller while the agent is on the line; ``POST
/score_batch`` scores a list in one vectorised pass (per-item errors, the good ones
still scored); ``POST /reload`` swaps in the registry's current champions without
dropping requests. ``/livez``, ``/readyz`` (champions loaded, store answering),
``/metrics`` and the OpenAPI document at ``/docs.json`` come from BentoML.

Every API takes an ``X-API-Key`` header; keys are scoped by province. Errors are JSON
``{"error": code, "message": ...}`` with a 4xx/5xx status, never a traceback.
Configuration comes from the environment (``TELCOML_WORKDIR`` etc., see settings).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import bentoml
from pydantic import Field

from monitoring.record import ScoreLog, predictions_from_answers
from serving.scoring import (
    MSISDN_PATTERN,
    ModelSet,
    OnlineFeatures,
    StoreUnavailable,
    known,
    load_champions,
    score_frame,
)
from serving.security import ALL_PROVINCES, ApiKey, load_keys, verify
from telcoml.logs import get_logger, mask_msisdn
from telcoml.settings import get_settings

log = get_logger("telcoml.serving", logging.INFO)
MAX_BATCH = 500
MAX_BODY_BYTES = 64 * 1024


class RequestGuard:
    """Refuse, before BentoML parses anything: bodies over the limit (413) and bodies that
    are not JSON (415). Both answer in the service's JSON error shape."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST":
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length")
            media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                return await self._refuse(send, 413, "body_too_large", f"request body over {self.max_bytes} bytes")
            if media != b"application/json":
                return await self._refuse(send, 415, "unsupported_media_type",
                                          "send the request body as application/json")
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(send, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": code, "message": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def _error(ctx: bentoml.Context, status: int, code: str, message: str, **extra) -> dict:
    ctx.response.status_code = status
    return {"error": code, "message": message, **extra}


@bentoml.service(name="telcoml", traffic={"timeout": 30, "concurrency": 64},
                 workers=int(os.environ.get("TELCOML_SERVE_WORKERS", "1")),
                 image=bentoml.images.Image(python_version="3.11").requirements_file("requirements.lock"))
class TelcomlService:
    """Loads every task's champion and the Feast online store once, then answers the CRM."""

    def __init__(self) -> None:
        self.settings = get_settings()
        self.keys: list[ApiKey] = load_keys(self.settings)
        self.models: ModelSet = load_champions(self.settings)
        self.online = OnlineFeatures(self.settings)
        # every answered customer goes to weekly monitoring (buffered, written off the request path)
        self.score_log = ScoreLog(self.settings, f"api-{os.getpid()}")
        self._reload_lock = threading.Lock()
        log.info("loaded champions %s", self.models.versions)

    def __is_ready__(self) -> bool:
        try:
            self.online.fetch(["13800000000"])
        except StoreUnavailable:
            return False
        return bool(self.models.models)

    # -- helpers --------------------------------------------------------------------------
    def _caller(self, ctx: bentoml.Context) -> ApiKey | None:
        headers = ctx.request.headers
        presented = headers.get("x-api-key")
        if not presented and headers.get("authorization", "").lower().startswith("bearer "):
            presented = headers["authorization"][7:].strip()
        return verify(self.keys, presented)

    def _score(self, msisdns: list[str], caller: ApiKey) -> list[dict]:
        """Answers (or per-customer errors) for valid numbers, in order."""
        models = self.models  # one consistent set for the whole request, even during a reload
        features = self.online.fetch(msisdns)
        have = known(features)
        in_scope = have & features["province"].map(caller.may_score).astype(bool)
        # only customers the caller may see are scored
        scored = score_frame(models, features[in_scope].reset_index(drop=True)) if in_scope.any() else []
        if scored:
            self.score_log.record(features[in_scope], predictions_from_answers(scored), models.versions)
        scored_iter = iter(scored)
        answers: list[dict] = []
        for i, msisdn in enumerate(msisdns):
            if not have.iloc[i]:
                answers.append({"msisdn": msisdn, "status": 404, "error": "unknown_customer",
                                "message": f"customer {mask_msisdn(msisdn)} has no indicators in the online store "
                                           "(not a subscriber, or not materialized)"})
                continue
            province = features["province"].iloc[i]
            if not in_scope.iloc[i]:
                answers.append({"msisdn": msisdn, "status": 403, "error": "province_scope",
                                "message": f"this key is scoped to province {caller.province}; "
                                           f"customer {mask_msisdn(msisdn)} is not in it"})
                continue
            answers.append({"msisdn": msisdn, "status": 200, "province": province, **next(scored_iter),
                            "model_versions": models.versions,
                            "features_as_of": features["features_as_of"].iloc[i]})
        return answers

    # -- endpoints --------------------------------------------------------------------------
    @bentoml.api(route="/score")
    def score(self, ctx: bentoml.Context, msisdn: str = Field(..., description="11-digit mobile number",
                                                               examples=["13812342343"])) -> dict:
        """Every evaluation of one customer, with reasons and handling guidance."""
        started = time.perf_counter()
        caller = self._caller(ctx)
        if caller is None:
            return _error(ctx, 401, "unauthorized", "missing or unknown API key (header X-API-Key)")
        if not MSISDN_PATTERN.match(msisdn):
            return _error(ctx, 422, "invalid_msisdn", f"msisdn must be an 11-digit mobile number, got {mask_msisdn(msisdn)!r}")
        try:
            answer = self._score([msisdn], caller)[0]
        except StoreUnavailable as err:
            return _error(ctx, 503, "store_unavailable", str(err))
        status = answer.pop("status")
        log.info("score %s -> %s in %.1f ms (key %s)", msisdn, status, 1000 * (time.perf_counter() - started), caller.name)
        if status != 200:
            ctx.response.status_code = status
        return answer

    @bentoml.api(route="/score_batch")
    def score_batch(self, ctx: bentoml.Context,
                    msisdns: list[str] = Field(..., description=f"up to {MAX_BATCH} mobile numbers")) -> dict:
        """Score a list in one pass: per-item results or errors; good items are still scored."""
        caller = self._caller(ctx)
        if caller is None:
            return _error(ctx, 401, "unauthorized", "missing or unknown API key (header X-API-Key)")
        if len(msisdns) > MAX_BATCH:
            return _error(ctx, 413, "batch_too_large", f"at most {MAX_BATCH} numbers per batch, got {len(msisdns)}")
        valid = [m for m in msisdns if isinstance(m, str) and MSISDN_PATTERN.match(m)]
        try:
            scored = iter(self._score(valid, caller) if valid else [])
        except StoreUnavailable as err:
            return _error(ctx, 503, "store_unavailable", str(err))
        results = []
        for m in msisdns:
            if m in valid:
                results.append(next(scored))
            else:
                results.append({"msisdn": m, "status": 422, "error": "invalid_msisdn",
                                "message": "msisdn must be an 11-digit mobile number"})
        log.info("batch of %d from key %s: %d scored", len(msisdns), caller.name,
                 sum(r["status"] == 200 for r in results))
        return {"results": results, "scored": sum(r["status"] == 200 for r in results), "count": len(results)}

    @bentoml.api(route="/reload")
    def reload(self, ctx: bentoml.Context) -> dict:
        """Load the registry's current champions, then swap them in at once (group keys only)."""
        caller = self._caller(ctx)
        if caller is None or caller.province != ALL_PROVINCES:
            return _error(ctx, 403 if caller else 401, "forbidden", "reload needs a group (all-province) API key")
        with self._reload_lock:
            previous = self.models.versions
            self.models = load_champions(self.settings)  # a single reference swap
            self.keys = load_keys(self.settings)
        log.info("reloaded champions %s -> %s", previous, self.models.versions)
        return {"previous": previous, "current": self.models.versions, "loaded_at": self.models.loaded_at}

    @bentoml.api(route="/models")
    def models_in_service(self, ctx: bentoml.Context) -> dict:
        """Which champion versions are answering."""
        if self._caller(ctx) is None:
            return _error(ctx, 401, "unauthorized", "missing or unknown API key (header X-API-Key)")
        return {"versions": self.models.versions, "loaded_at": self.models.loaded_at}


TelcomlService.add_asgi_middleware(RequestGuard)


__all__ = ["TelcomlService"]
