// test_train_eeg.cpp: the seizure-detection task (train/eeg_task.h) and the trainer
// build/train_eeg: the split by recording, the baseline's band powers on a sine, the patch
// layout, the weighted loss (values and a float64 gradient check), that every parameter of each
// detector gets a gradient, AdamW's checkpoint state, and two short runs of the real program: its
// loss falls, and a run stopped and resumed ends with the same bits as one that never stopped.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "autograd/functions.h"
#include "autograd/optim.h"
#include "data/atomic_file.h"
#include "data/json.h"
#include "data/safetensors.h"
#include "tensor/ops.h"
#include "tests/helpers.h"
#include "train/eeg_task.h"
#include "train/plot.h"

namespace ssm::eegtask {
namespace {

namespace fs = std::filesystem;

TEST_CASE("split_recordings: by recording, every one once, seizures in each part, seeded") {
  std::vector<bool> has_seizure;
  for (int i = 0; i < 40; ++i) has_seizure.push_back(i % 3 == 0); // 14 with seizures
  const Split a = split_recordings(has_seizure, 0.15, 0.15, 7);
  std::set<int64_t> seen;
  for (const auto* part : {&a.train, &a.val, &a.test})
    for (int64_t i : *part) CHECK(seen.insert(i).second); // no recording in two parts
  CHECK(seen.size() == 40);
  auto seizures_in = [&](const std::vector<int64_t>& part) {
    int n = 0;
    for (int64_t i : part) n += has_seizure[i];
    return n;
  };
  CHECK(seizures_in(a.val) >= 1);
  CHECK(seizures_in(a.test) >= 1);
  CHECK(seizures_in(a.train) >= 8);
  CHECK(a.val.size() == 6); // round(0.15 * 14) + round(0.15 * 26) = 2 + 4
  CHECK(a.test.size() == 6);
  // The same seed gives the same split; another seed another one.
  const Split b = split_recordings(has_seizure, 0.15, 0.15, 7);
  CHECK(a.train == b.train);
  CHECK(a.test == b.test);
  const Split c = split_recordings(has_seizure, 0.15, 0.15, 8);
  CHECK((c.test != a.test || c.val != a.val));
  // Few recordings: val and test take recordings without seizures first, so train keeps one.
  const Split few = split_recordings({false, true, true}, 0.15, 0.15, 0);
  REQUIRE(few.train.size() == 1);
  CHECK(few.train[0] != 0);
  // Three recordings: one each.
  const Split tiny = split_recordings({true, false, true}, 0.2, 0.2, 0);
  CHECK(tiny.train.size() == 1);
  CHECK(tiny.val.size() == 1);
  CHECK(tiny.test.size() == 1);
  test::check_error<std::invalid_argument>(
      [] {
        split_recordings({true, false}, 0.2, 0.2, 0);
      },
      {"at least 3 recordings", "got 2"});
  test::check_error<std::invalid_argument>(
      [] {
        split_recordings({true, false, true, false}, 0.5, 0.5, 0);
      },
      {"sum below 1"});
}

TEST_CASE("band_power_features: a 10 Hz sine puts its power in the alpha band of its channel") {
  // Two channels of 2400 samples at 200 Hz: channel 0 = 2 sin(2 pi 10 t), channel 1 = 0.
  // The sine is bin k = 10 * 2400 / 200 = 120 exactly, |X_120|^2 = (2 * 2400 / 2)^2, so the
  // mean of |X_f|^2 / 2400 over the alpha band's 60 bins (8 <= f < 13 Hz) is 2^2 * 2400 / 4
  // / 60 = 40; every other band (and channel 1) holds no power: log(1e-6).
  Tensor clips = Tensor::zeros({1, 2, 2400}, DType::Float64);
  for (int64_t t = 0; t < 2400; ++t) clips.set({0, 0, t}, 2 * std::sin(2 * M_PI * 10 * t / 200.0));
  const Tensor f = band_power_features(clips, 200).to(DType::Float64);
  REQUIRE(f.shape() == Shape{1, 2 * kBands});
  CHECK(f.at({0, 2}) == doctest::Approx(std::log(40 + 1e-6)).epsilon(1e-6)); // alpha = band 2
  for (int band : {0, 1, 3, 4}) CHECK(f.at({0, band}) < std::log(1e-5));
  for (int band = 0; band < kBands; ++band)
    CHECK(f.at({0, kBands + band}) == doctest::Approx(std::log(1e-6)));
  test::check_error<std::invalid_argument>(
      [] {
        band_power_features(Tensor::zeros({2, 2400}), 200);
      },
      {"(n, channels, samples)"});
}

TEST_CASE("patchify: token t holds samples [t P, (t + 1) P) of every channel, channel-major") {
  const int64_t b = 2, c = 3, t = 12, p = 4;
  Tensor clips = Tensor::empty({b, c, t}, DType::Float64);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t s = 0; s < t; ++s) clips.set({i, ch, s}, 1000.0 * i + 100.0 * ch + s);
  const Tensor tokens = patchify(clips, p);
  REQUIRE(tokens.shape() == Shape{b, t / p, c * p});
  for (int64_t i = 0; i < b; ++i)
    for (int64_t k = 0; k < t / p; ++k)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t j = 0; j < p; ++j)
          CHECK(tokens.at({i, k, ch * p + j}) == clips.at({i, ch, k * p + j}));
  test::check_error<std::invalid_argument>([&] { patchify(clips, 5); },
                                           {"12 samples", "patch size 5"});
}

TEST_CASE("weighted_bce_with_logits: values by hand and a float64 gradient check") {
  const Tensor logits = Tensor::from_vector<double>({2.0, -1.0, 0.5, -30.0}, {4});
  const Tensor labels = Tensor::from_vector<double>({1, 0, 0, 1}, {4});
  const double w = 3;
  auto sp = [](double x) { return std::log1p(std::exp(x)); };
  const double expected = (w * sp(-2.0) + sp(-1.0) + sp(0.5) + w * 30.0) / 4; // softplus(30) = 30
  CHECK(weighted_bce_with_logits(Var(logits), labels, w).item() ==
        doctest::Approx(expected).epsilon(1e-12));
  test::expect_gradcheck(
      [&](const std::vector<Var>& v) { return weighted_bce_with_logits(v[0], labels, w); },
      {Tensor::from_vector<double>({2.0, -1.0, 0.5, -3.0}, {4})});
  test::check_error<std::invalid_argument>(
      [&] { weighted_bce_with_logits(Var(logits), labels, 0); }, {"pos_weight must be positive"});
}

ModelOptions tiny_options(const std::string& kind) {
  ModelOptions o;
  o.kind = kind;
  o.channels = 3;
  o.samples = 200; // 1 s at 200 Hz
  o.patch = 20;
  o.d_model = 8;
  o.n_layer = 2;
  o.d_state = 4;
  return o;
}

TEST_CASE("detectors: one logit per clip, and a gradient reaches every parameter") {
  for (const std::string kind : {"mamba", "s4", "baseline"}) {
    CAPTURE(kind);
    Generator gen(3);
    auto model = make_detector(tiny_options(kind), {DType::Float32, &gen});
    const Tensor clips = Tensor::randn({5, 3, 200}, DType::Float32, &gen);
    const Var logits = model->forward(clips);
    REQUIRE(logits.shape() == Shape{5});
    weighted_bce_with_logits(logits, Tensor::from_vector<float>({1, 0, 0, 1, 0}, {5}), 2.0)
        .backward();
    // A layer that the forward skipped would keep an undefined or all-zero gradient.
    for (const auto& [name, p] : model->named_parameters()) {
      CAPTURE(name);
      REQUIRE(p.grad().defined());
      CHECK(sum(abs(p.grad().to(DType::Float64))).item() > 0);
    }
  }
  ModelOptions bad = tiny_options("mamba");
  bad.patch = 30;
  test::check_error<std::invalid_argument>([&] { bad.validate(); },
                                           {"--patch must divide", "200", "got 30"});
  bad.kind = "transformer";
  test::check_error<std::invalid_argument>([&] { bad.validate(); },
                                           {"mamba, s4 or baseline", "transformer"});
}

TEST_CASE("AdamW state_tensors/load_state_tensors: a restored optimizer continues identically") {
  Generator gen(11);
  auto make_params = [&](const Tensor& w0, const Tensor& b0) {
    return optim::NamedParameters{{"w", Var(w0.clone(), true)}, {"b", Var(b0.clone(), true)}};
  };
  const Tensor w0 = Tensor::randn({3, 2}, DType::Float64, &gen);
  const Tensor b0 = Tensor::randn({3}, DType::Float64, &gen);
  const Tensor x = Tensor::randn({4, 2}, DType::Float64, &gen);
  auto loss_of = [&](const optim::NamedParameters& p) {     // sum((x w^T + b)^2)
    const Var y = linear(Var(x), p[0].second, p[1].second); // (4, 3)
    return sum(mul(y, y));
  };
  optim::NamedParameters a = make_params(w0, b0);
  optim::AdamW opt_a(a, {0.01, 0.9, 0.999, 1e-8, 0.1, {"b"}});
  for (int i = 0; i < 3; ++i) {
    opt_a.zero_grad();
    loss_of(a).backward();
    opt_a.step();
  }
  // A second optimizer over copies of the current weights, given A's state.
  optim::NamedParameters b = make_params(a[0].second.value(), a[1].second.value());
  optim::AdamW opt_b(b, {0.01, 0.9, 0.999, 1e-8, 0.1, {"b"}});
  const auto state = opt_a.state_tensors();
  CHECK(state.size() == 4);
  opt_b.load_state_tensors(state, opt_a.steps_taken());
  for (auto [p, opt] : {std::pair{&a, &opt_a}, std::pair{&b, &opt_b}}) {
    opt->zero_grad();
    loss_of(*p).backward();
    opt->step();
  }
  for (int k = 0; k < 2; ++k)
    CHECK(max(abs(sub(a[k].second.value(), b[k].second.value()))).item() == 0);
  // Errors name what is wrong.
  auto wrong_shape = state;
  wrong_shape[0].second = Tensor::zeros({2, 3}, DType::Float64);
  test::check_error<std::invalid_argument>([&] { opt_b.load_state_tensors(wrong_shape, 4); },
                                           {"exp_avg.w", "[2, 3]", "[3, 2]"});
  auto extra = state;
  extra.emplace_back("exp_avg.nothing", Tensor::zeros({1}, DType::Float64));
  test::check_error<std::invalid_argument>([&] { opt_b.load_state_tensors(extra, 4); },
                                           {"exp_avg.nothing", "matches no parameter"});
  // A parameter that was never stepped has no moments, and loads as such.
  optim::NamedParameters c = make_params(w0, b0);
  optim::AdamW opt_c(c, {0.01, 0.9, 0.999, 1e-8, 0.1, {"b"}});
  opt_c.zero_grad();
  sum(c[1].second).backward(); // only "b" gets a gradient
  opt_c.step();
  CHECK(opt_c.state_tensors().size() == 2);
  optim::AdamW opt_d(make_params(w0, b0), {0.01, 0.9, 0.999, 1e-8, 0.1, {"b"}});
  opt_d.load_state_tensors(opt_c.state_tensors(), 1);
  auto lone = state;
  lone.erase(lone.begin() + 1); // exp_avg.w without exp_avg_sq.w
  test::check_error<std::invalid_argument>([&] { opt_b.load_state_tensors(lone, 4); },
                                           {"only one of exp_avg and exp_avg_sq"});
}

TEST_CASE("render_trace_plot: a one-sample spike survives the per-pixel envelope") {
  // 10000 samples over ~890 pixel columns: each column draws its min and max, so a single
  // sample at full scale must reach the top of its band (mid 60 - height 40 = y 20).
  train::TracePlot plot;
  plot.names = {"T3"};
  plot.traces = {std::vector<double>(10000, 0.0)};
  plot.trace_height = 40;
  plot.trace_scale = 5;
  const std::string flat = train::render_trace_plot(plot);
  CHECK(flat.find(",20 ") == std::string::npos);
  plot.traces[0][4321] = 5;
  const std::string spiked = train::render_trace_plot(plot);
  CHECK(spiked.find(",20 ") != std::string::npos);
  plot.names.push_back("T4");
  test::check_error<std::invalid_argument>([&] { train::render_trace_plot(plot); },
                                           {"2 names for 1 traces"});
}

// ---- the program ------------------------------------------------------------------------------

// build/train_eeg, next to this test binary (both are made by `make test`).
std::string train_eeg_path() {
  const fs::path self = fs::read_symlink("/proc/self/exe");
  return (self.parent_path() / "train_eeg").string();
}

// The "loss" of every step line of a metrics.jsonl.
std::vector<double> step_losses(const std::string& path) {
  std::vector<double> losses;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const Json record = Json::parse(line, path);
    if (record.contains("step")) losses.push_back(record.get_double("loss"));
  }
  return losses;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("test_train_eeg_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

int run_train_eeg(const std::string& args, const fs::path& log) {
  const std::string command = train_eeg_path() + " " + args + " > " + log.string() + " 2>&1";
  const int status = std::system(command.c_str());
  INFO(command);
  INFO(read_file(log.string()));
  return status;
}

TEST_CASE("train_eeg: a short run's loss falls, and stop + resume gives the same bits") {
  REQUIRE_MESSAGE(fs::exists(train_eeg_path()), "build it first: make " << train_eeg_path());
  TempDir dir;
  // Six 2-minute recordings with one seizure each, a small Mamba, 4 epochs: a few seconds.
  const std::string common = "--device cpu --cache " + (dir.path / "cache").string() +
                             " --synthetic-recordings 6 --synthetic-minutes 2"
                             " --synthetic-seizures 1 --d-model 16 --layers 1 --epochs 4"
                             " --batch 8 --lr 3e-3 --val-fraction 0.2 --test-fraction 0.2";
  const fs::path straight = dir.path / "straight", resumed = dir.path / "resumed";
  REQUIRE(run_train_eeg(common + " --out " + straight.string(), dir.path / "a.log") == 0);
  const std::vector<double> losses = step_losses((straight / "metrics.jsonl").string());
  REQUIRE(losses.size() >= 8);
  const size_t quarter = losses.size() / 4;
  double first = 0, last = 0;
  for (size_t i = 0; i < quarter; ++i) {
    first += losses[i];
    last += losses[losses.size() - 1 - i];
  }
  INFO("mean loss of the first quarter " << first / quarter << ", of the last " << last / quarter);
  CHECK(last < 0.7 * first);
  for (const char* file :
       {"model.safetensors", "config.json", "results.json", "loss.svg", "roc.svg", "trace.svg",
        "test_predictions.csv", "checkpoint/model.safetensors", "checkpoint/optimizer.safetensors",
        "checkpoint/state.json"})
    CHECK_MESSAGE(fs::exists(straight / file), file);
  const Json results = Json::parse(read_file((straight / "results.json").string()));
  CHECK(results.at("test").get_double("auroc") >= 0);

  // The same run in two invocations: 1 epoch, then --resume for the other 3.
  REQUIRE(run_train_eeg(common + " --out " + resumed.string() + " --stop-after 1",
                        dir.path / "b.log") == 0);
  CHECK(!fs::exists(resumed / "results.json"));
  CHECK(step_losses((resumed / "metrics.jsonl").string()).size() == losses.size() / 4);
  REQUIRE(run_train_eeg(common + " --out " + resumed.string() + " --resume", dir.path / "c.log") ==
          0);
  CHECK(read_file((straight / "model.safetensors").string()) ==
        read_file((resumed / "model.safetensors").string()));
  CHECK(read_file((straight / "checkpoint/optimizer.safetensors").string()) ==
        read_file((resumed / "checkpoint/optimizer.safetensors").string()));
  CHECK(step_losses((resumed / "metrics.jsonl").string()) == losses);
  CHECK(read_file((straight / "test_predictions.csv").string()) ==
        read_file((resumed / "test_predictions.csv").string()));

  // Adapting the trained detector to other recordings with LoRA: the base stays as it was,
  // the adapters move.
  const fs::path adapted = dir.path / "adapted";
  REQUIRE(run_train_eeg("--device cpu --cache " + (dir.path / "cache").string() +
                            " --synthetic-recordings 6 --synthetic-minutes 2 --synthetic-seizures 1"
                            " --synthetic-seed 9 --d-model 16 --layers 1 --epochs 1 --batch 8"
                            " --val-fraction 0.2 --test-fraction 0.2 --lora-r 2 --adapt-from " +
                            straight.string() + " --out " + adapted.string(),
                        dir.path / "e.log") == 0);
  const std::string adapt_log = read_file((dir.path / "e.log").string());
  CHECK(adapt_log.find("adapting " + straight.string()) != std::string::npos);
  const SafetensorsFile before = load_safetensors((straight / "model.safetensors").string());
  const SafetensorsFile after = load_safetensors((adapted / "model.safetensors").string());
  for (const char* frozen : {"patch_embed.weight", "layers.0.mixer.in_proj.weight",
                             "layers.0.mixer.A_log", "norm_f.weight"})
    CHECK(max(abs(sub(before.get(frozen), after.get(frozen)))).item() == 0);
  CHECK(max(abs(after.get("layers.0.mixer.in_proj.lora_B.weight"))).item() > 0);
  CHECK(max(abs(after.get("layers.0.mixer.conv1d.lora_B.weight"))).item() > 0);
  // A detector of another shape cannot be adapted.
  CHECK(run_train_eeg("--device cpu --cache " + (dir.path / "cache").string() +
                          " --synthetic-recordings 6 --synthetic-minutes 2 --synthetic-seizures 1"
                          " --d-model 8 --layers 1 --epochs 1 --adapt-from " +
                          straight.string() + " --out " + (dir.path / "bad").string(),
                      dir.path / "f.log") != 0);
  CHECK(read_file((dir.path / "f.log").string()).find("d_model = 16, this run 8") !=
        std::string::npos);

  // Resuming with a different setting is refused, naming it.
  const int status = run_train_eeg(common + " --out " + resumed.string() + " --resume --lr 1e-3",
                                   dir.path / "d.log");
  CHECK(status != 0);
  const std::string message = read_file((dir.path / "d.log").string());
  CHECK(message.find("setting 'lr'") != std::string::npos);
}

} // namespace
} // namespace ssm::eegtask
