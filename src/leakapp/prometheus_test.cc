#include "leakapp/prometheus.h"

#include <gtest/gtest.h>

namespace leakapp {
namespace {

TEST(RenderPrometheusText, WritesHelpTypeAndSamples) {
  std::vector<MetricFamily> families = {
      {"a_bytes", "Some bytes.", MetricType::kGauge, {{{}, 1048576}}},
      {"b_total",
       "Faults.",
       MetricType::kCounter,
       {{{{"kind", "minor"}}, 3}, {{{"kind", "ma\"j\\or"}}, 0.5}}},
      {"empty", "Left out.", MetricType::kGauge, {}},
  };
  EXPECT_EQ(RenderPrometheusText(families),
            "# HELP a_bytes Some bytes.\n"
            "# TYPE a_bytes gauge\n"
            "a_bytes 1048576\n"
            "# HELP b_total Faults.\n"
            "# TYPE b_total counter\n"
            "b_total{kind=\"minor\"} 3\n"
            "b_total{kind=\"ma\\\"j\\\\or\"} 0.5\n");
}

TEST(RenderPrometheusText, PrintsLargeIntegersExactly) {
  std::vector<MetricFamily> families = {{"x", "X.", MetricType::kGauge, {{{}, 314572800.0}}}};
  EXPECT_EQ(RenderPrometheusText(families), "# HELP x X.\n# TYPE x gauge\nx 314572800\n");
}

}  // namespace
}  // namespace leakapp
