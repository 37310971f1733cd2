// mamba_lm.cpp: the Mamba block, the layer and the LM (the math and glossary are in
// mamba_lm.h). Parallel forward with autograd; step() without.
#include "mamba/mamba_lm.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "mamba/selective_scan.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace ssm {

// ---- the mixer -------------------------------------------------------------------------

MambaMixer::MambaMixer(const MambaConfig& c, nn::Init init)
    : config(c),
      in_proj(c.d_model, 2 * c.d_inner, c.use_bias, init),
      conv1d(c.d_inner, c.d_inner, c.d_conv, /*stride=*/1, /*padding=*/c.d_conv - 1,
             /*dilation=*/1, /*groups=*/c.d_inner, c.use_conv_bias, init),
      x_proj(c.d_inner, c.dt_rank + 2 * c.d_state, /*bias=*/false, init),
      dt_proj(c.dt_rank, c.d_inner, /*bias=*/true, init),
      out_proj(c.d_inner, c.d_model, c.use_bias, init) {
  register_module("in_proj", in_proj);
  register_module("conv1d", conv1d);
  register_module("x_proj", x_proj);
  register_module("dt_proj", dt_proj);
  A_log = register_parameter("A_log", Tensor::zeros({c.d_inner, c.d_state}, init.dtype));
  D = register_parameter("D", Tensor::ones({c.d_inner}, init.dtype));
  register_module("out_proj", out_proj);
  reset_ssm_parameters(init.gen);
}

// Mamba's initialisation (Gu & Dao 2023, Section 3.6 and the reference implementation's
// dt_proj init, which transformers repeats in MambaPreTrainedModel._init_weights):
//   dt_proj.weight ~ U(-s, s) ("random") or = s ("constant"), s = dt_rank^-1/2 * dt_scale
//   dt ~ exp(U(log dt_min, log dt_max)), floored at dt_floor, and dt_proj.bias = the inverse
//   of softplus at dt, dt + log(-expm1(-dt)), so that softplus(bias) = dt at the start
//   A_log[d, k] = log(k + 1)   (S4D-Real: A = -(1, 2, ..., n) for every channel)
//   D = 1
//   biases of in_proj / out_proj = 0 (when present)
void MambaMixer::reset_ssm_parameters(Generator* gen) {
  const MambaConfig& c = config;
  const DType dtype = A_log.dtype();
  const double std_dt = std::pow(static_cast<double>(c.dt_rank), -0.5) * c.time_step_scale;
  if (c.time_step_init_scheme == "constant")
    dt_proj.weight.assign(Tensor::full({c.d_inner, c.dt_rank}, std_dt, dtype));
  else
    dt_proj.weight.assign(Tensor::uniform({c.d_inner, c.dt_rank}, -std_dt, std_dt, dtype, gen));
  const Tensor r = Tensor::rand({c.d_inner}, DType::Float64, gen);
  std::vector<double> r_values = r.to_vector<double>(), bias(c.d_inner);
  const double lo = std::log(c.time_step_min), hi = std::log(c.time_step_max);
  for (int64_t d = 0; d < c.d_inner; ++d) {
    const double dt = std::max(std::exp(r_values[d] * (hi - lo) + lo), c.time_step_floor);
    bias[d] = dt + std::log(-std::expm1(-dt));
  }
  dt_proj.bias.assign(Tensor::from_vector(bias, {c.d_inner}).to(dtype));
  std::vector<double> a_log(c.d_inner * c.d_state);
  for (int64_t d = 0; d < c.d_inner; ++d)
    for (int64_t k = 0; k < c.d_state; ++k) a_log[d * c.d_state + k] = std::log(double(k + 1));
  A_log.assign(Tensor::from_vector(a_log, {c.d_inner, c.d_state}).to(dtype));
  D.assign(Tensor::ones({c.d_inner}, dtype));
  if (in_proj.bias.defined()) in_proj.bias.assign(Tensor::zeros({2 * c.d_inner}, dtype));
  if (out_proj.bias.defined()) out_proj.bias.assign(Tensor::zeros({c.d_model}, dtype));
}

Var MambaMixer::forward(const Var& x_in, MambaLayerState* state) const {
  const MambaConfig& c = config;
  if (x_in.dim() != 3 || x_in.size(2) != c.d_model)
    throw std::invalid_argument("MambaMixer: input must be (batch, length, d_model = " +
                                std::to_string(c.d_model) + "), got " + shape_str(x_in.shape()));
  const int64_t length = x_in.size(1);
  const Var xz = in_proj.forward(x_in);              // (b, l, 2 d_inner)
  const Var x_pre = narrow(xz, 2, 0, c.d_inner);     // (b, l, d_inner)
  const Var z = narrow(xz, 2, c.d_inner, c.d_inner); // (b, l, d_inner)

  // Causal depthwise convolution: pad d_conv - 1 zeros on both sides, keep the first l
  // outputs, so output t sees inputs t - d_conv + 1 .. t.
  const Var x_cl = transpose(x_pre, 1, 2);                     // (b, d_inner, l)
  const Var conv = narrow(conv1d.forward(x_cl), 2, 0, length); // (b, d_inner, l)
  const Var x = transpose(silu(conv), 1, 2);                   // (b, l, d_inner)

  const Var dbc = x_proj.forward(x); // (b, l, dt_rank + 2 n)
  const std::vector<Var> parts = split(dbc, {c.dt_rank, c.d_state, c.d_state}, 2);
  const Var& dt_low = parts[0]; // (b, l, dt_rank)
  const Var& B = parts[1];      // (b, l, n)
  const Var& C = parts[2];      // (b, l, n)
  // dt_proj without its bias, which the scan adds before the softplus (delta_bias). Through
  // forward(), not dt_proj.weight directly, so that a LoRA adapter on dt_proj takes part.
  const Var delta = dt_proj.forward(dt_low, /*add_bias=*/false); // (b, l, d_inner)
  const Var A = neg(exp(A_log));                                 // (d_inner, n)

  Tensor last_state;
  const Var y = selective_scan(x, delta, A, B, C, D, z, dt_proj.bias, /*delta_softplus=*/true,
                               state ? &last_state : nullptr); // (b, l, d_inner)
  if (state) {
    // conv_state holds the last d_conv inputs of the convolution, zeros before the start.
    const Tensor xv = x_cl.value(); // (b, d_inner, l)
    const int64_t keep = std::min(length, c.d_conv);
    state->conv_state = Tensor::zeros({xv.size(0), c.d_inner, c.d_conv}, xv.dtype(), xv.device());
    state->conv_state.narrow(2, c.d_conv - keep, keep).copy_(xv.narrow(2, length - keep, keep));
    state->ssm_state = last_state; // (b, d_inner, n)
  }
  return out_proj.forward(y); // (b, l, d_model)
}

// The same block for one token, as a recurrence (Gu & Dao 2023, Algorithm 2 for one t):
//   conv_state <- shift left by one, append x_t;  x = silu(sum_j conv_state[:, :, j] w[:, j] + b)
//   dt = softplus(dt_proj(x_proj(x)[:dt_rank]));  h <- exp(dt A) h + dt B x
//   y  = (C . h + D x) silu(z)
Tensor MambaMixer::step(const Tensor& x_in, MambaLayerState& state) const {
  const MambaConfig& c = config;
  NoGradGuard no_grad;
  const Var xz = in_proj.forward(Var(x_in));                   // (b, 2 d_inner)
  const Tensor x_new = xz.value().narrow(1, 0, c.d_inner);     // (b, d_inner)
  const Tensor z = xz.value().narrow(1, c.d_inner, c.d_inner); // (b, d_inner)

  // conv_state (b, d_inner, d_conv): drop the oldest input, append the new one.
  Tensor shifted = state.conv_state.narrow(2, 1, c.d_conv - 1).clone();
  state.conv_state.narrow(2, 0, c.d_conv - 1).copy_(shifted);
  state.conv_state.select(2, c.d_conv - 1).copy_(x_new);
  // The filter taps (d_inner, d_conv), with a LoRA adapter's correction when there is one.
  const Tensor w = conv1d.effective_weight().value().reshape({c.d_inner, c.d_conv});
  Tensor conv = sum(mul(state.conv_state, w), {2}); // (b, d_inner)
  if (conv1d.bias.defined()) conv = add(conv, conv1d.bias.value());
  const Tensor x = silu(conv); // (b, d_inner)

  const Tensor dbc = x_proj.forward(Var(x)).value();                // (b, dt_rank + 2 n)
  const Tensor dt_low = dbc.narrow(1, 0, c.dt_rank);                // (b, dt_rank)
  const Tensor B = dbc.narrow(1, c.dt_rank, c.d_state);             // (b, n)
  const Tensor C = dbc.narrow(1, c.dt_rank + c.d_state, c.d_state); // (b, n)
  const Tensor dt = softplus(dt_proj.forward(Var(dt_low)).value()); // (b, d_inner)
  const Tensor A = neg(exp(A_log.value()));                         // (d_inner, n)

  const Tensor dA = exp(mul(dt.unsqueeze(2), A));                  // (b, d_inner, n)
  const Tensor dBx = mul(mul(dt, x).unsqueeze(2), B.unsqueeze(1)); // (b, d_inner, n)
  state.ssm_state = add(mul(dA, state.ssm_state), dBx);            // (b, d_inner, n)
  Tensor y = sum(mul(state.ssm_state, C.unsqueeze(1)), {2});       // (b, d_inner)
  y = add(y, mul(x, D.value()));
  y = mul(y, silu(z));
  return out_proj.forward(Var(y)).value(); // (b, d_model)
}

// ---- the layer -------------------------------------------------------------------------

MambaLayer::MambaLayer(const MambaConfig& c, nn::Init init)
    : norm(c.d_model, c.layer_norm_epsilon, init), mixer(c, init) {
  register_module("norm", norm);
  register_module("mixer", mixer);
}

// The residual stream stays in the model's dtype: transformers' residual_in_fp32 upcasts a
// half-precision residual to float32, and every dtype here is float32 or float64 already.
Var MambaLayer::forward(const Var& residual, MambaLayerState* state) const {
  return add(residual, mixer.forward(norm.forward(residual), state));
}

Tensor MambaLayer::step(const Tensor& residual, MambaLayerState& state) const {
  NoGradGuard no_grad;
  return add(residual, mixer.step(norm.forward(Var(residual)).value(), state));
}

// ---- the model -------------------------------------------------------------------------

MambaBackbone::MambaBackbone(const MambaConfig& c, nn::Init init)
    : embeddings(c.vocab_size, c.d_model, init), norm_f(c.d_model, c.layer_norm_epsilon, init) {
  register_module("embeddings", embeddings);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    layers.push_back(std::make_unique<MambaLayer>(c, init));
    register_module("layers." + std::to_string(i), *layers.back());
  }
  register_module("norm_f", norm_f);
}

namespace {
const MambaConfig& validated(const MambaConfig& c) {
  c.validate();
  return c;
}
} // namespace

MambaLM::MambaLM(const MambaConfig& c, nn::Init init) : config(validated(c)), backbone(c, init) {
  register_module("backbone", backbone);
  // transformers' _init_weights: embedding ~ N(0, initializer_range).
  backbone.embeddings.weight.assign(
      mul(Tensor::randn({c.vocab_size, c.d_model}, init.dtype, init.gen), c.initializer_range));
  // GPT-2's scaled init of the projections that write into the residual stream: each adds to
  // it n_layer times, so their variance is divided by n_layer.
  if (c.rescale_prenorm_residual)
    for (const auto& layer : backbone.layers) {
      const Var& w = layer->mixer.out_proj.weight;
      w.assign(mul(w.value(), 1.0 / std::sqrt(static_cast<double>(c.n_layer))));
    }
  if (!c.tie_word_embeddings) {
    lm_head = std::make_unique<nn::Linear>(c.d_model, c.vocab_size, /*bias=*/false, init);
    register_module("lm_head", *lm_head);
  }
}

Var MambaLM::lm_head_weight() const {
  return lm_head ? lm_head->weight : backbone.embeddings.weight;
}

Var MambaLM::forward(const Tensor& input_ids, std::vector<Var>* hidden_states,
                     MambaCache* cache) const {
  if (input_ids.dtype() != DType::Int64 || input_ids.dim() != 2)
    throw std::invalid_argument("MambaLM: input_ids must be int64 (batch, length), got " +
                                std::string(dtype_name(input_ids.dtype())) + " " +
                                shape_str(input_ids.shape()));
  if (cache) {
    cache->layers.assign(config.n_layer, MambaLayerState{});
    cache->position = input_ids.size(1);
  }
  Var h = backbone.embeddings.forward(input_ids); // (b, l, d_model)
  for (int64_t i = 0; i < config.n_layer; ++i) {
    h = backbone.layers[i]->forward(h, cache ? &cache->layers[i] : nullptr);
    if (hidden_states) hidden_states->push_back(h);
  }
  const Var out = backbone.norm_f.forward(h); // (b, l, d_model)
  if (hidden_states) hidden_states->push_back(out);
  return linear(out, lm_head_weight()); // (b, l, vocab)
}

Var MambaLM::loss(const Tensor& input_ids) const {
  const int64_t length = input_ids.size(1);
  if (length < 2) throw std::invalid_argument("MambaLM::loss: need at least 2 tokens per row");
  const Var logits = forward(input_ids);                                            // (b, l, V)
  const Var pred = narrow(logits, 1, 0, length - 1);                                // (b, l-1, V)
  const Tensor target = input_ids.narrow(1, 1, length - 1).contiguous().view({-1}); // (b (l-1))
  return cross_entropy(reshape(pred, {-1, config.vocab_size}), target);
}

MambaCache MambaLM::empty_cache(int64_t batch) const {
  MambaCache cache;
  for (int64_t i = 0; i < config.n_layer; ++i)
    cache.layers.push_back(
        {Tensor::zeros({batch, config.d_inner, config.d_conv}, dtype(), device()),
         Tensor::zeros({batch, config.d_inner, config.d_state}, dtype(), device())});
  return cache;
}

Tensor MambaLM::prefill(const Tensor& input_ids, MambaCache& cache) const {
  NoGradGuard no_grad;
  const Tensor logits = forward(input_ids, nullptr, &cache).value(); // (b, l, V)
  return logits.select(1, input_ids.size(1) - 1).contiguous();       // (b, V)
}

Tensor MambaLM::step(const Tensor& ids, MambaCache& cache) const {
  NoGradGuard no_grad;
  if (ids.dtype() != DType::Int64 || ids.dim() != 1)
    throw std::invalid_argument("MambaLM::step: ids must be int64 (batch), got " +
                                shape_str(ids.shape()));
  if (static_cast<int64_t>(cache.layers.size()) != config.n_layer)
    throw std::invalid_argument("MambaLM::step: the cache has " +
                                std::to_string(cache.layers.size()) + " layers, the model " +
                                std::to_string(config.n_layer) + " (use empty_cache or prefill)");
  Tensor h = backbone.embeddings.forward(ids).value(); // (b, d_model)
  for (int64_t i = 0; i < config.n_layer; ++i) h = backbone.layers[i]->step(h, cache.layers[i]);
  const Tensor out = backbone.norm_f.forward(Var(h)).value();
  ++cache.position;
  return linear(Var(out), lm_head_weight()).value(); // (b, V)
}

} // namespace ssm
