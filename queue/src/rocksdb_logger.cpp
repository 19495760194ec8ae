// A rocksdb::Logger that formats RocksDB's printf-style lines and hands them to spdlog.
#include "rocksdb_logger.hpp"

#include <cstdarg>
#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

namespace relayq::queue {
namespace {

class SpdlogLogger final : public rocksdb::Logger {
 public:
  SpdlogLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  using rocksdb::Logger::Logv;

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    // HEADER_LEVEL ranks above FATAL but carries the options dump of every open: drop it.
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    const std::string line = format_line(format, ap);
    if (level == rocksdb::InfoLogLevel::WARN_LEVEL) {
      spdlog::warn("rocksdb: {}", line);
    } else {
      spdlog::error("rocksdb: {}", line);
    }
  }

 private:
  static std::string format_line(const char* format, va_list ap) {
    char buffer[512];
    va_list copy;
    va_copy(copy, ap);
    const int length = std::vsnprintf(buffer, sizeof buffer, format, copy);
    va_end(copy);
    if (length < 0) return format;
    if (static_cast<std::size_t>(length) < sizeof buffer) return {buffer, std::size_t(length)};
    std::string line(static_cast<std::size_t>(length) + 1, '\0');
    std::vsnprintf(line.data(), line.size(), format, ap);
    line.pop_back();
    return line;
  }
};

}  // namespace

std::shared_ptr<rocksdb::Logger> make_rocksdb_logger() {
  return std::make_shared<SpdlogLogger>();
}

}  // namespace relayq::queue
