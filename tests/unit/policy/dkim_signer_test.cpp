// Unit tests of DKIM signing: keys generated here with OpenSSL (RSA-2048 and Ed25519, PKCS#8 and
// traditional PEM) sign a stored message, and dkim_verify checks it with the signer's own
// dns_record(); changed or added headers break it; keys the config must refuse are refused. Runs
// on the test thread, and on a few more in the concurrency case.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "policy/dkim.hpp"
#include "support/temp_dir.hpp"

using relayq::dns::Status;
using relayq::policy::dkim_verify;
using relayq::policy::DkimKeyRecords;
using relayq::policy::DkimResult;
using relayq::policy::DkimSigner;
using relayq::test::TempDir;

namespace {

using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

enum class Pem { pkcs8, traditional, encrypted };

Key generate(const char* type, std::size_t rsa_bits) {
  Key key(rsa_bits != 0 ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, rsa_bits)
                        : EVP_PKEY_Q_keygen(nullptr, nullptr, type),
          EVP_PKEY_free);
  REQUIRE(key);
  return key;
}

std::string pem_of(EVP_PKEY* key, Pem form) {
  const Bio bio(BIO_new(BIO_s_mem()), BIO_free);
  char passphrase[] = "secret";
  const int written =
      form == Pem::traditional
          ? PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                                 nullptr)
          : PEM_write_bio_PrivateKey(bio.get(), key,
                                     form == Pem::encrypted ? EVP_aes_256_cbc() : nullptr, nullptr,
                                     0, nullptr, form == Pem::encrypted ? passphrase : nullptr);
  REQUIRE(written == 1);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(length)};
}

// Key generation is slow for RSA: each key is made once per run.
EVP_PKEY* rsa_2048() {
  static const Key key = generate("RSA", 2048);
  return key.get();
}
EVP_PKEY* ed25519() {
  static const Key key = generate("ED25519", 0);
  return key.get();
}

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = (dir.path / name).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// The message of a load() refusal.
std::string refusal(const std::string& path) {
  try {
    DkimSigner::load("example.com", "sel", path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  FAIL("no refusal for " << path);
  return "";
}

DkimKeyRecords keys_of(const DkimSigner& signer) {
  return {{signer.selector() + "._domainkey." + signer.domain(),
           {Status::ok, {signer.dns_record()}, ""}}};
}

// The results for `message` signed by `signer` and then changed by `change`.
template <typename Change>
std::vector<DkimResult> verified(const DkimSigner& signer, const std::string& message,
                                 Change change) {
  std::vector<DkimResult> results;
  for (const auto& result : dkim_verify(change(signer.sign(message) + message), keys_of(signer)))
    results.push_back(result.result);
  return results;
}

// A DKIM-Signature field without its folds and spaces.
std::string unfolded(const std::string& field) {
  std::string text;
  for (char c : field)
    if (c != '\r' && c != '\n' && c != '\t' && c != ' ') text.push_back(c);
  return text;
}

// The h= tag of a DKIM-Signature field.
std::string signed_fields(const std::string& field) {
  const std::string text = unfolded(field);
  const auto start = text.find(";h=");
  REQUIRE(start != std::string::npos);
  return text.substr(start + 3, text.find(';', start + 3) - start - 3);
}

const std::string kMessage =
    "Received: from client.example ([192.0.2.7]) by mx.example.com with ESMTPSA; "
    "Sat, 1 Mar 2025 10:00:00 +0000\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: Lunch\r\n"
    "Date: Sat, 1 Mar 2025 10:00:00 +0000\r\n"
    "Message-ID: <lunch-1@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "X-Mailer: test\r\n"
    "\r\n"
    "Noon at the usual place?\r\n"
    "..and bring the map.\r\n";

std::string replaced(std::string message, const std::string& from, const std::string& to) {
  const auto at = message.find(from);
  REQUIRE(at != std::string::npos);
  return message.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("DkimSigner: signatures verify with the published record; changes break them", "[dkim]") {
  TempDir dir;
  const auto [type, key, form] = GENERATE(table<std::string, EVP_PKEY* (*)(), Pem>({
      {"rsa-sha256", rsa_2048, Pem::pkcs8},
      {"rsa-sha256", rsa_2048, Pem::traditional},
      {"ed25519-sha256", ed25519, Pem::pkcs8},
  }));
  const auto signer =
      DkimSigner::load("example.com", "sel2025", write(dir, "key.pem", pem_of(key(), form)));
  CHECK(signer->domain() == "example.com");
  CHECK(signer->selector() == "sel2025");
  CHECK(signer->algorithm() == type);

  const std::string field = signer->sign(kMessage);
  CAPTURE(field);
  CHECK(field.starts_with("DKIM-Signature: v=1; a=" + type + "; c=relaxed/relaxed;"));
  CHECK(unfolded(field).find(";d=example.com;s=sel2025;") != std::string::npos);
  CHECK(field.ends_with("\r\n"));
  CHECK(field.find("\r\n") < 80);
  // Present fields only (no Cc, no Received, no X-Mailer), From once more than present.
  CHECK(signed_fields(field) == "From:To:Subject:Date:Message-ID:MIME-Version:Content-Type:From");

  const auto results = dkim_verify(field + kMessage, keys_of(*signer));
  REQUIRE(results.size() == 1);
  CHECK(results[0].result == DkimResult::pass);
  CHECK(results[0].domain == "example.com");
  CHECK(results[0].selector == "sel2025");
  CHECK(results[0].algorithm == type);
  CHECK(results[0].b_prefix.size() == 8);
  CHECK(field.find("b=" + results[0].b_prefix) != std::string::npos);

  SECTION("relaying on adds unsigned headers above: still passes") {
    CHECK(verified(*signer, kMessage, [](std::string message) {
            return "Received: from mx.example.com by next.example; Sat, 1 Mar 2025 10:00:01 "
                   "+0000\r\n" +
                   message;
          }) == std::vector{DkimResult::pass});
  }
  SECTION("relaxed canonicalization: refolded headers and trailing spaces still pass") {
    CHECK(verified(*signer, kMessage, [](std::string message) {
            return replaced(replaced(message, "To: Bob", "To:\r\n  Bob"), "place?\r\n",
                            "place?  \r\n");
          }) == std::vector{DkimResult::pass});
  }
  SECTION("an altered Subject fails") {
    CHECK(verified(*signer, kMessage, [](std::string message) {
            return replaced(message, "Subject: Lunch", "Subject: Dinner");
          }) == std::vector{DkimResult::fail});
  }
  SECTION("an altered body fails") {
    CHECK(verified(*signer, kMessage, [](std::string message) {
            return replaced(message, "Noon", "Nine");
          }) == std::vector{DkimResult::fail});
  }
  SECTION("a From: added before the first fails (oversigned)") {
    CHECK(verified(*signer, kMessage, [](std::string message) {
            return replaced(message, "From: Alice",
                            "From: Mallory <m@evil.example>\r\nFrom: Alice");
          }) == std::vector{DkimResult::fail});
  }
}

TEST_CASE("DkimSigner: dns_record() is what RFC 6376 and RFC 8463 publish", "[dkim]") {
  TempDir dir;
  const auto rsa =
      DkimSigner::load("example.com", "r", write(dir, "rsa.pem", pem_of(rsa_2048(), Pem::pkcs8)));
  CHECK(rsa->dns_record().starts_with(
      "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"));
  CHECK(rsa->dns_record().size() == std::string("v=DKIM1; k=rsa; p=").size() + 392);
  CHECK(relayq::policy::dkim_record_key(rsa->dns_record()) ==
        rsa->dns_record().substr(std::string("v=DKIM1; k=rsa; p=").size()));

  const auto ed =
      DkimSigner::load("example.com", "e", write(dir, "ed.pem", pem_of(ed25519(), Pem::pkcs8)));
  unsigned char raw[32];
  std::size_t length = sizeof raw;
  REQUIRE(EVP_PKEY_get_raw_public_key(ed25519(), raw, &length) == 1);
  unsigned char encoded[45];
  EVP_EncodeBlock(encoded, raw, 32);
  CHECK(ed->dns_record() ==
        "v=DKIM1; k=ed25519; p=" + std::string(reinterpret_cast<char*>(encoded)));
}

TEST_CASE("DkimSigner: a message without From: cannot be signed", "[dkim]") {
  TempDir dir;
  const auto signer =
      DkimSigner::load("example.com", "e", write(dir, "ed.pem", pem_of(ed25519(), Pem::pkcs8)));
  CHECK_THROWS_AS(signer->sign("Subject: no author\r\n\r\nHi.\r\n"), std::runtime_error);
}

TEST_CASE("DkimSigner: keys the config must refuse", "[dkim]") {
  TempDir dir;
  SECTION("RSA below 2048 bits") {
    const Key small = generate("RSA", 1024);
    const std::string path = write(dir, "small.pem", pem_of(small.get(), Pem::pkcs8));
    const std::string message = refusal(path);
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find("1024 bits") != std::string::npos);
  }
  SECTION("not a key") {
    const std::string path =
        write(dir, "garbage.pem", "-----BEGIN PRIVATE KEY-----\nnot base64!\n");
    CHECK(refusal(path).find("not a PEM private key") != std::string::npos);
    CHECK(refusal(write(dir, "empty.pem", "")).find("not a PEM private key") != std::string::npos);
  }
  SECTION("a missing file") {
    const std::string path = (dir.path / "missing.pem").string();
    CHECK(refusal(path) == "DKIM key " + path + ": No such file or directory");
  }
  SECTION("an encrypted key") {
    CHECK(refusal(write(dir, "locked.pem", pem_of(ed25519(), Pem::encrypted))).find("encrypted") !=
          std::string::npos);
  }
  SECTION("neither RSA nor Ed25519") {
    const Key ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
    REQUIRE(ec);
    CHECK(refusal(write(dir, "ec.pem", pem_of(ec.get(), Pem::pkcs8))).find("neither") !=
          std::string::npos);
  }
}

TEST_CASE("DkimSigner: one signer and the verifier shared by several threads", "[dkim]") {
  TempDir dir;
  const auto signer =
      DkimSigner::load("example.com", "e", write(dir, "ed.pem", pem_of(ed25519(), Pem::pkcs8)));
  const auto keys = keys_of(*signer);
  std::vector<int> passes(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < passes.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string message = replaced(kMessage, "Lunch", "Lunch " + std::to_string(i));
        const auto results = dkim_verify(signer->sign(message) + message, keys);
        if (results.size() == 1 && results[0].result == DkimResult::pass) ++passes[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(passes == std::vector<int>(4, 50));
}
