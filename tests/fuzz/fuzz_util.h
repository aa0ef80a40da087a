// Helpers shared by the fuzz targets: a per-process work directory (for the
// real SQLite DB files), a template set built once per process and copied
// for every input, a forward byte reader, and the checks that abort.
#pragma once

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "store/engine.h"
#include "store/meta_store.h"
#include "store/set_format.h"
#include "tests/support/engine_model.h"
#include "tests/support/mem_env.h"
#include "tests/support/testutil.h"

namespace remapfs::fuzz {

// A broken promise: say which and abort, so that libFuzzer keeps the input.
[[noreturn]] inline void Die(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what.c_str());
  std::fflush(stderr);
  std::abort();
}
#define FUZZ_CHECK(cond, what)                                                   \
  do {                                                                           \
    if (!(cond)) ::remapfs::fuzz::Die(__FILE__, __LINE__, std::string(#cond ": ") + (what)); \
  } while (0)

// test::CheckTable: what every engine's table keeps; a failure aborts.
inline void CheckTable(Engine* engine) {
  const Status s = test::CheckTable(engine);
  FUZZ_CHECK(s.ok(), s.ToString());
}

// The engines' log lines are noise at millions of executions.
inline void Quiet() { spdlog::set_level(spdlog::level::off); }

// A directory for this process, made once, in /dev/shm when there is one (a
// DB commit's fsync is then free), removed at exit.
inline const std::string& WorkDir() {
  static const std::string dir = [] {
    std::string base = "/dev/shm";
    if (::access(base.c_str(), W_OK) != 0) base = std::filesystem::temp_directory_path().string();
    std::string tmpl = base + "/remapfs-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) Die(__FILE__, __LINE__, "mkdtemp in " + base);
    static std::string made = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(made, ec);
    });
    return tmpl;
  }();
  return dir;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) Die(__FILE__, __LINE__, "cannot write " + path);
}

// Removes a DB with its WAL and shared-memory files.
inline void RemoveDb(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((path + suffix).c_str());
}

// Writes a DB file from bytes, with no WAL beside it.
inline void PutDb(const std::string& path, std::string_view bytes) {
  RemoveDb(path);
  WriteFile(path, bytes);
}

// A valid set, made once: its DB file's bytes and its SPARE header. The
// identity is fixed (UUID, creation time, paths), so that committed seeds
// that carry a header or a DB match it.
struct Template {
  uint32_t sector_size = 0;
  uint64_t sectors = 0;
  uint32_t slots = 0;
  std::string db;            // the DB file (no WAL)
  std::string spare_header;  // kSpareHeaderSize bytes
  uint64_t main_size() const { return sectors * sector_size; }
  uint64_t spare_size() const { return kSpareHeaderSize + uint64_t{slots} * sector_size; }
};

inline constexpr char kFixedUuid[] = "0f0e0d0c-0b0a-4908-8706-050403020100";
inline constexpr char kMainPath[] = "main.img";
inline constexpr char kSparePath[] = "spare.img";

inline Template MakeTemplate(uint32_t sector_size, uint64_t sectors, uint32_t slots) {
  Template t;
  t.sector_size = sector_size;
  t.sectors = sectors;
  t.slots = slots;
  const std::string db = WorkDir() + "/template-" + std::to_string(sector_size) + ".db";
  RemoveDb(db);
  MemEnv env;
  SetPaths paths{kMainPath, kSparePath, db};
  Status s = env.CreateFile(paths.main, t.main_size());
  if (s.ok()) s = CreateSet(&env, paths, CreateOptions{sector_size, t.spare_size()});
  if (!s.ok()) Die(__FILE__, __LINE__, "template set: " + s.ToString());
  // The fixed identity.
  sqlite3* h = nullptr;
  const std::string sql = std::string("UPDATE set_info SET uuid = '") + kFixedUuid +
                          "', created_us = 0, main_path = '" + kMainPath + "', spare_path = '" + kSparePath + "'";
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK || sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    Die(__FILE__, __LINE__, std::string("template DB: ") + sqlite3_errmsg(h));
  }
  sqlite3_close(h);
  t.db = ReadFile(db);
  RemoveDb(db);
  t.spare_header = EncodeSpareHeader(SpareHeader{kFixedUuid, sector_size, slots, t.main_size(), 0});
  return t;
}

// MAIN (with `main` as its content, zero-padded) and SPARE (header + zero
// slots) of a template in a fresh MemEnv.
inline std::unique_ptr<MemEnv> MakeEnv(const Template& t, const std::string& main = "") {
  auto env = std::make_unique<MemEnv>();
  Status s = env->CreateFile(kMainPath, t.main_size());
  if (s.ok()) s = env->CreateFile(kSparePath, t.spare_size());
  if (!s.ok()) Die(__FILE__, __LINE__, "MemEnv: " + s.ToString());
  if (!main.empty()) env->Poke(kMainPath, 0, main.substr(0, t.main_size()));
  env->Poke(kSparePath, 0, t.spare_header);
  // MAIN as `create` left it: stamped with the set's UUID, which the
  // template DB records as part of MAIN's identity.
  std::unique_ptr<Backend> main_image;
  s = env->OpenBackend(kMainPath, {}, &main_image);
  if (s.ok()) s = main_image->Stamp(kFixedUuid);
  if (!s.ok()) Die(__FILE__, __LINE__, "MemEnv: stamping MAIN: " + s.ToString());
  return env;
}

// Reads the input front to back; past its end every value is zero.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  size_t left() const { return static_cast<size_t>(end_ - p_); }
  uint8_t U8() { return p_ == end_ ? 0 : *p_++; }
  uint16_t U16() {
    const uint16_t lo = U8();
    return static_cast<uint16_t>(lo | U8() << 8);
  }
  uint32_t U32() {
    const uint32_t lo = U16();
    return lo | uint32_t{U16()} << 16;
  }
  std::string_view Bytes(size_t n) {
    n = std::min(n, left());
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  // A section: a 16-bit length, then that many bytes.
  std::string_view Section() { return Bytes(U16()); }
  std::string_view Rest() { return Bytes(left()); }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace remapfs::fuzz
