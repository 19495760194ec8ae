// RocksDB-backed Store: opening and schema checks, group-committed synced writes, reads.
#include "rocksdb_store.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <utility>

#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include "envelope_codec.hpp"
#include "keys.hpp"
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

// Ids are milliseconds << 20 | counter: a million ids per millisecond before borrowing from
// the next one.
constexpr int kIdCounterBits = 20;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
  // Everything else is RocksDB's default on purpose: the WAL is on, recovery is point-in-time
  // (a torn last record is dropped, nothing before it), and durability comes from sync = true
  // on every batch rather than from any tuning.
  const rocksdb::ColumnFamilyOptions family_options;
  const std::vector<rocksdb::ColumnFamilyDescriptor> families{
      {rocksdb::kDefaultColumnFamilyName, family_options},
      {kEnvelopesFamily, family_options},
      {kBodiesFamily, family_options},
      {kDueFamily, family_options},
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
  const auto floor = static_cast<MessageId>(std::max<std::int64_t>(now_ms(), 0)) << kIdCounterBits;
  MessageId last = last_id_.load(std::memory_order_relaxed);
  MessageId id = 0;
  do {
    id = std::max(last + 1, floor);
  } while (!last_id_.compare_exchange_weak(last, id, std::memory_order_relaxed));
  return id;
}

void RocksDbStore::submit(Message message, Completion done) {
  if (options_.read_only) {
    done({StoreErrorKind::io_error, "the queue store is open read-only"});
    return;
  }
  if (message.envelope.recipients.size() > 65536) {
    done({StoreErrorKind::io_error, "more than 65536 recipients in one message"});
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      pending_.push_back({std::move(message), std::move(done)});
      wake_.notify_one();
      return;
    }
  }
  done({StoreErrorKind::shutting_down, "the queue store is closing"});
}

void RocksDbStore::close() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  // A second, concurrent caller waits here until the first one's join is done.
  std::lock_guard join_lock(join_mutex_);
  if (writer_.joinable()) writer_.join();
}

StoreStats RocksDbStore::stats() const {
  return {batches_.load(), messages_.load(), failed_batches_.load()};
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
    commit(batch);
    batch.clear();
  }
}

void RocksDbStore::commit(std::vector<Pending>& batch) {
  if (needs_resume_) {
    // After a failed write RocksDB refuses every later one until it resumes, which flushes the
    // memtables and starts a fresh WAL (the failed batch may have left a torn record in the old
    // one). From a full disk it resumes by itself; other errors need this call.
    const auto status = db_->Resume();
    if (status.ok()) {
      spdlog::info("queue store {}: recovered from the earlier write error", options_.path);
      needs_resume_ = false;
    } else if (status.IsBusy()) {
      // RocksDB is recovering by itself: after a full disk it polls until there is room for a
      // memtable flush (write_buffer_size, 64 MiB by default) and then resumes.
      spdlog::debug("queue store {}: recovery in progress", options_.path);
    } else {
      spdlog::warn("queue store {}: still cannot resume: {}", options_.path, status.ToString());
    }
  }

  std::vector<StoreResult> results(batch.size());
  rocksdb::WriteBatch write;
  MessageId high_id = persisted_high_id_;
  std::uint64_t written = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Envelope& envelope = batch[i].message.envelope;
    const std::string key = id_key(envelope.id);
    write.SetSavePoint();
    auto status = write.Put(envelopes_, key, encode_envelope(envelope));
    if (status.ok()) status = write.Put(bodies_, key, slice(batch[i].message.body));
    for (std::size_t r = 0; status.ok() && r < envelope.recipients.size(); ++r) {
      const Recipient& recipient = envelope.recipients[r];
      if (recipient.state != RecipientState::pending) continue;
      const std::int64_t due =
          recipient.next_attempt_ms != 0 ? recipient.next_attempt_ms : envelope.received_ms;
      status = write.Put(due_, due_key({due, envelope.id, static_cast<std::uint16_t>(r)}), "");
    }
    if (status.ok()) {
      write.PopSavePoint().PermitUncheckedError();
      high_id = std::max(high_id, envelope.id);
      ++written;
    } else {
      // Only a message too large for a batch gets here; it alone fails, whole.
      write.RollbackToSavePoint().PermitUncheckedError();
      results[i] = failure(status);
      spdlog::error("queue store {}: message {} refused: {}", options_.path, format_id(envelope.id),
                    status.ToString());
    }
    // The batch holds its own copy now; dropping ours halves the memory a batch of large
    // bodies needs.
    batch[i].message = {};
  }
  if (high_id != persisted_high_id_) {
    write.Put(meta_, kLastIdKey, id_key(high_id)).PermitUncheckedError();
  }

  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  const auto status = db_->Write(write_options, &write);
  batches_.fetch_add(1);
  messages_.fetch_add(written);
  if (status.ok()) {
    persisted_high_id_ = high_id;
  } else {
    failed_batches_.fetch_add(1);
    needs_resume_ = true;
    spdlog::error("queue store {}: writing a batch of {} messages failed: {}", options_.path,
                  written, status.ToString());
    for (auto& result : results) {
      if (result.ok()) result = failure(status);
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(results[i]);
}

void RocksDbStore::close_database() {
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  handles_.clear();
  const auto status = db_->Close();
  if (!status.ok()) {
    spdlog::error("queue store {}: close: {}", options_.path, status.ToString());
  }
  db_.reset();
}

std::optional<Envelope> RocksDbStore::load_envelope(MessageId id) {
  std::string value;
  const auto status = db_->Get(rocksdb::ReadOptions(), envelopes_, id_key(id), &value);
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

std::optional<std::string> RocksDbStore::load_body(MessageId id) {
  std::string value;
  const auto status = db_->Get(rocksdb::ReadOptions(), bodies_, id_key(id), &value);
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

void RocksDbStore::for_each_due(const std::function<void(const DueEntry&)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), due_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (const auto entry = parse_due_key(it->key().ToStringView())) {
      visit(*entry);
    } else {
      spdlog::error("queue store {}: skipping malformed due key {}", options_.path,
                    it->key().ToString(/*hex=*/true));
    }
  }
  if (!it->status().ok()) {
    spdlog::error("queue store {}: listing due entries stopped: {}", options_.path,
                  it->status().ToString());
  }
}

}  // namespace relayq::queue
