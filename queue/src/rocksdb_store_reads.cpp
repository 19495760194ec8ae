// RocksDbStore's reads: load() is answered on the reader thread, the others run on the caller's
// thread (any thread). load() reads a message from one snapshot: whole, or gone.
#include "rocksdb_store.hpp"

#include <utility>

#include <spdlog/spdlog.h>

#include "keys.hpp"
#include "queue/envelope_codec.hpp"

namespace relayq::queue {

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
