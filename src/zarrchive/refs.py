"""Branches and tags, moved only by atomic create.

A branch is a folder of numbered ref objects, ``refs/branch.NAME/000000000001``, ...; its tip
is the highest number. Moving a branch from number n means creating number n+1 with
``put_if_absent``: of two writers racing from the same tip exactly one wins, on local disk and
on object storage alike, with no lock server. Deleting a branch creates a tombstone as its next
number, so a stale writer still loses the race. Tags are a single object created once
(``refs/tag.NAME/ref``); deleting one creates ``refs/tag.NAME/deleted``, and a deleted tag
name cannot be reused (a tag always means one commit).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .errors import ConflictError, InvalidInputError, NotFoundError
from .format import ObjectType, decode, encode
from .storage import Storage

__all__ = [
    "BranchTip",
    "branch_tip",
    "check_ref_name",
    "create_branch",
    "create_tag",
    "delete_branch",
    "delete_tag",
    "list_branches",
    "list_tags",
    "move_branch",
    "tag_target",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SEQ_WIDTH = 12


def check_ref_name(name: str, what: str = "branch") -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInputError(
            f"invalid {what} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class BranchTip:
    name: str
    seq: int
    snapshot: str | None  # None: the branch was deleted at this number


def _branch_prefix(name: str) -> str:
    return f"refs/branch.{name}/"


def _ref_body(snapshot: str | None) -> bytes:
    return encode(
        ObjectType.REF,
        {"snapshot": snapshot, "time": dt.datetime.now(dt.UTC).isoformat()},
    )


#: last branch number seen per (storage location, branch): ref objects are only ever created
#: in increasing order and never deleted, so the tip is found again by probing forward from
#: here (one or two reads) instead of listing a folder that grows with every commit
_KNOWN_SEQ: dict[tuple[str, str], int] = {}


async def _latest(storage: Storage, name: str) -> BranchTip | None:
    prefix = _branch_prefix(name)
    key = (storage.location, name)
    best = _KNOWN_SEQ.get(key, -1)
    body = None
    if best >= 0:
        try:
            body = decode(
                ObjectType.REF, await storage.get(f"{prefix}{best:0{_SEQ_WIDTH}d}"), what=name
            )
        except NotFoundError:  # e.g. a memory:// repository of the same name was recreated
            best, body = -1, None
    if best < 0:
        async for k in storage.list(prefix):
            rest = k[len(prefix) :]
            if rest.isdigit():
                best = max(best, int(rest))
        if best < 0:
            return None
        body = decode(
            ObjectType.REF, await storage.get(f"{prefix}{best:0{_SEQ_WIDTH}d}"), what=name
        )
    while True:  # probe forward past refs created since we last looked
        try:
            data = await storage.get(f"{prefix}{best + 1:0{_SEQ_WIDTH}d}")
        except NotFoundError:
            break
        best += 1
        body = decode(ObjectType.REF, data, what=name)
    _KNOWN_SEQ[key] = best
    assert body is not None
    return BranchTip(name, best, body["snapshot"])


async def branch_tip(storage: Storage, name: str) -> BranchTip:
    """The current tip of branch ``name``; ``NotFoundError`` if it does not exist."""
    tip = await _latest(storage, check_ref_name(name))
    if tip is None or tip.snapshot is None:
        raise NotFoundError(f"branch {name!r} does not exist")
    return tip


async def move_branch(storage: Storage, name: str, expected_seq: int, snapshot: str) -> bool:
    """Point branch ``name`` at ``snapshot`` if its tip is still number ``expected_seq``."""
    key = f"{_branch_prefix(name)}{expected_seq + 1:0{_SEQ_WIDTH}d}"
    return await storage.put_if_absent(key, _ref_body(snapshot))


async def create_branch(storage: Storage, name: str, snapshot: str) -> BranchTip:
    check_ref_name(name)
    tip = await _latest(storage, name)
    if tip is not None and tip.snapshot is not None:
        raise InvalidInputError(
            f"branch {name!r} already exists (at commit {tip.snapshot}); "
            "pick another name or use reset_branch to move it"
        )
    seq = -1 if tip is None else tip.seq
    if not await move_branch(storage, name, seq, snapshot):
        raise ConflictError(f"branch {name!r} was created concurrently by another writer")
    return BranchTip(name, seq + 1, snapshot)


async def delete_branch(storage: Storage, name: str) -> None:
    tip = await branch_tip(storage, name)
    key = f"{_branch_prefix(name)}{tip.seq + 1:0{_SEQ_WIDTH}d}"
    if not await storage.put_if_absent(key, _ref_body(None)):
        raise ConflictError(f"branch {name!r} moved while it was being deleted; try again")


async def list_branches(storage: Storage) -> dict[str, str]:
    """Existing branches and the commit each points at."""
    names: set[str] = set()
    async for key in storage.list("refs/branch."):
        names.add(key[len("refs/branch.") :].partition("/")[0])
    out: dict[str, str] = {}
    for name in sorted(names):
        tip = await _latest(storage, name)
        if tip is not None and tip.snapshot is not None:
            out[name] = tip.snapshot
    return out


async def create_tag(storage: Storage, name: str, snapshot: str, message: str | None) -> None:
    check_ref_name(name, "tag")
    if await storage.exists(f"refs/tag.{name}/deleted"):
        raise InvalidInputError(
            f"tag {name!r} was deleted and cannot be created again; a tag name always "
            "means one commit, so choose a new name"
        )
    body = encode(
        ObjectType.REF,
        {
            "snapshot": snapshot,
            "message": message,
            "time": dt.datetime.now(dt.UTC).isoformat(),
        },
    )
    if not await storage.put_if_absent(f"refs/tag.{name}/ref", body):
        raise InvalidInputError(f"tag {name!r} already exists; tags cannot be moved")


async def tag_target(storage: Storage, name: str) -> str:
    check_ref_name(name, "tag")
    if await storage.exists(f"refs/tag.{name}/deleted"):
        raise NotFoundError(f"tag {name!r} was deleted")
    try:
        data = await storage.get(f"refs/tag.{name}/ref")
    except NotFoundError:
        raise NotFoundError(f"tag {name!r} does not exist") from None
    return str(decode(ObjectType.REF, data, what=name)["snapshot"])


async def delete_tag(storage: Storage, name: str) -> None:
    await tag_target(storage, name)
    await storage.put_if_absent(f"refs/tag.{name}/deleted", _ref_body(None))


async def list_tags(storage: Storage) -> dict[str, str]:
    found: dict[str, set[str]] = {}
    async for key in storage.list("refs/tag."):
        name, _, leaf = key[len("refs/tag.") :].partition("/")
        found.setdefault(name, set()).add(leaf)
    out: dict[str, str] = {}
    for name in sorted(found):
        if "ref" in found[name] and "deleted" not in found[name]:
            out[name] = await tag_target(storage, name)
    return out
