// Listeners across loops: sockets bound on the caller's thread, accepted on each loop.
#include "mta/inbound/listeners.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "mta/net/listen_socket.hpp"

namespace relayq::mta {

namespace {

void on_connection(uv_stream_t* stream, int status) {
  if (status < 0) return;
  auto* socket = static_cast<ListenSocket*>(stream->data);
  InboundConnection::accept(stream, *socket->listener, *socket->context);
}

std::string_view mode_name(ListenerMode mode) {
  switch (mode) {
    case ListenerMode::relay:
      return "relay";
    case ListenerMode::submission:
      return "submission";
    case ListenerMode::smtps:
      return "smtps";
  }
  return "unknown";
}

}  // namespace

Listeners::Listeners(std::vector<InboundLoop*> loops, metrics::Metrics& metrics)
    : loops_(std::move(loops)), metrics_(metrics) {
  for (InboundLoop* loop : loops_) loop->context.auth_throttle = &auth_throttle_;
}

void Listeners::open(const ListenerConfig& listener,
                     std::shared_ptr<const ListenerSettings> settings) {
  std::vector<int> fds;
  try {
    for (std::size_t i = 0; i < loops_.size(); ++i)
      fds.push_back(net::open_listen_socket(listener.host, listener.port));
  } catch (...) {
    for (int fd : fds) ::close(fd);
    throw;
  }
  auto shared = std::make_unique<ListenerShared>();
  shared->name = listener.address;
  shared->max_connections = listener.max_connections;
  shared->settings = std::move(settings);
  shared->received = &metrics_.messages_received(listener.address);
  for (const metrics::RejectReason reason : metrics::kRejectReasons)
    shared->rejected[static_cast<std::size_t>(reason)] =
        &metrics_.messages_rejected(listener.address, reason);
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    InboundLoop* loop = loops_[i];
    auto socket = std::make_unique<ListenSocket>();
    socket->listener = shared.get();
    socket->context = &loop->context;
    ListenSocket* raw = socket.get();
    loop->sockets.push_back(std::move(socket));
    const int fd = fds[i];
    // The handle belongs to the loop: it is set up there (now, or when the loop starts).
    net::LoopThread* thread = loop->context.loop;
    thread->post([thread, raw, fd, address = listener.address] {
      uv_tcp_init(thread->loop(), &raw->handle);
      raw->handle.data = raw;
      uv_tcp_open(&raw->handle, fd);
      if (const int rc =
              uv_listen(reinterpret_cast<uv_stream_t*>(&raw->handle), 1024, &on_connection);
          rc != 0) {
        spdlog::error("event=listen_failed address={} error={}", address, uv_strerror(rc));
      }
    });
  }
  spdlog::info("event=listening address={} mode={}", listener.address, mode_name(listener.mode));
  open_.push_back(std::move(shared));
}

void Listeners::update(const ListenerConfig& listener,
                       std::shared_ptr<const ListenerSettings> settings) {
  for (auto& shared : open_) {
    if (shared->name != listener.address) continue;
    shared->max_connections = listener.max_connections;
    shared->settings = std::move(settings);
    return;
  }
}

void Listeners::close_on_loops(ListenerShared* listener) {
  for (InboundLoop* loop : loops_) {
    loop->context.loop->post([loop, listener] {
      for (auto& socket : loop->sockets) {
        if (socket->listener != listener || socket->closed) continue;
        socket->closed = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&socket->handle), nullptr);
      }
    });
  }
}

void Listeners::close(const std::string& address) {
  auto it = std::find_if(open_.begin(), open_.end(),
                         [&](const auto& shared) { return shared->name == address; });
  if (it == open_.end()) return;
  close_on_loops(it->get());
  spdlog::info("event=listener_closed address={}", address);
  closed_.push_back(std::move(*it));
  open_.erase(it);
}

void Listeners::close_all() {
  while (!open_.empty()) close(open_.front()->name);
}

bool Listeners::is_open(const std::string& address) const {
  return std::any_of(open_.begin(), open_.end(),
                     [&](const auto& shared) { return shared->name == address; });
}

std::vector<std::string> Listeners::addresses() const {
  std::vector<std::string> out;
  for (const auto& shared : open_) out.push_back(shared->name);
  return out;
}

std::size_t Listeners::open_connections() const {
  std::size_t total = 0;
  for (const auto* list : {&open_, &closed_})
    for (const auto& shared : *list) total += shared->connections.load();
  return total;
}

}  // namespace relayq::mta
