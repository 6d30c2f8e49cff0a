"""The console's session: a signed cookie holding the key's name, a fingerprint of its digest, a
CSRF token and the language; never the key, never a phone number.

The signing secret is generated into the work directory (``serving/console_secret``, owner-only,
not in git), so every worker and a restarted server accept the same sessions; deleting it signs
everyone out. A session is re-checked against the key file on every request: a revoked, expired
or replaced key ends it within the key ring's recheck (about a second).
"""

from __future__ import annotations

import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from core.settings import Settings
from serving.security import ApiKey, KeyRing

COOKIE = "telcoml_console"
#: A shift: an agent signs in once per working day.
MAX_AGE_SECONDS = 10 * 3600
#: Largest cookie accepted (ours is ~200 bytes): a forged giant one is not even verified.
MAX_COOKIE_BYTES = 2048


def secret_file(settings: Settings) -> Path:
    return settings.workdir / "serving" / "console_secret"


def console_secret(settings: Settings) -> str:
    """The signing secret, created owner-only on first use (workers racing: the first one wins)."""
    path = secret_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    text = path.read_text().strip()
    if len(text) < 32:  # a half-written file of a racing worker: read again once it is whole
        text = path.read_text().strip()
    return text


def fingerprint(key: ApiKey) -> str:
    """Enough of the key's stored digest to notice the key was replaced under the same name."""
    return key.digest[:16]


class Sessions:
    """Signs and reads session cookies with the work directory's secret."""

    def __init__(self, settings: Settings, https_only: bool = False):
        self.serializer = URLSafeTimedSerializer(console_secret(settings), salt="telcoml-console")
        self.https_only = https_only

    def read(self, cookie: str | None) -> dict:
        """The session in a cookie, or a new empty one (missing, forged, expired, oversized)."""
        if not cookie or len(cookie) > MAX_COOKIE_BYTES:
            return {}
        try:
            data = self.serializer.loads(cookie, max_age=MAX_AGE_SECONDS)
        except BadSignature:  # SignatureExpired is one
            return {}
        return data if isinstance(data, dict) else {}

    def cookie(self, session: dict, path: str) -> str:
        """The ``Set-Cookie`` value: HttpOnly, SameSite=Strict, the console's path only."""
        value = self.serializer.dumps(session)
        secure = "; Secure" if self.https_only else ""
        return f"{COOKIE}={value}; Max-Age={MAX_AGE_SECONDS}; Path={path}; HttpOnly; SameSite=Strict{secure}"

    @staticmethod
    def cleared(path: str) -> str:
        return f"{COOKIE}=; Max-Age=0; Path={path}; HttpOnly; SameSite=Strict"


def new_token() -> str:
    """A CSRF token: every form of the session carries it back."""
    return secrets.token_urlsafe(24)


def signed_in(session: dict, key: ApiKey) -> dict:
    """A fresh session for a key that just signed in (a new CSRF token: no fixation)."""
    return {
        "key": key.name,
        "fp": fingerprint(key),
        "csrf": new_token(),
        "lang": session.get("lang", "zh"),
    }


def session_key(ring: KeyRing, session: dict) -> ApiKey | None:
    """The session's key if it is still valid: present, the same key (not replaced), neither
    revoked nor expired."""
    name, fp = session.get("key"), session.get("fp")
    if not isinstance(name, str) or not isinstance(fp, str):
        return None
    ring.refresh()
    key = next((k for k in ring.keys if k.name == name), None)
    if (
        key is None
        or not hmac.compare_digest(fingerprint(key).encode(), fp.encode())
        or key.refusal(datetime.now(UTC))
    ):
        return None
    return key


def csrf_ok(session: dict, form: dict[str, str]) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and hmac.compare_digest(token.encode(), form.get("csrf", "").encode())
