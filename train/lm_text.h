// lm_text.h: byte-level language-model data for the trainers (train_lm, train_lora): windows
// of a text as token ids (one token per byte, vocab 256), the fixed evaluation windows, the mean
// loss over them, the unigram entropy yardstick, prompts and samples.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mamba/mamba_lm.h"

namespace ssm::train {

// H = -sum_c p(c) log2 p(c) over the byte values c of `bytes`, in bits per byte: the loss of
// the best model that ignores context.
double unigram_entropy_bits(const std::string& bytes);
// The windows text[start, start + seq_len) as int64 ids (starts.size(), seq_len) on `device`.
Tensor windows(const std::string& text, const std::vector<int64_t>& starts, int64_t seq_len,
               Device device);
// At most `max_count` non-overlapping windows of seq_len spread evenly over [0, size).
std::vector<int64_t> fixed_windows(int64_t size, int64_t seq_len, int64_t max_count);
// Mean of MambaLM::loss over the windows, in nats per predicted byte (no autograd).
double mean_loss(const MambaLM& model, const std::string& text, const std::vector<int64_t>& starts,
                 int64_t seq_len, int64_t batch_size);
// The start of the first full line of `text` that starts with a letter, at most `length`
// bytes, cut after a space: a prompt.
std::string default_prompt(const std::string& text, int64_t length);
// `text` with every line prefixed by "  | ", for samples set apart from the log.
std::string indented(const std::string& text);
// `text` as one word of a POSIX shell command (single-quoted unless it is plainly safe).
std::string shell_quote(const std::string& text);
// The prompt's bytes followed by `length` sampled bytes (recurrent path, mamba/generate.h).
std::string sample_bytes(const MambaLM& model, const std::string& prompt, int64_t length,
                         double temperature, uint64_t seed);

} // namespace ssm::train
