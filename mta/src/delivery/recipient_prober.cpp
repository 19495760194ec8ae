// Recipient verification by RCPT probes to the mailbox server of our own domains. Loop thread
// only: DNS answers and connection events arrive on it.
#include "mta/delivery/recipient_prober.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

#include "mta/common/log_format.hpp"

namespace relayq::mta {

namespace {

// Long enough to spare the mailbox server a lookup per message, short enough that a new
// user receives mail within a minute of being added.
constexpr std::int64_t kCacheMs = 60'000;

RecipientVerdict verdict_of(const SmtpReply& reply) {
  if (reply.success()) return RecipientVerdict::exists;
  if (reply.code == 0) return RecipientVerdict::unavailable;
  return reply.permanent() ? RecipientVerdict::unknown : RecipientVerdict::temporary;
}

std::shared_ptr<const ClientSessionConfig> probe_config(const DeliverySettings& settings) {
  auto config = std::make_shared<ClientSessionConfig>();
  config->helo_name = settings.hostname;
  config->lmtp = true;
  config->tls = TlsPolicy::off;  // routes that verify are LMTP to this machine or its network
  config->greeting_timeout = config->command_timeout = std::chrono::seconds(20);
  return config;
}

}  // namespace

RecipientProber::RecipientProber(uv_loop_t* loop,
                                 const std::shared_ptr<const DeliverySettings>& settings,
                                 std::function<dns::Resolver&()> resolver)
    : loop_(loop),
      settings_(settings),
      resolver_(std::move(resolver)),
      session_config_(probe_config(*settings)) {}

RecipientProber::~RecipientProber() = default;

void RecipientProber::verify(const std::string& address, Done done) {
  const auto now = static_cast<std::int64_t>(uv_now(loop_));
  if (const auto it = cache_.find(address); it != cache_.end()) {
    if (now < it->second.until_ms) return done(it->second.verdict);
    cache_.erase(it);
  }
  if (stopped_) return done(RecipientVerdict::unavailable);
  auto& waiters = waiting_[address];
  waiters.push_back(std::move(done));
  if (waiters.size() == 1) start_probe(address);
}

void RecipientProber::start_probe(const std::string& address) {
  const std::string domain = address.substr(address.rfind('@') + 1);
  const Route route = settings_->router.route_for(domain);
  if (!route.lmtp) {
    // Only LMTP routes verify (the config reader says so); a reload may have changed it.
    return answer(address, RecipientVerdict::exists);
  }
  if (!route.unix_path.empty()) return open(address, route, {});
  dns::resolve_host(resolver_(), route.name, route.port,
                    [this, address, route](dns::NextHopResult result) {
                      if (stopped_) return;
                      if (result.status != dns::NextHopStatus::ok) {
                        spdlog::warn("event=recipient_probe_failed rcpt={} reason={}", address,
                                     quoted(result.reason));
                        return answer(address, RecipientVerdict::unavailable);
                      }
                      open(address, route, std::move(result.hops));
                    });
}

void RecipientProber::open(const std::string& address, const Route& route,
                           std::vector<dns::NextHop> hops) {
  ConnectionEvents& events = *this;  // a private base: converted here, inside the class
  auto connection = std::make_unique<OutboundConnection>(
      loop_, events, route.key, std::move(hops), route.unix_path, session_config_,
      OutboundTimeouts{.connect_ms = 10'000, .idle_ms = 0});
  OutboundConnection* pointer = connection.get();
  probes_.emplace(pointer, Probe{std::move(connection), address});
  pointer->start();
}

// A probe's answer, once: a probe that already answered may still be closing when a new one
// for the same address is under way.
void RecipientProber::answer(Probe& probe, RecipientVerdict verdict) {
  if (std::exchange(probe.answered, true)) return;
  answer(probe.address, verdict);
}

// Tells every waiter, and remembers a yes or a no.
void RecipientProber::answer(const std::string& address, RecipientVerdict verdict) {
  if (verdict == RecipientVerdict::exists || verdict == RecipientVerdict::unknown) {
    cache_[address] = {verdict, static_cast<std::int64_t>(uv_now(loop_)) + kCacheMs};
  }
  const auto it = waiting_.find(address);
  if (it == waiting_.end()) return;
  const std::vector<Done> waiters = std::move(it->second);
  waiting_.erase(it);
  for (const auto& done : waiters) done(verdict);
}

void RecipientProber::connection_ready(OutboundConnection& connection) {
  const auto it = probes_.find(&connection);
  if (it == probes_.end() || stopped_) return connection.quit();
  OutboundMessage probe;
  probe.recipients = {it->second.address};
  probe.probe = true;
  connection.send(Job{}, std::move(probe));
}

void RecipientProber::transaction_done(OutboundConnection& connection, Job,
                                       const TransactionResult& result) {
  const auto it = probes_.find(&connection);
  connection.quit();
  if (it == probes_.end() || result.recipients.empty()) return;
  const SmtpReply& reply = result.recipients.front();
  if (reply.code == 0 || (!reply.success() && !reply.permanent())) {
    spdlog::warn("event=recipient_probe_failed rcpt={} nexthop={} reply={}", it->second.address,
                 connection.nexthop(), quoted(reply.text));
  }
  answer(it->second, verdict_of(reply));
}

void RecipientProber::connection_failed(OutboundConnection& connection, const SmtpReply& reason) {
  const auto it = probes_.find(&connection);
  if (it == probes_.end()) return;
  spdlog::warn("event=recipient_probe_failed rcpt={} reason={}", it->second.address,
               quoted(reason.text));
  answer(it->second, RecipientVerdict::unavailable);
}

// A probe that ended without an answer (lost, or stopped) leaves its waiters unanswered no
// longer.
void RecipientProber::connection_closed(OutboundConnection& connection) {
  const auto it = probes_.find(&connection);
  if (it == probes_.end()) return;
  Probe probe = std::move(it->second);
  probes_.erase(it);
  answer(probe, RecipientVerdict::unavailable);
  // `probe` destroys the connection here, after its last event.
}

void RecipientProber::stop() {
  stopped_ = true;
  for (auto& [pointer, probe] : probes_) probe.connection->shut_down();
}

}  // namespace relayq::mta
