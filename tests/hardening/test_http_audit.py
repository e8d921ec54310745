"""The graphql-http audit suite (npm `graphql-http`) against a live server: every MUST passes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"


def ensure_node_modules() -> None:
    """Install the pinned audit package (package-lock.json) when `make install` has not yet."""
    if not (NODE_DIR / "node_modules" / "graphql-http").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_graphql_http_audit(live_url: str) -> None:
    ensure_node_modules()
    run = subprocess.run(
        ["node", "audit.mjs", f"{live_url}/graphql"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results = json.loads(run.stdout)
    counts = Counter((r["name"].split()[0], r["status"]) for r in results)
    musts = [r for r in results if r["name"].startswith("MUST")]
    failed_musts = [f"{r['name']}: {r['reason']}" for r in musts if r["status"] != "ok"]
    assert counts[("MUST", "ok")] >= 13, counts
    assert failed_musts == []
    not_ok_shoulds = sorted(r["name"] for r in results if r["name"].startswith("SHOULD") and r["status"] != "ok")
    assert not_ok_shoulds == [], (
        f"a SHOULD regressed: {[r for r in results if r['name'] in not_ok_shoulds]}; ; fix it or list it in docs/HARDENING.md and here"
    )
