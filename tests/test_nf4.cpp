// test_nf4.cpp: NF4 storage for QLoRA (autograd/nf4.h): the code table, quantise ->
// dequantise against a float64 reference written here, the storage per value, nf4_linear's
// gradient, and a QLoRA Mamba whose quantised layers compute exactly what the dequantised
// weights would, with gradients for the adapters only. On a GPU: the CUDA dequantisation
// bit-identical to the CPU's, and the quantised base's bytes as the allocator counts them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "autograd/functions.h"
#include "autograd/nf4.h"
#include "mamba/lora.h"
#include "tensor/ops.h"
#include "tests/helpers.h"
#include "tests/parity.h"
#ifdef SSM_CUDA
#include "cuda/runtime.h"
#endif

namespace ssm {
namespace {

TEST_CASE("nf4: the code table: 16 increasing values from -1 to 1 with an exact 0") {
  CHECK(kNf4Codes[0] == -1.0f);
  CHECK(kNf4Codes[7] == 0.0f);
  CHECK(kNf4Codes[15] == 1.0f);
  for (int i = 1; i < 16; ++i) CHECK(kNf4Codes[i] > kNf4Codes[i - 1]);
  // Spot values of the QLoRA paper's table (Appendix E).
  CHECK(kNf4Codes[1] == doctest::Approx(-0.6961928009986877));
  CHECK(kNf4Codes[8] == doctest::Approx(0.07958029955625534));
  CHECK(kNf4Codes[14] == doctest::Approx(0.7229568362236023));
}

TEST_CASE("nf4: quantise -> dequantise against a float64 reference, and the storage per value") {
  Generator gen(17);
  // 64 x 301 = 19264 values: 301 blocks of 64, two second-level blocks (256 + 45 scales),
  // and an odd count of values per row, so blocks straddle rows.
  const Tensor w = mul(Tensor::randn({64, 301}, DType::Float64, &gen), 0.02);
  const Nf4Weight q = nf4_quantize(w);
  REQUIRE(q.blocks() == 301);
  const Tensor d = nf4_dequantize(q);
  REQUIRE(d.shape() == w.shape());
  REQUIRE(d.dtype() == DType::Float32);
  const std::vector<double> wv = w.to_vector<double>(),
                            dv = d.to(DType::Float64).to_vector<double>();
  const std::vector<float> s = nf4_block_scales(q);

  // Reference, in float64: each value is the nearest code times its block's dequantised scale.
  double sq_err = 0, sq_w = 0, max_scale_rel = 0;
  for (size_t i = 0; i < wv.size(); ++i) {
    const double scale = s[i / 64];
    double best = 1e300, value = 0;
    for (float c : kNf4Codes)
      if (std::fabs(wv[i] / scale - c) < best) {
        best = std::fabs(wv[i] / scale - c);
        value = static_cast<double>(c * static_cast<float>(scale));
      }
    CHECK(dv[i] == value); // the same code, the same float32 product
    sq_err += (dv[i] - wv[i]) * (dv[i] - wv[i]);
    sq_w += wv[i] * wv[i];
  }
  // The double-quantised scales are near the true absmax of each block.
  for (int64_t b = 0; b < q.blocks(); ++b) {
    double absmax = 0;
    for (int64_t i = b * 64; i < std::min<int64_t>((b + 1) * 64, w.numel()); ++i)
      absmax = std::max(absmax, std::fabs(wv[i]));
    max_scale_rel = std::max(max_scale_rel, std::fabs(s[b] - absmax) / absmax);
  }
  const double rel_rms = std::sqrt(sq_err / sq_w);
  MESSAGE("NF4 on N(0, 0.02^2): relative RMS error " << rel_rms << ", worst scale error "
                                                     << max_scale_rel);
  CHECK(rel_rms < 0.12);       // 4 bits: about 0.1 for normal data
  CHECK(max_scale_rel < 0.02); // 8-bit centred scales
  // Storage: ceil(n / 2) + blocks + 4 ceil(blocks / 256) + 4 bytes, ~0.516 a value.
  CHECK(q.bytes() == static_cast<size_t>((w.numel() + 1) / 2 + 301 + 4 * 2 + 4));
  CHECK(static_cast<double>(q.bytes()) / static_cast<double>(w.numel()) <= 0.6);

  // Edge cases: an all-zero weight, one value, a non-finite value.
  const Nf4Weight zero = nf4_quantize(Tensor::zeros({3, 5}, DType::Float32));
  CHECK(max(abs(nf4_dequantize(zero))).item() == 0);
  const Nf4Weight one = nf4_quantize(Tensor::full({1}, -0.37, DType::Float32));
  CHECK(nf4_dequantize(one).item() == doctest::Approx(-0.37).epsilon(0.01));
  test::check_error<std::invalid_argument>(
      [] { nf4_quantize(Tensor::full({4}, std::nan(""), DType::Float32)); }, {"NaN"});
}

TEST_CASE("nf4_linear: x's gradient (float64 gradcheck); the weight and bias get none") {
  Generator gen(18);
  auto w =
      std::make_shared<const Nf4Weight>(nf4_quantize(Tensor::randn({5, 7}, DType::Float64, &gen)));
  const Var bias(Tensor::randn({5}, DType::Float64, &gen));
  test::expect_gradcheck([&](const std::vector<Var>& v) { return nf4_linear(v[0], w, bias); },
                         {Tensor::randn({3, 2, 7}, DType::Float64, &gen)});
  // The same as a Linear with the dequantised weight.
  const Tensor x = Tensor::randn({4, 7}, DType::Float64, &gen);
  const Tensor expected = linear(Var(x), Var(nf4_dequantize(*w).to(DType::Float64)), bias).value();
  CHECK(max(abs(sub(nf4_linear(Var(x), w, bias).value(), expected))).item() <= 1e-15);
  test::check_error<std::invalid_argument>(
      [&] {
        nf4_linear(Var(Tensor::zeros({2, 6}, DType::Float64)), w, bias);
      },
      {"[2, 6]", "[5, 7]"});
  test::check_error<std::invalid_argument>(
      [&] { nf4_linear(Var(x), w, Var(Tensor::zeros({5}, DType::Float64), true)); },
      {"must be frozen"});
}

TEST_CASE(
    "QLoRA Mamba: quantised layers compute what their dequantised weights would; only the "
    "adapters get gradients; step mode equals the parallel forward") {
  Generator gen(19);
  MambaConfig c = MambaConfig::make(/*vocab=*/29, /*d_model=*/16, /*n_layer=*/2, /*d_state=*/4,
                                    /*expand=*/2, /*d_conv=*/4);
  MambaLM model(c, {DType::Float64, &gen});
  MambaLM reference(c, {DType::Float64, &gen});
  MambaLoraConfig lora;
  lora.r = 4;
  lora.target_modules = {"in_proj", "x_proj", "dt_proj", "out_proj", "conv1d"};
  apply_lora(model, lora, &gen);
  for (const auto& [name, p] : lora_parameters(model))
    if (name.find("lora_B") != std::string::npos)
      p.assign(mul(Tensor::randn(p.shape(), p.dtype(), &gen), 0.1));
  const QuantizeSummary summary = quantize_base_nf4(model);
  CHECK(summary.layers.size() == 8);
  CHECK(static_cast<double>(summary.bytes) / static_cast<double>(summary.values) <= 0.6);
  // The reference: the same adapters, with the dequantised weights as ordinary parameters.
  apply_lora(reference, lora, &gen);
  const auto model_params = model.named_parameters();
  for (const auto& [name, p] : reference.named_parameters()) {
    bool found = false;
    for (const auto& [n2, p2] : model_params)
      if (n2 == name) {
        p.assign(p2.value());
        found = true;
      }
    if (!found) { // a quantised weight: "...mixer.in_proj.weight"
      const std::string layer = name.substr(0, name.size() - std::string(".weight").size());
      const std::string kind = layer.substr(layer.rfind('.') + 1);
      const int64_t i = std::stoll(layer.substr(std::string("backbone.layers.").size()));
      const MambaMixer& m = model.backbone.layers[i]->mixer;
      const nn::Linear& l = kind == "in_proj"   ? m.in_proj
                            : kind == "x_proj"  ? m.x_proj
                            : kind == "dt_proj" ? m.dt_proj
                                                : m.out_proj;
      REQUIRE(static_cast<bool>(l.nf4));
      p.assign(nf4_dequantize(*l.nf4).to(DType::Float64));
    }
  }
  const Tensor ids = Tensor::randint(0, 29, {2, 11}, DType::Int64, &gen);
  const Var logits = model.forward(ids);
  CHECK(max(abs(sub(logits.value(), reference.forward(ids).value()))).item() <= 1e-12);
  model.loss(ids).backward();
  for (const auto& [name, p] : model.named_parameters()) {
    CAPTURE(name);
    CHECK(p.requires_grad() == (name.find(".lora_") != std::string::npos));
    if (p.requires_grad()) CHECK(p.grad().defined());
  }
  MambaCache cache = model.empty_cache(2);
  std::vector<Tensor> steps = {model.prefill(ids.narrow(1, 0, 5), cache)};
  for (int64_t t = 5; t < 11; ++t)
    steps.push_back(model.step(ids.select(1, t).contiguous(), cache));
  for (int64_t k = 0; k < 7; ++k)
    CHECK(max(abs(sub(steps[k], logits.value().select(1, 4 + k)))).item() <= 1e-12);
  test::check_error<std::logic_error>([&] { merge_lora(model); }, {"quantised"});
}

GPU_TEST_CASE("cuda nf4: dequantisation bit-identical to the CPU's; storage by the allocator") {
#ifdef SSM_CUDA
  Generator gen(20);
  for (const int64_t n :
       {int64_t{1}, int64_t{63}, int64_t{64}, int64_t{65}, int64_t{16385}, int64_t{1000003}}) {
    CAPTURE(n);
    const Tensor w = Tensor::randn({n}, DType::Float32, &gen);
    const Nf4Weight cpu = nf4_quantize(w);
    const Nf4Weight gpu = cpu.to(Device::cuda(0));
    const Tensor a = nf4_dequantize(cpu), b = nf4_dequantize(gpu).to(Device::cpu());
    CHECK(max(abs(sub(a, b))).item() == 0);
    std::printf("PASS  nf4_dequantize  n=%-8lld bit-identical to the CPU\n",
                static_cast<long long>(n));
  }
  // A 4096 x 4096 weight quantised on the GPU: what the allocator hands out for it.
  const Tensor big = Tensor::randn({4096, 4096}, DType::Float32, &gen).to(Device::cuda(0));
  cuda::synchronize(0);
  const size_t before = cuda::allocator_stats(0).bytes_in_use;
  {
    const Nf4Weight q = nf4_quantize(big);
    cuda::synchronize(0);
    const size_t used = cuda::allocator_stats(0).bytes_in_use - before;
    const double per_value = static_cast<double>(used) / static_cast<double>(big.numel());
    std::printf(
        "nf4 storage of a 4096 x 4096 weight on the GPU: %zu bytes by the allocator = "
        "%.4f bytes a value (float32: 4)\n",
        used, per_value);
    CHECK(per_value <= 0.6);
    // nf4_linear on the GPU equals the CPU's to float32 rounding.
    const auto qp = std::make_shared<const Nf4Weight>(q);
    const Tensor x = Tensor::randn({3, 4096}, DType::Float32, &gen);
    const Tensor y_gpu =
        nf4_linear(Var(x.to(Device::cuda(0))), qp, Var()).value().to(Device::cpu());
    const auto qc = std::make_shared<const Nf4Weight>(q.to(Device::cpu()));
    const Tensor y_cpu = nf4_linear(Var(x), qc, Var()).value();
    test::check_parity("nf4_linear", "[3, 4096] x [4096, 4096]^T", y_gpu, y_cpu, 1e-4, 1e-4);
  }
#endif
}

} // namespace
} // namespace ssm
