"""A queue on a full disk: 4xx replies, nothing half-stored, no crash, and recovery."""
import shutil
import smtplib
import subprocess

import pytest

from conftest import Relay, queued_id


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_gives_4xx_and_keeps_every_acknowledged_message(small_disk, tmp_path):
    relay = Relay(tmp_path / "relay")
    relay.queue_path = small_disk / "queue"
    relay.config_path.write_text(relay.config_path.read_text().replace(
        str(tmp_path / "relay" / "queue"), str(relay.queue_path)))
    relay.start()
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
