// generate.h: sampling from a Mamba LM with the recurrent (step) path.
//
// prefill() runs the prompt through the parallel scan once; then each new token costs one
// step() per layer, O(1) in the length so far. Sampling of one token from logits (b, vocab):
//   greedy:      argmax (ties: the lowest id), or temperature <= 0
//   temperature: softmax(logits / T)
//   top_k:       keep the k largest logits (k <= 0: all)
//   top_p:       keep the smallest set of most likely tokens whose probability reaches p
//                (nucleus sampling, Holtzman et al. 2019); p >= 1 keeps all
// The draw uses the project's seeded Philox generator, so a seed fixes the output.
#pragma once

#include <cstdint>
#include <functional>

#include "mamba/mamba_lm.h"
#include "tensor/random.h"

namespace ssm {

struct SamplingOptions {
  bool greedy = false;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
};

// logits (b, vocab), any device and floating dtype -> int64 ids (b) on the CPU.
Tensor sample_next(const Tensor& logits, const SamplingOptions& options, Generator& gen);

// prompt int64 (b, l >= 1) -> int64 (b, l + max_new_tokens), the prompt included. Stops
// early when every row produced stop_token (>= 0). on_token, when given, is called after each
// new token with the ids (b) just sampled.
Tensor generate(const MambaLM& model, const Tensor& prompt, int64_t max_new_tokens,
                const SamplingOptions& options, Generator& gen, int64_t stop_token = -1,
                const std::function<void(const Tensor& ids)>& on_token = nullptr);

} // namespace ssm
