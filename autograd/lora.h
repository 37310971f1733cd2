// lora.h: low-rank adaptation (LoRA, Hu et al. 2021) of Linear, Conv1d and Embedding layers.
//
// A frozen weight W (out, in) gets a trainable low-rank correction:
//     y = W x + b + s * B A dropout(x),    A (r, in), B (out, r),    s = alpha / r
// (rsLoRA, Kalajdzievski 2023: s = alpha / sqrt(r)). As in peft, A starts Kaiming-uniform with
// a = sqrt(5) (PyTorch's Linear default: U(-1/sqrt(in), 1/sqrt(in))) and B at 0, so an adapter
// starts as the identity edit; W and b no longer require a gradient, so backward neither
// computes nor stores one for them.
//
// The three layer kinds, with the parameter names peft gives them (the keys of its
// adapter_model.safetensors):
//   Linear     lora_A.weight (r, in), lora_B.weight (out, r)
//   Conv1d     lora_A.weight (r, in / groups, k), lora_B.weight (out, r, 1): the weight
//              (out, in / groups, k) read as a matrix (out, in / groups * k) gets B A. For
//              groups = 1 this is peft's Conv1d LoRA; for Mamba's depthwise convolution
//              (groups = channels, weight (C, 1, k)) it is the same rule on the (C, k) matrix,
//              which peft refuses to build.
//              y = conv(x, W) + b + s * conv(dropout(x), reshape(B A))
//   Embedding  lora_embedding_A (r, vocab), lora_embedding_B (dim, r):
//              y = W[ids] + s * A^T[ids] B^T   (no dropout, as in peft)
//
// merge_lora folds s B A into W (inference without the extra products); unmerge_lora takes it
// out again. Both work on the values, outside autograd.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "autograd/nn.h"

namespace ssm::nn {

struct LoraOptions {
  int64_t r = 8;
  double alpha = 8;
  double dropout = 0; // on the adapter's input, in training mode
  bool rslora = false;
  Generator* gen = nullptr; // of A's initialisation and of the dropout masks
};

double lora_scaling(const LoraOptions& options); // alpha / r, or alpha / sqrt(r) with rslora

// One factor of an adapter: a module whose one parameter is "weight".
class LoraFactor : public Module {
 public:
  explicit LoraFactor(Tensor value);
  Var weight;
};

// The adapter state a layer holds once attach_lora has run.
struct LoraAdapter {
  int64_t r = 0;
  double scale = 0, dropout = 0;
  Generator* gen = nullptr;
  bool merged = false;
  std::unique_ptr<LoraFactor> A, B; // Linear and Conv1d
  Var embedding_A, embedding_B;     // Embedding
};

// Attaches an adapter (an error if the layer has one), freezes the layer's own parameters and
// registers the adapter's under the names above, in the layer's dtype and device.
void attach_lora(Linear& layer, const LoraOptions& options);
void attach_lora(Conv1d& layer, const LoraOptions& options);
void attach_lora(Embedding& layer, const LoraOptions& options);

// The adapted Linear as one autograd op, so that a training step keeps no more activations
// than the plain layer (every intermediate of a chain of ops would be kept until backward):
//     y = x W^T + b + s (x_d A^T) B^T      x (..., in), x_d = dropout(x) (the same Var as x
//                                          without dropout), W (out, in), A (r, in), B (out, r)
// W is `weight`, or when it is undefined the NF4 weight `nf4` (dequantised on the fly, in the
// forward and again in the backward). Saved for the backward: h = x_d A^T, (rows, r). The
// gradients, with G = dL/dy as (rows, out):
//     dx   = G W                 dx_d = s (G B) A          (added together when x_d is x)
//     dA   = s (G B)^T x_d       dB   = s G^T h
//     dW   = G^T x               db   = sum_rows G          (when they require one)
Var lora_linear(const Var& x, const Var& x_dropped, const Var& weight,
                const std::shared_ptr<const Nf4Weight>& nf4, const Var& bias, const Var& A,
                const Var& B, double scale);

// s * B A in the shape of the layer's weight (an autograd expression of A and B).
Var lora_delta_weight(const Linear& layer);
Var lora_delta_weight(const Conv1d& layer);
Var lora_delta_weight(const Embedding& layer); // (vocab, dim) = s * A^T B^T

// W += s B A (merge) or W -= s B A (unmerge); an error when there is no adapter or it is
// already in the asked state.
void merge_lora(Linear& layer);
void merge_lora(Conv1d& layer);
void merge_lora(Embedding& layer);
void unmerge_lora(Linear& layer);
void unmerge_lora(Conv1d& layer);
void unmerge_lora(Embedding& layer);

} // namespace ssm::nn
