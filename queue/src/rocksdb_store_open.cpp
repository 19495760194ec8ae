// RocksDbStore's opening and closing: column families, RocksDB tuning, the schema version, the
// last id, RocksDB's own gauges. The caller's thread; close() and gauges() on any thread. A newer
// schema is refused, not misread; close() returns once every accepted write and load is done.
#include "rocksdb_store.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_buffer_manager.h>
#include <spdlog/spdlog.h>

#include "keys.hpp"
#include "rocksdb_logger.hpp"
#include "rocksdb_store_internal.hpp"

namespace relayq::queue {
namespace {

constexpr const char* kEnvelopesFamily = "envelopes";
constexpr const char* kBodiesFamily = "bodies";
constexpr const char* kDueFamily = "due";
// A key of the default ("meta") family; the other, kLastIdKey, is in rocksdb_store_internal.hpp.
constexpr const char* kSchemaVersionKey = "schema_version";

// The column families' options: RocksDB's defaults tuned for a queue, where every key is
// written once (an envelope a few times more), read back soon and deleted soon, and where a
// million messages may wait for a destination that is down.
struct QueueTuning {
  rocksdb::ColumnFamilyOptions meta, envelopes, bodies, due;
};

// Memory: with RocksDB's defaults a process holds up to two 64 MiB write buffers per family
// and every SST file's index blocks outside any limit, which grows with the queue. Here one
// LRU cache bounds it all: write buffers (through a WriteBufferManager that charges them to
// the cache) and data, index and filter blocks share kCacheBytes.
// Start-up: a restart replays the WAL that memtables still depend on. Small families would
// keep the WAL alive (and growing) as long as they are not flushed; max_total_wal_size flushes
// them, so a replay after a crash reads at most that much. A clean close flushes everything.
constexpr std::size_t kCacheBytes = 96 << 20;
constexpr std::size_t kWriteBufferBytes = 64 << 20;  // of which memtables
constexpr std::uint64_t kMaxWalBytes = 128 << 20;

QueueTuning memory_options(rocksdb::DBOptions& db_options) {
  rocksdb::LRUCacheOptions cache_options;
  cache_options.capacity = kCacheBytes;
  cache_options.num_shard_bits = 4;
  const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(cache_options);
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(kWriteBufferBytes, cache);
  db_options.max_total_wal_size = kMaxWalBytes;

  const auto table_options = [&cache](bool bloom) {
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache;
    table.cache_index_and_filter_blocks = true;
    table.cache_index_and_filter_blocks_with_high_priority = true;
    table.pin_l0_filter_and_index_blocks_in_cache = true;
    // Messages are read by id: a filter spares a read in every level that lacks the id.
    if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(table));
  };
  const auto family = [&](std::size_t write_buffer, bool bloom) {
    rocksdb::ColumnFamilyOptions options;
    options.write_buffer_size = write_buffer;
    options.table_factory = table_options(bloom);
    options.level_compaction_dynamic_level_bytes = true;
    // Delivered messages leave runs of tombstones: files full of them are compacted away
    // early instead of slowing every scan that starts at the oldest key.
    options.table_properties_collector_factories.push_back(
        rocksdb::NewCompactOnDeletionCollectorFactory(1024, 512, 0.5));
    return options;
  };
  QueueTuning tuning;
  tuning.meta = family(1 << 20, false);
  tuning.envelopes = family(16 << 20, true);
  tuning.due = family(8 << 20, false);
  // Bodies: a write buffer large enough that a message delivered within seconds is deleted
  // before it is flushed (a flush drops a value deleted in the same memtable), and blob files
  // for those that stay, so that compaction moves 20-byte references, not the bodies.
  tuning.bodies = family(32 << 20, true);
  tuning.bodies.max_write_buffer_number = 3;
  tuning.bodies.enable_blob_files = true;
  tuning.bodies.min_blob_size = 1024;
  tuning.bodies.blob_file_size = 64 << 20;
  tuning.bodies.enable_blob_garbage_collection = true;
  // Only bodies that outlive a memtable are compressed, and LZ4 costs little even on bodies
  // that do not compress (attachments); text shrinks several times on disk.
  tuning.bodies.blob_compression_type = rocksdb::kLZ4Compression;
  return tuning;
}

}  // namespace

std::unique_ptr<Store> Store::open(const StoreOptions& options) {
  return std::make_unique<RocksDbStore>(options);
}

RocksDbStore::RocksDbStore(const StoreOptions& options) : options_(options) {
  open_database();
  try {
    check_schema_version();
    seed_last_id();
  } catch (...) {
    close_database();
    throw;
  }
  if (!options_.read_only) writer_ = std::thread([this] { run_writer(); });
  reader_ = std::thread([this] { run_reader(); });
  spdlog::info("queue store opened at {}{}, last id {}", options_.path,
               options_.read_only ? " (read-only)" : "", format_id(last_id_.load()));
}

RocksDbStore::~RocksDbStore() {
  close();
  close_database();
}

void RocksDbStore::open_database() {
  if (!options_.read_only) {
    // RocksDB would create it too, but only after logging a misleading "Error when reading"
    // it. A failure here resurfaces below as RocksDB's open error.
    std::error_code ignored;
    std::filesystem::create_directories(options_.path, ignored);
  }
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // No LOG file: see rocksdb_logger.hpp.
  db_options.info_log = make_rocksdb_logger();
  // Durability is RocksDB's default on purpose: the WAL is on, recovery is point-in-time (a
  // torn last record is dropped, nothing before it), and it comes from sync = true on every
  // batch rather than from any tuning. What is tuned is memory and start-up time (see
  // memory_options()).
  const QueueTuning tuning = memory_options(db_options);
  const std::vector<rocksdb::ColumnFamilyDescriptor> families{
      {rocksdb::kDefaultColumnFamilyName, tuning.meta},
      {kEnvelopesFamily, tuning.envelopes},
      {kBodiesFamily, tuning.bodies},
      {kDueFamily, tuning.due},
  };
  rocksdb::DB* db = nullptr;
  const auto status =
      options_.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, options_.path, families, &handles_, &db)
          : rocksdb::DB::Open(db_options, options_.path, families, &handles_, &db);
  if (!status.ok()) {
    throw StoreOpenError("cannot open queue store " + options_.path + ": " + status.ToString());
  }
  db_.reset(db);
  meta_ = handles_[0];
  envelopes_ = handles_[1];
  bodies_ = handles_[2];
  due_ = handles_[3];
}

void RocksDbStore::check_schema_version() {
  std::string value;
  auto status = db_->Get(rocksdb::ReadOptions(), meta_, kSchemaVersionKey, &value);
  if (status.IsNotFound() && !options_.read_only) {
    // A new store: stamp it before anything else is written.
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    status = db_->Put(write_options, meta_, kSchemaVersionKey, std::to_string(kStoreSchemaVersion));
    if (!status.ok()) {
      throw StoreOpenError("cannot write schema_version of queue store " + options_.path + ": " +
                           status.ToString());
    }
    return;
  }
  if (status.IsNotFound()) {
    throw StoreOpenError("queue store " + options_.path + " has no schema_version: not a queue");
  }
  if (!status.ok()) {
    throw StoreOpenError("cannot read schema_version of queue store " + options_.path + ": " +
                         status.ToString());
  }
  std::uint32_t version = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), version);
  if (error != std::errc() || end != value.data() + value.size() || version == 0) {
    throw StoreOpenError("queue store " + options_.path + " has an unreadable schema_version '" +
                         value + "'");
  }
  if (version > kStoreSchemaVersion) {
    throw StoreOpenError("queue store " + options_.path + " has schema version " +
                         std::to_string(version) + ", newer than the " +
                         std::to_string(kStoreSchemaVersion) +
                         " this relayq understands; run a newer relayq");
  }
}

void RocksDbStore::seed_last_id() {
  MessageId last = 0;
  std::string value;
  const auto status = db_->Get(rocksdb::ReadOptions(), meta_, kLastIdKey, &value);
  if (status.ok()) {
    persisted_high_id_ = parse_id_key(value).value_or(0);
  } else if (!status.IsNotFound()) {
    throw StoreOpenError("cannot read last_id of queue store " + options_.path + ": " +
                         status.ToString());
  }
  // The envelopes too: keys are big-endian ids, so the last key is the largest id.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), envelopes_));
  it->SeekToLast();
  if (it->Valid()) last = parse_id_key(it->key().ToStringView()).value_or(0);
  if (!it->status().ok()) {
    throw StoreOpenError("cannot read envelopes of queue store " + options_.path + ": " +
                         it->status().ToString());
  }
  last_id_ = std::max(last, persisted_high_id_);
}

void RocksDbStore::close() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  {
    std::lock_guard lock(load_mutex_);
    loads_stopping_ = true;
  }
  load_wake_.notify_one();
  // A second, concurrent caller waits here until the first one's joins are done.
  std::lock_guard join_lock(join_mutex_);
  if (writer_.joinable()) writer_.join();
  if (reader_.joinable()) reader_.join();
}

void RocksDbStore::close_database() {
  if (!options_.read_only) {
    // Written memtables leave nothing in the WAL for the next start to replay: it opens at
    // once instead of re-reading up to kMaxWalBytes.
    rocksdb::FlushOptions flush_options;
    flush_options.allow_write_stall = true;
    const auto status = db_->Flush(flush_options, handles_);
    if (!status.ok()) {
      spdlog::warn("queue store {}: flush before close: {}", options_.path, status.ToString());
    }
  }
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  handles_.clear();
  const auto status = db_->Close();
  if (!status.ok()) {
    spdlog::error("queue store {}: close: {}", options_.path, status.ToString());
  }
  db_.reset();
}

StoreGauges RocksDbStore::gauges() const {
  StoreGauges gauges;
  auto sum_over_families = [this](const std::string& property) {
    std::uint64_t sum = 0;
    for (auto* handle : handles_) {
      std::uint64_t value = 0;
      if (db_->GetIntProperty(handle, property, &value)) sum += value;
    }
    return sum;
  };
  using Properties = rocksdb::DB::Properties;
  // Total rather than live: files of older versions that an iterator still pins are on disk
  // too.
  gauges.size_bytes = sum_over_families(Properties::kTotalSstFilesSize) +
                      sum_over_families(Properties::kTotalBlobFileSize);
  gauges.pending_compaction_bytes = sum_over_families(Properties::kEstimatePendingCompactionBytes);
  // The delayed write rate is the database's (one write controller); stops are per family.
  std::uint64_t delayed_rate = 0;
  db_->GetIntProperty(Properties::kActualDelayedWriteRate, &delayed_rate);
  gauges.write_stall = delayed_rate > 0 || sum_over_families(Properties::kIsWriteStopped) > 0;
  gauges.refusing_writes = refusing_writes_.load(std::memory_order_relaxed);
  rocksdb::VectorLogPtr wal_files;
  if (db_->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& file : wal_files) gauges.size_bytes += file->SizeFileBytes();
  }
  std::map<std::string, std::string> db_stats;
  if (db_->GetMapProperty(Properties::kDBStats, &db_stats)) {
    const auto found = db_stats.find("db.user_write_stall_micros");
    if (found != db_stats.end()) {
      const std::string& text = found->second;
      std::from_chars(text.data(), text.data() + text.size(), gauges.stall_micros_total);
    }
  }
  return gauges;
}

}  // namespace relayq::queue
