// One libuv event loop on its own thread, with a thread-safe way to run work on it.
#pragma once

#include <uv.h>

#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace relayq::mta::net {

class LoopThread {
 public:
  using Task = std::function<void()>;

  LoopThread();
  ~LoopThread();
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  uv_loop_t* loop() { return &loop_; }

  // Starts the thread; `on_start` runs first on it (to open listeners, say).
  void start(Task on_start);
  // Thread-safe: runs `task` on the loop thread soon. Tasks posted after stop() are dropped.
  void post(Task task);
  // Thread-safe: closes every handle of the loop on its thread and joins it.
  void stop();

 private:
  static void on_wake(uv_async_t* handle);
  void run_tasks();

  uv_loop_t loop_{};
  uv_async_t wake_{};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Task> tasks_;
  bool stopping_ = false;
};

}  // namespace relayq::mta::net
