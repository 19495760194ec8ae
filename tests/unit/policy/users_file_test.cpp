// Unit tests of the submission users file: parsing, refusals with PATH:LINE, password checks.
// Hashes are made here with libxcrypt (the library relayq_policy links), one hard-coded from
// `openssl passwd -6`, the tool the refusal messages point to. Runs on the test thread only.
#include <catch2/catch.hpp>

#include <crypt.h>

#include <fstream>
#include <memory>
#include <string>

#include "policy/users_file.hpp"
#include "support/temp_dir.hpp"

using relayq::policy::UsersFile;
using relayq::policy::UsersFileError;

namespace {

// A fresh crypt(3) hash of `password` in the scheme `prefix` ("$6$", "$y$", "$1$"), at the
// scheme's default cost.
std::string hash_of(const std::string& password, const char* prefix) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn(prefix, 0, nullptr, 0, setting, sizeof setting) != nullptr);
  auto data = std::make_unique<crypt_data>();
  const char* hash = crypt_r(password.c_str(), setting, data.get());
  REQUIRE(hash != nullptr);
  REQUIRE(hash[0] != '*');
  return hash;
}

// `openssl passwd -6 -salt saltsalt 'correct horse'`
constexpr const char* kOpensslHash =
    "$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/"
    "uamSo5z0";

// The message of the UsersFileError that parsing `text` throws.
std::string refusal(const std::string& text) {
  try {
    UsersFile::parse(text, "users");
  } catch (const UsersFileError& e) {
    return e.what();
  }
  FAIL("no UsersFileError for: " << text);
  return "";
}

}  // namespace

TEST_CASE("UsersFile: the right password verifies, anything else does not", "[policy][users]") {
  const std::string sha512 = hash_of("s3cret pass", "$6$");
  const std::string yescrypt = hash_of("yes:crypt \xc3\xa9\x01", "$y$");
  const auto users = UsersFile::parse(
      "alice:" + sha512 + "\nbob:" + yescrypt + "\ncarol:" + kOpensslHash + "\n", "users");
  REQUIRE(users->size() == 3);

  SECTION("SHA-512, yescrypt and openssl-made hashes") {
    CHECK(users->verify("alice", "s3cret pass"));
    CHECK(users->verify("bob", "yes:crypt \xc3\xa9\x01"));
    CHECK(users->verify("carol", "correct horse"));
  }
  SECTION("a wrong password fails") {
    CHECK_FALSE(users->verify("alice", "s3cret pas"));
    CHECK_FALSE(users->verify("alice", "s3cret pass "));
    CHECK_FALSE(users->verify("alice", "S3cret pass"));
    CHECK_FALSE(users->verify("bob", "s3cret pass"));  // another user's password
    CHECK_FALSE(users->verify("carol", "correct horse\n"));
  }
  SECTION("an empty password fails") {
    CHECK_FALSE(users->verify("alice", ""));
    CHECK_FALSE(users->verify("bob", ""));
  }
  SECTION("a password with an embedded NUL fails, even when the part before it is right") {
    using namespace std::string_literals;
    CHECK_FALSE(users->verify("alice", "s3cret pass\0"s));
    CHECK_FALSE(users->verify("alice", "s3cret pass\0more"s));
    CHECK_FALSE(users->verify("carol", "\0correct horse"s));
  }
  SECTION("an unknown user fails, whatever the password") {
    CHECK_FALSE(users->verify("dave", "s3cret pass"));
    CHECK_FALSE(users->verify("dave", ""));
    CHECK_FALSE(users->verify("", "s3cret pass"));
  }
  SECTION("user names are compared exactly") {
    CHECK_FALSE(users->verify("Alice", "s3cret pass"));
    CHECK_FALSE(users->verify("alice ", "s3cret pass"));
    CHECK_FALSE(users->verify("alic", "s3cret pass"));
  }
}

TEST_CASE("UsersFile: an empty file has nobody, and verifies nobody", "[policy][users]") {
  const auto users = UsersFile::parse("# nobody yet\n\n", "users");
  CHECK(users->size() == 0);
  CHECK_FALSE(users->verify("alice", "anything"));
  CHECK(UsersFile::parse("", "users")->size() == 0);
}

TEST_CASE("UsersFile: comments, blank lines, trailing blanks and CRLF are fine",
          "[policy][users]") {
  const std::string hash = hash_of("pw", "$6$");
  const auto users = UsersFile::parse(
      "# submission users\r\n"
      "\r\n"
      "   \t\n"
      "alice:" +
          hash +
          "\r\n"
          "#bob:plain-text, but a comment\n"
          "carol:" +
          std::string(kOpensslHash) + " \t\r\n" + "dave:" + hash,
      "users");  // the last line without '\n'
  CHECK(users->size() == 3);
  CHECK(users->verify("alice", "pw"));
  CHECK(users->verify("carol", "correct horse"));
  CHECK(users->verify("dave", "pw"));
  CHECK_FALSE(users->verify("bob", "plain-text, but a comment"));
}

TEST_CASE("UsersFile: refused lines say where, and how to make a hash", "[policy][users]") {
  const std::string good = "alice:" + hash_of("pw", "$y$") + "\n";

  SECTION("a plain-text password, not quoted in the message") {
    const std::string message = refusal("# users\n" + good + "bob:hunter2\n");
    CHECK_THAT(message, Catch::StartsWith("users:3: user \"bob\": "));
    CHECK_THAT(message, Catch::Contains("plain-text") && Catch::Contains("openssl passwd -6") &&
                            Catch::Contains("mkpasswd -m yescrypt"));
    CHECK_THAT(message, !Catch::Contains("hunter2"));
  }
  SECTION("an MD5 hash") {
    const std::string message = refusal(good + "bob:" + hash_of("pw", "$1$") + "\n");
    CHECK_THAT(message, Catch::StartsWith("users:2: user \"bob\": ") && Catch::Contains("MD5") &&
                            Catch::Contains("openssl passwd -6"));
  }
  SECTION("other weaker schemes: SHA-256, bcrypt, DES") {
    CHECK_THAT(refusal("bob:" + hash_of("pw", "$5$")),
               Catch::StartsWith("users:1: ") && Catch::Contains("SHA-256"));
    CHECK_THAT(refusal("bob:" + hash_of("pw", "$2b$")),
               Catch::StartsWith("users:1: ") && Catch::Contains("bcrypt"));
    CHECK_THAT(refusal("bob:abJnggxhB/yWI"),
               Catch::StartsWith("users:1: ") && Catch::Contains("mkpasswd -m yescrypt"));
  }
  SECTION("no hash at all") {
    CHECK_THAT(refusal("bob:\n"), Catch::StartsWith("users:1: user \"bob\": no password hash"));
  }
  SECTION("a cut or mistyped hash") {
    const std::string sha512 = hash_of("pw", "$6$");
    const std::string yescrypt = hash_of("pw", "$y$");
    CHECK_THAT(refusal("bob:" + sha512.substr(0, sha512.size() - 1)),
               Catch::StartsWith("users:1: user \"bob\": the SHA-512 hash is damaged"));
    CHECK_THAT(refusal("bob:" + yescrypt.substr(0, yescrypt.size() - 1)),
               Catch::StartsWith("users:1: user \"bob\": the yescrypt hash is damaged"));
    CHECK_THAT(refusal("bob:" + yescrypt.substr(0, yescrypt.size() - 1) + "!"),
               Catch::Contains("damaged"));
    CHECK_THAT(refusal("bob:$6$"), Catch::Contains("damaged"));
    CHECK_THAT(refusal("bob:$y$j9T$"), Catch::Contains("damaged"));
  }
  SECTION("a line without ':', not quoted either") {
    const std::string message = refusal(good + "\n" + "bob hunter2\n");
    CHECK_THAT(message, Catch::StartsWith("users:3: ") && Catch::Contains("':'"));
    CHECK_THAT(message, !Catch::Contains("hunter2"));
  }
  SECTION("an empty user") {
    CHECK_THAT(refusal(good + ":" + hash_of("pw", "$6$")),
               Catch::StartsWith("users:2: empty user name"));
  }
  SECTION("a duplicate user, but not names that differ in case") {
    CHECK_THAT(refusal(good + "# again\n" + good),
               Catch::StartsWith("users:3: user \"alice\" is listed twice (first on line 1)"));
    CHECK(UsersFile::parse(good + "Alice:" + hash_of("other", "$6$"), "users")->size() == 2);
  }
}

TEST_CASE("UsersFile: load reads a file, and names it when it cannot", "[policy][users]") {
  relayq::test::TempDir dir;
  const std::string path = (dir.path / "users").string();

  SECTION("a readable file") {
    std::ofstream(path) << "# users\nalice:" << kOpensslHash << "\n";
    const auto users = UsersFile::load(path);
    CHECK(users->size() == 1);
    CHECK(users->verify("alice", "correct horse"));
  }
  SECTION("a refused line names the file") {
    std::ofstream(path) << "alice:" << kOpensslHash << "\nbob:plain\n";
    CHECK_THROWS_WITH(UsersFile::load(path), Catch::StartsWith(path + ":2: user \"bob\""));
  }
  SECTION("a missing file") {
    CHECK_THROWS_AS(UsersFile::load(path), UsersFileError);
    CHECK_THROWS_WITH(UsersFile::load(path), path + ": cannot read: No such file or directory");
  }
  SECTION("a directory") {
    CHECK_THROWS_WITH(UsersFile::load(dir.path.string()),
                      dir.path.string() + ": cannot read: Is a directory");
  }
}
