// train_lm.cpp: trains a small byte-level Mamba language model on a text file.
//
// Task. Next-byte prediction. The text is a sequence of bytes and each byte is a token (vocab
// 256, no tokenizer); the model learns p(byte_{t+1} | bytes_0..t). The loss is the mean cross
// entropy in nats; divided by ln 2 it is bits per byte, the unit of text-compression results.
// The yardstick printed at the start is the unigram entropy of the training bytes,
//     H = -sum_c p(c) log2 p(c)      (p(c): the frequency of byte value c),
// the loss of the best model that ignores context. Below it, the model uses context.
//
// Data. --data FILE, or by default the repository's own Markdown files (README.md, docs/*.md,
// mamba/README.md, s4/README.md, tutorials/*.md, concatenated in sorted path order, some tens
// of KB), read relative to the current directory: run from the repository root. The last 10% of
// the bytes are held out. Each step draws --batch windows of --seq-len bytes at random offsets
// of the training part; MambaLM::loss predicts byte t + 1 from bytes 0..t within each window.
// Evaluation is the mean loss over a fixed set of non-overlapping windows of each part.
//
// Model and optimizer. MambaLM (mamba/mamba_lm.h) with a tied embedding / output head, AdamW
// (betas 0.9, 0.95, as the Mamba paper's GPT-3 recipe) with linear warmup then cosine decay to
// --min-lr-ratio of the peak, and global gradient-norm clipping. Weight decay follows
// the reference implementation: none for A_log and D (mamba_ssm marks them _no_weight_decay),
// none for biases and norm weights (the usual GPT-3 recipe the Mamba paper trains with); the
// tied embedding and every other matrix are decayed.
//
// Output (in --out): metrics.jsonl (one line per step; evaluations add val_loss), loss.svg
// (training loss, evaluation losses and the unigram entropy as a horizontal line) and
// checkpoint/ (config.json + model.safetensors in the Hugging Face transformers format,
// written at every evaluation; transformers' MambaForCausalLM and build/generate load it).
//
//   build/train_lm                  # defaults: about a minute on 2 idle CPU cores
//   build/train_lm --help
//   build/generate --model runs/train_lm/checkpoint --prompt "The selective scan"
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "autograd/optim.h"
#include "data/atomic_file.h"
#include "mamba/generate.h"
#include "mamba/hf.h"
#include "mamba/mamba_lm.h"
#include "train/byte_text.h"
#include "train/flags.h"
#include "train/lm_text.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/progress.h"

using namespace ssm;
namespace fs = std::filesystem;

using train::UsageError;
using namespace ssm::train;

// ---- data ----------------------------------------------------------------------------------

constexpr double kHeldOutFraction = 0.1;

struct Corpus {
  std::vector<std::string> files;
  std::string text;
};

// --data, or the default corpus: the repository's Markdown, in sorted path order.
Corpus read_corpus(const std::string& data_path) {
  Corpus corpus;
  if (!data_path.empty()) {
    corpus.files = {data_path};
  } else {
    for (const char* file : {"README.md", "mamba/README.md", "s4/README.md"})
      if (fs::is_regular_file(file)) corpus.files.push_back(file);
    for (const char* dir : {"docs", "tutorials"}) {
      std::error_code error; // a missing directory leaves the iterator at its end
      for (const fs::directory_entry& entry : fs::directory_iterator(dir, error))
        if (entry.is_regular_file() && entry.path().extension() == ".md")
          corpus.files.push_back(entry.path().generic_string());
    }
    std::sort(corpus.files.begin(), corpus.files.end());
    if (corpus.files.empty())
      throw std::runtime_error(
          "train_lm: no --data given, and the default corpus (README.md, docs/*.md, "
          "tutorials/*.md, ...) is not in " +
          fs::current_path().string() + ": run from the repository root or pass --data FILE");
  }
  for (const std::string& file : corpus.files) {
    try {
      corpus.text += read_file(file);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("train_lm: cannot read the corpus: ") + e.what());
    }
  }
  if (corpus.text.empty())
    throw std::runtime_error("train_lm: the corpus (" + corpus.files.front() +
                             (corpus.files.size() > 1 ? ", ..." : "") + ") is empty");
  return corpus;
}

// ---- main ----------------------------------------------------------------------------------

int run(int argc, char** argv) {
  int64_t d_model = 64, n_layer = 2, d_state = 16, expand = 2, d_conv = 4;
  int64_t seq_len = 128, batch_size = 16, steps = 600, seed = 0;
  int64_t eval_every = 100, eval_windows = 64, sample_every = 200, sample_len = 200,
          prompt_len = 32;
  double lr = 6e-3, weight_decay = 0.1, warmup_fraction = 0.05, min_lr_ratio = 0.1, clip = 1.0,
         temperature = 0.8;
  bool quiet_samples = false;
  std::string data_path, out_dir = "runs/train_lm", prompt, dtype_name_flag = "float32";
  std::string device = cuda_available() ? "cuda" : "cpu";
  train::Flags flags("train_lm",
                     "Trains a byte-level Mamba language model (vocab 256, one token per byte) "
                     "on a text file;\nthe last 10% of the bytes are held out. Writes "
                     "metrics.jsonl, loss.svg and a Hugging Face\ncheckpoint (checkpoint/) into "
                     "--out. Exit status: 0 done, 1 failed, 2 bad command line.");
  flags.add("data", &data_path,
            "text file to train on; empty: the repository's Markdown (README.md, docs/*.md, "
            "tutorials/*.md, ...), run from the repository root");
  flags.add("device", &device, "cpu, cuda or cuda:N; the default is cuda when a GPU is present");
  flags.add("dtype", &dtype_name_flag, "float32 or float64 (parameters and compute)");
  flags.add("d-model", &d_model, "width of the residual stream (hidden_size)");
  flags.add("n-layer", &n_layer, "Mamba layers");
  flags.add("d-state", &d_state, "SSM state size n per channel");
  flags.add("expand", &expand, "d_inner = expand * d_model");
  flags.add("d-conv", &d_conv, "width of the causal depthwise convolution");
  flags.add("seq-len", &seq_len, "bytes per training window");
  flags.add("batch", &batch_size, "windows per step");
  flags.add("steps", &steps, "optimizer steps");
  flags.add("lr", &lr, "peak learning rate (AdamW)");
  flags.add("min-lr-ratio", &min_lr_ratio,
            "final learning rate of the cosine, as a fraction of --lr");
  flags.add("warmup", &warmup_fraction, "fraction of the steps spent in linear warmup");
  flags.add("weight-decay", &weight_decay,
            "AdamW weight decay (not applied to A_log, D, biases and norm weights)");
  flags.add("clip", &clip, "global gradient-norm clip");
  flags.add("seed", &seed, "random seed (initialisation, batches, samples)");
  flags.add("eval-every", &eval_every,
            "steps between evaluations (loss on fixed held-out and training windows) and "
            "checkpoints");
  flags.add("eval-windows", &eval_windows,
            "at most this many fixed windows of --seq-len bytes per evaluation set");
  flags.add("sample-every", &sample_every, "steps between printed samples (0: only at the end)");
  flags.add("sample-len", &sample_len, "bytes per sample");
  flags.add("temperature", &temperature, "sampling temperature (0: greedy)");
  flags.add("prompt", &prompt,
            "prompt of the samples; empty: up to --prompt-len bytes of the first line of the "
            "held-out text that starts with a letter");
  flags.add("prompt-len", &prompt_len, "at most this many bytes in the default prompt");
  flags.add("quiet-samples", &quiet_samples, "print no samples");
  flags.add("out", &out_dir, "output directory for metrics.jsonl, loss.svg, checkpoint/");
  try {
    if (!flags.parse(argc, argv)) return 0;
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (d_model <= 0 || n_layer <= 0 || d_state <= 0 || expand <= 0 || d_conv <= 0 || seq_len < 2 ||
      batch_size <= 0 || steps <= 0 || eval_every <= 0 || eval_windows <= 0 || sample_len <= 0 ||
      prompt_len <= 0 || sample_every < 0)
    throw UsageError(
        "train_lm: --d-model, --n-layer, --d-state, --expand, --d-conv, --batch, --steps, "
        "--eval-every, --eval-windows, --sample-len and --prompt-len must be positive, "
        "--seq-len at least 2 and --sample-every non-negative");
  if (!(lr > 0) || !(clip > 0) || !(weight_decay >= 0) || !(temperature >= 0))
    throw UsageError(
        "train_lm: --lr and --clip must be positive, --weight-decay and --temperature "
        "non-negative");
  if (!(warmup_fraction >= 0 && warmup_fraction <= 1) || !(min_lr_ratio >= 0 && min_lr_ratio <= 1))
    throw UsageError("train_lm: --warmup and --min-lr-ratio must be in [0, 1]");
  if (dtype_name_flag != "float32" && dtype_name_flag != "float64")
    throw UsageError("train_lm: --dtype must be float32 or float64, got '" + dtype_name_flag + "'");
  const DType dtype = dtype_name_flag == "float64" ? DType::Float64 : DType::Float32;
  const Device dev = train::parse_device_flag("train_lm", device);

  // ---- data ----
  const Corpus corpus = read_corpus(data_path);
  const int64_t total_bytes = static_cast<int64_t>(corpus.text.size());
  const int64_t train_bytes =
      total_bytes - static_cast<int64_t>(std::ceil(kHeldOutFraction * total_bytes));
  const std::string train_text = corpus.text.substr(0, train_bytes);
  const std::string val_text = corpus.text.substr(train_bytes);
  const int64_t val_bytes = static_cast<int64_t>(val_text.size());
  if (val_bytes < seq_len || train_bytes <= seq_len)
    throw UsageError("train_lm: --seq-len " + std::to_string(seq_len) + " is longer than the " +
                     "held-out text (" + std::to_string(val_bytes) + " of " +
                     std::to_string(total_bytes) + " bytes): use a shorter --seq-len or more data");
  const std::vector<int64_t> val_starts = fixed_windows(val_bytes, seq_len, eval_windows);
  const std::vector<int64_t> train_eval_starts =
      fixed_windows(train_bytes, seq_len, static_cast<int64_t>(val_starts.size()));
  if (prompt.empty()) prompt = default_prompt(val_text, prompt_len);
  const double entropy_bits = unigram_entropy_bits(train_text);
  const double entropy_nats = entropy_bits * std::log(2.0);

  // ---- model and optimizer ----
  const MambaConfig config = MambaConfig::make(256, d_model, n_layer, d_state, expand, d_conv);
  Generator init_gen(static_cast<uint64_t>(seed)), batch_gen(static_cast<uint64_t>(seed) + 1);
  MambaLM model(config, {dtype, &init_gen}); // initialised on the CPU: the same on any device
  model.to(dev);
  const std::vector<std::string> no_decay = {"A_log", "mixer.D", "bias", "norm"};
  optim::AdamW optimizer(model.named_parameters(), {lr, 0.9, 0.95, 1e-8, weight_decay, no_decay});
  const optim::WarmupCosineLR schedule(lr, static_cast<int64_t>(warmup_fraction * steps), steps,
                                       lr * min_lr_ratio);
  int64_t decayed = 0, not_decayed = 0;
  for (const auto& [name, param] : model.named_parameters())
    (optimizer.decays(name) ? decayed : not_decayed) += param.value().numel();

  std::printf("train_lm: corpus %lld bytes from %zu file%s (%s%s): %lld training, %lld held out\n",
              static_cast<long long>(total_bytes), corpus.files.size(),
              corpus.files.size() == 1 ? "" : "s", corpus.files.front().c_str(),
              corpus.files.size() > 1 ? ", ..." : "", static_cast<long long>(train_bytes),
              static_cast<long long>(val_bytes));
  std::printf(
      "unigram entropy of the training bytes: %.4f bits/byte = %.4f nats (uniform: 8 "
      "bits = %.4f nats)\n",
      entropy_bits, entropy_nats, std::log(256.0));
  std::printf(
      "model: %lld layers, d_model %lld, d_inner %lld, d_state %lld, dt_rank %lld: %lld "
      "parameters (%lld with weight decay, %lld without) on %s, %s\n",
      static_cast<long long>(n_layer), static_cast<long long>(config.d_model),
      static_cast<long long>(config.d_inner), static_cast<long long>(config.d_state),
      static_cast<long long>(config.dt_rank), static_cast<long long>(model.num_parameters()),
      static_cast<long long>(decayed), static_cast<long long>(not_decayed), dev.str().c_str(),
      dtype_name(dtype));
  std::printf(
      "%lld steps of %lld windows x %lld bytes; evaluation on %zu held-out and %zu "
      "training windows\n",
      static_cast<long long>(steps), static_cast<long long>(batch_size),
      static_cast<long long>(seq_len), val_starts.size(), train_eval_starts.size());

  std::error_code error;
  fs::create_directories(out_dir, error);
  if (error)
    throw std::runtime_error("train_lm: cannot create --out directory " + out_dir + ": " +
                             error.message());
  const std::string checkpoint_dir = (fs::path(out_dir) / "checkpoint").string();
  train::MetricsLog log(out_dir + "/metrics.jsonl", /*truncate=*/true);
  train::Series train_curve{"train batch", {}, {}};
  train::Series train_eval_curve{"train windows", {}, {}};
  train::Series val_curve{"held-out", {}, {}};
  const bool tty = isatty(fileno(stdout));
  const double ln2 = std::log(2.0);

  // Evaluates both fixed sets (for the log and the plot), prints them, writes the checkpoint.
  double val_loss = 0, train_eval_loss = 0;
  auto evaluate = [&](int64_t step) {
    val_loss = mean_loss(model, val_text, val_starts, seq_len, batch_size);
    train_eval_loss = mean_loss(model, train_text, train_eval_starts, seq_len, batch_size);
    val_curve.x.push_back(static_cast<double>(step));
    val_curve.y.push_back(val_loss);
    train_eval_curve.x.push_back(static_cast<double>(step));
    train_eval_curve.y.push_back(train_eval_loss);
    save_hf_mamba(checkpoint_dir, model, dtype);
    if (tty) std::printf("\r\033[K");
    std::printf(
        "step %lld: held-out loss %.4f nats = %.3f bits/byte, training windows %.4f "
        "nats = %.3f bits/byte (unigram %.3f bits/byte)\n",
        static_cast<long long>(step), val_loss, val_loss / ln2, train_eval_loss,
        train_eval_loss / ln2, entropy_bits);
  };
  auto print_sample = [&](int64_t step) {
    if (quiet_samples) return;
    const std::string text =
        sample_bytes(model, prompt, sample_len, temperature, static_cast<uint64_t>(seed) + 2);
    if (tty) std::printf("\r\033[K");
    std::printf("sample at step %lld (temperature %g; the first %zu bytes are the prompt):\n%s",
                static_cast<long long>(step), temperature, prompt.size(),
                indented(ByteText::text(text)).c_str());
    std::fflush(stdout);
  };

  evaluate(0);
  log.write(0, {{"val_loss", val_loss}, {"train_eval_loss", train_eval_loss}});
  train::Progress progress(steps, "tokens");
  double train_seconds = 0, loss_value = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const std::vector<int64_t> starts =
        Tensor::randint(0, train_bytes - seq_len + 1, {batch_size}, DType::Int64, &batch_gen)
            .to_vector<int64_t>();
    const Tensor ids = windows(train_text, starts, seq_len, dev); // (batch, seq_len)
    const auto start_time = std::chrono::steady_clock::now();
    optimizer.lr = schedule.lr_at(step);
    optimizer.zero_grad();
    Var loss = model.loss(ids);
    loss.backward();
    const double grad_norm = optim::clip_grad_norm(model.parameters(), clip);
    optimizer.step();
    loss_value = loss.item(); // on a GPU this waits for the step to finish
    train_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();

    // tokens_per_s: tokens through the training steps so far over the time spent in them
    // (evaluation, sampling and checkpoints excluded).
    const int64_t tokens = (step + 1) * batch_size * seq_len;
    std::vector<std::pair<std::string, double>> values = {
        {"loss", loss_value},
        {"lr", optimizer.lr},
        {"grad_norm", grad_norm},
        {"tokens_per_s", static_cast<double>(tokens) / train_seconds}};
    train_curve.x.push_back(static_cast<double>(step + 1));
    train_curve.y.push_back(loss_value);
    const bool last = step + 1 == steps;
    if ((step + 1) % eval_every == 0 || last) {
      evaluate(step + 1);
      values.push_back({"val_loss", val_loss});
      values.push_back({"train_eval_loss", train_eval_loss});
    }
    if ((sample_every > 0 && (step + 1) % sample_every == 0) || last) print_sample(step + 1);
    log.write(step + 1, values);
    progress.update(step + 1, {{"loss", loss_value}, {"val", val_loss}}, tokens);
  }
  progress.finish();

  const train::Series entropy_line{
      "unigram entropy", {0.0, static_cast<double>(steps)}, {entropy_nats, entropy_nats}};
  train::write_line_plot(out_dir + "/loss.svg",
                         {train_curve, train_eval_curve, val_curve, entropy_line},
                         {"train_lm: byte-level Mamba LM", "step", "loss (nats per byte)"});

  // The checkpoint must give back the model: reload it and evaluate the held-out set again.
  const std::unique_ptr<MambaLM> reloaded = load_hf_mamba(checkpoint_dir, {dtype, dev});
  const double reloaded_val_loss = mean_loss(*reloaded, val_text, val_starts, seq_len, batch_size);
  // Same weights (saved in the training dtype), same code, same device: the numbers should
  // agree to the last bit; 1e-6 relative allows nothing but reordered float sums.
  if (std::fabs(reloaded_val_loss - val_loss) > 1e-6 * std::fabs(val_loss))
    throw std::runtime_error("train_lm: the reloaded checkpoint " + checkpoint_dir +
                             " gives held-out loss " + std::to_string(reloaded_val_loss) +
                             ", the model in memory " + std::to_string(val_loss));

  std::printf(
      "final (step %lld): held-out loss %.4f nats = %.3f bits/byte; training windows "
      "%.4f nats = %.3f bits/byte; last batch %.4f nats\n",
      static_cast<long long>(steps), val_loss, val_loss / ln2, train_eval_loss,
      train_eval_loss / ln2, loss_value);
  std::printf("unigram entropy %.4f nats = %.3f bits/byte: held-out loss is %.1f%% below it\n",
              entropy_nats, entropy_bits, 100.0 * (1.0 - val_loss / entropy_nats));
  std::printf("training took %s (%.0f tokens/s in the steps)\n",
              train::format_duration(progress.elapsed_seconds()).c_str(),
              static_cast<double>(steps * batch_size * seq_len) / train_seconds);
  std::printf("reloaded %s: held-out loss %.6f (in memory %.6f)\n", checkpoint_dir.c_str(),
              reloaded_val_loss, val_loss);
  std::printf("wrote %s/metrics.jsonl, %s/loss.svg, %s/{config.json,model.safetensors}\n",
              out_dir.c_str(), out_dir.c_str(), checkpoint_dir.c_str());
  const fs::path generate_path = fs::path(argv[0]).parent_path() / "generate";
  std::printf("sample from it:\n  %s --model %s --prompt %s --device %s%s\n",
              generate_path.string().c_str(), shell_quote(checkpoint_dir).c_str(),
              shell_quote(prompt).c_str(), dev.str().c_str(),
              dtype == DType::Float64 ? " --dtype float64" : "");
  return 0;
}

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
