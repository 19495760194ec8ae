// The Store on RocksDB: column families, the group-commit writer and reader threads, the ids.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rocksdb/db.h>

#include "queue/store.hpp"

namespace relayq::queue {

// Version of the store's layout (column families, key and value formats), kept in the default
// family under "schema_version". A store written by a newer relayq is refused, not misread.
inline constexpr std::uint32_t kStoreSchemaVersion = 1;

class RocksDbStore final : public Store {
 public:
  // Throws StoreOpenError naming the path and RocksDB's message.
  explicit RocksDbStore(const StoreOptions& options);
  ~RocksDbStore() override;

  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  MessageId next_id() override;
  void submit(Message message, Completion done) override;
  void close() override;
  StoreStats stats() const override;
  StoreGauges gauges() const override;
  void commit(const Envelope& before, const Envelope& after, std::optional<Message> dsn,
              Completion done) override;
  void load(MessageId id, bool with_body, LoadCompletion done) override;

  std::optional<Envelope> load_envelope(MessageId id) override;
  std::optional<std::string> load_body(MessageId id) override;
  void for_each_envelope(const std::function<void(const Envelope&)>& visit) override;
  std::optional<MessageCount> count_messages(const std::atomic<bool>& cancel) override;
  std::optional<MessageId> oldest_id() override;
  bool for_each_due_while(const std::function<bool(const DueEntry&)>& visit) override;

 private:
  struct Update {
    Envelope before;
    Envelope after;
  };
  // One entry of the writer's queue, written whole or not at all: a submit carries `message`;
  // a commit carries `update` and, when it bounces, its DSN as `message`.
  struct Pending {
    std::optional<Update> update;
    std::optional<Message> message;
    Completion done;
  };
  struct LoadRequest {
    MessageId id = 0;
    bool with_body = false;
    LoadCompletion done;
  };

  void open_database();
  void check_schema_version();
  void seed_last_id();
  // Why a write of this envelope is refused before it reaches the writer; empty if it is not.
  std::optional<std::string> refusal(const Envelope& envelope) const;
  void enqueue(Pending pending);
  void run_writer();
  void resume_after_error();
  void write_batch(std::vector<Pending>& batch);
  rocksdb::Status put_message(rocksdb::WriteBatch& write, const Message& message);
  rocksdb::Status put_update(rocksdb::WriteBatch& write, const Update& update);
  void run_reader();
  std::optional<Message> read_message(MessageId id, bool with_body);
  std::optional<Envelope> read_envelope(const rocksdb::ReadOptions& read_options, MessageId id);
  std::optional<std::string> read_body(const rocksdb::ReadOptions& read_options, MessageId id);
  void close_database();

  const StoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned; destroyed before db_ closes
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* envelopes_ = nullptr;
  rocksdb::ColumnFamilyHandle* bodies_ = nullptr;
  rocksdb::ColumnFamilyHandle* due_ = nullptr;

  std::atomic<MessageId> last_id_{0};

  // Hand-off to the writer: submitters append, the writer takes everything at once.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Pending> pending_;
  bool stopping_ = false;
  std::thread writer_;
  std::mutex join_mutex_;  // close() may be called from several threads

  // Hand-off to the reader: one thread is enough, reads of a warm store are short.
  std::mutex load_mutex_;
  std::condition_variable load_wake_;
  std::deque<LoadRequest> loads_;
  bool loads_stopping_ = false;
  std::thread reader_;

  // Writer-thread state.
  MessageId persisted_high_id_ = 0;           // the "last_id" meta value; never written lower
  bool needs_resume_ = false;                 // the last batch failed: Resume() before the next
  std::int64_t space_logged_ms_ = 0;          // when waiting for free space was last logged
  std::atomic<bool> refusing_writes_{false};  // the last batch failed (read by gauges())

  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> synced_batches_{0};
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> failed_batches_{0};
};

}  // namespace relayq::queue
