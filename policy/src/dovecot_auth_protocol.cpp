// The lines of Dovecot's auth client protocol (declared in dovecot_auth_protocol.hpp): built and
// read, with no I/O. Any thread.
#include "policy/dovecot_auth_protocol.hpp"

#include <string.h>  // explicit_bzero

#include <vector>

#include "base64.hpp"

namespace relayq::policy::dovecot {
namespace {

constexpr char kEscape = '\001';
// A command we do not know is named in the log, cut to this: it comes from the other side.
constexpr std::size_t kMaxQuotedCommand = 32;

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab - start));
    if (tab == std::string_view::npos) return fields;
    start = tab + 1;
  }
}

PasswordCheck unavailable(std::string detail) {
  return {PasswordVerdict::unavailable, std::move(detail)};
}

}  // namespace

std::string tab_unescape(std::string_view field) {
  std::string text;
  text.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] != kEscape) {
      text += field[i];
      continue;
    }
    if (++i == field.size()) break;  // a lone escape at the end stands for nothing
    switch (field[i]) {
      case '1':
        text += kEscape;
        break;
      case 't':
        text += '\t';
        break;
      case 'r':
        text += '\r';
        break;
      case 'n':
        text += '\n';
        break;
      default:
        text += field[i];
    }
  }
  return text;
}

std::string client_handshake(std::uint32_t pid) {
  return "VERSION\t1\t2\nCPID\t" + std::to_string(pid) + "\n";
}

ServerHandshake::Status ServerHandshake::read_line(std::string_view line) {
  const std::vector<std::string_view> fields = split_fields(line);
  const std::string_view command = fields[0];
  if (command == "VERSION") {
    // The major version is the protocol; a minor version only adds to it.
    if (fields.size() < 2 || fields[1] != "1") {
      error_ = "Dovecot speaks auth protocol version " +
               std::string(fields.size() < 2 ? "(none)" : fields[1].substr(0, 8)) +
               ", relayq speaks 1";
      return Status::failed;
    }
    version_ = true;
  } else if (command == "MECH") {
    if (fields.size() >= 2 && tab_unescape(fields[1]) == "PLAIN") plain_ = true;
  } else if (command == "DONE") {
    if (!version_) {
      error_ = "Dovecot's handshake ended without a VERSION line";
      return Status::failed;
    }
    if (!plain_) {
      error_ = "Dovecot does not offer PLAIN: add it to its auth_mechanisms";
      return Status::failed;
    }
    return Status::done;
  }
  return Status::more;
}

std::string auth_request(std::uint32_t id, std::string_view user, std::string_view password,
                         const PasswordClient& client) {
  std::string plain;  // RFC 4616: authzid (none), NUL, authcid, NUL, password
  plain.reserve(user.size() + password.size() + 2);
  plain += '\0';
  plain += user;
  plain += '\0';
  plain += password;
  std::string response = base64(plain);
  explicit_bzero(plain.data(), plain.size());

  std::string line = "AUTH\t" + std::to_string(id) + "\tPLAIN\tservice=smtp\tnologin\tno-penalty";
  line += "\trip=" + client.address.to_string();
  if (client.local) line += "\tlip=" + client.local->to_string();
  line += "\tsecured\tresp=";  // resp= last: Dovecot ignores whatever follows it
  line += response;
  line += '\n';
  explicit_bzero(response.data(), response.size());
  return line;
}

PasswordCheck read_auth_reply(std::string_view line, std::uint32_t id) {
  const std::vector<std::string_view> fields = split_fields(line);
  const std::string_view command = fields[0];
  if (command != "OK" && command != "FAIL" && command != "CONT") {
    return unavailable("Dovecot sent a line relayq does not know: \"" +
                       tab_unescape(command.substr(0, kMaxQuotedCommand)) + "\"");
  }
  if (fields.size() < 2 || fields[1] != std::to_string(id))
    return unavailable("Dovecot answered " + std::string(command) + " for another request");
  if (command == "OK") return {PasswordVerdict::accepted, {}};
  if (command == "CONT")
    return unavailable("Dovecot asked for more (CONT) than PLAIN's one response");

  bool temporary = false;
  std::string reason;
  for (std::size_t i = 2; i < fields.size(); ++i) {
    const std::string parameter = tab_unescape(fields[i]);
    // "temp" is how Dovecot before 2.3 said temp_fail.
    if (parameter == "code=temp_fail" || parameter == "temp") temporary = true;
    if (parameter.starts_with("reason=")) reason = parameter.substr(7);
  }
  if (!temporary) return {PasswordVerdict::refused, {}};
  return unavailable("Dovecot failed temporarily" + (reason.empty() ? "" : ": " + reason));
}

}  // namespace relayq::policy::dovecot
