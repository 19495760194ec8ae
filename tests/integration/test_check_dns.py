"""`relayq check-dns` against the loopback DNS server: a zone where every check passes; zones
broken one way or another, each failing line with the record it says to publish; those records
served, after which every check passes; the checks skipped without --ip; lookups that fail;
usage and config errors. Addresses of 203.0.113.0/24 and 198.51.100.0/24 (documentation) are
only data in the zones: the one server ever asked is the DNS server on 127.0.0.1."""
import re
import subprocess
from collections import namedtuple

import pytest

from conftest import RELAYQ_BIN, DnsServer
from test_dkim_signing import make_key

IP = "203.0.113.5"
HOST = "mail.example.test"
PTR = "5.113.0.203.in-addr.arpa."

# Every check of GOOD, in the order check-dns prints them: the host, then MX, SPF, DKIM and
# DMARC of the local domains (relay.domains and the [routes] keys), DMARC of the signing domains.
SUBJECTS = ["hostname", f"address {HOST}", f"ptr {IP}", "mx example.test", "mx routed.test",
            "spf example.test", "spf routed.test", "dkim s1._domainkey.example.test",
            "dkim ed._domainkey.sign.test", "dmarc example.test", "dmarc routed.test",
            "dmarc sign.test"]

GOOD = f"""$TTL 60
{HOST}. A {IP}
{PTR} PTR {HOST}.
example.test. MX 10 {HOST}.
example.test. TXT "v=spf1 mx -all"
routed.test. MX 10 {HOST.upper()}.
routed.test. MX 20 backup.example.net.
routed.test. TXT "v=spf1 ip4:203.0.113.0/24 -all"
_dmarc.example.test. TXT "v=DMARC1; p=reject"
_dmarc.routed.test. TXT "v=DMARC1; p=none"
_dmarc.sign.test. TXT "v=DMARC1; p=quarantine"
"""

# The records of the host, the PTR and the local domains broken in every way one can be.
BROKEN = f"""$TTL 60
{HOST}. A {IP}
example.test. TXT "v=spf1 ip4:198.51.100.7 -all"
routed.test. MX 10 mx.elsewhere.test.
_dmarc.routed.test. TXT "v=DMARC1; p=none"
_dmarc.sign.test. TXT "google-site-verification=abc"
"""

Line = namedtuple("Line", "word text publish")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """(domain, selector, key file) of each signer, and another key for s1 that is not its."""
    folder = tmp_path_factory.mktemp("keys")
    return {"signers": [("example.test", "s1", make_key(folder / "s1.pem", "RSA")),
                        ("sign.test", "ed", make_key(folder / "ed.pem", "ED25519"))],
            "other": ("example.test", "s1", make_key(folder / "other.pem", "ED25519"))}


def write_config(folder, signers, dns_port=None, hostname=HOST):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "relayq.toml"
    dns = f'[dns]\nservers = ["127.0.0.1:{dns_port}"]\n' if dns_port else ""
    path.write_text(f'[server]\nhostname = "{hostname}"\n\n[relay]\ndomains = ["example.test"]\n\n'
                    f'[routes."routed.test"]\nnexthop = "127.0.0.1:9"\n\n{dns}\n' +
                    "".join(f'[[dkim.sign]]\ndomain = "{domain}"\nselector = "{selector}"\n'
                            f'key = "{key}"\n\n' for domain, selector, key in signers))
    return path


def dkim_records(folder, signers):
    """What `relayq dkim-record` prints for these signers: zone file lines, one per key."""
    config = write_config(folder, signers)
    return subprocess.run([RELAYQ_BIN, "dkim-record", "--config", str(config)], check=True,
                          capture_output=True, text=True, timeout=30).stdout.splitlines()


def check_dns(config, *options):
    return subprocess.run([RELAYQ_BIN, "check-dns", "--config", str(config), *options],
                          capture_output=True, text=True, timeout=120)


def parse(stdout):
    """{subject: Line} of check-dns's output, in order."""
    lines = {}
    for text in stdout.splitlines():
        match = re.fullmatch(r"(pass|FAIL|skip)  (.+?): (.*?)(?:; publish: (.*))?", text)
        assert match, text
        lines[match.group(2)] = Line(match.group(1), match.group(3), match.group(4))
    return lines


def run(folder, zone, signers, *options, hostname=HOST, servfail=()):
    """check-dns with `zone` served: its result and {subject: Line}."""
    folder.mkdir(parents=True)
    server = DnsServer(folder, zone, servfail=servfail)
    try:
        result = check_dns(write_config(folder, signers, server.port, hostname), *options)
    finally:
        server.stop()
    assert result.returncode in (0, 1), result.stderr
    return result, parse(result.stdout)


def published(zone, records):
    """`zone` with `records` (zone file lines) in place of the records of their name and type."""
    kept = zone.splitlines()
    for record in records:
        name, _, kind = record.split()[:3]
        kept = [line for line in kept
                if line.split()[:1] != [name] or kind not in line.split()[1:3]]
        kept.append(record)
    return "\n".join(kept) + "\n"


def test_a_good_zone_passes_every_check(tmp_path, keys):
    zone = GOOD + "\n".join(dkim_records(tmp_path / "records", keys["signers"])) + "\n"
    result, lines = run(tmp_path / "dns", zone, keys["signers"], "--ip", IP)
    assert result.returncode == 0, result.stdout
    assert list(lines) == SUBJECTS
    assert all(line.word == "pass" and line.publish is None
               for line in lines.values()), result.stdout
    assert lines["hostname"].text == f"{HOST} is fully qualified"
    assert lines[f"address {HOST}"].text == IP
    assert lines[f"ptr {IP}"].text == f"PTR names {HOST}, which has {IP}"
    # Names compare without case; any MX of the domain may be this host.
    assert lines["mx routed.test"].text == f"{HOST} (preference 10)"
    assert lines["spf example.test"].text == f"pass for {IP}"
    s1_key = keys["signers"][0][2]
    assert lines["dkim s1._domainkey.example.test"].text == f"publishes the key of {s1_key}"
    assert [lines[f"dmarc {d}"].text for d in ("example.test", "routed.test", "sign.test")] == \
        ["p=reject", "p=none", "p=quarantine"]


def test_a_broken_zone_fails_with_the_records_to_publish(tmp_path, keys):
    records = dkim_records(tmp_path / "records", keys["signers"])
    other = dkim_records(tmp_path / "other", [keys["other"]])
    zone = BROKEN + other[0] + "\n"
    result, lines = run(tmp_path / "broken", zone, keys["signers"], "--ip", IP)
    assert result.returncode == 1
    assert list(lines) == SUBJECTS
    s1_key = keys["signers"][0][2]
    spf = f'IN TXT "v=spf1 ip4:{IP} -all"'
    dmarc = 'IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@{0}"'
    assert lines == {
        "hostname": Line("pass", f"{HOST} is fully qualified", None),
        f"address {HOST}": Line("pass", IP, None),
        f"ptr {IP}": Line("FAIL", "no PTR record",
                          f"{PTR} IN PTR {HOST}. (at the address's owner)"),
        "mx example.test": Line("FAIL", "no MX record", f"example.test. IN MX 10 {HOST}."),
        "mx routed.test": Line("FAIL", f"MX names mx.elsewhere.test, not {HOST}",
                               f"routed.test. IN MX 10 {HOST}."),
        "spf example.test": Line("FAIL", f"fail: the SPF record does not authorize {IP} "
                                         f"(add ip4:{IP} to it)", f"example.test. {spf}"),
        "spf routed.test": Line("FAIL", "no SPF record", f"routed.test. {spf}"),
        "dkim s1._domainkey.example.test": Line("FAIL", f"no record there has the key of {s1_key}",
                                                records[0]),
        "dkim ed._domainkey.sign.test": Line("FAIL", "no key record", records[1]),
        "dmarc example.test": Line("FAIL", "no DMARC record",
                                   "_dmarc.example.test. " + dmarc.format("example.test")),
        "dmarc routed.test": Line("pass", "p=none", None),
        "dmarc sign.test": Line("FAIL", "no DMARC record",
                                "_dmarc.sign.test. " + dmarc.format("sign.test")),
    }

    # Published as they are (the PTR at the address's owner), the records fix every check.
    fixes = [line.publish.removesuffix(" (at the address's owner)")
             for line in lines.values() if line.publish]
    result, lines = run(tmp_path / "fixed", published(zone, fixes), keys["signers"], "--ip", IP)
    assert result.returncode == 0, result.stdout
    assert [line.word for line in lines.values()] == ["pass"] * len(SUBJECTS)


@pytest.mark.parametrize("records, text, publish", [
    (f"{PTR} PTR other.example.test.\nother.example.test. A {IP}\n{HOST}. A {IP}",
     f"PTR names other.example.test, not {HOST}", f"{PTR} IN PTR {HOST}."),
    (f"{PTR} PTR {HOST}.\n{HOST}. A 203.0.113.9",
     f"PTR names {HOST}, but its A/AAAA records do not have {IP}", f"{HOST}. IN A {IP}"),
    (f"{PTR} PTR {HOST}.\n{HOST}. AAAA 2001:db8::5",
     f"PTR names {HOST}, but its A/AAAA records do not have {IP}", f"{HOST}. IN A {IP}"),
], ids=["another host", "not forward-confirmed", "IPv6 only"])
def test_a_ptr_that_does_not_confirm_fails(tmp_path, keys, records, text, publish):
    zone = GOOD.replace(f"{HOST}. A {IP}\n{PTR} PTR {HOST}.\n", records + "\n")
    result, lines = run(tmp_path / "dns", zone, [], "--ip", IP)
    assert result.returncode == 1
    ptr = lines[f"ptr {IP}"]
    assert (ptr.word, ptr.text) == ("FAIL", text)
    assert ptr.publish.removesuffix(" (at the address's owner)") == publish
    # The rest does not depend on the PTR (SPF's mx mechanism does on the host's A record).
    assert all(line.word == "pass" for subject, line in lines.items()
               if subject.split()[0] in ("hostname", "address", "mx", "dmarc"))


def test_a_host_without_an_address_fails(tmp_path, keys):
    zone = GOOD.replace(f"{HOST}. A {IP}\n", "")
    result, lines = run(tmp_path / "dns", zone, [], "--ip", IP)
    assert result.returncode == 1
    assert lines[f"address {HOST}"] == Line("FAIL", "no A or AAAA record", f"{HOST}. IN A {IP}")
    assert lines[f"ptr {IP}"].text == f"PTR names {HOST}, but its A/AAAA records do not have {IP}"
    # SPF's mx mechanism finds no address of the MX host either.
    assert lines["spf example.test"].word == "FAIL"


def test_without_ip_the_ptr_and_spf_checks_are_skipped(tmp_path, keys):
    zone = GOOD + "\n".join(dkim_records(tmp_path / "records", keys["signers"])) + "\n"
    result, lines = run(tmp_path / "dns", zone, keys["signers"])
    assert result.returncode == 0, result.stdout
    config = tmp_path / "dns" / "relayq.toml"
    how = f"needs this server's public address: relayq check-dns --config {config} --ip ADDRESS"
    skipped = {subject: line for subject, line in lines.items() if line.word == "skip"}
    assert skipped == {"ptr": Line("skip", how, None), "spf example.test": Line("skip", how, None),
                       "spf routed.test": Line("skip", how, None)}
    assert all(line.word == "pass" for subject, line in lines.items() if subject not in skipped)


def test_a_host_name_that_is_not_fully_qualified_fails(tmp_path):
    result, lines = run(tmp_path / "dns", GOOD, [], hostname="localhost")
    assert result.returncode == 1
    config = tmp_path / "dns" / "relayq.toml"
    assert lines["hostname"] == Line("FAIL", "localhost is not a fully qualified name: set "
                                     f"server.hostname ({config}:2) to this server's name in DNS",
                                     None)


def test_a_lookup_that_fails_says_so_and_suggests_nothing(tmp_path):
    result, lines = run(tmp_path / "dns", GOOD, [], "--ip", IP,
                        servfail=["example.test", "_dmarc.routed.test"])
    assert result.returncode == 1
    for subject in ("mx example.test", "dmarc routed.test"):
        assert lines[subject].word == "FAIL"
        assert re.fullmatch(r"lookup failed: \S+ (MX|TXT): .+", lines[subject].text), \
            lines[subject]
        assert lines[subject].publish is None
    assert lines["spf example.test"].text.startswith("SPF lookup failed")
    assert lines["mx routed.test"].word == "pass"


def test_usage_and_config_errors_exit_2(tmp_path, keys):
    usage = subprocess.run([RELAYQ_BIN, "check-dns"], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2
    assert "--config" in usage.stderr

    config = write_config(tmp_path / "ok", [])
    result = check_dns(config, "--ip", "mail.example.test")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "relayq: --ip: not an IP address: mail.example.test\n"

    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nhostname = "mail.example.test"\ncolour = "blue"\n')
    result = check_dns(bad)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{bad}:3: unknown key 'server.colour'"), result.stderr

    missing = write_config(tmp_path / "missing", [("example.test", "s1", tmp_path / "none.pem")])
    result = check_dns(missing)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{missing}:"), result.stderr
    assert "dkim.sign[0].key" in result.stderr


def test_a_null_mx_fails(tmp_path):
    zone = GOOD.replace(f"routed.test. MX 10 {HOST.upper()}.\n", "routed.test. MX 0 .\n")
    zone = zone.replace("routed.test. MX 20 backup.example.net.\n", "")
    result, lines = run(tmp_path / "dns", zone, [], "--ip", IP)
    assert result.returncode == 1
    assert lines["mx routed.test"] == Line("FAIL", "a null MX: the domain says it takes no mail",
                                           f"routed.test. IN MX 10 {HOST}.")
