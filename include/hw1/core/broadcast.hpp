// Rank 0's weights and running statistics on every rank of a Collective (data-parallel training: at the start,
// after a resume, before validation). Device arrays go through the host copy.
#pragma once
#include "hw1/core/collective.hpp"
#include "hw1/core/params.hpp"

namespace hw1 {

template <class T>
void broadcast_state(ParamSet<T>& params, Collective& comm) {
  params.to_host();
  comm.broadcast_array(params.values().data(), params.values().size());
  comm.broadcast_array(params.buffers().data(), params.buffers().size());
  params.to_device();
}

}  // namespace hw1
