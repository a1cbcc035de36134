"""The built-in plugins. Each module is an ordinary ``harness`` plugin, registered through the
``harness`` entry-point group in ``pyproject.toml`` exactly like a third-party package; this folder
is imported as ``harness_plugins``."""
