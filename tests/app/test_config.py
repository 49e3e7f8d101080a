"""Configuration files are validated at load, and each mistake names its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitefeed import Mode
from kitefeed.config import ConfigError, load_config

VALID = """
[feed]
name = "cfg"
allocation = "least_loaded"

[[keys]]
api_key = "key_a"
access_token_env = "KITEFEED_TEST_TOKEN_A"

[[keys]]
api_key = "key_b"
access_token_file = "token_b.txt"

[instruments]
full = [256265]
ltp = [408065, 884737]

[[instruments.csv]]
path = "master.csv"
mode = "quote"
exchange = ["NSE"]
limit = 2
"""

MASTER = """instrument_token,exchange_token,tradingsymbol,exchange,segment
738561,2885,RELIANCE,NSE,NSE
5633,22,ACC,NSE,NSE
12345678,48225,SENSEX24DECFUT,BFO,BFO-FUT
341249,1333,HDFCBANK,NSE,NSE
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kitefeed.toml"
    path.write_text(text)
    (tmp_path / "token_b.txt").write_text("token-b\n")
    (tmp_path / "master.csv").write_text(MASTER)
    return path


def test_valid_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITEFEED_TEST_TOKEN_A", "token-a")
    config = load_config(write(tmp_path, VALID))
    keys = config.api_keys(tmp_path)
    tokens = config.tokens_by_mode(tmp_path)

    assert config.feed.name == "cfg"
    assert config.feed.allocation == "least_loaded"
    assert config.feed.ring_capacity == 1 << 18
    assert [key.api_key for key in keys] == ["key_a", "key_b"]
    assert [key.access_token for key in keys] == ["token-a", "token-b"]
    assert tokens == {Mode.LTP: [408065, 884737], Mode.QUOTE: [738561, 5633], Mode.FULL: [256265]}
    assert config.metrics.port is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[keys]]\napi_key = 1\naccess_token_env = 'X'\n", "at keys[0].api_key: Expected `str`, got `int`"),
        ("[[keys]]\napi_key = 'a'\naccess_token = 'secret'\n", "unknown field `access_token`"),
        ("[feed]\nname = 'x'\n", "Object missing required field `keys`"),
        ("[[keys]]\napi_key = 'a'\naccess_token_env = 'X'\n[feed]\nallocation = 'random'\n", "at feed.allocation"),
        ("[[keys]]\napi_key = 'a'\naccess_token_env = 'X'\n[metrics]\nhost = '0.0.0.0'\n", "at metrics.host"),
        ("[[keys]\napi_key = 'a'\n", "invalid TOML in"),
    ],
)
def test_invalid_config_names_place(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text))
    assert message in str(raised.value)
    assert str(tmp_path / "kitefeed.toml") in str(raised.value)


def test_token_must_come_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KITEFEED_TEST_TOKEN_MISSING", raising=False)
    both = "[[keys]]\napi_key = 'a'\naccess_token_env = 'X'\naccess_token_file = 'y'\n"
    with pytest.raises(ConfigError, match="set exactly one of access_token_env or access_token_file"):
        load_config(write(tmp_path, both)).api_keys(tmp_path)
    unset = "[[keys]]\napi_key = 'a'\naccess_token_env = 'KITEFEED_TEST_TOKEN_MISSING'\n"
    with pytest.raises(ConfigError, match="environment variable KITEFEED_TEST_TOKEN_MISSING is not set"):
        load_config(write(tmp_path, unset)).api_keys(tmp_path)


def test_duplicate_instrument_names_both_places(tmp_path: Path) -> None:
    text = (
        "[[keys]]\napi_key = 'a'\naccess_token_env = 'X'\n"
        "[instruments]\nfull = [5633]\n"
        "[[instruments.csv]]\npath = 'master.csv'\n"
    )
    with pytest.raises(ConfigError, match="5633 appears twice .* at instruments.full\\[0\\] and master.csv line 3"):
        load_config(write(tmp_path, text)).tokens_by_mode(tmp_path)


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "kitefeed.example.toml"
    config = load_config(example)
    assert len(config.keys) == 2
    assert config.metrics.port == 9108
