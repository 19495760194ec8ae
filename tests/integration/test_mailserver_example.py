"""deploy/mailserver: the single-host mail server example (relayq + Dovecot). relayq's config
passes check-config and Dovecot's passes `doveconf -n`; the sockets relayq's config names are
the ones Dovecot's opens for it, owned by relayq's user; the ports are the ones the walk-through
tells mail programs to use; and the walk-through's commands name files that exist."""
import re
import subprocess
import tomllib
from pathlib import Path

from conftest import RELAYQ_BIN

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "mailserver"


def relayq_config():
    return tomllib.loads((EXAMPLE / "relayq.toml").read_text())


def dovecot_config():
    """`doveconf -n -c` of the example: Dovecot's own reading of it (raises if invalid)."""
    return subprocess.run(["doveconf", "-n", "-c", str(EXAMPLE / "dovecot.conf")], check=True,
                          capture_output=True, text=True).stdout


def dovecot_section(text, service, listener):
    """The body of `service SERVICE { unix_listener LISTENER { ... } }` in doveconf output."""
    service_body = re.search(r"^service " + service + r" \{\n(.*?)^\}", text, re.S | re.M)
    assert service_body, f"no service {service}"
    body = re.search(r"unix_listener " + listener + r" \{\n(.*?)\}", service_body.group(1), re.S)
    assert body, f"no unix_listener {listener} in service {service}"
    return dict(line.strip().split(" = ", 1) for line in body.group(1).strip().splitlines())


def test_relayq_config_passes_check_config(tmp_path):
    # The key and certificates it names exist only on the mail server: made here.
    text = (EXAMPLE / "relayq.toml").read_text().replace("/etc/relayq/", f"{tmp_path}/")
    (tmp_path / "tls").mkdir()
    (tmp_path / "dkim").mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=mail.example.com",
                    "-keyout", str(tmp_path / "tls" / "privkey.pem"),
                    "-out", str(tmp_path / "tls" / "fullchain.pem")], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out",
                    str(tmp_path / "dkim" / "s1.pem")], check=True, capture_output=True)
    config = tmp_path / "relayq.toml"
    config.write_text(text)
    check = subprocess.run([RELAYQ_BIN, "check-config", "--config", str(config)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    record = subprocess.run([RELAYQ_BIN, "dkim-record", "--config", str(config)],
                            capture_output=True, text=True, check=True).stdout
    assert record.startswith("s1._domainkey.example.com.")


def test_dovecot_config_passes_doveconf():
    text = dovecot_config()
    assert re.search(r"^protocols = imap pop3 lmtp$", text, re.M)
    assert re.search(r"^ssl = required$", text, re.M)
    assert "disable_plaintext_auth = no" not in text  # yes, the default: passwords only over TLS


def test_relayq_and_dovecot_name_the_same_sockets():
    relayq, dovecot = relayq_config(), dovecot_config()
    domain = relayq["relay"]["domains"][0]
    assert relayq["routes"][domain]["nexthop"] == "lmtp:unix:/run/dovecot/lmtp-relayq"
    assert relayq["routes"][domain]["verify_recipients"] is True
    assert relayq["auth"]["dovecot"] == "unix:/run/dovecot/auth-relayq"
    # Dovecot's base_dir is /run/dovecot: a unix_listener's name is its path under it.
    for service, listener in (("lmtp", "lmtp-relayq"), ("auth", "auth-relayq")):
        settings = dovecot_section(dovecot, service, listener)
        assert settings == {"mode": "0600", "user": "relayq"}, (service, settings)
    assert f"postmaster_address = postmaster@{domain}" in dovecot


def test_ports_match_the_walk_through():
    relayq = relayq_config()
    modes = {listener["address"].rsplit(":", 1)[1]: listener["mode"]
             for listener in relayq["listener"]}
    assert modes == {"25": "relay", "587": "submission", "465": "smtps"}
    dovecot = dovecot_config()
    assert re.search(r"inet_listener imaps \{\n\s+port = 993", dovecot)
    assert re.search(r"inet_listener pop3s \{\n\s+port = 995", dovecot)
    walk_through = (EXAMPLE / "README.md").read_text()
    for port in ("993", "995", "587", "465"):
        assert f"| {port} |" in walk_through
    for path in re.findall(r"deploy/[\w./-]+", walk_through):
        assert (EXAMPLE.parents[1] / path.rstrip(".")).exists(), path
