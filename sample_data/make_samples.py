"""Write the sample files of ``sample_data/`` with each format's own writer.

Run ``python sample_data/make_samples.py`` to regenerate them; the files are committed so that
tests and the README's main command need no generator at run time.

- ``raw_grid_f4le.bin``: 4 x 10 x 10 little-endian float32 values ``t*1000 + y*10 + x``, raw
  bytes with no header, used as a virtual source (one chunk per time step, 400 bytes each).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def raw_grid() -> np.ndarray:
    t, y, x = np.meshgrid(np.arange(4), np.arange(10), np.arange(10), indexing="ij")
    return (t * 1000 + y * 10 + x).astype("<f4")


def main() -> None:
    raw_grid().tofile(HERE / "raw_grid_f4le.bin")


if __name__ == "__main__":
    main()
