"""How `truce up` runs several ingest processes: one port, each probed on its own."""

from __future__ import annotations

from pathlib import Path

from core.settings import PROMETHEUS_MULTIPROC_ENV, load_settings
from services.runtime.processes import ingest_specs


def test_one_ingest_process_is_probed_on_the_ingest_port(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    (spec,) = ingest_specs(settings)
    assert spec.name == "ingest"
    assert spec.endpoint == settings.ingest_url
    assert PROMETHEUS_MULTIPROC_ENV not in spec.env


def test_several_share_the_port_and_the_metrics_directory(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, ingest_workers=3, ingest_probe_port=9700)
    specs = ingest_specs(settings)
    assert [s.name for s in specs] == ["ingest", "ingest-2", "ingest-3"]
    assert [s.endpoint for s in specs] == [f"http://127.0.0.1:{9700 + n}" for n in range(3)]
    assert [s.env["TRUCE_INGEST_WORKER"] for s in specs] == ["0", "1", "2"]
    assert {s.env[PROMETHEUS_MULTIPROC_ENV] for s in specs} == {str(settings.ingest_metrics_dir)}
