// train_mlp.cpp: the demo trainer. A two-layer MLP learns to tell EEG-like rhythms apart.
//
// Task. Each example is a 1-second window sampled at 64 Hz (64 samples) holding one rhythm of
// a classic EEG band plus noise; the label is the band:
//     0 delta (1-4 Hz)   1 theta (4-8 Hz)   2 alpha (8-13 Hz)   3 beta (13-30 Hz)
// A window is  x_t = a sin(2 pi f t / 64 + phi) + noise * (white + brown)_t,  with f drawn
// uniformly in the band, a in [0.5, 1.5], phi in [0, 2 pi), then normalised to zero mean and
// unit variance. The brown (integrated white) noise makes low frequencies noisier, as in EEG.
//
// Model. logits = W2 gelu(W1 x + b1) + b2, trained with cross-entropy and AdamW (linear warmup
// then cosine decay, gradient clipping). Everything comes from this project's tensor library
// and autograd: nn::Linear, gelu, cross_entropy, optim::AdamW.
//
// Output (in --out): metrics.jsonl (one line per logged step), loss.svg (training loss and
// held-out accuracy), model.safetensors (the trained weights, by parameter name).
//
//   build/train_mlp                 # defaults: 1000 steps of 64 examples, a few seconds
//   build/train_mlp --help
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "autograd/nn.h"
#include "autograd/optim.h"
#include "data/checkpoint.h"
#include "train/flags.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/progress.h"

using namespace ssm;

// ---- data ----------------------------------------------------------------------------------

constexpr int64_t kWindow = 64; // samples per example (1 s at 64 Hz)
constexpr int64_t kClasses = 4;
const char* const kBandNames[kClasses] = {"delta", "theta", "alpha", "beta"};
const double kBandEdges[kClasses + 1] = {1, 4, 8, 13, 30}; // Hz

struct Batch {
  Tensor x;      // (batch, kWindow) float32
  Tensor labels; // (batch) int64
  Batch to(Device device) const { return {x.to(device), labels.to(device)}; }
};

// Draws `n` labelled windows from `gen`; the same generator state gives the same batch.
Batch make_batch(int64_t n, double noise, Generator& gen) {
  const Tensor label_draw = Tensor::randint(0, kClasses, {n}, DType::Int64, &gen);
  const Tensor params = Tensor::rand({n, 3}, DType::Float64, &gen); // frequency, amplitude, phase
  const Tensor white = Tensor::randn({n, kWindow}, DType::Float64, &gen);
  const Tensor steps = Tensor::randn({n, kWindow}, DType::Float64, &gen);
  Tensor x = Tensor::empty({n, kWindow}, DType::Float64);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t band = static_cast<int64_t>(label_draw.at({i}));
    const double f =
        kBandEdges[band] + params.at({i, 0}) * (kBandEdges[band + 1] - kBandEdges[band]);
    const double amplitude = 0.5 + params.at({i, 1});
    const double phase = 2 * M_PI * params.at({i, 2});
    double brown = 0, mean = 0, sq = 0;
    for (int64_t t = 0; t < kWindow; ++t) {
      brown += 0.3 * steps.at({i, t});
      const double v = amplitude * std::sin(2 * M_PI * f * t / kWindow + phase) +
                       noise * (white.at({i, t}) + brown);
      x.set({i, t}, v);
      mean += v;
      sq += v * v;
    }
    mean /= kWindow;
    const double sd = std::sqrt(std::max(sq / kWindow - mean * mean, 1e-12));
    for (int64_t t = 0; t < kWindow; ++t) x.set({i, t}, (x.at({i, t}) - mean) / sd);
  }
  return {x.to(DType::Float32), label_draw};
}

// ---- model ---------------------------------------------------------------------------------

struct MLP : nn::Module {
  nn::Linear fc1, fc2;
  MLP(int64_t hidden, nn::Init init)
      : fc1(kWindow, hidden, true, init), fc2(hidden, kClasses, true, init) {
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }
  // x (batch, kWindow) -> logits (batch, kClasses)
  Var forward(const Var& x) const { return fc2.forward(gelu(fc1.forward(x))); }
};

// Fraction of rows whose argmax matches the label.
double accuracy(const Tensor& logits, const Tensor& labels) {
  const Tensor predicted = argmax(logits, 1); // (batch) int64
  return sum(eq(predicted, labels).to(DType::Float64)).item() / static_cast<double>(labels.numel());
}

// ---- main ----------------------------------------------------------------------------------

int run(int argc, char** argv) {
  int64_t steps = 1000, batch_size = 64, hidden = 128, seed = 0, eval_every = 50, eval_size = 1000;
  double lr = 3e-3, weight_decay = 0.01, clip = 1.0, noise = 0.6, warmup_fraction = 0.1;
  std::string out_dir = "runs/mlp", device = cuda_available() ? "cuda" : "cpu";
  train::Flags flags("train_mlp",
                     "Trains a 2-layer MLP to classify synthetic EEG rhythms "
                     "(delta/theta/alpha/beta) from 1-second windows.");
  flags.add("steps", &steps, "optimizer steps");
  flags.add("batch", &batch_size, "examples per step");
  flags.add("hidden", &hidden, "hidden units");
  flags.add("lr", &lr, "peak learning rate (AdamW)");
  flags.add("weight-decay", &weight_decay, "AdamW weight decay (not applied to biases)");
  flags.add("warmup", &warmup_fraction, "fraction of steps of linear warmup");
  flags.add("clip", &clip, "global gradient-norm clip");
  flags.add("noise", &noise, "noise amplitude relative to the rhythm (harder when larger)");
  flags.add("eval-every", &eval_every, "steps between held-out evaluations");
  flags.add("eval-size", &eval_size, "held-out examples");
  flags.add("seed", &seed, "random seed (data, initialisation)");
  flags.add("out", &out_dir, "output directory for metrics.jsonl, loss.svg, model.safetensors");
  flags.add("device", &device, "cpu, cuda or cuda:N; the default is cuda when a GPU is present");
  if (!flags.parse(argc, argv)) return 0;
  if (steps <= 0 || batch_size <= 0 || hidden <= 0 || eval_every <= 0 || eval_size <= 0)
    throw std::invalid_argument(
        "train_mlp: --steps, --batch, --hidden, --eval-every and "
        "--eval-size must be positive");
  if (!(warmup_fraction >= 0 && warmup_fraction <= 1))
    throw std::invalid_argument("train_mlp: --warmup must be in [0, 1]");
  const Device dev = parse_device(device);
  if (dev.is_cuda() && dev.index >= cuda_device_count())
    throw std::invalid_argument("train_mlp: --device " + device + " is not available (" +
                                std::to_string(cuda_device_count()) + " GPUs visible)");
  if (!(lr > 0) || !(clip > 0) || !(noise >= 0) || !(weight_decay >= 0))
    throw std::invalid_argument(
        "train_mlp: --lr and --clip must be positive, --noise and "
        "--weight-decay non-negative");
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error)
    throw std::runtime_error("train_mlp: cannot create --out directory " + out_dir + ": " +
                             error.message());

  Generator init_gen(static_cast<uint64_t>(seed));
  Generator train_gen(static_cast<uint64_t>(seed) + 1), eval_gen(static_cast<uint64_t>(seed) + 2);
  MLP model(hidden, {DType::Float32, &init_gen}); // initialised on the CPU: same on any device
  model.to(dev);
  optim::AdamW optimizer(model.named_parameters(), {lr, 0.9, 0.999, 1e-8, weight_decay, {"bias"}});
  const optim::WarmupCosineLR schedule(lr, static_cast<int64_t>(warmup_fraction * steps), steps,
                                       lr * 0.05);
  const Batch held_out = make_batch(eval_size, noise, eval_gen).to(dev);
  std::printf(
      "train_mlp: %lld parameters on %s, %lld steps of %lld examples, held-out set of "
      "%lld\n",
      static_cast<long long>(model.num_parameters()), dev.str().c_str(),
      static_cast<long long>(steps), static_cast<long long>(batch_size),
      static_cast<long long>(eval_size));

  train::MetricsLog log(out_dir + "/metrics.jsonl", /*truncate=*/true);
  train::Series loss_curve{"training loss", {}, {}}, acc_curve{"held-out accuracy", {}, {}};
  train::Progress progress(steps, "examples");
  double eval_accuracy = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const Batch batch = make_batch(batch_size, noise, train_gen).to(dev);
    optimizer.lr = schedule.lr_at(step);
    optimizer.zero_grad();
    Var logits = model.forward(Var(batch.x)); // (batch, kClasses)
    Var loss = cross_entropy(logits, batch.labels);
    loss.backward();
    const double grad_norm = optim::clip_grad_norm(model.parameters(), clip);
    optimizer.step();

    std::vector<std::pair<std::string, double>> values = {
        {"loss", loss.item()}, {"lr", optimizer.lr}, {"grad_norm", grad_norm}};
    if ((step + 1) % eval_every == 0 || step + 1 == steps) {
      NoGradGuard no_grad;
      eval_accuracy = accuracy(model.forward(Var(held_out.x)).value(), held_out.labels);
      values.push_back({"eval_accuracy", eval_accuracy});
      acc_curve.x.push_back(static_cast<double>(step + 1));
      acc_curve.y.push_back(eval_accuracy);
    }
    loss_curve.x.push_back(static_cast<double>(step + 1));
    loss_curve.y.push_back(loss.item());
    log.write(step + 1, values);
    progress.update(step + 1, {{"loss", loss.item()}, {"acc", eval_accuracy}},
                    (step + 1) * batch_size);
  }
  progress.finish();

  train::write_line_plot(out_dir + "/loss.svg", {loss_curve, acc_curve},
                         {"train_mlp: synthetic EEG rhythms", "step", "loss / accuracy"});
  save_module(model, out_dir + "/model.safetensors",
              {{"hidden", std::to_string(hidden)}, {"steps", std::to_string(steps)}});

  // Per-class accuracy on the held-out set, so a reader sees which bands get confused.
  NoGradGuard no_grad;
  const Tensor predicted = argmax(model.forward(Var(held_out.x)).value(), 1).to(Device::cpu());
  const Tensor labels = held_out.labels.to(Device::cpu());
  std::printf("held-out accuracy %.3f (chance 0.25)\n", eval_accuracy);
  for (int64_t c = 0; c < kClasses; ++c) {
    int64_t total = 0, right = 0;
    for (int64_t i = 0; i < eval_size; ++i)
      if (labels.at({i}) == c) {
        ++total;
        right += predicted.at({i}) == c;
      }
    std::printf("  %-5s %4lld examples, accuracy %.3f\n", kBandNames[c],
                static_cast<long long>(total), total ? static_cast<double>(right) / total : 0.0);
  }
  std::printf("wrote %s/metrics.jsonl, %s/loss.svg, %s/model.safetensors\n", out_dir.c_str(),
              out_dir.c_str(), out_dir.c_str());
  return 0;
}

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
