// The config's value syntaxes: sizes ("25MiB"), durations ("5m"), rates ("50/s") and addresses
// ("host:port").
// Any thread; no state.
#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

#include "dns/ip_address.hpp"
#include "mta/common/ascii.hpp"
#include "mta/config/config.hpp"

namespace relayq::mta {

namespace {

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// Consumes the leading decimal digits of `text`; nullopt when there are none or they overflow.
std::optional<std::uint64_t> take_number(std::string_view& text) {
  std::uint64_t value = 0;
  // from_chars takes no sign or space for unsigned types, so this reads digits only.
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc()) return std::nullopt;
  text.remove_prefix(end - text.data());
  return value;
}

std::uint64_t checked_multiply(std::uint64_t a, std::uint64_t b, std::string_view text) {
  std::uint64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product))
    throw std::invalid_argument(quoted(text) + " is too large");
  return product;
}

}  // namespace

std::uint64_t parse_size(std::string_view text) {
  const auto invalid = [&] {
    return std::invalid_argument("not a size: " + quoted(text) +
                                 ": expected bytes, or a number with K, M, G, KiB, MiB or GiB");
  };
  std::string_view unit = text;
  const auto number = take_number(unit);
  if (!number) throw invalid();
  // "25 MiB" reads well too, but the space must be followed by a unit.
  const auto after_spaces = unit.find_first_not_of(' ');
  if (after_spaces == std::string_view::npos && !unit.empty()) throw invalid();
  unit.remove_prefix(std::min(after_spaces, unit.size()));

  // K, KB and KiB all mean 1024: nobody sizes mail in powers of ten on purpose.
  if (unit.size() == 3 && equals_ignore_case(unit.substr(1), "iB")) {
    unit.remove_suffix(2);
  } else if (!unit.empty() && equals_ignore_case(unit.substr(unit.size() - 1), "B")) {
    unit.remove_suffix(1);
  }
  int shift = 0;  // bytes when there is no unit
  if (equals_ignore_case(unit, "K")) {
    shift = 10;
  } else if (equals_ignore_case(unit, "M")) {
    shift = 20;
  } else if (equals_ignore_case(unit, "G")) {
    shift = 30;
  } else if (!unit.empty()) {
    throw invalid();
  }
  return checked_multiply(*number, std::uint64_t{1} << shift, text);
}

// A sequence of number-unit pairs ("1h30m"), or a bare number of seconds.
Duration parse_duration(std::string_view text) {
  const auto invalid = [&] {
    return std::invalid_argument(
        "not a duration: " + quoted(text) +
        ": expected seconds, or numbers with ms, s, m, h or d (\"1h30m\")");
  };
  // Longest name first, so that "ms" is not read as "m".
  static constexpr std::pair<std::string_view, std::uint64_t> kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max());

  if (text.empty()) throw invalid();
  const bool bare_seconds = std::all_of(text.begin(), text.end(), is_digit);
  std::uint64_t total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto number = take_number(rest);
    if (!number) throw invalid();
    std::uint64_t unit_ms = 1000;
    if (!bare_seconds) {
      const auto unit = std::find_if(std::begin(kUnits), std::end(kUnits), [&](const auto& u) {
        return rest.starts_with(u.first) &&
               (rest.size() == u.first.size() || is_digit(rest[u.first.size()]));
      });
      if (unit == std::end(kUnits)) throw invalid();
      rest.remove_prefix(unit->first.size());
      unit_ms = unit->second;
    }
    if (__builtin_add_overflow(total, checked_multiply(*number, unit_ms, text), &total) ||
        total > kMax) {
      throw std::invalid_argument(quoted(text) + " is too large");
    }
  }
  return Duration(static_cast<Duration::rep>(total));
}

HostPort parse_host_port(std::string_view text) {
  const std::string expected = ": expected host:port, or [IPv6]:port";
  HostPort result;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
      throw std::invalid_argument("not an address: " + quoted(text) + expected);
    }
    result.host = text.substr(1, close - 1);
    const auto address = dns::IpAddress::parse(result.host);
    if (!address || !address->v6) {
      throw std::invalid_argument("not an IPv6 address: " + quoted(result.host));
    }
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      throw std::invalid_argument("not an address: " + quoted(text) + expected);
    }
    result.host = text.substr(0, colon);
    if (result.host.find(':') != std::string::npos) {
      throw std::invalid_argument("an IPv6 address needs brackets: " + quoted(text) + expected);
    }
    const bool name_chars = std::all_of(result.host.begin(), result.host.end(),
                                        [](char c) { return is_alnum(c) || c == '.' || c == '-'; });
    // All digits and dots must be a real IPv4 address: "10.0.0.300" is a typo, not a name.
    const bool numeric = std::all_of(result.host.begin(), result.host.end(),
                                     [](char c) { return is_digit(c) || c == '.'; });
    if (!name_chars || (numeric && !dns::IpAddress::parse(result.host))) {
      throw std::invalid_argument("not a host name or IP address: " + quoted(result.host));
    }
    port = text.substr(colon + 1);
  }
  std::string_view digits = port;
  const auto number = take_number(digits);
  if (!number || !digits.empty() || *number == 0 || *number > 65535) {
    throw std::invalid_argument("not a port (1-65535): " + quoted(port));
  }
  result.port = static_cast<std::uint16_t>(*number);
  return result;
}

Nexthop parse_nexthop(std::string_view text) {
  Nexthop result;
  if (!text.starts_with("lmtp:")) {
    result.address = parse_host_port(text);
    return result;
  }
  result.lmtp = true;
  text.remove_prefix(5);
  if (!text.starts_with("unix:")) {
    result.address = parse_host_port(text);
    return result;
  }
  text.remove_prefix(5);
  // sockaddr_un's sun_path holds 108 bytes with the NUL.
  if (!text.starts_with('/') || text.size() > 107) {
    throw std::invalid_argument("not a unix socket path (absolute, at most 107 bytes): " +
                                quoted(text));
  }
  result.unix_path = text;
  return result;
}

// A whole number of events per second, minute or hour: what providers publish their limits in.
double parse_rate(std::string_view text) {
  const auto invalid = [&] {
    return std::invalid_argument("not a rate: " + quoted(text) +
                                 ": expected a number of messages per s, m or h (\"50/s\")");
  };
  std::string_view unit = text;
  const auto number = take_number(unit);
  if (!number || *number == 0 || !unit.starts_with('/')) throw invalid();
  unit.remove_prefix(1);
  const double count = static_cast<double>(*number);
  if (unit == "s") return count;
  if (unit == "m") return count / 60;
  if (unit == "h") return count / 3600;
  throw invalid();
}

}  // namespace relayq::mta
