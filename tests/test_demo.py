"""``kitefeed demo`` runs the whole path and ends with a consistent summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_demo_json_summary() -> None:
    before = set(os.listdir("/dev/shm"))
    result = subprocess.run(
        [sys.executable, "-m", "kitefeed", "demo", "--seconds", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])

    assert set(summary) == {"published", "read", "lost", "per_key"}
    assert len(summary["per_key"]) == 2
    for key in summary["per_key"].values():
        assert key["instruments"] == 6000
        assert key["connections"] == 2
        assert key["parse_errors"] == 0
        # Each instrument's state is sent once on subscribe, so every key publishes more.
        assert key["published"] >= 6000
        assert key["read"] + key["lost"] == key["published"]
    assert summary["published"] == summary["read"] + summary["lost"]
    assert summary["published"] == sum(key["published"] for key in summary["per_key"].values())
    assert "kitefeed demo" in result.stdout  # the per-second table
    # Demo feeds are named demo.<random>; other processes' feeds are not this test's business.
    left = {name for name in set(os.listdir("/dev/shm")) - before if name.startswith("kitefeed-demo.")}
    assert not left
