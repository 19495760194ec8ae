// SASL PLAIN and LOGIN over SMTP AUTH: base64 lines in, challenges or credentials out. The
// session's thread; no I/O. Base64 is OpenSSL's (EVP_EncodeBlock / EVP_DecodeBlock), with the
// strictness RFC 4954 asks for added here: the decoder itself accepts sloppy input.
#include "mta/smtp/auth_exchange.hpp"

#include <openssl/evp.h>

#include <algorithm>

#include "mta/common/ascii.hpp"

namespace relayq::mta {

namespace {

bool is_base64_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '+' || c == '/';
}

}  // namespace

std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  // Padding only at the end, at most two.
  const std::size_t data = text.find_last_not_of('=') + 1;
  const std::size_t padding = text.size() - data;
  if (padding > 2) return std::nullopt;
  if (!std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(data), is_base64_char))
    return std::nullopt;
  if (text.empty()) return std::string();
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - padding);  // the decoder counts padding as zeros
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<AuthExchange> AuthExchange::start(std::string_view mechanism) {
  if (equals_ignore_case(mechanism, "PLAIN")) return AuthExchange(Mechanism::plain);
  if (equals_ignore_case(mechanism, "LOGIN")) return AuthExchange(Mechanism::login);
  return std::nullopt;
}

AuthExchange::Step AuthExchange::begin(std::optional<std::string_view> initial_response) {
  expect_ = mechanism_ == Mechanism::plain ? Expect::plain_message : Expect::user;
  if (!initial_response) {
    // PLAIN: an empty challenge; LOGIN: "Username:" (draft-murchison-sasl-login).
    return {Step::Kind::challenge, mechanism_ == Mechanism::plain ? "" : "VXNlcm5hbWU6", {}, {}};
  }
  return respond(*initial_response == "=" ? std::string_view() : *initial_response);
}

AuthExchange::Step AuthExchange::respond(std::string_view line) {
  if (line == "*") return {Step::Kind::refused, {}, {}, Reply::auth_cancelled};
  const auto decoded = decode_base64(line);
  if (!decoded) return {Step::Kind::refused, {}, {}, Reply::auth_bad_base64};
  return take(*decoded);
}

AuthExchange::Step AuthExchange::take(std::string_view decoded) {
  switch (expect_) {
    case Expect::plain_message: {
      // authzid NUL authcid NUL passwd; we act for no one else, so authzid is empty or the
      // user's own name.
      const std::size_t first = decoded.find('\0');
      const std::size_t second =
          first == std::string_view::npos ? first : decoded.find('\0', first + 1);
      if (second == std::string_view::npos)
        return {Step::Kind::refused, {}, {}, Reply::auth_bad_base64};
      const std::string_view authzid = decoded.substr(0, first);
      Credentials credentials{std::string(decoded.substr(first + 1, second - first - 1)),
                              std::string(decoded.substr(second + 1))};
      if (credentials.user.empty() || (!authzid.empty() && authzid != credentials.user))
        return {Step::Kind::refused, {}, {}, Reply::auth_failed};
      return {Step::Kind::credentials, {}, std::move(credentials), {}};
    }
    case Expect::user:
      user_ = decoded;
      expect_ = Expect::password;
      return {Step::Kind::challenge, "UGFzc3dvcmQ6", {}, {}};  // "Password:"
    case Expect::password:
      return {Step::Kind::credentials, {}, Credentials{std::move(user_), std::string(decoded)}, {}};
  }
  return {};
}

}  // namespace relayq::mta
