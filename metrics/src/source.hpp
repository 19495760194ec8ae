// A callback that a scrape asks for current values, replaceable at any time.
#pragma once

#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

namespace relayq::metrics::detail {

template <class Values>
class Source {
 public:
  // Waits for a call in progress, so that once set() returns the old callback is not running
  // and will not be called again: the daemon may then destroy what it captured.
  void set(std::function<Values()> read) {
    std::lock_guard lock(mutex_);
    read_ = std::move(read);
  }

  // nullopt when no callback is set or it threw: a failing source hides its series from one
  // scrape instead of ending the exposer's thread.
  std::optional<Values> read() const {
    std::lock_guard lock(mutex_);
    if (!read_) return std::nullopt;
    try {
      return read_();
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

 private:
  mutable std::mutex mutex_;
  std::function<Values()> read_;
};

}  // namespace relayq::metrics::detail
