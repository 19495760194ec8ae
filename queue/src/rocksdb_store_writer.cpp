// RocksDbStore's writes. next_id(), submit() and commit() run on any thread; the writer thread
// writes everything queued as one WriteBatch, each entry whole or not at all, in queue order.
// A submit succeeds only once its batch is synced to disk (a batch of commits alone is not).
#include "rocksdb_store.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include "keys.hpp"
#include "queue/clock.hpp"
#include "queue/envelope_codec.hpp"
#include "rocksdb_store_internal.hpp"

namespace relayq::queue {
namespace {

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

}  // namespace

MessageId RocksDbStore::next_id() {
  const auto floor = static_cast<MessageId>(std::max<std::int64_t>(wall_clock_ms(), 0))
                     << kIdTimeShift;
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

StoreStats RocksDbStore::stats() const {
  return {.batches = batches_.load(),
          .synced_batches = synced_batches_.load(),
          .messages = messages_.load(),
          .commits = commits_.load(),
          .failed_batches = failed_batches_.load()};
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
    // memtable flush (the largest write buffer: 32 MiB, see memory_options() in
    // rocksdb_store_open.cpp) and then resumes. Until then every message gets 452: say why,
    // with the free space, every 10 s at most.
    const std::int64_t now = wall_clock_ms();
    if (now - space_logged_ms_ >= 10'000) {
      space_logged_ms_ = now;
      struct statvfs disk {};
      const std::uint64_t free_bytes = ::statvfs(options_.path.c_str(), &disk) == 0
                                           ? std::uint64_t{disk.f_bavail} * disk.f_frsize
                                           : 0;
      spdlog::warn(
          "event=store_waiting_for_space path={} free_mib={} needed_mib=32 reason=\"the queue "
          "recovers from a full disk once a memtable flush fits; until then mail gets 452\"",
          options_.path, free_bytes >> 20);
    }
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
  refusing_writes_.store(!status.ok(), std::memory_order_relaxed);
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

}  // namespace relayq::queue
