#include "autograd/nn.h"

#include "autograd/lora.h"
#include "autograd/nf4.h"

#include <cmath>
#include <stdexcept>

namespace ssm::nn {

// ---- Module --------------------------------------------------------------------------------

Var Module::register_parameter(const std::string& name, Tensor value) {
  for (const auto& [existing, var] : params_)
    if (existing == name)
      throw std::invalid_argument("register_parameter: '" + name + "' is already registered");
  Var var(std::move(value), true);
  params_.emplace_back(name, var);
  return var;
}

void Module::register_existing_parameter(const std::string& name, const Var& var) {
  for (const auto& [existing, v] : params_)
    if (existing == name)
      throw std::invalid_argument("register_parameter: '" + name + "' is already registered");
  params_.emplace_back(name, var);
}

void Module::remove_parameter(const std::string& name) {
  for (auto it = params_.begin(); it != params_.end(); ++it)
    if (it->first == name) {
      params_.erase(it);
      return;
    }
  throw std::invalid_argument("remove_parameter: no parameter '" + name + "'");
}

void Module::register_module(const std::string& name, Module& child) {
  for (const auto& [existing, module] : children_)
    if (existing == name)
      throw std::invalid_argument("register_module: '" + name + "' is already registered");
  children_.emplace_back(name, &child);
}

void Module::collect(const std::string& prefix,
                     std::vector<std::pair<std::string, Var>>& out) const {
  for (const auto& [name, var] : params_) out.emplace_back(prefix + name, var);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Var>> out;
  collect("", out);
  return out;
}

std::vector<Var> Module::parameters() const {
  std::vector<Var> out;
  for (auto& [name, var] : named_parameters()) out.push_back(var);
  return out;
}

Var Module::parameter(const std::string& name) const {
  std::string known;
  for (auto& [n, var] : named_parameters()) {
    if (n == name) return var;
    known += (known.empty() ? "" : ", ") + n;
  }
  throw std::out_of_range("Module::parameter: no parameter '" + name + "' (have: " + known + ")");
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, var] : named_parameters()) n += var.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& [name, var] : named_parameters()) var.zero_grad();
}

void Module::to(Device device) {
  for (auto& [name, var] : named_parameters()) {
    var.zero_grad();
    var.assign(var.value().to(device));
  }
}

// ---- layers --------------------------------------------------------------------------------

static void check_positive(const char* layer, const char* what, int64_t value) {
  if (value <= 0)
    throw std::invalid_argument(std::string(layer) + ": " + what + " must be positive, got " +
                                std::to_string(value));
}

Linear::Linear(int64_t in, int64_t out, bool with_bias, Init init)
    : in_features(in), out_features(out) {
  check_positive("Linear", "in_features", in);
  check_positive("Linear", "out_features", out);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight =
      register_parameter("weight", Tensor::uniform({out, in}, -bound, bound, init.dtype, init.gen));
  if (with_bias)
    bias = register_parameter("bias", Tensor::uniform({out}, -bound, bound, init.dtype, init.gen));
}

Var Linear::forward(const Var& x, bool add_bias) const {
  const Var b = add_bias ? bias : Var();
  if (lora && !lora->merged) {
    // x W^T + b + s B A dropout(x), in one op (autograd/lora.h)
    const Var x_in = dropout(x, lora->dropout, is_training(), lora->gen);
    return lora_linear(x, x_in, weight, nf4, b, lora->A->weight, lora->B->weight, lora->scale);
  }
  return nf4 ? nf4_linear(x, nf4, b) // (..., out), W from 4 bits
             : linear(x, weight, b); // (..., out)
}

void Linear::quantize_nf4() {
  if (nf4) throw std::logic_error("Linear::quantize_nf4: already quantised");
  nf4 = std::make_shared<const Nf4Weight>(nf4_quantize(weight.value()));
  remove_parameter("weight");
  weight = Var();
  if (bias.defined()) bias.set_requires_grad(false);
}

void Linear::register_lora_factors() {
  register_module("lora_A", *lora->A);
  register_module("lora_B", *lora->B);
}

Embedding::Embedding(int64_t num, int64_t dim, Init init) {
  check_positive("Embedding", "num_embeddings", num);
  check_positive("Embedding", "embedding_dim", dim);
  weight = register_parameter("weight", Tensor::randn({num, dim}, init.dtype, init.gen));
}

Var Embedding::forward(const Tensor& indices) const {
  Var y = embedding(weight, indices); // (..., dim)
  if (lora && !lora->merged) {
    // s * A^T[ids] B^T: rows of A^T (vocab, r) looked up, then projected to dim
    const Var rows = embedding(transpose(lora->embedding_A, 0, 1), indices); // (..., r)
    y = add(y, mul(linear(rows, lora->embedding_B), lora->scale));
  }
  return y;
}

void Embedding::register_lora_factors() {
  // peft keeps these as bare parameters (no ".weight"): lora_embedding_A, lora_embedding_B.
  register_existing_parameter("lora_embedding_A", lora->embedding_A);
  register_existing_parameter("lora_embedding_B", lora->embedding_B);
}

LayerNorm::LayerNorm(Shape shape, double eps_, bool affine, Init init)
    : normalized_shape(std::move(shape)), eps(eps_) {
  if (normalized_shape.empty())
    throw std::invalid_argument("LayerNorm: normalized_shape must not be empty");
  for (int64_t s : normalized_shape) check_positive("LayerNorm", "normalized_shape", s);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones(normalized_shape, init.dtype));
    bias = register_parameter("bias", Tensor::zeros(normalized_shape, init.dtype));
  }
}

RMSNorm::RMSNorm(int64_t dim, double eps_, Init init) : eps(eps_) {
  check_positive("RMSNorm", "dim", dim);
  weight = register_parameter("weight", Tensor::ones({dim}, init.dtype));
}

Conv1d::Conv1d(int64_t in, int64_t out, int64_t kernel, int64_t stride_, int64_t padding_,
               int64_t dilation_, int64_t groups_, bool with_bias, Init init)
    : stride(stride_), padding(padding_), dilation(dilation_), groups(groups_) {
  check_positive("Conv1d", "in_channels", in);
  check_positive("Conv1d", "out_channels", out);
  check_positive("Conv1d", "kernel_size", kernel);
  check_positive("Conv1d", "groups", groups);
  if (in % groups || out % groups)
    throw std::invalid_argument("Conv1d: in_channels " + std::to_string(in) + " and out_channels " +
                                std::to_string(out) + " must be divisible by groups " +
                                std::to_string(groups));
  const double fan_in = static_cast<double>(in / groups * kernel);
  const double bound = 1.0 / std::sqrt(fan_in);
  weight = register_parameter(
      "weight", Tensor::uniform({out, in / groups, kernel}, -bound, bound, init.dtype, init.gen));
  if (with_bias)
    bias = register_parameter("bias", Tensor::uniform({out}, -bound, bound, init.dtype, init.gen));
}

Var Conv1d::effective_weight() const {
  return lora && !lora->merged ? add(weight, lora_delta_weight(*this)) : weight;
}

Var Conv1d::forward(const Var& x) const {
  if (lora && !lora->merged) {
    // conv is linear in its weight. Without dropout: one conv with W + s B A (the extra terms
    // are weight-sized, no extra activations); with it: conv(x, W) + s conv(dropout(x), B A).
    if (lora->dropout == 0 || !is_training())
      return conv1d(x, effective_weight(), bias, stride, padding, dilation, groups);
    const Var x_in = dropout(x, lora->dropout, is_training(), lora->gen);
    return add(conv1d(x, weight, bias, stride, padding, dilation, groups),
               conv1d(x_in, lora_delta_weight(*this), Var(), stride, padding, dilation, groups));
  }
  return conv1d(x, weight, bias, stride, padding, dilation, groups);
}

void Conv1d::register_lora_factors() {
  register_module("lora_A", *lora->A);
  register_module("lora_B", *lora->B);
}

Dropout::Dropout(double p_, Generator* gen_) : p(p_), gen(gen_) {
  if (!(p >= 0 && p < 1))
    throw std::invalid_argument("Dropout: p must be in [0, 1), got " + std::to_string(p));
}

} // namespace ssm::nn
