// RemapTable: the in-memory map from a sector of the exposed image to its
// state: a spare slot (remapped) or kPendingSlot (pending). Sectors not in
// the table are normal. Ordered, so that the entries of any range come out in
// sector order for splitting a request into runs.
//
// Layout: a flat two-level B+tree. Leaves hold up to kLeafCapacity sorted
// (sector, slot) pairs in two parallel arrays (12 bytes an entry); a sorted
// vector of (separator key, leaf) finds the leaf. Appends in sector order (the load
// at open) fill leaves completely; random inserts leave them about 70% full.
//
// Every lookup runs on the I/O path, so the search is laid out for the cache
// rather than for a plain binary search, whose ~20 dependent probes are
// cache misses in a table of millions: every kGroup-th separator is copied to
// a small index (hot in the cache), and each leaf keeps the first sector of
// each of its kGroup-entry groups in a head array. A lookup then reads a few
// adjacent cache lines at each level, which the CPU fetches in parallel:
// three rounds of misses (separators with their leaf pointers, the heads,
// the group with its slots) instead of about twenty.
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

  // Inserts or replaces the entry of `sector`. A sector above every entry is
  // appended without a search.
  void Set(uint64_t sector, uint32_t slot);
  // Removes the entry of `sector`; false if there was none.
  bool Erase(uint64_t sector);
  std::optional<uint32_t> Find(uint64_t sector) const;
  // The first entry with sector >= `sector`.
  std::optional<Mapping> FirstFrom(uint64_t sector) const;
  // Calls fn(const Mapping&) for the entries with sector in [first, end), in
  // order. A range without entries costs one lookup.
  template <typename Fn>
  void ForEachIn(uint64_t first, uint64_t end, Fn&& fn) const {
    if (leaves_.empty() || first >= end) return;
    size_t li = LeafFor(first);
    for (uint32_t i = leaves_[li].leaf->LowerBound(first); li < leaves_.size(); ++li, i = 0) {
      const Leaf& leaf = *leaves_[li].leaf;
      for (; i < leaf.n; ++i) {
        if (leaf.sectors[i] >= end) return;
        fn(Mapping{leaf.sectors[i], leaf.slots[i]});
      }
    }
  }
  // Appends the entries with sector in [first, end) to *out, in order.
  void Collect(uint64_t first, uint64_t end, std::vector<Mapping>* out) const;
  // Calls fn(const Mapping&) for every entry in sector order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const LeafRef& ref : leaves_)
      for (uint32_t i = 0; i < ref.leaf->n; ++i) fn(Mapping{ref.leaf->sectors[i], ref.leaf->slots[i]});
  }

  size_t size() const { return size_; }
  // Bytes held by the table, for the memory-per-entry figure.
  size_t MemoryBytes() const;

  static constexpr uint32_t kLeafCapacity = 256;
  // Entries (or separators) summarised by one head (or index) key: 16 keys
  // are two cache lines.
  static constexpr uint32_t kGroup = 16;

 private:
  struct Leaf {
    uint32_t n = 0;
    // heads[g] == sectors[g * kGroup] for every group holding an entry.
    uint64_t heads[kLeafCapacity / kGroup];
    uint64_t sectors[kLeafCapacity];
    uint32_t slots[kLeafCapacity];

    // The position of the first entry >= sector (n if none). Starts the
    // fetch of the slots of that position.
    uint32_t LowerBound(uint64_t sector) const;
    // Recomputes heads from the group of position `pos` on.
    void UpdateHeads(uint32_t pos);
  };
  // A leaf with its separator: leaves_[i].first <= every sector in
  // leaves_[i] < leaves_[i + 1].first; leaves_[0].first is treated as 0.
  // Side by side, so that the lines read to find a leaf hold its pointer.
  struct LeafRef {
    uint64_t first;
    std::unique_ptr<Leaf> leaf;
  };
  // Index of the leaf whose range holds `sector`. REQUIRES: !leaves_.empty().
  size_t LeafFor(uint64_t sector) const;
  // Inserts a leaf at leaves_[pos] and keeps index_ up to date.
  void InsertLeaf(size_t pos, uint64_t first, std::unique_ptr<Leaf> leaf);
  // Recomputes index_ from the group of leaf `pos` on.
  void UpdateIndex(size_t pos);
  // Sets `sector`, which is above every entry. REQUIRES: !leaves_.empty().
  void Append(uint64_t sector, uint32_t slot);

  std::vector<LeafRef> leaves_;
  // index_[k] == leaves_[k * kGroup].first.
  std::vector<uint64_t> index_;
  size_t size_ = 0;
};

}  // namespace remapfs
