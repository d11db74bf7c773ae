// The greedy pair merge shared by the SentencePiece (highest piece score first) and byte-level BPE (lowest
// merge rank first) tokenizers: the text's symbols form a linked list; the best adjacent mergeable pair
// (highest priority, leftmost on ties) merges into its left symbol until no pair can merge. O(n log n):
// candidate pairs in a priority queue, stale ones (a side changed since it was queued) skipped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

namespace quill {

struct MergeSymbol {
  int32_t prev;    // -1 at the head
  int32_t next;    // -1 at the tail
  uint32_t start;  // byte offset in the text
  uint32_t len;    // bytes; 0 once merged into its left neighbour
};

// sym: [n] a linked list in text order (sym[i].prev = i - 1, sym[i].next = i + 1, the ends -1).
// pair_priority(l, r, &priority) -> bool: whether symbols l and r (adjacent, bytes start(l) .. end(r)) may
// merge, and with what priority. Afterwards the live symbols (len > 0) are reached from 0 through next.
template <class PairPriority>
void merge_symbols(std::vector<MergeSymbol>& sym, PairPriority pair_priority) {
  struct Candidate {
    double priority;
    int32_t left;
    int32_t right;
    uint32_t len;  // len(left) + len(right) when queued; a mismatch later means the pair is stale
  };
  struct Lower {
    bool operator()(const Candidate& a, const Candidate& b) const {
      return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
    }
  };
  std::vector<Candidate> storage;
  storage.reserve(sym.size());
  std::priority_queue<Candidate, std::vector<Candidate>, Lower> queue(Lower{}, std::move(storage));
  const auto try_pair = [&](int32_t l, int32_t r) {
    double priority;
    if (l < 0 || r < 0 || !pair_priority(l, r, &priority)) return;
    queue.push(Candidate{priority, l, r, sym[size_t(l)].len + sym[size_t(r)].len});
  };
  for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) try_pair(i, i + 1);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    MergeSymbol& l = sym[size_t(c.left)];
    MergeSymbol& r = sym[size_t(c.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != c.len) continue;  // stale
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = c.left;
    try_pair(l.prev, c.left);
    try_pair(c.left, l.next);
  }
}

}  // namespace quill
