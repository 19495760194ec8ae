#!/usr/bin/python3
"""The protocol cores' objects call no event loop, logger, HTTP library, clock or thread.

The include check (check_dependencies.py) reads the sources; this one reads what the compiled
relayq_smtp archive needs from outside (nm --undefined-only), so that a call reaching libuv,
spdlog or a clock through some other header is caught too. Usage: check_smtp_symbols.py ARCHIVE"""
import re
import subprocess
import sys

FORBIDDEN = {
    "libuv": r"^uv_",
    "c-ares": r"^ares_",
    "spdlog": r"\bspdlog::",
    "fmt": r"\bfmt::",
    "httplib": r"\bhttplib::",
    "prometheus": r"\bprometheus::",
    "RocksDB": r"\brocksdb::",
    "a thread": r"\bstd::thread\b|^pthread_create$|\bstd::jthread\b",
    "a clock": r"_clock::now\(|^clock_gettime$|^gettimeofday$|^time$",
}


def main():
    archive = sys.argv[1]
    output = subprocess.run(["nm", "-C", "--undefined-only", archive], check=True,
                            capture_output=True, text=True).stdout
    symbols = sorted({line.split(" U ", 1)[1].strip() for line in output.splitlines() if " U " in line})
    breaches = [(what, symbol) for symbol in symbols for what, pattern in FORBIDDEN.items()
                if re.search(pattern, symbol)]
    for what, symbol in breaches:
        print(f"relayq_smtp needs {what}: {symbol}")
    print(f"{len(symbols)} symbols relayq_smtp needs from outside, {len(breaches)} forbidden")
    return 1 if breaches or not symbols else 0


if __name__ == "__main__":
    sys.exit(main())
