// test_mamba_lm.cpp: the Mamba block and LM: parity with transformers on the fixture, step
// mode equal to the parallel forward, checkpoints both ways, config errors, sampling.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <unistd.h>

#include "autograd/functions.h"
#include "data/json.h"
#include "data/safetensors.h"
#include "mamba/generate.h"
#include "mamba/hf.h"
#include "mamba/hf_check.h"
#include "mamba/mamba_lm.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

namespace ssm {
namespace {

namespace fs = std::filesystem;
using test::normalized_error;

const std::string kFixture = "../shared/fixtures/hf_mamba_tiny";

// A config unlike the fixture's: biases everywhere, untied head, odd sizes, kernel 3.
MambaConfig odd_config() {
  MambaConfig c = MambaConfig::make(/*vocab=*/37, /*d_model=*/12, /*n_layer=*/2,
                                    /*d_state=*/5, /*expand=*/2, /*d_conv=*/3);
  c.use_bias = true;
  c.tie_word_embeddings = false;
  c.dt_rank = 3;
  return c;
}

std::unique_ptr<MambaLM> random_model(const MambaConfig& c, DType dtype, uint64_t seed) {
  Generator gen(seed);
  nn::Init init{dtype, &gen};
  auto model = std::make_unique<MambaLM>(c, init);
  // Move every parameter off its initial value so none is special (zero biases, D = 1).
  for (const auto& [name, p] : model->named_parameters())
    p.assign(add(p.value(), mul(Tensor::randn(p.shape(), dtype, &gen), 0.1)));
  return model;
}

Tensor random_ids(int64_t batch, int64_t length, int64_t vocab, uint64_t seed) {
  Generator gen(seed);
  return Tensor::randint(0, vocab, {batch, length}, DType::Int64, &gen);
}

fs::path temp_dir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("ssm_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

TEST_CASE("hf_check: transformers' hf_mamba_tiny on the CPU (float64 and float32)") {
  if (!fs::exists(kFixture + "/config.json")) {
    MESSAGE("fixture " << kFixture << " not found; skipped");
    return;
  }
  for (DType dtype : {DType::Float64, DType::Float32}) {
    HfCheckOptions options;
    options.dtype = dtype;
    const HfCheckResult r = run_hf_check(kFixture, kFixture + "/reference.safetensors", options);
    std::string report;
    for (const auto& line : r.lines) report += line + "\n";
    INFO(report);
    CHECK(r.ok);
    CHECK(r.lines.size() >= 28); // logits, 3 hidden, loss, 22 gradients, tokens
  }
}

TEST_CASE("Mamba step mode equals the parallel forward (float64, 1e-12)") {
  const MambaConfig c = odd_config();
  auto model = random_model(c, DType::Float64, 11);
  const Tensor ids = random_ids(2, 9, c.vocab_size, 12);
  NoGradGuard no_grad;
  const Tensor logits = model->forward(ids).value(); // (2, 9, V)
  for (int64_t prompt : {1, 2, 4, 9}) {
    INFO("prompt length " << prompt);
    MambaCache cache;
    std::vector<Tensor> steps = {model->prefill(ids.narrow(1, 0, prompt), cache)};
    for (int64_t t = prompt; t < 9; ++t)
      steps.push_back(model->step(ids.select(1, t).contiguous(), cache));
    const Tensor stepped = stack(steps, 1); // (2, 9 - prompt + 1, V)
    const Tensor expected = logits.narrow(1, prompt - 1, 9 - prompt + 1);
    CHECK(normalized_error(stepped, expected, 1e-12, 1e-12) <= 1);
  }
  // From an empty cache, token by token from the first one.
  MambaCache cache = model->empty_cache(2);
  std::vector<Tensor> steps;
  for (int64_t t = 0; t < 9; ++t)
    steps.push_back(model->step(ids.select(1, t).contiguous(), cache));
  CHECK(normalized_error(stack(steps, 1), logits, 1e-12, 1e-12) <= 1);
}

TEST_CASE("Mamba step mode equals the parallel forward (float32)") {
  const MambaConfig c = odd_config();
  auto model = random_model(c, DType::Float32, 21);
  const Tensor ids = random_ids(2, 12, c.vocab_size, 22);
  NoGradGuard no_grad;
  const Tensor logits = model->forward(ids).value();
  MambaCache cache;
  std::vector<Tensor> steps = {model->prefill(ids.narrow(1, 0, 3), cache)};
  for (int64_t t = 3; t < 12; ++t)
    steps.push_back(model->step(ids.select(1, t).contiguous(), cache));
  const Tensor stepped = stack(steps, 1), expected = logits.narrow(1, 2, 10);
  const double max_diff = max(abs(sub(stepped, expected))).item();
  const double rel = max_diff / max(abs(expected)).item();
  MESSAGE("float32 step vs parallel: max |diff| " << max_diff << ", relative to max |logit| "
                                                  << rel);
  // float32 rounding through two layers and the recurrence (the two paths sum in different
  // orders): measured 2e-7 relative to the largest logit; 1e-5 leaves a 50x margin.
  CHECK(rel <= 1e-5);
}

TEST_CASE("gradcheck Mamba block (float64, input and every parameter via the LM loss)") {
  MambaConfig c = odd_config();
  c.n_layer = 1;
  auto model = random_model(c, DType::Float64, 31);
  const MambaMixer& mixer = model->backbone.layers[0]->mixer;
  Generator gen(32);
  test::expect_gradcheck([&](const std::vector<Var>& v) { return mixer.forward(v[0]); },
                         {Tensor::randn({2, 5, c.d_model}, DType::Float64, &gen)});
  // The parameters' gradients: a directional derivative of the LM loss.
  const Tensor ids = random_ids(2, 6, c.vocab_size, 33);
  model->zero_grad();
  model->loss(ids).backward();
  double analytic = 0;
  std::vector<Tensor> dirs;
  for (const auto& [name, p] : model->named_parameters()) {
    dirs.push_back(Tensor::randn(p.shape(), DType::Float64, &gen));
    analytic += sum(mul(p.grad(), dirs.back())).item();
  }
  auto loss_at = [&](double eps) {
    size_t i = 0;
    std::vector<Tensor> saved;
    for (const auto& [name, p] : model->named_parameters()) {
      saved.push_back(p.value().clone());
      p.assign(add(p.value(), mul(dirs[i++], eps)));
    }
    NoGradGuard no_grad;
    const double l = model->loss(ids).item();
    i = 0;
    for (const auto& [name, p] : model->named_parameters()) p.assign(saved[i++]);
    return l;
  };
  const double numeric = (loss_at(1e-6) - loss_at(-1e-6)) / 2e-6;
  CHECK(std::fabs(analytic - numeric) <= 1e-6 * (1 + std::fabs(numeric)));
}

TEST_CASE("Mamba initialisation: dt, A_log, D as the reference") {
  MambaConfig c = MambaConfig::make(10, 32, 1, 8);
  Generator gen(5);
  MambaLM model(c, {DType::Float64, &gen});
  const MambaMixer& m = model.backbone.layers[0]->mixer;
  const std::vector<double> dt = softplus(m.dt_proj.bias.value()).to_doubles();
  for (double v : dt) {
    CHECK(v >= c.time_step_min * (1 - 1e-9));
    CHECK(v <= c.time_step_max * (1 + 1e-9));
  }
  CHECK(m.A_log.value().at({3, 4}) == doctest::Approx(std::log(5.0)));
  CHECK(m.D.value().at({7}) == 1.0);
  CHECK(c.dt_rank == 2); // ceil(32 / 16)
  // rescale_prenorm_residual: out_proj ~ U(-1/sqrt(d_inner), 1/sqrt(d_inner)) / sqrt(n_layer).
  MambaConfig deep = MambaConfig::make(10, 32, 4, 8);
  deep.rescale_prenorm_residual = true;
  MambaLM rescaled(deep, {DType::Float64, &gen});
  const double bound = 1 / std::sqrt(64.0) / std::sqrt(4.0);
  const Tensor w = rescaled.backbone.layers[2]->mixer.out_proj.weight.value();
  CHECK(max(abs(w)).item() <= bound);
  CHECK(max(abs(w)).item() > 0.9 * bound);
}

TEST_CASE("HF checkpoints: save then load gives the same model (untied, biases, odd sizes)") {
  const MambaConfig c = odd_config();
  auto model = random_model(c, DType::Float32, 41);
  const fs::path dir = temp_dir("roundtrip");
  save_hf_mamba(dir.string(), *model);
  CHECK(fs::exists(dir / "config.json"));
  const SafetensorsFile file = load_safetensors((dir / "model.safetensors").string());
  CHECK(file.contains("lm_head.weight")); // untied
  CHECK(file.contains("backbone.layers.1.mixer.in_proj.bias"));
  auto loaded = load_hf_mamba(dir.string());
  CHECK(loaded->config.dt_rank == 3);
  CHECK(loaded->config.d_conv == 3);
  CHECK_FALSE(loaded->config.tie_word_embeddings);
  const Tensor ids = random_ids(1, 7, c.vocab_size, 42);
  NoGradGuard no_grad;
  CHECK(loaded->forward(ids).value().to_doubles() == model->forward(ids).value().to_doubles());
  fs::remove_all(dir);
}

// Writes a checkpoint directory from the fixture with its config edited by `edit`.
fs::path edited_fixture(const std::string& name, const std::function<void(Json&)>& edit) {
  const fs::path dir = temp_dir(name);
  fs::create_directories(dir);
  fs::copy_file(kFixture + "/model.safetensors", dir / "model.safetensors");
  Json config = load_json_file(kFixture + "/config.json");
  edit(config);
  save_json_file((dir / "config.json").string(), config);
  return dir;
}

TEST_CASE("HF checkpoints: bad configs and weights give clear errors") {
  if (!fs::exists(kFixture + "/config.json")) return;
  using test::check_error;
  auto load = [](const fs::path& dir) { return [dir] { load_hf_mamba(dir.string()); }; };
  {
    fs::path dir = edited_fixture("missing", [](Json& j) {
      Json::Object kept;
      for (const auto& [k, v] : j.as_object())
        if (k != "state_size") kept.push_back({k, v});
      j = Json(kept);
    });
    check_error<std::invalid_argument>(load(dir), {"config.json", "missing key \"state_size\""});
    fs::remove_all(dir);
  }
  {
    fs::path dir = edited_fixture("type", [](Json& j) { j.set("model_type", "mamba2"); });
    check_error<std::invalid_argument>(load(dir), {"model_type is \"mamba2\""});
    fs::remove_all(dir);
  }
  {
    fs::path dir = edited_fixture("rank", [](Json& j) { j.set("time_step_rank", "big"); });
    check_error<std::invalid_argument>(load(dir), {"time_step_rank", "\"big\""});
    fs::remove_all(dir);
  }
  {
    fs::path dir = edited_fixture("layers", [](Json& j) { j.set("num_hidden_layers", 3); });
    check_error<std::invalid_argument>(load(dir),
                                       {"missing: backbone.layers.2.mixer.A_log", "3 layers"});
    fs::remove_all(dir);
  }
  {
    fs::path dir = edited_fixture("width", [](Json& j) { j.set("state_size", 4); });
    check_error<std::invalid_argument>(load(dir), {"shape mismatch", "mixer.A_log", "[64, 8]"});
    fs::remove_all(dir);
  }
  {
    fs::path dir = edited_fixture("untied", [](Json& j) { j.set("tie_word_embeddings", false); });
    check_error<std::invalid_argument>(load(dir), {"missing: lm_head.weight"});
    fs::remove_all(dir);
  }
  {
    fs::path dir = edited_fixture("unknown", [](Json& j) { j.set("my_new_knob", 3); });
    std::vector<std::string> notes;
    load_hf_mamba(dir.string(), {}, &notes);
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].find("my_new_knob") != std::string::npos);
    fs::remove_all(dir);
  }
  check_error<std::invalid_argument>([] { load_hf_mamba("/nonexistent_dir_x"); },
                                     {"/nonexistent_dir_x", "not a directory"});
}

TEST_CASE("sampling: greedy, top-k, top-p, temperature, seeded") {
  // Row 0 prefers token 2, row 1 token 0.
  const Tensor logits =
      Tensor::from_values({0.1, 0.5, 2.0, 0.3, 3.0, 1.0, 0.2, 0.0}, {2, 4}, DType::Float64);
  Generator gen(1);
  SamplingOptions greedy;
  greedy.greedy = true;
  CHECK(sample_next(logits, greedy, gen).to_doubles() == std::vector<double>{2, 0});
  SamplingOptions top1;
  top1.top_k = 1;
  CHECK(sample_next(logits, top1, gen).to_doubles() == std::vector<double>{2, 0});
  SamplingOptions nucleus;
  nucleus.top_p = 0.01;
  CHECK(sample_next(logits, nucleus, gen).to_doubles() == std::vector<double>{2, 0});
  // Frequencies at temperature 1 follow softmax(logits) of row 0.
  SamplingOptions plain;
  const Tensor row = logits.narrow(0, 0, 1).contiguous();
  std::vector<double> counts(4, 0);
  const int draws = 4000;
  for (int i = 0; i < draws; ++i)
    counts[static_cast<int64_t>(sample_next(row, plain, gen).item())]++;
  const std::vector<double> p = softmax(Var(row), 1).value().to_doubles();
  for (int k = 0; k < 4; ++k) CHECK(std::fabs(counts[k] / draws - p[k]) < 0.03);
  // top_k = 2 never picks outside the two largest.
  SamplingOptions top2;
  top2.top_k = 2;
  for (int i = 0; i < 200; ++i) {
    const double v = sample_next(row, top2, gen).item();
    CHECK((v == 2 || v == 1));
  }
  // The same seed gives the same tokens.
  Generator g1(7), g2(7);
  CHECK(sample_next(logits, plain, g1).to_doubles() == sample_next(logits, plain, g2).to_doubles());
}

TEST_CASE("generate: greedy step-mode decoding equals argmax of the parallel forward") {
  const MambaConfig c = odd_config();
  auto model = random_model(c, DType::Float64, 51);
  const Tensor prompt = random_ids(2, 3, c.vocab_size, 52);
  SamplingOptions greedy;
  greedy.greedy = true;
  Generator gen(0);
  const Tensor out = generate(*model, prompt, 6, greedy, gen);
  REQUIRE(out.shape() == Shape{2, 9});
  NoGradGuard no_grad;
  const Tensor logits = model->forward(out).value(); // (2, 9, V)
  const Tensor argmax_ids = argmax(logits, 2);       // (2, 9)
  for (int64_t t = 3; t < 9; ++t)
    for (int64_t b = 0; b < 2; ++b) CHECK(out.at({b, t}) == argmax_ids.at({b, t - 1}));
  test::check_error<std::invalid_argument>(
      [&] {
        generate(*model, Tensor::full({1, 2}, 99, DType::Int64), 3, greedy, gen);
      },
      {"prompt token 99", "outside the vocabulary"});
}

} // namespace
} // namespace ssm
