"""Make the package importable without installing it (its tests load it through the kit's
``extra_plugins``, as if installed)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
