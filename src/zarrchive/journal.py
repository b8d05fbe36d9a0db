"""Durable sessions: a writable session's changes, persisted as they happen.

Layout under ``sessions/ID/``: ``session`` (branch, base commit, author, message, creation
time; written once, at the first change), ``journal/NNNNNNNNNNNN`` (the operations applied
to the change set, in order; each entry created with ``put_if_absent``, so two processes
cannot both continue one session), ``expires/NNNNNN`` (expiry times, newest wins),
``abandoned`` and ``committed`` markers. Native chunk bytes are written to storage before
the journal entry that names them, so every write acknowledged to the caller survives a
crash and ``join`` replays the journal onto the base commit to rebuild the session.

Concurrent writes (zarr writes many chunks at once) share journal entries: operations
recorded while an entry is being written go into the next one (group commit).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import ConflictError, InvalidInputError, NotFoundError
from .format import Manifest, ObjectType, decode, encode
from .storage import Storage

__all__ = ["Journal", "SessionInfo", "decode_ops", "encode_ops", "list_sessions", "now_utc"]

MAX_EXPIRY = dt.timedelta(days=7)
DEFAULT_EXPIRY = dt.timedelta(hours=24)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def encode_ops(ops: list[list[Any]]) -> bytes:
    out = []
    for op in ops:
        if op[0] == "refs":
            op = ["refs", op[1], op[2].to_bytes()]
        out.append(op)
    return encode(ObjectType.SESSION, {"ops": out})


def decode_ops(data: bytes, what: str) -> list[list[Any]]:
    ops = decode(ObjectType.SESSION, data, what=what)["ops"]
    for op in ops:
        if op[0] == "refs":
            op[2] = Manifest.from_bytes(op[2], what=what)
    return ops


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What ``list_active_sessions`` and ``join_session`` know about a session."""

    id: str
    branch: str
    base: str
    author: str
    message: str | None
    created: dt.datetime
    expires: dt.datetime
    state: str = "active"  # "active", "expired", "abandoned" or "committed"

    def __str__(self) -> str:
        return (
            f"{self.id}  {self.state}  branch {self.branch} at {self.base}  by {self.author}  "
            f"expires {self.expires:%Y-%m-%d %H:%M}" + (f"  {self.message}" if self.message else "")
        )


def check_expiry(expires_in: dt.timedelta | float | None) -> dt.timedelta:
    if expires_in is None:
        return DEFAULT_EXPIRY
    delta = (
        expires_in
        if isinstance(expires_in, dt.timedelta)
        else dt.timedelta(seconds=float(expires_in))
    )
    if delta <= dt.timedelta(0) or delta > MAX_EXPIRY:
        raise InvalidInputError(f"expires_in must be positive and at most 7 days, got {delta}")
    return delta


class Journal:
    """The persisted form of one writable session."""

    def __init__(self, storage: Storage, session_id: str) -> None:
        self.storage = storage
        self.id = session_id
        self.prefix = f"sessions/{session_id}/"
        self.seq = 0
        self.started = False
        self._lock: asyncio.Lock | None = None

    async def start(self, info: SessionInfo) -> None:
        body = {
            "id": info.id,
            "branch": info.branch,
            "base": info.base,
            "author": info.author,
            "message": info.message,
            "created": info.created.isoformat(),
        }
        if not await self.storage.put_if_absent(
            self.prefix + "session", encode(ObjectType.SESSION, body)
        ):
            raise ConflictError(f"session {self.id} already exists")
        await self.set_expiry(info.expires)
        self.started = True

    async def set_expiry(self, expires: dt.datetime) -> None:
        n = 0
        async for key in self.storage.list(self.prefix + "expires/"):
            n = max(n, int(key.rpartition("/")[2]) + 1)
        body = encode(ObjectType.SESSION, {"expires": expires.isoformat()})
        if not await self.storage.put_if_absent(f"{self.prefix}expires/{n:06d}", body):
            raise ConflictError(f"the expiry of session {self.id} was changed concurrently")

    async def append(self, ops: list[list[Any]]) -> None:
        """Persist ``ops`` as the next journal entry."""
        key = f"{self.prefix}journal/{self.seq:012d}"
        if not await self.storage.put_if_absent(key, encode_ops(ops)):
            raise ConflictError(
                f"session {self.id} is being continued by another process (journal entry "
                f"{self.seq} exists); join it again to see its changes"
            )
        self.seq += 1

    async def mark(self, marker: str, body: dict[str, Any]) -> None:
        await self.storage.put_if_absent(self.prefix + marker, encode(ObjectType.SESSION, body))

    async def entries(self) -> list[list[Any]]:
        keys = sorted([k async for k in self.storage.list(self.prefix + "journal/")])
        ops: list[list[Any]] = []
        for key in keys:
            ops.extend(decode_ops(await self.storage.get(key), key))
        self.seq = len(keys)
        self.started = True
        return ops


async def read_info(storage: Storage, session_id: str) -> SessionInfo:
    prefix = f"sessions/{session_id}/"
    try:
        body = decode(ObjectType.SESSION, await storage.get(prefix + "session"), what=session_id)
    except (NotFoundError, InvalidInputError):
        raise NotFoundError(
            f"session {session_id!r} does not exist (sessions are stored from their first change)"
        ) from None
    keys = [k async for k in storage.list(prefix)]
    expiry_keys = sorted(k for k in keys if k.startswith(prefix + "expires/"))
    expires = (
        dt.datetime.fromisoformat(
            decode(ObjectType.SESSION, await storage.get(expiry_keys[-1]))["expires"]
        )
        if expiry_keys
        else now_utc()
    )
    if prefix + "committed" in keys:
        state = "committed"
    elif prefix + "abandoned" in keys:
        state = "abandoned"
    elif expires <= now_utc():
        state = "expired"
    else:
        state = "active"
    return SessionInfo(
        id=body["id"],
        branch=body["branch"],
        base=body["base"],
        author=body["author"],
        message=body["message"],
        created=dt.datetime.fromisoformat(body["created"]),
        expires=expires,
        state=state,
    )


async def list_sessions(storage: Storage) -> list[SessionInfo]:
    ids: set[str] = set()
    async for key in storage.list("sessions/"):
        ids.add(key.split("/")[1])
    out = []
    for sid in sorted(ids):
        try:
            out.append(await read_info(storage, sid))
        except NotFoundError:
            continue  # a session whose first object is still being written
    return out
