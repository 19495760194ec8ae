#!/usr/bin/python3
"""What the inbound checks (SPF, DKIM verification, DMARC, reverse DNS) and DKIM signing cost
relayq: its accept rate and CPU with and without them, in the same run.

Load: Postfix's smtp-source (bench/load.py installs it), 4 KiB messages of one recipient over
50 sessions that each reuse their connection, the message read from a file (-F) so that it can
carry the headers these checks need. relayq stores every message before its 250 and delivers
nothing (its smarthost is a closed port, as relayq_system.Relayq sets it by default): the rate
is messages / seconds until smtp-source has its last 250. CPU: seconds of relayq's process per
1,000 messages, and of smtp-source (the load shares the 2 cores). Each figure is the median of
--runs runs with the range in brackets; the configurations are interleaved within each run,
their order rotated from one run to the next so that neither always goes first.

policy_checks(): mail from a stranger: relayq's [relay] networks = 10.255.255.0/24, so
127.0.0.1 has no relay rights and is checked; domains = local.test takes its mail. The load
sends from 127.0.0.1 to user@local.test. A loopback authoritative DNS server (tests/support/dns_server.py, python3-dnslib; relayq's [dns] servers)
serves the zone:
  1.0.0.127.in-addr.arpa PTR mta.sender.test, whose A is 127.0.0.1  (iprev pass)
  sender.test TXT "v=spf1 include:_spf.sender.test -all", _spf.sender.test: ip4:127.0.0.1 (SPF pass)
  _dmarc.sender.test TXT "v=DMARC1; p=reject; adkim=s; aspf=s"                (DMARC pass)
  bench._domainkey.sender.test TXT, the public half of an RSA-2048 key with which python3-dkim
  signed the message once (relaxed/relaxed; From, To, Subject, Date, Message-ID)   (DKIM pass)
Every message carries that signature, From: and MAIL FROM bench@sender.test. Two relays:
"checks off" ([policy] left at its defaults, all off) and "all four tag" (spf, dkim_verify,
dmarc, rdns = "tag": one Authentication-Results header per message). The records have a TTL
of an hour and relayq's resolver caches them (shared by its loops), so after the first few
messages the checks run on cached answers, as for a relay that keeps hearing from one
domain; the DNS queries that reached the server are counted per run. Each run must show it
measured what it claims, or it fails: relayq_policy_results_total (metrics port) counts
spf, dkim and dmarc pass once per message and rdns pass once per connection, nothing else;
nothing with the checks off; relayq_messages_received_total and the stored queue hold every
message; a stored message carries our Authentication-Results with spf, dkim, dmarc and
iprev all pass (or none with the checks off).

dkim_sign(): mail from a trusted client (127.0.0.1 in relay.networks, Relayq's default) whose
From: is alice@sign.test, three relays: unsigned (no [[dkim.sign]]), an RSA-2048 key, an
Ed25519 key (both made by `openssl genpkey`). Each run checks relayq logged no
dkim_sign_failed, stored every message, and that the first and last stored messages carry
exactly one DKIM-Signature of the expected algorithm that python3-dkim verifies against the
record `relayq dkim-record` prints (none when unsigned). Within each run also
`openssl speed -mr -multi NPROC -seconds S rsa2048 ed25519`: signatures per second of NPROC
processes together, wall clock, on the same cores under the same sharing as relayq's runs
(the machine may be busy with other work); the table divides relayq's signed msg/s by it.
Once per scenario `openssl speed` of one process without -multi, which divides by the CPU
time it got: the CPU one signature costs, set next to the CPU relayq adds per signed message
(signed minus unsigned), whatever else the machine was doing.

Run directly for a quick look (bench/run --scenarios policy_checks,dkim_sign runs both):
    bench/policy_scenario.py build/relayq --runs 3 --messages 10000"""
import argparse
import base64
import json
import os
import re
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dkim  # Debian's python3-dkim: signs the policy run's message, verifies relayq's signatures

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, cell, median, free_port  # noqa: E402
from load import ensure_postfix  # noqa: E402
from relayq_system import Relayq  # noqa: E402

SIZE = 4096
SESSIONS = 50
# Debian's python3-dkim and python3-dnslib live under the system interpreter.
SYSTEM_PYTHON = "/usr/bin/python3"
DNS_SERVER = ROOT / "tests" / "support" / "dns_server.py"

SENDER_DOMAIN = "sender.test"
SENDER = f"bench@{SENDER_DOMAIN}"
STRANGER_RECIPIENT = "user@local.test"
STRANGER_NETWORKS = '["10.255.255.0/24"]'
DKIM_SELECTOR = "bench"
SIGN_DOMAIN = "sign.test"
SIGN_SENDER = f"alice@{SIGN_DOMAIN}"
SIGN_RECIPIENT = "bob@far.example"


def load_average():
    return [round(value, 2) for value in os.getloadavg()]


# ---------------------------------------------------------------------------------------------
# Messages, keys, DNS


def generate_key(path, algorithm):
    """An RSA-2048 ("RSA") or Ed25519 ("ED25519") private key in PEM, made by openssl."""
    options = ["-pkeyopt", "rsa_keygen_bits:2048"] if algorithm == "RSA" else []
    subprocess.run(["openssl", "genpkey", "-algorithm", algorithm, *options, "-out", str(path)],
                   check=True, capture_output=True)
    return Path(path)


def rsa_public_base64(private_pem):
    """The base64 SubjectPublicKeyInfo of an RSA key: the p= of its DKIM record."""
    der = subprocess.run(["openssl", "pkey", "-in", str(private_pem), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return base64.b64encode(der).decode()


def body_of(length):
    """`length` bytes of body: CRLF lines of 74 letters, the last one shorter (or longer)."""
    lines, rest = divmod(length, 76)
    if rest == 1:  # a lone byte cannot end a line: one line of 75 letters instead
        lines, rest = lines - 1, rest + 76
    return (b"z" * 74 + b"\r\n") * lines + (b"w" * (rest - 2) + b"\r\n" if rest else b"")


def message_bytes(sender, recipient, subject, size, sign=None):
    """A message of exactly `size` bytes on the wire (CRLF lines, before the final dot).

    sign(message) -> DKIM-Signature header bytes, prepended; its length does not depend on the
    body (bh= and b= have fixed lengths for a key), so one trial signature sizes the padding."""
    head = (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: {subject}\r\n"
            "Date: Sun, 06 Dec 2026 12:00:00 +0000\r\n"
            f"Message-ID: <policy-bench@{sender.split('@')[1]}>\r\n\r\n").encode()
    overhead = len(sign(head + b"x\r\n")) if sign else 0
    body = body_of(size - len(head) - overhead)
    message = head + body
    signature = sign(message) if sign else b""
    full = signature + message
    if len(full) != size or not full.endswith(b"\r\n"):
        raise RuntimeError(f"the message came out {len(full)} bytes, not {size}")
    return full


def write_for_smtp_source(path, message):
    """smtp-source -F reads lines and sends each with CRLF: the file holds LF lines."""
    if any(line.startswith(b".") for line in message.split(b"\r\n")):
        raise ValueError("smtp-source would dot-stuff a line")
    Path(path).write_bytes(message.replace(b"\r\n", b"\n"))
    return Path(path)


def dkim_signer(private_pem, selector, domain):
    key = Path(private_pem).read_bytes()

    def sign(message):
        return dkim.sign(message, selector.encode(), domain.encode(), key,
                         canonicalize=(b"relaxed", b"relaxed"),
                         include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
                         linesep=b"\r\n")
    return sign


def txt_strings(text):
    """A TXT record's text as quoted strings of at most 255 characters (zone file syntax)."""
    return " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))


def policy_zone(dkim_public):
    return f"""$TTL 3600
1.0.0.127.in-addr.arpa. PTR mta.{SENDER_DOMAIN}.
mta.{SENDER_DOMAIN}. A 127.0.0.1
{SENDER_DOMAIN}. MX 10 mta.{SENDER_DOMAIN}.
{SENDER_DOMAIN}. TXT "v=spf1 include:_spf.{SENDER_DOMAIN} -all"
_spf.{SENDER_DOMAIN}. TXT "v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.1 -all"
_dmarc.{SENDER_DOMAIN}. TXT "v=DMARC1; p=reject; adkim=s; aspf=s"
{DKIM_SELECTOR}._domainkey.{SENDER_DOMAIN}. TXT {txt_strings(f"v=DKIM1; k=rsa; p={dkim_public}")}
"""


class DnsServer:
    """tests/support/dns_server.py on a loopback port, logging every query it answers."""

    def __init__(self, folder, zone):
        self.folder = Path(folder)
        self.zone = zone

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        zone_file = self.folder / "zone.txt"
        zone_file.write_text(self.zone)
        self.query_log = self.folder / "queries.log"
        self.query_log.write_text("")
        self.port = free_port()
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(DNS_SERVER), "--port", str(self.port), "--zone", str(zone_file),
             "--query-log", str(self.query_log)], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        if line != "ready":
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"dns_server.py did not start: {line!r}")
        return self

    def queries(self):
        return len(self.query_log.read_text().splitlines())

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# relayq, the load, what a run left behind


def smtp_load(port, sessions, messages, message_file, sender, recipient, helo):
    """smtp-source: `messages` copies of the file over `sessions` sessions that each reuse their
    connection. Returns (seconds until the last 250, CPU seconds smtp-source used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(["smtp-source", "-d", "-s", str(sessions), "-m", str(messages), "-F", str(message_file),
                    "-M", helo, "-f", sender, "-t", recipient, f"127.0.0.1:{port}"],
                   check=True, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


LABEL = re.compile(r'(\w+)="([^"]*)"')


def metric_samples(port, name):
    """{frozenset of (label, value): sample} of one metric family on relayq's metrics port."""
    samples = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                labels = frozenset(LABEL.findall(line.split("}")[0])) if "{" in line else frozenset()
                samples[labels] = samples.get(labels, 0.0) + float(line.split()[-1])
    return samples


def policy_counts(port):
    """{(check, result): count} from relayq_policy_results_total, zeros left out."""
    counts = {}
    for labels, value in metric_samples(port, "relayq_policy_results_total").items():
        named = dict(labels)
        if value:
            counts[(named.get("check"), named.get("result"))] = value
    return counts


def received(port):
    return sum(metric_samples(port, "relayq_messages_received_total").values())


def stored_ids(binary, queue):
    out = subprocess.run([binary, "inspect-queue", "--path", str(queue)], check=True,
                         capture_output=True, text=True).stdout
    return [json.loads(line)["id"] for line in out.splitlines() if line.strip()]


def stored_body(binary, queue, message_id):
    return subprocess.run([binary, "inspect-queue", "--path", str(queue), "--id", message_id, "--body"],
                          check=True, capture_output=True).stdout


def header_values(message, name):
    """Every value of one header field, unfolded."""
    head = message.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    head = re.sub(r"\r\n[ \t]+", " ", head)
    prefix = name.lower() + ":"
    return [line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith(prefix)]


def log_since(path, offset):
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read().decode(errors="replace")


def one_run(system, messages, sessions, message_file, sender, recipient, helo, dns=None):
    """The load through one relay. Returns its figures; the relay is stopped afterwards."""
    queries = dns.queries() if dns else 0
    load_before = load_average()
    with system as relay:
        counts_before = policy_counts(relay.metrics_port)
        received_before = received(relay.metrics_port)
        seconds, load_cpu = smtp_load(relay.port, sessions, messages, message_file, sender, recipient, helo)
        counts = policy_counts(relay.metrics_port)
        got = received(relay.metrics_port) - received_before
    for key, value in counts_before.items():
        counts[key] = counts.get(key, 0) - value
    figures = {"rate": messages / seconds, "seconds": seconds, "cpu": relay.cpu_used * 1000 / messages,
               "cpu_seconds": relay.cpu_used, "load_cpu": load_cpu * 1000 / messages, "received": got,
               "policy_results": {f"{check}/{result}": value for (check, result), value in counts.items() if value},
               "load_average_before": load_before, "load_average_after": load_average()}
    if dns:
        figures["dns_queries"] = dns.queries() - queries
    if got != messages:
        raise RuntimeError(f"relayq received {got:.0f} messages, not {messages}")
    return figures


# ---------------------------------------------------------------------------------------------
# policy_checks


POLICY_CONFIGS = (("checks off", ""),
                  ("all four tag", 'spf = "tag"\ndkim_verify = "tag"\ndmarc = "tag"\nrdns = "tag"\n'))


def check_policy_run(name, figures, body, messages):
    """Fails loudly unless the run measured what it claims (module docstring)."""
    results = figures["policy_results"]
    ours = [value for value in header_values(body, "Authentication-Results") if value.startswith("bench.test")]
    if name == "checks off":
        if results or ours:
            raise RuntimeError(f"checks off, yet results counted {results} or written {ours}")
        return
    problems = []
    for check in ("spf", "dkim", "dmarc"):
        if results.get(f"{check}/pass", 0) != messages:
            problems.append(f"{check} pass {results.get(f'{check}/pass', 0):.0f} of {messages}")
    if results.get("rdns/pass", 0) < 1:
        problems.append("no rdns pass")
    others = {key: value for key, value in results.items() if not key.endswith("/pass")}
    if others:
        problems.append(f"other results {others}")
    if len(ours) != 1:
        problems.append(f"{len(ours)} Authentication-Results headers of ours in a stored message")
    else:
        for method in ("spf", "dkim", "dmarc", "iprev"):
            if not re.search(rf"\b{method}=pass\b", ours[0]):
                problems.append(f"no {method}=pass in {ours[0]!r}")
    if problems:
        raise RuntimeError(f"{name}: the checks did not all pass: " + "; ".join(problems))


def policy_checks(binary, workdir, runs, messages, sessions=SESSIONS, out=print):
    """The policy table of the module docstring; returns its figures."""
    folder = Path(workdir) / "policy"
    folder.mkdir(parents=True, exist_ok=True)
    key = generate_key(folder / "sender-rsa2048.pem", "RSA")
    message = message_bytes(SENDER, STRANGER_RECIPIENT, "policy bench", SIZE,
                            sign=dkim_signer(key, DKIM_SELECTOR, SENDER_DOMAIN))
    message_file = write_for_smtp_source(folder / "message.txt", message)
    rows = {name: [] for name, _ in POLICY_CONFIGS}
    with DnsServer(folder / "dns", policy_zone(rsa_public_base64(key))) as dns:
        for run in range(runs):
            order = POLICY_CONFIGS[run % 2:] + POLICY_CONFIGS[:run % 2]
            for name, policy in order:
                relay_dir = folder / name.replace(" ", "-")
                relay_dir.mkdir(exist_ok=True)
                extra = f'[dns]\nservers = ["127.0.0.1:{dns.port}"]\n\n[policy]\n{policy}'
                system = Relayq(binary, relay_dir, extra=extra, relay_networks=STRANGER_NETWORKS,
                                relay_domains=f'["{STRANGER_RECIPIENT.split("@")[1]}"]')
                figures = one_run(system, messages, sessions, message_file, SENDER, STRANGER_RECIPIENT,
                                  f"mta.{SENDER_DOMAIN}", dns)
                ids = stored_ids(binary, system.queue)
                if len(ids) != messages:
                    raise RuntimeError(f"{name}: {len(ids)} messages stored, not {messages}")
                check_policy_run(name, figures, stored_body(binary, system.queue, ids[-1]), messages)
                rows[name].append(figures)
            out(f"policy checks: run {run + 1} of {runs} done (load average {load_average()})",
                file=sys.stderr, flush=True)

    def figure(name, key):
        return [run[key] for run in rows[name]]

    out(f"\n### Inbound checks on a stranger's mail: {SIZE // 1024} KiB, {sessions} sessions, {messages:,} "
        f"messages a run, accepted (stored, 250); median [range] of {runs} runs\n")
    header = ["relayq", "msg/s accepted", "/ checks off", "CPU s/1k relayq", "CPU s/1k load",
              "spf / dkim / dmarc pass per run", "rdns pass (connections)", "DNS queries to the server",
              "load average (1 min)"]
    out("| " + " | ".join(header) + " |")
    out("|---|" + "---:|" * (len(header) - 1))
    base_rate = median(figure("checks off", "rate"))
    for name, _ in POLICY_CONFIGS:
        results = figure(name, "policy_results")
        passes = " / ".join(f"{median([r.get(f'{check}/pass', 0) for r in results]):,.0f}"
                            for check in ("spf", "dkim", "dmarc"))
        rdns = f"{median([r.get('rdns/pass', 0) for r in results]):,.0f}"
        loads = [run["load_average_before"][0] for run in rows[name]]
        out(f"| {name} | {cell(figure(name, 'rate'))} | {median(figure(name, 'rate')) / base_rate:.2f} | "
            f"{cell(figure(name, 'cpu'), 3)} | {median(figure(name, 'load_cpu')):.3f} | {passes} | {rdns} | "
            f"{median(figure(name, 'dns_queries')):.0f} | {cell(loads, 1)} |")
    cost_us = (median(figure("all four tag", "cpu")) - median(figure("checks off", "cpu"))) * 1000
    share = 1 - median(figure("all four tag", "rate")) / base_rate
    out(f"\nThe four checks in tag mode cost relayq {cost_us:.0f} us of CPU per message "
        f"({median(figure('checks off', 'cpu')):.3f} -> {median(figure('all four tag', 'cpu')):.3f} s/1k) "
        f"and {share:.0%} of its accept rate; DNS answers came from relayq's cache after the first queries.")
    return {"messages": messages, "sessions": sessions, "runs": runs, "size": SIZE, "rows": rows,
            "cpu_us_per_message": cost_us, "rate_ratio": median(figure("all four tag", "rate")) / base_rate}


# ---------------------------------------------------------------------------------------------
# dkim_sign


def openssl_sign_speed(seconds, processes=None):
    """{"rsa2048": sign/s, "ed25519": sign/s} from `openssl speed -mr`. With `processes`, that
    many at once (-multi), wall clock, summed; without, one process, per CPU second it got."""
    command = ["openssl", "speed", "-mr", "-seconds", str(seconds)]
    if processes:
        command += ["-multi", str(processes)]
    text = subprocess.run(command + ["rsa2048", "ed25519"], capture_output=True, text=True,
                          timeout=60 * seconds, check=True).stdout
    speed = {}
    for line in text.splitlines():
        fields = line.split(":")
        if line.startswith("+F2:") and fields[2] == "2048":
            speed["rsa2048"] = float(fields[3])
        elif line.startswith("+F6:") and fields[3] == "Ed25519":
            speed["ed25519"] = float(fields[4])
    if set(speed) != {"rsa2048", "ed25519"}:
        raise RuntimeError(f"openssl speed printed no figures I know: {text[-300:]!r}")
    return speed


SIGN_CONFIGS = (("unsigned", None, None), ("RSA-2048", "RSA", "rsa2048"), ("Ed25519", "ED25519", "ed25519"))
SIGN_ALGORITHMS = {"RSA": "rsa-sha256", "ED25519": "ed25519-sha256"}


def dkim_records(binary, config):
    """{name: record} from `relayq dkim-record --config`, each record's strings joined."""
    out = subprocess.run([binary, "dkim-record", "--config", str(config)], check=True,
                         capture_output=True, text=True).stdout
    return {line.split()[0].rstrip(".").lower(): "".join(re.findall(r'"([^"]*)"', line))
            for line in out.splitlines() if line.strip()}


def check_signed(binary, name, algorithm, system, log_offset, messages):
    """Fails loudly unless every message was stored, none failed to sign, and the first and last
    stored messages carry one valid signature of the algorithm (none when unsigned)."""
    failures = log_since(system.workdir / "relayq.log", log_offset).count("event=dkim_sign_failed")
    if failures:
        raise RuntimeError(f"{name}: relayq logged {failures} dkim_sign_failed")
    ids = stored_ids(binary, system.queue)
    if len(ids) != messages:
        raise RuntimeError(f"{name}: {len(ids)} messages stored, not {messages}")
    records = dkim_records(binary, system.workdir / "relayq.toml") if algorithm else {}
    for message_id in (ids[0], ids[-1]):
        body = stored_body(binary, system.queue, message_id)
        signatures = header_values(body, "DKIM-Signature")
        if not algorithm:
            if signatures:
                raise RuntimeError(f"{name}: a stored message is signed: {signatures}")
            continue
        if len(signatures) != 1 or f"a={SIGN_ALGORITHMS[algorithm]}" not in signatures[0].replace(" ", ""):
            raise RuntimeError(f"{name}: stored message {message_id} has signatures {signatures}")

        def txt(query, timeout=5):
            return records.get(query.decode().rstrip(".").lower(), "").encode() or None

        if not dkim.verify(body, dnsfunc=txt):
            raise RuntimeError(f"{name}: python3-dkim does not verify stored message {message_id}")


def dkim_sign(binary, workdir, runs, messages, sessions=SESSIONS, speed_seconds=3, out=print):
    """The signing table of the module docstring; returns its figures."""
    folder = Path(workdir) / "dkim-sign"
    folder.mkdir(parents=True, exist_ok=True)
    keys = {algorithm: generate_key(folder / f"{selector}.pem", algorithm)
            for _, algorithm, selector in SIGN_CONFIGS if algorithm}
    message_file = write_for_smtp_source(folder / "message.txt",
                                         message_bytes(SIGN_SENDER, SIGN_RECIPIENT, "signing bench", SIZE))
    processes = os.cpu_count()
    rows = {name: [] for name, _, _ in SIGN_CONFIGS}
    speeds = []
    for run in range(runs):
        order = SIGN_CONFIGS[run % 3:] + SIGN_CONFIGS[:run % 3]
        for name, algorithm, selector in order:
            relay_dir = folder / name
            relay_dir.mkdir(exist_ok=True)
            extra = (f'[[dkim.sign]]\ndomain = "{SIGN_DOMAIN}"\nselector = "{selector}"\nkey = "{keys[algorithm]}"\n'
                     if algorithm else "")
            system = Relayq(binary, relay_dir, extra=extra)
            log = relay_dir / "relayq.log"
            offset = log.stat().st_size if log.exists() else 0
            figures = one_run(system, messages, sessions, message_file, SIGN_SENDER, SIGN_RECIPIENT, "bench.test")
            check_signed(binary, name, algorithm, system, offset, messages)
            rows[name].append(figures)
        speeds.append(dict(openssl_sign_speed(speed_seconds, processes), load_average=load_average()))
        out(f"dkim sign: run {run + 1} of {runs} done (load average {load_average()})", file=sys.stderr, flush=True)
    per_cpu = openssl_sign_speed(speed_seconds)

    def figure(name, key):
        return [run[key] for run in rows[name]]

    out(f"\n### DKIM signing of a trusted client's mail: {SIZE // 1024} KiB, {sessions} sessions, {messages:,} "
        f"messages a run, accepted (stored, 250); median [range] of {runs} runs; OpenSSL on {processes} "
        "processes (-multi) in the same runs\n")
    header = ["relayq", "msg/s accepted", "/ unsigned", "CPU s/1k relayq", "signing: relayq CPU us/msg",
              "OpenSSL sign/s (-multi, wall)", "relayq / OpenSSL", "OpenSSL CPU us/sign (1 process)",
              "load average (1 min)"]
    out("| " + " | ".join(header) + " |")
    out("|---|" + "---:|" * (len(header) - 1))
    base_rate, base_cpu = median(figure("unsigned", "rate")), median(figure("unsigned", "cpu"))
    summary = {"messages": messages, "sessions": sessions, "runs": runs, "size": SIZE, "rows": rows,
               "openssl_multi": speeds, "openssl_processes": processes, "openssl_one_process_per_cpu_second": per_cpu}
    for name, algorithm, selector in SIGN_CONFIGS:
        loads = [run["load_average_before"][0] for run in rows[name]]
        cells = [name, cell(figure(name, "rate")), f"{median(figure(name, 'rate')) / base_rate:.2f}",
                 cell(figure(name, "cpu"), 3)]
        if algorithm:
            added_us = (median(figure(name, "cpu")) - base_cpu) * 1000
            openssl = [speed[selector] for speed in speeds]
            ratios = [run["rate"] / speed[selector] for run, speed in zip(rows[name], speeds)]
            cells += [f"{added_us:.0f}", cell(openssl), cell(ratios, 2), f"{1e6 / per_cpu[selector]:.0f}"]
            summary[name] = {"added_cpu_us_per_message": added_us, "openssl_multi_sign_per_s": median(openssl),
                             "relayq_over_openssl": median(ratios),
                             "openssl_cpu_us_per_sign": 1e6 / per_cpu[selector]}
        else:
            cells += ["-", "-", "-", "-"]
        out("| " + " | ".join(cells + [cell(loads, 1)]) + " |")
    out(f"\nOpenSSL, one process, per CPU second: RSA-2048 {per_cpu['rsa2048']:,.0f} sign/s, Ed25519 "
        f"{per_cpu['ed25519']:,.0f} sign/s ({processes} cores: {processes * per_cpu['rsa2048']:,.0f} and "
        f"{processes * per_cpu['ed25519']:,.0f} if nothing else ran). relayq / OpenSSL divides relayq's signed "
        "msg/s by what OpenSSL's processes signed in the same run on the same cores, with nothing else to do "
        "(no SMTP, no queue, no load generator).")
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", nargs="?", default=str(ROOT / "build" / "relayq"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--speed-seconds", type=int, default=3, help="openssl speed -seconds")
    parser.add_argument("--scenarios", default="policy_checks,dkim_sign")
    parser.add_argument("--workdir", default=os.environ.get("RELAYQ_BENCH_DIR", str(ROOT / "var" / "bench")))
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_postfix()
    binary = os.path.abspath(args.binary)
    chosen = args.scenarios.split(",")
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average_start": load_average()}
    if "policy_checks" in chosen:
        results["policy_checks"] = policy_checks(binary, workdir, args.runs, args.messages, args.sessions)
    if "dkim_sign" in chosen:
        results["dkim_sign"] = dkim_sign(binary, workdir, args.runs, args.messages, args.sessions,
                                         args.speed_seconds)
    results["load_average_end"] = load_average()
    (workdir / "policy-results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nevery figure: {workdir / 'policy-results.json'}")


if __name__ == "__main__":
    sys.exit(main())
