"""Fixtures that run the real relayq binary on loopback with a config made per test."""
import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

RELAYQ_BIN = os.environ.get("RELAYQ_BIN", str(Path(__file__).resolve().parents[2] / "build" / "relayq"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=15.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"relayq exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


class Relay:
    """One relayq daemon with its own config, queue directory and log file."""

    # Unless a test is about delivery, mail stays queued: the smarthost is a closed port, so
    # each message is tried once and deferred for the default 5 minutes.
    DEFAULT_DELIVERY = 'smarthost = "127.0.0.1:9"'

    def __init__(self, workdir: Path, listener_extra="", relay_networks='["127.0.0.0/8", "::1/128"]',
                 relay_domains="[]", extra="", delivery=None):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.smtp_port = free_port()
        self.metrics_port = free_port()
        self.admin_port = free_port()
        self.queue_path = workdir / "queue"
        self.config_path = workdir / "relayq.toml"
        self.log_path = workdir / "relayq.log"
        self.config_path.write_text(f"""
[server]
hostname = "relay.test"
shutdown_timeout = "5s"

[[listener]]
address = "127.0.0.1:{self.smtp_port}"
{listener_extra}

[queue]
path = "{self.queue_path}"

[relay]
networks = {relay_networks}
domains = {relay_domains}

[metrics]
listen = "127.0.0.1:{self.metrics_port}"

[admin]
listen = "127.0.0.1:{self.admin_port}"

[delivery]
{self.DEFAULT_DELIVERY if delivery is None else delivery}
{extra}
""")
        self.process = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([RELAYQ_BIN, "serve", "--config", str(self.config_path)],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.smtp_port, process=self.process)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process is None:
            return None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        self.log.close()
        return code

    def kill(self):
        return self.stop(signal.SIGKILL)

    def inspect(self):
        """Every stored envelope, read from the queue directory while no daemon runs."""
        assert self.process is None, "inspect a stopped relay"
        out = subprocess.run([RELAYQ_BIN, "inspect-queue", "--path", str(self.queue_path)],
                             check=True, capture_output=True).stdout
        return [json.loads(line) for line in out.decode().splitlines() if line.strip()]

    def body(self, message_id):
        assert self.process is None, "inspect a stopped relay"
        return subprocess.run([RELAYQ_BIN, "inspect-queue", "--path", str(self.queue_path),
                               "--id", message_id, "--body"], check=True, capture_output=True).stdout

    def log_text(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def make_relay(tmp_path):
    relays = []

    def factory(**kwargs):
        relay = Relay(tmp_path / f"relay{len(relays)}", **kwargs)
        relays.append(relay)
        return relay.start()

    yield factory
    for relay in relays:
        if relay.process is not None:
            relay.kill()


@pytest.fixture
def relay(make_relay):
    return make_relay()


def strip_received(body: bytes) -> bytes:
    """The stored body less its first header, the Received: line we prepend (and its folds)."""
    assert body.startswith(b"Received: "), body[:80]
    end = body.index(b"\r\n")
    while body[end + 2:end + 3] in (b"\t", b" "):
        end = body.index(b"\r\n", end + 2)
    return body[end + 2:]


def wait_until(predicate, timeout=30.0, what="condition"):
    """Polls `predicate` until it holds; a bounded wait, then TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def send_message(port, rcpts, sender, body):
    """One message over smtplib; asserts every step is accepted and returns the queue id."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("client.test")
        assert smtp.mail(sender)[0] == 250
        for rcpt in rcpts:
            assert smtp.rcpt(rcpt)[0] == 250
        code, reply = smtp.data(body)
        assert code == 250, reply
        return queued_id(reply)


def queued_id(reply: bytes) -> str:
    text = reply.decode() if isinstance(reply, bytes) else reply
    assert "queued as" in text, text
    return text.rsplit(" ", 1)[1].strip()


SUPPORT = Path(__file__).resolve().parents[1] / "support"


def start_ready(command, what):
    """Starts a support server and waits for the 'ready' line it prints when listening."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    line = process.stdout.readline()
    if b"ready" not in line:
        process.kill()
        raise RuntimeError(f"{what} did not start: {line!r} {process.stdout.read()!r}")
    return process


class DnsServer:
    """tests/support/dns_server.py serving a zone on a loopback high port."""

    def __init__(self, workdir: Path, zone: str, servfail=()):
        self.port = free_port()
        zone_file = workdir / "zone.txt"
        zone_file.write_text(zone)
        command = ["/usr/bin/python3", str(SUPPORT / "dns_server.py"), "--port", str(self.port),
                   "--zone", str(zone_file)]
        for name in servfail:
            command += ["--servfail", name]
        self.process = start_ready(command, "dns server")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class Sink:
    """tests/support/smtp_sink.py on one loopback address: every accepted message as a file."""

    def __init__(self, workdir: Path, address: str, port: int, replies=None, tls=None,
                 tls_client_cert=False):
        """tls: (cert, key) PEM paths to offer STARTTLS with; tls_client_cert: demand a client
        certificate, which makes every handshake with relayq fail."""
        self.dir = workdir / f"sink-{address}-{port}"
        self.dir.mkdir(parents=True)
        command = ["/usr/bin/python3", str(SUPPORT / "smtp_sink.py"), "--listen", f"{address}:{port}",
                   "--dir", str(self.dir)]
        if tls is not None:
            command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        if tls_client_cert:
            command.append("--tls-client-cert")
        if replies is not None:
            script = self.dir.parent / f"replies-{address}-{port}.json"
            script.write_text(json.dumps(replies))
            command += ["--reply-script", str(script)]
        self.process = start_ready(command, f"sink {address}:{port}")

    def messages(self):
        """[(envelope dict, message bytes)] in arrival order."""
        out = []
        for meta in sorted(self.dir.glob("*.json"), key=lambda p: int(p.stem)):
            out.append((json.loads(meta.read_text()), meta.with_suffix(".eml").read_bytes()))
        return out

    def connections(self):
        log = self.dir / "connections.log"
        return log.read_text().splitlines() if log.exists() else []

    def wait_for(self, count, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages()
            if len(messages) >= count:
                return messages
            time.sleep(0.1)
        raise TimeoutError(f"sink {self.dir.name}: {len(self.messages())} of {count} messages")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class Dovecot:
    """A real Dovecot (IMAP, POP3, LMTP, auth) on loopback high ports, as an instance of its
    own: its config, base directory, passwd-file users and maildirs in a directory of its own;
    no system file is read. That directory is outside pytest's (which is mode 0700) and mode
    0755, so that Dovecot's users (dovecot, and `nobody` for the mail) reach it. close() stops
    Dovecot, copies its log to `workdir` and removes the directory."""

    def __init__(self, workdir: Path, users: dict, domain="local.test"):
        self.workdir = workdir
        self.dir = Path(tempfile.mkdtemp(prefix="relayq-dovecot-"))
        self.dir.chmod(0o755)
        self.imap_port, self.pop3_port = free_port(), free_port()
        self.lmtp_port, self.auth_port = free_port(), free_port()
        self.lmtp_socket = self.dir / "run" / "lmtp"
        self.log_path = self.dir / "dovecot.log"
        self.config_path = self.dir / "dovecot.conf"
        # Mail belongs to `nobody` when the tests run as root (Dovecot refuses uid 0), else to
        # the user running them.
        mail = self.dir / "mail"
        mail.mkdir()
        if os.geteuid() == 0:
            mail_user, mail_group = "nobody", "nogroup"
            shutil.chown(mail, mail_user, mail_group)
        else:
            mail_user, mail_group = str(os.geteuid()), str(os.getegid())
        (self.dir / "users").write_text("".join(
            f"{user}:{{SHA512-CRYPT}}{password_hash(password)}::::::\n"
            for user, password in users.items()))
        self.config_path.write_text(f"""
protocols = imap pop3 lmtp
instance_name = relayq-test-{self.imap_port}
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log_path}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{self.dir}/mail/%u
passdb {{
  driver = passwd-file
  args = {self.dir}/users
}}
userdb {{
  driver = passwd-file
  args = {self.dir}/users
  default_fields = uid={mail_user} gid={mail_group} home={self.dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    port = {self.lmtp_port}
  }}
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service auth {{
  inet_listener auth {{
    port = {self.auth_port}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{domain}
}}
""")
        self.process = None

    def check(self):
        """`doveconf -n -c`: the config as Dovecot reads it (raises when it is invalid)."""
        return subprocess.run(["doveconf", "-n", "-c", str(self.config_path)], check=True,
                              capture_output=True, text=True).stdout

    def start(self):
        self.check()
        self.log = open(self.dir / "dovecot.out", "ab")
        # A session of its own: Dovecot's children outlive its master by seconds, and stop()
        # ends them all through the process group.
        self.process = subprocess.Popen(["dovecot", "-F", "-c", str(self.config_path)],
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        for port in (self.imap_port, self.pop3_port, self.lmtp_port, self.auth_port):
            wait_for_port(port, process=self.process)
        return self

    def stop(self):
        """Stops the master and every child (a lingering one would keep the ports)."""
        if self.process is None:
            return
        group = self.process.pid
        self.process.terminate()
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 10
        try:
            # Bounded: zombies nobody reaps would count as alive forever.
            while time.monotonic() < deadline + 5:
                os.killpg(group, signal.SIGKILL if time.monotonic() > deadline else signal.SIGTERM)
                time.sleep(0.05)
        except ProcessLookupError:
            pass  # none left
        self.process = None
        self.log.close()

    def close(self):
        self.stop()
        if self.log_path.exists():
            shutil.copy(self.log_path, self.workdir / "dovecot.log")
        shutil.rmtree(self.dir, ignore_errors=True)


def read_reply(sock):
    """One whole SMTP reply (all its lines) from a raw socket."""
    data = b""
    while not data.endswith(b"\r\n") or data.split(b"\r\n")[-2][3:4] == b"-":
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def make_certificates(directory: Path, names=("127.0.0.1", "relay.test"), prefix=""):
    """A throwaway CA and a certificate it signs for `names` (IP addresses or DNS names), made
    with the openssl command line. Returns {"ca", "cert", "key"} paths; ECDSA P-256, for speed."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / f"{prefix}ca.pem", directory / f"{prefix}ca.key"
    cert, key = directory / f"{prefix}cert.pem", directory / f"{prefix}key.pem"
    request, extensions = directory / f"{prefix}req.csr", directory / f"{prefix}ext.cnf"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=relayq test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign")
    run("req", *ec, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={names[0]}")
    alt = ",".join(("IP:" if name[0].isdigit() or ":" in name else "DNS:") + name for name in names)
    extensions.write_text(f"subjectAltName={alt}\n")
    run("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions))
    return {"ca": ca, "cert": cert, "key": key}


def password_hash(password: str) -> str:
    """A crypt(3) SHA-512 hash, as `openssl passwd -6` makes for a users file."""
    return subprocess.run(["openssl", "passwd", "-6", "-salt", "relayqtest", password], check=True,
                          capture_output=True, text=True).stdout.strip()


def metric_value(port, name, **labels):
    """One sample of /metrics (0.0 when absent)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series == name or series == f"{name}{{{wanted}}}":
            return float(value)
    return 0.0
