// The c-ares channel on a libuv loop: c-ares reports which sockets it wants watched
// (ARES_OPT_SOCK_STATE_CB), a uv_poll_t per socket hands readiness to ares_process_fd, and one
// uv_timer_t fires at ares_timeout so retries and timeouts happen without blocking.
#include "channel.hpp"

#include <arpa/nameser.h>

#include <mutex>
#include <stdexcept>

namespace relayq::dns {
namespace {

// Needed once per process before any channel (it sets up c-ares' allocators); never undone,
// because channels may exist until exit.
void initialize_library() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS)
      throw std::runtime_error(std::string("c-ares: ") + ares_strerror(status));
  });
}

std::string join(const std::vector<std::string>& servers) {
  std::string csv;
  for (const auto& server : servers) csv += (csv.empty() ? "" : ",") + server;
  return csv;
}

template <class Handle>
void close_and_free(Handle* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle),
           [](uv_handle_t* closed) { delete reinterpret_cast<Handle*>(closed); });
}

}  // namespace

Channel::Channel(uv_loop_t* loop, const ResolverOptions& options) : loop_(loop) {
  initialize_library();
  ares_options ares{};
  ares.sock_state_cb = &Channel::on_socket_state;
  ares.sock_state_cb_data = this;
  ares.timeout = static_cast<int>(options.timeout.count());
  ares.tries = options.tries;
  const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  int status = ares_init_options(&channel_, &ares, mask);
  if (status != ARES_SUCCESS)
    throw std::runtime_error(std::string("c-ares: ") + ares_strerror(status));
  if (!options.servers.empty()) {
    const std::string servers = join(options.servers);
    status = ares_set_servers_ports_csv(channel_, servers.c_str());
    if (status != ARES_SUCCESS) {
      ares_destroy(channel_);
      throw std::invalid_argument("dns servers \"" + servers + "\": " + ares_strerror(status));
    }
  }
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

Channel::~Channel() {
  close();
}

void Channel::query(const Question& question, Done done) {
  if (channel_ == nullptr) {
    finished_.push_back({std::move(done), ARES_EDESTRUCTION, {}});
    run_finished();
    return;
  }
  auto* pending = new Pending{this, std::move(done)};
  ares_query(channel_, question.name.c_str(), ns_c_in, static_cast<int>(question.type),
             &Channel::on_answer, pending);
  after_ares();
}

void Channel::close() {
  if (channel_ == nullptr) return;
  // ares_destroy fails every pending query (on_answer) and reports its sockets closed
  // (on_socket_state), which closes their polls.
  ares_destroy(channel_);
  channel_ = nullptr;
  for (auto& [fd, poll] : polls_) close_and_free(poll);
  polls_.clear();
  close_and_free(timer_);
  timer_ = nullptr;
  run_finished();
}

void Channel::on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
  static_cast<Channel*>(data)->watch(fd, readable, writable);
}

void Channel::watch(ares_socket_t fd, int readable, int writable) {
  auto found = polls_.find(fd);
  if (!readable && !writable) {
    // c-ares closes the socket right after this returns: stop watching it now.
    if (found == polls_.end()) return;
    close_and_free(found->second);
    polls_.erase(found);
    return;
  }
  if (found == polls_.end()) {
    auto* poll = new uv_poll_t;
    // Without a poll the query still ends, by its timeout through the timer.
    if (uv_poll_init_socket(loop_, poll, fd) != 0) {
      delete poll;
      return;
    }
    poll->data = this;
    found = polls_.emplace(fd, poll).first;
  }
  uv_poll_start(found->second, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                &Channel::on_poll);
}

void Channel::on_answer(void* arg, int status, int, unsigned char* answer, int length) {
  // Runs inside c-ares: only record the outcome; callbacks run once c-ares has returned.
  auto* pending = static_cast<Pending*>(arg);
  std::vector<unsigned char> packet;
  if (answer != nullptr && length > 0) packet.assign(answer, answer + length);
  pending->channel->finished_.push_back({std::move(pending->done), status, std::move(packet)});
  delete pending;
}

void Channel::on_poll(uv_poll_t* poll, int status, int events) {
  auto* channel = static_cast<Channel*>(poll->data);
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(poll), &fd);
  // On a poll error let c-ares try both directions: it reads the socket's error itself.
  const bool readable = status < 0 || (events & UV_READABLE) != 0;
  const bool writable = status < 0 || (events & UV_WRITABLE) != 0;
  channel->process(readable ? fd : ARES_SOCKET_BAD, writable ? fd : ARES_SOCKET_BAD);
}

void Channel::on_timer(uv_timer_t* timer) {
  static_cast<Channel*>(timer->data)->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

void Channel::process(ares_socket_t read_fd, ares_socket_t write_fd) {
  ares_process_fd(channel_, read_fd, write_fd);
  after_ares();
}

void Channel::after_ares() {
  arm_timer();
  run_finished();
}

void Channel::arm_timer() {
  timeval next{};
  if (ares_timeout(channel_, nullptr, &next) == nullptr) {
    uv_timer_stop(timer_);
    return;
  }
  const std::uint64_t ms = static_cast<std::uint64_t>(next.tv_sec) * 1000 +
                           static_cast<std::uint64_t>(next.tv_usec + 999) / 1000;
  uv_timer_start(timer_, &Channel::on_timer, ms, 0);
}

void Channel::run_finished() {
  // A callback may query (appending here) or close (failing the rest into here): pop first.
  while (!finished_.empty()) {
    Finished finished = std::move(finished_.front());
    finished_.pop_front();
    finished.done(finished.status, std::move(finished.packet));
  }
}

}  // namespace relayq::dns
