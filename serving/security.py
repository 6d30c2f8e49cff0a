"""API keys for the CRM endpoints: stored hashed, scoped to a province (or all).

Keys live in ``<workdir>/serving/api_keys.json`` as SHA-256 digests; the plain key is
shown once when created. A key of one province cannot score another province's
customers; ``*`` keys (the group's) can, and may reload models.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from core import indicators as lib
from core.errors import ConfigurationError
from core.io import atomic_write_text
from core.settings import Settings

ALL_PROVINCES = "*"
#: A key's name: what an operator reads in the key file and logs (``crm-gd``, ``bench.serving``):
#: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at most 64 characters.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


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


def key_scope(province: str) -> str:
    """A key's province: a code the library knows (``gd`` is ``GD``) or ``*`` for every province."""
    scope = province.strip().upper()
    codes = lib.BY_ID["province"].codes or ()
    if scope != ALL_PROVINCES and scope not in codes:
        raise ConfigurationError(
            f"unknown province {province!r} for an API key; use one of the {len(codes)} province codes "
            f"({', '.join(codes)}) or {ALL_PROVINCES} for all provinces"
        )
    return scope


def key_name(name: str) -> str:
    """A key's name, or ConfigurationError saying what a name may be."""
    if not KEY_NAME.fullmatch(name):
        shown = name if len(name) <= 70 else name[:64] + "..."
        raise ConfigurationError(
            f"invalid API key name {shown!r}: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit, at most 64 characters (e.g. crm-gd)"
        )
    return name


def create_key(settings: Settings, name: str, province: str = ALL_PROVINCES) -> str:
    """Create (or replace) a named key; returns the plain key, which is not stored.

    ConfigurationError, before anything is written, for an unknown province or a bad name.
    """
    name, scope = key_name(name), key_scope(province)
    plain = "tcm_" + secrets.token_urlsafe(24)
    ring = [k for k in load_keys(settings) if k.name != name]
    ring.append(ApiKey(name, _digest(plain), scope, datetime.now(UTC).isoformat(timespec="seconds")))
    atomic_write_text(json.dumps([asdict(k) for k in ring], indent=2), keys_file(settings))
    keys_file(settings).chmod(0o600)
    return plain


def load_keys(settings: Settings) -> list[ApiKey]:
    path = keys_file(settings)
    if not path.exists():
        return []
    try:
        return [ApiKey(**entry) for entry in json.loads(path.read_text())]
    except (ValueError, TypeError) as err:  # not JSON, not a list of key records
        raise ConfigurationError(f"{path}: not a valid API key file ({err})") from None


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
