// test_lora.cpp: LoRA (autograd/lora.h, mamba/lora.h). Float64 gradient checks of the adapted
// Linear, Conv1d (depthwise and dense) and Embedding; frozen bases get no gradient; merged
// equals unmerged; on a Mamba LM, adapters on out_proj, dt_proj and conv1d (what peft cannot
// do) change the output, get gradients and keep step mode equal to the parallel forward; peft's
// adapter files round-trip and their unsupported options are refused by name.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/functions.h"
#include "autograd/lora.h"
#include "data/safetensors.h"
#include "mamba/hf_check.h"
#include "mamba/lora.h"
#include "tensor/ops.h"
#include "tests/helpers.h"
#include "tests/parity.h"

namespace ssm {
namespace {

namespace fs = std::filesystem;

// B starts at 0 (the identity edit); a random B makes every check see the adapter.
void randomize_b(nn::LoraAdapter& a, Generator& gen) {
  if (a.B) a.B->weight.assign(Tensor::randn(a.B->weight.shape(), a.B->weight.dtype(), &gen));
  if (a.embedding_A.defined())
    a.embedding_A.assign(Tensor::randn(a.embedding_A.shape(), a.embedding_A.dtype(), &gen));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return max(abs(sub(a.to(DType::Float64), b.to(DType::Float64)))).item();
}

TEST_CASE("gradcheck LoRA Linear, Conv1d and Embedding (float64): input, A and B") {
  Generator gen(5);
  const nn::Init init{DType::Float64, &gen};
  for (const bool rslora : {false, true}) {
    CAPTURE(rslora);
    nn::LoraOptions o;
    o.r = 3;
    o.alpha = 6;
    o.rslora = rslora;
    o.gen = &gen;

    nn::Linear linear(5, 4, true, init);
    nn::attach_lora(linear, o);
    randomize_b(*linear.lora, gen);
    // gradcheck feeds its own leaves: the adapter's factors are swapped for them.
    test::expect_gradcheck(
        [&](const std::vector<Var>& v) {
          linear.lora->A->weight = v[1];
          linear.lora->B->weight = v[2];
          return linear.forward(v[0]);
        },
        {Tensor::randn({2, 3, 5}, DType::Float64, &gen), linear.lora->A->weight.value(),
         linear.lora->B->weight.value()});

    for (const int64_t groups : {int64_t{1}, int64_t{6}}) { // dense and depthwise
      CAPTURE(groups);
      nn::Conv1d conv(6, 6, 3, 1, 2, 1, groups, true, init);
      nn::attach_lora(conv, o);
      randomize_b(*conv.lora, gen);
      test::expect_gradcheck(
          [&](const std::vector<Var>& v) {
            conv.lora->A->weight = v[1];
            conv.lora->B->weight = v[2];
            return conv.forward(v[0]);
          },
          {Tensor::randn({2, 6, 7}, DType::Float64, &gen), conv.lora->A->weight.value(),
           conv.lora->B->weight.value()});
    }

    // With dropout on the adapters' input (training mode; a mask drawn afresh from the same
    // seed at every call, so that the function is deterministic).
    o.dropout = 0.3;
    nn::Linear dropped(5, 4, true, init);
    nn::attach_lora(dropped, o);
    randomize_b(*dropped.lora, gen);
    nn::Conv1d dropped_conv(4, 4, 3, 1, 2, 1, 4, true, init);
    nn::attach_lora(dropped_conv, o);
    randomize_b(*dropped_conv.lora, gen);
    test::expect_gradcheck(
        [&](const std::vector<Var>& v) {
          Generator masks(77);
          dropped.lora->gen = &masks;
          dropped.lora->A->weight = v[1];
          dropped.lora->B->weight = v[2];
          return dropped.forward(v[0]);
        },
        {Tensor::randn({6, 5}, DType::Float64, &gen), dropped.lora->A->weight.value(),
         dropped.lora->B->weight.value()});
    test::expect_gradcheck(
        [&](const std::vector<Var>& v) {
          Generator masks(78);
          dropped_conv.lora->gen = &masks;
          dropped_conv.lora->A->weight = v[1];
          dropped_conv.lora->B->weight = v[2];
          return dropped_conv.forward(v[0]);
        },
        {Tensor::randn({2, 4, 6}, DType::Float64, &gen), dropped_conv.lora->A->weight.value(),
         dropped_conv.lora->B->weight.value()});
    o.dropout = 0;

    nn::Embedding emb(7, 4, init);
    nn::attach_lora(emb, o);
    randomize_b(*emb.lora, gen);
    const Tensor ids = Tensor::from_vector<int64_t>({0, 3, 3, 6, 1}, {5});
    test::expect_gradcheck(
        [&](const std::vector<Var>& v) {
          emb.lora->embedding_A = v[0];
          emb.lora->embedding_B = v[1];
          return emb.forward(ids);
        },
        {emb.lora->embedding_A.value(), emb.lora->embedding_B.value()});
  }
}

TEST_CASE("LoRA: the adapter starts as the identity, and the base gets no gradient") {
  Generator gen(6);
  nn::Linear layer(4, 3, true, {DType::Float64, &gen});
  const Tensor x = Tensor::randn({5, 4}, DType::Float64, &gen);
  const Tensor before = layer.forward(Var(x)).value();
  nn::LoraOptions o;
  o.r = 2;
  o.gen = &gen;
  nn::attach_lora(layer, o);
  CHECK(max_abs_diff(layer.forward(Var(x)).value(), before) == 0); // B = 0
  // Names as peft's, A with Kaiming-uniform bounds 1/sqrt(in), B zero.
  const auto names = layer.named_parameters();
  REQUIRE(names.size() == 4);
  CHECK(names[2].first == "lora_A.weight");
  CHECK(names[3].first == "lora_B.weight");
  CHECK(max(abs(layer.lora->A->weight.value())).item() <= 0.5);
  sum(layer.forward(Var(x))).backward();
  CHECK(!layer.weight.requires_grad());
  CHECK(!layer.weight.grad().defined()); // neither computed nor stored
  CHECK(!layer.bias.grad().defined());
  CHECK(layer.lora->A->weight.grad().defined());
  CHECK(layer.lora->B->weight.grad().defined());
  test::check_error<std::logic_error>([&] { nn::attach_lora(layer, o); }, {"already has"});
  o.r = 0;
  nn::Linear other(4, 3, true, {DType::Float64, &gen});
  test::check_error<std::invalid_argument>([&] { nn::attach_lora(other, o); }, {"r must be >= 1"});
}

TEST_CASE("LoRA: merged equals unmerged, and unmerge restores the base weight") {
  Generator gen(7);
  for (const DType dtype : {DType::Float64, DType::Float32}) {
    CAPTURE(dtype_name(dtype));
    const double tol = dtype == DType::Float64 ? 1e-13 : 2e-5;
    nn::LoraOptions o;
    o.r = 2;
    o.alpha = 4;
    o.gen = &gen;
    nn::Linear linear(6, 5, true, {dtype, &gen});
    nn::Conv1d conv(4, 4, 3, 1, 2, 1, 4, true, {dtype, &gen});
    nn::Embedding emb(9, 3, {dtype, &gen});
    const Tensor w0 = linear.weight.value().clone(), c0 = conv.weight.value().clone(),
                 e0 = emb.weight.value().clone();
    nn::attach_lora(linear, o);
    nn::attach_lora(conv, o);
    nn::attach_lora(emb, o);
    randomize_b(*linear.lora, gen);
    randomize_b(*conv.lora, gen);
    randomize_b(*emb.lora, gen);
    const Tensor x = Tensor::randn({3, 6}, dtype, &gen), xc = Tensor::randn({2, 4, 8}, dtype, &gen);
    const Tensor ids = Tensor::from_vector<int64_t>({8, 0, 4}, {3});
    const Tensor y = linear.forward(Var(x)).value(), yc = conv.forward(Var(xc)).value(),
                 ye = emb.forward(ids).value();
    nn::merge_lora(linear);
    nn::merge_lora(conv);
    nn::merge_lora(emb);
    CHECK(max_abs_diff(linear.forward(Var(x)).value(), y) <= tol);
    CHECK(max_abs_diff(conv.forward(Var(xc)).value(), yc) <= tol);
    CHECK(max_abs_diff(emb.forward(ids).value(), ye) <= tol);
    CHECK(max_abs_diff(linear.weight.value(), w0) > 1e-3); // the weight did change
    test::check_error<std::logic_error>([&] { nn::merge_lora(linear); }, {"already merged"});
    nn::unmerge_lora(linear);
    nn::unmerge_lora(conv);
    nn::unmerge_lora(emb);
    CHECK(max_abs_diff(linear.weight.value(), w0) <= tol);
    CHECK(max_abs_diff(conv.weight.value(), c0) <= tol);
    CHECK(max_abs_diff(emb.weight.value(), e0) <= tol);
    CHECK(max_abs_diff(linear.forward(Var(x)).value(), y) <= tol);
  }
}

MambaConfig lora_test_config() {
  MambaConfig c = MambaConfig::make(/*vocab=*/23, /*d_model=*/8, /*n_layer=*/2, /*d_state=*/4,
                                    /*expand=*/2, /*d_conv=*/3);
  c.dt_rank = 2;
  return c;
}

std::unique_ptr<MambaLM> lora_test_model(DType dtype, uint64_t seed) {
  Generator gen(seed);
  auto model = std::make_unique<MambaLM>(lora_test_config(), nn::Init{dtype, &gen});
  for (const auto& [name, p] : model->named_parameters())
    p.assign(add(p.value(), mul(Tensor::randn(p.shape(), dtype, &gen), 0.1)));
  return model;
}

void randomize_adapters(MambaLM& model, Generator& gen) {
  for (const auto& [name, p] : lora_parameters(model))
    if (name.find("lora_B") != std::string::npos ||
        name.find("lora_embedding_A") != std::string::npos)
      p.assign(mul(Tensor::randn(p.shape(), p.dtype(), &gen), 0.3));
}

TEST_CASE(
    "Mamba LoRA: out_proj, dt_proj and conv1d (which peft cannot do) change the output and "
    "get gradients; step mode still equals the parallel forward") {
  const Tensor ids = Tensor::randint(0, 23, {2, 9}, DType::Int64, nullptr);
  for (const std::string target :
       {"out_proj", "dt_proj", "conv1d", "in_proj", "x_proj", "embeddings"}) {
    CAPTURE(target);
    auto model = lora_test_model(DType::Float64, 11);
    const Tensor base_logits = model->forward(ids).value();
    MambaLoraConfig config;
    config.r = 2;
    config.lora_alpha = 4;
    config.target_modules = {target};
    Generator gen(12);
    const LoraSummary summary = apply_lora(*model, config, &gen);
    CHECK(summary.adapted.size() == (target == "embeddings" ? 1u : 2u));
    CHECK(summary.trainable > 0);
    CHECK(summary.trainable < summary.total);
    randomize_adapters(*model, gen);
    const Var logits = model->forward(ids);
    CHECK(max_abs_diff(logits.value(), base_logits) > 1e-4); // the adapter is in the forward
    model->loss(ids).backward();
    for (const auto& [name, p] : model->named_parameters()) {
      CAPTURE(name);
      const bool adapter = name.find(".lora_") != std::string::npos;
      CHECK(p.requires_grad() == adapter);
      if (adapter) {
        REQUIRE(p.grad().defined());
        CHECK(max(abs(p.grad())).item() > 0);
      } else {
        CHECK(!p.grad().defined());
      }
    }
    // Step mode (the recurrent path, which reads the convolution's weight itself).
    MambaCache cache = model->empty_cache(2);
    std::vector<Tensor> steps = {model->prefill(ids.narrow(1, 0, 4), cache)};
    for (int64_t t = 4; t < 9; ++t)
      steps.push_back(model->step(ids.select(1, t).contiguous(), cache));
    const Tensor parallel = logits.value();
    for (int64_t k = 0; k < static_cast<int64_t>(steps.size()); ++k)
      CHECK(max_abs_diff(steps[k], parallel.select(1, 3 + k)) <= 1e-12);
    // Merged, the model gives the same logits without the adapters' products. (Not for tied
    // embeddings: lm_head would change too, so it is refused.)
    if (target == "embeddings") {
      test::check_error<std::invalid_argument>([&] { merge_lora(*model); }, {"tied to lm_head"});
      continue;
    }
    merge_lora(*model);
    CHECK(max_abs_diff(model->forward(ids).value(), parallel) <= 1e-12);
    unmerge_lora(*model);
    CHECK(max_abs_diff(model->forward(ids).value(), parallel) <= 1e-12);
  }
  auto model = lora_test_model(DType::Float64, 11);
  MambaLoraConfig bad;
  bad.target_modules = {"q_proj"};
  test::check_error<std::invalid_argument>([&] { apply_lora(*model, bad); },
                                           {"'q_proj' is not a module of Mamba", "in_proj"});
  bad.target_modules = {"proj"}; // a suffix must start after a dot
  test::check_error<std::invalid_argument>([&] { apply_lora(*model, bad); }, {"'proj'"});
  // peft's matching: a dotted path, or a suffix of one.
  MambaLoraConfig paths;
  paths.target_modules = {"backbone.layers.1.mixer.out_proj", "mixer.x_proj"};
  const LoraSummary s = apply_lora(*model, paths);
  CHECK(s.adapted == std::vector<std::string>{"backbone.layers.0.mixer.x_proj",
                                              "backbone.layers.1.mixer.x_proj",
                                              "backbone.layers.1.mixer.out_proj"});
}

TEST_CASE("Mamba LoRA: peft adapter files round-trip; unsupported options are refused") {
  const fs::path dir = fs::temp_directory_path() / ("test_lora_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const Tensor ids = Tensor::randint(0, 23, {1, 7}, DType::Int64, nullptr);
  auto trained = lora_test_model(DType::Float64, 21);
  MambaLoraConfig config;
  config.r = 3;
  config.lora_alpha = 5;
  config.use_rslora = true;
  config.target_modules = {"in_proj", "conv1d", "dt_proj", "out_proj", "x_proj", "embeddings"};
  Generator gen(22);
  apply_lora(*trained, config, &gen);
  randomize_adapters(*trained, gen);
  save_peft_adapter(dir.string(), *trained, config, "base");
  auto loaded = lora_test_model(DType::Float64, 21); // the same base
  const MambaLoraConfig back = load_peft_adapter(dir.string(), *loaded);
  CHECK(back.r == 3);
  CHECK(back.lora_alpha == 5);
  CHECK(back.use_rslora);
  CHECK(back.target_modules == config.target_modules);
  CHECK(max_abs_diff(loaded->forward(ids).value(), trained->forward(ids).value()) == 0);
  // Keys as peft writes them.
  const SafetensorsFile file = load_safetensors((dir / "adapter_model.safetensors").string());
  CHECK(file.contains("base_model.model.backbone.layers.0.mixer.in_proj.lora_A.weight"));
  CHECK(file.contains("base_model.model.backbone.embeddings.lora_embedding_B"));
  CHECK(peft_parameter_name("backbone.layers.1.mixer.x_proj.lora_B.weight") ==
        "base_model.model.backbone.layers.1.mixer.x_proj.lora_B.default.weight");
  CHECK(peft_parameter_name("backbone.embeddings.lora_embedding_A") ==
        "base_model.model.backbone.embeddings.lora_embedding_A.default");

  auto with_config = [&](const std::string& json) {
    std::ofstream(dir / "adapter_config.json") << json;
    auto model = lora_test_model(DType::Float64, 21);
    load_peft_adapter(dir.string(), *model);
  };
  const std::string base = R"("peft_type": "LORA", "r": 3, "lora_alpha": 5, "use_rslora": true)";
  test::check_error<std::invalid_argument>(
      [&] {
        with_config("{" + base + R"(, "target_modules": ["in_proj"], "fan_in_fan_out": true})");
      },
      {"fan_in_fan_out"});
  test::check_error<std::invalid_argument>(
      [&] { with_config("{" + base + R"(, "target_modules": ["in_proj"], "bias": "all"})"); },
      {"bias 'all'"});
  test::check_error<std::invalid_argument>(
      [&] { with_config("{" + base + R"(, "target_modules": ["in_proj"], "use_dora": true})"); },
      {"'use_dora' = true is not implemented"});
  test::check_error<std::invalid_argument>(
      [&] { with_config("{" + base + R"(, "target_modules": ".*proj"})"); },
      {"regular expression", ".*proj"});
  // The file holds more adapters than the config names.
  test::check_error<std::invalid_argument>(
      [&] { with_config("{" + base + R"(, "target_modules": ["in_proj"]})"); },
      {"matches no adapter"});
  // A refused file leaves the model as it was: no adapter attached.
  {
    std::ofstream(dir / "adapter_config.json")
        << "{" + base + R"(, "target_modules": ["in_proj"]})";
    auto model = lora_test_model(DType::Float64, 21);
    CHECK_THROWS(load_peft_adapter(dir.string(), *model));
    CHECK(lora_parameters(*model).empty());
  }
  // A config whose r differs from the file's.
  test::check_error<std::invalid_argument>(
      [&] {
        with_config(
            R"({"peft_type": "LORA", "r": 2, "lora_alpha": 5, "target_modules": ["in_proj", "conv1d", "dt_proj", "out_proj", "x_proj", "embeddings"]})");
      },
      {"has shape", "r = 2"});
  fs::remove_all(dir);
}

GPU_TEST_CASE(
    "cuda Mamba LoRA: logits and every adapter gradient equal the CPU's (float64), "
    "every target") {
  const Tensor ids = Tensor::randint(0, 23, {2, 13}, DType::Int64, nullptr);
  MambaLoraConfig config;
  config.r = 3;
  config.target_modules = {"in_proj", "conv1d", "x_proj", "dt_proj", "out_proj", "embeddings"};
  std::unique_ptr<MambaLM> models[2];
  for (int k = 0; k < 2; ++k) {
    models[k] = lora_test_model(DType::Float64, 31);
    Generator gen(32);
    apply_lora(*models[k], config, &gen);
    randomize_adapters(*models[k], gen);
  }
  models[1]->to(Device::cuda(0));
  const Var cpu_logits = models[0]->forward(ids);
  const Var gpu_logits = models[1]->forward(ids.to(Device::cuda(0)));
  test::check_parity("mamba_lora", "logits [2, 13, 23]", gpu_logits.value(), cpu_logits.value(),
                     test::kF64Atol, test::kF64Rtol);
  models[0]->loss(ids).backward();
  models[1]->loss(ids.to(Device::cuda(0))).backward();
  const auto cpu_params = lora_parameters(*models[0]), gpu_params = lora_parameters(*models[1]);
  REQUIRE(cpu_params.size() == gpu_params.size());
  for (size_t i = 0; i < cpu_params.size(); ++i)
    test::check_parity("mamba_lora", "grad " + cpu_params[i].first, gpu_params[i].second.grad(),
                       cpu_params[i].second.grad(), test::kF64Atol, test::kF64Rtol);
}

TEST_CASE("hf_check --adapter: a peft adapter made by transformers + peft, float64 and float32") {
  // tests/fixtures/hf_mamba_tiny_lora (make_reference.py there): r 4 on in_proj and x_proj of
  // ../shared/fixtures/hf_mamba_tiny, lora_B random; logits, hidden states, loss, the gradient
  // of all 8 adapter matrices and greedy tokens, as transformers + peft computed them.
  const std::string base = "../shared/fixtures/hf_mamba_tiny";
  const std::string fixture = "tests/fixtures/hf_mamba_tiny_lora";
  for (const DType dtype : {DType::Float64, DType::Float32}) {
    HfCheckOptions options;
    options.dtype = dtype;
    options.adapter_dir = fixture;
    const HfCheckResult r = run_hf_check(base, fixture + "/reference.safetensors", options);
    std::string report;
    for (const std::string& line : r.lines) report += line + "\n";
    INFO(report);
    CHECK(r.ok);
    int adapter_gradients = 0;
    for (const std::string& line : r.lines)
      adapter_gradients += line.rfind("grad.base_model.model.", 0) == 0 &&
                           line.find(".default.weight") != std::string::npos;
    CHECK(adapter_gradients == 8);
  }
}

// The program: build/train_lora (next to this test binary) on a small random base and a text
// made here, each method for a few steps: it runs, its loss falls, and it writes what it says.
TEST_CASE("train_lora: lora, qlora and full runs; the loss falls; adapter or checkpoint written") {
  const fs::path program = fs::read_symlink("/proc/self/exe").parent_path() / "train_lora";
  REQUIRE_MESSAGE(fs::exists(program), "build it first: make " << program.string());
  const fs::path dir =
      fs::temp_directory_path() / ("test_train_lora_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream text(dir / "text.txt");
    for (int i = 0; i < 400; ++i) text << "the state h_t = a h_{t-1} + b x_t; y_t = c h_t. ";
  }
  for (const std::string method : {"lora", "qlora", "full"}) {
    CAPTURE(method);
    const fs::path out = dir / method;
    const std::string command =
        program.string() + " --device cpu --base random --d-model 16 --n-layer 1 --data " +
        (dir / "text.txt").string() + " --method " + method +
        " --steps 60 --eval-every 30 --batch 8 --seq-len 32 --r 4 --lr 1e-2 --sample-len 8 --out " +
        out.string() + " > " + (dir / "log.txt").string() + " 2>&1";
    const int status = std::system(command.c_str());
    std::ifstream log(dir / "log.txt");
    std::stringstream output;
    output << log.rdbuf();
    INFO(command);
    INFO(output.str());
    REQUIRE(status == 0);
    CHECK(fs::exists(out / (method == "full" ? "checkpoint/model.safetensors"
                                             : "adapter/adapter_model.safetensors")));
    // The last line of metrics.jsonl summarises the run.
    std::ifstream metrics(out / "metrics.jsonl");
    std::string line, last;
    while (std::getline(metrics, line))
      if (!line.empty()) last = line;
    const Json summary = Json::parse(last);
    CHECK(summary.get_string("method") == method);
    CHECK(summary.get_double("val_loss_after") < 0.85 * summary.get_double("val_loss_before"));
  }
  fs::remove_all(dir);
}

} // namespace
} // namespace ssm
