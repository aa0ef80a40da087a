// Set creation and every refusal, on real files (Env::Default()), so that the
// bytes on disk can be compared: a refused open or create must leave MAIN,
// SPARE and DB (and its WAL) exactly as they were, and say in one line what
// is wrong (DESIGN.md: "bad input never modifies MAIN, SPARE or DB").
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "store/check.h"
#include "store/identity.h"
#include "tests/support/testutil.h"

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
  ASSERT_TRUE(CreateSet(env(), p, {512, std::nullopt}).ok());
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
  ExpectCreateRefused(p, {kSs, std::nullopt}, Status::Code::kInvalidArgument, "one slot");
  Spit(p.spare, test::Pattern(100, 3));
  ExpectCreateRefused(p, {kSs, std::nullopt}, Status::Code::kInvalidArgument, "one slot");
}

// Slots are numbered below the pending marker: a spare with room for more
// is refused before anything is made, not cut down to what fits.
TEST_F(SetFormatTest, CreateRefusesSpareTooBigForTheSlotNumbering) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  const uint64_t too_big_512 = SlotOffset(kMaxSlotCount, 512) + 512;  // 2 TiB + 4 KiB
  // To be made: not made. 512-byte slots would fit at 4096 bytes.
  ExpectCreateRefused(p, {512, too_big_512}, Status::Code::kInvalidArgument,
                      "holds 4294967296 slots of 512 bytes; at most 4294967295 fit the slot numbering: use a spare of "
                      "at most 2199023259136 bytes or --sector-size 4096");
  EXPECT_FALSE(fs::exists(p.spare));
  const uint64_t too_big_4k = SlotOffset(kMaxSlotCount, 4096) + 4096;  // 16 TiB + 4 KiB
  Status s = CreateSet(env(), p, {4096, too_big_4k});
  ExpectOneLine(s, "at most 4294967295 fit the slot numbering: use a spare of at most 17592186044416 bytes");
  EXPECT_EQ(s.message().find("--sector-size"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(p.spare));

  // Existing (sparse, in another directory, as Files reads every byte):
  // left as it was, its space not reserved.
  TempDir other;
  p.spare = other.File("big.spare");
  Spit(p.spare, "");
  if (::truncate(p.spare.c_str(), static_cast<off_t>(too_big_512)) != 0) {
    GTEST_SKIP() << "the temp filesystem takes no sparse file of " << too_big_512 << " bytes: "
                 << std::strerror(errno);
  }
  const auto before = Files(dir_.path());
  s = CreateSet(env(), p, {512, std::nullopt});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  ExpectOneLine(s, "SPARE " + p.spare + " holds 4294967296 slots of 512 bytes");
  EXPECT_EQ(Files(dir_.path()), before) << "a refused create changed the files";
  struct stat st;
  ASSERT_EQ(::stat(p.spare.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), too_big_512);
  EXPECT_EQ(st.st_blocks, 0) << "the refused spare's space was reserved";
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
  ExpectCreateRefused(p, {kSs, std::nullopt}, Status::Code::kInvalidArgument, "already holds a remapfs set");
  ExpectCreateRefused(p, {kSs, kSpareSize}, Status::Code::kInvalidArgument, "already holds a remapfs set");
  EXPECT_TRUE(Open(a).ok());  // set a is intact
}

TEST_F(SetFormatTest, CreateRefusesOneFileTwice) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  ASSERT_TRUE(env()->CreateFile(p.spare, kSpareSize).ok());
  const std::string three = "three different files";
  ExpectCreateRefused({p.main, p.main, p.db}, {kSs, std::nullopt}, Status::Code::kInvalidArgument, three);
  ExpectCreateRefused({p.main, p.spare, p.main}, {kSs, std::nullopt}, Status::Code::kInvalidArgument, three);
  ExpectCreateRefused({p.main, p.spare, p.spare}, {kSs, std::nullopt}, Status::Code::kInvalidArgument, three);
  // Another name for the same file: a hard link and a symlink.
  const std::string link = dir_.File("link.img"), sym = dir_.File("sym.img");
  ASSERT_EQ(::link(p.main.c_str(), link.c_str()), 0);
  ASSERT_EQ(::symlink(p.main.c_str(), sym.c_str()), 0);
  ExpectCreateRefused({p.main, link, p.db}, {kSs, std::nullopt}, Status::Code::kInvalidArgument, three);
  ExpectCreateRefused({sym, p.main, p.db}, {kSs, std::nullopt}, Status::Code::kInvalidArgument, three);
  ExpectCreateRefused({p.main, dir_.path() + "/./a.main", p.db}, {kSs, std::nullopt},
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
  s = CreateSet(env(), p, {kSs, std::nullopt});
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


// ------------------------------------------------------- MAIN's identity

// The set stamp of a file; empty when it has none.
std::string StampOf(const std::string& path) {
  char buf[128];
  const ssize_t n = ::getxattr(path.c_str(), kStampXattr, buf, sizeof(buf));
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// Read-write, which writes nothing but, unlike a read-only reader, leaves no
// -wal and -shm files behind for a later refused open to remove.
SetInfo InfoOf(const std::string& db) {
  std::unique_ptr<MetaStore> meta;
  Status s = MetaStore::Open(db, /*read_only=*/false, &meta);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return meta ? meta->info() : SetInfo{};
}

uint64_t InodeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

TEST_F(SetFormatTest, CreateStampsMainAndRecordsItsIdentity) {
  const SetPaths p = MakeSet("a");
  const SetInfo info = InfoOf(p.db);
  EXPECT_EQ(StampOf(p.main), info.uuid);
  EXPECT_EQ(info.main_identity, "file ino=" + std::to_string(InodeOf(p.main)) + " stamped");
  // The stamp is the only change create makes to MAIN: its bytes are as they were.
  EXPECT_EQ(Slurp(p.main), std::string(kMainSize, '\0'));
}

TEST_F(SetFormatTest, RefusesADifferentMainOfTheSameSize) {
  const SetPaths p = MakeSet("a");
  const std::string data = test::Pattern(kSs, 7);
  {
    std::unique_ptr<Engine> e;
    ASSERT_TRUE(Open(p, &e).ok());
    ASSERT_TRUE(e->Remap(2).ok());
    ASSERT_TRUE(e->Write(2 * kSs, data.size(), data.data()).ok());
    ASSERT_TRUE(e->Close().ok());
  }
  // Another file of the same size, under another name.
  const std::string other = dir_.File("other.main");
  Spit(other, test::Pattern(kMainSize, 9));
  ExpectOpenRefused({other, p.spare, p.db}, Status::Code::kMismatch, "remapctl rebind " + p.db + " --main " + other);
  // A copy of MAIN (cp: a new file, no stamp).
  const std::string copy = dir_.File("copy.main");
  fs::copy_file(p.main, copy);
  ExpectOpenRefused({copy, p.spare, p.db}, Status::Code::kMismatch, "not the disk or file");
  // A copy that kept the stamp (cp -a, a restore from backup): still another file.
  ASSERT_EQ(::setxattr(copy.c_str(), kStampXattr, StampOf(p.main).data(), StampOf(p.main).size(), 0), 0);
  ExpectOpenRefused({copy, p.spare, p.db}, Status::Code::kMismatch, "not the disk or file");
  // The other file renamed into MAIN's place.
  const std::string saved = dir_.File("saved.main");
  fs::rename(p.main, saved);
  fs::rename(other, p.main);
  ExpectOpenRefused(p, Status::Code::kMismatch, "not the disk or file");
  // `remapctl check` says so too.
  std::vector<std::string> problems;
  ASSERT_TRUE(CheckSet(env(), p, &problems).ok());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("not the disk or file"), std::string::npos) << problems[0];
  // MAIN itself, renamed: its identity goes with it.
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Open({saved, p.spare, p.db}, &e).ok());
  std::string back(kSs, '\0');
  ASSERT_TRUE(e->Read(2 * kSs, back.size(), back.data()).ok());
  EXPECT_EQ(back, data);
}

TEST_F(SetFormatTest, RefusesTheMainOfAnotherSet) {
  const SetPaths a = MakeSet("a");
  const SetPaths b = MakeSet("b");
  ExpectOpenRefused({b.main, a.spare, a.db}, Status::Code::kMismatch, "belongs to set " + InfoOf(b.db).uuid);
  // Rebinding does not take another set's MAIN either.
  const auto before = Files(dir_.path());
  std::unique_ptr<Engine> e;
  EngineOptions o;
  o.env = env();
  o.rebind_main = true;
  Status s = Engine::Open({b.main, a.spare, a.db}, o, &e);
  EXPECT_EQ(s.code(), Status::Code::kMismatch) << s.ToString();
  EXPECT_EQ(Files(dir_.path()), before);
  EXPECT_EQ(StampOf(b.main), InfoOf(b.db).uuid);
}

TEST_F(SetFormatTest, CreateRefusesAMainThatBelongsToASet) {
  const SetPaths a = MakeSet("a");
  SetPaths p = Paths("b");
  p.main = a.main;
  ExpectCreateRefused(p, {kSs, kSpareSize}, Status::Code::kInvalidArgument, "already belongs to set");
  EXPECT_FALSE(fs::exists(p.spare));
  EXPECT_FALSE(fs::exists(p.db));
  EXPECT_EQ(StampOf(a.main), InfoOf(a.db).uuid);
  EXPECT_TRUE(Open(a).ok());
}

TEST_F(SetFormatTest, RebindAdoptsAClone) {
  const SetPaths p = MakeSet("a");
  const std::string data = test::Pattern(2 * kSs, 3);
  {
    std::unique_ptr<Engine> e;
    ASSERT_TRUE(Open(p, &e).ok());
    ASSERT_TRUE(e->Write(4 * kSs, data.size(), data.data()).ok());
    ASSERT_TRUE(e->Remap(5).ok());
    ASSERT_TRUE(e->Close().ok());
  }
  const std::string clone = dir_.File("clone.main");
  fs::copy_file(p.main, clone);
  const SetPaths moved{clone, p.spare, p.db};
  ExpectOpenRefused(moved, Status::Code::kMismatch, "remapctl rebind");
  // A clone of the wrong size is refused even so.
  const std::string small = dir_.File("small.main");
  Spit(small, std::string(kMainSize - kSs, '\0'));
  EngineOptions o;
  o.env = env();
  o.rebind_main = true;
  std::unique_ptr<Engine> e;
  EXPECT_EQ(Engine::Open({small, p.spare, p.db}, o, &e).code(), Status::Code::kMismatch);
  ASSERT_TRUE(Engine::Open(moved, o, &e).ok());
  ASSERT_TRUE(e->Close().ok());
  e.reset();
  const SetInfo info = InfoOf(p.db);
  EXPECT_EQ(StampOf(clone), info.uuid);
  EXPECT_EQ(info.main_identity, "file ino=" + std::to_string(InodeOf(clone)) + " stamped");
  EXPECT_EQ(info.main_path, clone);
  // The clone serves the set; the old MAIN no longer does.
  ASSERT_TRUE(Open(moved, &e).ok());
  std::string back(data.size(), '\0');
  ASSERT_TRUE(e->Read(4 * kSs, back.size(), back.data()).ok());
  EXPECT_EQ(back, data);
  EXPECT_EQ(e->List(0, e->sector_count()), (std::vector<Mapping>{{5, 0}}));
  ASSERT_TRUE(e->Close().ok());
  ExpectOpenRefused(p, Status::Code::kMismatch, "not the disk or file");
}

TEST_F(SetFormatTest, SetOfFormatOneRecordsMainsIdentityAtItsNextOpen) {
  const SetPaths p = MakeSet("a");
  // A set as the previous format made it: no identity or control channel
  // column, no stamp.
  Sql(p.db,
      "ALTER TABLE set_info DROP COLUMN main_identity; ALTER TABLE set_info DROP COLUMN control_socket; "
      "PRAGMA user_version=1");
  ASSERT_EQ(::removexattr(p.main.c_str(), kStampXattr), 0);
  EXPECT_EQ(InfoOf(p.db).main_identity, "");
  // A refused open does not migrate it; `remapctl check` takes it as it is.
  ExpectOpenRefused({p.main, dir_.File("none.spare"), p.db}, Status::Code::kNotFound, "none.spare");
  std::vector<std::string> problems;
  ASSERT_TRUE(CheckSet(env(), p, &problems).ok());
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(StampOf(p.main), "");
  // The next open records it.
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Open(p, &e).ok());
  ASSERT_TRUE(e->Close().ok());
  e.reset();
  const SetInfo info = InfoOf(p.db);
  EXPECT_EQ(StampOf(p.main), info.uuid);
  EXPECT_EQ(info.main_identity, "file ino=" + std::to_string(InodeOf(p.main)) + " stamped");
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open_v2(p.db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), kFormatVersion);
  sqlite3_finalize(st);
  sqlite3_close(h);
  // From now on a swap is refused.
  const std::string other = dir_.File("other.main");
  Spit(other, std::string(kMainSize, '\0'));
  ExpectOpenRefused({other, p.spare, p.db}, Status::Code::kMismatch, "not the disk or file");
}

// ------------------------------------------------- SPARE's reserved space

TEST_F(SetFormatTest, CreateReservesTheSpareItMakes) {
  const SetPaths p = MakeSet("a");
  struct stat st;
  ASSERT_EQ(::stat(p.spare.c_str(), &st), 0);
  EXPECT_GE(uint64_t(st.st_blocks) * 512, kSpareSize) << "the spare is sparse";
}

TEST_F(SetFormatTest, CreateReservesAnExistingSparseSpare) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  ASSERT_EQ(::truncate((Spit(p.spare, ""), p.spare.c_str()), kSpareSize), 0);
  ASSERT_TRUE(CreateSet(env(), p, {kSs, std::nullopt}).ok());
  struct stat st;
  ASSERT_EQ(::stat(p.spare.c_str(), &st), 0);
  EXPECT_GE(uint64_t(st.st_blocks) * 512, kSpareSize) << "the spare is sparse";
}

TEST_F(SetFormatTest, CreateRefusesASpareSizeOfZero) {
  SetPaths p = Paths("a");
  ASSERT_TRUE(env()->CreateFile(p.main, kMainSize).ok());
  ExpectCreateRefused(p, {kSs, 0}, Status::Code::kInvalidArgument, "0 bytes is out of range");
  EXPECT_FALSE(fs::exists(p.spare));
}

}  // namespace
}  // namespace remapfs
