"""A short soak (few clients, few seconds) against `recengine serve`: no errors, no lost or doubled event."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import fresh_database
from tests.hardening.servers import ROOT, serve_process, server_env


def test_short_soak(pg_uri: str, tmp_path: Path) -> None:
    url = fresh_database(pg_uri, "recengine_soak")
    with serve_process(server_env(url, RECENGINE_AUTH="disabled"), tmp_path / "serve.log") as (base, _):
        run = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "soak.py"), "--url", base, "--clients", "4", "--duration", "4"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
    assert run.stdout.strip(), run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, result
    assert result["requests"] > 0 and result["events_acknowledged"] > 0
    assert (result["errors"], result["events_lost"], result["events_duplicated"]) == (0, 0, 0), result
    assert all("p99_ms" in op for op in result["operations"].values())
