// SetControl: live (a ControlServer over an engine in this process) and
// offline (the DB, and an engine of its own on real files) answer alike,
// and an offline change refused for bad input leaves the set's files as
// they were.
#include "store/set_control.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "store/control.h"
#include "store/meta_store.h"
#include "tests/support/testharness.h"
#include "tests/support/testutil.h"

namespace remapfs {
namespace {

using json = ControlJson;

std::unique_ptr<SetControl> OpenOrDie(const std::string& target) {
  std::unique_ptr<SetControl> set;
  std::string warning;
  const Status s = SetControl::Open(target, &set, &warning);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(warning, "");
  return set;
}

json StatusJson(SetControl* set) {
  SetStatus st;
  const Status s = set->GetStatus(&st);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return SetStatusToJson(st);
}

// Every key path of an object ("slots.free", "counters.reads", ...).
std::vector<std::string> KeyPaths(const json& j, const std::string& prefix = "") {
  std::vector<std::string> out;
  for (const auto& [k, v] : j.items()) {
    out.push_back(prefix + k);
    if (v.is_object()) {
      for (const std::string& sub : KeyPaths(v, prefix + k + ".")) out.push_back(sub);
    }
  }
  return out;
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The engine of a MemSet serving its control channel, in this process.
struct Daemon {
  explicit Daemon(test::MemSet* set) {
    EXPECT_TRUE(ControlServer::Listen(&server).ok());
    EngineOptions options;
    options.control_socket = server->name();
    engine = set->OpenOrDie(options);
    server->Start(engine.get(), /*read_only=*/false);
  }
  ~Daemon() {
    server.reset();
    EXPECT_TRUE(engine->Close().ok());
  }
  std::unique_ptr<ControlServer> server;
  std::unique_ptr<Engine> engine;
};

// The commit failure a run recorded as it could not stop in order is the
// previous run's error, live and offline alike (offline used to show it as
// store_error, the running engine's own).
TEST(SetControl, LiveAndOfflineStatusHaveTheSameKeysAndErrors) {
  test::QuietLogs quiet;
  test::MemSet set;
  {
    std::unique_ptr<MetaStore> meta;
    ASSERT_TRUE(MetaStore::Open(set.paths.db, /*read_only=*/false, &meta).ok());
    ASSERT_TRUE(meta->SetLastError("commit: disk I/O error (test)").ok());
  }
  auto offline = OpenOrDie(set.paths.db);
  ASSERT_TRUE(offline);
  EXPECT_FALSE(offline->live());
  const json off = StatusJson(offline.get());

  Daemon daemon(&set);
  auto live = OpenOrDie(set.paths.db);
  ASSERT_TRUE(live);
  EXPECT_TRUE(live->live());
  EXPECT_EQ(live->uuid(), offline->uuid());
  const json on = StatusJson(live.get());

  EXPECT_EQ(KeyPaths(on), KeyPaths(off));
  for (const char* k : {"store_error", "previous_store_error", "uuid", "sector_size", "size", "remapped_sectors"}) {
    EXPECT_EQ(on[k], off[k]) << k;
  }
  EXPECT_EQ(off["previous_store_error"], "commit: disk I/O error (test)");
  EXPECT_EQ(off["store_error"], "");
  EXPECT_NE(off["state"], "store-failing");
}

// Each call of a live SetControl is one request; the channel serves one a
// connection, so every call after the first connects anew.
TEST(SetControl, LiveCallsGoToTheDaemon) {
  test::QuietLogs quiet;
  test::MemSet set;
  Daemon daemon(&set);
  Engine* e = daemon.engine.get();
  auto live = OpenOrDie(set.paths.db);
  ASSERT_TRUE(live && live->live());

  ASSERT_TRUE(live->ChangeSector(SectorChange::kRemap, 3).ok());
  ASSERT_TRUE(live->ChangeSector(SectorChange::kMarkPending, 5).ok());
  Status s = live->ChangeSector(SectorChange::kRemap, 3);
  EXPECT_EQ(s.message(), "invalid argument: sector 3 is already remapped to slot 0");
  std::vector<Mapping> mappings;
  ASSERT_TRUE(live->List({0, 5}, &mappings).ok());
  EXPECT_EQ(mappings, (std::vector<Mapping>{{3, 0}}));
  ASSERT_TRUE(live->List({0, UINT64_MAX}, &mappings).ok());
  EXPECT_EQ(mappings, e->List(0, UINT64_MAX));

  FaultRule rule, added;
  rule.sectors = {7, 2};
  rule.probability = 0.25;
  ASSERT_TRUE(live->AddFaultRule(rule, &added).ok());
  EXPECT_EQ(added.id, 1u);
  std::vector<FaultRule> rules;
  ASSERT_TRUE(live->ListFaultRules(&rules).ok());
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].ToString(), e->ListFaultRules()[0].ToString());
  EXPECT_EQ(live->RemoveFaultRule(9).message(), "not found: no fault rule with id 9");
  ASSERT_TRUE(live->ClearFaultRules().ok());
  EXPECT_TRUE(e->ListFaultRules().empty());
  ASSERT_TRUE(live->Flush().ok());

  std::vector<Event> events;
  ASSERT_TRUE(live->Events(10, &events).ok());
  EXPECT_EQ(events.size(), 2u) << "the remap and the pending sector, committed before their replies";
  std::string identity;
  EXPECT_EQ(live->Rebind("/elsewhere", &identity).message(),
            "set " + e->uuid() + " is mounted; unmount it before `remapctl rebind`");

  daemon.server.reset();
  EXPECT_EQ(live->Flush().code(), Status::Code::kIOError) << "the daemon is gone";
}

// A set of real files (an offline change opens an engine on them).
struct FileSet {
  FileSet() {
    paths = {dir.File("main.img"), dir.File("spare.img"), dir.File("set.db")};
    std::ofstream(paths.main).close();
    std::filesystem::resize_file(paths.main, 1 << 20);
    CreateOptions co;
    co.sector_size = 512;
    co.spare_size = kSpareHeaderSize + 64 * 512;
    const Status s = CreateSet(Env::Default(), paths, co);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  std::vector<std::string> Bytes() const {
    return {FileBytes(paths.main), FileBytes(paths.spare), FileBytes(paths.db)};
  }
  test::TempDir dir;
  SetPaths paths;
};

TEST(SetControl, OfflineRefusalsLeaveTheSetAsItWas) {
  test::QuietLogs quiet;
  FileSet fs;
  auto set = OpenOrDie(fs.paths.db);
  ASSERT_TRUE(set && !set->live());
  ASSERT_TRUE(set->ChangeSector(SectorChange::kRemap, 3).ok());
  FaultRule rule, added;
  ASSERT_TRUE(set->AddFaultRule(rule, &added).ok());
  const std::vector<std::string> before = fs.Bytes();

  EXPECT_EQ(set->ChangeSector(SectorChange::kRemap, 2048).message(),
            "sector 2048 is out of range (the image has 2048 sectors)");
  EXPECT_EQ(set->ChangeSector(SectorChange::kRemap, 3).message(), "sector 3 is already remapped to slot 0");
  EXPECT_EQ(set->ChangeSector(SectorChange::kMarkPending, 3).message(),
            "sector 3 is remapped to slot 0; unremap it first");
  EXPECT_EQ(set->ChangeSector(SectorChange::kUnremap, 4).message(), "sector 4 is neither remapped nor pending");
  rule.sectors = {2040, 10};
  EXPECT_EQ(set->AddFaultRule(rule, &added).message(), "sectors 2040+10 are outside main, which has 2048 sectors");
  EXPECT_EQ(set->RemoveFaultRule(99).message(), "no fault rule with id 99");
  EXPECT_TRUE(fs.Bytes() == before) << "a refused change wrote to MAIN, SPARE or the DB";

  std::vector<Mapping> mappings;
  ASSERT_TRUE(set->List({0, UINT64_MAX}, &mappings).ok());
  EXPECT_EQ(mappings, (std::vector<Mapping>{{3, 0}}));
  ASSERT_TRUE(set->ChangeSector(SectorChange::kUnremap, 3).ok());
  ASSERT_TRUE(set->List({0, UINT64_MAX}, &mappings).ok());
  EXPECT_TRUE(mappings.empty());
  ASSERT_TRUE(set->RemoveFaultRule(1).ok());
  std::vector<FaultRule> rules;
  ASSERT_TRUE(set->ListFaultRules(&rules).ok());
  EXPECT_TRUE(rules.empty());
  std::vector<std::string> problems;
  ASSERT_TRUE(set->Check("", "", &problems).ok());
  EXPECT_TRUE(problems.empty()) << problems[0];
  std::string identity;
  ASSERT_TRUE(set->Rebind(fs.paths.main, &identity).ok());
  EXPECT_NE(identity, "");
}

TEST(SetControl, OpenRefusesWhatIsNoSet) {
  test::TempDir dir;
  std::unique_ptr<SetControl> set;
  std::string warning;
  EXPECT_EQ(SetControl::Open(dir.path(), &set, &warning).message(),
            dir.path() + " is a directory but not a remapfs mount: give a set's DB, or the mountpoint of a running remapfs");
  EXPECT_EQ(SetControl::Open(dir.File("none.db"), &set, &warning).message(),
            dir.File("none.db") + " is neither a remapfs DB nor a remapfs mount");
  EXPECT_FALSE(set);
}

}  // namespace
}  // namespace remapfs
