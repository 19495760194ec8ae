#!/usr/bin/python3
"""The dependency rules of shared/ARCHITECTURE.md, checked on the #include lines of the tree.

- Each area of mta/ includes only the areas (and outside libraries) its row allows.
- smtp/ (the protocol cores) includes no libuv, spdlog, httplib, OpenSSL, clock or thread.
- The lower libraries (queue, policy, dns, metrics) never include mta.
- Unit tests include public headers only: nothing under a src/ folder.

Prints every breach with FILE:LINE and exits 1 when there is one."""
import re
import sys
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')

LOWER = {"queue", "policy", "dns", "metrics"}
# Which areas of mta/ each area may include ("mta/<area>/..." and its own private headers).
MAY_USE = {
    "common": {"common"},
    "config": {"common", "config"},
    "smtp": {"common", "smtp"},
    "net": {"common", "net"},
    "inbound": {"common", "config", "net", "smtp", "inbound"},
    "outbound": {"common", "net", "smtp", "outbound"},
    "delivery": {"common", "config", "net", "smtp", "outbound", "admin", "delivery"},
    "admin": {"common", "config", "admin"},
    "daemon": {"common", "config", "net", "smtp", "inbound", "outbound", "delivery", "admin",
               "daemon"},
    "cli": {"common", "config", "admin", "daemon", "cli"},
}
# Outside headers an area must not include, whatever it may use of the project. The protocol
# cores may use libcrypto's pure functions (base64 for AUTH), but TLS itself is net's.
FORBIDDEN = {
    "smtp": [r"^uv\.h$", r"^spdlog/", r"^fmt/", r"^httplib\.h$", r"^openssl/(ssl|bio|err)\.h$",
             r"^thread$",
             r"^mutex$", r"^condition_variable$", r"^future$", r"^ctime$", r"^sys/", r"^unistd\.h$",
             r"^metrics/metrics\.hpp$", r"^metrics/(counter|gauge|histogram)\.hpp$"],
    "common": [r"^uv\.h$", r"^httplib\.h$"],
    "config": [r"^uv\.h$", r"^httplib\.h$", r"^spdlog/"],
}
# Words that mean a clock or a thread of its own, in the protocol cores.
SMTP_FORBIDDEN_WORDS = re.compile(r"\b(system_clock|steady_clock|high_resolution_clock|"
                                  r"std::thread|std::jthread|std::mutex|time\(|uv_\w+|spdlog::)")


def area_of(path):
    """The mta area a file belongs to, from mta/include/mta/<area>/ or mta/src/<area>/."""
    parts = path.relative_to(ROOT / "mta").parts
    if parts[0] == "include":
        return parts[2] if len(parts) > 3 else None
    if parts[0] == "src":
        return parts[1] if len(parts) > 2 else None
    return None


def included_area(header, own_area):
    """The mta area a header belongs to, or None when it is not mta's."""
    if header.startswith("mta/"):
        return header.split("/")[1]
    first = header.split("/")[0]
    if first in MAY_USE and "/" in header:  # a private header of an area: "smtp/commands.hpp"
        return first
    return None


def sources(folder):
    return sorted(p for p in folder.rglob("*") if p.suffix in (".cpp", ".hpp", ".h"))


def main():
    breaches = []
    mta_files = sources(ROOT / "mta")
    for path in mta_files:
        area = area_of(path)
        if area is None:
            breaches.append(f"{path.relative_to(ROOT)}: not inside an area folder")
            continue
        if area not in MAY_USE:
            breaches.append(f"{path.relative_to(ROOT)}: unknown area {area!r}")
            continue
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            header = match.group(2)
            where = f"{path.relative_to(ROOT)}:{number}"
            used = included_area(header, area)
            if used is not None and used not in MAY_USE[area]:
                breaches.append(f"{where}: {area}/ may not include {header} ({used}/)")
            for pattern in FORBIDDEN.get(area, []):
                if re.search(pattern, header):
                    breaches.append(f"{where}: {area}/ may not include <{header}>")
        if area == "smtp":
            code = re.sub(r"//.*", "", text)
            for match in SMTP_FORBIDDEN_WORDS.finditer(code):
                number = code.count("\n", 0, match.start()) + 1
                breaches.append(f"{path.relative_to(ROOT)}:{number}: smtp/ keeps no clock, thread, "
                                f"loop or logger of its own ({match.group(0)})")
    for library in sorted(LOWER):
        for path in sources(ROOT / library):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                match = INCLUDE.match(line)
                if match and match.group(2).startswith("mta/"):
                    breaches.append(f"{path.relative_to(ROOT)}:{number}: {library}/ is below mta "
                                    f"and may not include {match.group(2)}")
    for path in sources(ROOT / "tests" / "unit"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = INCLUDE.match(line)
            if match and ("/src/" in match.group(2) or match.group(2).startswith("..")):
                breaches.append(f"{path.relative_to(ROOT)}:{number}: tests include public "
                                f"headers only, not {match.group(2)}")
    checked = len(mta_files)
    for breach in breaches:
        print(breach)
    print(f"{checked} mta files checked, {len(breaches)} breaches")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
