// The parsers of store/parse.h: remapctl's options and the daemon's -o
// options.
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

TEST(ParseDecimal, AcceptsDigitsUpTo64Bits) {
  EXPECT_EQ(ParseDecimal("0"), 0u);
  EXPECT_EQ(ParseDecimal("007"), 7u);
  EXPECT_EQ(ParseDecimal("18446744073709551615"), UINT64_MAX);
  for (const char* s : {"", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "18446744073709551616",
                        "99999999999999999999", "1,2"}) {
    EXPECT_EQ(ParseDecimal(s), std::nullopt) << s;
  }
  EXPECT_EQ(ParseDecimal(std::string_view("1\0", 2)), std::nullopt);
}

TEST(ParseNumber, ChecksTheRangeAndNamesTheOption) {
  uint64_t v = 99;
  EXPECT_TRUE(ParseNumber("--times", "1", 1, 10, &v).ok());
  EXPECT_EQ(v, 1u);
  EXPECT_TRUE(ParseNumber("--times", "10", 1, 10, &v).ok());
  EXPECT_EQ(v, 10u);
  // The inputs of issue 7 item 6, and their kind.
  for (const char* s : {"-1", "0", "11", "18446744073709551616", "", " 5", "5x", "-0"}) {
    v = 99;
    const Status st = ParseNumber("--times", s, 1, 10, &v);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << s;
    EXPECT_EQ(st.message(), std::string("--times '") + s + "' is not a whole number from 1 to 10");
    EXPECT_EQ(v, 99u) << "changed on a refusal: " << s;
  }
  EXPECT_TRUE(ParseNumber("--seed", "18446744073709551615", 0, UINT64_MAX, &v).ok());
  EXPECT_EQ(v, UINT64_MAX);
}

TEST(ParseProbability, AcceptsOnlyZeroToOne) {
  double p = 0;
  for (auto [text, want] : {std::pair{"1", 1.0}, {"0.5", 0.5}, {"1e-3", 1e-3}, {"1.0", 1.0}, {".25", 0.25}}) {
    EXPECT_TRUE(ParseProbability("--probability", text, &p).ok()) << text;
    EXPECT_EQ(p, want) << text;
  }
  for (const char* s : {"0", "0.0", "-0.5", "1.0001", "2", "", "nan", "inf", "-inf", "0x1p-1", "0.5 ", " 0.5",
                        "+0.5", "1e-400", "half"}) {
    const Status st = ParseProbability("--probability", s, &p);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << s;
    EXPECT_NE(st.message().find("is not a probability in (0, 1]"), std::string::npos) << st.message();
  }
}

TEST(CheckFileName, RefusesWhatIsNotOnePlainName) {
  for (const char* s : {"main.img", "a b", "..a", "...", "x.", "ü"}) {
    EXPECT_TRUE(CheckFileName("name", s).ok()) << s;
  }
  EXPECT_TRUE(CheckFileName("name", std::string(255, 'a')).ok());
  for (std::string_view s : {std::string_view(""), std::string_view("."), std::string_view(".."),
                             std::string_view("a/b"), std::string_view("/"), std::string_view("a\nb"),
                             std::string_view("a\tb"), std::string_view("\x7f"), std::string_view("a\0b", 3)}) {
    const Status st = CheckFileName("name", s);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << s;
    EXPECT_EQ(st.message().rfind("name '", 0), 0u) << st.message();
  }
  EXPECT_FALSE(CheckFileName("name", std::string(256, 'a')).ok());
  EXPECT_EQ(CheckFileName("name", "..").message(), "name '..' names a directory; give a plain file name");
}

TEST(EscapeMountOption, EscapesCommasAndBackslashes) {
  EXPECT_EQ(EscapeMountOption("/srv/a.img"), "/srv/a.img");
  EXPECT_EQ(EscapeMountOption("/srv/a,b.img"), "/srv/a\\,b.img");
  EXPECT_EQ(EscapeMountOption("a\\b,"), "a\\\\b\\,");
}

}  // namespace
}  // namespace remapfs
