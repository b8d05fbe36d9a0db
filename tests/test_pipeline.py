"""Batched reads (``zarrchive.pipeline``) against zarr's own pipeline on the same store.

Every read is done twice: through the pipeline ``import zarrchive`` installs, and through
zarr's stock ``BatchedCodecPipeline`` opened on the same store; the arrays must be equal for
every selection, codec chain, chunk kind (virtual in one local file, native, inline,
deleted, never written) and storage backend. Audit events for ``open`` show that the
batched path really reads a source file once per batch, not once per chunk.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
import zarr.codecs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst
from zarr.codecs.numcodecs import Shuffle, Zlib

import zarrchive
from zarrchive.pipeline import ZarrchiveCodecPipeline, _Chain

STOCK = "zarr.core.codec_pipeline.BatchedCodecPipeline"
SHAPE, CHUNKS = (13, 10, 9), (2, 4, 3)  # edge chunks in every dimension

CODECS: dict[str, dict[str, Any]] = {
    "numcodecs-zlib-shuffle": {
        "serializer": "auto",
        "compressors": [Shuffle(elementsize=4), Zlib(level=1)],
    },
    "gzip": {"compressors": [zarr.codecs.GzipCodec(level=1)]},
    "zstd-crc32c": {
        "compressors": [zarr.codecs.ZstdCodec(level=1), zarr.codecs.Crc32cCodec()],
    },
    "blosc": {"compressors": [zarr.codecs.BloscCodec(cname="lz4", shuffle="bitshuffle")]},
    "transpose-bitround": {
        "filters": [
            zarr.codecs.TransposeCodec(order=(2, 0, 1)),
            zarr.codecs.numcodecs.BitRound(keepbits=23),
        ],
        "serializer": zarr.codecs.BytesCodec(endian="big"),
        "compressors": None,
    },
}


def _data(shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.normal(size=shape).astype("<f4").round(2)


def _write_source(
    path: Path, data: np.ndarray, codecs: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Encode ``data`` with zarr into one file of chunks with gaps between them.

    Returns chunk coordinates, offsets and lengths, and the number of chunks.
    """
    mem = zarr.storage.MemoryStore()
    arr = zarr.create_array(mem, shape=data.shape, chunks=CHUNKS, dtype=data.dtype, **codecs)
    arr[...] = data
    coords, offsets, lengths = [], [], []
    blob = bytearray(b"header" * 10)
    rng = np.random.default_rng(5)
    for key, value in sorted(mem._store_dict.items()):
        if not key.startswith("c/"):
            continue
        raw = value.to_bytes()
        coords.append([int(p) for p in key[2:].split("/")])
        offsets.append(len(blob))
        lengths.append(len(raw))
        blob += raw + b"\0" * int(rng.integers(0, 3) * 50)
    path.write_bytes(bytes(blob))
    return np.asarray(coords), np.asarray(offsets), np.asarray(lengths), len(coords)


def _repo(
    location: tuple[str, dict[str, Any] | None], tmp_path: Path, codec: str
) -> tuple[zarrchive.Repo, np.ndarray]:
    """An array whose chunks are virtual, native, inline, deleted and never written."""
    data = _data()
    src = tmp_path / "source.bin"
    coords, offsets, lengths, _ = _write_source(src, data, CODECS[codec])
    url, options = location
    repo = zarrchive.Repo.create(url, storage_options=options)
    zarr.create_array(
        repo.store,
        name="g/a",
        shape=SHAPE,
        chunks=CHUNKS,
        dtype="<f4",
        fill_value=-9.0,
        dimension_names=["t", "y", "x"],
        **CODECS[codec],
    )
    keep = np.ones(len(coords), dtype=bool)
    keep[[1, 7]] = False  # never written: fill value
    repo.set_virtual_refs("g/a", coords[keep], "file://" + str(src), offsets[keep], lengths[keep])
    expected = data.copy()
    for c in coords[~keep]:
        expected[tuple(slice(i * n, (i + 1) * n) for i, n in zip(c, CHUNKS, strict=True))] = -9.0
    arr = zarr.open_array(repo.store, path="g/a")
    arr[0:2, 0:4, 0:3] = 7.0  # a native chunk (or inline, depending on size)
    expected[0:2, 0:4, 0:3] = 7.0
    arr[12:13, 8:10, 6:9] = 1.5  # a small edge chunk
    expected[12:13, 8:10, 6:9] = 1.5
    return repo, expected


def _both(store: Any, path: str) -> tuple[zarr.Array, zarr.Array]:
    fast = zarr.open_array(store, path=path, mode="r")
    with zarr.config.set({"codec_pipeline.path": STOCK}):
        stock = zarr.open_array(store, path=path, mode="r")
    assert type(fast.async_array.codec_pipeline) is ZarrchiveCodecPipeline
    assert type(stock.async_array.codec_pipeline).__name__ == "BatchedCodecPipeline"
    return fast, stock


SELECTIONS: list[Any] = [
    (),
    (slice(None),),
    (slice(1, 12, 3), slice(None), slice(2, 8)),
    (5,),
    (5, 3),
    (slice(None), 9, slice(None, None, 2)),
    (12, slice(8, 10), slice(6, 9)),
    (Ellipsis, 0),
]


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_reads_equal_zarrs_own_pipeline(
    location: tuple[str, dict[str, Any] | None], tmp_path: Path, codec: str
) -> None:
    if codec != "numcodecs-zlib-shuffle" and location[0].startswith("s3://"):
        pytest.skip("one codec chain is enough on S3")
    repo, expected = _repo(location, tmp_path, codec)
    for stage in ("uncommitted", "committed"):
        fast, stock = _both(repo.store, "g/a")
        for sel in SELECTIONS:
            got = fast[sel]
            np.testing.assert_array_equal(got, stock[sel], err_msg=f"{stage} {sel}")
            np.testing.assert_array_equal(got, expected[sel], err_msg=f"{stage} {sel}")
        idx = ([0, 5, 12], [9, 1], [0, 8])
        np.testing.assert_array_equal(fast.oindex[idx], stock.oindex[idx])
        np.testing.assert_array_equal(
            fast.vindex[[0, 5, 12], [9, 1, 3], [0, 8, 2]],
            expected[[0, 5, 12], [9, 1, 3], [0, 8, 2]],
        )
        if stage == "uncommitted":
            repo.commit("chunks of every kind")


def test_deleted_chunks_read_as_fill_value(tmp_path: Path) -> None:
    repo, expected = _repo((str(tmp_path / "repo"), None), tmp_path, "gzip")
    repo.commit("base")
    store = repo.store
    from zarrchive._sync import sync

    sync(store.delete("g/a/c/0/0/0"))  # native
    sync(store.delete("g/a/c/3/1/1"))  # virtual
    expected[0:2, 0:4, 0:3] = -9.0
    expected[6:8, 4:8, 3:6] = -9.0
    fast, stock = _both(store, "g/a")
    np.testing.assert_array_equal(fast[:], expected)
    np.testing.assert_array_equal(stock[:], expected)


def _forward(sel: Any) -> bool:
    """zarr supports only slices with positive steps."""
    parts = sel if isinstance(sel, tuple) else (sel,)
    return all(not isinstance(p, slice) or (p.step or 1) > 0 for p in parts)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_selections(data: st.DataObject, committed_repo: tuple[Any, np.ndarray]) -> None:
    store, expected = committed_repo
    fast, stock = _both(store, "g/a")
    sel = data.draw(npst.basic_indices(SHAPE, allow_newaxis=False).filter(_forward))
    np.testing.assert_array_equal(fast[sel], expected[sel])
    np.testing.assert_array_equal(stock[sel], expected[sel])


@pytest.fixture(scope="module")
def committed_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, np.ndarray]:
    tmp = tmp_path_factory.mktemp("pipeline")
    repo, expected = _repo((str(tmp / "repo"), None), tmp, "numcodecs-zlib-shuffle")
    repo.commit("base")
    return repo.store, expected


# ------------------------------------------------------------------ batching is real
@pytest.fixture
def opens() -> Iterator[list[str]]:
    """Paths passed to ``open``/``os.open`` in this process while the fixture is active."""
    seen: list[str] = []
    active = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if active[0] and event == "open" and isinstance(args[0], str):
            seen.append(args[0])

    sys.addaudithook(hook)  # audit hooks cannot be removed; this one goes quiet instead
    yield seen
    active[0] = False


def test_one_open_per_batch_not_per_chunk(tmp_path: Path, opens: list[str]) -> None:
    data = np.arange(64 * 8 * 8, dtype="<f4").reshape(64, 8, 8)
    src = tmp_path / "hourly.bin"
    mem = zarr.storage.MemoryStore()
    zarr.create_array(mem, shape=data.shape, chunks=(1, 8, 8), dtype="<f4")[...] = data
    coords, offsets, lengths = [], [], []
    blob = bytearray()
    for t in range(64):
        raw = mem._store_dict[f"c/{t}/0/0"].to_bytes()
        coords.append([t, 0, 0])
        offsets.append(len(blob))
        lengths.append(len(raw))
        blob += raw
    src.write_bytes(bytes(blob))
    repo = zarrchive.Repo.create(str(tmp_path / "repo"))
    zarr.create_array(repo.store, name="a", shape=data.shape, chunks=(1, 8, 8), dtype="<f4")
    repo.set_virtual_refs("a", np.asarray(coords), "file://" + str(src), offsets, lengths)
    repo.commit("refs")
    fast, stock = _both(repo.store, "a")
    opens.clear()
    np.testing.assert_array_equal(fast[:], data)
    batched = opens.count(str(src))
    opens.clear()
    np.testing.assert_array_equal(stock[:], data)
    per_chunk = opens.count(str(src))
    assert per_chunk == 64
    assert 1 <= batched <= 16, batched


# ------------------------------------------------------------------ errors and fallbacks
def _virtual_repo(tmp_path: Path) -> tuple[str, Path, np.ndarray]:
    """Kerchunk references to zlib chunks in one file (the import records its checksum)."""
    data = _data()
    src = tmp_path / "source.bin"
    coords, offsets, lengths, _ = _write_source(src, data, {"compressors": [Zlib(level=1)]})
    zarray = {
        "zarr_format": 2,
        "shape": list(SHAPE),
        "chunks": list(CHUNKS),
        "dtype": "<f4",
        "compressor": {"id": "zlib", "level": 1},
        "filters": None,
        "fill_value": None,
        "order": "C",
    }
    refs = {".zgroup": json.dumps({"zarr_format": 2}), "a/.zarray": json.dumps(zarray)}
    for c, off, n in zip(coords.tolist(), offsets.tolist(), lengths.tolist(), strict=True):
        refs["a/" + ".".join(map(str, c))] = ["file://" + str(src), off, n]
    location = str(tmp_path / "repo")
    repo = zarrchive.Repo.create(location)
    repo.add_kerchunk_references({"version": 1, "refs": refs}, "")
    repo.commit("refs")
    return location, src, data


def test_changed_missing_and_unauthorised_sources_raise(tmp_path: Path) -> None:
    location, src, data = _virtual_repo(tmp_path)
    prefix = "file://" + str(tmp_path) + "/"
    with pytest.raises(zarrchive.UnauthorizedSourceError, match="authorize_virtual"):
        zarr.open_array(zarrchive.Repo.open(location).store, path="a", mode="r")[:]
    repo = zarrchive.Repo.open(location, authorize_virtual=[prefix])
    np.testing.assert_array_equal(zarr.open_array(repo.store, path="a", mode="r")[:], data)
    blob = src.read_bytes()
    src.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(zarrchive.SourceModifiedError, match="changed since it was imported"):
        zarr.open_array(repo.store, path="a", mode="r")[:]
    src.unlink()
    with pytest.raises(zarrchive.SourceModifiedError, match="no longer exists"):
        zarr.open_array(repo.store, path="a", mode="r")[:]


class _Xor(zarr.abc.codec.BytesBytesCodec):
    """A third-party codec with only an async decode: the batched path must step aside."""

    is_fixed_size = True

    @classmethod
    def from_dict(cls, data: Any) -> _Xor:
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {"name": "test_xor"}

    async def _decode_single(self, chunk: Any, spec: Any) -> Any:
        return chunk.__class__.from_bytes(bytes(b ^ 0x5A for b in chunk.to_bytes()))

    async def _encode_single(self, chunk: Any, spec: Any) -> Any:
        return chunk.__class__.from_bytes(bytes(b ^ 0x5A for b in chunk.to_bytes()))

    def compute_encoded_size(self, n: int, spec: Any) -> int:
        return n


def test_third_party_codec_reads_through_zarrs_path(tmp_path: Path) -> None:
    zarr.registry.register_codec("test_xor", _Xor)
    repo = zarrchive.Repo.create(str(tmp_path / "repo"))
    arr = zarr.create_array(
        repo.store, name="a", shape=(6, 4), chunks=(1, 4), dtype="<i8", compressors=[_Xor()]
    )
    arr[...] = np.arange(24).reshape(6, 4)
    assert not _Chain(arr.async_array.codec_pipeline).ok  # zarr's own path reads it
    np.testing.assert_array_equal(arr[:], np.arange(24).reshape(6, 4))


def test_install_respects_a_users_pipeline_and_the_switch() -> None:
    code = "import zarr, zarrchive; print(zarr.config.get('codec_pipeline.path'))"
    env_other = {"ZARR_CODEC_PIPELINE__PATH": "somebody.else.Pipeline"}
    run = lambda extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, **extra},
    ).stdout.strip()
    assert run({}) == "zarrchive.pipeline.ZarrchiveCodecPipeline"
    assert run(env_other) == "somebody.else.Pipeline"
    assert run({"ZARRCHIVE_BATCHED_READS": "0"}) == STOCK


def test_which_codec_chains_take_the_batched_path() -> None:
    """zarr's own codecs and its numcodecs wrappers (what NetCDF imports use) qualify."""
    for codecs in CODECS.values():
        chain = [*(codecs.get("filters") or []), *(codecs.get("compressors") or [])]
        serializer = codecs.get("serializer")
        if not isinstance(serializer, zarr.codecs.BytesCodec):
            serializer = zarr.codecs.BytesCodec()
        pipeline = ZarrchiveCodecPipeline.from_codecs(
            [
                *chain[: len(codecs.get("filters") or [])],
                serializer,
                *(codecs.get("compressors") or []),
            ]
        )
        assert _Chain(pipeline).ok, codecs
    sharded = ZarrchiveCodecPipeline.from_codecs([zarr.codecs.ShardingCodec(chunk_shape=(2,))])
    assert not _Chain(sharded).ok


def test_undecodable_chunk_is_a_typed_error_naming_the_chunk(tmp_path: Path) -> None:
    data = _data()
    src = tmp_path / "source.bin"
    coords, offsets, lengths, _ = _write_source(src, data, {"compressors": [Zlib(level=1)]})
    repo = zarrchive.Repo.create(str(tmp_path / "repo"))
    zarr.create_array(
        repo.store, name="a", shape=SHAPE, chunks=CHUNKS, dtype="<f4", compressors=[Zlib()]
    )
    offsets = offsets.copy()
    offsets[4] += 1  # a reference one byte off: the bytes are not a zlib stream
    repo.set_virtual_refs("a", coords, "file://" + str(src), offsets, lengths)
    with pytest.raises(zarrchive.FormatError, match=r"source\.bin bytes .* cannot be decoded"):
        zarr.open_array(repo.store, path="a", mode="r")[:]
