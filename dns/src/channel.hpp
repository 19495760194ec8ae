// One c-ares channel whose sockets (uv_poll_t) and timeouts (uv_timer_t) are driven by a libuv
// loop, so no lookup ever blocks the loop.
#pragma once

#include <ares.h>
#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "dns/resolver.hpp"
#include "lookup.hpp"

namespace relayq::dns {

class Channel {
 public:
  // `status` is an ARES_* code; `packet` holds the server's answer when there was one.
  using Done = std::function<void(int status, std::vector<unsigned char> packet)>;

  // Throws std::invalid_argument for unusable options.servers, std::runtime_error when c-ares
  // cannot start.
  Channel(uv_loop_t* loop, const ResolverOptions& options);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // `done` never runs inside c-ares: callers may query again or close from it.
  void query(const Question& question, Done done);
  // Fails pending queries with ARES_EDESTRUCTION and closes the libuv handles.
  void close();

 private:
  struct Pending {
    Channel* channel;
    Done done;
  };
  struct Finished {
    Done done;
    int status;
    std::vector<unsigned char> packet;
  };

  static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable);
  static void on_answer(void* arg, int status, int timeouts, unsigned char* answer, int length);
  static void on_poll(uv_poll_t* poll, int status, int events);
  static void on_timer(uv_timer_t* timer);

  void watch(ares_socket_t fd, int readable, int writable);
  void process(ares_socket_t read_fd, ares_socket_t write_fd);
  void after_ares();
  void arm_timer();
  void run_finished();

  uv_loop_t* loop_;
  ares_channel channel_ = nullptr;
  uv_timer_t* timer_ = nullptr;  // heap-allocated: freed by its close callback, after us
  std::map<ares_socket_t, uv_poll_t*> polls_;
  std::deque<Finished> finished_;
};

}  // namespace relayq::dns
