// A fresh directory under /tmp for one test, removed with everything in it.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace relayq::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = "/tmp/relayq-test-XXXXXX";
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Where a test's queue store lives (created by the store itself).
  std::string store() const { return (path / "queue").string(); }
};

}  // namespace relayq::test
