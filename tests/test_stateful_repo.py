"""Model-based test of repository operations (after Icechunk's test_stateful_repo_ops).

A hypothesis ``RuleBasedStateMachine`` drives one ``memory://`` repository through writes
(create groups and arrays, write chunks, set attributes), deletes, moves, commits, branches,
tags, checkouts, resets, session hand-offs to a second ``Repo`` (``join_session``) and a second
writer committing on the same branch first (auto-ff rebase or ``fast_forward``), and checks it
against a plain Python model:

* a tree is a dict ``node id -> MNode(kind, path, attrs, chunk values)``; node ids are the
  model's own, so moves keep identity (as zarrchive's node ids do) and rebases can be modelled;
* the commit graph is ``commit id -> MCommit(parent, tree, changes relative to the parent)``;
* refs are dicts of branch and tag names.

A rebase is predicted from the documented conflict rules (same chunk, metadata of the same
node, delete vs change, same path created or moved to on both sides, creation or move under a
deleted or moved path), applied commit by commit from the branch tip back to the session's
base; without a conflict, the expected tree is the branch tip with the session's changes
replayed by node id (and the model asserts that this tree is consistent).

Invariants after every step: the current session reads exactly the model's working tree
(through zarr), every recorded commit, checked out read-only, reads exactly the tree it was
committed with, and branches, tags, the session's base, branch, status and log match the model.

The bugs this machine found (move destinations ignored by the conflict rules; new_branch,
fast_forward and join_session losing a persisted session's branch or base) are pinned by the
regression tests at the end.
"""

from __future__ import annotations

import itertools
import uuid
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import zarr
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import zarrchive
from zarrchive import ConflictError, InvalidInputError

NAMES = ("a", "b", "c")
BRANCH_NAMES = ("main", "dev", "fix", "exp")
TAG_NAMES = ("t1", "t2", "t3", "t4")
N_CHUNKS = 3  # arrays have shape (6,), chunks (2,): chunk c holds [v, v + 1], v > 0
ARRAY_KW: dict[str, Any] = {"shape": (6,), "chunks": (2,), "dtype": "i4", "fill_value": 0}

# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class MNode:
    kind: str  # "group" | "array"
    path: str
    attrs: tuple[tuple[str, int], ...] = ()
    chunks: tuple[int | None, ...] = ()  # arrays: per chunk, v (holds [v, v+1]) or unwritten


Tree = dict[str, MNode]  # node id -> node


@dataclass(frozen=True)
class MDiff:
    """A transaction log, by node id (what ``ChangeSet.transaction_log`` records)."""

    new: dict[str, str]  # path -> id
    deleted: dict[str, str]  # base path -> id
    moved: tuple[tuple[str, str], ...]
    meta: frozenset[str]  # ids whose path or attributes changed
    chunks: frozenset[tuple[str, int]]  # (id, chunk) written

    def is_empty(self) -> bool:
        return not (self.new or self.deleted or self.moved or self.meta or self.chunks)


@dataclass(frozen=True)
class MCommit:
    parent: str | None
    tree: Tree
    diff: MDiff


@dataclass
class MSession:
    branch: str | None  # None: read-only (tag or commit checked out)
    base: str
    tree: Tree
    written: set[tuple[str, int]] = field(default_factory=set)
    journal_branch: str | None = None  # branch recorded when the session was first persisted
    unpersisted_rebase: bool = False  # fast_forward since the last persisted write

    @property
    def writable(self) -> bool:
        return self.branch is not None


_ids = itertools.count()


def new_node_id() -> str:
    return f"n{next(_ids)}"


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def by_path(tree: Tree) -> dict[str, str]:
    return {n.path: nid for nid, n in tree.items()}


def diff(base: Tree, tree: Tree, written: set[tuple[str, int]]) -> MDiff:
    new = {n.path: nid for nid, n in tree.items() if nid not in base}
    deleted = {n.path: nid for nid, n in base.items() if nid not in tree}
    moved = tuple(
        sorted(
            (base[nid].path, n.path)
            for nid, n in tree.items()
            if nid in base and base[nid].path != n.path
        )
    )
    meta = frozenset(
        nid
        for nid, n in tree.items()
        if nid in base and (base[nid].path != n.path or base[nid].attrs != n.attrs)
    )
    chunks = frozenset((nid, c) for nid, c in written if nid in tree)
    return MDiff(new, deleted, moved, meta, chunks)


def _under(path: str, roots: set[str]) -> bool:
    return any(path == r or path.startswith(r + "/") for r in roots if r)


def conflicts(ours: MDiff, theirs: MDiff) -> bool:
    """The documented conflict rules (a move's destination counts as a path created there)."""
    if ours.chunks & theirs.chunks or ours.meta & theirs.meta:
        return True
    for mine, other in ((ours, theirs), (theirs, ours)):
        touched = other.meta | {nid for nid, _ in other.chunks}
        if any(nid in touched for nid in mine.deleted.values()):
            return True
    our_new = set(ours.new) | {dst for _, dst in ours.moved}
    their_new = set(theirs.new) | {dst for _, dst in theirs.moved}
    if our_new & their_new:
        return True
    their_gone = set(theirs.deleted) | {src for src, _ in theirs.moved}
    our_gone = set(ours.deleted) | {src for src, _ in ours.moved}
    return any(_under(p, their_gone) for p in our_new - their_new) or any(
        _under(p, our_gone) for p in their_new - our_new
    )


def merge(base: Tree, ours: Tree, written: set[tuple[str, int]], theirs: Tree) -> Tree:
    """``theirs`` with the changes from ``base`` to ``ours`` replayed by node id."""
    out = {nid: n for nid, n in theirs.items() if not (nid in base and nid not in ours)}
    for nid, n in ours.items():
        old = base.get(nid)
        if old is None:
            out[nid] = n
        elif old.path != n.path or old.attrs != n.attrs:
            out[nid] = replace(out[nid], path=n.path, attrs=n.attrs)
    for nid, c in written:
        if nid in out:
            values = list(out[nid].chunks)
            values[c] = ours[nid].chunks[c]
            out[nid] = replace(out[nid], chunks=tuple(values))
    return out


def consistent(tree: Tree) -> bool:
    paths = by_path(tree)
    if len(paths) != len(tree) or "" not in paths:
        return False
    return all(
        p == "" or (parent_of(p) in paths and tree[paths[parent_of(p)]].kind == "group")
        for p in paths
    )


def expected_view(tree: Tree) -> dict[str, tuple[str, dict[str, int], list[int] | None]]:
    out: dict[str, tuple[str, dict[str, int], list[int] | None]] = {}
    for n in tree.values():
        values = None
        if n.kind == "array":
            values = []
            for v in n.chunks:
                values += [0, 0] if v is None else [v, v + 1]
        out[n.path] = (n.kind, dict(n.attrs), values)
    return out


def read_view(store: Any) -> dict[str, tuple[str, dict[str, int], list[int] | None]]:
    root = zarr.open_group(store=store, mode="r", zarr_format=3)
    out: dict[str, tuple[str, dict[str, int], list[int] | None]] = {
        "": ("group", dict(root.attrs), None)
    }
    for path, node in root.members(max_depth=None):
        if isinstance(node, zarr.Array):
            out[path] = ("array", dict(node.attrs), node[:].tolist())
        else:
            out[path] = ("group", dict(node.attrs), None)
    return out


# ---------------------------------------------------------------------------- operations
# An op is a tuple; ``draw_op`` picks a valid one for a tree, ``apply_real`` performs it
# through zarr / the Repo API, ``apply_model`` on an MSession.

OP_KINDS = ("create_group", "create_array", "write_chunk", "set_attr", "delete", "move")


def draw_op(data: st.DataObject, tree: Tree, kinds: tuple[str, ...] = OP_KINDS) -> tuple | None:
    paths = by_path(tree)
    groups = sorted(p for p, nid in paths.items() if tree[nid].kind == "group")
    arrays = sorted(p for p, nid in paths.items() if tree[nid].kind == "array")
    non_root = sorted(p for p in paths if p)

    def free_slots(parents: list[str]) -> list[str]:
        return [
            f"{g}/{name}" if g else name
            for g in parents
            for name in NAMES
            if (f"{g}/{name}" if g else name) not in paths
        ]

    options = []
    shallow = [g for g in groups if g.count("/") < 1]  # keep the tree at most 2 levels deep
    if "create_group" in kinds and free_slots(shallow):
        options.append("create_group")
    if "create_array" in kinds and free_slots(shallow):
        options.append("create_array")
    if "write_chunk" in kinds and arrays:
        options.append("write_chunk")
    if "set_attr" in kinds:
        options.append("set_attr")
    if "delete" in kinds and non_root:
        options.append("delete")
    if "move" in kinds and non_root:
        options.append("move")
    if not options:
        return None
    kind = data.draw(st.sampled_from(options), label="op")
    if kind in ("create_group", "create_array"):
        return (kind, data.draw(st.sampled_from(free_slots(shallow)), label="path"))
    if kind == "write_chunk":
        return (
            kind,
            data.draw(st.sampled_from(arrays), label="array"),
            data.draw(st.integers(0, N_CHUNKS - 1), label="chunk"),
            data.draw(st.integers(1, 999), label="value"),
        )
    if kind == "set_attr":
        return (
            kind,
            data.draw(st.sampled_from(sorted(paths)), label="node"),
            data.draw(st.sampled_from(["k", "m"]), label="key"),
            data.draw(st.integers(0, 9), label="value"),
        )
    if kind == "delete":
        return (kind, data.draw(st.sampled_from(non_root), label="node"))
    src = data.draw(st.sampled_from(non_root), label="source")
    parents = [g for g in groups if g != src and not g.startswith(src + "/")]
    dests = [d for d in free_slots(parents) if d != src]
    if not dests:
        return None
    return (kind, src, data.draw(st.sampled_from(dests), label="dest"))


def _group(repo: zarrchive.Repo, path: str) -> zarr.Group:
    root = repo.root_group
    return root if path == "" else root[path]


def apply_real(repo: zarrchive.Repo, op: tuple) -> None:
    kind = op[0]
    if kind in ("create_group", "create_array", "delete"):
        parent, _, name = op[1].rpartition("/")
        grp = _group(repo, parent)
        if kind == "create_group":
            grp.create_group(name)
        elif kind == "create_array":
            grp.create_array(name, **ARRAY_KW)
        else:
            del grp[name]
    elif kind == "write_chunk":
        _, path, c, v = op
        repo.root_group[path][2 * c : 2 * c + 2] = [v, v + 1]
    elif kind == "set_attr":
        _, path, key, v = op
        node = repo.root_group if path == "" else repo.root_group[path]
        node.attrs[key] = v
    elif kind == "move":
        repo.move(op[1], op[2])
    else:
        raise AssertionError(op)


def apply_model(s: MSession, op: tuple) -> None:
    assert s.writable
    tree = dict(s.tree)
    paths = by_path(tree)
    kind = op[0]
    if kind == "create_group":
        tree[new_node_id()] = MNode("group", op[1])
    elif kind == "create_array":
        tree[new_node_id()] = MNode("array", op[1], chunks=(None,) * N_CHUNKS)
    elif kind == "write_chunk":
        _, path, c, v = op
        nid = paths[path]
        values = list(tree[nid].chunks)
        values[c] = v
        tree[nid] = replace(tree[nid], chunks=tuple(values))
        s.written.add((nid, c))
    elif kind == "set_attr":
        _, path, key, v = op
        nid = paths[path]
        attrs = dict(tree[nid].attrs)
        attrs[key] = v
        tree[nid] = replace(tree[nid], attrs=tuple(sorted(attrs.items())))
    elif kind == "delete":
        for p, nid in paths.items():
            if p == op[1] or p.startswith(op[1] + "/"):
                del tree[nid]
    elif kind == "move":
        _, src, dst = op
        for p, nid in paths.items():
            if p == src or p.startswith(src + "/"):
                tree[nid] = replace(tree[nid], path=dst + p[len(src) :])
    else:
        raise AssertionError(op)
    s.tree = tree
    s.unpersisted_rebase = False
    if s.journal_branch is None:
        s.journal_branch = s.branch


# ---------------------------------------------------------------------------- the machine


class RepoMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.url = f"memory://stateful-{uuid.uuid4().hex}"
        self.repo = zarrchive.Repo.create(self.url, author="model")
        self.reader = zarrchive.Repo.open(self.url, author="reader")
        root_tree = {"root": MNode("group", "")}
        first = self.repo.session.snapshot_id
        self.commits: dict[str, MCommit] = {
            first: MCommit(None, root_tree, diff(root_tree, root_tree, set()))
        }
        self.branches: dict[str, str] = {"main": first}
        self.tags: dict[str, str] = {}
        self.deleted_tags: set[str] = set()
        self.s = MSession("main", first, root_tree)
        self.n_messages = itertools.count()

    @initialize()
    def seed(self) -> None:
        """Start from a small committed tree, so chunk writes are common from step one."""
        for op in [
            ("create_group", "g"),
            ("create_array", "x"),
            ("create_array", "g/y"),
            ("write_chunk", "x", 0, 10),
            ("write_chunk", "g/y", 1, 20),
        ]:
            apply_real(self.repo, op)
            apply_model(self.s, op)
        self._commit(self.repo, self.s)

    # ------------------------------------------------------------ model helpers
    def has_changes(self, s: MSession | None = None) -> bool:
        s = s or self.s
        return s.writable and not diff(self.commits[s.base].tree, s.tree, s.written).is_empty()

    def message(self) -> str:
        return f"commit {next(self.n_messages)}"

    def record_commit(self, s: MSession, commit_id: str) -> None:
        """Model of a commit that landed: ``s`` (already rebased onto the tip) moves on."""
        assert commit_id not in self.commits
        base = self.commits[s.base].tree
        self.commits[commit_id] = MCommit(s.base, s.tree, diff(base, s.tree, s.written))
        assert s.branch is not None
        self.branches[s.branch] = commit_id
        s.base, s.written, s.journal_branch = commit_id, set(), None
        s.unpersisted_rebase = False

    def predict_rebase(self, s: MSession, tip: str) -> str:
        """'ok' or 'conflict' for rebasing ``s`` onto commit ``tip``."""
        ours = diff(self.commits[s.base].tree, s.tree, s.written)
        chain, sid = [], tip
        while sid != s.base:
            if sid is None:
                return "conflict"  # the branch no longer descends from the session's base
            chain.append(self.commits[sid])
            sid = self.commits[sid].parent
        if any(conflicts(ours, c.diff) for c in chain):
            return "conflict"
        merged = merge(self.commits[s.base].tree, s.tree, s.written, self.commits[tip].tree)
        assert consistent(merged), "model: a conflict-free rebase must give a consistent tree"
        return "ok"

    def rebase(self, s: MSession, tip: str) -> None:
        s.tree = merge(self.commits[s.base].tree, s.tree, s.written, self.commits[tip].tree)
        s.base = tip

    def discard(self) -> None:
        self.repo.discard_changes()
        self.s = MSession(self.s.branch, self.s.base, self.commits[self.s.base].tree)

    # ------------------------------------------------------------ writes
    def _write(self, data: st.DataObject, kinds: tuple[str, ...]) -> None:
        op = draw_op(data, self.s.tree, kinds)
        if op is None:
            return
        event(f"op {op[0]}")
        apply_real(self.repo, op)
        apply_model(self.s, op)

    @precondition(lambda self: self.s.writable)
    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        self._write(data, ("create_group", "create_array", "write_chunk", "set_attr"))

    @precondition(lambda self: self.s.writable)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self._write(data, ("delete",))

    @precondition(lambda self: self.s.writable)
    @rule(data=st.data())
    def move(self, data: st.DataObject) -> None:
        self._write(data, ("move",))

    @precondition(lambda self: self.s.writable)
    @rule()
    def discard_changes(self) -> None:
        self.discard()

    # ------------------------------------------------------------ commits
    def _commit(self, repo: zarrchive.Repo, s: MSession) -> None:
        """Commit ``s`` through ``repo`` (auto-ff), predicting the outcome."""
        if not self.has_changes(s):
            with pytest.raises(InvalidInputError, match="nothing to commit"):
                repo.commit(self.message())
            return
        assert s.branch is not None
        tip = self.branches[s.branch]
        outcome = self.predict_rebase(s, tip) if tip != s.base else "ok"
        event(f"commit {outcome}" + (" after rebase" if tip != s.base else ""))
        if outcome == "conflict":
            with pytest.raises(ConflictError):
                repo.commit(self.message())
            return
        if tip != s.base:
            self.rebase(s, tip)
        commit_id = repo.commit(self.message())
        assert repo.session.commit_attempts == 1
        self.record_commit(s, commit_id)

    @precondition(lambda self: self.s.writable)
    @rule()
    def commit(self) -> None:
        self._commit(self.repo, self.s)

    @precondition(lambda self: self.s.writable)
    @rule(data=st.data(), then=st.sampled_from(["commit", "fast_forward", "nothing"]))
    def second_writer_commits_first(self, data: st.DataObject, then: str) -> None:
        """Another Repo commits on our branch; then we commit (auto-ff) or fast_forward."""
        branch = self.s.branch
        assert branch is not None
        other = zarrchive.Repo.open(self.url, ref=branch, author="other")
        tip = self.branches[branch]
        assert other.session.snapshot_id == tip
        os_ = MSession(branch, tip, self.commits[tip].tree)
        for _ in range(data.draw(st.integers(1, 2), label="n_other_ops")):
            op = draw_op(data, os_.tree)
            if op is not None:
                event(f"other {op[0]}")
                apply_real(other, op)
                apply_model(os_, op)
        self._commit(other, os_)
        event(f"then {then}")
        if then == "commit":
            self._commit(self.repo, self.s)
        elif then == "fast_forward":
            tip = self.branches[branch]
            outcome = self.predict_rebase(self.s, tip) if tip != self.s.base else "ok"
            if outcome == "conflict":
                with pytest.raises(ConflictError):
                    self.repo.fast_forward()
            else:
                assert self.repo.fast_forward() == tip
                self.rebase(self.s, tip)
                self.s.unpersisted_rebase = True

    # ------------------------------------------------------------ sessions
    @precondition(lambda self: self.s.writable)
    @rule(data=st.data())
    def hand_session_to_another_repo(self, data: st.DataObject) -> None:
        """create_session (when clean) -> writes -> a second Repo joins by id and continues."""
        s = self.s
        if not self.has_changes():
            self.repo.create_session(s.branch, message="handed over")
            tip = self.branches[s.branch]  # type: ignore[index]
            self.s = s = MSession(s.branch, tip, self.commits[tip].tree)
        min_ops = 0 if self.has_changes() else 1
        for _ in range(data.draw(st.integers(min_ops, 3), label="n_ops")):
            op = draw_op(data, s.tree)
            if op is not None:
                event(f"op {op[0]}")
                apply_real(self.repo, op)
                apply_model(s, op)
        if s.journal_branch is None:
            return  # nothing was persisted (no op was possible): nothing to join
        if s.journal_branch != s.branch:
            event(
                "join after new_branch"
                + ("" if s.journal_branch in self.branches else ", first branch deleted")
            )
        session_id = self.repo.session.id
        joined = zarrchive.Repo.open(self.url, ref=s.branch, author="joiner")
        info = joined.join_session(session_id)
        assert info.id == session_id and info.branch == s.branch
        self.repo = joined
        event("joined" + (" after fast_forward" if s.unpersisted_rebase else ""))

    # ------------------------------------------------------------ refs
    @rule(data=st.data())
    def checkout(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(["branch", "tag", "commit"]), label="kind")
        if kind == "branch" and self.branches:
            ref = data.draw(st.sampled_from(sorted(self.branches)), label="branch")
        elif kind == "tag" and self.tags:
            ref = data.draw(st.sampled_from(sorted(self.tags)), label="tag")
        else:
            kind, ref = "commit", data.draw(st.sampled_from(list(self.commits)), label="id")
        if self.has_changes():
            with pytest.raises(InvalidInputError, match="uncommitted"):
                self.repo.checkout(ref)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            assert self.repo.checkout(ref) == (self.branches.get(ref) or self.tags.get(ref) or ref)
        if kind == "branch":
            self.s = MSession(ref, self.branches[ref], self.commits[self.branches[ref]].tree)
        else:
            target = self.tags.get(ref, ref)
            self.s = MSession(None, target, self.commits[target].tree)

    @rule(name=st.sampled_from(BRANCH_NAMES))
    def new_branch(self, name: str) -> None:
        if name in self.branches:
            with pytest.raises(InvalidInputError, match="already exists"):
                self.repo.new_branch(name)
            return
        assert self.repo.new_branch(name) == self.s.base
        self.branches[name] = self.s.base
        if self.s.writable:
            self.s.branch = name  # the session moves to the new branch with its changes
        else:
            self.s = MSession(name, self.s.base, self.commits[self.s.base].tree)

    @rule(name=st.sampled_from(BRANCH_NAMES))
    def delete_branch(self, name: str) -> None:
        if name == self.s.branch:
            with pytest.raises(InvalidInputError, match="checked out"):
                self.repo.delete_branch(name)
        elif name not in self.branches:
            with pytest.raises(zarrchive.NotFoundError):
                self.repo.delete_branch(name)
        else:
            self.repo.delete_branch(name)
            del self.branches[name]

    @rule(name=st.sampled_from(TAG_NAMES))
    def tag(self, name: str) -> None:
        if name in self.tags or name in self.deleted_tags:
            with pytest.raises(InvalidInputError):
                self.repo.tag(name)
            return
        assert self.repo.tag(name, message="model") == self.s.base
        self.tags[name] = self.s.base

    @precondition(lambda self: self.tags)
    @rule(data=st.data())
    def delete_tag(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.tags)), label="tag")
        self.repo.delete_tag(name)
        del self.tags[name]
        self.deleted_tags.add(name)

    @precondition(lambda self: self.branches)
    @rule(data=st.data())
    def reset_branch(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.branches)), label="branch")
        target = data.draw(st.sampled_from(list(self.commits)), label="commit")
        self.repo.reset_branch(name, target)
        self.branches[name] = target

    # ------------------------------------------------------------ invariants
    @invariant()
    def session_reads_the_model(self) -> None:
        s = self.s
        session = self.repo.session
        assert session.snapshot_id == s.base
        assert session.branch == s.branch
        assert session.writable == s.writable
        assert self.repo.status().has_changes == self.has_changes()
        assert read_view(self.repo.store) == expected_view(s.tree)

    @invariant()
    def refs_match_the_model(self) -> None:
        assert self.repo.branches == self.branches
        assert self.repo.tags == self.tags
        log = [c.id for c in self.repo.commit_log]
        expected, sid = [], self.s.base
        while sid is not None:
            expected.append(sid)
            sid = self.commits[sid].parent
        assert log == expected

    @invariant()
    def every_commit_reads_as_committed(self) -> None:
        for commit_id, c in self.commits.items():
            self.reader.checkout(commit_id, for_writing=False)
            assert read_view(self.reader.store) == expected_view(c.tree), commit_id


RepoMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRepoOperations = RepoMachine.TestCase


# ---------------------------------------------------------------------------- regressions


@pytest.fixture
def two_writers() -> tuple[zarrchive.Repo, zarrchive.Repo]:
    url = f"memory://{uuid.uuid4().hex}"
    a = zarrchive.Repo.create(url, author="a")
    a.root_group.create_group("src").attrs["who"] = "src"
    a.root_group.create_group("keep")
    a.commit("base")
    return a, zarrchive.Repo.open(url, author="b")


def test_move_onto_a_path_created_on_the_branch_conflicts(two_writers) -> None:
    a, b = two_writers
    a.root_group.create_group("dst").attrs["who"] = "a"
    a.commit("a creates dst")
    b.move("src", "dst")
    with pytest.raises(ConflictError):
        b.commit("b moves src to dst")


def test_move_into_a_group_deleted_on_the_branch_conflicts(two_writers) -> None:
    a, b = two_writers
    del a.root_group["keep"]
    a.commit("a deletes keep")
    b.move("src", "keep/src")
    with pytest.raises(ConflictError):
        b.commit("b moves src into keep")


def test_join_after_new_branch_continues_on_the_new_branch() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    repo = zarrchive.Repo.create(url)
    repo.root_group.attrs["x"] = 1  # persisted: the session's journal starts on main
    repo.new_branch("dev")
    joined = zarrchive.Repo.open(url)
    joined.join_session(repo.session.id)
    assert joined.session.branch == "dev"
    commit = joined.commit("on dev")
    assert joined.branches["dev"] == commit
    assert joined.branches["main"] != commit


def test_join_right_after_fast_forward_sees_the_new_base() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    a = zarrchive.Repo.create(url)
    a.root_group.create_group("g")
    a.commit("base")
    b = zarrchive.Repo.open(url)
    a.root_group.attrs["x"] = 1
    b.root_group["g"].attrs["y"] = 2
    tip = b.commit("b")
    assert a.fast_forward() == tip
    joined = zarrchive.Repo.open(url)
    joined.join_session(a.session.id)
    assert joined.session.snapshot_id == tip
    assert joined.root_group["g"].attrs["y"] == 2 and joined.root_group.attrs["x"] == 1
    joined.commit("joined", auto_ff=False)


def test_join_after_new_branch_when_the_first_branch_is_gone() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    repo = zarrchive.Repo.create(url)
    repo.root_group.attrs["x"] = 1  # persisted: the session's journal starts on main
    repo.new_branch("dev")
    zarrchive.Repo.open(url, ref="dev").delete_branch("main")
    joined = zarrchive.Repo.open(url, ref="dev")
    joined.join_session(repo.session.id)
    assert joined.session.branch == "dev" and joined.root_group.attrs["x"] == 1


def test_join_refuses_a_session_committed_on_the_branch_it_switched_to(monkeypatch) -> None:
    from zarrchive import ReadOnlyError, journal

    url = f"memory://{uuid.uuid4().hex}"
    repo = zarrchive.Repo.create(url)
    repo.root_group.attrs["x"] = 1
    repo.new_branch("dev")
    session_id = repo.session.id
    mark = journal.Journal.mark

    async def dies_before_marking(self, marker, body):  # type: ignore[no-untyped-def]
        if marker != "committed":
            await mark(self, marker, body)

    monkeypatch.setattr(journal.Journal, "mark", dies_before_marking)
    repo.commit("on dev")
    monkeypatch.setattr(journal.Journal, "mark", mark)
    with pytest.raises(ReadOnlyError, match="committed"):
        zarrchive.Repo.open(url, ref="dev").join_session(session_id)
