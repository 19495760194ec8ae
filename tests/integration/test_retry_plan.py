"""relayq retry-plan: the attempt times of the [retry] schedule, as text and JSON, per domain;
the plan against the attempts a relay makes to a sink that answers 451; check-config
--diff-against, the old and new plans side by side; and the rule `queue show` names for each
deferred recipient."""
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


# CONFIG with shorter, faster-growing default waits, and an override for fast.example.
NEW_CONFIG = CONFIG.replace('initial = "5m"\nfactor = 2.0', 'initial = "2m"\nfactor = 3.0') + """
[retry.domains."fast.example"]
initial = "1m"
"""


def diff(tmp_path, old_text, new_text):
    old = tmp_path / "old.toml"
    old.write_text(old_text)
    new = tmp_path / "new.toml"
    new.write_text(new_text)
    return old, new, run("check-config", "--config", str(new), "--diff-against", str(old))


def section(text, heading):
    """The lines of one rule's table, from its heading to the blank line after it."""
    lines = text.splitlines()
    start = lines.index(heading)
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start + 1:end]


def row(lines, label):
    """The row whose label is `label`: (changed mark, old cell, new cell), cut at the columns."""
    header = lines[0]
    old_at, new_at = header.index("old"), header.index("new")
    [line] = [line for line in lines if line[2:old_at].strip() == label]
    return line[0], line[old_at:new_at].strip(), line[new_at:].strip()


def test_diff_against_shows_old_and_new_plans_side_by_side(tmp_path):
    old, new, result = diff(tmp_path, CONFIG, NEW_CONFIG)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"{new}: ok\n{old}: ok\nretry schedule changed (old: {old}, new: {new})\n")

    default = section(out, "default [retry]")
    # Old: waits of 5, 10, 20 min...; new: 2, 6, 18 min...
    assert row(default, "attempt   1") == (" ", "0s", "0s")
    assert row(default, "attempt   2") == ("*", "5m  (4m30s .. 5m30s)", "2m  (1m48s .. 2m12s)")
    assert row(default, "attempt   3") == ("*", "15m  (13m30s .. 16m30s)", "8m  (7m12s .. 8m48s)")
    # The new schedule fits one attempt fewer in max_age: "-" in its column.
    last = row(default, "attempt  12")
    assert last[0] == "*" and last[1].startswith("1d  (") and last[2] == "-", last
    assert row(default, "delay warning") == (
        "*", "after attempt 7 fails, 5h15m (delay_warning = 4h)",
        "after attempt 6 fails, 4h2m (delay_warning = 4h)")
    assert row(default, "bounce")[1] == "after attempt 12 fails, 1d (max_age)"

    # Overrides start from their file's [retry]: the new factor reaches slow.example too.
    slow = section(out, '[retry.domains."slow.example"]')
    assert row(slow, "attempt   3") == ("*", "3h  (2h42m .. 3h18m)", "4h  (3h36m .. 4h24m)")
    assert row(slow, "delay warning") == (" ", "none (delay_warning = 0)",
                                          "none (delay_warning = 0)")

    # Only in the new file: compared with the old file's default.
    fast = section(out, '[retry.domains."fast.example"] (only in the new config; old: default '
                        '[retry])')
    assert row(fast, "attempt   2") == ("*", "5m  (4m30s .. 5m30s)", "1m  (54s .. 1m6s)")

    # And the other way round, with the default of the file that lacks the override.
    _, _, reverse = diff(tmp_path, NEW_CONFIG, CONFIG)
    assert reverse.returncode == 0, reverse.stderr
    assert '[retry.domains."fast.example"] (only in the old config; new: default [retry])' in \
        reverse.stdout.splitlines()


def test_diff_against_an_unchanged_schedule_says_so(tmp_path):
    # Other keys may change; the retry schedule is what is compared.
    old, new, result = diff(tmp_path, CONFIG, CONFIG.replace("relay.test", "relay2.test"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{new}: ok\n{old}: ok\nretry schedule unchanged\n"


def test_diff_against_names_an_unchanged_rule_among_changed_ones(tmp_path):
    # The default's initial wait changes; slow.example's override sets its own.
    _, _, result = diff(tmp_path, CONFIG, CONFIG.replace('initial = "5m"', 'initial = "10m"'))
    assert result.returncode == 0, result.stderr
    assert '[retry.domains."slow.example"]: unchanged' in result.stdout.splitlines()
    assert row(section(result.stdout, "default [retry]"), "attempt   2")[2].startswith("10m")


def test_diff_against_an_invalid_old_config_is_reported_with_file_and_line(tmp_path):
    old, new, result = diff(tmp_path, '[retry]\ninitial = "5m"\nfactor = "fast"\n', NEW_CONFIG)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{old}:3:"), result.stderr
    assert result.stdout == ""
    # Both invalid: both reported.
    _, _, both = diff(tmp_path, "[retry]\nnope = 1\n", "[server]\nnope = 1\n")
    assert both.returncode == 2
    assert [line.split(":")[:2] for line in both.stderr.splitlines()] == [
        [str(new), "2"], [str(old), "2"]]


def test_queue_show_names_the_rule_of_each_next_attempt(tmp_path, make_relay):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.9", port, {"data": "451 4.3.0 always later"})
    try:
        relay = make_relay(delivery="", extra=f"""
[routes."slow.example"]
nexthop = "127.0.0.9:{port}"

[routes."other.test"]
nexthop = "127.0.0.9:{port}"

[retry]
initial = "10m"
jitter = 0.0

[retry.domains."slow.example"]
initial = "2h"
""")
        message_id = send_message(relay.smtp_port, ["a@Slow.Example", "b@other.test"], "",
                                  b"Subject: rules\r\n\r\nHello.\r\n")

        def show(*args):
            return run("queue", "show", message_id, *args, "-c", str(relay.config_path))

        def deferred():
            shown = show("--json")
            assert shown.returncode == 0, shown.stderr
            message = json.loads(shown.stdout)
            return message if all(r["attempts"] == 1 for r in message["recipients"]) else None

        wait_until(deferred, timeout=30, what="both recipients deferred")
        message = deferred()
        slow, other = message["recipients"]
        assert slow["address"] == "a@Slow.Example"
        assert slow["retry_rule"] == "slow.example"
        assert other["retry_rule"] == "default"
        # Each next attempt a wait of its rule after its attempt (no jitter).
        assert slow["next_attempt_ms"] - slow["history"][0]["time_ms"] == 2 * 3600 * 1000
        assert other["next_attempt_ms"] - other["history"][0]["time_ms"] == 10 * 60 * 1000

        text = show()
        assert text.returncode == 0, text.stderr
        assert 'next attempt in 1h59m (rule retry.domains."slow.example")' in text.stdout \
            or 'next attempt in 2h (rule retry.domains."slow.example")' in text.stdout, text.stdout
        assert "(rule default)" in text.stdout, text.stdout
    finally:
        sink.stop()
