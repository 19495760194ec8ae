"""relayq retry-plan: the attempt times of the [retry] schedule, as text and JSON, per domain;
and the plan against the attempts a relay makes to a sink that answers 451."""
import json
import subprocess
import time

from conftest import RELAYQ_BIN, Sink, free_port, send_message, wait_until

CONFIG = """
[server]
hostname = "relay.test"

[retry]
initial = "5m"
factor = 2.0
max_interval = "4h"
max_age = "1d"
jitter = 0.1
delay_warning = "4h"

[retry.domains."slow.example"]
initial = "1h"
max_age = "6h"
delay_warning = "0"
"""


def run(*args):
    return subprocess.run([RELAYQ_BIN, *args], capture_output=True, text=True, timeout=30)


def plan(tmp_path, *args):
    config = tmp_path / "relayq.toml"
    config.write_text(CONFIG)
    result = run("retry-plan", "--config", str(config), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_text_lists_each_attempt_then_the_warning_and_the_bounce(tmp_path):
    lines = plan(tmp_path).splitlines()
    assert lines[0] == "retry plan: default [retry]"
    assert "each attempt fails at once" in lines[1]
    attempts = [line.split() for line in lines if line.startswith("attempt")]
    # Waits of 5, 10, 20, 40, 80, 160 min, then 4 h each, the last try on max_age (1 d).
    assert [words[2] for words in attempts] == [
        "0s", "5m", "15m", "35m", "1h15m", "2h35m", "5h15m", "9h15m", "13h15m", "17h15m",
        "21h15m", "1d"]
    assert attempts[1][1:] == ["2", "5m", "(4m30s", "..", "5m30s)"]
    assert lines[-2] == "delay warning: after attempt 7 fails, 5h15m (delay_warning = 4h)"
    assert lines[-1] == "bounce: after attempt 12 fails, 1d (max_age)"


def test_json_has_the_contract_fields(tmp_path):
    data = json.loads(plan(tmp_path, "--json"))
    attempts = data["attempts"]
    assert len(attempts) == 12
    assert attempts[0] == {"number": 1, "after_seconds": 0, "earliest_seconds": 0,
                           "latest_seconds": 0}
    assert attempts[2]["after_seconds"] == 15 * 60
    assert attempts[2]["earliest_seconds"] == 13.5 * 60
    assert attempts[2]["latest_seconds"] == 16.5 * 60
    assert attempts[-1]["after_seconds"] == attempts[-1]["latest_seconds"] == 86400
    assert data["delay_warning_seconds"] == 315 * 60
    assert data["bounce_after_seconds"] == 86400
    assert data["rule"] == "default [retry]"


def test_a_domain_with_an_override_uses_it(tmp_path):
    text = plan(tmp_path, "--domain", "Slow.Example")
    assert text.splitlines()[0] == 'retry plan for Slow.Example: [retry.domains."slow.example"]'
    assert "delay warning: none (delay_warning = 0)" in text
    data = json.loads(plan(tmp_path, "--domain", "slow.example", "--json"))
    # 1 h, then 2 h: 0, 1 h, 3 h, and the last on max_age (6 h); keys not set come from [retry].
    assert [a["after_seconds"] for a in data["attempts"]] == [0, 3600, 3 * 3600, 6 * 3600]
    assert data["delay_warning_seconds"] is None
    assert data["bounce_after_seconds"] == 6 * 3600


def test_a_domain_without_an_override_uses_the_default(tmp_path):
    text = plan(tmp_path, "--domain", "other.example")
    assert text.splitlines()[0] == "retry plan for other.example: default [retry]"
    assert text.splitlines()[-1] == "bounce: after attempt 12 fails, 1d (max_age)"


def test_a_bad_config_is_reported_with_file_and_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[retry]\ninitial = "5m"\nfactor = "fast"\n')
    result = run("retry-plan", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{config}:3:"), result.stderr
    assert result.stdout == ""


def test_the_plan_matches_the_attempts_a_relay_makes(tmp_path, make_relay):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.9", port, {"data": "451 4.3.0 always later"})
    try:
        relay = make_relay(delivery="", extra=f"""
[routes."slow.test"]
nexthop = "127.0.0.9:{port}"

[retry]
initial = "1s"
factor = 2.0
max_age = "20s"
jitter = 0.1
""")
        result = run("retry-plan", "-c", str(relay.config_path), "--domain", "slow.test", "--json")
        assert result.returncode == 0, result.stderr
        planned = json.loads(result.stdout)
        # 0, 1, 3, 7, 15 s and the last on max_age.
        assert len(planned["attempts"]) == 6
        # The null sender: no DSN to deliver when the recipient bounces.
        message_id = send_message(relay.smtp_port, ["late@slow.test"], "",
                                  b"Subject: retry plan\r\n\r\nHello.\r\n")

        def show():
            shown = run("queue", "show", message_id, "--json", "-c", str(relay.config_path))
            return json.loads(shown.stdout) if shown.returncode == 0 else None

        def attempts_made():
            message = show()
            return len(message["recipients"][0]["history"]) if message else 0

        # Every attempt but the last, read while the message is still queued.
        wait_until(lambda: attempts_made() >= 5, timeout=30, what="five attempts")
        message = show()
        history = message["recipients"][0]["history"]
        assert len(history) == 5, history
        for attempt, plan in zip(history, planned["attempts"]):
            after = (attempt["time_ms"] - message["received_ms"]) / 1000
            # An attempt's time is its reply's: a little after it began, and each later attempt
            # counts its wait from there.
            assert plan["earliest_seconds"] - 0.05 <= after <= plan["latest_seconds"] + 0.5, \
                (attempt, plan)
        # The last attempt, on max_age, bounces: the message leaves the queue.
        wait_until(lambda: show() is None, timeout=15, what="the bounce")
        gone_after = time.time() - message["received_ms"] / 1000
        bounce = planned["bounce_after_seconds"]
        assert bounce - 0.05 <= gone_after <= bounce + 2, gone_after
        assert "status=bounced" in relay.log_text()
    finally:
        sink.stop()
