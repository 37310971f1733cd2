// optim.h: SGD with momentum, AdamW, global gradient-norm clipping, learning-rate schedules.
//
// Optimizers hold (name, parameter) pairs so that weight decay can be switched off by name
// (biases and norm weights, as is usual for transformers and Mamba). Each step is one fused
// loop per parameter (on CUDA one kernel, cuda/optim.cu) that updates the parameter's value
// in place; parameters without a gradient are skipped.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"

namespace ssm::optim {

using NamedParameters = std::vector<std::pair<std::string, Var>>;

class Optimizer {
 public:
  explicit Optimizer(NamedParameters params);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  double lr = 0; // read by step(); schedules set it before each step
  int64_t steps_taken() const { return step_count_; }
  const NamedParameters& params() const { return params_; }

 protected:
  NamedParameters params_;
  int64_t step_count_ = 0;
};

// PyTorch's SGD: g' = g + weight_decay p; buf = momentum buf + g' (buf = g' at the first
// step); p -= lr * (nesterov ? g' + momentum buf : buf), or p -= lr g' without momentum.
struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
};
class SGD : public Optimizer {
 public:
  SGD(NamedParameters params, SGDOptions options);
  void step() override;
  SGDOptions options;

 private:
  std::vector<Tensor> momentum_buffers_;
};

// AdamW (Loshchilov & Hutter, "Decoupled weight decay regularization", 2019), as PyTorch:
//   p -= lr * weight_decay * p                    (decoupled decay, parameters it applies to)
//   m = beta1 m + (1 - beta1) g ;  v = beta2 v + (1 - beta2) g^2
//   p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  // A parameter whose name contains any of these substrings gets no weight decay.
  std::vector<std::string> no_decay = {};
};
class AdamW : public Optimizer {
 public:
  AdamW(NamedParameters params, AdamWOptions options);
  void step() override;
  bool decays(const std::string& name) const;
  AdamWOptions options;

  // What a checkpoint needs to resume exactly: m and v of each parameter by name
  // ("exp_avg.<name>", "exp_avg_sq.<name>"; on the CPU, absent before the parameter's first
  // step) and the step count, which sets the bias corrections.
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  // Restores them: every m and v on the parameter's device and dtype. A parameter without
  // entries gets none (it had never been stepped); an unknown name, a lone m or v, or a shape
  // that differs from the parameter's is an error.
  void load_state_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                          int64_t steps_taken);

 private:
  std::vector<Tensor> exp_avg_, exp_avg_sq_; // m and v, one per parameter
};

// Scales every gradient by min(1, max_norm / (total_norm + 1e-6)) where total_norm is the L2
// norm of all gradients together (torch.nn.utils.clip_grad_norm_). Returns total_norm.
double clip_grad_norm(const std::vector<Var>& params, double max_norm);

// A learning rate as a function of the step (0-based).
class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  virtual double lr_at(int64_t step) const = 0;
};

class ConstantLR : public LRSchedule {
 public:
  explicit ConstantLR(double lr) : lr_(lr) {}
  double lr_at(int64_t) const override { return lr_; }

 private:
  double lr_;
};

// Linear warmup (step s < warmup_steps gets peak * (s + 1) / warmup_steps), then cosine decay
// from peak to min_lr at total_steps
// (min_lr after that):  lr = min + (peak - min) * (1 + cos(pi * progress)) / 2.
class WarmupCosineLR : public LRSchedule {
 public:
  WarmupCosineLR(double peak_lr, int64_t warmup_steps, int64_t total_steps, double min_lr = 0);
  double lr_at(int64_t step) const override;

 private:
  double peak_, min_;
  int64_t warmup_, total_;
};

} // namespace ssm::optim
