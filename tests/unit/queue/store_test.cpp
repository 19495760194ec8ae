// The store: round trips, group commit, due index, crash recovery, schema, full disk, JSON.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <rocksdb/db.h>

#include "queue/inspect.hpp"
#include "queue/message.hpp"
#include "queue/store.hpp"

namespace relayq::queue {
namespace {

namespace fs = std::filesystem;

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = "/tmp/relayq-store-test-XXXXXX";
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { fs::remove_all(path); }
  std::string store() const { return (path / "queue").string(); }
};

Recipient recipient(std::string address, RecipientState state = RecipientState::pending,
                    std::int64_t next_attempt_ms = 0) {
  Recipient recipient;
  recipient.address = std::move(address);
  recipient.state = state;
  recipient.next_attempt_ms = next_attempt_ms;
  return recipient;
}

Message make_message(MessageId id, std::string body = "Subject: t\r\n\r\nhello\r\n") {
  Message message;
  message.envelope.id = id;
  message.envelope.sender = "sender@example.test";
  message.envelope.recipients.push_back(recipient("rcpt@example.org"));
  message.envelope.received_ms = 1'700'000'000'000;
  message.envelope.size = body.size();
  message.body = std::move(body);
  return message;
}

StoreResult submit_and_wait(Store& store, Message message) {
  std::promise<StoreResult> stored;
  store.submit(std::move(message), [&](const StoreResult& result) { stored.set_value(result); });
  return stored.get_future().get();
}

std::string id_key(MessageId id) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i, id >>= 8) key[static_cast<std::size_t>(i)] = static_cast<char>(id);
  return key;
}

std::vector<DueEntry> due_entries(Store& store) {
  std::vector<DueEntry> entries;
  store.for_each_due_while([&](const DueEntry& entry) {
    entries.push_back(entry);
    return true;
  });
  return entries;
}

std::vector<MessageId> envelope_ids(Store& store) {
  std::vector<MessageId> ids;
  store.for_each_envelope([&](const Envelope& envelope) { ids.push_back(envelope.id); });
  return ids;
}

// The store's directory opened with RocksDB directly, to plant what relayq would never write.
class RawDb {
 public:
  enum Family { meta = 0, envelopes = 1, bodies = 2, due = 3 };

  explicit RawDb(const std::string& path) {
    const std::vector<rocksdb::ColumnFamilyDescriptor> families{
        {rocksdb::kDefaultColumnFamilyName, {}}, {"envelopes", {}}, {"bodies", {}}, {"due", {}}};
    rocksdb::DB* db = nullptr;
    const auto status = rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles_, &db);
    REQUIRE(status.ok());
    db_.reset(db);
  }
  ~RawDb() {
    for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }
  void put(Family family, const std::string& key, const std::string& value) {
    REQUIRE(db_->Put(rocksdb::WriteOptions(), handles_[family], key, value).ok());
  }
  std::string get(Family family, const std::string& key) {
    std::string value;
    REQUIRE(db_->Get(rocksdb::ReadOptions(), handles_[family], key, &value).ok());
    return value;
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

Envelope full_envelope(MessageId id) {
  Envelope envelope;
  envelope.id = id;
  envelope.sender = std::string("s\xff\x00nder@example.test", 19);  // not UTF-8, NUL inside
  envelope.recipients.push_back(recipient("one@example.org"));
  Recipient& two = envelope.recipients.emplace_back(recipient("two@example.net"));
  two.state = RecipientState::delivered;
  two.attempts = 3;
  two.last_reply = "250 2.0.0 Ok";
  two.history = {
      {1'700'000'000'100, "mx.example.net[192.0.2.1]:25", "451 4.7.1 later", "", "policy"},
      {1'700'000'300'100, "", "connection refused", "", "network"},
      {1'700'000'900'100, "mx.example.net[192.0.2.1]:25", "250 2.0.0 Ok",
       "TLSv1.3 TLS_AES_256_GCM_SHA384 verified", ""}};
  Recipient& three = envelope.recipients.emplace_back(
      recipient("three@example.com", RecipientState::bounced,
                /*next_attempt_ms=*/253'402'300'799'999));  // the latest
  three.attempts = 1;
  three.last_reply = "550 5.1.1 no such user";
  envelope.received_ms = 1'700'000'000'000;
  envelope.listener = "[::1]:2525";
  envelope.client_address = "2001:db8::7";
  envelope.helo = "client.example";
  envelope.eight_bit_mime = true;
  envelope.smtputf8 = true;
  envelope.size = 123'456'789'012;
  envelope.held = true;
  return envelope;
}

std::string random_bytes(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    const std::uint64_t word = random();
    std::memcpy(&bytes[i], &word, 8);
  }
  return bytes;
}

}  // namespace

TEST_CASE("an envelope and its body round-trip byte for byte", "[queue][store]") {
  TempDir dir;
  std::string small_body("Subject: nul\r\n\r\na\0b\r\n", 21);
  for (int byte = 0; byte < 256; ++byte) small_body.push_back(static_cast<char>(byte));
  const std::string large_body = random_bytes(20u * 1024 * 1024, 7);

  Envelope small, large;
  {
    auto store = Store::open({.path = dir.store()});
    small = full_envelope(store->next_id());
    large = full_envelope(store->next_id());
    large.recipients.resize(1);
    REQUIRE(submit_and_wait(*store, {small, small_body}).ok());
    REQUIRE(submit_and_wait(*store, {large, large_body}).ok());
    CHECK(store->load_envelope(small.id) == small);
    CHECK(store->load_body(small.id) == small_body);
  }
  auto store = Store::open({.path = dir.store()});
  CHECK(store->load_envelope(small.id) == small);
  CHECK(store->load_envelope(large.id) == large);
  CHECK(store->load_body(small.id) == small_body);
  const auto body = store->load_body(large.id);
  REQUIRE(body);
  CHECK(body->size() == large_body.size());
  CHECK(*body == large_body);

  CHECK_FALSE(store->load_envelope(large.id + 1));
  CHECK_FALSE(store->load_body(large.id + 1));
}

TEST_CASE("concurrent submitters all succeed and share synced batches", "[queue][store]") {
  TempDir dir;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::vector<std::vector<MessageId>> ids(kThreads);
  std::atomic<int> failures{0};
  StoreStats stats;
  {
    auto store = Store::open({.path = dir.store()});
    std::vector<std::thread> threads;
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Each thread behaves like an SMTP session: one message at a time, waiting for its 250.
        for (int i = 0; i < kPerThread; ++i) {
          const MessageId id = store->next_id();
          if (!submit_and_wait(*store, make_message(id, "body of " + format_id(id))).ok()) {
            ++failures;
          }
          ids[t].push_back(id);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    stats = store->stats();
    INFO("batches " << stats.batches << " for " << stats.messages << " messages ("
                    << double(stats.messages) / double(stats.batches) << " per sync) in "
                    << std::chrono::duration<double>(elapsed).count() << " s");
    CHECK(failures == 0);
    CHECK(stats.messages == kThreads * kPerThread);
    CHECK(stats.failed_batches == 0);
    CHECK(stats.batches < stats.messages);
  }

  auto store = Store::open({.path = dir.store()});
  std::set<MessageId> expected;
  for (const auto& mine : ids) expected.insert(mine.begin(), mine.end());
  const auto stored = envelope_ids(*store);
  CHECK(stored.size() == expected.size());
  CHECK(std::set<MessageId>(stored.begin(), stored.end()) == expected);
  CHECK(std::is_sorted(stored.begin(), stored.end()));
  CHECK(due_entries(*store).size() == expected.size());
  for (const MessageId id : {*expected.begin(), *expected.rbegin()}) {
    CHECK(store->load_body(id) == "body of " + format_id(id));
  }
}

TEST_CASE("the due index holds pending recipients in time order", "[queue][store]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  const MessageId a = store->next_id();
  const MessageId b = store->next_id();

  Message first = make_message(a);
  first.envelope.received_ms = 1000;
  first.envelope.recipients = {
      recipient("due-at-reception@x"),
      recipient("done@x", RecipientState::delivered),
      recipient("retry-later@x", RecipientState::pending, 5000),
  };
  Message second = make_message(b);
  second.envelope.received_ms = 2000;
  second.envelope.recipients = {
      recipient("retry-early@x", RecipientState::pending, 1000),
      recipient("gone@x", RecipientState::bounced),
      recipient("due-at-reception@x"),
  };
  // Submission order must not matter.
  REQUIRE(submit_and_wait(*store, std::move(second)).ok());
  REQUIRE(submit_and_wait(*store, std::move(first)).ok());

  const auto entries = due_entries(*store);
  REQUIRE(entries.size() == 4);
  const std::vector<std::tuple<std::int64_t, MessageId, std::uint16_t>> expected{
      {1000, a, 0}, {1000, b, 0}, {2000, b, 2}, {5000, a, 2}};
  for (std::size_t i = 0; i < entries.size(); ++i) {
    CHECK(std::tie(entries[i].due_ms, entries[i].id, entries[i].recipient) == expected[i]);
  }
}

namespace {

// Runs in a forked child: stores `count` messages (ids 1..count), waits for every completion,
// then leaves with _exit, which skips all destructors: the store is neither closed nor
// flushed, as if the daemon were killed right after sending its 250s.
[[noreturn]] void store_then_die(const std::string& path, int count) {
  try {
    auto store = Store::open({.path = path});
    std::atomic<int> done{0}, failed{0};
    std::promise<void> all_done;
    for (int i = 1; i <= count; ++i) {
      store->submit(make_message(MessageId(i), "crash body " + std::to_string(i)),
                    [&](const StoreResult& result) {
                      if (!result.ok()) ++failed;
                      if (++done == count) all_done.set_value();
                    });
    }
    all_done.get_future().wait();
    _exit(failed == 0 ? 0 : 3);
  } catch (...) {
    _exit(4);
  }
}

}  // namespace

TEST_CASE("a read-only open sees what a killed writer left in its WAL", "[queue][store]") {
  TempDir dir;
  constexpr int kMessages = 50;
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) store_then_die(dir.store(), kMessages);

  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      FAIL("the writer child hung");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  // The premise: nothing reached a table file, everything is in the WAL only.
  bool any_table = false;
  std::uintmax_t wal_bytes = 0;
  for (const auto& entry : fs::directory_iterator(dir.store())) {
    if (entry.path().extension() == ".sst") any_table = true;
    if (entry.path().extension() == ".log") wal_bytes += entry.file_size();
  }
  CHECK_FALSE(any_table);
  CHECK(wal_bytes > 0);

  {
    auto store = Store::open({.path = dir.store(), .read_only = true});
    const auto ids = envelope_ids(*store);
    REQUIRE(ids.size() == kMessages);
    for (int i = 1; i <= kMessages; ++i) {
      CHECK(ids[static_cast<std::size_t>(i - 1)] == MessageId(i));
      CHECK(store->load_body(MessageId(i)) == "crash body " + std::to_string(i));
    }
    CHECK(due_entries(*store).size() == kMessages);

    const auto refused = submit_and_wait(*store, make_message(1000));
    CHECK(refused.error == StoreErrorKind::io_error);
    CHECK_FALSE(store->load_envelope(1000));
  }

  // And a writer recovers the same messages.
  auto store = Store::open({.path = dir.store()});
  CHECK(envelope_ids(*store).size() == kMessages);
  CHECK(store->next_id() > MessageId(kMessages));
}

TEST_CASE("open errors name the path", "[queue][store]") {
  TempDir dir;
  const std::string missing = (dir.path / "no-such-queue").string();
  try {
    Store::open({.path = missing, .read_only = true});
    FAIL("a missing store opened read-only");
  } catch (const StoreOpenError& error) {
    CHECK_THAT(error.what(), Catch::Contains(missing));
  }
}

TEST_CASE("a store from a newer schema version is refused", "[queue][store]") {
  TempDir dir;
  { Store::open({.path = dir.store()}); }
  {
    RawDb raw(dir.store());
    CHECK(raw.get(RawDb::meta, "schema_version") == "1");
  }

  SECTION("newer") {
    RawDb(dir.store()).put(RawDb::meta, "schema_version", "999");
    for (const bool read_only : {false, true}) {
      try {
        Store::open({.path = dir.store(), .read_only = read_only});
        FAIL("a store with schema version 999 opened");
      } catch (const StoreOpenError& error) {
        CHECK_THAT(error.what(), Catch::Contains("999") && Catch::Contains(dir.store()));
      }
    }
  }
  SECTION("unreadable") {
    RawDb(dir.store()).put(RawDb::meta, "schema_version", "one");
    CHECK_THROWS_AS(Store::open({.path = dir.store()}), StoreOpenError);
  }
}

TEST_CASE("unreadable records are skipped and reported, never fatal", "[queue][store]") {
  TempDir dir;
  MessageId good = 0;
  {
    auto store = Store::open({.path = dir.store()});
    good = store->next_id();
    REQUIRE(submit_and_wait(*store, make_message(good)).ok());
  }
  {
    RawDb raw(dir.store());
    const std::string record = raw.get(RawDb::envelopes, id_key(good));
    raw.put(RawDb::envelopes, id_key(1), "not msgpack \xc1");
    raw.put(RawDb::envelopes, id_key(2), record.substr(0, record.size() / 2));
    // {"v":1,"r":5}: recipients not an array.
    raw.put(RawDb::envelopes, id_key(3), "\x82\xa1v\x01\xa1r\x05");
    // {"v":9,"r":[]}: a newer format.
    raw.put(RawDb::envelopes, id_key(4), "\x82\xa1v\x09\xa1r\x90");
    // {"v":1,"r":[{"s":7}]}: an unknown recipient state.
    raw.put(RawDb::envelopes, id_key(5), "\x82\xa1v\x01\xa1r\x91\x81\xa1s\x07");
    // {"v":1,"r":[],"s":1.5}: a sender that is not a string.
    raw.put(RawDb::envelopes, id_key(6),
            std::string("\x83\xa1v\x01\xa1r\x90\xa1s\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 16));
    raw.put(RawDb::envelopes, id_key(7), "");
    raw.put(RawDb::due, "short", "");
  }
  auto store = Store::open({.path = dir.store()});
  for (MessageId bad = 1; bad <= 7; ++bad) CHECK_FALSE(store->load_envelope(bad));
  CHECK(store->load_envelope(good));
  CHECK(envelope_ids(*store) == std::vector<MessageId>{good});
  const auto due = due_entries(*store);
  REQUIRE(due.size() == 1);
  CHECK(due[0].id == good);
  // The id source still moves past the planted records.
  CHECK(store->next_id() > good);
}

TEST_CASE("count_messages counts stored and held messages without decoding them",
          "[queue][store]") {
  TempDir dir;
  MessageId held = 0;
  {
    auto store = Store::open({.path = dir.store()});
    for (int i = 0; i < 3; ++i)
      REQUIRE(submit_and_wait(*store, make_message(store->next_id())).ok());
    Message message = make_message(store->next_id());
    message.envelope.held = true;
    held = message.envelope.id;
    REQUIRE(submit_and_wait(*store, std::move(message)).ok());

    std::atomic<bool> cancel{false};
    const auto count = store->count_messages(cancel);
    REQUIRE(count);
    CHECK(count->messages == 4);
    CHECK(count->held == 1);
    cancel = true;
    CHECK_FALSE(store->count_messages(cancel));  // cut short: no partial figure
  }
  {
    RawDb raw(dir.store());
    raw.put(RawDb::envelopes, id_key(1), "not msgpack \xc1");
    // {"v":1,"o":1}: "held" is not a boolean.
    raw.put(RawDb::envelopes, id_key(2), "\x82\xa1v\x01\xa1o\x01");
    // {"v":1,"r":[{"o":true}]}: a nested "o" is not the message's.
    raw.put(RawDb::envelopes, id_key(3), "\x82\xa1v\x01\xa1r\x91\x81\xa1o\xc3");
  }
  auto store = Store::open({.path = dir.store()});
  const std::atomic<bool> cancel{false};
  const auto count = store->count_messages(cancel);
  REQUIRE(count);
  CHECK(count->messages == 5);  // the four, and the record with a nested "o"
  CHECK(count->held == 1);
  CHECK(store->load_envelope(held)->held);
}

TEST_CASE("for_each_due_while stops when its visitor says so", "[queue][store]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  for (int i = 0; i < 3; ++i) REQUIRE(submit_and_wait(*store, make_message(store->next_id())).ok());
  std::vector<DueEntry> seen;
  CHECK_FALSE(store->for_each_due_while([&](const DueEntry& entry) {
    seen.push_back(entry);
    return false;
  }));
  CHECK(seen.size() == 1);
  seen.clear();
  CHECK(store->for_each_due_while([&](const DueEntry& entry) {
    seen.push_back(entry);
    return true;
  }));
  CHECK(seen.size() == 3);
}

TEST_CASE("close writes what is pending, then refuses new messages", "[queue][store]") {
  TempDir dir;
  constexpr int kMessages = 100;
  std::atomic<int> stored{0};
  MessageId first = 0;
  {
    auto store = Store::open({.path = dir.store()});
    for (int i = 0; i < kMessages; ++i) {
      const MessageId id = store->next_id();
      if (i == 0) first = id;
      store->submit(make_message(id), [&](const StoreResult& result) {
        if (result.ok()) ++stored;
      });
    }
    store->close();
    CHECK(stored == kMessages);

    StoreResult late;
    bool ran = false;
    store->submit(make_message(store->next_id()), [&](const StoreResult& result) {
      late = result;
      ran = true;
    });
    CHECK(ran);  // at once, on this thread
    CHECK(late.error == StoreErrorKind::shutting_down);
    CHECK(store->stats().messages == kMessages);
    CHECK(store->load_envelope(first));  // reads outlive close()
    store->close();                      // idempotent
  }
  auto store = Store::open({.path = dir.store()});
  CHECK(envelope_ids(*store).size() == kMessages);
}

TEST_CASE("a message with more recipients than the due index can number is refused",
          "[queue][store]") {
  TempDir dir;
  auto store = Store::open({.path = dir.store()});
  Message message = make_message(store->next_id());
  message.envelope.recipients.resize(65537, recipient("many@x"));
  const MessageId id = message.envelope.id;
  CHECK(submit_and_wait(*store, std::move(message)).error == StoreErrorKind::io_error);
  CHECK_FALSE(store->load_envelope(id));
}

TEST_CASE("a full disk fails a submit with no_space and the store recovers when space returns",
          "[queue][store][nospace]") {
  TempDir dir;
  const fs::path mountpoint = dir.path / "tmpfs";
  fs::create_directory(mountpoint);
  // RocksDB preallocates ~70 MiB for its WAL when it opens, so only a message larger than that
  // runs out of space; and after a full disk it waits for 64 MiB free (one write buffer) before
  // resuming. 160 MiB leaves room for the filler to free that much.
  if (mount("tmpfs", mountpoint.c_str(), "tmpfs", 0, "size=160m") != 0) {
    WARN("SKIPPED: cannot mount a tmpfs here (" << std::strerror(errno)
                                                << "); the disk-full path is untested");
    return;
  }
  // Declared after dir, so it unmounts before dir is removed.
  struct Unmount {
    fs::path path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mountpoint};
  const std::string path = (mountpoint / "queue").string();
  const fs::path filler = mountpoint / "filler";

  MessageId before = 0, failed = 0, after = 0;
  {
    auto store = Store::open({.path = path});
    before = store->next_id();
    REQUIRE(submit_and_wait(*store, make_message(before)).ok());

    const int fd = ::open(filler.c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    const std::string chunk(64 * 1024, 'x');
    while (::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    const int write_errno = errno;
    ::close(fd);
    REQUIRE(write_errno == ENOSPC);

    failed = store->next_id();
    const auto result = submit_and_wait(*store, make_message(failed, std::string(80u << 20, 'x')));
    INFO("detail: " << result.detail);
    CHECK(result.error == StoreErrorKind::no_space);
    CHECK_FALSE(store->load_envelope(failed));
    CHECK_FALSE(store->load_body(failed));

    fs::remove(filler);
    // RocksDB notices the free space by polling (every 5 s); until then submits keep failing
    // with no_space, and each retry is a new message to the client.
    StoreResult recovered;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    do {
      after = store->next_id();
      recovered = submit_and_wait(*store, make_message(after));
      if (recovered.ok()) break;
      CHECK(recovered.error == StoreErrorKind::no_space);
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    } while (std::chrono::steady_clock::now() < deadline);
    INFO("detail: " << recovered.detail);
    CHECK(recovered.ok());
    CHECK(store->stats().failed_batches >= 1);
  }
  // Nothing of the failed message was kept, and everything else survives a reopen.
  auto store = Store::open({.path = path});
  CHECK(envelope_ids(*store) == std::vector<MessageId>{before, after});
  CHECK_FALSE(store->load_body(failed));
  const auto due = due_entries(*store);
  REQUIRE(due.size() == 2);
  CHECK(due[0].id == before);
  CHECK(due[1].id == after);
}

TEST_CASE("envelope_to_json_line renders one compact JSON object", "[queue][inspect]") {
  Envelope envelope;
  envelope.id = 0x0123456789ABCDEF;
  envelope.sender = "a@example.test";
  envelope.recipients = {recipient("b@example.org", RecipientState::delivered),
                         recipient("c@x", RecipientState::pending, 1'700'000'000'000)};
  envelope.recipients[0].attempts = 2;
  envelope.recipients[0].last_reply = "250 ok";
  envelope.recipients[0].history = {{1, "mx", "250 ok", "", ""}};
  envelope.recipients[1].attempts = 1;
  envelope.recipients[1].last_reply = "451 \"later\"";
  envelope.received_ms = 1'699'999'999'000;
  envelope.size = 1234;
  envelope.listener = "127.0.0.1:2525";
  envelope.client_address = "192.0.2.7";
  envelope.helo = "client.example";
  envelope.held = true;
  CHECK(envelope_to_json_line(envelope) ==
        R"({"id":"0123456789ABCDEF","sender":"a@example.test","recipients":[)"
        R"({"address":"b@example.org","state":"delivered","attempts":2,"last_reply":"250 ok",)"
        R"("next_attempt_ms":0},{"address":"c@x","state":"pending","attempts":1,)"
        R"("last_reply":"451 \"later\"","next_attempt_ms":1700000000000}],)"
        R"("received_ms":1699999999000,"size":1234,"listener":"127.0.0.1:2525",)"
        R"("client_address":"192.0.2.7","helo":"client.example","held":true})");

  envelope.helo = "bad\xff";
  const std::string line = envelope_to_json_line(envelope);
  CHECK_THAT(line, Catch::Contains("\"helo\":\"bad\xef\xbf\xbd\""));
  CHECK(line.find('\n') == std::string::npos);
}

}  // namespace relayq::queue
