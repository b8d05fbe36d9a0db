"""Write the GRIB sample files of ``sample_data/`` with ecCodes (the format's own writer).

Every message starts from one of ecCodes' built-in templates (``regular_ll_pl_grib2``,
``regular_ll_sfc_grib2``, ``regular_ll_sfc_grib1``, ``polar_stereographic_pl_grib2``,
``reduced_gg_pl_32_grib2``), gets its keys set and its values encoded by ecCodes. Grids are
small (19 x 36 at 10 degrees) so that every file stays a few tens of kilobytes.

- ``grib2_hypercube.grib2``: ``t`` on 3 isobaric levels, ``2t`` at 2 m and ``sp`` at the
  surface (with a bitmap: missing points), 2 reference times x 3 steps, simple and complex
  packing: three clean hypercubes.
- ``grib2_ensemble.grib2``: ``t`` at 850 hPa, 4 ensemble members x 2 steps (``number`` as a
  dimension), plus ``msl`` on a polar stereographic grid (y/x dims, 2-D lat/lon) and ``t`` on a
  reduced Gaussian grid (``values`` dim).
- ``grib2_edition1.grib1``: GRIB edition 1 messages: ``2t`` and ``sp`` at the surface, 3 steps.
- ``grib2_irregular.grib2``: ``t`` that does not form one hypercube: a missing
  (level, step) cell, a duplicate message, a message on another grid, and an analysis
  (``dataType=an``) among forecasts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent

NI, NJ = 36, 19  # 10-degree global grid: longitudes 0..350, latitudes 90..-90


def _ll_grid(h: int, ni: int = NI, nj: int = NJ, step: float = 10.0) -> None:
    import eccodes as ec

    ec.codes_set(h, "Ni", ni)
    ec.codes_set(h, "Nj", nj)
    ec.codes_set(h, "latitudeOfFirstGridPointInDegrees", (nj - 1) * step / 2)
    ec.codes_set(h, "latitudeOfLastGridPointInDegrees", -(nj - 1) * step / 2)
    ec.codes_set(h, "longitudeOfFirstGridPointInDegrees", 0.0)
    ec.codes_set(h, "longitudeOfLastGridPointInDegrees", (ni - 1) * step)
    ec.codes_set(h, "iDirectionIncrementInDegrees", step)
    ec.codes_set(h, "jDirectionIncrementInDegrees", step)


def _field(seed: int, n: int, base: float, spread: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return base + spread * np.sin(np.linspace(0, 6 * np.pi, n) + seed) + rng.normal(0, 1, n)


def _message(
    template: str,
    *,
    keys: dict[str, object],
    values: np.ndarray,
    grid: tuple[int, int, float] | None = (NI, NJ, 10.0),
    packing: str | None = None,
    bits: int = 16,
    missing: np.ndarray | None = None,
) -> bytes:
    import eccodes as ec

    h = ec.codes_grib_new_from_samples(template)
    try:
        if grid is not None:
            _ll_grid(h, *grid)
        for key, value in keys.items():
            ec.codes_set(h, key, value)
        if packing is not None:
            ec.codes_set(h, "packingType", packing)
        ec.codes_set(h, "bitsPerValue", bits)
        values = np.asarray(values, dtype=np.float64)
        if missing is not None:
            ec.codes_set(h, "bitmapPresent", 1)
            ec.codes_set(h, "missingValue", 9999.0)
            values = np.where(missing, 9999.0, values)
        ec.codes_set_values(h, values)
        return bytes(ec.codes_get_message(h))
    finally:
        ec.codes_release(h)


def hypercube() -> bytes:
    out = []
    n = NI * NJ
    for date, time in ((20240101, 0), (20240101, 1200)):
        for step in (0, 6, 12):
            common = {"dataDate": date, "dataTime": time, "stepUnits": 1, "endStep": step}
            for i, level in enumerate((1000, 850, 500)):
                out.append(
                    _message(
                        "regular_ll_pl_grib2",
                        keys={"shortName": "t", "level": level, **common},
                        values=_field(time + step * 7 + i, n, 280 - 20 * i, 15),
                    )
                )
            out.append(
                _message(
                    "regular_ll_sfc_grib2",
                    keys={"shortName": "2t", **common},
                    values=_field(1000 + time + step, n, 285, 20),
                    packing="grid_complex_spatial_differencing",
                    bits=12,
                )
            )
            missing = np.zeros(n, dtype=bool)
            missing[(np.arange(n) * 7 + step) % 11 == 0] = True
            out.append(
                _message(
                    "regular_ll_sfc_grib2",
                    keys={"shortName": "sp", **common},
                    values=_field(2000 + time + step, n, 100000, 3000),
                    missing=missing,
                )
            )
    return b"".join(out)


def ensemble() -> bytes:
    out = []
    n = NI * NJ
    for step in (0, 24):
        for member in range(4):
            out.append(
                _message(
                    "regular_ll_pl_grib2",
                    keys={
                        "productDefinitionTemplateNumber": 1,
                        "typeOfEnsembleForecast": 3,
                        "numberOfForecastsInEnsemble": 10,
                        "number": member,
                        "shortName": "t",
                        "level": 850,
                        "dataDate": 20240301,
                        "dataTime": 0,
                        "stepUnits": 1,
                        "endStep": step,
                    },
                    values=_field(3000 + step + member, n, 270, 10),
                )
            )
    for step in (0, 24):
        # ecCodes' polar stereographic template: 16 x 31 points, 2-D latitudes/longitudes
        out.append(
            _message(
                "polar_stereographic_pl_grib2",
                grid=None,
                keys={
                    "discipline": 0,
                    "parameterCategory": 3,
                    "parameterNumber": 0,
                    "typeOfFirstFixedSurface": 101,
                    "level": 0,
                    "dataDate": 20240301,
                    "dataTime": 0,
                    "stepUnits": 1,
                    "endStep": step,
                },
                values=_field(4000 + step, 16 * 31, 101000, 1500),
            )
        )
    # ecCodes' reduced Gaussian N32 template (6114 points): geometry on a "values" dimension
    out.append(
        _message(
            "reduced_gg_pl_32_grib2",
            grid=None,
            keys={"shortName": "t", "level": 500, "dataDate": 20240301, "dataTime": 0},
            values=_field(5000, 6114, 250, 10),
            bits=12,
        )
    )
    return b"".join(out)


def edition1() -> bytes:
    out = []
    n = NI * NJ
    for step in (0, 3, 6):
        common = {"dataDate": 20230615, "dataTime": 600, "stepUnits": 1, "endStep": step}
        out.append(
            _message(
                "regular_ll_sfc_grib1",
                keys={"shortName": "2t", "dataType": "fc", **common},
                values=_field(6000 + step, n, 290, 12),
            )
        )
        out.append(
            _message(
                "regular_ll_sfc_grib1",
                keys={"shortName": "sp", "dataType": "fc", **common},
                values=_field(7000 + step, n, 98000, 2000),
                bits=24,
            )
        )
    return b"".join(out)


def irregular() -> bytes:
    out = []
    n = NI * NJ
    common = {"shortName": "t", "dataDate": 20240501, "dataTime": 0, "stepUnits": 1}
    for step in (0, 6):
        for level in (1000, 850, 500):
            if level == 500 and step == 6:
                continue  # a missing cell: reads as NaN
            out.append(
                _message(
                    "regular_ll_pl_grib2",
                    keys={**common, "level": level, "endStep": step},
                    values=_field(8000 + step + level, n, 260, 10),
                )
            )
    # a duplicate of (850 hPa, step 6) with other values: the first one wins, this one is kept
    # in a group of its own
    out.append(
        _message(
            "regular_ll_pl_grib2",
            keys={**common, "level": 850, "endStep": 6},
            values=_field(9000, n, 300, 10),
        )
    )
    # the same variable on a coarser grid (20-degree spacing)
    out.append(
        _message(
            "regular_ll_pl_grib2",
            grid=(18, 10, 20.0),
            keys={**common, "level": 850, "endStep": 0},
            values=_field(9100, 180, 255, 10),
        )
    )
    # an analysis among forecasts: other dataType, its own group
    out.append(
        _message(
            "regular_ll_pl_grib2",
            keys={**common, "level": 850, "endStep": 0, "dataType": "an"},
            values=_field(9200, n, 265, 10),
        )
    )
    return b"".join(out)


FILES = {
    "grib2_hypercube.grib2": hypercube,
    "grib2_ensemble.grib2": ensemble,
    "grib2_edition1.grib1": edition1,
    "grib2_irregular.grib2": irregular,
}


def make(out_dir: Path) -> list[Path]:
    """Write the GRIB sample files into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in FILES.items():
        path = out_dir / name
        path.write_bytes(build())
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in make(HERE):
        print(p, p.stat().st_size)
