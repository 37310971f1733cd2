// lm_text.cpp: see lm_text.h.
#include "train/lm_text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "mamba/generate.h"

namespace ssm::train {

// H = -sum_c p(c) log2 p(c) over byte values c, in bits per byte.
double unigram_entropy_bits(const std::string& bytes) {
  std::vector<int64_t> counts(256, 0);
  for (unsigned char c : bytes) ++counts[c];
  double entropy = 0;
  for (int64_t count : counts)
    if (count > 0) {
      const double p = static_cast<double>(count) / static_cast<double>(bytes.size());
      entropy -= p * std::log2(p);
    }
  return entropy;
}

// The windows text[start, start + seq_len) as int64 ids (starts.size(), seq_len) on `device`.
Tensor windows(const std::string& text, const std::vector<int64_t>& starts, int64_t seq_len,
               Device device) {
  std::vector<int64_t> ids;
  ids.reserve(starts.size() * seq_len);
  for (int64_t start : starts)
    for (int64_t t = 0; t < seq_len; ++t)
      ids.push_back(static_cast<unsigned char>(text[start + t]));
  return Tensor::from_vector(ids, {static_cast<int64_t>(starts.size()), seq_len}, device);
}

// At most `max_count` windows of seq_len evenly spread over [0, size), never overlapping: the
// fixed evaluation set of one part of the corpus. size >= seq_len.
std::vector<int64_t> fixed_windows(int64_t size, int64_t seq_len, int64_t max_count) {
  const int64_t count = std::min(max_count, size / seq_len);
  std::vector<int64_t> starts(count, 0);
  for (int64_t i = 1; i < count; ++i) starts[i] = i * (size - seq_len) / (count - 1);
  return starts;
}

// Mean of MambaLM::loss over the windows (nats per predicted byte); every window has the same
// length, so this is also the mean over all predicted bytes.
double mean_loss(const MambaLM& model, const std::string& text, const std::vector<int64_t>& starts,
                 int64_t seq_len, int64_t batch_size) {
  NoGradGuard no_grad;
  double total = 0;
  for (size_t first = 0; first < starts.size(); first += batch_size) {
    const size_t last = std::min(starts.size(), first + static_cast<size_t>(batch_size));
    const std::vector<int64_t> chunk(starts.begin() + first, starts.begin() + last);
    total += model.loss(windows(text, chunk, seq_len, model.device())).item() * chunk.size();
  }
  return total / static_cast<double>(starts.size());
}

// The start of the first full line of `text` (which begins mid-line) that starts with a
// letter, at most `length` bytes, cut after a space when there is one so that no word is cut:
// a prompt the model has not trained on.
std::string default_prompt(const std::string& text, int64_t length) {
  size_t start = 0;
  for (size_t newline = text.find('\n'); newline != std::string::npos;
       newline = text.find('\n', newline + 1))
    if (newline + 1 < text.size() && std::isalpha(static_cast<unsigned char>(text[newline + 1]))) {
      start = newline + 1;
      break;
    }
  std::string prompt = text.substr(start, length);
  const size_t space = prompt.find_last_of(' ');
  if (start + prompt.size() < text.size() && space != std::string::npos && space > 0)
    prompt.resize(space + 1);
  return prompt;
}

// `text` with every line prefixed by "  | ", for samples set apart from the log.
std::string indented(const std::string& text) {
  std::string out = "  | ";
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  | ";
  }
  return out + "\n";
}

// `text` as one word of a POSIX shell command: as it is when it holds only safe characters,
// else single-quoted.
std::string shell_quote(const std::string& text) {
  const bool safe = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_./-=:,+", c) != nullptr;
  });
  if (safe) return text;
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The prompt's bytes followed by `length` sampled bytes (recurrent path, mamba/generate.h).
std::string sample_bytes(const MambaLM& model, const std::string& prompt, int64_t length,
                         double temperature, uint64_t seed) {
  std::vector<int64_t> ids;
  for (unsigned char c : prompt) ids.push_back(c);
  Generator gen(seed);
  SamplingOptions options;
  options.temperature = temperature;
  const Tensor out =
      generate(model, Tensor::from_vector(ids, {1, static_cast<int64_t>(ids.size())}), length,
               options, gen); // (1, prompt + length)
  std::string bytes;
  for (int64_t id : out.to_vector<int64_t>()) bytes += static_cast<char>(id);
  return bytes;
}

} // namespace ssm::train
