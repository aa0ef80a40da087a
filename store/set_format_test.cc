// Set creation and every refusal, on real files (Env::Default()), so that the
// bytes on disk can be compared: a refused open or create must leave MAIN,
// SPARE and DB (and its WAL) exactly as they were, and say in one line what
// is wrong (DESIGN.md: "bad input never modifies MAIN, SPARE or DB").
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "store/check.h"
#include "store/testutil.h"

namespace remapfs {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

constexpr uint32_t kSs = 4096;
constexpr uint64_t kMainSize = 16 * kSs;
constexpr uint64_t kSpareSize = kSpareHeaderSize + 8 * kSs;

std::optional<std::string> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

// Every file of the directory and its bytes. The -shm file is SQLite's
// shared-memory index, rebuilt from the WAL by any reader: only whether it
// exists counts, not its bytes.
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool shm = name.size() > 4 && name.compare(name.size() - 4, 4, "-shm") == 0;
    out[name] = shm ? "(shm)" : Slurp(entry.path().string()).value_or("(unreadable)");
  }
  return out;
}

void Sql(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

void ExpectOneLine(const Status& s, const std::string& names) {
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(s.message().empty());
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(names), std::string::npos)
      << "the message should say \"" << names << "\": " << s.ToString();
}

class SetFormatTest : public ::testing::Test {
 protected:
  Env* env() { return Env::Default(); }

  SetPaths Paths(const std::string& name) {
    return {dir_.File(name + ".main"), dir_.File(name + ".spare"), dir_.File(name + ".db")};
  }

  // A fresh set: MAIN made here, SPARE and DB by CreateSet.
  SetPaths MakeSet(const std::string& name, uint32_t ss = kSs) {
    SetPaths p = Paths(name);
    Status s = env()->CreateFile(p.main, kMainSize);
    EXPECT_TRUE(s.ok()) << s.ToString();
    s = CreateSet(env(), p, {ss, kSpareSize});
    EXPECT_TRUE(s.ok()) << s.ToString();
    return p;
  }

  Status Open(const SetPaths& p, std::unique_ptr<Engine>* e = nullptr) {
    std::unique_ptr<Engine> local;
    EngineOptions o;
    o.env = env();
    return Engine::Open(p, o, e ? e : &local);
  }

  // Opening must fail with `code`, say `names` in one line, and change no byte.
  void ExpectOpenRefused(const SetPaths& p, Status::Code code, const std::string& names) {
    const auto before = Files(dir_.path());
    std::unique_ptr<Engine> e;
    Status s = Open(p, &e);
    EXPECT_EQ(s.code(), code) << s.ToString();
    ExpectOneLine(s, names);
    EXPECT_EQ(e, nullptr);
    EXPECT_EQ(Files(dir_.path()), before) << "a refused open changed the files";
  }

  void ExpectCreateRefused(const SetPaths& p, const CreateOptions& o, Status::Code code,
                           const std::string& names) {
    const auto before = Files(dir_.path());
    Status s = CreateSet(env(), p, o);
    EXPECT_EQ(s.code(), code) << s.ToString();
    ExpectOneLine(s, names);
    EXPECT_EQ(Files(dir_.path()), before) << "a refused create changed the files";
  }

  TempDir dir_;
};

// --------------------------------------------------------------- creation

TEST_F(SetFormatTest, CreatesAGoodSet) {
  const SetPaths p = MakeSet("a");
  auto spare = Slurp(p.spare);
  ASSERT_TRUE(spare);
  EXPECT_EQ(spare->size(), kSpareSize);
  SpareHeader h;
  ASSERT_TRUE(DecodeSpareHeader(spare->substr(0, kSpareHeaderSize), &h).ok());
  EXPECT_EQ(h.sector_size, kSs);
  EXPECT_EQ(h.slot_count, 8u);
  EXPECT_EQ(h.main_size, kMainSize);
  // Slots start zeroed; MAIN is untouched by create.
  EXPECT_EQ(spare->substr(kSpareHeaderSize), std::string(8 * kSs, '\0'));
  EXPECT_EQ(Slurp(p.main), std::string(kMainSize, '\0'));
  EXPECT_FALSE(fs::exists(p.db + ".creating"));

  std::unique_ptr<MetaStore> meta;
  ASSERT_TRUE(MetaStore::Open(p.db, true, &meta).ok());
  EXPECT_EQ(meta->info().uuid, h.uuid);
  EXPECT_EQ(meta->info().sector_size, kSs);
  EXPECT_EQ(meta->info().main_size, kMainSize);
  EXPECT_EQ(meta->info().slot_count, 8u);
  EXPECT_TRUE(meta->info().clean);
  meta.reset();

  std::vector<std::string> problems;
  ASSERT_TRUE(CheckSet(env(), p, &problems).ok());
  EXPECT_TRUE(problems.empty()) << problems.front();

  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Open(p, &e).ok());
  EXPECT_EQ(e->uuid(), h.uuid);
  EXPECT_EQ(e->size(), kMainSize);
  EXPECT_EQ(e->sector_size(), kSs);
  // Remaps through a write fault, a pending sector and a bad slot: a
  // consistent set still.
  FaultRule r, added;
  r.device = Device::kMain;
  r.sectors = {3, 2};
  r.op = FaultOp::kWrite;
  ASSERT_TRUE(e->AddFaultRule(r, &added).ok());
  r.device = Device::kSpare;
  r.sectors = {0, 1};
  ASSERT_TRUE(e->AddFaultRule(r, &added).ok());
  const std::string data = test::Pattern(4 * kSs, 1);
  ASSERT_TRUE(e->Write(2 * kSs, data.size(), data.data()).ok());
  ASSERT_TRUE(e->MarkPending(9).ok());
  ASSERT_TRUE(e->Close().ok());
  e.reset();
  problems.clear();
  ASSERT_TRUE(CheckSet(env(), p, &problems).ok());
  EXPECT_TRUE(problems.empty()) << problems.front();

  ASSERT_TRUE(Open(p, &e).ok());
  std::string back(data.size(), '\0');
  ASSERT_TRUE(e->Read(2 * kSs, back.size(), back.data()).ok());
  EXPECT_EQ(back, data);
  EXPECT_EQ(e->List(0, e->sector_count()), (std::vector<Mapping>{{3, 1}, {4, 2}, {9, kPendingSlot}}));
}

TEST_F(SetFormatTest, CreatesWith512ByteSectorsIntoAnExistingSpare) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  ASSERT_TRUE(env()->CreateFile(p.spare, kSpareHeaderSize + 10 * 512 + 100).ok());  // a ragged tail
  ASSERT_TRUE(CreateSet(env(), p, {512, 0}).ok());
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Open(p, &e).ok());
  EXPECT_EQ(e->sector_size(), 512u);
  EXPECT_EQ(e->GetHealth().slots_total, 10u);
}

TEST_F(SetFormatTest, CreateRefusesBadSectorSizes) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  for (uint32_t ss : {0u, 1u, 1024u, 2048u, 8192u, 513u}) {
    ExpectCreateRefused(p, {ss, kSpareSize}, Status::Code::kInvalidArgument, "sector size");
  }
}

TEST_F(SetFormatTest, CreateRefusesSectorSizeThatDoesNotDivideMain) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, 3 * kSs + 512).ok());
  ExpectCreateRefused(p, {kSs, kSpareSize}, Status::Code::kInvalidArgument, "multiple of the sector size");
  // An empty MAIN holds no sector at all.
  SetPaths q = Paths("b");
  ASSERT_TRUE(env()->CreateFile(q.main, 0).ok());
  ExpectCreateRefused(q, {512, kSpareSize}, Status::Code::kInvalidArgument, "multiple of the sector size");
}

TEST_F(SetFormatTest, CreateRefusesSpareTooSmallForOneSlot) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  // To be made: not made.
  ExpectCreateRefused(p, {kSs, kSpareHeaderSize + kSs - 1}, Status::Code::kInvalidArgument, "one slot");
  EXPECT_FALSE(fs::exists(p.spare));
  // Existing: left alone.
  Spit(p.spare, test::Pattern(kSpareHeaderSize + kSs - 1, 3));
  ExpectCreateRefused(p, {kSs, 0}, Status::Code::kInvalidArgument, "one slot");
  Spit(p.spare, test::Pattern(100, 3));
  ExpectCreateRefused(p, {kSs, 0}, Status::Code::kInvalidArgument, "one slot");
}

TEST_F(SetFormatTest, CreateRefusesToOverwriteADb) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  Spit(p.db, "not mine to overwrite");
  ExpectCreateRefused(p, {kSs, kSpareSize}, Status::Code::kInvalidArgument, "already exists");
  EXPECT_FALSE(fs::exists(p.spare));
  // An existing set's DB, too.
  const SetPaths a = MakeSet("b");
  ExpectCreateRefused({dir_.File("c.main"), dir_.File("c.spare"), a.db}, {kSs, kSpareSize},
                      Status::Code::kInvalidArgument, "already exists");
}

TEST_F(SetFormatTest, CreateRefusesASpareThatHoldsASet) {
  const SetPaths a = MakeSet("a");
  SetPaths p = Paths("b");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  p.spare = a.spare;
  ExpectCreateRefused(p, {kSs, 0}, Status::Code::kInvalidArgument, "already holds a remapfs set");
  ExpectCreateRefused(p, {kSs, kSpareSize}, Status::Code::kInvalidArgument, "already holds a remapfs set");
  EXPECT_TRUE(Open(a).ok());  // set a is intact
}

TEST_F(SetFormatTest, CreateRefusesOneFileTwice) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  ASSERT_TRUE(env()->CreateFile(p.spare, kSpareSize).ok());
  const std::string three = "three different files";
  ExpectCreateRefused({p.main, p.main, p.db}, {kSs, 0}, Status::Code::kInvalidArgument, three);
  ExpectCreateRefused({p.main, p.spare, p.main}, {kSs, 0}, Status::Code::kInvalidArgument, three);
  ExpectCreateRefused({p.main, p.spare, p.spare}, {kSs, 0}, Status::Code::kInvalidArgument, three);
  // Another name for the same file: a hard link and a symlink.
  const std::string link = dir_.File("link.img"), sym = dir_.File("sym.img");
  ASSERT_EQ(::link(p.main.c_str(), link.c_str()), 0);
  ASSERT_EQ(::symlink(p.main.c_str(), sym.c_str()), 0);
  ExpectCreateRefused({p.main, link, p.db}, {kSs, 0}, Status::Code::kInvalidArgument, three);
  ExpectCreateRefused({sym, p.main, p.db}, {kSs, 0}, Status::Code::kInvalidArgument, three);
  ExpectCreateRefused({p.main, dir_.path() + "/./a.main", p.db}, {kSs, 0},
                      Status::Code::kInvalidArgument, three);
}

TEST_F(SetFormatTest, CreateRefusesMissingMain) {
  SetPaths p = Paths("a");
  const auto before = Files(dir_.path());
  Status s = CreateSet(env(), p, {kSs, kSpareSize});
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  ExpectOneLine(s, p.main);
  EXPECT_EQ(Files(dir_.path()), before);
  // A missing SPARE that is not to be made.
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  const auto before2 = Files(dir_.path());
  s = CreateSet(env(), p, {kSs, 0});
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  ExpectOneLine(s, p.spare);
  EXPECT_EQ(Files(dir_.path()), before2);
}

// ---------------------------------------------------------------- opening

TEST_F(SetFormatTest, RefusesSpareOrDbOfAnotherSet) {
  const SetPaths a = MakeSet("a");
  const SetPaths b = MakeSet("b");
  ExpectOpenRefused({a.main, b.spare, a.db}, Status::Code::kMismatch, "belongs to set");
  ExpectOpenRefused({a.main, a.spare, b.db}, Status::Code::kMismatch, "belongs to set");
  ExpectOpenRefused({b.main, a.spare, b.db}, Status::Code::kMismatch, "belongs to set");
  // Each set on its own is fine.
  EXPECT_TRUE(Open(a).ok());
  EXPECT_TRUE(Open(b).ok());
}

TEST_F(SetFormatTest, RefusesMainWhoseSizeChanged) {
  const SetPaths p = MakeSet("a");
  fs::resize_file(p.main, kMainSize - kSs);
  ExpectOpenRefused(p, Status::Code::kMismatch, "resized");
  fs::resize_file(p.main, kMainSize + kSs);
  ExpectOpenRefused(p, Status::Code::kMismatch, "resized");
  fs::resize_file(p.main, kMainSize + 1);
  ExpectOpenRefused(p, Status::Code::kMismatch, "resized");
  fs::resize_file(p.main, kMainSize);
  EXPECT_TRUE(Open(p).ok());
}

TEST_F(SetFormatTest, RefusesDbOfUnknownFormatVersion) {
  const SetPaths p = MakeSet("a");
  SetPaths copy = p;
  copy.db = dir_.File("copy.db");
  fs::copy_file(p.db, copy.db);
  Sql(copy.db, "PRAGMA user_version=99");
  ExpectOpenRefused(copy, Status::Code::kCorruption, "format version 99");
  EXPECT_TRUE(Open(p).ok());  // the original is fine
}

TEST_F(SetFormatTest, RefusesDbThatIsNotARemapfsDb) {
  const SetPaths p = MakeSet("a");
  SetPaths q = p;
  // A plain SQLite DB.
  q.db = dir_.File("plain.db");
  Sql(q.db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  ExpectOpenRefused(q, Status::Code::kCorruption, "not a remapfs DB");
  // A plain SQLite DB in WAL mode, with a set_info table even.
  q.db = dir_.File("plain-wal.db");
  Sql(q.db, "PRAGMA journal_mode=WAL; CREATE TABLE set_info(id INTEGER PRIMARY KEY, uuid TEXT)");
  ExpectOpenRefused(q, Status::Code::kCorruption, "not a remapfs DB");
  // Zeros, random bytes, an empty file.
  q.db = dir_.File("zeros.db");
  Spit(q.db, std::string(8192, '\0'));
  ExpectOpenRefused(q, Status::Code::kCorruption, "not a remapfs DB");
  q.db = dir_.File("random.db");
  Spit(q.db, test::Pattern(8192, 5));
  ExpectOpenRefused(q, Status::Code::kCorruption, "not a remapfs DB");
  q.db = dir_.File("empty.db");
  Spit(q.db, "");
  ExpectOpenRefused(q, Status::Code::kCorruption, "not a remapfs DB");
  EXPECT_TRUE(Open(p).ok());
}

TEST_F(SetFormatTest, RefusesTruncatedDb) {
  const SetPaths p = MakeSet("a");
  const std::string good = *Slurp(p.db);
  ASSERT_GT(good.size(), 4096u);
  SetPaths q = p;
  q.db = dir_.File("truncated.db");
  for (size_t size : {good.size() - 4096, size_t{4096}, size_t{1000}, size_t{50}}) {
    SCOPED_TRACE(size);
    fs::remove(q.db);
    Spit(q.db, good.substr(0, size));
    const auto before = Files(dir_.path());
    std::unique_ptr<Engine> e;
    Status s = Open(q, &e);
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(s.code() == Status::Code::kCorruption) << s.ToString();
    ExpectOneLine(s, q.db);
    EXPECT_EQ(Files(dir_.path()), before);
  }
}

TEST_F(SetFormatTest, RefusesInconsistentTable) {
  const SetPaths p = MakeSet("a");
  SetPaths q = p;
  q.db = dir_.File("bad-sector.db");
  fs::copy_file(p.db, q.db);
  Sql(q.db, "INSERT INTO sectors VALUES (999999, 0)");
  ExpectOpenRefused(q, Status::Code::kCorruption, "past the end of MAIN");
  q.db = dir_.File("twice.db");
  fs::copy_file(p.db, q.db);
  Sql(q.db, "INSERT INTO sectors VALUES (1, 3); INSERT INTO sectors VALUES (2, 3)");
  ExpectOpenRefused(q, Status::Code::kCorruption, "mapped twice");
  q.db = dir_.File("slot-range.db");
  fs::copy_file(p.db, q.db);
  Sql(q.db, "INSERT INTO sectors VALUES (1, 8)");
  ExpectOpenRefused(q, Status::Code::kCorruption, "out of range");
  q.db = dir_.File("bad-and-used.db");
  fs::copy_file(p.db, q.db);
  Sql(q.db, "INSERT INTO sectors VALUES (1, 2); INSERT INTO bad_slots VALUES (2)");
  ExpectOpenRefused(q, Status::Code::kCorruption, "which is bad");
  // A sector listed twice (a table remade without its key; found by
  // tests/fuzz/fuzz_open in a damaged DB): slots_used would disagree.
  q.db = dir_.File("sector-twice.db");
  fs::copy_file(p.db, q.db);
  Sql(q.db, "DROP TABLE sectors; CREATE TABLE sectors(sector INTEGER, slot INTEGER);"
            "INSERT INTO sectors VALUES (1, 0), (1, NULL)");
  ExpectOpenRefused(q, Status::Code::kCorruption, "listed twice");
  q.db = dir_.File("bad-and-used.db");

  // `remapctl check` sees the same problem.
  std::vector<std::string> problems;
  ASSERT_TRUE(CheckSet(env(), q, &problems).ok());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("which is bad"), std::string::npos) << problems[0];
}

TEST_F(SetFormatTest, RefusesTruncatedSpare) {
  const SetPaths p = MakeSet("a");
  fs::resize_file(p.spare, kSpareSize - 1);
  ExpectOpenRefused(p, Status::Code::kCorruption, "truncated");
  fs::resize_file(p.spare, kSpareHeaderSize);
  ExpectOpenRefused(p, Status::Code::kCorruption, "truncated");
  fs::resize_file(p.spare, 100);
  ExpectOpenRefused(p, Status::Code::kCorruption, "truncated");
}

TEST_F(SetFormatTest, RefusesSpareWithCorruptHeader) {
  const SetPaths p = MakeSet("a");
  const std::string good = *Slurp(p.spare);
  // The checksum covers the whole header: uuid, sizes, time, crc, and the
  // zero tail.
  for (size_t at : {size_t{8}, size_t{20}, size_t{30}, size_t{34}, size_t{40}, size_t{48}, size_t{53},
                    size_t{100}, size_t{kSpareHeaderSize - 1}}) {
    SCOPED_TRACE(at);
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    Spit(p.spare, bad);
    ExpectOpenRefused(p, Status::Code::kCorruption, at == 8 ? "version" : "checksum");
  }
  std::string bad = good;
  bad[0] = 'X';
  Spit(p.spare, bad);
  ExpectOpenRefused(p, Status::Code::kCorruption, "magic");
  Spit(p.spare, std::string(kSpareSize, '\0'));
  ExpectOpenRefused(p, Status::Code::kCorruption, "magic");
  Spit(p.spare, good);
  EXPECT_TRUE(Open(p).ok());
}

TEST_F(SetFormatTest, RefusesMissingFiles) {
  const SetPaths p = MakeSet("a");
  const std::string gone = dir_.File("gone");
  ExpectOpenRefused({gone, p.spare, p.db}, Status::Code::kNotFound, gone);
  ExpectOpenRefused({p.main, gone, p.db}, Status::Code::kNotFound, gone);
  ExpectOpenRefused({p.main, p.spare, gone}, Status::Code::kNotFound, gone);
  ExpectOpenRefused({p.main, p.spare, dir_.File("no/such/dir.db")}, Status::Code::kNotFound, "no/such/dir.db");
}

TEST_F(SetFormatTest, RefusesOneFileTwice) {
  const SetPaths p = MakeSet("a");
  // MAIN given as SPARE: not "another process" (there is none).
  const auto before = Files(dir_.path());
  std::unique_ptr<Engine> e;
  Status s = Open({p.main, p.main, p.db}, &e);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.code(), Status::Code::kBusy) << s.ToString();
  ExpectOneLine(s, "different files");
  EXPECT_EQ(Files(dir_.path()), before);
  s = Open({p.spare, p.spare, p.db}, &e);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.code(), Status::Code::kBusy) << s.ToString();
  EXPECT_EQ(Files(dir_.path()), before);
  // The DB given as MAIN, SPARE given as the DB, or through a link.
  ExpectOpenRefused({p.db, p.spare, p.db}, Status::Code::kInvalidArgument, "different files");
  ExpectOpenRefused({p.main, p.spare, p.spare}, Status::Code::kInvalidArgument, "different files");
  const std::string link = dir_.File("link.img");
  ASSERT_EQ(::link(p.main.c_str(), link.c_str()), 0);
  ExpectOpenRefused({p.main, link, p.db}, Status::Code::kInvalidArgument, "MAIN and SPARE");
  EXPECT_TRUE(Open(p).ok());
}

TEST_F(SetFormatTest, SecondOpenWhileOpenIsBusy) {
  const SetPaths p = MakeSet("a");
  std::unique_ptr<Engine> first;
  ASSERT_TRUE(Open(p, &first).ok());
  const std::string data = test::Pattern(kSs, 1);
  ASSERT_TRUE(first->Write(0, data.size(), data.data()).ok());
  ASSERT_TRUE(first->Remap(5).ok());
  ASSERT_TRUE(first->Flush().ok());
  ExpectOpenRefused(p, Status::Code::kBusy, "in use");
  // The first engine did not notice.
  std::string back(kSs, '\0');
  ASSERT_TRUE(first->Read(0, back.size(), back.data()).ok());
  EXPECT_EQ(back, data);
  ASSERT_TRUE(first->Write(kSs, data.size(), data.data()).ok());
  ASSERT_TRUE(first->Flush().ok());
  ASSERT_TRUE(first->Close().ok());
  first.reset();
  ASSERT_TRUE(Open(p, &first).ok());
  EXPECT_EQ(first->List(0, first->sector_count()), (std::vector<Mapping>{{5, 0}}));
}

TEST_F(SetFormatTest, CheckSetOnAGoodSet) {
  const SetPaths p = MakeSet("a", 512);
  std::vector<std::string> problems;
  Status s = CheckSet(env(), p, &problems);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(problems.empty());
  // CheckSet reads only: an open engine's set can be checked meanwhile, and
  // a check changes no byte.
  const auto before = Files(dir_.path());
  ASSERT_TRUE(CheckSet(env(), p, &problems).ok());
  EXPECT_EQ(Files(dir_.path()), before);
  // A mismatched part is a problem, not a failure to run.
  const SetPaths b = MakeSet("b", 512);
  ASSERT_TRUE(CheckSet(env(), {p.main, b.spare, p.db}, &problems).ok());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("belongs to set"), std::string::npos) << problems[0];
}

}  // namespace
}  // namespace remapfs
