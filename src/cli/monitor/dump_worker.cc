#include "cli/monitor/dump_worker.h"

#include <system_error>

namespace cppdiag::cli::monitor {

void DumpWorker::Start(const std::function<void()>& work, const std::function<void()>& then) {
  Join();  // the previous firing has finished (!busy): only its thread is left
  busy_.store(true, std::memory_order_relaxed);
  auto run = [this, work, then] {
    work();
    busy_.store(false, std::memory_order_release);
    if (then) then();
  };
  try {
    thread_ = std::thread(run);
  } catch (const std::system_error&) {
    busy_.store(false, std::memory_order_relaxed);
    work();
    if (then) then();
  }
}

void DumpWorker::Join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace cppdiag::cli::monitor
