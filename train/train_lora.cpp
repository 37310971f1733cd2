// train_lora.cpp: fine-tunes a Mamba LM on a text file: fully, with LoRA, or with QLoRA.
//
//   build/train_lm                                   # a base model: runs/train_lm/checkpoint
//   build/train_lora                                 # LoRA (r 8) on every projection
//   build/train_lora --qlora                         # the same with the base in NF4
//   build/train_lora --method full                   # every parameter trained
//   build/train_lora --base DIR --data FILE --out DIR --merged
//   build/train_lora --help
//
// Base model. --base: a Hugging Face MambaForCausalLM directory (one written by train_lm, or
// any transformers Mamba checkpoint; byte-level models read the text as bytes, others need
// --data of token ids, which this program does not read: it is for byte-level models), or
// "random" for a freshly initialised byte-level model of --d-model x --n-layer (to measure
// memory and speed at a size no checkpoint here has; its samples are noise).
//
// Data. --data FILE, or by default a second corpus the base has not seen: the project's C++
// headers (tensor/, autograd/, data/, mamba/, s4/, train/*.h, in sorted order), code and
// comments rather than Markdown prose. The last 10% is held out. Windows, evaluation and
// samples as in train_lm (train/lm_text.h).
//
// Methods (mamba/lora.h, autograd/lora.h, autograd/nf4.h):
//   full   every parameter trained with AdamW (no decay on A_log, D, biases, norms)
//   lora   the base frozen; adapters of rank --r on --targets, scale alpha / r (or
//          alpha / sqrt(r) with --rslora), dropout --lora-dropout on their input
//   qlora  as lora, with the frozen in_proj, x_proj, dt_proj and out_proj weights stored in
//          NF4 (4 bits a weight plus double-quantised scales) and dequantised on the fly
// The run prints trainable vs total parameters, samples before and after, the held-out loss
// before and after, the median step time and the peak memory (CUDA: the caching allocator's
// peak; CPU: the process's peak resident set, which includes everything else too).
//
// Output (in --out, default runs/train_lora-<method>): metrics.jsonl, loss.svg; adapter/
// (adapter_config.json + adapter_model.safetensors, as peft writes them; peft loads those with
// targets it supports: in_proj, x_proj, embeddings) for lora and qlora; checkpoint/ (the whole
// model, HF format) for full, or for lora with --merged (the adapters folded into the weights).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "autograd/nf4.h"
#include "autograd/optim.h"
#include "data/atomic_file.h"
#include "mamba/hf.h"
#include "mamba/lora.h"
#include "train/byte_text.h"
#include "train/flags.h"
#include "train/lm_text.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/progress.h"
#ifdef SSM_CUDA
#include "cuda/runtime.h"
#endif

using namespace ssm;
using namespace ssm::train;
namespace fs = std::filesystem;

namespace {

constexpr double kHeldOutFraction = 0.1;

// --data, or the project's C++ headers in sorted path order.
std::string read_text(const std::string& data_path, std::string* description) {
  std::vector<std::string> files;
  if (!data_path.empty()) {
    files = {data_path};
  } else {
    for (const char* dir : {"tensor", "autograd", "data", "mamba", "s4", "train"}) {
      std::error_code error;
      for (const fs::directory_entry& entry : fs::directory_iterator(dir, error))
        if (entry.is_regular_file() && entry.path().extension() == ".h")
          files.push_back(entry.path().generic_string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw std::runtime_error(
          "train_lora: no --data given, and the default corpus (the "
          "project's headers) is not under " +
          fs::current_path().string() + ": run from the repository root");
  }
  std::string text;
  for (const std::string& file : files) text += read_file(file);
  if (text.empty()) throw std::runtime_error("train_lora: " + files.front() + " is empty");
  *description = files.size() == 1
                     ? files.front()
                     : std::to_string(files.size()) + " files (" + files.front() + ", ...)";
  return text;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

double peak_memory_bytes(Device device) {
#ifdef SSM_CUDA
  if (device.is_cuda()) return static_cast<double>(cuda::allocator_stats(device.index).peak_bytes);
#endif
  (void)device;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0; // Linux: kilobytes
}

void reset_peak_memory(Device device) {
#ifdef SSM_CUDA
  if (device.is_cuda()) cuda::reset_peak(device.index);
#endif
  (void)device;
}

int run(int argc, char** argv) {
  std::string base = "runs/train_lm/checkpoint", data_path, out_dir;
  std::string method = "lora", targets = "in_proj,conv1d,x_proj,dt_proj,out_proj";
  std::string device = cuda_available() ? "cuda" : "cpu", prompt;
  int64_t r = 8, steps = 300, batch_size = 16, seq_len = 128, seed = 0, eval_every = 100,
          eval_windows = 64, sample_len = 160, d_model = 768, n_layer = 24, vocab = 256,
          timing_steps = 0;
  double alpha = 16, lora_dropout = 0, lr = 0, weight_decay = 0, warmup = 0.05, clip = 1.0,
         temperature = 0.8;
  bool rslora = false, merged = false, lora_flag = false, qlora_flag = false;
  Flags flags("train_lora",
              "Fine-tunes a Mamba LM (Hugging Face format) on a text file, fully (--method "
              "full), with LoRA adapters (lora) or with LoRA over an NF4-quantised base "
              "(qlora). Writes metrics.jsonl, loss.svg and the adapter in peft's format (or the "
              "whole model) into --out. Exit status: 0 done, 1 failed, 2 bad command line.");
  flags.add("base", &base, "the base model: a MambaForCausalLM directory, or 'random'");
  flags.add("data", &data_path, "text file; empty: the project's C++ headers");
  flags.add("method", &method, "full, lora or qlora");
  flags.add("lora", &lora_flag, "the same as --method lora");
  flags.add("qlora", &qlora_flag, "the same as --method qlora");
  flags.add("r", &r, "LoRA rank");
  flags.add("alpha", &alpha, "LoRA alpha (scale alpha / r)");
  flags.add("rslora", &rslora, "scale alpha / sqrt(r) (rank-stabilised LoRA)");
  flags.add("lora-dropout", &lora_dropout, "dropout on the adapters' input");
  flags.add("targets", &targets,
            "comma-separated modules to adapt: in_proj, conv1d, x_proj, dt_proj, out_proj, "
            "embeddings");
  flags.add("steps", &steps, "optimizer steps");
  flags.add("batch", &batch_size, "windows per step");
  flags.add("seq-len", &seq_len, "bytes per window");
  flags.add("lr", &lr, "peak learning rate; 0: 2e-3 for lora/qlora, 5e-4 for full");
  flags.add("weight-decay", &weight_decay, "AdamW weight decay");
  flags.add("warmup", &warmup, "fraction of the steps spent in linear warmup");
  flags.add("clip", &clip, "global gradient-norm clip");
  flags.add("eval-every", &eval_every, "steps between held-out evaluations");
  flags.add("eval-windows", &eval_windows, "at most this many held-out windows");
  flags.add("sample-len", &sample_len, "bytes per sample (before and after)");
  flags.add("temperature", &temperature, "sampling temperature (0: greedy)");
  flags.add("prompt", &prompt, "prompt of the samples; empty: from the held-out text");
  flags.add("d-model", &d_model, "--base random: width");
  flags.add("n-layer", &n_layer, "--base random: layers");
  flags.add("vocab", &vocab,
            "--base random: vocabulary (>= 256; bytes use the first 256 ids; 50280 gives the "
            "size of mamba-130m: 129M parameters at d_model 768, 24 layers)");
  flags.add("timing-steps", &timing_steps,
            "stop after this many steps, skip evaluation and samples (0: off): for timing");
  flags.add("merged", &merged, "lora: also save the model with the adapters merged");
  flags.add("seed", &seed, "seed of the adapters' initialisation, batches and samples");
  flags.add("out", &out_dir, "output directory (default runs/train_lora-<method>)");
  flags.add("device", &device, "cpu, cuda or cuda:N; the default is cuda when a GPU is present");
  if (!flags.parse(argc, argv)) return 0;
  if (lora_flag && qlora_flag) throw UsageError("train_lora: give --lora or --qlora, not both");
  if (lora_flag) method = "lora";
  if (qlora_flag) method = "qlora";
  if (method != "full" && method != "lora" && method != "qlora")
    throw UsageError("train_lora: --method must be full, lora or qlora, got '" + method + "'");
  if (r < 1 || steps < 1 || batch_size < 1 || seq_len < 2 || eval_every < 1 || eval_windows < 1 ||
      sample_len < 1 || timing_steps < 0)
    throw UsageError(
        "train_lora: --r, --steps, --batch, --eval-every, --eval-windows and "
        "--sample-len must be positive, --seq-len at least 2");
  if (!(alpha > 0) || !(lora_dropout >= 0 && lora_dropout < 1) || !(lr >= 0) || !(clip > 0) ||
      !(weight_decay >= 0) || !(warmup >= 0 && warmup <= 1) || !(temperature >= 0))
    throw UsageError(
        "train_lora: --alpha and --clip must be positive, --lora-dropout in [0, 1), "
        "--warmup in [0, 1], --lr, --weight-decay and --temperature >= 0");
  if (merged && method != "lora")
    throw UsageError(
        "train_lora: --merged needs --method lora (a qlora base is quantised; a "
        "full fine-tune is saved whole anyway)");
  if (lr == 0) lr = method == "full" ? 5e-4 : 2e-3;
  if (out_dir.empty()) out_dir = "runs/train_lora-" + method;
  const Device dev = parse_device_flag("train_lora", device);
  const bool timing = timing_steps > 0;
  if (timing) steps = std::min(steps, timing_steps);

  // ---- base model ----
  std::unique_ptr<MambaLM> model;
  Generator gen(static_cast<uint64_t>(seed)), batch_gen(static_cast<uint64_t>(seed) + 1);
  if (base == "random") {
    if (vocab < 256) throw UsageError("train_lora: --vocab must be >= 256");
    const MambaConfig config = MambaConfig::make(vocab, d_model, n_layer);
    model = std::make_unique<MambaLM>(config, nn::Init{DType::Float32, &gen});
    model->to(dev);
  } else {
    model = load_hf_mamba(base, {DType::Float32, dev});
  }
  if (model->config.vocab_size < 256 || (base != "random" && model->config.vocab_size != 256))
    throw UsageError("train_lora: the base has a vocabulary of " +
                     std::to_string(model->config.vocab_size) +
                     "; this program reads text as bytes and needs a byte-level model (256)");

  // ---- data ----
  std::string description;
  if (merged && model->config.tie_word_embeddings)
    for (const std::string& t : split_list(targets))
      if (t == "embeddings" || (t.size() > 11 && t.compare(t.size() - 11, 11, ".embeddings") == 0))
        throw UsageError(
            "train_lora: --merged with an embeddings adapter on a model with tied "
            "embeddings would change lm_head too (merge_lora refuses it); leave "
            "embeddings out of --targets or drop --merged");
  const std::string text = read_text(data_path, &description);
  const int64_t total = static_cast<int64_t>(text.size());
  const int64_t train_bytes = total - static_cast<int64_t>(std::ceil(kHeldOutFraction * total));
  const std::string train_text = text.substr(0, train_bytes), val_text = text.substr(train_bytes);
  if (static_cast<int64_t>(val_text.size()) < seq_len)
    throw UsageError("train_lora: --seq-len " + std::to_string(seq_len) +
                     " is longer than the held-out text (" + std::to_string(val_text.size()) +
                     " bytes)");
  const std::vector<int64_t> val_starts =
      fixed_windows(static_cast<int64_t>(val_text.size()), seq_len, eval_windows);
  if (prompt.empty()) prompt = default_prompt(val_text, 32);

  auto sample = [&](const char* when) {
    if (timing) return;
    const std::string s =
        sample_bytes(*model, prompt, sample_len, temperature, static_cast<uint64_t>(seed) + 2);
    std::printf("sample %s (temperature %g; the first %zu bytes are the prompt):\n%s", when,
                temperature, prompt.size(), indented(ByteText::text(s)).c_str());
  };
  std::printf(
      "train_lora: base %s (%lld layers, d_model %lld, vocab %lld: %lld parameters), "
      "%s on %s\n",
      base == "random" ? "random (freshly initialised)" : base.c_str(),
      static_cast<long long>(model->config.n_layer), static_cast<long long>(model->config.d_model),
      static_cast<long long>(model->config.vocab_size),
      static_cast<long long>(model->num_parameters()), method.c_str(), dev.str().c_str());
  std::printf("data: %s, %lld bytes (%lld held out); unigram entropy %.3f bits/byte\n",
              description.c_str(), static_cast<long long>(total),
              static_cast<long long>(val_text.size()), unigram_entropy_bits(train_text));
  const double val_before =
      timing ? NAN : mean_loss(*model, val_text, val_starts, seq_len, batch_size);
  if (!timing)
    std::printf("held-out loss before: %.4f nats = %.3f bits/byte\n", val_before,
                val_before / std::log(2.0));
  sample("before fine-tuning");

  // ---- what trains ----
  MambaLoraConfig lora;
  lora.r = r;
  lora.lora_alpha = alpha;
  lora.lora_dropout = lora_dropout;
  lora.use_rslora = rslora;
  lora.target_modules = split_list(targets);
  optim::NamedParameters trainable;
  if (method == "full") {
    trainable = model->named_parameters();
    int64_t count = 0;
    for (const auto& [name, p] : trainable) count += p.numel();
    std::printf("trainable params: %lld || all params: %lld || trainable%%: 100\n",
                static_cast<long long>(count), static_cast<long long>(count));
  } else {
    const LoraSummary summary = apply_lora(*model, lora, &gen);
    if (method == "qlora") {
      const QuantizeSummary q = quantize_base_nf4(*model);
      std::printf(
          "NF4 base: %lld weights of %zu layers in %zu bytes (%.3f bytes a weight; "
          "float32: 4); A_log, D, dt_proj.bias, conv1d, norms and embeddings stay "
          "float32\n",
          static_cast<long long>(q.values), q.layers.size(), q.bytes,
          static_cast<double>(q.bytes) / static_cast<double>(q.values));
    }
    std::printf("%s (adapters on %zu modules, r %lld, alpha %g%s)\n", summary.describe().c_str(),
                summary.adapted.size(), static_cast<long long>(r), alpha, rslora ? ", rsLoRA" : "");
    trainable = lora_parameters(*model);
  }
  optim::AdamW optimizer(trainable,
                         {lr, 0.9, 0.95, 1e-8, weight_decay, {"A_log", "mixer.D", "bias", "norm"}});
  const optim::WarmupCosineLR schedule(lr, static_cast<int64_t>(warmup * steps), steps, lr * 0.1);
  std::vector<Var> trainable_vars;
  for (const auto& [name, p] : trainable) trainable_vars.push_back(p);

  // ---- training ----
  fs::create_directories(out_dir);
  MetricsLog log(out_dir + "/metrics.jsonl", /*truncate=*/true);
  Series train_curve{"train batch", {}, {}}, val_curve{"held-out", {}, {}};
  if (!timing) {
    val_curve.x.push_back(0);
    val_curve.y.push_back(val_before);
  }
  reset_peak_memory(dev);
  Progress progress(steps, "tokens");
  std::vector<double> step_seconds;
  double val_loss = val_before;
  model->train();
  for (int64_t step = 0; step < steps; ++step) {
    const std::vector<int64_t> starts =
        Tensor::randint(0, train_bytes - seq_len + 1, {batch_size}, DType::Int64, &batch_gen)
            .to_vector<int64_t>();
    const Tensor ids = windows(train_text, starts, seq_len, dev); // (batch, seq_len)
    const auto t0 = std::chrono::steady_clock::now();
    optimizer.lr = schedule.lr_at(step);
    optimizer.zero_grad();
    Var loss = model->loss(ids);
    loss.backward();
    const double grad_norm = optim::clip_grad_norm(trainable_vars, clip);
    optimizer.step();
    const double loss_value = loss.item(); // waits for the GPU
    step_seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::vector<std::pair<std::string, double>> values = {{"loss", loss_value},
                                                          {"lr", optimizer.lr},
                                                          {"grad_norm", grad_norm},
                                                          {"step_s", step_seconds.back()}};
    train_curve.x.push_back(static_cast<double>(step + 1));
    train_curve.y.push_back(loss_value);
    if (!timing && ((step + 1) % eval_every == 0 || step + 1 == steps)) {
      model->eval();
      val_loss = mean_loss(*model, val_text, val_starts, seq_len, batch_size);
      model->train();
      val_curve.x.push_back(static_cast<double>(step + 1));
      val_curve.y.push_back(val_loss);
      values.push_back({"val_loss", val_loss});
    }
    log.write(step + 1, values);
    progress.update(step + 1, {{"loss", loss_value}, {"val", val_loss}},
                    (step + 1) * batch_size * seq_len);
  }
  progress.finish();
  model->eval();
  const double peak = peak_memory_bytes(dev);
  std::vector<double> sorted = step_seconds;
  std::sort(sorted.begin(), sorted.end());
  // The median over the steps after the first (which pays for first-use set-up).
  const size_t skip = sorted.size() > 1 ? 1 : 0;
  std::vector<double> later(step_seconds.begin() + static_cast<std::ptrdiff_t>(skip),
                            step_seconds.end());
  std::sort(later.begin(), later.end());
  const double median_step = later[later.size() / 2];
  write_line_plot(out_dir + "/loss.svg", {train_curve, val_curve},
                  {"train_lora (" + method + ")", "step", "loss (nats per byte)"});

  // ---- results ----
  if (!timing) {
    std::printf("held-out loss: %.4f before, %.4f after (nats per byte)\n", val_before, val_loss);
    sample("after fine-tuning");
  }
  std::printf("median step %.1f ms (batch %lld x %lld bytes); peak %s memory %.1f MiB\n",
              median_step * 1e3, static_cast<long long>(batch_size),
              static_cast<long long>(seq_len), dev.is_cuda() ? "device (allocator)" : "process RSS",
              peak / 1048576.0);
  if (method == "full") {
    save_hf_mamba(out_dir + "/checkpoint", *model);
    std::printf("wrote %s/checkpoint/ (HF format)\n", out_dir.c_str());
  } else {
    save_peft_adapter(out_dir + "/adapter", *model, lora, base);
    std::printf("wrote %s/adapter/ (peft format: adapter_config.json, adapter_model.safetensors)\n",
                out_dir.c_str());
    if (merged) {
      merge_lora(*model);
      const double merged_loss = mean_loss(*model, val_text, val_starts, seq_len, batch_size);
      // A model saved merged has no adapters: save the base parameters under their HF names.
      save_hf_mamba(out_dir + "/checkpoint", *model);
      std::printf("merged: held-out loss %.4f (unmerged %.4f); wrote %s/checkpoint/ (HF format)\n",
                  merged_loss, val_loss, out_dir.c_str());
    }
  }
  log.write(Json(Json::Object{{"method", method},
                              {"val_loss_before", finite_or_null(val_before)},
                              {"val_loss_after", finite_or_null(val_loss)},
                              {"median_step_s", median_step},
                              {"peak_memory_bytes", peak}}));
  return 0;
}

} // namespace

int main(int argc, char** argv) { return run_program(run, argc, argv); }
