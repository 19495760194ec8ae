// RocksDB-backed Store: opening and schema checks, group-committed writes, reads.
#include "rocksdb_store.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <map>
#include <utility>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <spdlog/spdlog.h>

#include "envelope_codec.hpp"
#include "keys.hpp"
#include "queue/clock.hpp"
#include "rocksdb_logger.hpp"

namespace relayq::queue {
namespace {

constexpr const char* kEnvelopesFamily = "envelopes";
constexpr const char* kBodiesFamily = "bodies";
constexpr const char* kDueFamily = "due";
// Keys of the default ("meta") family.
constexpr const char* kSchemaVersionKey = "schema_version";
// The highest id ever stored, so ids stay unique after a restart with a clock that went back
// even once the message holding the highest id has been delivered and deleted.
constexpr const char* kLastIdKey = "last_id";

// The due index numbers recipients with 16 bits.
constexpr std::size_t kMaxRecipients = 65536;

StoreResult failure(const rocksdb::Status& status) {
  const std::string text = status.ToString();
  // An error from a filesystem layer may carry ENOSPC only in its text.
  const bool no_space = status.IsNoSpace() || status.subcode() == rocksdb::Status::kNoSpace ||
                        text.find("No space left on device") != std::string::npos ||
                        text.find("ENOSPC") != std::string::npos;
  return {no_space ? StoreErrorKind::no_space : StoreErrorKind::io_error, text};
}

rocksdb::Slice slice(const std::string& bytes) {
  return {bytes.data(), bytes.size()};
}

// The due keys of an envelope, sorted, so that two of them can be diffed.
std::vector<std::string> sorted_due_keys(const Envelope& envelope) {
  std::vector<std::string> keys;
  for (const DueEntry& entry : due_entries(envelope)) keys.push_back(due_key(entry));
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<std::string> difference(const std::vector<std::string>& from,
                                    const std::vector<std::string>& remove) {
  std::vector<std::string> rest;
  std::set_difference(from.begin(), from.end(), remove.begin(), remove.end(),
                      std::back_inserter(rest));
  return rest;
}

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

MessageId RocksDbStore::next_id() {
  const auto floor = static_cast<MessageId>(std::max<std::int64_t>(wall_clock_ms(), 0)) << kIdTimeShift;
  MessageId last = last_id_.load(std::memory_order_relaxed);
  MessageId id = 0;
  do {
    id = std::max(last + 1, floor);
  } while (!last_id_.compare_exchange_weak(last, id, std::memory_order_relaxed));
  return id;
}

std::optional<std::string> RocksDbStore::refusal(const Envelope& envelope) const {
  if (options_.read_only) return "the queue store is open read-only";
  if (envelope.recipients.size() > kMaxRecipients) {
    return "more than " + std::to_string(kMaxRecipients) + " recipients in one message";
  }
  return std::nullopt;
}

void RocksDbStore::submit(Message message, Completion done) {
  if (const auto reason = refusal(message.envelope)) {
    done({StoreErrorKind::io_error, *reason});
    return;
  }
  enqueue({std::nullopt, std::move(message), std::move(done)});
}

void RocksDbStore::commit(const Envelope& before, const Envelope& after, std::optional<Message> dsn,
                          Completion done) {
  auto reason = refusal(after);
  if (!reason && dsn) reason = refusal(dsn->envelope);
  // The due keys to remove are computed from `before`: another id would leave them behind.
  if (!reason && before.id != after.id) reason = "a commit cannot change a message's id";
  if (reason) {
    done({StoreErrorKind::io_error, *reason});
    return;
  }
  enqueue({Update{before, after}, std::move(dsn), std::move(done)});
}

void RocksDbStore::enqueue(Pending pending) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      pending_.push_back(std::move(pending));
      wake_.notify_one();
      return;
    }
  }
  pending.done({StoreErrorKind::shutting_down, "the queue store is closing"});
}

void RocksDbStore::load(MessageId id, bool with_body, LoadCompletion done) {
  {
    std::lock_guard lock(load_mutex_);
    if (!loads_stopping_) {
      loads_.push_back({id, with_body, std::move(done)});
      load_wake_.notify_one();
      return;
    }
  }
  done(std::nullopt);
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

StoreStats RocksDbStore::stats() const {
  return {.batches = batches_.load(),
          .synced_batches = synced_batches_.load(),
          .messages = messages_.load(),
          .commits = commits_.load(),
          .failed_batches = failed_batches_.load()};
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

void RocksDbStore::run_writer() {
  std::vector<Pending> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return !pending_.empty() || stopping_; });
      if (pending_.empty()) return;  // stopping, and everything accepted has been written
      batch.swap(pending_);
    }
    write_batch(batch);
    batch.clear();
  }
}

void RocksDbStore::resume_after_error() {
  // After a failed write RocksDB refuses every later one until it resumes, which flushes the
  // memtables and starts a fresh WAL (the failed batch may have left a torn record in the old
  // one). From a full disk it resumes by itself; other errors need this call.
  const auto status = db_->Resume();
  if (status.ok()) {
    spdlog::info("queue store {}: recovered from the earlier write error", options_.path);
    needs_resume_ = false;
  } else if (status.IsBusy()) {
    // RocksDB is recovering by itself: after a full disk it polls until there is room for a
    // memtable flush (the largest write buffer: 32 MiB, see memory_options()) and then resumes.
    spdlog::debug("queue store {}: recovery in progress", options_.path);
  } else {
    spdlog::warn("queue store {}: still cannot resume: {}", options_.path, status.ToString());
  }
}

void RocksDbStore::write_batch(std::vector<Pending>& batch) {
  if (needs_resume_) resume_after_error();

  std::vector<StoreResult> results(batch.size());
  rocksdb::WriteBatch write;
  MessageId high_id = persisted_high_id_;
  std::uint64_t new_messages = 0;
  std::uint64_t updates = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Pending& item = batch[i];
    const MessageId id = item.update ? item.update->after.id : item.message->envelope.id;
    // Entries apply in queue order, so the later of two commits of one message wins.
    write.SetSavePoint();
    auto status = rocksdb::Status::OK();
    if (item.update) status = put_update(write, *item.update);
    if (status.ok() && item.message) status = put_message(write, *item.message);
    if (status.ok()) {
      write.PopSavePoint().PermitUncheckedError();
      if (item.message) {
        high_id = std::max(high_id, item.message->envelope.id);
        ++new_messages;
      }
      if (item.update) ++updates;
    } else {
      // Only an entry too large for a batch gets here; it alone fails, whole (a commit with
      // its DSN).
      write.RollbackToSavePoint().PermitUncheckedError();
      results[i] = failure(status);
      spdlog::error("queue store {}: {} of message {} refused: {}", options_.path,
                    item.update ? "commit" : "submit", format_id(id), status.ToString());
    }
    // The batch holds its own copy now; dropping ours halves the memory a batch of large
    // bodies needs.
    item.update.reset();
    item.message.reset();
  }
  if (high_id != persisted_high_id_) {
    write.Put(meta_, kLastIdKey, id_key(high_id)).PermitUncheckedError();
  }

  rocksdb::WriteOptions write_options;
  // A new message is synced before its 250 (or, for a DSN, before the bounced recipient is
  // forgotten). Updates alone are not: a crash of the process loses nothing (the WAL is in the
  // page cache) and a power cut loses at most the last updates, which only repeats deliveries
  // or attempts. A later synced batch makes every earlier update durable too, as the WAL is
  // one sequential file.
  write_options.sync = new_messages > 0;
  const auto status = db_->Write(write_options, &write);
  batches_.fetch_add(1);
  if (write_options.sync) synced_batches_.fetch_add(1);
  messages_.fetch_add(new_messages);
  commits_.fetch_add(updates);
  if (status.ok()) {
    persisted_high_id_ = high_id;
  } else {
    failed_batches_.fetch_add(1);
    needs_resume_ = true;
    spdlog::error("queue store {}: writing a batch of {} messages and {} commits failed: {}",
                  options_.path, new_messages, updates, status.ToString());
    for (auto& result : results) {
      if (result.ok()) result = failure(status);
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(results[i]);
}

rocksdb::Status RocksDbStore::put_message(rocksdb::WriteBatch& write, const Message& message) {
  const std::string key = id_key(message.envelope.id);
  auto status = write.Put(envelopes_, key, encode_envelope(message.envelope));
  if (status.ok()) status = write.Put(bodies_, key, slice(message.body));
  for (const DueEntry& entry : due_entries(message.envelope)) {
    if (!status.ok()) break;
    status = write.Put(due_, due_key(entry), "");
  }
  return status;
}

rocksdb::Status RocksDbStore::put_update(rocksdb::WriteBatch& write, const Update& update) {
  const std::string key = id_key(update.after.id);
  const auto before = sorted_due_keys(update.before);
  const auto after = sorted_due_keys(update.after);
  const bool still_pending = update.after.has_pending();
  // Only the keys that change: most attempts move one recipient, not all of them.
  auto status = rocksdb::Status::OK();
  for (const auto& gone : difference(before, after)) {
    if (!status.ok()) break;
    status = write.Delete(due_, gone);
  }
  for (const auto& added : difference(after, before)) {
    if (!status.ok()) break;
    status = write.Put(due_, added, "");
  }
  if (!status.ok()) return status;
  if (still_pending) return write.Put(envelopes_, key, encode_envelope(update.after));
  // Every recipient is final (and with none pending, `after` has no due keys, so the loop
  // above removed all of `before`'s): the message leaves the queue.
  status = write.Delete(envelopes_, key);
  if (status.ok()) status = write.Delete(bodies_, key);
  return status;
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

void RocksDbStore::run_reader() {
  for (;;) {
    LoadRequest request;
    {
      std::unique_lock lock(load_mutex_);
      load_wake_.wait(lock, [this] { return !loads_.empty() || loads_stopping_; });
      if (loads_.empty()) return;  // stopping, and every load asked for has been answered
      request = std::move(loads_.front());
      loads_.pop_front();
    }
    request.done(read_message(request.id, request.with_body));
  }
}

std::optional<Message> RocksDbStore::read_message(MessageId id, bool with_body) {
  // Both reads see one snapshot: a commit that deletes the message between them must read as
  // "gone", not as an envelope whose body is missing.
  rocksdb::ManagedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot.snapshot();
  auto envelope = read_envelope(read_options, id);
  if (!envelope) return std::nullopt;
  Message message{std::move(*envelope), {}};
  if (with_body) {
    auto body = read_body(read_options, id);
    if (!body) {
      spdlog::error("queue store {}: message {} has an envelope but no readable body",
                    options_.path, format_id(id));
      return std::nullopt;
    }
    message.body = std::move(*body);
  }
  return message;
}

std::optional<Envelope> RocksDbStore::load_envelope(MessageId id) {
  return read_envelope(rocksdb::ReadOptions(), id);
}

std::optional<std::string> RocksDbStore::load_body(MessageId id) {
  return read_body(rocksdb::ReadOptions(), id);
}

std::optional<Envelope> RocksDbStore::read_envelope(const rocksdb::ReadOptions& read_options,
                                                    MessageId id) {
  std::string value;
  const auto status = db_->Get(read_options, envelopes_, id_key(id), &value);
  if (status.IsNotFound()) return std::nullopt;
  if (!status.ok()) {
    spdlog::error("queue store {}: reading envelope {}: {}", options_.path, format_id(id),
                  status.ToString());
    return std::nullopt;
  }
  auto decoded = decode_envelope(value);
  if (!decoded.envelope) {
    spdlog::error("queue store {}: envelope {} is unreadable: {}", options_.path, format_id(id),
                  decoded.error);
  }
  return std::move(decoded.envelope);
}

std::optional<std::string> RocksDbStore::read_body(const rocksdb::ReadOptions& read_options,
                                                   MessageId id) {
  std::string value;
  const auto status = db_->Get(read_options, bodies_, id_key(id), &value);
  if (status.IsNotFound()) return std::nullopt;
  if (!status.ok()) {
    spdlog::error("queue store {}: reading body {}: {}", options_.path, format_id(id),
                  status.ToString());
    return std::nullopt;
  }
  return value;
}

void RocksDbStore::for_each_envelope(const std::function<void(const Envelope&)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), envelopes_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto decoded = decode_envelope(it->value().ToStringView());
    if (decoded.envelope) {
      visit(*decoded.envelope);
    } else {
      // One bad record must not hide the rest of the queue.
      spdlog::error("queue store {}: skipping unreadable envelope under key {}: {}", options_.path,
                    it->key().ToString(/*hex=*/true), decoded.error);
    }
  }
  if (!it->status().ok()) {
    spdlog::error("queue store {}: listing envelopes stopped: {}", options_.path,
                  it->status().ToString());
  }
}

std::optional<MessageCount> RocksDbStore::count_messages(const std::atomic<bool>& cancel) {
  // Read once, in order: no point keeping the blocks in the cache.
  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;
  read_options.readahead_size = 1 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, envelopes_));
  MessageCount count;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (cancel.load(std::memory_order_relaxed)) return std::nullopt;
    const auto held = envelope_held(it->value().ToStringView());
    if (!held) {
      spdlog::error("queue store {}: not counting unreadable envelope under key {}", options_.path,
                    it->key().ToString(/*hex=*/true));
      continue;
    }
    ++count.messages;
    if (*held) ++count.held;
  }
  if (!it->status().ok()) {
    spdlog::error("queue store {}: counting envelopes stopped: {}", options_.path,
                  it->status().ToString());
  }
  return count;
}

std::optional<MessageId> RocksDbStore::oldest_id() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), envelopes_));
  it->SeekToFirst();
  if (!it->Valid()) return std::nullopt;
  return parse_id_key(it->key().ToStringView());
}

bool RocksDbStore::for_each_due_while(const std::function<bool(const DueEntry&)>& visit) {
  // The index is read once, in order: no point keeping its blocks in the cache.
  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;
  read_options.readahead_size = 1 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, due_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (const auto entry = parse_due_key(it->key().ToStringView())) {
      if (!visit(*entry)) return false;
    } else {
      spdlog::error("queue store {}: skipping malformed due key {}", options_.path,
                    it->key().ToString(/*hex=*/true));
    }
  }
  if (!it->status().ok()) {
    spdlog::error("queue store {}: listing due entries stopped: {}", options_.path,
                  it->status().ToString());
    return false;
  }
  return true;
}

}  // namespace relayq::queue
