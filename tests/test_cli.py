"""Configuration precedence and the CLI's errors: one line, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from voicekiosk.cli import cli
from voicekiosk.errors import ConfigError
from voicekiosk.notices import startup_notes
from voicekiosk.settings import DEFAULT_DELEGATION_MODEL, Settings, load_settings, mask_secret


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env={"OPENAI_API_KEY": "", **(env or {})})


def test_precedence_is_flag_then_env_then_file_then_default(tmp_path: Path):
    config = tmp_path / "vk.toml"
    config.write_text('port = 9001\nmodel = "from-file"\nvoice = "ash"\nsdp = "browser"\n')
    env = {"VOICEKIOSK_PORT": "9002", "VOICEKIOSK_MODEL": "from-env"}
    settings = load_settings({"port": "9003"}, env=env, config_path=config)
    assert settings.port == 9003
    assert settings.model == "from-env"
    assert settings.voice == "ash"
    assert settings.sdp == "browser"
    assert settings.host == Settings().host
    assert settings.sources["port"] == "flag --port"
    assert settings.sources["model"] == "env VOICEKIOSK_MODEL"
    assert settings.sources["voice"] == f"file {config}"
    assert "host" not in settings.sources


def test_openai_base_url_env_alias_and_trailing_slash():
    settings = load_settings({}, env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1/"})
    assert settings.openai_base_url == "http://127.0.0.1:9/v1"
    assert settings.calls_url == "http://127.0.0.1:9/v1/realtime/calls"
    both = {"OPENAI_BASE_URL": "http://a.example/v1", "VOICEKIOSK_OPENAI_BASE_URL": "http://b.example/v1"}
    assert load_settings({}, env=both).openai_base_url == "http://b.example/v1"


def test_instructions_from_a_file(tmp_path: Path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You guard the museum.\n")
    assert load_settings({"instructions": f"@{prompt}"}, env={}).instructions == "You guard the museum."
    with pytest.raises(ConfigError, match="--instructions: cannot read"):
        load_settings({"instructions": f"@{tmp_path / 'missing.txt'}"}, env={})


def test_dim_after_is_minutes_fractions_allowed(tmp_path: Path):
    config = tmp_path / "vk.toml"
    config.write_text("dim_after = 2.5\n")
    assert load_settings({}, env={}, config_path=config).dim_after == 2.5
    assert load_settings({}, env={"VOICEKIOSK_DIM_AFTER": "0.05"}).dim_after == 0.05
    assert load_settings({}, env={}).dim_after == 0  # off
    with pytest.raises(ConfigError, match=r"dim_after: -1.0 is out of range .* \(from env VOICEKIOSK_DIM_AFTER\)"):
        load_settings({}, env={"VOICEKIOSK_DIM_AFTER": "-1"})


def test_api_key_only_from_env_or_key_file(tmp_path: Path):
    key_file = tmp_path / "key"
    key_file.write_text("sk-fromfile-0123456789abcdef\n")
    config = tmp_path / "vk.toml"
    config.write_text(f'api_key_file = "{key_file}"\n')
    assert load_settings({}, env={}, config_path=config).api_key == "sk-fromfile-0123456789abcdef"
    from_env = load_settings({}, env={"OPENAI_API_KEY": "sk-env-0123456789"}, config_path=config)
    assert from_env.api_key == "sk-env-0123456789"
    assert "sk-env" not in repr(from_env)
    result = invoke("serve", "--api-key", "sk-x")
    assert result.exit_code == 2  # there is no such flag: keys would end up in shell history


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "70000"], {}, "--port: 70000 is out of range"),
        (["--port", "eighty"], {}, "--port: 'eighty' is not a whole number"),
        (["--sdp", "carrier-pigeon"], {}, "--sdp: 'carrier-pigeon' is not one of: server, browser"),
        ([], {"VOICEKIOSK_SDP": "nope"}, "(from env VOICEKIOSK_SDP)"),
        (["--voice", "robot"], {}, "--voice: 'robot' is not one of"),
        (["--openai-base-url", "ftp://x"], {}, "is not an http:// or https:// URL"),
        (["--config", "/nonexistent/vk.toml"], {}, "--config: cannot read /nonexistent/vk.toml"),
        (["--cert", "/etc/hostname"], {}, "--cert and --key go together"),
        (["--engine", "live", "--model", "gpt-realtime-2.1"], {}, "--engine: live cannot run 'gpt-realtime-2.1'"),
        (["--engine", "realtime", "--model", "gpt-live-1.1"], {}, "--engine: realtime cannot run 'gpt-live-1.1'"),
        (["--model", "gpt-live-1.1", "--sdp", "browser"], {}, "--sdp browser: GPT-Live gives browsers no keys"),
        (["--sdp", "browser", "--budget-per-day", "5"], {}, "budget_per_day: --sdp browser lets each page"),
        ([], {"VOICEKIOSK_SDP": "browser", "VOICEKIOSK_BUDGET_PER_DAY": "5"}, "use --sdp server (the default) or drop"),
        (["--engine", "live", "--voice", "nova"], {}, "--voice: 'nova' is not one of"),
        (
            ["--engine", "live", "--voice", "echo"],
            {"VOICEKIOSK_LIVE_STANDBY": "30", "VOICEKIOSK_MODEL": "gpt-live-1"},
            "live_standby: gpt-live-1 has no standby",
        ),
        (["--voice", "gleam"], {}, "--voice: 'gleam' is a GPT-Live voice"),
        ([], {"VOICEKIOSK_LIVE_STANDBY": "30"}, "live_standby: only GPT-Live has it"),
        (["--engine", "live"], {"VOICEKIOSK_LIVE_DELEGATION_TOOLS": "web_search"}, "live_delegation_model: name the"),
        (["--engine", "live"], {"VOICEKIOSK_LIVE_DELEGATION_TOOLS": "shell"}, "'shell' is not one of: web_search"),
    ],
)
def test_bad_values_exit_2_with_one_line(args, env, message):
    result = invoke("config", *args, env=env)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_the_engine_follows_the_model_and_defaults_the_model():
    live = load_settings({"model": "gpt-live-1"}, env={})
    assert (live.engine, live.model, live.sources["engine"]) == ("live", "gpt-live-1", "implied by model gpt-live-1")
    assert load_settings({"engine": "live"}, env={}).model == "gpt-live-1.1"
    assert load_settings({}, env={}).model == "gpt-realtime-2.1"
    # A name neither engine claims (an Azure deployment's) is the engine's to run.
    assert load_settings({"engine": "live", "model": "my-voice-deployment"}, env={}).engine == "live"


def test_live_tables_in_the_config_file(tmp_path: Path):
    config = tmp_path / "vk.toml"
    config.write_text(
        'engine = "live"\n[live]\nstandby = 20\n[live.delegation]\nmodel = "gpt-5.6-luna"\n'
        'instructions = "Look things up."\ntools = ["web_search"]\n'
    )
    settings = load_settings({}, env={}, config_path=config)
    assert (settings.live_standby, settings.live_delegation_model) == (20, "gpt-5.6-luna")
    assert (settings.live_delegation_instructions, settings.live_delegation_tools) == (
        "Look things up.",
        ("web_search",),
    )
    config.write_text('engine = "live"\n[live.delegation]\ncolour = "blue"\n')
    with pytest.raises(ConfigError, match=r"unknown option 'live\.delegation\.colour'"):
        load_settings({}, env={}, config_path=config)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("port = ", "is not valid TOML"),
        ("colour = 'blue'", "unknown option 'colour'"),
        ("port = true", "--port"),
    ],
)
def test_bad_config_files_exit_2(tmp_path: Path, content: str, message: str):
    config = tmp_path / "vk.toml"
    config.write_text(content)
    result = invoke("serve", "--config", str(config))
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_config_command_masks_the_key_and_names_sources(tmp_path: Path):
    config = tmp_path / "vk.toml"
    config.write_text('voice = "sage"\n')
    key = "sk-proj-" + "s" * 40 + "WXYZ"
    result = invoke("config", "--config", str(config), "--port", "9999", env={"OPENAI_API_KEY": key})
    assert result.exit_code == 0
    assert key not in result.output and "s" * 20 not in result.output
    assert mask_secret(key) in result.output and mask_secret(key).endswith("WXYZ")
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "flag --port" in rows["port"]
    assert "file" in rows["voice"]
    assert "env OPENAI_API_KEY" in rows["api_key"]
    assert rows["model"].rstrip().endswith("default")


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and "voicekiosk, version" in result.output


def test_help_names_every_env_var():
    result = invoke("serve", "--help")
    assert result.exit_code == 0
    for name in ("VOICEKIOSK_PORT", "VOICEKIOSK_HOST", "VOICEKIOSK_SDP", "VOICEKIOSK_MODEL"):
        assert name in result.output


def test_cert_rotate_asks_first_and_then_makes_a_new_ca(tmp_path: Path):
    from voicekiosk.tls.store import CertStore

    runner = CliRunner()
    assert runner.invoke(cli, ["cert", "--data-dir", str(tmp_path)]).exit_code == 0
    before = CertStore(tmp_path).ca_sha256()
    refused = runner.invoke(cli, ["cert", "--data-dir", str(tmp_path), "rotate"], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert CertStore(tmp_path).ca_sha256() == before
    done = runner.invoke(cli, ["cert", "--data-dir", str(tmp_path), "rotate"], input="y\n")
    assert done.exit_code == 0 and "New CA" in done.output
    assert CertStore(tmp_path).ca_sha256() != before


def test_cert_shows_names_fingerprints_and_expiry(tmp_path: Path):
    result = CliRunner().invoke(cli, ["cert", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    for label in ("CA SHA-256", "SPKI (base64)", "names", "cert expires", "localhost", "127.0.0.1"):
        assert label in result.output
    exported = CliRunner().invoke(cli, ["cert", "--data-dir", str(tmp_path), "export", str(tmp_path / "out")])
    assert exported.exit_code == 0
    assert (tmp_path / "out" / "voicekiosk-ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_live_with_tools_delegates_to_the_default_backend_and_config_says_so(tmp_path: Path):
    """Tools run here on Live too (it is always --sdp server): their calls need a Responses backend,
    the default one unless named; the backend's own settings then need no model of their own."""
    (tmp_path / "kb").mkdir()
    config = tmp_path / "vk.toml"
    config.write_text('engine = "live"\n[knowledge]\npath = "kb"\n[live.delegation]\ninstructions = "Be brief."\n')
    settings = load_settings({}, env={}, config_path=config)
    assert settings.runs_tools and settings.delegation_model == DEFAULT_DELEGATION_MODEL
    rows = {name: value for name, value, _ in settings.describe()}
    assert rows["live_delegation_model"] == f"{DEFAULT_DELEGATION_MODEL} (the default: tools run through it)"
    assert rows["tools"] == "built-ins lookup, show, end_conversation"  # and no "(not run: ...)"
    result = invoke("config", "--config", str(config))
    assert result.exit_code == 0 and DEFAULT_DELEGATION_MODEL in result.output
    config.write_text('engine = "live"\n[knowledge]\npath = "kb"\n[live.delegation]\nmodel = "gpt-5.6-luna"\n')
    assert load_settings({}, env={}, config_path=config).delegation_model == "gpt-5.6-luna"
    notes = [note for note in startup_notes(settings, ["192.168.1.2"]) if "ool" in note or "mcp" in note]
    assert notes == []  # the banner no longer says Live leaves tools out
