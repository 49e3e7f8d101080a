"""``kitefeed run`` runs a feed from a configuration file; the metrics endpoint serves its statistics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kitefeed.engine import Feed
from kitefeed.metrics import serve_metrics
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS


def test_run_command_streams_and_stops(sim: Simulator, tmp_path: Path) -> None:
    name = f"{os.getpid()}.run"
    config = tmp_path / "kitefeed.toml"
    config.write_text(
        f"""
[feed]
name = "{name}"
url = "{sim.url}"
ring_capacity = 4096

[[keys]]
api_key = "key_a"
access_token_env = "KITEFEED_TEST_TOKEN_A"

[[keys]]
api_key = "key_b"
access_token_file = "b.txt"

[instruments]
full = [256265, 260105]
quote = [408065, 2953217, 738561]
"""
    )
    (tmp_path / "b.txt").write_text(CREDENTIALS["key_b"])
    environment = dict(os.environ, KITEFEED_TEST_TOKEN_A=CREDENTIALS["key_a"])

    result = subprocess.run(
        [sys.executable, "-m", "kitefeed", "run", "--config", str(config), "--seconds", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )

    assert result.returncode == 0, result.stderr
    assert "subscribed 5 instruments" in result.stderr
    assert "kitefeed " + name in result.stderr  # the dashboard table
    assert CREDENTIALS["key_a"] not in result.stderr + result.stdout
    assert not [segment for segment in os.listdir("/dev/shm") if segment.startswith(f"kitefeed-{name}")]


def test_run_command_reports_config_mistake(tmp_path: Path) -> None:
    config = tmp_path / "kitefeed.toml"
    config.write_text("[[keys]]\napi_key = 'a'\naccess_token_env = 'KITEFEED_TEST_UNSET_VARIABLE'\n")
    environment = {key: value for key, value in os.environ.items() if key != "KITEFEED_TEST_UNSET_VARIABLE"}

    result = subprocess.run(
        [sys.executable, "-m", "kitefeed", "run", "--config", str(config), "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )

    assert result.returncode == 1
    assert "environment variable KITEFEED_TEST_UNSET_VARIABLE is not set" in result.stderr
    assert "at keys[0]" in result.stderr


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def test_metrics_endpoint(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024, name=f"{os.getpid()}.metrics") as feed:
        feed.subscribe([256265, 408065])
        with feed.open_reader() as reader, serve_metrics(feed) as server:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and feed.stats().ticks < 2:
                time.sleep(0.05)
            text = scrape(server.port)

    lines = text.splitlines()
    assert any(line.startswith('kitefeed_ticks_total{api_key="key_a",connection="0"}') for line in lines)
    assert 'kitefeed_key_state{api_key="key_b",state="running"} 1.0' in lines
    assert 'kitefeed_connected{api_key="key_a",connection="0"} 1.0' in lines
    assert any(line.startswith('kitefeed_reader_lag{api_key="key_a",reader="0"}') for line in lines)
    assert any(line.startswith("kitefeed_records_lost_total") for line in lines)
    assert reader.keys == ["key_a", "key_b"]


def test_tail_prints_ticks_of_running_feed(sim: Simulator) -> None:
    name = f"{os.getpid()}.tail"
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024, name=name) as feed:
        feed.subscribe([256265, 408065, 884737], "full")
        result = subprocess.run(
            [sys.executable, "-m", "kitefeed", "tail", name, "--token", "408065", "--count", "3", "--json", "--oldest"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        plain = subprocess.run(
            [sys.executable, "-m", "kitefeed", "tail", name, "--count", "2", "--oldest", "--key", "key_b"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        key_of = feed.subscriptions()

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3
    assert {record["instrument_token"] for record in records} == {408065}
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert len(lines) == 2
    assert all(" key_b/" in line for line in lines)
    assert any(api_key == "key_b" for api_key, _, _ in key_of.values())


def test_tail_of_unknown_feed_fails() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kitefeed", "tail", "no.such.feed", "--count", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no feed named 'no.such.feed' is running" in result.stderr


def test_stats_command_reads_published_statistics(sim: Simulator) -> None:
    name = f"{os.getpid()}.stats"
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024, name=name) as feed:
        feed.subscribe([256265, 408065])
        # The feed publishes once a second; poll until a record with ticks has appeared.
        deadline = time.monotonic() + 15
        published: dict = {}
        while time.monotonic() < deadline and not published.get("ticks"):
            result = subprocess.run(
                [sys.executable, "-m", "kitefeed", "stats", name, "--json"], capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, result.stderr
            if result.stdout.startswith("{"):
                published = json.loads(result.stdout)
            time.sleep(0.2)
        table = subprocess.run([sys.executable, "-m", "kitefeed", "stats", name], capture_output=True, text=True, timeout=60)

    assert published["instruments"] == 2
    assert [key["api_key"] for key in published["keys"]] == ["key_a", "key_b"]
    assert published["ticks"] > 0
    assert table.returncode == 0, table.stderr
    assert "key_a" in table.stdout
    assert not [segment for segment in os.listdir("/dev/shm") if segment.startswith(f"kitefeed-{name}")]


def test_stats_of_unknown_feed_fails() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kitefeed", "stats", "no.such.feed"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "no statistics for feed 'no.such.feed'" in result.stderr
