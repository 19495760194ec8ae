// One libuv event loop on its own thread; other threads reach it through post().
#include "mta/net/loop_thread.hpp"

#include <stdexcept>

namespace relayq::mta::net {

LoopThread::LoopThread() {
  if (uv_loop_init(&loop_) != 0) throw std::runtime_error("uv_loop_init failed");
  uv_async_init(&loop_, &wake_, &LoopThread::on_wake);
  wake_.data = this;
}

LoopThread::~LoopThread() {
  stop();
  uv_loop_close(&loop_);
}

void LoopThread::start(Task on_start) {
  thread_ = std::thread([this, on_start = std::move(on_start)] {
    if (on_start) on_start();
    uv_run(&loop_, UV_RUN_DEFAULT);
  });
}

void LoopThread::post(Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  uv_async_send(&wake_);
}

void LoopThread::on_wake(uv_async_t* handle) {
  static_cast<LoopThread*>(handle->data)->run_tasks();
}

void LoopThread::run_tasks() {
  std::vector<Task> tasks;
  {
    std::lock_guard lock(mutex_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

void LoopThread::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      // The last task: close whatever handles are still open so that uv_run returns.
      tasks_.push_back([this] {
        uv_walk(
            &loop_,
            [](uv_handle_t* handle, void*) {
              if (!uv_is_closing(handle)) uv_close(handle, nullptr);
            },
            nullptr);
      });
      stopping_ = true;
    }
  }
  uv_async_send(&wake_);
  thread_.join();
}

}  // namespace relayq::mta::net
