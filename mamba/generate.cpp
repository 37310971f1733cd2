// generate.cpp: token sampling and the prefill-then-step generation loop (see generate.h).
#include "mamba/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "tensor/ops.h"

namespace ssm {

Tensor sample_next(const Tensor& logits, const SamplingOptions& options, Generator& gen) {
  if (logits.dim() != 2)
    throw std::invalid_argument("sample_next: logits must be (batch, vocab), got " +
                                shape_str(logits.shape()));
  const int64_t batch = logits.size(0), vocab = logits.size(1);
  const std::vector<double> values = logits.to(Device::cpu()).to_doubles(); // (b, V)
  const bool greedy = options.greedy || options.temperature <= 0;
  // One uniform draw per row, taken even when greedy so the generator advances the same way.
  const std::vector<double> draws = Tensor::rand({batch}, DType::Float64, &gen).to_doubles();
  std::vector<int64_t> out(batch);
  std::vector<int64_t> order(vocab);
  std::vector<double> prob(vocab);
  for (int64_t b = 0; b < batch; ++b) {
    const double* row = values.data() + b * vocab;
    if (greedy) {
      out[b] = std::max_element(row, row + vocab) - row; // the first maximum
      continue;
    }
    // Tokens by decreasing logit (ties: lower id first), then cut by top-k.
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t i, int64_t j) { return row[i] > row[j]; });
    int64_t keep = options.top_k > 0 ? std::min(options.top_k, vocab) : vocab;
    // softmax(logits / T) over the kept tokens.
    const double top = row[order[0]];
    double total = 0;
    for (int64_t r = 0; r < keep; ++r) {
      prob[r] = std::exp((row[order[r]] - top) / options.temperature);
      total += prob[r];
    }
    for (int64_t r = 0; r < keep; ++r) prob[r] /= total;
    // top-p: the shortest prefix whose probability reaches p.
    if (options.top_p < 1) {
      double mass = 0;
      int64_t r = 0;
      while (r < keep && mass < options.top_p) mass += prob[r++];
      keep = std::max<int64_t>(r, 1);
      double kept = 0;
      for (int64_t i = 0; i < keep; ++i) kept += prob[i];
      for (int64_t i = 0; i < keep; ++i) prob[i] /= kept;
    }
    // Inverse-CDF draw.
    double cumulative = 0;
    int64_t pick = keep - 1;
    for (int64_t r = 0; r < keep; ++r) {
      cumulative += prob[r];
      if (draws[b] < cumulative) {
        pick = r;
        break;
      }
    }
    out[b] = order[pick];
  }
  return Tensor::from_vector(out, {batch});
}

Tensor generate(const MambaLM& model, const Tensor& prompt, int64_t max_new_tokens,
                const SamplingOptions& options, Generator& gen, int64_t stop_token,
                const std::function<void(const Tensor& ids)>& on_token) {
  if (prompt.dtype() != DType::Int64 || prompt.dim() != 2 || prompt.size(1) < 1)
    throw std::invalid_argument("generate: prompt must be int64 (batch, length >= 1), got " +
                                shape_str(prompt.shape()));
  if (max_new_tokens < 0) throw std::invalid_argument("generate: max_new_tokens must be >= 0");
  const int64_t vocab = model.config.vocab_size;
  const Tensor prompt_cpu = prompt.to(Device::cpu());
  for (double id : prompt_cpu.to_doubles())
    if (id < 0 || id >= vocab)
      throw std::invalid_argument("generate: prompt token " + std::to_string(int64_t(id)) +
                                  " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  const int64_t batch = prompt.size(0);
  std::vector<Tensor> pieces = {prompt_cpu};
  if (max_new_tokens == 0) return prompt_cpu.clone();

  MambaCache cache;
  Tensor logits = model.prefill(prompt.to(model.device()), cache); // (b, V)
  std::vector<bool> stopped(batch, false);
  for (int64_t i = 0; i < max_new_tokens; ++i) {
    const Tensor next = sample_next(logits, options, gen); // (b) CPU
    pieces.push_back(next.view({batch, 1}));
    if (on_token) on_token(next);
    bool all_stopped = stop_token >= 0;
    for (int64_t b = 0; b < batch; ++b) {
      if (next.at({b}) == stop_token) stopped[b] = true;
      all_stopped = all_stopped && stopped[b];
    }
    if (all_stopped || i + 1 == max_new_tokens) break;
    logits = model.step(next.to(model.device()), cache);
  }
  return concat(pieces, 1);
}

} // namespace ssm
