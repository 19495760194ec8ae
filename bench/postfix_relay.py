"""Postfix as the reference relay: a private instance (its own config, queue and log under the
bench's work folder) that accepts from loopback and relays everything to a relayhost.

Postfix syncs each queue file to disk before its 250 (cleanup's fsync), like relayq, so the
two do the same durable work. The settings are Debian's defaults except what a relay of this
load needs: no local delivery, no chroot (the instance lives in a private folder), enough
smtpd processes for 200 sessions, and 50 parallel deliveries to the relayhost (relayq's
max_connections_per_destination in the bench)."""
import shutil
import subprocess
from pathlib import Path

from common import free_port, sudo, tree_cpu_seconds, wait_for_port

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
local     unix - n n - - local
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
myhostname = postfix.bench.test
mydestination =
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
relayhost = [127.0.0.1]:{sink}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
biff = no
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
default_process_limit = 300
smtp_destination_concurrency_limit = 50
"""

# With tls: Debian's TLS defaults (the main.cf its package writes: smtpd_tls_security_level =
# may, a client session cache) on the bench's certificate; outbound at `outbound` (encrypt:
# mandatory TLS to the relayhost, unverified, like relayq's delivery.tls = "required").
# reuse=True adds smtp_tls_connection_reuse (deliveries share TLS connections through tlsproxy),
# which Debian leaves off.
TLS_MAIN_CF = """\
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtp_tls_security_level = {outbound}
smtp_tls_session_cache_database = btree:${{data_directory}}/smtp_scache
smtp_tls_connection_reuse = {reuse}
"""

TLS_MASTER_CF = """\
tlsmgr    unix - - n 1000? 1 tlsmgr
tlsproxy  unix - - n - 0 tlsproxy
"""


class PostfixRelay:
    name = "Postfix"

    def __init__(self, workdir, smarthost, tls=None):
        """tls: None, or {"cert": PEM chain, "key": PEM key, "outbound": smtp_tls_security_level
        (default encrypt), "reuse": smtp_tls_connection_reuse (default False)}."""
        self.root = Path(workdir) / "postfix"
        self.sink_port = smarthost.rsplit(":", 1)[1]
        self.tls = tls

    def _postfix(self, *command):
        subprocess.run(sudo() + ["postfix", "-c", str(self.root / "etc"), *command], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self):
        subprocess.run(sudo() + ["rm", "-rf", str(self.root)], check=True)
        for folder in ("etc", "spool", "data"):
            (self.root / folder).mkdir(parents=True)
        self.port = free_port()
        master_cf = MASTER_CF.format(port=self.port)
        main_cf = MAIN_CF.format(root=self.root, sink=self.sink_port)
        if self.tls:
            master_cf += TLS_MASTER_CF
            main_cf += TLS_MAIN_CF.format(cert=self.tls["cert"], key=self.tls["key"],
                                          outbound=self.tls.get("outbound", "encrypt"),
                                          reuse="yes" if self.tls.get("reuse") else "no")
        (self.root / "etc" / "master.cf").write_text(master_cf)
        (self.root / "etc" / "main.cf").write_text(main_cf)
        subprocess.run(sudo() + ["chown", "postfix", str(self.root / "data")], check=True)
        self._postfix("start")
        wait_for_port(self.port)
        self.master = int((self.root / "spool" / "pid" / "master.pid").read_text().split()[0])
        self.cpu_start = self.cpu_seconds()
        return self

    def cpu_seconds(self):
        return tree_cpu_seconds(self.master)

    def __exit__(self, *exc):
        self.cpu_used = self.cpu_seconds() - self.cpu_start
        self._postfix("stop")
        subprocess.run(sudo() + ["rm", "-rf", str(self.root)], check=True)
