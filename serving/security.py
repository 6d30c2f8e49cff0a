"""API keys for the CRM endpoints: stored hashed, scoped to a province (or all), optionally expiring.

Keys live in ``<workdir>/serving/api_keys.json`` as SHA-256 digests; the plain key is
shown once when created. A key of one province cannot score another province's
customers; ``*`` keys (the group's) can, and may reload models. A revoked key stays in the
file, marked, so ``telcoml keys list`` still shows it; an expired or revoked key is refused.

A running server holds the keys in a ``KeyRing``: it looks at the file's identity at most
every ``RECHECK_SECONDS`` and re-reads it when it changed, so a revocation takes effect
within seconds without a restart. A key's last use is the modification time of
``serving/api_keys_used/<name>``, touched at most once a ``NOTE_USE_SECONDS`` per key and
worker (a timestamp a minute stale costs nothing; a write per request would).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from core import indicators as lib
from core.errors import ConfigurationError
from core.io import atomic_write_text, file_lock
from core.names import ALL_PROVINCES
from core.settings import Settings

#: A key's name: what an operator reads in the key file and logs (``crm-gd``, ``bench.serving``):
#: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at most 64 characters.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: A running server notices a changed key file within this many seconds (one ``stat`` per check).
RECHECK_SECONDS = 1.0
#: A key's last use is written at most this often per key and worker.
NOTE_USE_SECONDS = 60.0
UNKNOWN_KEY = "missing or unknown API key (header X-API-Key)"

log = logging.getLogger("telcoml.serving")


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: str
    province: str
    created: str
    #: the instant (UTC, ISO 8601) from which the key is refused; None: never expires
    expires: str | None = None
    #: the instant it was revoked; None: not revoked
    revoked: str | None = None

    def refusal(self, now: datetime) -> str | None:
        """Why the key is refused at ``now`` (revoked, expired), or None while it is valid."""
        if self.revoked:
            return f"API key {self.name!r} was revoked at {self.revoked}; ask for a new key"
        if self.expires and now >= datetime.fromisoformat(self.expires):
            return f"API key {self.name!r} expired at {self.expires}; ask for a new key"
        return None

    def status(self, now: datetime) -> str:
        return "revoked" if self.revoked else "expired" if self.refusal(now) else "active"


def may_score(scope: str, province: str | None) -> bool:
    """Whether a key scoped to ``scope`` (a province, or ``*``) may see a customer of ``province``."""
    return scope == ALL_PROVINCES or (province is not None and province == scope)


def keys_file(settings: Settings) -> Path:
    return settings.workdir / "serving" / "api_keys.json"


def uses_dir(settings: Settings) -> Path:
    """One empty file per key whose modification time is the key's last use."""
    return settings.workdir / "serving" / "api_keys_used"


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


def key_expiry(
    days: int | None = None, until: date | None = None, now: datetime | None = None
) -> datetime | None:
    """When a new key stops working: ``days`` from now, or the end of day ``until`` (UTC); None: never.

    ConfigurationError for both at once, a count below one day, or a day already past.
    """
    now = now or datetime.now(UTC)
    if days is not None and until is not None:
        raise ConfigurationError("give an API key's expiry once: --expires-in-days or --expires, not both")
    if days is not None:
        if days < 1:
            raise ConfigurationError(f"--expires-in-days must be at least 1, got {days}")
        return now + timedelta(days=days)
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC)
        if end <= now:
            raise ConfigurationError(f"--expires {until.isoformat()} is already past; give a later day")
        return end
    return None


@contextmanager
def _key_file_locked(settings: Settings) -> Iterator[None]:
    """One writer of the key file at a time (two ``keys create`` at once must not lose a key);
    each write is atomic besides, so a server reading meanwhile sees the old file or the new."""
    with file_lock(keys_file(settings).with_name(".api_keys.json.lock")):
        yield


def _save_keys(settings: Settings, ring: list[ApiKey]) -> None:
    atomic_write_text(json.dumps([asdict(k) for k in ring], indent=2), keys_file(settings))


def create_key(
    settings: Settings, name: str, province: str = ALL_PROVINCES, expires: datetime | None = None
) -> str:
    """Create (or replace) a named key, valid until ``expires`` (None: no expiry); returns the plain
    key, which is not stored.

    ConfigurationError, before anything is written, for an unknown province, a bad name or an
    expiry already past.
    """
    name, scope = key_name(name), key_scope(province)
    now = datetime.now(UTC)
    if expires is not None and expires <= now:
        raise ConfigurationError(f"API key {name!r}: expiry {expires.isoformat()} is already past")
    plain = "tcm_" + secrets.token_urlsafe(24)
    record = ApiKey(
        name,
        _digest(plain),
        scope,
        now.isoformat(timespec="seconds"),
        expires.astimezone(UTC).isoformat(timespec="seconds") if expires else None,
    )
    with _key_file_locked(settings):
        _save_keys(settings, [*(k for k in load_keys(settings) if k.name != name), record])
        (uses_dir(settings) / name).unlink(missing_ok=True)  # a replaced key's use is not the new key's
    return plain


def revoke_key(settings: Settings, name: str) -> ApiKey:
    """Mark a key revoked (a running server refuses it within ``RECHECK_SECONDS``); the record.

    Revoking a revoked key changes nothing. ConfigurationError naming the keys there are for an
    unknown name.
    """
    with _key_file_locked(settings):
        ring = load_keys(settings)
        found = next((k for k in ring if k.name == name), None)
        if found is None:
            names = ", ".join(k.name for k in ring) or "none yet"
            raise ConfigurationError(
                f"no API key named {name!r} in {keys_file(settings)} (keys: {names}); "
                "`telcoml keys list` shows them"
            )
        if found.revoked:
            return found
        revoked = replace(found, revoked=datetime.now(UTC).isoformat(timespec="seconds"))
        _save_keys(settings, [revoked if k.name == name else k for k in ring])
    return revoked


def last_used(settings: Settings) -> dict[str, datetime]:
    """Each key's last use a server noted (to within ``NOTE_USE_SECONDS``); keys never used are absent."""
    folder = uses_dir(settings)
    if not folder.is_dir():
        return {}
    return {p.name: datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in folder.iterdir() if p.is_file()}


def load_keys(settings: Settings) -> list[ApiKey]:
    path = keys_file(settings)
    if not path.exists():
        return []
    try:
        return [ApiKey(**entry) for entry in json.loads(path.read_text())]
    except (ValueError, TypeError) as err:  # not JSON, not a list of key records
        raise ConfigurationError(f"{path}: not a valid API key file ({err})") from None


def verify(keys: list[ApiKey], presented: str | None) -> ApiKey | None:
    """The key record matching a presented key, compared in constant time (revoked or expired
    ones too: ``ApiKey.refusal`` says whether it is valid)."""
    if not presented:
        return None
    digest = _digest(presented)
    found = None
    for key in keys:
        if hmac.compare_digest(key.digest, digest):
            found = key
    return found


class KeyRing:
    """The keys a running server accepts, kept current with the key file, and their last use noted.

    A changed file (a new inode, size or modification time: ``keys create`` and ``keys revoke``
    rename a new file over it) is re-read on the first request after ``RECHECK_SECONDS``. A file
    that does not parse keeps the previous keys and is logged once per change.
    """

    def __init__(self, settings: Settings, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.path = keys_file(settings)
        self.uses = uses_dir(settings)
        self.settings = settings
        self.recheck_seconds = recheck_seconds
        self.keys: list[ApiKey] = []
        self._identity: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self._noted: dict[str, float] = {}
        self.refresh(force=True)

    def _file_identity(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def refresh(self, force: bool = False) -> None:
        """Re-read the key file if it changed (``force``: now, and even if it looks unchanged)."""
        now = time.monotonic()
        if not force and now - self._checked < self.recheck_seconds:
            return
        self._checked = now
        identity = self._file_identity()
        if identity == self._identity and not force:
            return
        self._identity = identity
        try:
            self.keys = load_keys(self.settings)
        except ConfigurationError as err:
            log.error("API keys not reloaded, the previous ones stay in force: %s", err)

    def caller(self, presented: str | None) -> ApiKey | None:
        """The valid key presented (its use noted), or None: missing, unknown, revoked or expired."""
        self.refresh()
        key = verify(self.keys, presented)
        if key is None or key.refusal(datetime.now(UTC)):
            return None
        self._note_use(key.name)
        return key

    def refusal(self, presented: str | None) -> str:
        """Why a presented key is refused, for the 401's message."""
        key = verify(self.keys, presented)
        return (key.refusal(datetime.now(UTC)) if key else None) or UNKNOWN_KEY

    def _note_use(self, name: str) -> None:
        now = time.monotonic()
        if now - self._noted.get(name, float("-inf")) < NOTE_USE_SECONDS:
            return
        self._noted[name] = now
        try:
            self.uses.mkdir(parents=True, exist_ok=True)
            (self.uses / name).touch()
        except OSError as err:  # a read-only work directory: answering matters more than the note
            log.warning("last use of API key %s not noted: %s", name, err)
