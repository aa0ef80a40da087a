// RemapTable: the in-memory map from a sector of the exposed image to its
// state: a spare slot (remapped) or kPendingSlot (pending). Sectors not in
// the table are normal. Ordered, so that the entries of any range come out in
// sector order for splitting a request into runs.
//
// Layout: a flat two-level B+tree. Leaves hold up to kLeafCapacity sorted
// (sector, slot) pairs in two parallel arrays (12 bytes an entry); a sorted
// vector of separator keys finds the leaf. Appends in sector order fill
// leaves completely; random inserts leave them about 70% full.
//
// Thread-safety: none; the engine guards each table with its own lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace remapfs {

inline constexpr uint32_t kPendingSlot = UINT32_MAX;

struct Mapping {
  uint64_t sector;
  uint32_t slot;  // kPendingSlot for a pending sector
  bool pending() const { return slot == kPendingSlot; }
  bool operator==(const Mapping&) const = default;
};

class RemapTable {
 public:
  RemapTable();
  ~RemapTable();
  RemapTable(const RemapTable&) = delete;
  RemapTable& operator=(const RemapTable&) = delete;

  // Inserts or replaces the entry of `sector`.
  void Set(uint64_t sector, uint32_t slot);
  // Removes the entry of `sector`; false if there was none.
  bool Erase(uint64_t sector);
  std::optional<uint32_t> Find(uint64_t sector) const;
  // Appends the entries with sector in [first, end) to *out, in order.
  void Collect(uint64_t first, uint64_t end, std::vector<Mapping>* out) const;
  // Calls fn(const Mapping&) for every entry in sector order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& leaf : leaves_)
      for (uint32_t i = 0; i < leaf->n; ++i) fn(Mapping{leaf->sectors[i], leaf->slots[i]});
  }

  size_t size() const { return size_; }
  // Bytes held by the table, for the memory-per-entry figure.
  size_t MemoryBytes() const;

  static constexpr uint32_t kLeafCapacity = 256;

 private:
  struct Leaf {
    uint32_t n = 0;
    uint64_t sectors[kLeafCapacity];
    uint32_t slots[kLeafCapacity];
  };
  // Index of the leaf whose range holds `sector`. REQUIRES: !leaves_.empty().
  size_t LeafFor(uint64_t sector) const;

  std::vector<std::unique_ptr<Leaf>> leaves_;
  // separators_[i] <= every sector in leaves_[i] < separators_[i + 1];
  // separators_[0] is treated as 0.
  std::vector<uint64_t> separators_;
  size_t size_ = 0;
};

}  // namespace remapfs
