#include "store/remap_table.h"

#include <algorithm>
#include <cstring>

namespace remapfs {
namespace {

// The number of keys[0..n) that are <= key, for a sorted run of at most a
// few cache lines: a branchless scan, whose loads are independent (fetched
// in parallel) and whose outcome the branch predictor need not guess.
uint32_t CountAtOrBelow(const uint64_t* keys, uint32_t n, uint64_t key) {
  uint32_t count = 0;
  for (uint32_t i = 0; i < n; ++i) count += keys[i] <= key;
  return count;
}

}  // namespace

RemapTable::RemapTable() = default;
RemapTable::~RemapTable() = default;

uint32_t RemapTable::Leaf::LowerBound(uint64_t sector) const {
  if (n == 0 || sector <= sectors[0]) return 0;
  // The last group whose head is < sector holds the answer or ends before it.
  const uint32_t groups = (n + kGroup - 1) / kGroup;
  const uint32_t begin = (CountAtOrBelow(heads, groups, sector - 1) - 1) * kGroup;
  // Find and ForEachIn read a slot next: fetch it with the group's sectors.
  __builtin_prefetch(slots + begin);
  __builtin_prefetch(slots + begin + kGroup - 1);
  return begin + CountAtOrBelow(sectors + begin, std::min(kGroup, n - begin), sector - 1);
}

void RemapTable::Leaf::UpdateHeads(uint32_t pos) {
  for (uint32_t i = pos / kGroup * kGroup; i < n; i += kGroup) heads[i / kGroup] = sectors[i];
}

size_t RemapTable::LeafFor(uint64_t sector) const {
  // index_[0] and leaves_[0].first stand for 0: every sector is at or above.
  const size_t k = std::upper_bound(index_.begin() + 1, index_.end(), sector) - index_.begin() - 1;
  const size_t begin = k * kGroup, end = std::min(begin + kGroup, leaves_.size());
  size_t li = begin;
  for (size_t i = begin + 1; i < end; ++i) li += leaves_[i].first <= sector;
  return li;
}

void RemapTable::InsertLeaf(size_t pos, uint64_t first, std::unique_ptr<Leaf> leaf) {
  leaves_.insert(leaves_.begin() + static_cast<ptrdiff_t>(pos), LeafRef{first, std::move(leaf)});
  UpdateIndex(pos);
}

void RemapTable::UpdateIndex(size_t pos) {
  index_.resize((leaves_.size() + kGroup - 1) / kGroup);
  for (size_t i = pos / kGroup * kGroup; i < leaves_.size(); i += kGroup) index_[i / kGroup] = leaves_[i].first;
}

void RemapTable::Append(uint64_t sector, uint32_t slot) {
  if (leaves_.back().leaf->n == kLeafCapacity) InsertLeaf(leaves_.size(), sector, std::make_unique<Leaf>());
  Leaf* leaf = leaves_.back().leaf.get();
  leaf->sectors[leaf->n] = sector;
  leaf->slots[leaf->n] = slot;
  if (leaf->n % kGroup == 0) leaf->heads[leaf->n / kGroup] = sector;
  ++leaf->n;
  ++size_;
}

void RemapTable::Set(uint64_t sector, uint32_t slot) {
  if (leaves_.empty()) InsertLeaf(0, 0, std::make_unique<Leaf>());
  const Leaf& last = *leaves_.back().leaf;
  if (size_ == 0 || (last.n > 0 && sector > last.sectors[last.n - 1])) return Append(sector, slot);
  size_t li = LeafFor(sector);
  Leaf* leaf = leaves_[li].leaf.get();
  uint32_t pos = leaf->LowerBound(sector);
  if (pos < leaf->n && leaf->sectors[pos] == sector) {
    leaf->slots[pos] = slot;
    return;
  }
  if (leaf->n == kLeafCapacity) {
    // A full leaf splits in the middle (appends past the end took Append).
    auto fresh = std::make_unique<Leaf>();
    const uint32_t mid = kLeafCapacity / 2;
    fresh->n = leaf->n - mid;
    std::memcpy(fresh->sectors, leaf->sectors + mid, fresh->n * sizeof(uint64_t));
    std::memcpy(fresh->slots, leaf->slots + mid, fresh->n * sizeof(uint32_t));
    fresh->UpdateHeads(0);
    leaf->n = mid;
    const uint64_t separator = fresh->sectors[0];
    InsertLeaf(li + 1, separator, std::move(fresh));
    if (sector >= separator) {
      ++li;
      leaf = leaves_[li].leaf.get();
      pos = leaf->LowerBound(sector);
    }
  }
  std::memmove(leaf->sectors + pos + 1, leaf->sectors + pos, (leaf->n - pos) * sizeof(uint64_t));
  std::memmove(leaf->slots + pos + 1, leaf->slots + pos, (leaf->n - pos) * sizeof(uint32_t));
  leaf->sectors[pos] = sector;
  leaf->slots[pos] = slot;
  ++leaf->n;
  leaf->UpdateHeads(pos);
  ++size_;
}

bool RemapTable::Erase(uint64_t sector) {
  if (leaves_.empty()) return false;
  const size_t li = LeafFor(sector);
  Leaf* leaf = leaves_[li].leaf.get();
  const uint32_t pos = leaf->LowerBound(sector);
  if (pos == leaf->n || leaf->sectors[pos] != sector) return false;
  std::memmove(leaf->sectors + pos, leaf->sectors + pos + 1, (leaf->n - pos - 1) * sizeof(uint64_t));
  std::memmove(leaf->slots + pos, leaf->slots + pos + 1, (leaf->n - pos - 1) * sizeof(uint32_t));
  --leaf->n;
  --size_;
  leaf->UpdateHeads(pos);
  if (leaf->n == 0 && leaves_.size() > 1) {
    // The neighbours' separators still bound their keys; drop the empty leaf
    // (the only one stays: Set appends to it).
    leaves_.erase(leaves_.begin() + static_cast<ptrdiff_t>(li));
    UpdateIndex(li);
  }
  return true;
}

std::optional<uint32_t> RemapTable::Find(uint64_t sector) const {
  if (leaves_.empty()) return std::nullopt;
  const Leaf& leaf = *leaves_[LeafFor(sector)].leaf;
  const uint32_t pos = leaf.LowerBound(sector);
  if (pos == leaf.n || leaf.sectors[pos] != sector) return std::nullopt;
  return leaf.slots[pos];
}

std::optional<Mapping> RemapTable::FirstFrom(uint64_t sector) const {
  if (leaves_.empty()) return std::nullopt;
  size_t li = LeafFor(sector);
  for (uint32_t i = leaves_[li].leaf->LowerBound(sector); li < leaves_.size(); ++li, i = 0) {
    const Leaf& leaf = *leaves_[li].leaf;
    if (i < leaf.n) return Mapping{leaf.sectors[i], leaf.slots[i]};
  }
  return std::nullopt;
}

void RemapTable::Collect(uint64_t first, uint64_t end, std::vector<Mapping>* out) const {
  ForEachIn(first, end, [out](const Mapping& m) { out->push_back(m); });
}

size_t RemapTable::MemoryBytes() const {
  return sizeof(*this) + leaves_.capacity() * sizeof(LeafRef) + index_.capacity() * sizeof(uint64_t) +
         leaves_.size() * sizeof(Leaf);
}

}  // namespace remapfs
