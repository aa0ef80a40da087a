#include "store/check.h"

#include <optional>

#include "store/identity.h"

namespace remapfs {

Status ValidateParts(const SetInfo& info, const std::string& db, Backend* main, Backend* spare, bool adopt_main) {
  if (main->Size() != info.main_size) {
    return Status::Mismatch("MAIN " + main->path() + " is " + std::to_string(main->Size()) +
                            " bytes but the set was made for " + std::to_string(info.main_size) +
                            "; was MAIN replaced or resized?");
  }
  ImageIdentity id;
  Status s = main->Identify(&id);
  if (s.ok()) s = CheckMainIdentity(info, db, main->path(), id, adopt_main);
  if (!s.ok()) return s;
  if (spare->Size() < kSpareHeaderSize) {
    return Status::Corruption("SPARE " + spare->path() + " is truncated (" + std::to_string(spare->Size()) +
                              " bytes, no room for its header)");
  }
  std::string head(kSpareHeaderSize, '\0');
  s = spare->ReadAt(0, head.size(), head.data());
  if (!s.ok()) return s;
  SpareHeader h;
  s = DecodeSpareHeader(head, &h);
  if (!s.ok()) return Status::Corruption("SPARE " + spare->path() + ": " + s.message());
  if (h.uuid != info.uuid) {
    return Status::Mismatch("SPARE " + spare->path() + " belongs to set " + h.uuid + ", but the DB is of set " +
                            info.uuid + "; give the spare and DB that were created together");
  }
  if (h.sector_size != info.sector_size || h.slot_count != info.slot_count || h.main_size != info.main_size) {
    return Status::Mismatch("SPARE " + spare->path() + " header disagrees with the DB about the set's geometry");
  }
  const uint64_t needed = SlotOffset(h.slot_count, h.sector_size);
  if (spare->Size() < needed) {
    return Status::Corruption("SPARE " + spare->path() + " is truncated: " + std::to_string(spare->Size()) +
                              " bytes, its " + std::to_string(h.slot_count) + " slots need " +
                              std::to_string(needed));
  }
  return Status::OK();
}

Status LoadTable(MetaStore* store, RemapTable* table, SlotAllocator* alloc, std::vector<std::string>* problems) {
  const SetInfo& info = store->info();
  const uint64_t sectors = info.main_size / info.sector_size;
  auto problem = [&](std::string p) {
    if (problems->size() < 100) problems->push_back(std::move(p));
  };
  Status s = store->LoadBadSlots([&](uint32_t slot) {
    if (slot >= info.slot_count) {
      problem("bad slot " + std::to_string(slot) + " is out of range (" + std::to_string(info.slot_count) + " slots)");
      return;
    }
    alloc->MarkBad(slot);
  });
  if (!s.ok()) return s;
  // A sector is the table's key, but a damaged DB (or one whose table was
  // remade without the key) can list it twice. Rows come in sector order,
  // so only a sector not above every one seen so far needs a lookup.
  std::optional<uint64_t> highest;
  s = store->LoadSectors([&](uint64_t sector, uint32_t slot) {
    if (sector >= sectors) {
      problem("sector " + std::to_string(sector) + " is past the end of MAIN (" + std::to_string(sectors) + " sectors)");
      return;
    }
    if (highest && sector <= *highest && table->Find(sector)) {
      problem("sector " + std::to_string(sector) + " is listed twice");
      return;
    }
    if (!highest || sector > *highest) highest = sector;
    if (slot != kPendingSlot) {
      if (slot >= info.slot_count) {
        problem("sector " + std::to_string(sector) + " maps to slot " + std::to_string(slot) + ", out of range");
        return;
      }
      if (alloc->is_bad(slot)) {
        problem("sector " + std::to_string(sector) + " maps to slot " + std::to_string(slot) + ", which is bad");
        return;
      }
      // The allocator tells a slot mapped twice (no map over every slot:
      // at 8 bytes a slot that cost 32 GiB for 2^32 slots at every open).
      if (alloc->is_used(slot)) {
        if (problems->size() < 100) {
          uint64_t first = 0;
          table->ForEach([&](const Mapping& m) {
            if (m.slot == slot) first = m.sector;
          });
          problem("slot " + std::to_string(slot) + " is mapped twice, by sectors " + std::to_string(first) + " and " +
                  std::to_string(sector));
        }
        return;
      }
      alloc->MarkUsed(slot);
    }
    table->Set(sector, slot);
  });
  return s;
}

Status ReadHealth(MetaStore* store, Health* health) {
  RemapTable table;
  SlotAllocator alloc(store->info().slot_count);
  std::vector<std::string> problems;
  std::vector<std::pair<std::string, uint64_t>> stored;
  Status s = LoadTable(store, &table, &alloc, &problems);
  if (s.ok()) s = store->LoadCounters(&stored);
  if (!s.ok()) return s;
  Counters counters;  // every counter, as an engine shows them (a set never opened has no rows)
  counters.Load(stored);
  health->counters = counters.Snapshot();
  table.ForEach([&](const Mapping& m) { ++(m.pending() ? health->pending_sectors : health->remapped_sectors); });
  health->slots_total = alloc.slot_count();
  health->slots_free = alloc.free_count();
  health->slots_used = alloc.used_count();
  health->slots_bad = alloc.bad_count();
  health->table_bytes = table.MemoryBytes();
  health->was_clean = store->info().clean;
  // The commit failure a run recorded as it could not stop in order is the
  // previous run's, as Engine::GetHealth says; store_error is a running
  // engine's own.
  health->previous_store_error = store->info().last_error;
  return Status::OK();
}

Status CheckSet(Env* env, const SetPaths& paths, std::vector<std::string>* problems) {
  std::unique_ptr<MetaStore> meta;
  Status s = MetaStore::Open(paths.db, /*read_only=*/true, &meta);
  if (!s.ok()) return s;
  s = meta->IntegrityCheck(/*full=*/true, problems);
  if (!s.ok()) return s;
  std::unique_ptr<Backend> main, spare;
  s = env->OpenBackend(paths.main, BackendOptions{.read_only = true}, &main);
  if (s.ok()) s = env->OpenBackend(paths.spare, BackendOptions{.read_only = true}, &spare);
  if (!s.ok()) return s;
  s = ValidateParts(meta->info(), paths.db, main.get(), spare.get());
  if (!s.ok()) {
    problems->push_back(s.message());
    return Status::OK();
  }
  RemapTable table;
  SlotAllocator alloc(meta->info().slot_count);
  s = LoadTable(meta.get(), &table, &alloc, problems);
  if (!s.ok()) return s;
  std::vector<FaultRule> rules;
  std::vector<InvalidFaultRule> invalid;
  s = meta->LoadFaultRules(&rules, &invalid);
  for (const InvalidFaultRule& r : invalid) {
    problems->push_back("fault rule " + std::to_string(r.id) + " is invalid (" + r.reason +
                        "); the next open of the set drops it");
  }
  return s;
}

}  // namespace remapfs
