// mamba_lm.h: the Mamba block ("mixer"), the residual layer around it and the language model,
// with parameter names exactly as transformers' MambaForCausalLM, so a checkpoint loads by name.
//
// Glossary (code = paper, Gu & Dao 2023, Section 3 and Figure 3):
//   b, l        batch, sequence length
//   d_model     width of the residual stream (D in the paper)
//   d_inner     expand * d_model, the width inside the block (E D)
//   n = d_state the SSM state size per channel (N)
//   dt_rank     rank of Δ's low-rank projection (R)
//   x, z        the two halves of in_proj's output: the SSM branch and the gate
//   delta (Δ)   the input-dependent step size, softplus(dt_proj(x_proj(x)[:dt_rank]) + bias)
//   A           -exp(A_log), (d_inner, n): the (diagonal) state matrix
//   B, C        input-dependent input and output matrices, (b, l, n)
//   D           the skip connection, (d_inner)
//
// One block (MambaMixer::forward), x_in (b, l, d_model):
//   xz      = in_proj(x_in)                         (b, l, 2 d_inner)
//   x, z    = xz[..., :d_inner], xz[..., d_inner:]  (b, l, d_inner) each
//   x       = silu(causal_depthwise_conv1d(x))      (b, l, d_inner)   kernel d_conv
//   dbc     = x_proj(x)                             (b, l, dt_rank + 2 n)
//   dt, B, C = split(dbc)                           (b, l, dt_rank), (b, l, n), (b, l, n)
//   delta   = dt @ dt_proj.weight^T                 (b, l, d_inner)   (bias goes in the scan)
//   y       = selective_scan(x, delta, A, B, C, D, z, delta_bias = dt_proj.bias, softplus)
//   out     = out_proj(y)                           (b, l, d_model)
//
// A layer: residual + mixer(RMSNorm(residual)). The LM: embedding, n_layer layers, a final
// RMSNorm (norm_f) and lm_head (tied to the embedding unless tie_word_embeddings is false).
//
// Recurrent inference (step): per layer a conv_state (b, d_inner, d_conv), the last d_conv
// inputs of the convolution, and an ssm_state (b, d_inner, n), h. One token costs O(1) in
// the sequence length. prefill() runs the parallel forward over a prompt and leaves the
// states as if the prompt had been stepped through token by token.
#pragma once

#include <memory>
#include <vector>

#include "autograd/nn.h"
#include "mamba/config.h"

namespace ssm {

// The recurrent state of one layer.
struct MambaLayerState {
  Tensor conv_state; // (b, d_inner, d_conv): inputs x_{t-d_conv+1} .. x_t of the conv
  Tensor ssm_state;  // (b, d_inner, n): h_t
};

// The cache of a whole model: one state per layer.
struct MambaCache {
  std::vector<MambaLayerState> layers;
  int64_t position = 0; // tokens consumed so far
};

class MambaMixer : public nn::Module {
 public:
  MambaMixer(const MambaConfig& config, nn::Init init);

  // x (b, l, d_model) -> (b, l, d_model). With `state`, also writes the recurrent state after
  // the last token (no gradient flows into it).
  Var forward(const Var& x, MambaLayerState* state = nullptr) const;
  // One token: x (b, d_model) -> (b, d_model), updating `state` in place. No autograd.
  Tensor step(const Tensor& x, MambaLayerState& state) const;

  // Mamba's initialisation of dt_proj, A_log and D (see mamba_lm.cpp); the constructor calls it.
  void reset_ssm_parameters(Generator* gen);

  MambaConfig config;
  nn::Linear in_proj;  // d_model -> 2 d_inner
  nn::Conv1d conv1d;   // depthwise, kernel d_conv, padding d_conv - 1 (trimmed: causal)
  nn::Linear x_proj;   // d_inner -> dt_rank + 2 n, no bias
  nn::Linear dt_proj;  // dt_rank -> d_inner, with bias
  Var A_log;           // (d_inner, n)
  Var D;               // (d_inner)
  nn::Linear out_proj; // d_inner -> d_model
};

// residual + mixer(norm(residual))
class MambaLayer : public nn::Module {
 public:
  MambaLayer(const MambaConfig& config, nn::Init init);
  Var forward(const Var& residual, MambaLayerState* state = nullptr) const;
  Tensor step(const Tensor& residual, MambaLayerState& state) const;
  nn::RMSNorm norm;
  MambaMixer mixer;
};

// The backbone: names under "backbone." in transformers.
class MambaBackbone : public nn::Module {
 public:
  MambaBackbone(const MambaConfig& config, nn::Init init);
  nn::Embedding embeddings;
  std::vector<std::unique_ptr<MambaLayer>> layers;
  nn::RMSNorm norm_f;
};

class MambaLM : public nn::Module {
 public:
  // A new model, initialised from `init.gen` as the reference implementation
  // (state-spaces/mamba, mixer_seq_simple._init_weights) does: Linear and Conv1d weights with
  // PyTorch's defaults, Linear biases 0 except dt_proj's, the embedding ~ N(0,
  // initializer_range), dt_proj / A_log / D as MambaMixer::reset_ssm_parameters, and with
  // rescale_prenorm_residual out_proj.weight divided by sqrt(n_layer). (transformers draws
  // the Linear weights from N(0, initializer_range) instead; any init trains, and a loaded
  // checkpoint overwrites all of it.)
  MambaLM(const MambaConfig& config, nn::Init init = {});

  // input_ids int64 (b, l) -> logits (b, l, vocab). `hidden_states`, when given, receives
  // the residual stream after each layer and the output of norm_f (n_layer + 1 entries, as
  // transformers' output_hidden_states minus the embedding output). `cache`, when given,
  // receives the recurrent state after the last token (prefill).
  Var forward(const Tensor& input_ids, std::vector<Var>* hidden_states = nullptr,
              MambaCache* cache = nullptr) const;
  // Causal LM loss: mean cross entropy of logits[:, t] against input_ids[:, t + 1].
  Var loss(const Tensor& input_ids) const;

  // A cache of zero states for `batch` sequences, on the model's device and dtype.
  MambaCache empty_cache(int64_t batch) const;
  // Runs the prompt (b, l) through the parallel forward, fills `cache`, returns the logits of
  // the last position (b, vocab). No autograd.
  Tensor prefill(const Tensor& input_ids, MambaCache& cache) const;
  // One token per sequence: ids int64 (b) -> logits (b, vocab), advancing the cache.
  Tensor step(const Tensor& ids, MambaCache& cache) const;

  Var lm_head_weight() const; // (vocab, d_model): the embedding when tied
  DType dtype() const { return backbone.embeddings.weight.dtype(); }
  Device device() const { return backbone.embeddings.weight.device(); }

  MambaConfig config;
  MambaBackbone backbone;
  std::unique_ptr<nn::Linear> lm_head; // only when not tied
};

} // namespace ssm
