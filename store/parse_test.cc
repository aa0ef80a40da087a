// ParseByteSize: remapctl's --spare-size.
#include "store/parse.h"

#include <gtest/gtest.h>

namespace remapfs {
namespace {

TEST(ParseByteSize, Accepts) {
  EXPECT_EQ(ParseByteSize("4096"), 4096u);
  EXPECT_EQ(ParseByteSize("64M"), 64u << 20);
  EXPECT_EQ(ParseByteSize("1g"), 1u << 30);
  EXPECT_EQ(ParseByteSize("2T"), uint64_t{2} << 40);
  EXPECT_EQ(ParseByteSize("0"), 0u);
  EXPECT_EQ(ParseByteSize("999999999999999"), 999999999999999u);
  EXPECT_EQ(ParseByteSize("16777215T"), uint64_t{16777215} << 40);  // the largest T that fits
}

TEST(ParseByteSize, Refuses) {
  for (const char* s : {"", "M", "-1", "+1", " 1", "1 ", "1.5M", "1KB", "1x", "0x10", "1234567890123456",
                        "16777216T", "999999999999999T"}) {
    EXPECT_EQ(ParseByteSize(s), std::nullopt) << s;
  }
}

}  // namespace
}  // namespace remapfs
