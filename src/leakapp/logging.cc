#include "leakapp/logging.h"

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>

namespace leakapp {
namespace {

// Set once by SetUpLogging and never freed (the page may read it until exit).
std::atomic<spdlog::sinks::ringbuffer_sink_mt*> recent{nullptr};

}  // namespace

void SetUpLogging() {
  auto out = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(kRecentLogLines);
  ring->set_level(spdlog::level::info);  // not the probes, even at debug
  auto logger = std::make_shared<spdlog::logger>("leakapp", spdlog::sinks_init_list{out, ring});
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z [%l] [tid %t] %v");
  logger->flush_on(spdlog::level::info);
  spdlog::register_logger(logger);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL overrides
  // One reference kept for good, so the pointer stays valid.
  static auto keep = ring;
  recent = keep.get();
}

std::vector<std::string> RecentLogLines(size_t limit) {
  auto* ring = recent.load();
  if (ring == nullptr) return {};
  std::vector<std::string> lines = ring->last_formatted(limit);
  for (auto& line : lines) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  }
  return lines;
}

}  // namespace leakapp
