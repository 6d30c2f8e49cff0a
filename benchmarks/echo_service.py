"""A bare BentoML service, the floor the scoring service is measured against.

One ``POST /score`` API taking ``msisdn: str`` and answering ``{"msisdn": msisdn}``:
no key check, no feature lookup, no model. It is declared and served like
``serving.service:TelcomlService`` (same traffic settings, default single worker, a
synchronous API run in BentoML's thread pool), so what it costs is BentoML's HTTP,
validation and serialisation alone. ``benchmarks/bench_serving.py`` starts it with::

    python -m bentoml serve echo_service:EchoService --working-dir benchmarks --host 127.0.0.1 --port P
"""

from __future__ import annotations

import bentoml


@bentoml.service(name="telcoml-echo", traffic={"timeout": 30, "concurrency": 64})
class EchoService:
    """Echoes the number back."""

    @bentoml.api(route="/score")
    def score(self, msisdn: str) -> dict:
        return {"msisdn": msisdn}


__all__ = ["EchoService"]
