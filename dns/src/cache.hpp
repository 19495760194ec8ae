// The answer cache shared by the resolvers of every loop: lookups happen per delivery, so one
// mutex is cheap enough.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

#include "lookup.hpp"

namespace relayq::dns {

class Cache {
 public:
  explicit Cache(std::size_t max_entries);

  // The unexpired lookup for `question`, or null.
  std::shared_ptr<const Lookup> find(const Question& question);
  void store(const Question& question, std::shared_ptr<const Lookup> lookup,
             std::chrono::seconds ttl);

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::shared_ptr<const Lookup> lookup;
    Clock::time_point expires;
  };

  void make_room(Clock::time_point now);

  std::mutex mutex_;
  std::map<Question, Entry> entries_;
  std::size_t max_entries_;
};

}  // namespace relayq::dns
