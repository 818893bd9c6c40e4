import os
import sys
from pathlib import Path

# Qt must not look for a display; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# keep decoded-image caches of the tests out of the user's cache folder
os.environ.setdefault("REGLAB_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "reglab"))

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
