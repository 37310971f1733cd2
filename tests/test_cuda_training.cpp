// GPU test: the same small training run on the CPU and on CUDA gives the same loss curve to
// float32 precision (same initial weights, same batches, same optimizer). Skipped without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

#include "autograd/nn.h"
#include "autograd/optim.h"
#include "tests/parity.h"

using namespace ssm;

namespace {

struct TwoLayer : nn::Module {
  nn::Linear fc1, fc2;
  TwoLayer(nn::Init init) : fc1(8, 32, true, init), fc2(32, 3, true, init) {
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }
  Var forward(const Var& x) const { return fc2.forward(gelu(fc1.forward(x))); }
};

// Losses of `steps` AdamW steps on `device`, from weights and batches that depend only on the
// seeds (both drawn on the CPU, then moved).
std::vector<double> train_losses(Device device, int steps) {
  Generator init(11), data(12);
  TwoLayer model({DType::Float32, &init});
  model.to(device);
  optim::AdamW adam(model.named_parameters(), {1e-2, 0.9, 0.999, 1e-8, 0.01, {"bias"}});
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    const Tensor x_cpu = Tensor::randn({16, 8}, DType::Float32, &data);
    const Tensor x = x_cpu.to(device);
    // A learnable rule: the label is the largest of the first three features.
    const Tensor labels = argmax(x_cpu.narrow(1, 0, 3), 1).to(device);
    adam.zero_grad();
    Var loss = cross_entropy(model.forward(Var(x)), labels);
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    adam.step();
    losses.push_back(loss.item());
  }
  return losses;
}

} // namespace

GPU_TEST_CASE("cuda: a training run matches the CPU's loss curve step by step") {
  const int steps = 30;
  const std::vector<double> cpu = train_losses(Device::cpu(), steps);
  const std::vector<double> gpu = train_losses(Device::cuda(0), steps);
  // float32 kernels sum in a different order than the CPU loops: each step's loss differs by a
  // few float32 ulps, and the difference grows slowly through the updates. 1e-4 relative over
  // 30 steps is well above that drift and far below any real discrepancy (a wrong gradient
  // changes the curve at the first step by more than 1e-2).
  for (int i = 0; i < steps; ++i) {
    std::printf("step %2d  cpu %.7f  cuda %.7f\n", i + 1, cpu[i], gpu[i]);
    CHECK(gpu[i] == doctest::Approx(cpu[i]).epsilon(1e-4));
  }
  CHECK(cpu.back() < cpu.front()); // it did learn something
}
