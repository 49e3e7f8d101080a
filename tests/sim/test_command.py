"""`kitefeed sim` as a real process."""

from __future__ import annotations

import subprocess
import sys

from .client import handshake_status, run

SECRET = "token-that-must-not-print"


def test_sim_command_serves_and_hides_tokens() -> None:
    command = [sys.executable, "-c", "from kitefeed.cli import main; main()", "sim", "--seconds", "3"]
    command += ["--key", f"key-a:{SECRET}", "--tick-interval", "0.05"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("url: ws://127.0.0.1:"), first
        base = first.removeprefix("url: ").strip()
        keys = process.stdout.readline()
        assert keys == "api keys: key-a\n"
        assert run(handshake_status(f"{base}/?api_key=key-a&access_token={SECRET}")) == 101
        assert run(handshake_status(f"{base}/?api_key=key-a&access_token=wrong")) == 403
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "served 1 connections" in out
    assert "403: 1" in out
    assert SECRET not in first + keys + out + err


def test_sim_command_rejects_bad_key() -> None:
    command = [sys.executable, "-c", "from kitefeed.cli import main; main()", "sim", "--key", "no-colon"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "KEY:TOKEN" in result.stderr
