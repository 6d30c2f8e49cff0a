"""API keys for the CRM endpoints: stored hashed, scoped to a province (or all).

Keys live in ``<workdir>/serving/api_keys.json`` as SHA-256 digests; the plain key is
shown once when created. A key of one province cannot score another province's
customers; ``*`` keys (the group's) can, and may reload models.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.io import atomic_write_text
from core.settings import Settings

ALL_PROVINCES = "*"


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: str
    province: str
    created: str


def may_score(scope: str, province: str | None) -> bool:
    """Whether a key scoped to ``scope`` (a province, or ``*``) may see a customer of ``province``."""
    return scope == ALL_PROVINCES or (province is not None and province == scope)


def keys_file(settings: Settings) -> Path:
    return settings.workdir / "serving" / "api_keys.json"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(settings: Settings, name: str, province: str = ALL_PROVINCES) -> str:
    """Create (or replace) a named key; returns the plain key, which is not stored."""
    plain = "tcm_" + secrets.token_urlsafe(24)
    ring = [k for k in load_keys(settings) if k.name != name]
    ring.append(
        ApiKey(
            name,
            _digest(plain),
            province.upper() if province != ALL_PROVINCES else province,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )
    atomic_write_text(json.dumps([asdict(k) for k in ring], indent=2), keys_file(settings))
    keys_file(settings).chmod(0o600)
    return plain


def load_keys(settings: Settings) -> list[ApiKey]:
    path = keys_file(settings)
    if not path.exists():
        return []
    return [ApiKey(**entry) for entry in json.loads(path.read_text())]


def verify(keys: list[ApiKey], presented: str | None) -> ApiKey | None:
    """The key record matching a presented key, compared in constant time."""
    if not presented:
        return None
    digest = _digest(presented)
    found = None
    for key in keys:
        if hmac.compare_digest(key.digest, digest):
            found = key
    return found
