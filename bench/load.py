"""The load: Postfix's smtp-source, and the null sink at the far end (Postfix's smtp-sink)."""
import os
import shutil
import subprocess
import threading
import time

from common import apt_install, free_port, sudo, wait_for_port


def ensure_postfix():
    """smtp-source, smtp-sink and the Postfix reference relay all come from Debian's postfix."""
    if shutil.which("smtp-source") and shutil.which("smtp-sink") and shutil.which("postfix"):
        return
    subprocess.run(sudo() + ["debconf-set-selections"],
                   input=b"postfix postfix/main_mailer_type select No configuration\n", check=True)
    apt_install("postfix")


def smtp_source(port, sessions, messages, size, sender="bench@example.test", recipient="sink@example.org"):
    """Sends `messages` messages of `size` bytes over `sessions` parallel sessions that each
    reuse their connection; returns the seconds it took until the last 250."""
    start = time.monotonic()
    subprocess.run(["smtp-source", "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size),
                    "-f", sender, "-t", recipient, f"127.0.0.1:{port}"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


class Sink:
    """smtp-sink on a free port: stores nothing and answers at once.

    With counting=True it reports messages received (its -c counters, read live from its
    output), which is how the end-to-end runs know every message arrived."""

    def __init__(self, counting=False):
        self.counting = counting
        self.messages = 0

    def __enter__(self):
        self.port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []  # smtp-sink refuses to run as root
        flags = ["-c"] if self.counting else []
        self.process = subprocess.Popen(["smtp-sink", *user, *flags, f"127.0.0.1:{self.port}", "1024"],
                                        stdout=subprocess.PIPE if self.counting else subprocess.DEVNULL)
        if self.counting:
            self.reader = threading.Thread(target=self._read_counters, daemon=True)
            self.reader.start()
        wait_for_port(self.port)
        return self

    def _read_counters(self):
        # Lines look like "sess=3 quit=2 mesg=1500\r"; only the newest matters.
        pending = b""
        while chunk := self.process.stdout.read1(65536):
            pending += chunk
            records = pending.split(b"\r")
            pending = records.pop()
            if records:
                for field in records[-1].split():
                    if field.startswith(b"mesg="):
                        self.messages = int(field[5:])

    def wait_messages(self, count, timeout=900):
        deadline = time.monotonic() + timeout
        while self.messages < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sink received {self.messages} of {count} messages")
            if self.process.poll() is not None:
                raise RuntimeError("smtp-sink ended")
            time.sleep(0.01)

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
