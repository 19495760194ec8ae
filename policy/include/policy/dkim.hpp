// DKIM (RFC 6376, RFC 8463 Ed25519, RFC 8301 key sizes) on libopendkim: which key records a
// message's signatures need, verifying them with answers fetched beforehand, and signing.
// Verifying and signing are CPU work for the worker pool; nothing here does DNS or touches a loop.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

#include "dns/resolver.hpp"

namespace relayq::policy {

enum class DkimResult {
  none,
  pass,
  fail,
  neutral,
  policy,
  temperror,
  permerror
};  // RFC 8601 words
std::string_view to_string(DkimResult result);

// One signature's outcome, for Authentication-Results (RFC 8601 "dkim=pass header.d=...
// header.s=... header.b=...").
struct DkimSignatureResult {
  DkimResult result = DkimResult::none;
  std::string domain;     // d=
  std::string selector;   // s=
  std::string algorithm;  // "rsa-sha256" | "ed25519-sha256" (as the signature names it)
  std::string b_prefix;   // the first 8 characters of b=, to tell signatures apart (RFC 6008)
  std::string reason;     // for logs when not pass: "body hash mismatch", "no key", ...
};

// The key records verification needs: "selector._domainkey.domain" (lower-case) for each
// DKIM-Signature (at most kMaxDkimSignatures, in header order), deduplicated. Signatures that
// cannot be verified whatever the record says (malformed tags, rsa-sha1) need none. Any thread;
// cheap (no crypto).
constexpr std::size_t kMaxDkimSignatures = 5;
std::vector<std::string> dkim_key_names(std::string_view message);

// The TXT answers fetched for those names (missing names count as temporary failures).
using DkimKeyRecords = std::map<std::string, dns::TextAnswer>;

// Verifies every DKIM-Signature (at most kMaxDkimSignatures, in header order) with the given key
// records: one result each. No signature: an empty vector. Any thread (worker pool); no DNS.
std::vector<DkimSignatureResult> dkim_verify(std::string_view message, const DkimKeyRecords& keys);

// The public key (p=) of a key record (RFC 6376 3.6.1), its whitespace removed, to tell which
// key a record publishes: "" when the record is not a tag-list, has no p= or revokes the key (an
// empty p=). Any thread.
std::string dkim_record_key(std::string_view record);

// A signing key for one domain and selector, loaded from a PEM file. Immutable after loading,
// shared by worker threads.
class DkimSigner {
 public:
  // RSA of 2048 bits or more (RFC 8301) or Ed25519 (RFC 8463), PKCS#8 or traditional PEM, not
  // encrypted. Throws std::runtime_error naming the file and the reason.
  static std::shared_ptr<const DkimSigner> load(std::string domain, std::string selector,
                                                const std::string& key_path);
  ~DkimSigner();
  DkimSigner(const DkimSigner&) = delete;
  DkimSigner& operator=(const DkimSigner&) = delete;

  const std::string& domain() const { return domain_; }
  const std::string& selector() const { return selector_; }
  std::string_view algorithm() const { return algorithm_; }  // "rsa-sha256" | "ed25519-sha256"

  // The DKIM-Signature header field to prepend to `message` (folded, ending in CRLF):
  // relaxed/relaxed, the usual header fields that are present, From: once more than present so
  // that one added later breaks it. Any thread; about the cost of the key's own signature.
  // Throws std::runtime_error if OpenSSL fails.
  std::string sign(std::string_view message) const;

  // The TXT record to publish at selector._domainkey.domain: "v=DKIM1; k=rsa; p=..." (RSA: base64
  // DER SubjectPublicKeyInfo; Ed25519: base64 of the raw 32-byte public key, RFC 8463).
  std::string dns_record() const { return dns_record_; }

 private:
  DkimSigner(std::string domain, std::string selector, std::string_view algorithm, EVP_PKEY* key,
             std::string dns_record);

  std::string domain_;
  std::string selector_;
  std::string_view algorithm_;
  // Parsed once; OpenSSL lets threads sign with one key at once.
  EVP_PKEY* key_;
  std::string dns_record_;
};

}  // namespace relayq::policy
