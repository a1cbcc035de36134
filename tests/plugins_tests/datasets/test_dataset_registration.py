"""The dataset plugins are found through their entry points, and registering them stays cheap."""
from __future__ import annotations

import subprocess
import sys

from harness.registry import load_registry

PLUGINS = {"cifar100": "cifar100", "imagenet16": "imagenet16-120", "tiny-imagenet": "tiny-imagenet",
           "imagefolder": "imagefolder"}


def test_installed_plugins_register_their_datasets():
    registry = load_registry(list(PLUGINS))
    assert set(registry.names("dataset")) == set(PLUGINS.values())
    for plugin, dataset in PLUGINS.items():
        assert registry.get("dataset", dataset).plugin == plugin


def test_registration_imports_no_heavy_library():
    # `harness list` loads every plugin and calls harness_datasets(): no torch, PIL or torchvision
    code = (
        "import sys\n"
        "from harness_plugins.datasets import cifar100, imagefolder, imagenet16, tiny_imagenet\n"
        "for m in (cifar100, imagefolder, imagenet16, tiny_imagenet): m.harness_datasets()\n"
        "print(sorted(n for n in ('torch', 'torchvision', 'PIL') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
