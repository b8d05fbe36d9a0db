"""Conflict detection between a session's changes and commits made since its base.

Pure: compares two transaction logs. Rules: the same chunk written (or deleted) on both sides;
the same node's metadata or attributes changed on both sides; a node deleted or moved on one
side and changed on the other; the same path created on both sides; a node created under a
path the other side deleted or moved away.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .format import TransactionLog
from .format.manifest import linear_keys

__all__ = ["find_conflicts"]

_SHOW = 5


def _common_coords(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not len(a) or not len(b):
        return np.zeros((0, a.shape[1]), dtype=np.int64)
    if a.shape[1] == 0:
        return np.zeros((1, 0), dtype=np.int64)
    ka, kb = linear_keys(a, b)
    common, ia, _ = np.intersect1d(ka, kb, return_indices=True)
    return a[ia].astype(np.int64)


def _under(path: str, roots: set[str]) -> str | None:
    for root in roots:
        if root == "" or path == root or path.startswith(root + "/"):
            return root
    return None


def find_conflicts(
    ours: TransactionLog,
    our_paths: Mapping[str, str],
    theirs: TransactionLog,
    their_paths: Mapping[str, str],
) -> list[str]:
    """Descriptions of every conflict between ``ours`` and ``theirs`` (empty: none).

    ``*_paths`` map node ids to paths on each side, for the messages.
    """
    out: list[str] = []
    path = {**their_paths, **our_paths}

    for nid in sorted(set(ours.chunks) & set(theirs.chunks)):
        common = _common_coords(ours.chunks[nid], theirs.chunks[nid])
        if len(common):
            shown = ", ".join(str(tuple(int(x) for x in c)) for c in common[:_SHOW])
            more = f" and {len(common) - _SHOW} more" if len(common) > _SHOW else ""
            out.append(f"chunks of {path.get(nid, nid)!r} written on both sides: {shown}{more}")

    for nid in sorted(set(ours.updated_meta) & set(theirs.updated_meta)):
        out.append(f"metadata of {path.get(nid, nid)!r} changed on both sides")

    for mine, other, where in ((ours, theirs, "here"), (theirs, ours, "on the branch")):
        touched = set(other.updated_meta) | set(other.chunks)
        for p, nid in sorted(mine.deleted.items()):
            if nid in touched:
                where_else = "on the branch" if where == "here" else "here"
                out.append(f"{p!r} was deleted {where} but changed {where_else}")

    # a move destination occupies its path just like a new node does
    our_new = set(ours.new_groups) | set(ours.new_arrays) | {dst for _, dst in ours.moved}
    their_new = set(theirs.new_groups) | set(theirs.new_arrays) | {dst for _, dst in theirs.moved}
    for p in sorted(our_new & their_new):
        out.append(f"{p!r} was created on both sides")

    their_gone = set(theirs.deleted) | {src for src, _ in theirs.moved}
    our_gone = set(ours.deleted) | {src for src, _ in ours.moved}
    for p in sorted(our_new - their_new):
        root = _under(p, their_gone - {""})
        if root is not None:
            out.append(f"{p!r} was created here under {root!r}, deleted or moved on the branch")
    for p in sorted(their_new - our_new):
        root = _under(p, our_gone - {""})
        if root is not None:
            out.append(f"{p!r} was created on the branch under {root!r}, deleted or moved here")
    return out
