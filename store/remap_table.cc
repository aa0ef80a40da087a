#include "store/remap_table.h"

#include <algorithm>
#include <cstring>

namespace remapfs {

RemapTable::RemapTable() = default;
RemapTable::~RemapTable() = default;

size_t RemapTable::LeafFor(uint64_t sector) const {
  auto it = std::upper_bound(separators_.begin() + 1, separators_.end(), sector);
  return static_cast<size_t>(it - separators_.begin()) - 1;
}

void RemapTable::Set(uint64_t sector, uint32_t slot) {
  if (leaves_.empty()) {
    leaves_.push_back(std::make_unique<Leaf>());
    separators_.push_back(0);
  }
  size_t li = LeafFor(sector);
  Leaf* leaf = leaves_[li].get();
  uint32_t pos = static_cast<uint32_t>(std::lower_bound(leaf->sectors, leaf->sectors + leaf->n, sector) -
                                       leaf->sectors);
  if (pos < leaf->n && leaf->sectors[pos] == sector) {
    leaf->slots[pos] = slot;
    return;
  }
  if (leaf->n == kLeafCapacity) {
    auto fresh = std::make_unique<Leaf>();
    uint64_t separator;
    if (pos == leaf->n && li + 1 == leaves_.size()) {
      // Appending past the last entry: start an empty leaf, keep this one full.
      separator = sector;
    } else {
      const uint32_t mid = kLeafCapacity / 2;
      fresh->n = leaf->n - mid;
      std::memcpy(fresh->sectors, leaf->sectors + mid, fresh->n * sizeof(uint64_t));
      std::memcpy(fresh->slots, leaf->slots + mid, fresh->n * sizeof(uint32_t));
      leaf->n = mid;
      separator = fresh->sectors[0];
    }
    leaves_.insert(leaves_.begin() + static_cast<ptrdiff_t>(li) + 1, std::move(fresh));
    separators_.insert(separators_.begin() + static_cast<ptrdiff_t>(li) + 1, separator);
    if (sector >= separator) {
      ++li;
      leaf = leaves_[li].get();
      pos = static_cast<uint32_t>(std::lower_bound(leaf->sectors, leaf->sectors + leaf->n, sector) -
                                  leaf->sectors);
    }
  }
  std::memmove(leaf->sectors + pos + 1, leaf->sectors + pos, (leaf->n - pos) * sizeof(uint64_t));
  std::memmove(leaf->slots + pos + 1, leaf->slots + pos, (leaf->n - pos) * sizeof(uint32_t));
  leaf->sectors[pos] = sector;
  leaf->slots[pos] = slot;
  ++leaf->n;
  ++size_;
}

bool RemapTable::Erase(uint64_t sector) {
  if (leaves_.empty()) return false;
  const size_t li = LeafFor(sector);
  Leaf* leaf = leaves_[li].get();
  const uint32_t pos = static_cast<uint32_t>(
      std::lower_bound(leaf->sectors, leaf->sectors + leaf->n, sector) - leaf->sectors);
  if (pos == leaf->n || leaf->sectors[pos] != sector) return false;
  std::memmove(leaf->sectors + pos, leaf->sectors + pos + 1, (leaf->n - pos - 1) * sizeof(uint64_t));
  std::memmove(leaf->slots + pos, leaf->slots + pos + 1, (leaf->n - pos - 1) * sizeof(uint32_t));
  --leaf->n;
  --size_;
  if (leaf->n == 0) {
    // The neighbours' separators still bound their keys; drop the empty leaf.
    leaves_.erase(leaves_.begin() + static_cast<ptrdiff_t>(li));
    separators_.erase(separators_.begin() + static_cast<ptrdiff_t>(li));
  }
  return true;
}

std::optional<uint32_t> RemapTable::Find(uint64_t sector) const {
  if (leaves_.empty()) return std::nullopt;
  const Leaf* leaf = leaves_[LeafFor(sector)].get();
  const uint64_t* p = std::lower_bound(leaf->sectors, leaf->sectors + leaf->n, sector);
  if (p == leaf->sectors + leaf->n || *p != sector) return std::nullopt;
  return leaf->slots[p - leaf->sectors];
}

void RemapTable::Collect(uint64_t first, uint64_t end, std::vector<Mapping>* out) const {
  if (leaves_.empty() || first >= end) return;
  for (size_t li = LeafFor(first); li < leaves_.size(); ++li) {
    const Leaf* leaf = leaves_[li].get();
    uint32_t i = static_cast<uint32_t>(std::lower_bound(leaf->sectors, leaf->sectors + leaf->n, first) -
                                       leaf->sectors);
    for (; i < leaf->n; ++i) {
      if (leaf->sectors[i] >= end) return;
      out->push_back(Mapping{leaf->sectors[i], leaf->slots[i]});
    }
  }
}

size_t RemapTable::MemoryBytes() const {
  return sizeof(*this) + leaves_.capacity() * sizeof(leaves_[0]) +
         separators_.capacity() * sizeof(uint64_t) + leaves_.size() * sizeof(Leaf);
}

}  // namespace remapfs
