// stream.cl: the device's read bandwidth, measured the way a GEMV reads weights (coalesced uint4
// loads, grid-stride). The XOR of everything read is written only when it matches an impossible
// value, so the loads cannot be optimized away.
__kernel void stream_read(__global const uint4* src, ulong n_vec, __global uint* sink, uint never) {
  uint4 acc = (uint4)(0);
  const size_t stride = get_global_size(0);
  for (size_t i = get_global_id(0); i < n_vec; i += stride) acc ^= src[i];
  const uint folded = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (folded == never) sink[0] = folded;
}
