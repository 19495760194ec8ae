"""The command line: check-config's error format and exit codes, version."""
import subprocess

from conftest import RELAYQ_BIN


def run(*args):
    return subprocess.run([RELAYQ_BIN, *args], capture_output=True, text=True, timeout=30)


def test_dev_config_is_valid():
    import os
    source = os.environ.get("RELAYQ_SOURCE", "../..")
    result = run("check-config", "--config", f"{source}/deploy/relayq.dev.toml")
    assert result.returncode == 0, result.stderr


def test_unknown_key_is_reported_with_file_and_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nhostname = "x.test"\n\n[queue]\npath = "q"\ncolour = "blue"\n')
    result = run("check-config", "-c", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{config}:6:"), result.stderr


def test_bad_value_is_reported_with_file_and_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[[listener]]\naddress = "127.0.0.1:2525"\nmax_message_size = "lots"\n')
    result = run("check-config", "-c", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{config}:3:"), result.stderr


def test_serve_refuses_a_bad_config(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[server\n")
    result = run("serve", "-c", str(config))
    assert result.returncode == 2
    assert f"{config}:1:" in result.stderr


def test_usage_error_exits_2():
    assert run("no-such-command").returncode == 2


def test_version_names_the_libraries():
    result = run("version")
    assert result.returncode == 0
    for name in ("relayq", "libuv", "RocksDB", "OpenSSL"):
        assert name in result.stdout
