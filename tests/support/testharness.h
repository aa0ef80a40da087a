// The unit tests' helpers (gtest): a set in a MemEnv (MAIN and SPARE in
// memory, the DB in a temp dir) and an engine over it; a sector's bytes;
// `remapctl check` of a set. Faults come from real fault rules.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "store/engine.h"
#include "tests/support/engine_model.h"
#include "tests/support/mem_env.h"
#include "tests/support/testutil.h"

namespace remapfs::test {

// One sector's bytes; a failed read is a test failure (and reads as zeros).
inline std::string ReadSector(Engine* e, uint64_t sector) {
  std::string out(e->sector_size(), '\0');
  Status s = e->Read(sector * e->sector_size(), out.size(), out.data());
  EXPECT_TRUE(s.ok()) << "sector " << sector << ": " << s.ToString();
  return out;
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

// `remapctl check` of the closed set finds no problem.
inline void ExpectCheckClean(MemSet& set) {
  const Status s = CheckSetClean(&set.env, set.paths);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

}  // namespace remapfs::test
