// lora.cpp: see lora.h for the formulas, shapes and names. The layers' forwards, which add the
// adapter's term, are in nn.cpp beside the layers.
#include "autograd/lora.h"

#include "autograd/nf4.h"
#include "tensor/ops.h"

#include <cmath>
#include <stdexcept>

namespace ssm::nn {

double lora_scaling(const LoraOptions& o) {
  if (o.r < 1) throw std::invalid_argument("LoRA: r must be >= 1, got " + std::to_string(o.r));
  if (!(o.dropout >= 0 && o.dropout < 1))
    throw std::invalid_argument("LoRA: dropout must be in [0, 1), got " +
                                std::to_string(o.dropout));
  const double r = static_cast<double>(o.r);
  return o.rslora ? o.alpha / std::sqrt(r) : o.alpha / r;
}

LoraFactor::LoraFactor(Tensor value) { weight = register_parameter("weight", std::move(value)); }

namespace {

// A new adapter with A (r, a_cols) ~ U(-1/sqrt(a_cols), 1/sqrt(a_cols)) -- kaiming_uniform
// with a = sqrt(5), fan_in = a_cols -- and B (out, r) = 0, reshaped to the given shapes.
std::shared_ptr<LoraAdapter> make_adapter(const LoraOptions& o, const Var& like, int64_t a_cols,
                                          int64_t out, const Shape& a_shape, const Shape& b_shape) {
  auto adapter = std::make_shared<LoraAdapter>();
  adapter->r = o.r;
  adapter->scale = lora_scaling(o);
  adapter->dropout = o.dropout;
  adapter->gen = o.gen;
  const double bound = 1.0 / std::sqrt(static_cast<double>(a_cols));
  const Tensor a = Tensor::uniform({o.r, a_cols}, -bound, bound, like.dtype(), o.gen);
  adapter->A = std::make_unique<LoraFactor>(a.reshape(a_shape).to(like.device()));
  adapter->B = std::make_unique<LoraFactor>(
      Tensor::zeros({out, o.r}, like.dtype()).reshape(b_shape).to(like.device()));
  return adapter;
}

void freeze(Var v) { // a handle: the parameter itself is changed
  if (v.defined()) v.set_requires_grad(false);
}

const LoraAdapter& adapter_of(const std::shared_ptr<LoraAdapter>& lora, const char* layer) {
  if (!lora) throw std::logic_error(std::string(layer) + ": no LoRA adapter attached");
  return *lora;
}

// W += sign * delta, on the values.
void fold(const Var& weight, const Var& delta, double sign) {
  NoGradGuard no_grad;
  weight.assign(add(weight.value(), mul(delta.value(), sign)));
}

bool is_quantized(const Linear& layer) { return layer.nf4 != nullptr; }
bool is_quantized(const Conv1d&) { return false; }
bool is_quantized(const Embedding&) { return false; }

template <typename Layer>
void set_merged(Layer& layer, bool merged, const char* name) {
  const LoraAdapter& a = adapter_of(layer.lora, name);
  if (is_quantized(layer))
    throw std::logic_error(std::string(name) +
                           ": the base weight is quantised (NF4); merging "
                           "needs it in full precision (dequantise into a new model first)");
  if (a.merged == merged)
    throw std::logic_error(std::string(name) + ": the LoRA adapter is already " +
                           (merged ? "merged" : "unmerged"));
  fold(layer.weight, lora_delta_weight(layer), merged ? 1.0 : -1.0);
  layer.lora->merged = merged;
}

} // namespace

// Attaching registers the adapter's parameters on the layer, through the layer's own
// register_lora_factors() (registration is the layer's business, nn.cpp).
void attach_lora(Linear& layer, const LoraOptions& o) {
  if (layer.lora) throw std::logic_error("attach_lora: this Linear already has an adapter");
  if (layer.nf4)
    throw std::logic_error("attach_lora: attach the adapter before quantising the Linear");
  layer.lora = make_adapter(o, layer.weight, layer.in_features, layer.out_features,
                            {o.r, layer.in_features}, {layer.out_features, o.r});
  freeze(layer.weight);
  freeze(layer.bias);
  layer.register_lora_factors();
}

void attach_lora(Conv1d& layer, const LoraOptions& o) {
  if (layer.lora) throw std::logic_error("attach_lora: this Conv1d already has an adapter");
  const Shape& w = layer.weight.shape(); // (out, in / groups, k)
  layer.lora = make_adapter(o, layer.weight, w[1] * w[2], w[0], {o.r, w[1], w[2]}, {w[0], o.r, 1});
  freeze(layer.weight);
  freeze(layer.bias);
  layer.register_lora_factors();
}

void attach_lora(Embedding& layer, const LoraOptions& o) {
  if (layer.lora) throw std::logic_error("attach_lora: this Embedding already has an adapter");
  auto adapter = std::make_shared<LoraAdapter>();
  adapter->r = o.r;
  adapter->scale = lora_scaling(o);
  const Shape& w = layer.weight.shape(); // (vocab, dim)
  // peft: lora_embedding_A = 0 (r, vocab), lora_embedding_B ~ N(0, 1) (dim, r), so that the
  // adapter starts at 0 while a gradient reaches A.
  adapter->embedding_A =
      Var(Tensor::zeros({o.r, w[0]}, layer.weight.dtype()).to(layer.weight.device()), true);
  adapter->embedding_B =
      Var(Tensor::randn({w[1], o.r}, layer.weight.dtype(), o.gen).to(layer.weight.device()), true);
  layer.lora = adapter;
  freeze(layer.weight);
  layer.register_lora_factors();
}

Var lora_delta_weight(const Linear& layer) {
  const LoraAdapter& a = adapter_of(layer.lora, "Linear");
  return mul(matmul(a.B->weight, a.A->weight), a.scale);
}

Var lora_delta_weight(const Conv1d& layer) {
  const LoraAdapter& a = adapter_of(layer.lora, "Conv1d");
  const Shape& w = layer.weight.shape();
  const Var a2 = reshape(a.A->weight, {a.r, w[1] * w[2]}); // (r, in / groups * k)
  const Var b2 = reshape(a.B->weight, {w[0], a.r});        // (out, r)
  return reshape(mul(matmul(b2, a2), a.scale), w);
}

Var lora_delta_weight(const Embedding& layer) {
  const LoraAdapter& a = adapter_of(layer.lora, "Embedding");
  return mul(transpose(matmul(a.embedding_B, a.embedding_A), 0, 1), a.scale);
}

Var lora_linear(const Var& x, const Var& x_dropped, const Var& weight,
                const std::shared_ptr<const Nf4Weight>& nf4, const Var& bias, const Var& A,
                const Var& B, double scale) {
  const Tensor& xv = x.value();
  const int64_t r = A.size(0), in = A.size(1), out = B.size(0);
  if (xv.dim() == 0 || xv.size(-1) != in || B.size(1) != r || x_dropped.shape() != xv.shape())
    throw std::invalid_argument("lora_linear: input " + shape_str(xv.shape()) + ", A " +
                                shape_str(A.shape()) + ", B " + shape_str(B.shape()) +
                                ": expected x (..., in), A (r, in), B (out, r)");
  if (!weight.defined() && !nf4)
    throw std::invalid_argument("lora_linear: no base weight (dense or NF4)");
  const int64_t rows = xv.numel() / in;
  const bool same_input = x.impl() == x_dropped.impl();
  // The base weight as a dense tensor (a dequantised copy for NF4, freed after use).
  auto base_weight = [weight, nf4, dtype = xv.dtype()]() {
    return weight.defined() ? weight.value() : nf4_dequantize(*nf4).to(dtype);
  };
  const Tensor x_rows = xv.reshape({rows, in});                 // (rows, in)
  const Tensor xd_rows = x_dropped.value().reshape({rows, in}); // (rows, in)
  Tensor y = matmul(x_rows, base_weight().transpose(0, 1));     // (rows, out)
  if (bias.defined()) add_(y, bias.value());
  const Tensor h = matmul(xd_rows, A.value().transpose(0, 1)); // (rows, r)
  add_(y, mul(matmul(h, B.value().transpose(0, 1)), scale));   // + s h B^T
  Shape y_shape = xv.shape();
  y_shape.back() = out;
  const bool need_x = x.requires_grad() || (same_input && x_dropped.requires_grad());
  const bool need_xd = !same_input && x_dropped.requires_grad();
  const bool need_w = weight.defined() && weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  const bool need_a = A.requires_grad(), need_bb = B.requires_grad();
  const Tensor a = A.value(), b = B.value();
  const Shape x_shape = xv.shape();
  return make_result(
      "lora_linear", y.view(y_shape), {x, x_dropped, weight, bias, A, B}, [=](const Tensor& g) {
        const Tensor G = g.reshape({rows, out}); // (rows, out)
        const Tensor GB = matmul(G, b);          // (rows, r)
        const Tensor lora_dx =
            need_x || need_xd ? mul(matmul(GB, a), scale) : Tensor(); // (rows, in)
        Tensor dx, dxd;
        if (need_x) {
          dx = matmul(G, base_weight()); // (rows, in)
          if (same_input) add_(dx, lora_dx);
          dx = dx.view(x_shape);
        }
        if (need_xd) dxd = lora_dx.view(x_shape);
        return std::vector<Tensor>{
            dx,
            dxd,
            need_w ? matmul(G.transpose(0, 1), x_rows) : Tensor(),               // (out, in)
            need_b ? sum(G, {0}) : Tensor(),                                     // (out)
            need_a ? mul(matmul(GB.transpose(0, 1), xd_rows), scale) : Tensor(), // (r, in)
            need_bb ? mul(matmul(G.transpose(0, 1), h), scale) : Tensor()};      // (out, r)
      });
}

void merge_lora(Linear& layer) { set_merged(layer, true, "Linear"); }
void merge_lora(Conv1d& layer) { set_merged(layer, true, "Conv1d"); }
void merge_lora(Embedding& layer) { set_merged(layer, true, "Embedding"); }
void unmerge_lora(Linear& layer) { set_merged(layer, false, "Linear"); }
void unmerge_lora(Conv1d& layer) { set_merged(layer, false, "Conv1d"); }
void unmerge_lora(Embedding& layer) { set_merged(layer, false, "Embedding"); }

} // namespace ssm::nn
