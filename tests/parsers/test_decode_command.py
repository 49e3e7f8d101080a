"""`kitefeed decode` on vector files, through click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kitefeed.cli import main
from kitefeed.parsers import TICK_DTYPE

from .frames import VECTORS


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["decode", *args])
    return result.exit_code, result.stdout, result.stderr


def test_kiteconnect_format_matches_reference_json() -> None:
    code, out, err = run("--format", "kiteconnect", str(VECTORS / "full_nse.bin"))
    assert code == 0, err
    assert json.loads(out) == json.loads((VECTORS / "full_nse.json").read_text())
    assert err == ""


def test_kiteconnect_format_zero_time_null() -> None:
    code, out, _ = run("--format", "kiteconnect", str(VECTORS / "index_full_ts_zero.bin"))
    assert code == 0
    assert json.loads(out)[0]["exchange_timestamp"] is None


def test_default_format_prints_records() -> None:
    code, out, _ = run(str(VECTORS / "mixed_12_packets.bin"))
    assert code == 0
    records = json.loads(out)
    assert len(records) == 12
    assert list(records[0]) == list(TICK_DTYPE.names)
    assert records[0]["recv_time"].endswith("Z")


def test_hex_input_with_whitespace(tmp_path: Path) -> None:
    raw = (VECTORS / "ltp_nse.bin").read_bytes()
    text = " ".join(f"{byte:02x}" for byte in raw[:5]) + "\n" + raw[5:].hex().upper() + "\n"
    (tmp_path / "ltp.hex").write_text(text)
    code, out, _ = run("--hex", "--format", "kiteconnect", str(tmp_path / "ltp.hex"))
    assert code == 0
    assert json.loads(out) == json.loads((VECTORS / "ltp_nse.json").read_text())


def test_skipped_packets_reported_on_stderr() -> None:
    code, out, err = run("--format", "kiteconnect", str(VECTORS / "unknown_length_64_skipped.bin"))
    assert code == 0
    assert len(json.loads(out)) == 2
    assert "1 of unknown length" in err


def test_missing_file_is_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.bin"
    code, _, err = run(str(missing))
    assert code == 2
    assert str(missing) in err
    assert "not found" in err


def test_invalid_hex_is_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.hex"
    path.write_text("00 01 zz")
    code, _, err = run("--hex", str(path))
    assert code == 2
    assert str(path) in err
    assert "omit --hex" in err


def test_file_without_valid_message_fails() -> None:
    path = VECTORS / "full_nse.json"  # JSON text, not a binary message
    code, _, err = run(str(path))
    assert code == 1
    assert f"invalid message in {path}" in err
    assert "missing" in err


def test_heartbeat_prints_empty_list() -> None:
    code, out, err = run(str(VECTORS / "heartbeat_00.bin"))
    assert code == 0
    assert json.loads(out) == []
    assert err == ""
