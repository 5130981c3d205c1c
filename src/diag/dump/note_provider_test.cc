#include "diag/dump/note_provider.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace cppdiag::dump {
namespace {

void ProviderA(void*, NoteOutput*) {}
void ProviderB(void*, NoteOutput*) {}

TEST(NoteProviderTest, RegisterCopyUnregister) {
  int ctx = 0;
  ASSERT_EQ(RegisterNoteProvider(&ProviderA, &ctx), 0);
  EXPECT_EQ(RegisterNoteProvider(&ProviderA, &ctx), EEXIST);
  ASSERT_EQ(RegisterNoteProvider(&ProviderB, nullptr), 0);
  NoteProvider out[kMaxNoteProviders];
  size_t n = CopyNoteProviders(out, kMaxNoteProviders);
  ASSERT_EQ(n, 2u);
  EXPECT_EQ(out[0].fn, &ProviderA);
  EXPECT_EQ(out[0].context, &ctx);
  EXPECT_EQ(CopyNoteProviders(out, 1), 1u);
  EXPECT_EQ(UnregisterNoteProvider(&ProviderA, &ctx), 0);
  EXPECT_EQ(UnregisterNoteProvider(&ProviderA, &ctx), ENOENT);
  n = CopyNoteProviders(out, kMaxNoteProviders);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(out[0].fn, &ProviderB);
  EXPECT_EQ(UnregisterNoteProvider(&ProviderB, nullptr), 0);
}

TEST(NoteProviderTest, TableIsBounded) {
  int ctx[kMaxNoteProviders + 1];
  for (size_t i = 0; i < kMaxNoteProviders; ++i) {
    ASSERT_EQ(RegisterNoteProvider(&ProviderA, &ctx[i]), 0);
  }
  EXPECT_EQ(RegisterNoteProvider(&ProviderA, &ctx[kMaxNoteProviders]), ENOSPC);
  for (size_t i = 0; i < kMaxNoteProviders; ++i) {
    EXPECT_EQ(UnregisterNoteProvider(&ProviderA, &ctx[i]), 0);
  }
  EXPECT_EQ(RegisterNoteProvider(nullptr, nullptr), EINVAL);
}

}  // namespace
}  // namespace cppdiag::dump
