// fuzz_open: opening a set whose SPARE header and DB are hostile. The input
// makes the SPARE header (the valid one, patched, or raw bytes), the DB file
// (the valid one, patched bytes, changed by SQL statements, or raw bytes) and
// the sizes of MAIN and SPARE. Then, as remapctl and the daemon would:
// CheckSet (remapctl check), ReadHealth / LoadEvents / LoadFaultRules on the
// read-only DB (remapctl status, events, fault list), and Engine::Open. All
// must return cleanly (OK or an error Status): no crash, hang or leak.
// Checked besides: a refused Engine::Open leaves DB, MAIN and SPARE as they
// were; an accepted one has a consistent table, serves some I/O, closes,
// and opens again (unless the DB file was damaged below SQL).
//
// Input layout:
//   byte 0, flags: bits 0-1 SPARE header: 0 valid, 1 valid + patches,
//     2 raw (the section, zero-padded to 4096 bytes), 3 no SPARE file;
//     bits 2-3 DB: 0 valid, 1 valid + patches, 2 valid + SQL, 3 raw;
//     bits 4-5 SPARE size: 0 as made, 1 header only, 2 one slot short,
//     3 longer; bit 6: MAIN one sector longer; bit 7: I/O after an open.
//   a section (u16 length, bytes): the SPARE header patches or raw bytes;
//   the rest: the DB patches, SQL text, or raw bytes.
// A patch is (u16 offset, u8 length, bytes), repeated.
//
// REMAPFS_FUZZ_OPEN_SEED=PATH makes the target write one seed to PATH and
// exit: the valid header and DB, both raw (tests/fuzz/make_corpus.py).
#include <sqlite3.h>

#include <string>
#include <vector>

#include "fuzz_util.h"
#include "store/check.h"

namespace remapfs::fuzz {
namespace {

const Template& Geometry() {
  static const Template t = MakeTemplate(512, 64, 8);
  return t;
}

void ApplyPatches(std::string_view patches, std::string* bytes) {
  Reader in(reinterpret_cast<const uint8_t*>(patches.data()), patches.size());
  while (!in.empty() && !bytes->empty()) {
    const size_t off = in.U16() % bytes->size();
    const std::string_view b = in.Bytes(in.U8());
    bytes->replace(off, std::min(b.size(), bytes->size() - off), b.substr(0, bytes->size() - off));
  }
}

// Only changes of content and schema; nothing that reaches other files
// (ATTACH, VACUUM INTO) or the journal mode.
int Authorize(void*, int action, const char* a, const char*, const char*, const char*) {
  switch (action) {
    case SQLITE_INSERT: case SQLITE_UPDATE: case SQLITE_DELETE: case SQLITE_READ: case SQLITE_SELECT:
    case SQLITE_FUNCTION: case SQLITE_TRANSACTION: case SQLITE_SAVEPOINT: case SQLITE_RECURSIVE:
    case SQLITE_CREATE_TABLE: case SQLITE_DROP_TABLE: case SQLITE_CREATE_INDEX: case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_VIEW: case SQLITE_DROP_VIEW: case SQLITE_CREATE_TRIGGER: case SQLITE_DROP_TRIGGER:
    case SQLITE_ALTER_TABLE:
      return SQLITE_OK;
    case SQLITE_PRAGMA:
      return a && (std::string_view(a) == "application_id" || std::string_view(a) == "user_version") ? SQLITE_OK
                                                                                                    : SQLITE_DENY;
    default:
      return SQLITE_DENY;
  }
}

int Progress(void* count) { return ++*static_cast<int*>(count) > 1000; }  // about a million VM steps

void RunSql(const std::string& db, std::string_view sql) {
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_db_config(h, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_limit(h, SQLITE_LIMIT_LENGTH, 1 << 16);
    sqlite3_limit(h, SQLITE_LIMIT_SQL_LENGTH, 1 << 16);
    int steps = 0;
    sqlite3_progress_handler(h, 1000, Progress, &steps);
    sqlite3_set_authorizer(h, Authorize, nullptr);
    (void)sqlite3_exec(h, std::string(sql).c_str(), nullptr, nullptr, nullptr);
  }
  sqlite3_close(h);
  // A connection closed in WAL mode leaves no WAL; one that failed may.
  ::unlink((db + "-wal").c_str());
  ::unlink((db + "-shm").c_str());
}

// Some I/O on an accepted set: results do not matter, only that it runs.
void SomeIo(Engine* engine) {
  // Delay rules from the DB are legitimate, but would make the input slow.
  for (const FaultRule& r : engine->ListFaultRules()) {
    if (r.delay_ms != 0) (void)engine->RemoveFaultRule(r.id);
  }
  std::string buf(engine->size(), '\0');
  (void)engine->Read(0, buf.size(), buf.data());
  const std::string data = test::Pattern(3 * engine->sector_size(), 1);
  (void)engine->Write(0, data.size(), data.data());
  (void)engine->Write(engine->size() - 700, 700, data.data());
  for (uint64_t s = 0; s < engine->sector_count(); s += 7) (void)engine->Read(s * engine->sector_size(), 100, buf.data());
  (void)engine->Flush();
  CheckTable(engine);
}

void OneInput(const uint8_t* data, size_t size) {
  const Template& t = Geometry();
  Reader in(data, size);
  const uint8_t flags = in.U8();
  const std::string_view spare_section = in.Section();
  const std::string_view db_section = in.Rest();

  // SPARE and MAIN.
  auto env = std::make_unique<MemEnv>();
  uint64_t spare_size = t.spare_size();
  switch ((flags >> 4) & 3) {
    case 1: spare_size = kSpareHeaderSize; break;
    case 2: spare_size -= t.sector_size; break;
    case 3: spare_size += 512 * uint64_t{1 + spare_section.size() % 16}; break;
    default: break;
  }
  std::string header = t.spare_header;
  switch (flags & 3) {
    case 1: ApplyPatches(spare_section, &header); break;
    case 2: header = std::string(spare_section.substr(0, kSpareHeaderSize)); header.resize(kSpareHeaderSize); break;
    default: break;
  }
  Status s = env->CreateFile(kMainPath, t.main_size() + ((flags & 0x40) ? 512 : 0));
  if (s.ok() && (flags & 3) != 3) {
    s = env->CreateFile(kSparePath, spare_size);
    env->Poke(kSparePath, 0, header);
  }
  FUZZ_CHECK(s.ok(), s.ToString());

  // The DB.
  const std::string db = WorkDir() + "/open.db";
  std::string db_bytes = t.db;
  const int db_mode = (flags >> 2) & 3;
  switch (db_mode) {
    case 1: ApplyPatches(db_section, &db_bytes); break;
    case 3: db_bytes = std::string(db_section); break;
    default: break;
  }
  PutDb(db, db_bytes);
  if (db_mode == 2) RunSql(db, db_section);
  const SetPaths paths{kMainPath, kSparePath, db};

  // remapctl check, status, events, fault list: read-only.
  std::vector<std::string> problems;
  (void)CheckSet(env.get(), paths, &problems);
  {
    std::unique_ptr<MetaStore> meta;
    if (MetaStore::Open(db, /*read_only=*/true, &meta).ok()) {
      // ReadHealth keeps a byte per slot of the DB's slot count, as the
      // engine does: a DB that claims 2^32 slots costs 4 GiB (known; the
      // engine itself is safe, its SPARE must hold the slots first).
      if (meta->info().slot_count <= (1u << 24)) {
        Health h;
        (void)ReadHealth(meta.get(), &h);
      }
      std::vector<Event> events;
      (void)meta->LoadEvents(50, &events);
      std::vector<FaultRule> rules;
      std::vector<InvalidFaultRule> invalid;
      (void)meta->LoadFaultRules(&rules, &invalid);
    }
  }

  const std::string db_before = ReadFile(db);
  const std::string main_before = env->Contents(kMainPath), spare_before = env->Contents(kSparePath);
  EngineOptions o;
  o.env = env.get();
  o.commit_interval = std::chrono::hours(1);
  o.read_attempts = 1;
  std::unique_ptr<Engine> engine;
  s = Engine::Open(paths, o, &engine);
  if (!s.ok()) {
    FUZZ_CHECK(!s.message().empty(), "a refusal without a reason");
    engine.reset();
    FUZZ_CHECK(ReadFile(db) == db_before, "a refused open changed the DB: " + s.ToString());
    FUZZ_CHECK(env->Contents(kMainPath) == main_before, "a refused open changed MAIN: " + s.ToString());
    FUZZ_CHECK(env->Contents(kSparePath) == spare_before, "a refused open changed SPARE: " + s.ToString());
    RemoveDb(db);
    return;
  }
  CheckTable(engine.get());
  if (flags & 0x80) SomeIo(engine.get());
  s = engine->Close();
  engine.reset();
  if (s.ok()) {
    // What opened and closed in order opens again; unless the DB file's
    // bytes were damaged: the first open (clean, so without an integrity
    // check) may not have read the damaged pages that the close then wrote.
    s = Engine::Open(paths, o, &engine);
    const bool damaged_file = db_mode == 1 || db_mode == 3;
    FUZZ_CHECK(s.ok() || (damaged_file && !s.message().empty()),
               "a set that opened and closed cleanly is refused: " + s.ToString());
    if (s.ok()) {
      CheckTable(engine.get());
      (void)engine->Close();
      engine.reset();
    }
  }
  RemoveDb(db);
}

}  // namespace
}  // namespace remapfs::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace remapfs::fuzz;
  Quiet();
  if (const char* path = std::getenv("REMAPFS_FUZZ_OPEN_SEED")) {
    const Template& t = Geometry();
    std::string seed(1, static_cast<char>(0x80 | 2 | 3 << 2));  // raw header, raw DB, I/O
    seed.push_back(static_cast<char>(t.spare_header.size() & 0xFF));
    seed.push_back(static_cast<char>(t.spare_header.size() >> 8));
    seed += t.spare_header + t.db;
    WriteFile(path, seed);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  remapfs::fuzz::OneInput(data, size);
  return 0;
}
