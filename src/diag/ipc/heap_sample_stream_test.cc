#include "diag/ipc/heap_sample_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "diag/ipc/trace_data.h"
#include "support/status_matchers.h"

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;
using ::cppdiag::testing::StatusIs;
using ::testing::HasSubstr;

// What the client reads: the frame as text on the wire, parsed again.
nlohmann::json OnTheWire(const nlohmann::json& frame) {
  return nlohmann::json::parse(frame.dump());
}

const std::vector<uint64_t> kStackA = {0x555555555123, 0x7fffffffe001, 0xffffffffffffff01};
const std::vector<uint64_t> kStackB = {0x555555556000};

void Add(HeapSampleEncoder* enc, uint32_t id, const std::vector<uint64_t>& pcs, uint64_t time,
         int32_t tid, uint64_t bytes, double estimated) {
  if (enc->NeedsStack(id)) enc->AddStack(id, pcs.data(), pcs.size());
  enc->AddSample(time, tid, bytes, estimated, id);
}

TEST(HeapSampleStream, RoundTripsAndSendsEachStackOncePerTrace) {
  HeapSampleEncoder enc;
  Add(&enc, 7, kStackA, 19482731002112, 8320, 65536, 103676.4);
  Add(&enc, 2, kStackB, 19482731002200, 8321, 24, 524300.015625);
  Add(&enc, 7, kStackA, 19482731002300, 8320, 64, 524352.0);
  nlohmann::json first = nlohmann::json::object();
  enc.TakeInto(&first);
  EXPECT_EQ(first["heap_stacks"].size(), 2u);
  EXPECT_EQ(first["heap_sample_rows"].size(), 3 * kHeapRowFields);
  EXPECT_EQ(enc.samples(), 0u) << "taken";

  Add(&enc, 7, kStackA, 19482731102000, 8322, 1 << 20, 1048576.0);  // no new stack
  nlohmann::json second = nlohmann::json::object();
  enc.TakeInto(&second);
  EXPECT_TRUE(second["heap_stacks"].empty()) << second.dump();

  TraceData data;
  ASSERT_THAT(AddTraceFrame(OnTheWire(first), &data), IsOk());
  ASSERT_THAT(AddTraceFrame(OnTheWire(second), &data), IsOk());
  ASSERT_EQ(data.heap_samples.size(), 4u);
  const TraceHeapSample& h = data.heap_samples[0];
  EXPECT_EQ(h.tid, 8320);
  EXPECT_EQ(h.time_ns, 19482731002112u);
  EXPECT_EQ(h.bytes, 65536u);
  EXPECT_EQ(h.estimated_bytes, 103676.4);
  EXPECT_EQ(h.pcs, kStackA);
  EXPECT_EQ(data.heap_samples[1].pcs, kStackB);
  EXPECT_EQ(data.heap_samples[1].estimated_bytes, 524300.015625);
  EXPECT_EQ(data.heap_samples[3].pcs, kStackA) << "a stack of an earlier frame";
  EXPECT_EQ(data.heap_samples[3].tid, 8322);
  EXPECT_EQ(data.heap_stacks.size(), 2u);
}

TEST(HeapSampleStream, AnEmptyStackAndNoSamplesAreFine) {
  HeapSampleEncoder enc;
  nlohmann::json frame = nlohmann::json::object();
  enc.TakeInto(&frame);
  TraceData data;
  ASSERT_THAT(AddTraceFrame(OnTheWire(frame), &data), IsOk());
  EXPECT_TRUE(data.heap_samples.empty());
  enc.AddStack(0, nullptr, 0);  // a walk that found no frame
  enc.AddSample(5, 1, 8, 8.0, 0);
  enc.TakeInto(&frame);
  ASSERT_THAT(AddTraceFrame(OnTheWire(frame), &data), IsOk());
  ASSERT_EQ(data.heap_samples.size(), 1u);
  EXPECT_TRUE(data.heap_samples[0].pcs.empty());
}

TEST(HeapSampleStream, AnOlderTargetsSampleObjectsStillRead) {
  TraceData data;
  auto frame = nlohmann::json::parse(R"({"heap_samples": [{"tid": 8320, "time_ns": 5,
      "bytes": 64, "estimated_bytes": 100.5, "pcs": [94650163819170]}]})");
  ASSERT_THAT(AddTraceFrame(frame, &data), IsOk());
  ASSERT_EQ(data.heap_samples.size(), 1u);
  EXPECT_EQ(data.heap_samples[0].pcs, std::vector<uint64_t>{94650163819170});
}

// Each hostile frame is one clear error and adds nothing (the target is
// untrusted: it may be compromised or simply another program's bytes).
struct Hostile {
  const char* name;
  const char* frame;
  const char* message;
};

class HeapSampleStreamHostile : public ::testing::TestWithParam<Hostile> {};

TEST_P(HeapSampleStreamHostile, IsOneClearErrorAndAddsNothing) {
  TraceData data;
  ASSERT_THAT(AddTraceFrame(nlohmann::json::parse(
                                R"({"heap_stacks": [{"id": 1, "pcs": [4096]}],
                                    "heap_sample_rows": [10, 7, 64, 1, 64.5]})"),
                            &data),
              IsOk());
  Status s = AddTraceFrame(nlohmann::json::parse(GetParam().frame), &data);
  EXPECT_THAT(s, StatusIs(EINVAL, HasSubstr(GetParam().message)));
  if (!s.ok()) {
    EXPECT_EQ(s.error().message().find('\n'), std::string::npos) << "one line";
  }
  EXPECT_EQ(data.heap_samples.size(), 1u) << "nothing added";
  EXPECT_EQ(data.heap_stacks.size(), 1u) << "no stack of the bad frame kept";
}

INSTANTIATE_TEST_SUITE_P(
    Frames, HeapSampleStreamHostile,
    ::testing::Values(
        Hostile{"UnknownStackId", R"({"heap_sample_rows": [10, 7, 64, 9, 64.5]})",
                "unknown stack id 9"},
        Hostile{"TruncatedRow", R"({"heap_sample_rows": [10, 7, 64, 1, 64.5, 11, 7]})",
                "a row cut short"},
        Hostile{"StackSentTwice", R"({"heap_stacks": [{"id": 1, "pcs": []}]})", "sent twice"},
        Hostile{"StackIdOutOfRange", R"({"heap_stacks": [{"id": 4294967296, "pcs": []}]})",
                "out of range"},
        Hostile{"NegativeStackId", R"({"heap_stacks": [{"id": -1, "pcs": []}]})", "out of range"},
        Hostile{"StackNotAnArray", R"({"heap_stacks": {"id": 2}})", "not an array"},
        Hostile{"StackWithoutPcs", R"({"heap_stacks": [{"id": 2}]})", "no pcs array"},
        Hostile{"PcNotAnAddress", R"({"heap_stacks": [{"id": 2, "pcs": ["0x10"]}]})",
                "not an address"},
        Hostile{"RowsNotAnArray", R"({"heap_sample_rows": "AAAA"})", "not an array"},
        Hostile{"NegativeTid", R"({"heap_sample_rows": [10, -7, 64, 1, 64.5]})",
                "row 0 has a field of the wrong type"},
        Hostile{"TidTooLarge", R"({"heap_sample_rows": [10, 4294967295, 64, 1, 64.5]})",
                "wrong type"},
        Hostile{"StringField", R"({"heap_sample_rows": [10, 7, "64", 1, 64.5]})", "wrong type"},
        Hostile{"NullEstimate", R"({"heap_sample_rows": [10, 7, 64, 1, null]})", "wrong type"},
        Hostile{"NegativeEstimate", R"({"heap_sample_rows": [10, 7, 64, 1, -1.0]})",
                "bad estimated_bytes"},
        // The stack the bad row's frame defines is not kept either.
        Hostile{"GoodStackBadRow", R"({"heap_stacks": [{"id": 3, "pcs": [1]}],
                                       "heap_sample_rows": [10, 7, 64, 3, 64.5, 1]})",
                "a row cut short"}),
    [](const ::testing::TestParamInfo<Hostile>& p) { return std::string(p.param.name); });

TEST(HeapSampleStream, ARowCannotNameAStackOfAFrameThatWasRefused) {
  TraceData data;
  EXPECT_FALSE(AddTraceFrame(nlohmann::json::parse(R"({"heap_stacks": [{"id": 3, "pcs": [1]}],
                                                        "heap_sample_rows": [1]})"),
                             &data)
                   .ok());
  Status s =
      AddTraceFrame(nlohmann::json::parse(R"({"heap_sample_rows": [1, 2, 3, 3, 4]})"), &data);
  EXPECT_THAT(s, StatusIs(EINVAL, HasSubstr("unknown stack id 3")));
}

TEST(HeapSampleStream, TooDeepAStackIsRefused) {
  nlohmann::json stack = {{"id", 0u}, {"pcs", std::vector<uint64_t>(257, 1)}};
  nlohmann::json frame = nlohmann::json::object();
  frame["heap_stacks"] = nlohmann::json::array({stack});
  TraceData data;
  EXPECT_THAT(AddTraceFrame(frame, &data), StatusIs(EINVAL, HasSubstr("257 frames deep")));
  frame["heap_stacks"][0]["pcs"] = std::vector<uint64_t>(256, 1);
  EXPECT_THAT(AddTraceFrame(frame, &data), IsOk());
}

}  // namespace
}  // namespace cppdiag::ipc
