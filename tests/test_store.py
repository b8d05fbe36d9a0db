"""ZarrchiveStore against zarr-python's store test-suite and stateful machines.

``StoreTests`` assumes a key/value store that holds any bytes under any key. A zarrchive store
holds a Zarr v3 hierarchy: ``zarr.json`` keys must be valid v3 group or array documents (served
back, re-serialised, from the session's node tree) and every other key must be a chunk key of
an existing array. So:

* the bypass helpers (``set``/``get``) go through the session directly; for a chunk key they
  create (or grow) a minimal v3 array whose chunk key encoding makes the key one of its chunks,
  so tests writing ``c/0``, ``foo/c/0.0`` or ``foo/0/0`` exercise real chunk reads and writes;
* upstream tests that write arbitrary bytes as ``zarr.json`` or write keys that cannot be chunk
  keys are overridden with versions doing the same operations on valid v3 data (each override
  says what differs), and the store's refusal of such writes is tested on its own.
"""

from __future__ import annotations

import json
import pickle
import uuid
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, assume, note
from hypothesis import strategies as st
from hypothesis.stateful import Settings, initialize, rule, run_state_machine_as_test
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype
from zarr.core.sync import _collect_aiterator, sync
from zarr.storage._utils import _normalize_byte_range_index
from zarr.testing.stateful import ZarrHierarchyStateMachine, ZarrStoreStateMachine
from zarr.testing.store import StoreTests
from zarr.testing.utils import assert_bytes_equal

from zarrchive import InvalidInputError, ReadOnlyError, Repo, UnsupportedFeatureError
from zarrchive.session import Session
from zarrchive.store import ZarrchiveStore

GROUP_DOC: dict[str, Any] = {"zarr_format": 3, "node_type": "group", "attributes": {}}


def array_doc(
    shape: list[int],
    chunks: list[int] | None = None,
    encoding: tuple[str, str] = ("default", "/"),
) -> dict[str, Any]:
    """A minimal valid Zarr v3 array document (uint8, bytes codec)."""
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": "uint8",
        "chunk_grid": {
            "name": "regular",
            "configuration": {"chunk_shape": list(chunks or [1] * len(shape))},
        },
        "chunk_key_encoding": {"name": encoding[0], "configuration": {"separator": encoding[1]}},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
        "attributes": {},
    }


def doc_buf(doc: dict[str, Any]) -> Buffer:
    return cpu.Buffer.from_bytes(json.dumps(doc).encode())


def new_session() -> Session:
    """The writable session of a new, empty in-memory repository."""
    repo = Repo.create(f"memory://{uuid.uuid4().hex}")
    session = repo.session
    # A new repository starts with a root group; StoreTests expects an empty store.
    session.delete_node("")
    return session


# ---------------------------------------------------------------------- key arithmetic
# Deliberately independent of zarrchive.zarr_keys, so the bypass helpers do not share the
# store's key decoding.


def _meta_path(key: str) -> str | None:
    if key == "zarr.json":
        return ""
    if key.endswith("/zarr.json"):
        return key[: -len("/zarr.json")]
    return None


def _digits(parts: list[str]) -> tuple[int, ...] | None:
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _layouts(key: str) -> list[tuple[str, tuple[str, str], tuple[int, ...]]]:
    """Every (array path, (encoding, separator), coords) under which ``key`` is a chunk key,
    most natural first."""
    parts = key.split("/")
    last, base = parts[-1], "/".join(parts[:-1])
    out: list[tuple[str, tuple[str, str], tuple[int, ...]]] = []
    for i, p in enumerate(parts):  # default encoding, "/": <array>/c/<i>/<j>
        coords = _digits(parts[i + 1 :])
        if p == "c" and coords is not None:
            out.append(("/".join(parts[:i]), ("default", "/"), coords))
    if last.startswith("c.") and (coords := _digits(last[2:].split("."))) is not None:
        out.append((base, ("default", "."), coords))  # <array>/c.<i>.<j>
    run = 0
    while run < len(parts) and parts[len(parts) - 1 - run].isdigit():
        run += 1
    for k in range(run, 0, -1):  # v2 encoding, "/": <array>/<i>/<j>
        coords = tuple(int(p) for p in parts[-k:])
        out.append(("/".join(parts[:-k]), ("v2", "/"), coords))
    if (coords := _digits(last.split("."))) is not None:  # v2 encoding, ".": <array>/<i>.<j>
        out.append((base, ("v2", "."), coords))
    return out


def _encoding(meta: dict[str, Any]) -> tuple[str, str]:
    enc = meta.get("chunk_key_encoding") or {"name": "default"}
    sep = (enc.get("configuration") or {}).get("separator")
    return enc["name"], sep or ("/" if enc["name"] == "default" else ".")


def _is_layout_of(meta: dict[str, Any], encoding: tuple[str, str], coords: tuple[int, ...]) -> bool:
    return _encoding(meta) == encoding and len(meta["shape"]) == len(coords)


def _fits(session: Session, path: str, encoding: tuple[str, str], coords: tuple[int, ...]) -> bool:
    """Whether an array at ``path`` with this layout can hold the chunk in the current tree."""
    nodes = session.nodes
    anc = path
    while anc:
        anc = anc.rpartition("/")[0]
        node = nodes.get(anc)
        if node is not None and node.kind == "array":
            return False
    node = nodes.get(path)
    if node is None:
        return True
    if node.kind == "array":
        return _is_layout_of(node.meta, encoding, coords)
    prefix = f"{path}/" if path else ""
    return not any(p != path and p.startswith(prefix) for p in nodes)  # an empty group


def ensure_array_for(session: Session, key: str) -> tuple[str, tuple[int, ...]]:
    """Create or grow (through the session) the array that makes ``key`` a chunk key."""
    for path, encoding, coords in _layouts(key):
        if _fits(session, path, encoding, coords):
            break
    else:
        raise AssertionError(f"{key!r} cannot be a chunk key of any array in this hierarchy")
    node = session.node(path)
    if node is not None and node.kind == "array":
        meta = dict(node.meta)
        chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
        shape = [max(s, (c + 1) * n) for s, c, n in zip(meta["shape"], coords, chunks, strict=True)]
        if shape != meta["shape"]:
            meta["shape"] = shape
            session.set_metadata(path, meta)
    else:
        session.set_metadata(path, array_doc([c + 1 for c in coords], encoding=encoding))
    return path, coords


# ---------------------------------------------------------------------- StoreTests


class TestZarrchiveStore(StoreTests[ZarrchiveStore, cpu.Buffer]):
    store_cls = ZarrchiveStore
    buffer_cls = cpu.Buffer

    async def set(self, store: ZarrchiveStore, key: str, value: Buffer) -> None:
        session = store.session
        path = _meta_path(key)
        if path is not None:
            doc = json.loads(value.to_bytes())
            assert doc.get("zarr_format") == 3, "test error: not a Zarr v3 document"
            session.set_metadata(path, doc)
            return
        array, coords = ensure_array_for(session, key)
        await session.write_chunk(array, coords, value.to_bytes())

    async def get(self, store: ZarrchiveStore, key: str) -> Buffer | None:
        session = store.session
        path = _meta_path(key)
        if path is not None:
            node = session.node(path)
            return None if node is None else doc_buf(node.meta)
        for array, encoding, coords in _layouts(key):
            node = session.node(array)
            if node and node.kind == "array" and _is_layout_of(node.meta, encoding, coords):
                data = await session.read_chunk(array, coords)
                return None if data is None else self.buffer_cls.from_bytes(data)
        return None

    def prepare(self, store: ZarrchiveStore, *keys: str) -> None:
        """Create the arrays the chunk ``keys`` belong to (metadata only, via the session)."""
        for key in keys:
            ensure_array_for(store.session, key)

    @pytest.fixture
    def store_kwargs(self) -> dict[str, Any]:
        return {"session": new_session(), "read_only": False}

    def test_store_repr(self, store: ZarrchiveStore) -> None:
        assert repr(store).startswith("<ZarrchiveStore writable <Session ")
        assert "read-only" in repr(store.with_read_only(True))

    def test_store_supports_writes(self, store: ZarrchiveStore) -> None:
        assert store.supports_writes

    def test_store_supports_listing(self, store: ZarrchiveStore) -> None:
        assert store.supports_listing

    # --------------------------------------------------------- overrides with set-up only
    # These run the upstream test body unchanged; the arrays its chunk keys belong to are
    # created first, because a zarrchive store only accepts chunks of existing arrays.

    async def test_getsize_prefix(self, store: ZarrchiveStore) -> None:
        self.prepare(store, "c/1/1")
        await super().test_getsize_prefix(store)

    async def test_set_not_open(self, store_not_open: ZarrchiveStore) -> None:
        self.prepare(store_not_open, "c/0")
        await super().test_set_not_open(store_not_open)

    @pytest.mark.parametrize("key", ["zarr.json", "c/0", "foo/c/0.0", "foo/0/0"])
    @pytest.mark.parametrize("data", [b"\x01\x02\x03\x04", b""])
    async def test_set(self, store: ZarrchiveStore, key: str, data: bytes) -> None:
        if key == "zarr.json":
            # Upstream stores arbitrary bytes as zarr.json; here: a valid v3 document, which
            # comes back as the same document (re-serialised from the node tree).
            doc = {**GROUP_DOC, "attributes": {"data": data.hex()}}
            await store.set(key, doc_buf(doc))
            observed = await self.get(store, key)
            assert observed is not None and json.loads(observed.to_bytes()) == doc
            return
        self.prepare(store, key)
        await super().test_set(store, key, data)

    # --------------------------------------------------------- adapted overrides
    # Upstream writes arbitrary bytes as zarr.json or keys that are no chunk of any array;
    # these do the same operations with valid v3 documents and real chunk keys.

    async def test_serializable_store(self, store: ZarrchiveStore) -> None:
        # upstream writes key "foo", which is no chunk key; use chunks of an array, one inline
        # and one native (larger than the inline threshold, so it lives in storage)
        self.prepare(store, "c/2")
        small, large = b"\x01\x02\x03\x04", bytes(range(256)) * 8
        await store.set("c/0", self.buffer_cls.from_bytes(small))
        await store.set("c/1", self.buffer_cls.from_bytes(large))
        new_store: ZarrchiveStore = pickle.loads(pickle.dumps(store))
        assert new_store == store
        assert new_store.read_only == store.read_only
        proto = default_buffer_prototype()
        # the copy carries the session's uncommitted changes ...
        for key, data in [("c/0", small), ("c/1", large)]:
            observed = await new_store.get(key, prototype=proto)
            assert observed is not None and observed.to_bytes() == data
        data_buf = self.buffer_cls.from_bytes(b"\x05\x06")
        await new_store.set("c/2", data_buf)
        assert_bytes_equal(await new_store.get("c/2", prototype=proto), data_buf)
        assert await store.get("c/2", prototype=proto) is None  # ... as a copy
        # ... and shares the repository's storage: it sees what the original commits later
        commit_id = await store.session.commit("after pickling", author="test")
        snapshot = await new_store.session.repository.get_snapshot(commit_id)
        assert snapshot.nodes[""].kind == "array"

    async def test_with_read_only_store(self, open_kwargs: dict[str, Any]) -> None:
        # upstream writes and deletes key "foo"; here the group document "foo/zarr.json"
        key, value = "foo/zarr.json", doc_buf(GROUP_DOC)
        msg = "store was opened in read-only mode and does not support writing"
        store = await self.store_cls.open(**{**open_kwargs, "read_only": True})
        assert store.read_only
        with pytest.raises(ValueError, match=msg):
            await store.set(key, value)
        writer = store.with_read_only(read_only=False)
        assert not writer._is_open
        assert not writer.read_only
        await writer.set(key, value)
        assert await writer.exists(key)
        await writer.delete(key)
        assert not await writer.exists(key)
        assert store.read_only
        for s in (store, store.with_read_only(read_only=True)):
            assert s.read_only
            with pytest.raises(ValueError, match=msg):
                await s.set(key, value)
            with pytest.raises(ValueError, match=msg):
                await s.delete(key)
            with pytest.raises(ReadOnlyError):
                await s.delete_dir("foo")

    async def test_set_many(self, store: ZarrchiveStore) -> None:
        # upstream stores b"zarr.json" as zarr.json, and "c/0" beside "foo/..." (which makes
        # the root both an array and a group); here the arrays are declared first.
        await store._set_many(
            [
                ("zarr.json", doc_buf(GROUP_DOC)),
                ("c/zarr.json", doc_buf(array_doc([1], encoding=("v2", "/")))),
                ("foo/c/zarr.json", doc_buf(array_doc([1, 1], encoding=("v2", ".")))),
                ("foo/0/zarr.json", doc_buf(array_doc([1], encoding=("v2", "/")))),
            ]
        )
        keys = ["c/0", "foo/c/0.0", "foo/0/0"]
        store_dict = {k: self.buffer_cls.from_bytes(k.encode()) for k in keys}
        await store._set_many(store_dict.items())
        for k, v in store_dict.items():
            observed = await self.get(store, k)
            assert observed is not None and observed.to_bytes() == v.to_bytes()
        observed = await self.get(store, "zarr.json")
        assert observed is not None and json.loads(observed.to_bytes()) == GROUP_DOC
        assert sorted(await _collect_aiterator(store.list_dir("foo"))) == ["0", "c", "zarr.json"]

    @pytest.mark.parametrize(
        "key_ranges",
        [
            [],
            [("zarr.json", RangeByteRequest(0, 2))],
            [("c/0", RangeByteRequest(0, 2)), ("zarr.json", None)],
            [
                ("c/0/0", RangeByteRequest(0, 2)),
                ("c/0/1", SuffixByteRequest(2)),
                ("c/0/2", OffsetByteRequest(2)),
            ],
        ],
    )
    async def test_get_partial_values(
        self, store: ZarrchiveStore, key_ranges: list[tuple[str, Any]]
    ) -> None:
        # upstream stores each key's name as its value, b"zarr.json" included; here zarr.json
        # is the valid document of the root (an array when the chunk keys need one)
        for key, _ in key_ranges:
            if key != "zarr.json":
                await self.set(store, key, self.buffer_cls.from_bytes(key.encode()))
        if any(k == "zarr.json" for k, _ in key_ranges) and store.session.node("") is None:
            await self.set(store, "zarr.json", doc_buf(GROUP_DOC))
        proto = default_buffer_prototype()
        observed = await store.get_partial_values(prototype=proto, key_ranges=key_ranges)
        assert len(observed) == len(key_ranges)
        for obs, (key, byte_range) in zip(observed, key_ranges, strict=True):
            whole = await self.get(store, key)
            assert obs is not None and whole is not None
            expected = await store.get(key, prototype=proto, byte_range=byte_range)
            assert expected is not None
            assert obs.to_bytes() == expected.to_bytes()
            if key != "zarr.json":
                start, stop = _normalize_byte_range_index(whole, byte_range=byte_range)
                assert obs.to_bytes() == key.encode()[start:stop]

    async def test_exists(self, store: ZarrchiveStore) -> None:
        # upstream stores b"bar" as foo/zarr.json
        assert not await store.exists("foo")
        assert not await store.exists("foo/zarr.json")
        await store.set("foo/zarr.json", doc_buf(GROUP_DOC))
        assert await store.exists("foo/zarr.json")
        assert await store.exists("zarr.json")  # the parent group was created
        assert not await store.exists("foo")  # a node's path is not a key

    async def test_delete(self, store: ZarrchiveStore) -> None:
        # upstream stores b"bar" as foo/zarr.json
        await store.set("foo/zarr.json", doc_buf(array_doc([2])))
        await store.set("foo/c/1", self.buffer_cls.from_bytes(b"x"))
        await store.delete("foo/c/1")
        assert not await store.exists("foo/c/1")
        assert await store.exists("foo/zarr.json")
        await store.delete("foo/zarr.json")
        assert not await store.exists("foo/zarr.json")
        assert await store.exists("zarr.json")

    async def test_delete_dir(self, store: ZarrchiveStore) -> None:
        # upstream stores b"root" / b"bar" as zarr.json documents
        await store.set("zarr.json", doc_buf(GROUP_DOC))
        await store.set("foo-bar/zarr.json", doc_buf(GROUP_DOC))
        await store.set("foo/zarr.json", doc_buf(array_doc([1])))
        await store.set("foo/c/0", self.buffer_cls.from_bytes(b"chunk"))
        await store.delete_dir("foo")
        assert await store.exists("zarr.json")
        assert await store.exists("foo-bar/zarr.json")
        assert not await store.exists("foo/zarr.json")
        assert not await store.exists("foo/c/0")

    async def test_is_empty(self, store: ZarrchiveStore) -> None:
        # upstream writes "foo/bar", which is no chunk key; "foo/c/0" is
        assert await store.is_empty("")
        await self.set(store, "foo/c/0", self.buffer_cls.from_bytes(b"something"))
        assert not await store.is_empty("")
        assert await store.is_empty("fo")
        assert not await store.is_empty("foo/")
        assert not await store.is_empty("foo")
        assert await store.is_empty("spam/")

    async def test_clear(self, store: ZarrchiveStore) -> None:
        # upstream writes "key", which is no chunk key; "foo/c/0" is
        await self.set(store, "foo/c/0", self.buffer_cls.from_bytes(b"something"))
        await store.clear()
        assert await store.is_empty("")
        assert await self.get(store, "foo/c/0") is None

    async def test_list(self, store: ZarrchiveStore) -> None:
        # upstream stores b"" as foo/zarr.json; here foo is an array and the root group is
        # listed too (every node's parents exist in a hierarchy)
        assert await _collect_aiterator(store.list()) == ()
        data = self.buffer_cls.from_bytes(b"")
        await store.set("foo/zarr.json", doc_buf(array_doc([10])))
        await store._set_many([(f"foo/c/{idx}", data) for idx in range(10)])
        expected = sorted(["zarr.json", "foo/zarr.json", *(f"foo/c/{i}" for i in range(10))])
        assert sorted(await _collect_aiterator(store.list())) == expected

    async def test_list_prefix(self, store: ZarrchiveStore) -> None:
        # upstream stores b"" as each zarr.json; here group documents
        prefixes = ("", "a/", "a/b/", "a/b/c/")
        store_dict = {p + "zarr.json": doc_buf(GROUP_DOC) for p in prefixes}
        await store._set_many(store_dict.items())
        for prefix in prefixes:
            observed = tuple(sorted(await _collect_aiterator(store.list_prefix(prefix))))
            assert observed == tuple(sorted(k for k in store_dict if k.startswith(prefix)))

    async def test_list_empty_path(self, store: ZarrchiveStore) -> None:
        # upstream stores b"" as foo/bar/zarr.json and chunks of the undeclared "foo/baz"
        data = self.buffer_cls.from_bytes(b"")
        docs = {
            "zarr.json": GROUP_DOC,
            "foo/zarr.json": GROUP_DOC,
            "foo/bar/zarr.json": array_doc([2]),
            "foo/baz/zarr.json": array_doc([2]),
        }
        await store._set_many((k, doc_buf(d)) for k, d in docs.items())
        await store._set_many([("foo/bar/c/1", data), ("foo/baz/c/0", data)])
        expected = sorted([*docs, "foo/bar/c/1", "foo/baz/c/0"])
        assert sorted(await _collect_aiterator(store.list())) == expected
        assert sorted(await _collect_aiterator(store.list_prefix(""))) == expected
        observed = sorted(await _collect_aiterator(store.list_prefix("foo/bar/")))
        assert observed == [k for k in expected if k.startswith("foo/bar/")]

    async def test_list_dir(self, store: ZarrchiveStore) -> None:
        # upstream puts "foobar_first_child" (no chunk key) below the array "foo"; here an
        # array and a group below the group "grp", and the chunk directories of arrays
        assert await _collect_aiterator(store.list_dir("")) == ()
        roots_and_keys: list[tuple[str, dict[str, Buffer], list[str]]] = [
            (
                "foo",
                {
                    "foo/zarr.json": doc_buf(array_doc([2])),
                    "foo/c/1": self.buffer_cls.from_bytes(b"\x01"),
                },
                ["c", "zarr.json"],
            ),
            (
                "grp",
                {
                    "grp/zarr.json": doc_buf(GROUP_DOC),
                    "grp/first/zarr.json": doc_buf(array_doc([2, 2])),
                    "grp/second/zarr.json": doc_buf(GROUP_DOC),
                },
                ["first", "second", "zarr.json"],
            ),
        ]
        for root, store_dict, expected in roots_and_keys:
            assert await _collect_aiterator(store.list_dir(root)) == ()
            for k, v in store_dict.items():  # documents before chunks
                await store.set(k, v)
            assert sorted(await _collect_aiterator(store.list_dir(root))) == expected
            assert sorted(await _collect_aiterator(store.list_dir(root + "/"))) == expected
        assert sorted(await _collect_aiterator(store.list_dir(""))) == ["foo", "grp", "zarr.json"]
        assert await _collect_aiterator(store.list_dir("foo/c")) == ("1",)
        assert await _collect_aiterator(store.list_dir("grp/first/c")) == ()
        one = self.buffer_cls.from_bytes(b"1")
        await store._set_many([("grp/first/c/0/1", one), ("grp/first/c/1/0", one)])
        assert sorted(await _collect_aiterator(store.list_dir("grp/first"))) == ["c", "zarr.json"]
        assert sorted(await _collect_aiterator(store.list_dir("grp/first/c"))) == ["0", "1"]
        assert await _collect_aiterator(store.list_dir("grp/first/c/0")) == ("1",)

    async def test_set_if_not_exists(self, store: ZarrchiveStore) -> None:
        # upstream uses keys "k" and "k2", which are no chunk keys
        data_buf = self.buffer_cls.from_bytes(b"0000")
        await self.set(store, "c/0", data_buf)
        self.prepare(store, "c/1")
        new = self.buffer_cls.from_bytes(b"1111")
        await store.set_if_not_exists("c/0", new)  # no error, no change
        assert_bytes_equal(await store.get("c/0", default_buffer_prototype()), data_buf)
        await store.set_if_not_exists("c/1", new)
        assert_bytes_equal(await store.get("c/1", default_buffer_prototype()), new)
        await store.set_if_not_exists("zarr.json", doc_buf(GROUP_DOC))  # exists: no change
        root = await store._get_json("zarr.json", prototype=default_buffer_prototype())
        assert root["node_type"] == "array" and root["shape"] == [2]

    async def test_get_bytes(self, store: ZarrchiveStore) -> None:
        # upstream stores b"hello world" as zarr.json; documents come back re-serialised, so
        # compare the decoded document
        doc = {**GROUP_DOC, "attributes": {"hello": "world"}}
        await self.set(store, "zarr.json", doc_buf(doc))
        got = await store._get_bytes("zarr.json", prototype=default_buffer_prototype())
        assert json.loads(got) == doc
        await self.set(store, "c/0", self.buffer_cls.from_bytes(b"hello world"))
        assert await store._get_bytes("c/0", prototype=default_buffer_prototype()) == (
            b"hello world"
        )
        with pytest.raises(FileNotFoundError):
            await store._get_bytes("nonexistent_key", prototype=default_buffer_prototype())

    def test_get_bytes_sync(self, store: ZarrchiveStore) -> None:
        # as test_get_bytes
        sync(self.set(store, "c/0", self.buffer_cls.from_bytes(b"hello world")))
        assert store._get_bytes_sync("c/0", prototype=default_buffer_prototype()) == (
            b"hello world"
        )

    async def test_get_json(self, store: ZarrchiveStore) -> None:
        # upstream stores {"foo": "bar"}, which is no Zarr v3 document, as zarr.json
        doc = {**GROUP_DOC, "attributes": {"foo": "bar"}}
        await self.set(store, "zarr.json", doc_buf(doc))
        assert await store._get_json("zarr.json", prototype=default_buffer_prototype()) == doc

    def test_get_json_sync(self, store: ZarrchiveStore) -> None:
        # as test_get_json
        doc = {**GROUP_DOC, "attributes": {"foo": "bar"}}
        sync(self.set(store, "zarr.json", doc_buf(doc)))
        assert store._get_json_sync("zarr.json", prototype=default_buffer_prototype()) == doc

    # --------------------------------------------------------- what the store refuses

    @pytest.mark.parametrize("payload", [b"bar", b"", b'{"foo": "bar"}', b'{"zarr_format": 2}'])
    async def test_refuses_invalid_metadata(self, store: ZarrchiveStore, payload: bytes) -> None:
        with pytest.raises(InvalidInputError):
            await store.set("foo/zarr.json", self.buffer_cls.from_bytes(payload))
        assert await _collect_aiterator(store.list()) == ()

    @pytest.mark.parametrize("key", ["foo", "k", "foo/bar", "c/0", "foo/c/x", "foo/c/0/0"])
    async def test_refuses_keys_that_are_no_chunk(self, store: ZarrchiveStore, key: str) -> None:
        await store.set("foo/zarr.json", doc_buf(array_doc([2])))
        with pytest.raises(InvalidInputError):
            await store.set(key, self.buffer_cls.from_bytes(b"x"))
        assert await store.get(key, default_buffer_prototype()) is None
        assert not await store.exists(key)

    @pytest.mark.parametrize("key", ["/zarr.json", "a//zarr.json", "a/../zarr.json", "./zarr.json"])
    async def test_refuses_bad_node_paths(self, store: ZarrchiveStore, key: str) -> None:
        with pytest.raises(InvalidInputError):
            await store.set(key, doc_buf(GROUP_DOC))
        assert await _collect_aiterator(store.list()) == ()

    @pytest.mark.parametrize("key", [".zgroup", "foo/.zarray", "foo/.zattrs", ".zmetadata"])
    async def test_refuses_zarr_v2_metadata(self, store: ZarrchiveStore, key: str) -> None:
        with pytest.raises(UnsupportedFeatureError):
            await store.set(key, self.buffer_cls.from_bytes(b"{}"))


# ---------------------------------------------------------------------- stateful machines

STATEFUL_SETTINGS = Settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.filterwarnings("ignore::zarr.core.dtype.common.UnstableSpecificationWarning")
def test_zarr_hierarchy_state_machine() -> None:
    """zarr's hierarchy machine: groups, arrays, writes, resizes and deletes through zarr's
    API, compared key by key with a MemoryStore."""
    run_state_machine_as_test(
        lambda: ZarrHierarchyStateMachine(ZarrchiveStore(new_session())),
        settings=STATEFUL_SETTINGS,
    )


# Chunk keys of three arrays in three layouts; the machine's keys are drawn from these.
_ARRAYS: dict[str, dict[str, Any]] = {
    "a": array_doc([4, 4]),  # a/c/<i>/<j>
    "g/b": array_doc([4, 3], encoding=("v2", ".")),  # g/b/<i>.<j>
    "g/s": array_doc([], encoding=("default", "/")),  # g/s/c (0-d)
}
_CHUNK_KEYS = sorted(
    ["g/s/c"]
    + [f"a/c/{i}/{j}" for i in range(4) for j in range(4)]
    + [f"g/b/{i}.{j}" for i in range(4) for j in range(3)]
)


class ChunkStoreStateMachine(ZarrStoreStateMachine):
    """zarr's key/value machine with keys a hierarchy store can hold: chunk keys of arrays
    declared at start-up (and after every clear). Metadata documents are part of the model, so
    the listing, exists, get and partial-read invariants cover them too."""

    def _declare(self) -> None:
        for path, doc in _ARRAYS.items():
            self.store.set(f"{path}/zarr.json", doc_buf(doc))
        for key in self.store.list():
            value = self.store.get(key, self.prototype)
            assert value is not None
            self.model[key] = value
        expected = ["zarr.json", "g/zarr.json", *(f"{p}/zarr.json" for p in _ARRAYS)]
        assert sorted(self.model) == sorted(expected)

    @initialize()
    def init_store(self) -> None:
        self.store.clear()
        self._declare()

    @rule(key=st.sampled_from(_CHUNK_KEYS), data=st.binary(min_size=0, max_size=100))
    def set(self, key: str, data: bytes) -> None:
        note(f"(set) Setting {key!r} with {data!r}")
        data_buf = cpu.Buffer.from_bytes(data)
        self.store.set(key, data_buf)
        self.model[key] = data_buf

    @rule(data=st.data())
    def delete(self, data: Any) -> None:
        chunks = sorted(k for k in self.model if not k.endswith("zarr.json"))
        assume(chunks)
        key = data.draw(st.sampled_from(chunks))
        note(f"(delete) Deleting {key=}")
        self.store.delete(key)
        del self.model[key]

    @rule()
    def clear(self) -> None:
        note("(clear)")
        self.store.clear()
        self.model.clear()
        assert self.store.is_empty("")
        assert len(list(self.store.list())) == 0
        self._declare()

    @rule(key=st.sampled_from(_CHUNK_KEYS))
    def get_absent_chunk(self, key: str) -> None:
        assume(key not in self.model)
        assert self.store.get(key, self.prototype) is None
        assert not self.store.exists(key)


def test_zarr_store_state_machine() -> None:
    """zarr's key/value machine (sets, gets, partial reads, deletes, clears, exists, listing)
    on chunk keys of declared arrays, compared with a dict."""
    run_state_machine_as_test(
        lambda: ChunkStoreStateMachine(ZarrchiveStore(new_session())),
        settings=STATEFUL_SETTINGS,
    )


def test_zarr_roundtrip_through_store() -> None:
    """Arrays written through zarr read back through a fresh store over the committed repo."""
    repo = Repo.create(f"memory://{uuid.uuid4().hex}")
    root = zarr.open_group(repo.store, mode="r+", zarr_format=3)
    arr = root.create_array("x/y", shape=(7, 5), chunks=(3, 2), dtype="f8", fill_value=-1.0)
    data = np.arange(35, dtype="f8").reshape(7, 5)
    arr[:5, 1:] = data[:5, 1:]
    expected = np.full((7, 5), -1.0)
    expected[:5, 1:] = data[:5, 1:]
    repo.commit("write x/y")
    reopened = Repo.open(repo.repository.location)
    stored = zarr.open_array(reopened.store, path="x/y", mode="r")
    np.testing.assert_array_equal(stored[:], expected)


def test_chunks_outside_a_shrunk_grid_stay_deletable() -> None:
    """zarr's resize(delete_outside_chunks=False) keeps chunks beyond the new grid; they are
    still listed, so they must be deletable (regression: the grid check refused tombstones)."""
    repo = Repo.create(f"memory://{uuid.uuid4().hex}")
    arr = zarr.create_array(
        repo.store, name="x", shape=(10,), chunks=(2,), dtype="i4", fill_value=0
    )
    arr[:] = np.arange(10)
    repo.commit("full")
    store = repo.store
    sync(zarr.open_array(store, path="x")._async_array.resize((4,), delete_outside_chunks=False))
    assert "x/c/4" in sync(_collect_aiterator(store.list()))
    sync(store.delete("x/c/4"))
    assert not sync(store.exists("x/c/4"))
    with pytest.raises(InvalidInputError):  # writing outside the grid is still refused
        sync(store.set("x/c/4", cpu.Buffer.from_bytes(b"\0" * 8)))
    repo.commit("shrunk, chunk 4 deleted")
    grown = zarr.open_array(Repo.open(repo.repository.location).store, path="x")
    grown.resize((10,))
    np.testing.assert_array_equal(grown[:], [0, 1, 2, 3, 4, 5, 6, 7, 0, 0])
