"""Settings as an operator meets them: the documented file, env overrides, clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from feedsvc.errors import ConfigError
from feedsvc.settings import declared, load_settings

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "feedsvc.toml"


def test_every_setting_is_documented_in_the_config_file_and_readme() -> None:
    text = CONFIG.read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = {}
    current = None
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line):
            current = m.group(1)
        elif m := re.fullmatch(r"(\w+) = .*", line):
            sections.setdefault(current, []).append(m.group(1))
    for setting in declared():
        assert setting.key in sections.get(setting.section, []), setting.name
        assert setting.help.split(".")[0][:40] in " ".join(text.split()), setting.name
        assert f"# env: {setting.env}" in text
    assert "FEEDSVC_<SECTION>_<KEY>" in readme


def test_the_shipped_config_file_loads_with_the_declared_defaults() -> None:
    settings = load_settings(CONFIG, environ={})
    assert settings == load_settings(ROOT / "tests" / "data" / "empty.toml", environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nport = 9000\nrefresh_token = "file"\n', encoding="utf-8")
    settings = load_settings(
        cfg, environ={"FEEDSVC_SERVER_PORT": "9100", "FEEDSVC_SERVER_REFRESH_TOKEN": "env"}
    )
    assert settings.server.port == 9100
    assert settings.server.refresh_token == "env"


@pytest.mark.parametrize(
    ("toml", "env", "named"),
    [
        ("[site]\ntitel = 'x'\n", {}, "site.titel"),
        ("[sight]\ntitle = 'x'\n", {}, "sight"),
        ("[server]\nport = 'eighty'\n", {}, "server.port"),
        ("[server]\nport = 70000\n", {}, "server.port"),
        ("[site]\nbase_url = 'example.com'\n", {}, "site.base_url"),
        ("[site]\ntimezone = 'Mars/Olympus'\n", {}, "site.timezone"),
        ("[feeds]\nmax_items = 0\n", {}, "feeds.max_items"),
        ("[store]\nurl = 'mysql://x'\n", {}, "store.url"),
        ("", {"FEEDSVC_WATCH_INTERVAL_SECONDS": "soon"}, "watch.interval_seconds"),
        ("", {"FEEDSVC_SITE_COLOUR": "red"}, "site.colour"),
        ("", {"FEEDSVC_NOPE": "1"}, "FEEDSVC_NOPE"),
        ("[site\n", {}, "c.toml"),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], named: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg, environ=env)
    assert named in str(caught.value)


def test_cli_stops_at_start_up_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[feeds]\nmax_itemz = 5\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc", "feeds", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "feeds.max_itemz" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_named_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})
