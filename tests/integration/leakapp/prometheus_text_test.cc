// The test's Prometheus reader must reject what it is there to catch.
#include "integration/leakapp/prometheus_text.h"

#include <gtest/gtest.h>

namespace cppdiag::testing {
namespace {

TEST(PrometheusTextReader, ReadsWellFormedText) {
  std::string error;
  auto parsed = ParsePrometheusText(
      "# HELP a_total Things.\n# TYPE a_total counter\na_total{kind=\"x\\\"y\"} 3\n"
      "# HELP b Bytes.\n# TYPE b gauge\nb 1.5e+06 1700000000000\n",
      &error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->Value("a_total", {{"kind", "x\"y"}}), 3.0);
  EXPECT_EQ(parsed->Value("b"), 1.5e6);
  EXPECT_FALSE(parsed->Value("a_total"));
}

TEST(PrometheusTextReader, RejectsWhatIsNotPrometheusText) {
  const char* const bad[] = {
      "a 1\n",                                      // no HELP, no TYPE
      "# HELP a A.\na 1\n",                         // no TYPE
      "# TYPE a gauge\na 1\n",                      // no HELP
      "# HELP a A.\n# TYPE a gauge\na x\n",         // not a number
      "# HELP a A.\n# TYPE a gauge\na\n",           // no value
      "# HELP a A.\n# TYPE a sometimes\na 1\n",     // unknown type
      "# HELP a A.\n# TYPE a gauge\na{k=\"v} 1\n",  // unterminated label
      "# HELP a A.\n# TYPE a gauge\na 1 2 3\n",     // trailing text
  };
  for (const char* text : bad) {
    std::string error;
    EXPECT_FALSE(ParsePrometheusText(text, &error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
}

}  // namespace
}  // namespace cppdiag::testing
