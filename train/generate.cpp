// generate.cpp: samples from a Mamba language model checkpoint with the recurrent path.
//
// The checkpoint is a directory in the Hugging Face transformers format (config.json +
// model.safetensors, or shards), as build/train_lm writes and transformers' save_pretrained
// does (mamba/hf.h). The prompt runs once through the parallel forward (prefill), which leaves
// each layer's conv_state and ssm_state as if the prompt had been stepped through token by
// token; each new token then costs one step() per layer, O(1) in the length so far
// (mamba/generate.h). Tokens are printed as they are sampled; at the end stderr gets the
// prefill time and the tokens/s of the step phase.
//
// Byte-level models (vocab_size 256, as build/train_lm trains them): --prompt TEXT, whose bytes
// are the ids, and the output is text (printable ASCII, newline, tab and complete UTF-8
// sequences as they are, any other byte as \xNN). Other vocabularies: there is no tokenizer
// here, so --ids "1,2,3" gives the prompt and the output is printed as comma-separated ids
// (the prompt's first), which --ids accepts back. --ids also works with a byte-level model,
// whose output is then text all the same.
//
//   build/generate --model runs/train_lm/checkpoint --prompt "The selective scan"
//   build/generate --model DIR --ids "0,510,3" --greedy --max-new-tokens 20
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "mamba/generate.h"
#include "mamba/hf.h"
#include "train/byte_text.h"
#include "train/flags.h"

using namespace ssm;
namespace fs = std::filesystem;

using train::UsageError;

constexpr int64_t kByteVocab = 256;

// ---- the prompt ----------------------------------------------------------------------------

// "1, 2,3" -> {1, 2, 3}; every item must be an integer in [0, vocab).
std::vector<int64_t> parse_ids(const std::string& text, int64_t vocab) {
  std::vector<int64_t> ids;
  size_t begin = 0;
  while (true) {
    const size_t comma = text.find(',', begin);
    std::string item =
        text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    size_t lead = 0;
    while (lead < item.size() && std::isspace(static_cast<unsigned char>(item[lead]))) ++lead;
    item = item.substr(lead);
    char* end = nullptr;
    errno = 0;
    const long long id = item.empty() ? 0 : std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno == ERANGE)
      throw UsageError("generate: --ids expects comma-separated token ids, got '" + item +
                       "' in '" + text + "'");
    if (id < 0 || id >= vocab)
      throw UsageError("generate: --ids: token " + item +
                       " is outside the model's vocabulary [0, " + std::to_string(vocab) + ")");
    ids.push_back(id);
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return ids;
}

using train::ByteText;

// ---- main ----------------------------------------------------------------------------------

int run(int argc, char** argv) {
  std::string model_dir, prompt, ids_text, dtype_flag = "float32";
  std::string device = cuda_available() ? "cuda" : "cpu";
  int64_t max_new_tokens = 200, top_k = 0, seed = 0, stop_token = -1;
  double temperature = 0.8, top_p = 1.0;
  bool greedy = false;
  train::Flags flags(
      "generate",
      "Samples from a Mamba checkpoint directory (Hugging Face format: config.json +\n"
      "model.safetensors) with the recurrent path: prefill over the prompt, then one step per\n"
      "token. Byte-level models (vocab 256) take --prompt TEXT and print text; other\n"
      "vocabularies take --ids and print ids. Timings go to stderr. Exit status: 0 done,\n"
      "1 failed (e.g. an unreadable checkpoint), 2 bad command line.");
  flags.add("model", &model_dir, "checkpoint directory (e.g. runs/train_lm/checkpoint)");
  flags.add("prompt", &prompt, "prompt text; its bytes are the ids (byte-level models only)");
  flags.add("ids", &ids_text, "prompt as comma-separated token ids, e.g. \"1,2,3\"");
  flags.add("max-new-tokens", &max_new_tokens, "tokens to sample after the prompt");
  flags.add("temperature", &temperature, "softmax temperature (0: greedy)");
  flags.add("top-k", &top_k, "sample among the k most likely tokens (0: all)");
  flags.add("top-p", &top_p, "nucleus sampling: the most likely tokens up to this mass (1: all)");
  flags.add("greedy", &greedy, "always take the most likely token");
  flags.add("seed", &seed, "random seed of the sampler");
  flags.add("stop-token", &stop_token, "stop after sampling this id (-1: never; 10 = newline)");
  flags.add("device", &device, "cpu, cuda or cuda:N; the default is cuda when a GPU is present");
  flags.add("dtype", &dtype_flag, "compute dtype: float32 or float64");
  try {
    if (!flags.parse(argc, argv)) return 0;
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (model_dir.empty())
    throw UsageError(
        "generate: --model DIR is required (a checkpoint directory such as "
        "runs/train_lm/checkpoint; see --help)");
  if (prompt.empty() && ids_text.empty())
    throw UsageError(
        "generate: no prompt: give --prompt TEXT (byte-level models) or --ids "
        "\"1,2,3\"");
  if (!prompt.empty() && !ids_text.empty())
    throw UsageError("generate: give either --prompt or --ids, not both");
  if (max_new_tokens < 1) throw UsageError("generate: --max-new-tokens must be at least 1");
  if (!(temperature >= 0)) throw UsageError("generate: --temperature must be non-negative");
  if (top_k < 0) throw UsageError("generate: --top-k must be non-negative (0: all tokens)");
  if (!(top_p > 0 && top_p <= 1)) throw UsageError("generate: --top-p must be in (0, 1]");
  if (dtype_flag != "float32" && dtype_flag != "float64")
    throw UsageError("generate: --dtype must be float32 or float64, got '" + dtype_flag + "'");
  const DType dtype = dtype_flag == "float64" ? DType::Float64 : DType::Float32;
  const Device dev = train::parse_device_flag("generate", device);
  if (!fs::is_directory(model_dir))
    throw std::runtime_error("generate: --model " + model_dir +
                             ": no such directory (a checkpoint directory holds config.json "
                             "and model.safetensors, e.g. runs/train_lm/checkpoint)");

  // ---- the model and the prompt ----
  std::vector<std::string> notes;
  const std::unique_ptr<MambaLM> model = load_hf_mamba(model_dir, {dtype, dev}, &notes);
  for (const std::string& note : notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  const MambaConfig& config = model->config;
  const bool byte_level = config.vocab_size == kByteVocab;
  std::vector<int64_t> prompt_ids;
  if (!prompt.empty()) {
    if (!byte_level)
      throw UsageError("generate: --prompt needs a byte-level model (vocab_size 256); " +
                       model_dir + " has vocab_size " + std::to_string(config.vocab_size) +
                       " and there is no tokenizer here: give the prompt's token ids with --ids");
    for (unsigned char c : prompt) prompt_ids.push_back(c);
  } else {
    prompt_ids = parse_ids(ids_text, config.vocab_size);
  }
  if (stop_token < -1 || stop_token >= config.vocab_size)
    throw UsageError("generate: --stop-token must be -1 or an id in [0, " +
                     std::to_string(config.vocab_size) + ")");
  const int64_t prompt_len = static_cast<int64_t>(prompt_ids.size());
  std::fprintf(stderr,
               "generate: %s: %lld layers, d_model %lld, d_state %lld, vocab %lld, %lld "
               "parameters, on %s in %s\n",
               model_dir.c_str(), static_cast<long long>(config.n_layer),
               static_cast<long long>(config.d_model), static_cast<long long>(config.d_state),
               static_cast<long long>(config.vocab_size),
               static_cast<long long>(model->num_parameters()), dev.str().c_str(),
               dtype_name(dtype));
  char sampling[128];
  if (greedy || temperature == 0)
    std::snprintf(sampling, sizeof sampling, "greedy");
  else
    std::snprintf(sampling, sizeof sampling, "temperature %g, top-k %lld, top-p %g, seed %lld",
                  temperature, static_cast<long long>(top_k), top_p, static_cast<long long>(seed));
  std::fprintf(stderr, "prompt %lld tokens; %s; up to %lld new tokens\n",
               static_cast<long long>(prompt_len), sampling,
               static_cast<long long>(max_new_tokens));

  // ---- generate, printing as it goes ----
  ByteText printer;
  if (byte_level) {
    for (int64_t id : prompt_ids)
      std::fputs(printer.push(static_cast<unsigned char>(id)).c_str(), stdout);
  } else {
    for (int64_t i = 0; i < prompt_len; ++i)
      std::printf("%s%lld", i ? "," : "", static_cast<long long>(prompt_ids[i]));
  }
  std::fflush(stdout);

  using Clock = std::chrono::steady_clock;
  Clock::time_point first_token, last_token;
  int64_t new_tokens = 0;
  auto on_token = [&](const Tensor& ids) { // ids (1) on the CPU
    last_token = Clock::now();
    if (new_tokens++ == 0) first_token = last_token;
    const int64_t id = static_cast<int64_t>(ids.at({0}));
    if (byte_level)
      std::fputs(printer.push(static_cast<unsigned char>(id)).c_str(), stdout);
    else
      std::printf(",%lld", static_cast<long long>(id));
    std::fflush(stdout);
  };
  SamplingOptions options;
  options.greedy = greedy;
  options.temperature = temperature;
  options.top_k = top_k;
  options.top_p = top_p;
  Generator gen(static_cast<uint64_t>(seed));
  const Clock::time_point start = Clock::now();
  generate(*model, Tensor::from_vector(prompt_ids, {1, prompt_len}), max_new_tokens, options, gen,
           stop_token, on_token);
  std::printf("%s\n", printer.flush().c_str());
  std::fflush(stdout);

  // ---- timings ----
  // The first token comes from the prefill's logits; every later one from one step().
  const double prefill_s = std::chrono::duration<double>(first_token - start).count();
  const double step_s = std::chrono::duration<double>(last_token - first_token).count();
  std::fprintf(stderr, "prefill: %lld prompt tokens in %.2f ms (until the first new token)\n",
               static_cast<long long>(prompt_len), 1e3 * prefill_s);
  if (new_tokens > 1)
    std::fprintf(stderr, "step:    %lld tokens in %.3f s = %.1f tokens/s (step + sampling)\n",
                 static_cast<long long>(new_tokens - 1), step_s, (new_tokens - 1) / step_s);
  else
    std::fprintf(stderr, "step:    none (%lld new token)\n", static_cast<long long>(new_tokens));
  return 0;
}

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
