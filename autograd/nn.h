// nn.h: modules with named parameters, and the standard layers.
//
// A Module owns parameters (leaf Vars that require a gradient) registered under a name, and
// child modules registered under a name. named_parameters() walks the tree and joins names with
// dots, so a parameter reads like its place in the model, e.g. "layers.0.mixer.in_proj.weight",
// which is also its key in a safetensors checkpoint (the names Hugging Face uses).
//
// Modules are held by value as members of their parent and registered by reference; a Module
// is therefore neither copyable nor movable (a copy would leave the parent pointing at the
// original). Keep models in std::unique_ptr when they must move.
//
// Initialisations follow PyTorch's defaults; each constructor says which.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/functions.h"
#include "tensor/random.h"

namespace ssm::nn {

struct LoraAdapter; // autograd/lora.h: an optional low-rank adapter of a Linear, Conv1d, Embedding
} // namespace ssm::nn
namespace ssm {
struct Nf4Weight; // autograd/nf4.h: a frozen weight stored in 4 bits (QLoRA)
} // namespace ssm
namespace ssm::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter below this module, depth first in registration order, with dotted names.
  std::vector<std::pair<std::string, Var>> named_parameters() const;
  std::vector<Var> parameters() const;
  // The parameter named `name` (dotted), or an error listing what exists.
  Var parameter(const std::string& name) const;
  int64_t num_parameters() const; // total element count

  // Training mode switches Dropout (and anything else that differs) on; eval() off.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Moves every parameter to `device` (e.g. Device::cuda(0)); gradients are dropped.
  void to(Device device);

 protected:
  // Registers a trainable parameter initialised to `value` and returns its Var.
  Var register_parameter(const std::string& name, Tensor value);
  // Registers a child module (a member of the derived class).
  void register_module(const std::string& name, Module& child);
  // Registers a Var made elsewhere (e.g. an adapter's) under `name`.
  void register_existing_parameter(const std::string& name, const Var& var);
  // Drops a parameter from the module (its Var lives on only where it is still held).
  void remove_parameter(const std::string& name);

 private:
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const;
  std::vector<std::pair<std::string, Var>> params_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

// Options shared by the layer constructors.
struct Init {
  DType dtype = DType::Float32;
  Generator* gen = nullptr; // nullptr: the global generator (see manual_seed)
};

// y = x W^T + b. weight (out_features, in_features), bias (out_features).
// PyTorch's default init: W ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a = sqrt(5)),
// b ~ U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Init init = {});
  // x W^T + b, plus the LoRA term when an adapter is attached. add_bias = false leaves b out
  // (Mamba's dt_proj, whose bias is added inside the selective scan).
  Var forward(const Var& x, bool add_bias = true) const;
  Var weight, bias; // bias undefined when disabled
  int64_t in_features, out_features;
  std::shared_ptr<LoraAdapter> lora; // set by attach_lora (autograd/lora.h)
  void register_lora_factors();      // attach_lora's step that names the adapter's parameters
  // QLoRA: replaces the weight by its NF4 form (autograd/nf4.h), on the weight's device; the
  // full-precision weight is dropped (`weight` becomes undefined and leaves
  // named_parameters()), the bias is frozen. Quantise after moving the model to its device.
  void quantize_nf4();
  std::shared_ptr<const Nf4Weight> nf4;
};

// A lookup table: indices (any shape, int64) -> (..., embedding_dim). Init: N(0, 1).
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, Init init = {});
  Var forward(const Tensor& indices) const; // plus the LoRA term when an adapter is attached
  Var weight;                               // (num_embeddings, embedding_dim)
  std::shared_ptr<LoraAdapter> lora;        // set by attach_lora (autograd/lora.h)
  void register_lora_factors(); // attach_lora's step that names the adapter's parameters
};

// Normalises over the last dim(s) `normalized_shape`; weight = 1, bias = 0 when affine.
class LayerNorm : public Module {
 public:
  LayerNorm(Shape normalized_shape, double eps = 1e-5, bool affine = true, Init init = {});
  Var forward(const Var& x) const { return layer_norm(x, normalized_shape, weight, bias, eps); }
  Var weight, bias; // undefined when !affine
  Shape normalized_shape;
  double eps;
};

// x / sqrt(mean(x^2) + eps) * weight over the last dim; weight = 1.
class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-5, Init init = {});
  Var forward(const Var& x) const { return rms_norm(x, weight, eps); }
  Var weight;
  double eps;
};

// torch.nn.Conv1d: weight (out, in / groups, kernel), bias (out).
// PyTorch's default init: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups*kernel.
class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1, bool bias = true,
         Init init = {});
  Var forward(const Var& x) const; // plus the LoRA term when an adapter is attached
  // The weight the forward applies: W, or W + s B A with an unmerged adapter.
  Var effective_weight() const;
  Var weight, bias;
  int64_t stride, padding, dilation, groups;
  std::shared_ptr<LoraAdapter> lora; // set by attach_lora (autograd/lora.h)
  void register_lora_factors();      // attach_lora's step that names the adapter's parameters
};

// Inverted dropout with probability p, active only in training mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p, Generator* gen = nullptr);
  Var forward(const Var& x) const { return dropout(x, p, is_training(), gen); }
  double p;
  Generator* gen;
};

} // namespace ssm::nn
