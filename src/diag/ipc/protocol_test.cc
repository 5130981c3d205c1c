#include "diag/ipc/protocol.h"
#include "support/status_matchers.h"

#include <gtest/gtest.h>

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;

TEST(Protocol, HeaderRoundTrips) {
  std::string frame = EncodeFrame(static_cast<uint16_t>(Command::kDump), "{\"type\":\"mini\"}");
  ASSERT_EQ(frame.size(), kHeaderSize + 15);
  EXPECT_EQ(frame.substr(0, 7), "CPPDIAG");
  auto h = DecodeHeader(frame, kMaxRequestPayload);
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(h->version, kVersion);
  EXPECT_EQ(h->code, 2);
  EXPECT_EQ(h->payload_size, 15u);
  // Little-endian on the wire, whatever the host.
  EXPECT_EQ(static_cast<unsigned char>(frame[10]), 2);
  EXPECT_EQ(static_cast<unsigned char>(frame[12]), 15);
}

TEST(Protocol, RejectsBadMagicVersionAndSize) {
  std::string frame = EncodeFrame(1, "{}");
  std::string bad_magic = frame;
  bad_magic[0] = 'X';
  EXPECT_NE(DecodeHeader(bad_magic, 100).error().message().find("magic"), std::string::npos);
  std::string bad_version = frame;
  bad_version[8] = 9;
  EXPECT_NE(DecodeHeader(bad_version, 100).error().message().find("version 9"), std::string::npos);
  EXPECT_NE(
      DecodeHeader(EncodeFrame(1, std::string(200, ' ')), 100).error().message().find("exceeds"),
      std::string::npos);
  EXPECT_FALSE(DecodeHeader(frame.substr(0, 10), 100).ok());
}

TEST(Protocol, SocketNameCarriesPidAndStartTime) {
  EXPECT_EQ(SocketName(42, 123456), "cppdiag-42-123456-socket");
  EXPECT_STREQ(CommandName(2), "dump");
  EXPECT_STREQ(CommandName(999), "unknown");
}

}  // namespace
}  // namespace cppdiag::ipc
