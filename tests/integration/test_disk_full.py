"""A queue on a full disk: 4xx replies, nothing half-stored, no crash, no delivery repeated
because the store could not record it, and recovery."""
import contextlib
import os
import smtplib
import subprocess
import time

import pytest

from conftest import RELAYQ_BIN, Relay, Sink, free_port, metric_value, queued_id, wait_until


@contextlib.contextmanager
def tmpfs(tmp_path, size):
    """A tmpfs of `size` ("24m") mounted for the test, unmounted after it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def relay_on(mount, tmp_path, **kwargs):
    """A relay (not started) whose queue is on `mount`."""
    relay = Relay(tmp_path / "relay", **kwargs)
    relay.queue_path = mount / "queue"
    relay.config_path.write_text(relay.config_path.read_text().replace(
        str(tmp_path / "relay" / "queue"), str(relay.queue_path)))
    return relay


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path, "24m") as mount:
        yield mount


def test_full_disk_gives_4xx_and_keeps_every_acknowledged_message(small_disk, tmp_path):
    relay = relay_on(small_disk, tmp_path).start()
    body = b"Subject: filler\r\n\r\n" + (b"y" * 998 + b"\r\n") * 512  # about 512 KiB
    acknowledged, refusal = [], None
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.test")
        for _ in range(200):
            assert smtp.mail("a@example.test")[0] == 250
            assert smtp.rcpt("b@example.org")[0] == 250
            code, reply = smtp.data(body)
            if code != 250:
                refusal = (code, reply)
                break
            acknowledged.append(queued_id(reply))
        assert refusal is not None, "the disk never filled"
        assert refusal[0] in (451, 452), refusal
        assert refusal[1][:5] in (b"4.3.0", b"4.3.1"), refusal
        # The relay is still up and answers on the same connection.
        assert smtp.noop()[0] == 250
    assert relay.process.poll() is None
    assert relay.stop() == 0
    stored = {e["id"] for e in relay.inspect()}
    assert set(acknowledged) <= stored
    # Only acknowledged messages are there: the refused one left nothing behind.
    assert stored == set(acknowledged)
    for message_id in acknowledged[-2:]:
        assert relay.body(message_id).endswith(body)


def leave_free(directory, free_bytes):
    """A filler file that leaves about `free_bytes` free on the file system; returns it."""
    stat = os.statvfs(directory)
    filler = directory / "filler"
    with open(filler, "wb") as out:
        remaining = stat.f_bavail * stat.f_frsize - free_bytes
        while remaining > 0:
            out.write(b"\0" * min(remaining, 1 << 20))
            remaining -= 1 << 20
    return filler


def message_ids(sink):
    return [next(line for line in body.split(b"\r\n") if line.lower().startswith(b"message-id:"))
            for _, body in sink.messages()]


def test_deliveries_the_store_cannot_record_are_not_repeated(tmp_path):
    """The queue's disk fills (452), then the next hop takes what was queued: each commit fails,
    but the round keeps what the sink accepted and retries only its commit, so the sink gets
    each message once while the disk stays full; when space returns the store recovers by
    itself and records the deliveries, still without a second copy."""
    with tmpfs(tmp_path, "128m") as mount:
        sink_port = free_port()
        relay = relay_on(mount, tmp_path, delivery=f'smarthost = "127.0.0.1:{sink_port}"',
                         extra='[retry]\ninitial = "1s"\nfactor = 1.0\njitter = 0.0\n')
        relay.start()
        filler = leave_free(mount, 12 << 20)
        body = b"\r\n" + (b"z" * 998 + b"\r\n") * 512  # about 512 KiB
        accepted = 0
        with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=60) as smtp:
            smtp.ehlo("client.test")
            for n in range(100):
                smtp.mail("a@example.test")
                smtp.rcpt("b@example.org")
                code, _ = smtp.data(f"Message-ID: <once-{n}@test>\r\n".encode() + body)
                if code != 250:
                    break
                accepted += 1
        assert 0 < accepted < 100, "the disk never filled"
        sink = Sink(tmp_path, "127.0.0.1", sink_port)
        try:
            sink.wait_for(accepted, timeout=60)
            # A round that delivered, whose commit failed: it keeps what the sink accepted.
            wait_until(lambda: "kept=fates" in relay.log_text(), 30, "a delivery not recorded")
            time.sleep(5)  # retries of the commits; a lost round would deliver again by now
            assert sorted(message_ids(sink)) == sorted(set(message_ids(sink)))
            assert len(sink.messages()) == accepted
            assert relay.process.poll() is None
            # Why mail still gets 452, with the free space, in the log.
            wait_until(lambda: "event=store_waiting_for_space" in relay.log_text(), 15, "why logged")
            assert metric_value(relay.metrics_port, "relayq_queue_store_refusing_writes") == 1
            filler.unlink()
            wait_until(lambda: not relay_has_pending(relay), 120, "the deliveries recorded")
            assert metric_value(relay.metrics_port, "relayq_queue_store_refusing_writes") == 0
            assert len(sink.messages()) == accepted, "delivered again after recovery"
        finally:
            sink.stop()
        assert relay.stop() == 0
        assert relay.inspect() == []


def relay_has_pending(relay):
    out = subprocess.run([RELAYQ_BIN, "queue", "list", "-c", str(relay.config_path)],
                         capture_output=True, text=True, timeout=30).stdout
    return any(line.strip() for line in out.splitlines()[1:])
