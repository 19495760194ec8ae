"""Open-relay tricks against the real binary, as relay scanners try them (nmap's
smtp-open-relay): source routing in the local part to an accepted domain, from a client without
relay rights, is refused with 550 5.7.1; a site that needs it can allow it."""
import smtplib

import pytest

ROUTED = ["user%other.test@local.test", '"user@other.test"@local.test', "other.test!user@local.test",
          '"user%other.test"@local.test', '"user@other.test"@LOCAL.TEST',
          "user%other.test%local.test@local.test"]


def rcpt_replies(port, recipients):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("scanner.test")
        assert smtp.mail("probe@scanner.test")[0] == 250
        return [smtp.rcpt(recipient) for recipient in recipients]


@pytest.mark.parametrize("allow", [False, True])
def test_source_routed_recipients_from_strangers(make_relay, allow):
    # 127.0.0.1 is outside relay.networks: a stranger that may send to local.test only.
    domains = '["local.test"]' + ("\nallow_untrusted_routing = true" if allow else "")
    relay = make_relay(relay_networks='["10.255.255.0/24"]', relay_domains=domains)
    replies = rcpt_replies(relay.smtp_port, ROUTED + ["user@local.test", "user@other.test"])
    for address, (code, text) in zip(ROUTED, replies):
        if allow:
            assert code == 250, address
        else:
            assert (code, text[:5]) == (550, b"5.7.1"), address
    assert replies[-2][0] == 250  # a plain local recipient
    assert replies[-1][0] == 554  # a foreign one: no relay for strangers either way
