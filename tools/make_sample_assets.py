"""Write assets/sample_shapes/<class>/*.png: a small class-folder dataset for trying RegLab.

Deterministic: 3 classes × 40 RGB PNGs of 32×32 from builtin:shapes with seed 2024, so a
re-run writes byte-identical files. Usage: python tools/make_sample_assets.py [OUT_DIR]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.images.shapes import make_shapes  # noqa: E402

PER_CLASS = 40
SEED = 2024


def write_samples(out: Path, per_class: int = PER_CLASS, seed: int = SEED) -> int:
    """Replace ``out`` with the sample folder; returns the number of images written."""
    sd = make_shapes(per_class * 3, 0.2, np.random.default_rng(seed), n_classes=3, image_size=(32, 32))
    if out.exists():
        shutil.rmtree(out)
    for k, name in enumerate(sd.classes):
        (out / name).mkdir(parents=True)
        for i, idx in enumerate(np.flatnonzero(sd.y == k)):
            Image.fromarray(sd.X[idx]).save(out / name / f"{name}_{i:03d}.png", optimize=True)
    return len(sd.y)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "assets" / "sample_shapes"
    n = write_samples(out)
    size = sum(f.stat().st_size for f in out.rglob("*.png"))
    print(f"wrote {n} images to {out} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
