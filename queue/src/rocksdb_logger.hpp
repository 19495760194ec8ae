// Routes RocksDB's own warnings and errors into relayq's log instead of a LOG file.
#pragma once

#include <memory>

#include <rocksdb/env.h>

namespace relayq::queue {

// RocksDB's default logger writes a LOG file next to the data. On a full disk that file fails
// too, and Debian's RocksDB (built with assertions on) then aborts the process on its next
// line; logging through spdlog avoids both that and a second log for operators to watch.
// Only warnings and errors are passed on: RocksDB's info level is a firehose.
std::shared_ptr<rocksdb::Logger> make_rocksdb_logger();

}  // namespace relayq::queue
