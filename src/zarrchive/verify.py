"""``verify``: which virtual-chunk sources of a commit are stale or missing.

Collects every (source URL, recorded checksum) pair from the manifests of a session, stats
each source object once (concurrently, bounded) and compares. Chunk payloads are never read.
Sources outside the reader's authorised containers are listed, not touched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .errors import UnauthorizedSourceError
from .format import Manifest
from .session import Session

__all__ = ["VerifyReport", "verify_sources"]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of :meth:`Repo.verify`."""

    commit: str
    sources: int
    stale: dict[str, str] = field(default_factory=dict)  # url -> what changed
    missing: tuple[str, ...] = ()
    unauthorized: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.stale or self.missing or self.unauthorized)

    def __str__(self) -> str:
        lines = [f"verified {self.sources} sources of commit {self.commit}"]
        lines += [f"  stale: {u} ({why})" for u, why in sorted(self.stale.items())]
        lines += [f"  missing: {u}" for u in self.missing]
        lines += [f"  not authorised (not checked): {u}" for u in self.unauthorized]
        if self.ok:
            lines.append("  all sources unchanged")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


async def _manifests(session: Session) -> list[Manifest]:
    out: list[Manifest] = []
    repo = session.repository
    for node in session.nodes.values():
        if node.kind != "array":
            continue
        for mref in node.manifests:
            out.append(await repo.get_manifest(mref.id))
        if session.changes is not None:
            ch = session.changes.chunk_changes(node.id)
            if ch is not None:
                out.append(ch.manifest())
    return out


async def verify_sources(session: Session, *, max_concurrency: int = 32) -> VerifyReport:
    # one URL can carry several checksums: arrays imported from it before and after it
    # changed; every one of them must still match
    recorded: dict[str, set[str | None]] = {}
    for m in await _manifests(session):
        for url, checksum in zip(m.urls, m.checksums, strict=True):
            recorded.setdefault(url, set()).add(checksum)
    reader = session.repository.sources
    sem = asyncio.Semaphore(max_concurrency)
    stale: dict[str, str] = {}
    missing: list[str] = []
    unauthorized: list[str] = []

    async def check(url: str, checksums: set[str | None]) -> None:
        try:
            prefix = reader._container(url)
        except UnauthorizedSourceError:
            unauthorized.append(url)
            return
        async with sem:
            try:
                now = await reader.stat(url, reader._options(url, prefix))
            except FileNotFoundError:
                missing.append(url)
                return
        old = sorted(c for c in checksums if c is not None and c != now.checksum)
        if old:
            stale[url] = f"recorded {' and '.join(old)}, now {now.checksum}"

    await asyncio.gather(*(check(u, c) for u, c in recorded.items()))
    return VerifyReport(
        session.snapshot_id,
        len(recorded),
        stale,
        tuple(sorted(missing)),
        tuple(sorted(unauthorized)),
    )
