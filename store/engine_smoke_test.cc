#include "store/testutil.h"

namespace remapfs {
namespace {

TEST(EngineSmoke, WriteFailureIsRemappedAndInvisible) {
  test::MemSet set;
  auto e = set.OpenOrDie();
  FaultRule r;
  r.device = Device::kMain;
  r.sectors = {10, 2};
  r.op = FaultOp::kWrite;
  FaultRule added;
  ASSERT_TRUE(e->AddFaultRule(r, &added).ok());
  std::string data = test::Pattern(8192, 1);
  Status s = e->Write(4096, data.size(), data.data());
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::string back(data.size(), '\0');
  ASSERT_TRUE(e->Read(4096, back.size(), back.data()).ok());
  EXPECT_EQ(back, data);
  auto list = e->List(0, e->sector_count());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].sector, 10u);
  EXPECT_EQ(list[1].sector, 11u);
  ASSERT_TRUE(e->Flush().ok());
}

}  // namespace
}  // namespace remapfs
