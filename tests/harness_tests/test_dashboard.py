"""optuna-dashboard (the optional ``dashboard`` extra) opens a run's storage: its WSGI app, served on
loopback, lists the run's cells as studies (one HTTP request, no browser)."""
from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import pytest

from harness.storage import close_storage, open_storage, storage_url

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning")


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:  # no access log on stderr
        pass


def test_optuna_dashboard_lists_the_runs_cells(tmp_path: Path) -> None:
    dashboard = pytest.importorskip("optuna_dashboard", reason="install the extra: pip install -e '.[dashboard]'")
    url = storage_url(None, tmp_path)  # the default embedded journal file of a run folder
    storage = open_storage(url)
    name = "run1/digits|convfc|sampler|tpe|none|0"
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.9, params={"lr": 0.01},
                                              distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 0.3)}))
    close_storage(storage)
    journal = url.removeprefix("journal:") if url.startswith("journal:") else url
    assert Path(journal).exists()
    # the file path, as in `optuna-dashboard results/<run-id>/optuna.journal`
    server = make_server("127.0.0.1", 0, dashboard.wsgi(journal), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/api/studies", timeout=30) as response:
            body = json.loads(response.read())
    finally:
        server.shutdown()
        server.server_close()
    studies = {s["study_name"]: s for s in body["study_summaries"]}
    assert name in studies and studies[name]["directions"] == ["maximize"]
