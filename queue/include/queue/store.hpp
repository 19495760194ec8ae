// The durable message store on RocksDB: group-committed, fsynced writes and recovery on start.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "queue/message.hpp"

namespace relayq::queue {

// Why a store failed; each kind maps to one SMTP reply (see reply_for()).
enum class StoreErrorKind : std::uint8_t {
  none = 0,
  no_space,       // disk full or quota: 452 4.3.1
  io_error,       // any other database error: 451 4.3.0
  shutting_down,  // the store is closing: 421 4.3.2
};

struct StoreResult {
  StoreErrorKind error = StoreErrorKind::none;
  std::string detail;  // the database's own words, for the log
  bool ok() const { return error == StoreErrorKind::none; }
};

// One entry of the time-ordered due index: a recipient of a message that is due at a time.
struct DueEntry {
  std::int64_t due_ms = 0;  // wall clock
  MessageId id = 0;
  std::uint16_t recipient = 0;  // index into Envelope::recipients
};

struct StoreOptions {
  std::string path;  // the RocksDB directory, created if missing
  // Inspection of a queue that no daemon has open (RocksDB gives no guarantee to a read-only
  // reader while a writer has the directory open). Sees everything in the WAL, even after a
  // crash; submit() then fails with io_error.
  bool read_only = false;
};

// The entries the due index keeps for an envelope: one per pending recipient, due at its
// next_attempt_ms, or at received_ms while that is 0 (a first attempt); none while the message
// is held. submit() and commit() index exactly these, so a scheduler that feeds its Schedule
// from this function agrees with what a restart rebuilds from for_each_due_while().
std::vector<DueEntry> due_entries(const Envelope& envelope);

// Counters of the group-commit writer, for tests and metrics.
struct StoreStats {
  std::uint64_t batches = 0;         // write batches attempted
  std::uint64_t synced_batches = 0;  // those that carried a new message: one fsync each
  std::uint64_t messages = 0;        // new messages (submits and DSNs) carried by the batches
  std::uint64_t commits = 0;         // envelope updates carried by the batches
  std::uint64_t failed_batches = 0;  // batches the database refused (all their writes failed)
};

// How many messages the store holds, for the queue gauges.
struct MessageCount {
  std::uint64_t messages = 0;  // every stored envelope
  std::uint64_t held = 0;      // of those, held by an operator
};

// The database's disk and compaction state, for metrics; summed over column families.
struct StoreGauges {
  std::uint64_t size_bytes = 0;  // SST and blob files (all versions still on disk) + WAL
  std::uint64_t pending_compaction_bytes = 0;  // RocksDB's estimate of bytes left to compact
  bool write_stall = false;                    // writes are delayed or stopped right now
  std::uint64_t stall_micros_total = 0;        // time writes spent stalled since open
  // The last write failed (disk full, I/O error): mail gets 4xx until a write works again.
  bool refusing_writes = false;
};

class StoreOpenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Store {
 public:
  using Completion = std::function<void(const StoreResult&)>;

  // Opens (or creates) the store and starts its writer thread. Throws StoreOpenError.
  static std::unique_ptr<Store> open(const StoreOptions& options);
  virtual ~Store() = default;

  // A new unique, time-ordered message id. Thread-safe.
  virtual MessageId next_id() = 0;

  // Thread-safe. Hands the message to the group-commit writer: it is written together with
  // whatever other messages are waiting, in one synced batch, and `done` then runs on the
  // writer thread. A message is either wholly stored or not at all.
  // The envelope's id must come from next_id(); at most 65536 recipients (the due index keeps a
  // 16-bit recipient index). `done` must not throw and should only hand the result on (it
  // delays every later batch). After close(), on a read-only store, or when the message is
  // refused before reaching the writer, `done` runs at once on the calling thread.
  virtual void submit(Message message, Completion done) = 0;

  // Stops accepting (later submits and commits complete with shutting_down), writes what is
  // already pending and stops the writer thread; answers the loads already asked for and stops
  // the reader thread. Reads keep working; the database itself is closed when the store is
  // destroyed (which calls close() first). Idempotent. Never call it from a completion.
  virtual void close() = 0;

  virtual StoreStats stats() const = 0;
  // Thread-safe; reads RocksDB's in-memory properties and lists the WAL files, so it is cheap
  // enough for every metrics scrape. Works until the store is destroyed, after close() too.
  virtual StoreGauges gauges() const = 0;

  // Thread-safe. Records what delivery changed in a message: `after` is the whole new envelope
  // (states, attempts, history, next attempt times, held); `before` is the envelope as last
  // stored, so that the store can remove the due-index entries that no longer hold and add
  // the new ones (see due_entries(): holding a message removes them all, releasing it adds
  // them back). When no recipient of `after` is pending any more, the message is deleted
  // (envelope, body and due entries). `dsn`, when given, is a new message (a bounce) stored in
  // the same atomic batch. Goes through the same writer queue as submit(), first in first
  // out, so two commits of one message apply in the order they were made; a batch that
  // carries a new message (submit or dsn) is synced, updates alone are written without
  // waiting for fsync (losing one to a power cut means a repeated delivery, never a lost
  // message). `done` runs as for submit(), with the same errors.
  // The caller serialises the commits of one message and passes as `before` the `after` of
  // the previous one: the store does not read the stored envelope back, so a stale `before`
  // leaves due entries behind, and a commit after the message was deleted stores it again.
  virtual void commit(const Envelope& before, const Envelope& after, std::optional<Message> dsn,
                      Completion done) = 0;

  // Asynchronous read on the store's reader thread, so that loops never wait for the disk.
  // `done` runs on the reader thread with nullopt when the message is gone (with_body = false
  // leaves the body empty). After close() it runs at once, on the calling thread, with nullopt.
  // Like submit()'s, `done` must not throw and should only hand the result on.
  using LoadCompletion = std::function<void(std::optional<Message>)>;
  virtual void load(MessageId id, bool with_body, LoadCompletion done) = 0;

  // Reads, safe from any thread. A record that cannot be decoded is logged and treated as
  // absent (load_*) or skipped (for_each_*), so one bad record never hides the rest.
  virtual std::optional<Envelope> load_envelope(MessageId id) = 0;
  virtual std::optional<std::string> load_body(MessageId id) = 0;
  // Every stored envelope in id order (bodies are not read).
  virtual void for_each_envelope(const std::function<void(const Envelope&)>& visit) = 0;
  // Counts the stored messages without decoding them, as they were when the call began;
  // nullopt when `cancel` became true before the end. A record that cannot be read is logged
  // and not counted.
  virtual std::optional<MessageCount> count_messages(const std::atomic<bool>& cancel) = 0;
  // The id of the oldest stored message (ids are time-ordered), without reading the queue.
  virtual std::optional<MessageId> oldest_id() = 0;
  // Every entry of the due index in time order, until `visit` returns false; this is what a
  // restart rebuilds its schedule from, without reading bodies. True when it saw every entry
  // (false too when a read error, which is logged, cut it short). Reads one consistent view of
  // the index: as it was when the call began.
  virtual bool for_each_due_while(const std::function<bool(const DueEntry&)>& visit) = 0;
};

}  // namespace relayq::queue
