"""relayq under test: its binary on a bench config, started and stopped around a load."""
import shutil
import subprocess
import urllib.request
from pathlib import Path

from common import free_port, tree_cpu_seconds, wait_for_port, wait_until


class Relayq:
    """relayq relaying everything to `smarthost` (default: a closed port, so nothing leaves).

    keep_queue=True reuses the queue of an earlier run (the restart scenarios); `extra`
    is appended to the config file; `listener_extra` goes into the one [[listener]] table
    (e.g. 'command_timeout = "30m"'). `tls` sets TLS up, each key optional: "cert" and "key"
    (PEM chain and key: every listener then offers STARTTLS), "min_version", "ciphers", "delivery"
    (delivery.tls: off, opportunistic or required). `relay_networks` and `relay_domains` are
    the [relay] table's values as TOML text (default: 127.0.0.0/8 has relay rights)."""
    name = "relayq"

    def __init__(self, binary, workdir, smarthost="127.0.0.1:9", keep_queue=False, extra="",
                 listener_extra="", tls=None, relay_networks='["127.0.0.0/8"]', relay_domains="[]"):
        self.binary, self.workdir, self.smarthost = binary, Path(workdir), smarthost
        self.relay_networks, self.relay_domains = relay_networks, relay_domains
        self.tls = tls
        self.keep_queue, self.extra, self.listener_extra = keep_queue, extra, listener_extra
        self.queue = self.workdir / "queue"

    def __enter__(self):
        self.port = free_port()
        self.metrics_port = free_port()
        if not self.keep_queue:
            shutil.rmtree(self.queue, ignore_errors=True)
        config = self.workdir / "relayq.toml"
        delivery_tls, tls_table = "", ""
        if self.tls:
            if self.tls.get("delivery"):
                delivery_tls = f'tls = "{self.tls["delivery"]}"'
            for key in ("cert", "key", "min_version", "ciphers"):
                if self.tls.get(key):
                    tls_table += f'{key} = "{self.tls[key]}"\n'
            if tls_table:
                tls_table = "[tls]\n" + tls_table
        config.write_text(f"""
[server]
hostname = "bench.test"
[[listener]]
address = "127.0.0.1:{self.port}"
max_connections = 100000
{self.listener_extra}
[queue]
path = "{self.queue}"
[relay]
networks = {self.relay_networks}
domains = {self.relay_domains}
[metrics]
listen = "127.0.0.1:{self.metrics_port}"
[admin]
listen = "127.0.0.1:{free_port()}"
[delivery]
smarthost = "{self.smarthost}"
max_connections_per_destination = 50
{delivery_tls}
{self.extra}
{tls_table}""")
        self.log = open(self.workdir / "relayq.log", "ab")
        self.process = subprocess.Popen([self.binary, "serve", "-c", str(config)], stderr=self.log)
        try:
            wait_for_port(self.port, process=self.process)
        except ProcessLookupError:
            self.log.close()
            tail = (self.workdir / "relayq.log").read_text(errors="replace").splitlines()[-3:]
            raise RuntimeError(f"relayq ended at start (exit {self.process.returncode}): {tail}") from None
        self.cpu_start = self.cpu_seconds()
        return self

    def metric(self, name):
        """The sum of every sample of one metric family (labels ignored)."""
        total = 0.0
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name) and line[len(name)] in " {":
                    total += float(line.split()[-1])
        return total

    def wait_delivered(self, count, timeout=900):
        wait_until(lambda: self.metric("relayq_recipients_delivered_total") >= count, timeout,
                   f"relayq delivered fewer than {count}")

    def cpu_seconds(self):
        return tree_cpu_seconds(self.process.pid)

    def __exit__(self, *exc):
        self.cpu_used = self.cpu_seconds() - self.cpu_start
        self.process.terminate()
        self.process.wait(timeout=120)
        self.log.close()
