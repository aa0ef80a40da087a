// Helpers for the store's tests: a private temp dir, a MemEnv holding MAIN
// and SPARE, and an engine over them. Faults come from real fault rules.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "store/engine.h"
#include "store/mem_env.h"

namespace remapfs::test {

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "remapfs-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Bytes that differ from sector to sector and write to write.
inline std::string Pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A set in a MemEnv (MAIN, SPARE) with its DB in a temp dir.
struct MemSet {
  explicit MemSet(uint64_t main_size = 1 << 20, uint32_t slots = 64, uint32_t sector_size = 512) {
    paths = {"main.img", "spare.img", dir.File("set.db")};
    Status s = env.CreateFile(paths.main, main_size);
    if (s.ok()) s = CreateSet(&env, paths, {sector_size, kSpareHeaderSize + uint64_t{slots} * sector_size});
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  Status Open(std::unique_ptr<Engine>* engine, EngineOptions options = {}) {
    options.env = &env;
    return Engine::Open(paths, options, engine);
  }
  std::unique_ptr<Engine> OpenOrDie(EngineOptions options = {}) {
    std::unique_ptr<Engine> e;
    Status s = Open(&e, options);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return e;
  }

  TempDir dir;
  MemEnv env;
  SetPaths paths;
};

}  // namespace remapfs::test
