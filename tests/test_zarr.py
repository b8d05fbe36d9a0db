"""``zarrchive._zarr``: the one module that takes names from zarr-python's private modules.

A zarr release that moves one of them fails here first, and no other module reaches into
``zarr.core`` (imports inside functions and under ``TYPE_CHECKING`` included).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import zarr
import zarr.codecs.numcodecs as numcodecs_codecs

from zarrchive import _zarr

SRC = Path(__file__).resolve().parents[1] / "src" / "zarrchive"


def _is_private(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "zarr" and (
        parts[1:2] == ["core"] or any(p.startswith("_") for p in parts[1:])
    )


def _private_imports(path: Path) -> list[str]:
    """``path:line name`` of every import of a private zarr module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        private = [n for n in names if _is_private(n)]
        if private:
            found.append(f"{path.relative_to(SRC)}:{node.lineno} {private[0]}")
    return found


def test_no_other_module_imports_zarr_private_modules() -> None:
    modules = sorted(SRC.rglob("*.py"))
    assert len(modules) > 40
    offending = [hit for p in modules if p.name != "_zarr.py" for hit in _private_imports(p)]
    assert offending == []
    assert _private_imports(SRC / "_zarr.py")  # the check sees the imports it is there for


def test_stock_pipeline_is_zarrs_default() -> None:
    defaults = [d["codec_pipeline"]["path"] for d in zarr.config.defaults if "codec_pipeline" in d]
    assert defaults == [_zarr.STOCK_PIPELINE]
    assert _zarr.STOCK_PIPELINE.rsplit(".", 1) == [
        _zarr.BatchedCodecPipeline.__module__,
        _zarr.BatchedCodecPipeline.__qualname__,
    ]


def test_numcodecs_wrappers_are_the_base_classes_of_zarrs_numcodecs_codecs() -> None:
    wrappers = _zarr.numcodecs_wrappers()
    assert wrappers is not None
    assert issubclass(numcodecs_codecs.Zlib, wrappers._NumcodecsBytesBytesCodec)
    assert issubclass(numcodecs_codecs.Delta, wrappers._NumcodecsArrayArrayCodec)
    assert issubclass(numcodecs_codecs.PCodec, wrappers._NumcodecsArrayBytesCodec)


def test_array_document_is_what_zarr_writes(tmp_path: Path) -> None:
    arr = zarr.create_array(
        tmp_path / "s.zarr",
        name="a",
        shape=(4, 6),
        chunks=(2, 3),
        dtype="<f4",
        fill_value=np.nan,
        attributes={"units": "K"},
        dimension_names=("y", "x"),
    )
    assert isinstance(arr.metadata, _zarr.ArrayV3Metadata)
    written = json.loads((tmp_path / "s.zarr" / "a" / "zarr.json").read_bytes())
    document = _zarr.array_document(arr.metadata)
    assert document == written
    assert document["fill_value"] == "NaN" and document["dimension_names"] == ["y", "x"]
