#include "leakapp/logging.h"

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace leakapp {

void SetUpLogging() {
  auto logger = spdlog::stdout_logger_mt("leakapp");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z [%l] [tid %t] %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL overrides
}

}  // namespace leakapp
