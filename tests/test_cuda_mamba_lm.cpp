// test_cuda_mamba_lm.cpp: the Mamba LM on CUDA against the CPU (forward, loss, every
// parameter gradient), step mode on CUDA against the parallel forward, and the transformers
// parity check run on CUDA.
#include <doctest/doctest.h>

#include <filesystem>

#include "autograd/functions.h"
#include "mamba/generate.h"
#include "mamba/hf_check.h"
#include "mamba/mamba_lm.h"
#include "tensor/ops.h"
#include "tests/parity.h"

namespace ssm {
namespace {

MambaConfig gpu_config() {
  MambaConfig c = MambaConfig::make(/*vocab=*/41, /*d_model=*/24, /*n_layer=*/2,
                                    /*d_state=*/7, /*expand=*/2, /*d_conv=*/4);
  c.use_bias = true;
  c.tie_word_embeddings = false;
  return c;
}

// The same random model for the same seed (Philox fills do not depend on the device).
std::unique_ptr<MambaLM> seeded_model(const MambaConfig& c, DType dtype, uint64_t seed) {
  Generator gen(seed);
  auto model = std::make_unique<MambaLM>(c, nn::Init{dtype, &gen});
  for (const auto& [name, p] : model->named_parameters())
    p.assign(add(p.value(), mul(Tensor::randn(p.shape(), dtype, &gen), 0.1)));
  return model;
}

GPU_TEST_CASE("cuda Mamba LM: forward, loss and every gradient equal the CPU's") {
  const MambaConfig c = gpu_config();
  for (DType dtype : {DType::Float64, DType::Float32}) {
    // float64: a few ulps of reordered sums; float32: cuBLAS and the scan kernels sum in
    // another order than the CPU loops, ~1e-6 relative through two layers.
    const double atol = dtype == DType::Float64 ? test::kF64Atol : 1e-5;
    const double rtol = dtype == DType::Float64 ? test::kF64Rtol : 1e-3;
    auto cpu = seeded_model(c, dtype, 3);
    auto gpu = seeded_model(c, dtype, 3);
    gpu->to(Device::cuda(0));
    Generator gen(4);
    const Tensor ids = Tensor::randint(0, c.vocab_size, {3, 37}, DType::Int64, &gen);
    const Var loss_cpu = cpu->loss(ids);
    const Var loss_gpu = gpu->loss(ids.to(Device::cuda(0)));
    loss_cpu.backward();
    loss_gpu.backward();
    const std::string config = "b=3 l=37 d_model=24 n=7";
    test::check_parity("mamba_lm loss", config, loss_gpu.value().to(Device::cpu()),
                       loss_cpu.value(), atol, rtol);
    const auto cpu_params = cpu->named_parameters();
    const auto gpu_params = gpu->named_parameters();
    for (size_t i = 0; i < cpu_params.size(); ++i)
      test::check_parity("grad " + cpu_params[i].first, config,
                         gpu_params[i].second.grad().to(Device::cpu()), cpu_params[i].second.grad(),
                         atol, rtol);
  }
}

GPU_TEST_CASE("cuda Mamba step mode equals the parallel forward (float64)") {
  const MambaConfig c = gpu_config();
  auto model = seeded_model(c, DType::Float64, 5);
  model->to(Device::cuda(0));
  Generator gen(6);
  const Tensor ids =
      Tensor::randint(0, c.vocab_size, {2, 11}, DType::Int64, &gen).to(Device::cuda(0));
  NoGradGuard no_grad;
  const Tensor logits = model->forward(ids).value(); // (2, 11, V)
  MambaCache cache;
  std::vector<Tensor> steps = {model->prefill(ids.narrow(1, 0, 4), cache)};
  for (int64_t t = 4; t < 11; ++t)
    steps.push_back(model->step(ids.select(1, t).contiguous(), cache));
  test::check_parity("mamba step vs parallel", "prompt 4, 7 steps",
                     stack(steps, 1).to(Device::cpu()), logits.narrow(1, 3, 8).to(Device::cpu()),
                     test::kF64Atol, test::kF64Rtol);
}

GPU_TEST_CASE("cuda hf_check: transformers' hf_mamba_tiny on the GPU") {
  const std::string fixture = "../shared/fixtures/hf_mamba_tiny";
  if (!std::filesystem::exists(fixture + "/config.json")) return;
  for (DType dtype : {DType::Float64, DType::Float32}) {
    HfCheckOptions options;
    options.dtype = dtype;
    options.device = Device::cuda(0);
    const HfCheckResult r = run_hf_check(fixture, fixture + "/reference.safetensors", options);
    std::string report;
    for (const auto& line : r.lines) report += line + "\n";
    INFO(report);
    CHECK(r.ok);
  }
}

} // namespace
} // namespace ssm
