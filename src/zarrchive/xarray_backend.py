"""xarray backend: ``xr.open_dataset(location, engine="zarrchive", group=..., ref=...)``.

Registered through the ``xarray.backends`` entry point. Opens the repository read-only at a
branch, tag or commit and hands xarray's own zarr backend our Zarr v3 store, so decoding is
exactly xarray's. Recognises repositories by their ``config`` object's magic bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xarray.backends import BackendEntrypoint

__all__ = ["ZarrchiveBackendEntrypoint"]


class ZarrchiveBackendEntrypoint(BackendEntrypoint):
    description = "Open a group of a zarrchive repository at a branch, tag or commit"
    url = "https://pypi.org/project/zarrchive/"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "group",
        "ref",
        "storage_options",
        "authorize_virtual",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str],
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        ref: str = "main",
        storage_options: dict[str, Any] | None = None,
        authorize_virtual: Mapping[str, Mapping[str, Any] | None] | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        import warnings

        import xarray as xr

        from .repo import Repo

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not the tip of a branch.*")
            repo = Repo.open(
                os.fspath(filename_or_obj),
                storage_options=storage_options,
                ref=ref,
                authorize_virtual=authorize_virtual,
            )
        return xr.open_dataset(
            repo.store.with_read_only(True),  # type: ignore[arg-type]  # zarr's engine takes Stores
            engine="zarr",
            group=group.strip("/") if group else None,
            consolidated=False,
            zarr_format=3,
            drop_variables=drop_variables,
            chunks=kwargs.pop("chunks", None),
            **kwargs,
        )

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        if not isinstance(filename_or_obj, str | os.PathLike):
            return False
        path = os.fspath(filename_or_obj)
        if "://" in path and not path.startswith("file://"):
            return False
        config = os.path.join(path.removeprefix("file://"), "config")
        try:
            with open(config, "rb") as f:
                return f.read(4) == b"ZRCH"
        except OSError:
            return False
