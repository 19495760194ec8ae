"""Haraka under test: the Node.js MTA from the npm registry, set up as a queueing outbound relay.

Clients on 127.0.0.0/8 may relay (the relay plugin's ACL). A relayed message goes through
Haraka's own outbound: it is written to Haraka's disk queue, answered 250, and delivered
later by outbound to the smarthost, which a small local plugin returns from the get_mx hook
for every domain. It is not smtp_forward: that plugin, even with enable_outbound=true,
forwards within the client's DATA, a synchronous proxy rather than a queue.

Durability, as read in Haraka 3.3.4's outbound/index.js (process_delivery): the queue file is
written through haraka-utils' FsyncWriteStream, which fsyncs the file before closing it; it
is then renamed from its temporary name and only then is 250 sent. The queue directory is
never fsynced, so the file's data is on disk before 250 but its rename may not be yet.
"""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from common import apt_install, free_port, tree_cpu_seconds, wait_for_port, wait_until

HARAKA_PACKAGE = "Haraka@3"

# Routes every outbound delivery to the bench's smarthost, and skips the reverse DNS lookup
# Haraka makes for each connection: the bench machine may have no DNS to ask.
SMARTHOST_PLUGIN = """\
'use strict'

exports.register = function () {
    const [host, port] = this.config.get('bench_smarthost').split(':')
    this.mx = { priority: 0, exchange: host, port: Number(port) }
}

exports.hook_lookup_rdns = function (next) {
    next(OK, 'localhost')
}

exports.hook_get_mx = function (next) {
    next(OK, this.mx)
}
"""


def ensure_haraka(workdir):
    """Installs Haraka from npm under workdir once; returns the path of its `haraka` script."""
    install = Path(workdir) / "haraka-npm"
    script = install / "node_modules" / "Haraka" / "bin" / "haraka"
    if script.exists():
        return script
    # The machine image ships Node 20, which Haraka 3.3 needs; Debian 12's own nodejs (18)
    # is only the fallback for a machine without any.
    if not (shutil.which("node") and shutil.which("npm")):
        apt_install("nodejs", "npm")
    install.mkdir(parents=True, exist_ok=True)
    # Without a package.json here npm would install into whichever project encloses workdir.
    (install / "package.json").write_text(json.dumps({"private": True}) + "\n")
    # --ignore-scripts: the only install script is the optional syslog plugin's native
    # build, which the bench does not load.
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", HARAKA_PACKAGE],
                   cwd=install, check=True, stdout=subprocess.DEVNULL)
    return script


class HarakaRelay:
    """Haraka relaying everything it accepts from loopback to `smarthost` ("host:port")."""
    name = "Haraka"

    def __init__(self, workdir, smarthost):
        self.workdir, self.smarthost = Path(workdir), smarthost
        self.script = ensure_haraka(self.workdir)
        self.home = self.workdir / "haraka"

    def _write_config(self):
        shutil.rmtree(self.home, ignore_errors=True)
        config = self.home / "config"
        # Haraka's own defaults first: a file given here replaces its default whole, so the
        # files the bench leaves alone (connection.ini: 25 MiB messages at most) stay complete.
        shutil.copytree(self.script.parents[1] / "config", config)
        (self.home / "plugins").mkdir()
        (self.home / "queue").mkdir()
        (self.home / "plugins" / "bench_smarthost.js").write_text(SMARTHOST_PLUGIN)
        files = {
            "bench_smarthost": self.smarthost,
            "me": "bench.test",
            # Only what relaying needs: none of the DNS-based checks of the default list.
            "plugins": "relay\nbench_smarthost",
            # force_routing would route through relay_dest_domains.ini, which the bench lacks.
            "relay.ini": "[relay]\nacl=true\nforce_routing=false",
            "relay_acl_allow": "127.0.0.0/8",
            # One worker per core (the master only hands out connections); each worker
            # delivers what it queued.
            "smtp.ini": f"listen=127.0.0.1:{self.port}\nnodes=cpus",
            # smtp-sink offers no STARTTLS, and relayq does no TLS to its smarthost either.
            "outbound.ini": "concurrency_max=100\nenable_tls=false",
            # NOTICE would log six lines per message; WARN keeps problems only.
            "log.ini": "[main]\nlevel=warn\ntimestamps=true\nformat=default",
        }
        for name, text in files.items():
            (config / name).write_text(text + "\n")

    def __enter__(self):
        self.port = free_port()
        self._write_config()
        self.log = open(self.workdir / "haraka.log", "ab")
        # Its own session, so that stopping reaches the cluster workers as well as the master.
        self.process = subprocess.Popen(["node", str(self.script), "-c", str(self.home)],
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port)
        self._wait_started()
        self.cpu_start = self.cpu_seconds()
        return self

    def _wait_started(self):
        # The port opens once the first cluster worker listens, while the others still load
        # their code: wait until the tree idles, so that start-up CPU is not billed to the load.
        previous = self.cpu_seconds()

        def idle():
            nonlocal previous
            time.sleep(0.25)
            current = self.cpu_seconds()
            settled, previous = current - previous < 0.02, current
            return settled

        wait_until(idle, 60, "Haraka kept busy after starting")

    def cpu_seconds(self):
        return tree_cpu_seconds(self.process.pid)

    def __exit__(self, *exc):
        self.cpu_used = self.cpu_seconds() - self.cpu_start
        # Haraka traps SIGINT only (SIGTERM too when it is pid 1): SIGTERM ends every process
        # of the group at once, as nothing waits in its queue by then.
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=120)
        self.log.close()
