"""`relayq queue ...` against a running relay whose queue holds deferred, held and partly bounced
mail: every command, human and --json output, exit codes, the admin token."""
import json
import os
import re
import smtplib
import subprocess
import time
import types
import urllib.request

import pytest

from conftest import send_message, wait_until, RELAYQ_BIN, DnsServer, Relay, Sink, free_port, queued_id, wait_for_port

ZONE = """
a.test.         60 IN MX 10 mx.a.test.
mx.a.test.      60 IN A 127.0.0.2
slow.test.      60 IN MX 10 mx.slow.test.
mx.slow.test.   60 IN A 127.0.0.9
bad.test.       60 IN MX 10 mx.bad.test.
mx.bad.test.    60 IN A 127.0.0.8
sender.test.    60 IN MX 10 mx.sender.test.
mx.sender.test. 60 IN A 127.0.0.7
"""

BODY = b"Subject: queue cli test\r\n\r\nHello.\r\n"
ID = re.compile(r"^[0-9A-F]{16}$")


def send(relay, rcpts, sender="sender@sender.test"):
    return send_message(relay.smtp_port, rcpts, sender, BODY)


def queue(relay, *args, config=True, env=None):
    """Runs `relayq queue ARGS` against `relay` (through its config unless config=False)."""
    command = [RELAYQ_BIN, "queue", *args]
    if config:
        command += ["-c", str(relay.config_path)]
    environment = {k: v for k, v in os.environ.items() if k != "RELAYQ_ADMIN_TOKEN"}
    environment.update(env or {})
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment)


def ok(result):
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def show(relay, message_id):
    return json.loads(ok(queue(relay, "show", message_id, "--json")))


def listing(relay):
    lines = ok(queue(relay, "list", "--json")).splitlines()
    return {line["id"]: line for line in map(json.loads, lines)}


def attempts_of(relay, message_id):
    return {r["address"]: r["attempts"] for r in show(relay, message_id)["recipients"]}


@pytest.fixture
def scenario(tmp_path, make_relay):
    """A relay (retries an hour apart) whose queue holds, after one delivery round:
    mixed    ok@a.test delivered, late@slow.test deferred by 451, nobody@bad.test bounced by 550
    deferred late2@slow.test deferred
    held     late3@slow.test deferred, then held with `relayq queue hold`
    and whose message to nobody2@bad.test alone bounced and left the queue."""
    dns = DnsServer(tmp_path, ZONE)
    port = free_port()
    sinks = []
    # Set-up can fail half-way (a relay without an admin API, say): stop what started.
    try:
        for address, replies in (("127.0.0.2", None),
                                 ("127.0.0.9", {"data": "451 4.3.0 try later"}),
                                 ("127.0.0.8", {"rcpt": "550 5.1.1 no such user"}),
                                 ("127.0.0.7", None)):
            sinks.append(Sink(tmp_path, address, port, replies))
        relay = make_relay(delivery=f"port = {port}", extra=f"""
[dns]
servers = ["127.0.0.1:{dns.port}"]

[retry]
initial = "1h"
jitter = 0.0
""")
        wait_for_port(relay.admin_port, process=relay.process)
        yield setup_scenario(relay, dsn_sink=sinks[3])
    finally:
        for sink in sinks:
            sink.stop()
        dns.stop()


def setup_scenario(relay, dsn_sink):
    s = types.SimpleNamespace(relay=relay, dsn_sink=dsn_sink)
    s.mixed = send(relay, ["ok@a.test", "late@slow.test", "nobody@bad.test"])
    s.deferred = send(relay, ["late2@slow.test"])
    s.held = send(relay, ["late3@slow.test"])
    s.gone = send(relay, ["nobody2@bad.test"])
    for message_id in (s.mixed, s.deferred, s.held):
        wait_until(lambda: min(attempts_of(relay, message_id).values()) >= 1,
                   what=f"first delivery round of {message_id}")
    wait_until(lambda: "no such message" in queue(relay, "show", s.gone).stderr,
               what="the bounced message gone")
    # One DSN for the mixed message's bounce, one for the message that bounced whole.
    s.dsn_sink.wait_for(2)
    assert ok(queue(relay, "hold", s.held)).strip() == f"{s.held}: held"
    return s


def test_list_json_has_one_line_per_queued_message(scenario):
    now_ms = time.time() * 1000
    lines = listing(scenario.relay)
    assert set(lines) == {scenario.mixed, scenario.deferred, scenario.held}
    mixed = lines[scenario.mixed]
    assert mixed["sender"] == "sender@sender.test"
    assert mixed["recipients_pending"] == ["late@slow.test"]  # delivered and bounced are done
    assert mixed["last_error"].startswith("451 4.3.0")
    assert now_ms + 50 * 60_000 < mixed["next_attempt_ms"] < now_ms + 61 * 60_000
    assert mixed["held"] is False
    assert 0 <= mixed["age_s"] < 120
    assert lines[scenario.held]["held"] is True
    assert lines[scenario.deferred]["recipients_pending"] == ["late2@slow.test"]
    for message_id in lines:
        assert ID.match(message_id)


def test_list_prints_a_table(scenario):
    out = ok(queue(scenario.relay, "list")).splitlines()
    assert out[0].split() == ["ID", "AGE", "NEXT", "SENDER", "PENDING", "LAST", "ERROR"]
    rows = {line.split()[0]: line for line in out[1:-1]}
    assert set(rows) == {scenario.mixed, scenario.deferred, scenario.held}
    assert re.search(r" (59m\d*s?|1h) ", rows[scenario.mixed]), rows[scenario.mixed]
    assert "late@slow.test" in rows[scenario.mixed]
    assert "451 4.3.0" in rows[scenario.mixed]
    assert " held " in rows[scenario.held]
    assert out[-1] == "3 messages, 1 held"


def test_show_json_has_every_recipient_and_attempt(scenario):
    message = show(scenario.relay, scenario.mixed)
    assert message["id"] == scenario.mixed
    assert message["sender"] == "sender@sender.test"
    assert message["helo"] == "client.test"
    assert message["size"] > len(BODY)  # our Received: header comes first
    assert message["held"] is False
    recipients = {r["address"]: r for r in message["recipients"]}
    assert {a: r["state"] for a, r in recipients.items()} == {
        "ok@a.test": "delivered", "late@slow.test": "pending", "nobody@bad.test": "bounced"}
    for address, reply in (("ok@a.test", "250"), ("late@slow.test", "451 4.3.0"),
                           ("nobody@bad.test", "550 5.1.1")):
        [attempt] = recipients[address]["history"]
        assert attempt["reply"].startswith(reply), attempt
        assert attempt["time_ms"] / 1000 > time.time() - 120
        assert attempt["nexthop"], attempt
    assert "127.0.0.9" in recipients["late@slow.test"]["history"][0]["nexthop"]
    assert recipients["late@slow.test"]["attempts"] == 1
    assert recipients["late@slow.test"]["next_attempt_ms"] > time.time() * 1000 + 50 * 60_000
    assert recipients["nobody@bad.test"]["next_attempt_ms"] is None
    assert recipients["late@slow.test"]["retry_rule"] == "default"
    assert recipients["nobody@bad.test"]["retry_rule"] is None


def test_show_explains_the_history(scenario):
    out = ok(queue(scenario.relay, "show", scenario.mixed))
    assert out.startswith(f"message {scenario.mixed}, received ")
    assert "from <sender@sender.test>" in out
    assert "ok@a.test: delivered after 1 attempt\n" in out
    assert "nobody@bad.test: bounced after 1 attempt\n" in out
    assert "late@slow.test: pending, 1 attempt\n" in out
    assert re.search(r"  attempt 1 at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC via \S*127\.0\.0\.9\S* "
                      r"\(plaintext\): \[network\] 451 4\.3\.0[^\n]*; next attempt in (59m\d*s?|1h) "
                      r"\(rule default\)\n", out), out
    assert re.search(r"  attempt 1 at [^\n]* via \S*127\.0\.0\.8\S* \(plaintext\): \[bad_mailbox\] "
                     r"550 5\.1\.1", out), out

    held = ok(queue(scenario.relay, "show", scenario.held))
    assert "on hold: nothing is delivered until it is released" in held
    assert "; held: no attempt until released" in held


def test_stats_count_by_state_and_domain(scenario):
    stats = json.loads(ok(queue(scenario.relay, "stats", "--json")))
    assert stats["messages"] == 3
    # Deferred for an hour: nothing is ready.
    assert stats["by_state"] == {"ready": 0, "scheduled": 2, "held": 1}
    assert stats["recipients"] == {"pending": 3, "delivered": 1, "bounced": 1}
    assert stats["by_domain"] == {"slow.test": {"messages": 3, "recipients": 3}}
    assert 0 < stats["oldest_age_s"] < 120

    out = ok(queue(scenario.relay, "stats"))
    assert "messages    3 (ready 0, scheduled 2, held 1)" in out
    assert "recipients  3 pending, 1 delivered, 1 bounced" in out
    assert re.search(r"slow\.test\s+3\s+3", out), out


def test_hold_and_release(scenario):
    relay, message_id = scenario.relay, scenario.deferred
    assert ok(queue(relay, "hold", message_id)) == f"{message_id}: held\n"
    assert listing(relay)[message_id]["held"] is True
    again = queue(relay, "hold", message_id)
    assert again.returncode == 1
    assert "already held" in again.stderr

    assert ok(queue(relay, "release", message_id)) == f"{message_id}: released\n"
    assert listing(relay)[message_id]["held"] is False
    again = queue(relay, "release", message_id)
    assert again.returncode == 1
    assert "not held" in again.stderr
    # Back on its schedule: an hour away, not tried at once.
    time.sleep(1)
    assert attempts_of(relay, message_id) == {"late2@slow.test": 1}


def test_retry_makes_a_message_due_now(scenario):
    relay = scenario.relay
    assert ok(queue(relay, "retry", scenario.deferred)) == f"{scenario.deferred}: retried\n"
    wait_until(lambda: attempts_of(relay, scenario.deferred)["late2@slow.test"] == 2,
               what="second attempt after retry")
    [_, second] = show(relay, scenario.deferred)["recipients"][0]["history"]
    assert second["reply"].startswith("451 4.3.0")


def test_retry_all_skips_held_messages(scenario):
    relay = scenario.relay
    out = ok(queue(relay, "retry", "--all"))
    assert out == "2 messages due now\n"
    wait_until(lambda: attempts_of(relay, scenario.mixed)["late@slow.test"] == 2
               and attempts_of(relay, scenario.deferred)["late2@slow.test"] == 2,
               what="second attempts after retry --all")
    # Delivered and bounced recipients are not tried again; the held message is not tried.
    assert attempts_of(relay, scenario.mixed) == {"ok@a.test": 1, "late@slow.test": 2,
                                                  "nobody@bad.test": 1}
    assert attempts_of(relay, scenario.held) == {"late3@slow.test": 1}


def test_delete_removes_a_message_without_a_dsn(scenario):
    relay = scenario.relay
    assert ok(queue(relay, "delete", scenario.deferred)) == f"{scenario.deferred}: deleted\n"
    gone = queue(relay, "show", scenario.deferred)
    assert gone.returncode == 1
    assert f"no such message: {scenario.deferred}" in gone.stderr
    assert set(listing(relay)) == {scenario.mixed, scenario.held}
    again = queue(relay, "delete", scenario.deferred)
    assert again.returncode == 1
    time.sleep(1)
    assert len(scenario.dsn_sink.messages()) == 2  # no DSN for a deleted message
    assert relay.stop() == 0
    assert scenario.deferred not in {e["id"] for e in relay.inspect()}


def test_bounced_message_is_gone_and_unknown_ids_fail(scenario):
    relay = scenario.relay
    for command in (["show", scenario.gone], ["hold", scenario.gone], ["release", scenario.gone],
                    ["retry", scenario.gone], ["delete", scenario.gone]):
        result = queue(relay, *command)
        assert result.returncode == 1, command
        assert f"no such message: {scenario.gone}" in result.stderr


def test_usage_errors_exit_2(relay):
    for args in (["show", "not-an-id"], ["hold", "123"], ["retry"],
                 ["retry", "00000000000000AB", "--all"], ["show"], ["list", "--bogus"], []):
        result = queue(relay, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr, args
    bad_config = relay.workdir / "bad.toml"
    bad_config.write_text("[admin]\nlisten = 8025\n")
    result = subprocess.run([RELAYQ_BIN, "queue", "list", "-c", str(bad_config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{bad_config}:2:"), result.stderr


def test_admin_address_from_flag_over_config(relay):
    wait_for_port(relay.admin_port, process=relay.process)
    send(relay, ["someone@example.org"])
    # --admin alone, and --admin over the config's admin.listen.
    assert len(ok(queue(relay, "list", "--json", "--admin", f"127.0.0.1:{relay.admin_port}",
                        config=False)).splitlines()) == 1
    unused = free_port()
    result = queue(relay, "list", "--admin", f"127.0.0.1:{unused}")
    assert result.returncode == 1
    assert f"cannot reach the admin API at 127.0.0.1:{unused}" in result.stderr


def test_daemon_gone_is_a_runtime_failure(relay):
    relay.stop()
    for args in (["list"], ["stats", "--json"], ["show", "00000000000000AB"], ["retry", "--all"]):
        result = queue(relay, *args)
        assert result.returncode == 1, args
        assert "cannot reach the admin API" in result.stderr


def test_token_is_required_when_configured(tmp_path):
    relay = Relay(tmp_path / "relay")
    text = relay.config_path.read_text()
    listen = f'listen = "127.0.0.1:{relay.admin_port}"'
    relay.config_path.write_text(text.replace(listen, listen + '\ntoken = "tok-3141"'))
    relay.start()
    try:
        wait_for_port(relay.admin_port, process=relay.process)
        message_id = send(relay, ["someone@example.org"])
        address = ["--admin", f"127.0.0.1:{relay.admin_port}"]
        denied = queue(relay, "list", *address, config=False)
        assert denied.returncode == 1
        assert "bearer token" in denied.stderr
        wrong = queue(relay, "list", *address, config=False, env={"RELAYQ_ADMIN_TOKEN": "nope"})
        assert wrong.returncode == 1
        # The token from the config, or from the environment.
        assert message_id in ok(queue(relay, "list"))
        assert message_id in ok(queue(relay, "list", *address, config=False,
                                      env={"RELAYQ_ADMIN_TOKEN": "tok-3141"}))
        # Health checks need no token.
        with urllib.request.urlopen(f"http://127.0.0.1:{relay.admin_port}/healthz", timeout=10) as r:
            assert r.status == 200
            assert r.read().strip() == b"ok"
    finally:
        relay.kill()


def test_list_streams_a_thousand_messages(relay):
    wait_for_port(relay.admin_port, process=relay.process)
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.test")
        for n in range(1000):
            smtp.sendmail("bulk@example.org", [f"r{n}@example.org"], BODY)
    lines = ok(queue(relay, "list", "--json")).splitlines()
    assert len(lines) == 1000
    assert len({json.loads(line)["id"] for line in lines}) == 1000
    table = ok(queue(relay, "list")).splitlines()
    assert len(table) == 1002  # the header, a row each, the count
    assert table[-1] == "1000 messages, 0 held"
