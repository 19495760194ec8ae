// UsersFile: reading the "user:hash" lines of the submission users file (config thread), and
// checking a password against a hash with libxcrypt's crypt_r (worker threads, off the loop).
#include "policy/users_file.hpp"

#include <crypt.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace relayq::policy {
namespace {

constexpr std::string_view kSha512 = "$6$";
constexpr std::string_view kYescrypt = "$y$";
// The checksum (last '$' field) of each accepted scheme: its length in crypt's base-64.
constexpr std::size_t kSha512Checksum = 86;
constexpr std::size_t kYescryptChecksum = 43;
// crypt_r silently cuts a longer SHA-512 salt, so such a hash could never match: refuse it.
constexpr std::size_t kSha512MaxSalt = 16;
// The dummy setting when the file lists nobody: yescrypt at libxcrypt's default cost.
constexpr std::string_view kFallbackSetting = "$y$j9T$IgqKbx6FqRr3ECEdIzl.T.";
constexpr std::string_view kHowToHash =
    "make one with `mkpasswd -m yescrypt` (Debian package whois) or `openssl passwd -6`";

std::string at(const std::string& path, std::size_t line) {
  return path + ":" + std::to_string(line) + ": ";
}

bool is_crypt_base64(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '/';
}

std::vector<std::string_view> split_dollars(std::string_view hash) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = hash.find('$', start);
    fields.push_back(hash.substr(start, end - start));
    if (end == std::string_view::npos) return fields;
    start = end + 1;
  }
}

// What a refused hash looks like, for the message. Only well-known scheme prefixes are named:
// anything else may be a plain-text password, which must not end up in a log.
std::string refused_kind(std::string_view hash) {
  if (hash.starts_with("$1$")) return "an MD5 (\"$1$\") hash, which is weak";
  if (hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2x$") ||
      hash.starts_with("$2y$"))
    return "a bcrypt (\"$2b$\") hash, which relayq does not accept";
  if (hash.starts_with("$5$")) return "a SHA-256 (\"$5$\") hash, which relayq does not accept";
  if (hash.starts_with("$")) return "a crypt(3) scheme relayq does not accept";
  return "not a crypt(3) hash (a plain-text password, or an old DES hash)";
}

// Why `hash` cannot be used, or "" when it is a well-formed SHA-512 or yescrypt hash. Checked
// here rather than at the first login: a cut or mistyped hash would otherwise just never match.
std::string hash_problem(std::string_view hash) {
  const std::string accepted =
      "only SHA-512 (\"$6$...\") and yescrypt (\"$y$...\") crypt(3) hashes are accepted: ";
  if (hash.empty()) return "no password hash; " + accepted + std::string(kHowToHash);
  const bool sha512 = hash.starts_with(kSha512);
  if (!sha512 && !hash.starts_with(kYescrypt))
    return "the password is " + refused_kind(hash) + "; " + accepted + std::string(kHowToHash);

  // "$6$[rounds=N$]salt$checksum" or "$y$params$salt$checksum".
  const std::vector<std::string_view> fields = split_dollars(hash);
  bool well_formed = false;
  if (sha512) {
    const bool rounds = fields.size() == 5 && fields[2].starts_with("rounds=");
    well_formed = (fields.size() == 4 || rounds) &&
                  fields[fields.size() - 2].size() <= kSha512MaxSalt &&
                  fields.back().size() == kSha512Checksum;
  } else {
    well_formed =
        fields.size() == 5 && !fields[2].empty() && fields.back().size() == kYescryptChecksum;
  }
  for (char c : fields.back()) well_formed = well_formed && is_crypt_base64(c);
  // libxcrypt's own check of the parameters (rounds, yescrypt cost), without hashing anything.
  const std::string copy(hash);
  well_formed = well_formed && crypt_checksalt(copy.c_str()) == CRYPT_SALT_OK;
  if (!well_formed)
    return std::string("the ") + (sha512 ? "SHA-512" : "yescrypt") +
           " hash is damaged (cut short or mistyped); " + std::string(kHowToHash);
  return "";
}

// The hash without its checksum: hashing with it costs what checking against the hash costs.
std::string setting_of(const std::string& hash) {
  return hash.substr(0, hash.rfind('$'));
}

// Equal without an early exit, so the time taken does not tell how much of the hash matched.
bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;  // the length comes from the setting, not a secret
  unsigned char difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

// crypt_r(password, hash) == hash. crypt_data is 32 KiB: on the heap, one per call, so that
// worker threads share nothing; wiped afterwards, as it held password-derived state.
bool crypt_matches(std::string_view password, const std::string& hash) {
  std::string key(password);                   // crypt_r wants a C string
  auto data = std::make_unique<crypt_data>();  // zeroed, as crypt_r requires on first use
  const char* result = crypt_r(key.c_str(), hash.c_str(), data.get());
  // On failure libxcrypt returns a "*0"-like token, which never equals a valid hash.
  const bool equal = result != nullptr && constant_time_equal(result, hash);
  explicit_bzero(data.get(), sizeof *data);
  explicit_bzero(key.data(), key.size());
  return equal;
}

}  // namespace

std::shared_ptr<const UsersFile> UsersFile::load(const std::string& path) {
  const auto cannot_read = [&](int error) {
    return UsersFileError(path + ": cannot read: " + std::generic_category().message(error));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw cannot_read(errno);
  std::string text;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {  // e.g. EISDIR: open() succeeds on a directory
      const int error = errno;
      ::close(fd);
      throw cannot_read(error);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  auto users = parse(text, path);
  explicit_bzero(text.data(), text.size());  // a file of hashes, but no need to leave it around
  return users;
}

std::shared_ptr<const UsersFile> UsersFile::parse(std::string_view text, const std::string& path) {
  std::shared_ptr<UsersFile> users(new UsersFile());  // private constructor: no make_shared
  std::map<std::string_view, std::size_t> first_line;
  std::string first_of[2];  // the first listed hash of each scheme: [0] SHA-512, [1] yescrypt
  std::size_t count[2] = {0, 0};

  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    const std::size_t last = line.find_last_not_of(" \t\r\f\v");
    line = last == std::string_view::npos ? std::string_view() : line.substr(0, last + 1);
    if (line.empty() || line.front() == '#') continue;

    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      throw UsersFileError(at(path, number) + "expected \"user:hash\", found no ':'");
    const std::string_view user = line.substr(0, colon);
    const std::string_view hash = line.substr(colon + 1);
    if (user.empty()) throw UsersFileError(at(path, number) + "empty user name before ':'");
    if (const auto seen = first_line.find(user); seen != first_line.end())
      throw UsersFileError(at(path, number) + "user \"" + std::string(user) +
                           "\" is listed twice (first on line " + std::to_string(seen->second) +
                           ")");
    if (const std::string problem = hash_problem(hash); !problem.empty())
      throw UsersFileError(at(path, number) + "user \"" + std::string(user) + "\": " + problem);

    first_line.emplace(user, number);
    const int scheme = hash.starts_with(kSha512) ? 0 : 1;
    if (count[scheme]++ == 0) first_of[scheme] = std::string(hash);
    users->hashes_.emplace(std::string(user), std::string(hash));
  }

  if (count[0] == 0 && count[1] == 0)
    users->dummy_setting_ = std::string(kFallbackSetting);
  else
    users->dummy_setting_ = setting_of(first_of[count[0] > count[1] ? 0 : 1]);
  return users;
}

bool UsersFile::verify(std::string_view user, std::string_view password) const {
  // crypt_r would stop at the NUL, so "right\0anything" would pass for "right". Refusing before
  // the look-up keeps the timing the same for known and unknown users.
  if (password.find('\0') != std::string_view::npos) return false;
  const auto found = hashes_.find(user);
  const bool known = found != hashes_.end();
  // An unknown user's password is hashed all the same, with the dummy setting; that result
  // (a hash of another salt, or of a bare setting) is thrown away.
  const bool matches = crypt_matches(password, known ? found->second : dummy_setting_);
  return known && matches;
}

PasswordCheck UsersFile::check(std::string_view user, std::string_view password,
                               const PasswordClient&) const {
  return {verify(user, password) ? PasswordVerdict::accepted : PasswordVerdict::refused, {}};
}

std::size_t UsersFile::size() const {
  return hashes_.size();
}

}  // namespace relayq::policy
