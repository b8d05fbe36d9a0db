"""Write every sample file of ``sample_data/`` with each format's own writer.

Run ``python sample_data/make_samples.py`` to regenerate them. The files are committed, so
tests and the README's main command need no generator at run time. Each format has its own
generator module ``_make_<format>.py`` with ``make(out_dir) -> list[Path]``; see README.md
here for what every file exercises.

- ``raw_grid_f4le.bin``: 4 x 10 x 10 little-endian float32 values ``t*1000 + y*10 + x``, raw
  bytes with no header, used as a virtual source (one chunk per time step, 400 bytes each).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
FORMATS = ("netcdf3", "hdf5", "grib2", "tiff")


def raw_grid() -> np.ndarray:
    t, y, x = np.meshgrid(np.arange(4), np.arange(10), np.arange(10), indexing="ij")
    return (t * 1000 + y * 10 + x).astype("<f4")


def main() -> None:
    raw_grid().tofile(HERE / "raw_grid_f4le.bin")
    sys.path.insert(0, str(HERE))
    for fmt in FORMATS:
        module = importlib.import_module(f"_make_{fmt}")
        for path in module.make(HERE):
            print(f"wrote {path.name} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
