// Consistency of a set: the checks shared by Engine::Open and `remapctl check`.
#pragma once

#include <string>
#include <vector>

#include "store/backend.h"
#include "store/health.h"
#include "store/meta_store.h"
#include "store/remap_table.h"
#include "store/set_format.h"
#include "store/slot_allocator.h"

namespace remapfs {

// Checks that MAIN and SPARE are the parts the DB (at `db`) describes: MAIN
// still has its size and is the disk or file the set was made with
// (identity.h; adopt_main: any not stamped by another set, for `remapctl
// rebind`); the spare header decodes and names the DB's UUID, sector size,
// slot count and MAIN size; SPARE is not truncated. Reads only.
Status ValidateParts(const SetInfo& info, const std::string& db, Backend* main, Backend* spare,
                     bool adopt_main = false);

// Loads the DB's table into *table and *alloc (both empty, sized from the
// DB's identity) and appends a line to *problems for every inconsistency:
// a sector past MAIN's end, a slot out of range, mapped twice, or both
// mapped and bad.
Status LoadTable(MetaStore* store, RemapTable* table, SlotAllocator* alloc, std::vector<std::string>* problems);

// The Health of a set that no engine has open (for `remapctl status`): the
// DB's counters and table. Reads only.
Status ReadHealth(MetaStore* store, Health* health);

// The whole offline check of `remapctl check`: DB integrity, parts, table,
// fault rules.
// Opens everything read-only and without locks. A non-OK Status means the
// check could not run; a consistent set leaves *problems empty.
Status CheckSet(Env* env, const SetPaths& paths, std::vector<std::string>* problems);

}  // namespace remapfs
