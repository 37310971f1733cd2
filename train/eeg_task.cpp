// eeg_task.cpp: see eeg_task.h for the task, the pipeline and the three detectors.
#include "train/eeg_task.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <complex>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>

#include "autograd/functions.h"
#include "data/annotations.h"
#include "data/atomic_file.h"
#include "data/edf.h"
#include "data/synthetic_eeg.h"
#include "s4/fft.h"
#include "tensor/cpu/parallel.h"

namespace ssm::eegtask {

namespace fs = std::filesystem;

// ---- reading --------------------------------------------------------------------------------

namespace {

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_eeg_file_name(const std::string& name) {
  const std::string l = lower(name);
  return ends_with(l, ".edf") || ends_with(l, ".h5") || ends_with(l, ".hdf5");
}

} // namespace

std::string detect_eeg_format(const std::string& path) {
  const std::string name = lower(path);
  if (ends_with(name, ".edf")) return "edf";
  if (ends_with(name, ".h5") || ends_with(name, ".hdf5")) return "hdf5";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  char head[8] = {};
  in.read(head, sizeof head);
  const std::string first(head, static_cast<size_t>(in.gcount()));
  if (first == std::string("\x89HDF\r\n\x1a\n", 8)) return "hdf5";
  if (first == "0       " || first == std::string("\xff"
                                                  "BIOSEMI",
                                                  8))
    return "edf";
  throw std::runtime_error("cannot tell the format of " + path +
                           ": no .edf, .h5 or .hdf5 extension, and it starts neither with EDF's "
                           "version field '0       ' nor with the HDF5 signature");
}

std::string annotation_path(const std::string& recording_path, const std::string& suffix) {
  const fs::path path(recording_path);
  const std::string stem = path.stem().string();
  const std::string direct = (path.parent_path() / (stem + suffix)).string();
  // BIDS: sub-01_task-rest_eeg.edf has its events in sub-01_task-rest_events.tsv, the
  // recording's last "_<modality>" part replaced by the suffix.
  const size_t underscore = stem.rfind('_');
  if (!fs::exists(direct) && !suffix.empty() && suffix[0] == '_' &&
      underscore != std::string::npos) {
    const std::string bids = (path.parent_path() / (stem.substr(0, underscore) + suffix)).string();
    if (fs::exists(bids)) return bids;
  }
  return direct;
}

eeg::Recording read_recording(const std::string& path, const eeg::Hdf5Options& hdf5,
                              const std::string& annotations_suffix) {
  eeg::Recording recording =
      detect_eeg_format(path) == "edf" ? eeg::read_edf(path) : eeg::read_hdf5(path, hdf5);
  if (!annotations_suffix.empty()) {
    const std::string table = annotation_path(path, annotations_suffix);
    if (!fs::exists(table))
      throw std::runtime_error("no annotation table " + table + " beside " + path +
                               " (--annotations-suffix " + annotations_suffix +
                               (annotations_suffix[0] == '_'
                                    ? "; the BIDS form without the last _part was tried too)"
                                    : ")"));
    eeg::add_annotation_file(recording, table);
  }
  return recording;
}

// ---- the synthetic set ----------------------------------------------------------------------

namespace {

// rec_000 ... as make_eeg names them: at least three digits.
std::string recording_name(int64_t index, int64_t count) {
  const int digits = std::max<int>(3, static_cast<int>(std::to_string(count - 1).size()));
  char name[32];
  std::snprintf(name, sizeof name, "rec_%0*lld", digits, static_cast<long long>(index));
  return name;
}

// True when `dir`/index.jsonl lists `count` recordings whose files all exist.
bool synthetic_set_complete(const std::string& dir, int64_t count) {
  std::ifstream index(dir + "/index.jsonl");
  if (!index) return false;
  int64_t lines = 0;
  for (std::string line; std::getline(index, line);)
    if (!line.empty()) ++lines;
  if (lines != count) return false;
  for (int64_t i = 0; i < count; ++i)
    if (!fs::exists(dir + "/" + recording_name(i, count) + ".edf")) return false;
  return true;
}

void write_synthetic_set(const SourceOptions& o, const std::string& dir, std::ostream& log) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error)
    throw std::runtime_error("cannot create the synthetic data cache " + dir + ": " +
                             error.message());
  eeg::SyntheticEegOptions base;
  base.duration_s = o.synthetic_minutes * 60;
  base.seizures = o.synthetic_seizures;
  eeg::check_synthetic_eeg_options(base);
  log << "generating " << o.synthetic_recordings << " synthetic recordings of "
      << o.synthetic_minutes << " min (seed " << o.synthetic_seed << ") into " << dir << "/\n";
  log.flush();
  const int64_t n = o.synthetic_recordings;
  std::vector<std::string> lines(static_cast<size_t>(n));
  std::atomic<int64_t> done{0};
  std::mutex log_mutex;
  cpu::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      eeg::SyntheticEegOptions options = base;
      options.seed = eeg::synthetic_recording_seed(static_cast<uint64_t>(o.synthetic_seed), i);
      const eeg::SyntheticEeg synthetic = eeg::generate_synthetic_eeg(options);
      const std::string name = recording_name(i, n);
      eeg::write_edf(dir + "/" + name + ".edf", synthetic.recording);
      write_file_atomic(dir + "/" + name + ".txt", synthetic.note + "\n");
      lines[i] = Json(Json::Object{{"recording", name},
                                   {"edf", name + ".edf"},
                                   {"seizures", static_cast<int64_t>(synthetic.seizures.size())},
                                   {"note", synthetic.note}})
                     .dump();
      const std::lock_guard<std::mutex> lock(log_mutex);
      const int64_t k = ++done;
      if (k % std::max<int64_t>(1, n / 4) == 0 || k == n) { // four lines or so
        log << "  " << k << "/" << n << " recordings written\n";
        log.flush();
      }
    }
  });
  std::string index;
  for (const std::string& line : lines) index += line + "\n";
  write_file_atomic(dir + "/index.jsonl", index); // last: marks the set complete
}

} // namespace

std::vector<std::string> recording_files(const SourceOptions& o, std::ostream& log) {
  std::string dir = o.data;
  if (dir.empty()) {
    if (o.synthetic_recordings < 3)
      throw std::invalid_argument("--synthetic-recordings must be >= 3 (train, val, test), got " +
                                  std::to_string(o.synthetic_recordings));
    if (!(o.synthetic_minutes > 0))
      throw std::invalid_argument("--synthetic-minutes must be positive");
    if (o.synthetic_seizures < -1)
      throw std::invalid_argument("--synthetic-seizures must be >= 0, or -1 for a random count");
    char name[160];
    std::snprintf(name, sizeof name, "synthetic-s%lld-n%lld-%gmin",
                  static_cast<long long>(o.synthetic_seed),
                  static_cast<long long>(o.synthetic_recordings), o.synthetic_minutes);
    dir = o.cache_dir + "/" + name;
    if (o.synthetic_seizures >= 0) dir += "-z" + std::to_string(o.synthetic_seizures);
    if (synthetic_set_complete(dir, o.synthetic_recordings))
      log << "synthetic recordings: " << dir << "/ (cached)\n";
    else
      write_synthetic_set(o, dir, log);
  }
  if (!fs::exists(dir)) throw std::runtime_error("--data " + dir + ": no such file or directory");
  std::vector<std::string> files;
  if (fs::is_directory(dir)) {
    for (const fs::directory_entry& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file() && is_eeg_file_name(entry.path().filename().string()))
        files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw std::runtime_error("--data " + dir + ": no .edf, .h5 or .hdf5 files in it");
  } else {
    files.push_back(dir);
  }
  if (files.size() < 3)
    throw std::runtime_error("--data " + dir + ": " + std::to_string(files.size()) +
                             " recording(s); splitting by recording into train, validation "
                             "and test needs at least 3");
  return files;
}

// ---- splitting ------------------------------------------------------------------------------

Split split_recordings(const std::vector<bool>& has_seizure, double val_fraction,
                       double test_fraction, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(has_seizure.size());
  if (n < 3)
    throw std::invalid_argument("split_recordings: need at least 3 recordings, got " +
                                std::to_string(n));
  if (!(val_fraction > 0 && test_fraction > 0 && val_fraction + test_fraction < 1))
    throw std::invalid_argument(
        "split_recordings: --val-fraction and --test-fraction must be "
        "positive with a sum below 1");
  // Two pools, each shuffled by Fisher-Yates with std::mt19937_64, whose output the C++
  // standard fixes, so a seed gives the same split on every platform.
  std::vector<int64_t> pools[2];
  for (int64_t i = 0; i < n; ++i) pools[has_seizure[i] ? 1 : 0].push_back(i);
  std::mt19937_64 rng(seed);
  Split split;
  for (std::vector<int64_t>& pool : pools) {
    for (int64_t i = static_cast<int64_t>(pool.size()) - 1; i > 0; --i) {
      const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
      std::swap(pool[i], pool[j]);
    }
    const int64_t m = static_cast<int64_t>(pool.size());
    // Rounded shares, but at least one each for val and test when the pool has >= 3.
    int64_t n_val = static_cast<int64_t>(std::lround(val_fraction * m));
    int64_t n_test = static_cast<int64_t>(std::lround(test_fraction * m));
    if (m >= 3) {
      n_val = std::max<int64_t>(n_val, 1);
      n_test = std::max<int64_t>(n_test, 1);
    }
    while (n_val + n_test >= m && (n_val > 0 || n_test > 0)) (n_val >= n_test ? n_val : n_test)--;
    for (int64_t k = 0; k < m; ++k)
      (k < n_test ? split.test : k < n_test + n_val ? split.val : split.train).push_back(pool[k]);
  }
  // With few recordings one pool may have given nothing to val or test: take from train,
  // a recording without seizures when there is one, so that train keeps its seizures.
  for (std::vector<int64_t>* part : {&split.val, &split.test})
    if (part->empty() && split.train.size() > 1) {
      auto pick = std::find_if(split.train.begin(), split.train.end(),
                               [&](int64_t i) { return !has_seizure[i]; });
      if (pick == split.train.end()) pick = split.train.end() - 1;
      part->push_back(*pick);
      split.train.erase(pick);
    }
  for (std::vector<int64_t>* part : {&split.train, &split.val, &split.test})
    std::sort(part->begin(), part->end());
  return split;
}

// ---- band powers ----------------------------------------------------------------------------

const double kBandEdgesHz[kBands + 1] = {0.5, 4, 8, 13, 30, 70};

Tensor band_power_features(const Tensor& clips_in, double rate_hz) {
  if (clips_in.dim() != 3)
    throw std::invalid_argument("band_power_features: clips must be (n, channels, samples), got " +
                                shape_str(clips_in.shape()));
  const Tensor clips = clips_in.to(Device::cpu()).to(DType::Float64).contiguous();
  const int64_t n = clips.size(0), channels = clips.size(1), samples = clips.size(2);
  Tensor features = Tensor::empty({n, channels * kBands}, DType::Float32);
  const double* x = clips.data<double>();
  float* out = features.data<float>();
  const auto plan = s4::FftPlan<double>::get(samples);
  cpu::parallel_for(0, n * channels, 8, [&](int64_t begin, int64_t end) {
    std::vector<std::complex<double>> spectrum(static_cast<size_t>(samples));
    for (int64_t row = begin; row < end; ++row) {
      const double* signal = x + row * samples;
      for (int64_t t = 0; t < samples; ++t) spectrum[t] = signal[t];
      plan->execute(spectrum.data(), /*inverse=*/false);
      // Bin f (0 <= f <= samples / 2) is the frequency f * rate / samples.
      for (int band = 0; band < kBands; ++band) {
        double power = 0;
        int64_t bins = 0;
        for (int64_t f = 1; f <= samples / 2; ++f) {
          const double hz = static_cast<double>(f) * rate_hz / static_cast<double>(samples);
          if (hz < kBandEdgesHz[band] || hz >= kBandEdgesHz[band + 1]) continue;
          power += std::norm(spectrum[f]) / static_cast<double>(samples);
          ++bins;
        }
        out[row * kBands + band] =
            static_cast<float>(std::log((bins ? power / static_cast<double>(bins) : 0.0) + 1e-6));
      }
    }
  });
  return features;
}

// ---- the detectors --------------------------------------------------------------------------

void ModelOptions::validate() const {
  if (kind != "mamba" && kind != "s4" && kind != "baseline")
    throw std::invalid_argument("--model must be mamba, s4 or baseline, got '" + kind + "'");
  if (channels < 1 || samples < 1)
    throw std::invalid_argument("a clip needs at least one channel and one sample");
  if (kind == "baseline") return;
  if (patch < 1 || samples % patch != 0)
    throw std::invalid_argument("--patch must divide the samples per clip (" +
                                std::to_string(samples) + "), got " + std::to_string(patch));
  if (d_model < 1 || n_layer < 1 || d_state < 1 || expand < 1 || d_conv < 1)
    throw std::invalid_argument(
        "--d-model, --layers, --d-state, --expand and --d-conv must be positive");
  if (!(dropout >= 0 && dropout < 1)) throw std::invalid_argument("--dropout must be in [0, 1)");
  if (kind == "s4") s4::parse_s4_kernel(s4_kernel); // throws on an unknown name
}

Tensor patchify(const Tensor& clips, int64_t patch) {
  const int64_t b = clips.size(0), c = clips.size(1), t = clips.size(2);
  if (t % patch != 0)
    throw std::invalid_argument("patchify: " + std::to_string(t) + " samples per clip are not " +
                                "a multiple of the patch size " + std::to_string(patch));
  const int64_t tokens = t / patch;
  return clips
      .reshape({b, c, tokens, patch}) // (b, C, L, P)
      .permute({0, 2, 1, 3})          // (b, L, C, P)
      .contiguous()
      .reshape({b, tokens, c * patch}); // (b, L, C P)
}

namespace {

MambaConfig mamba_config(const ModelOptions& o) {
  MambaConfig c =
      MambaConfig::make(/*vocab_size=*/1, o.d_model, o.n_layer, o.d_state, o.expand, o.d_conv);
  c.validate();
  return c;
}

s4::S4Config s4_config(const ModelOptions& o) {
  s4::S4Config c;
  c.d_model = o.d_model;
  c.d_state = o.d_state;
  c.kernel = s4::parse_s4_kernel(o.s4_kernel);
  c.dropout = o.dropout;
  return c;
}

// (b, L, d) -> (b): the largest value over time of each feature, then the head.
Var pool_and_score(const Var& hidden, const nn::Linear& head) {
  const Var pooled = max(hidden, {1});     // (b, d)
  return squeeze(head.forward(pooled), 1); // (b)
}

} // namespace

MambaDetector::MambaDetector(const ModelOptions& o, nn::Init init)
    : patch(o.patch),
      patch_embed(o.channels * o.patch, o.d_model, true, init),
      norm_f(o.d_model, 1e-5, init),
      head(o.d_model, 1, true, init) {
  o.validate();
  const MambaConfig config = mamba_config(o);
  register_module("patch_embed", patch_embed);
  for (int64_t i = 0; i < o.n_layer; ++i) {
    layers.push_back(std::make_unique<MambaLayer>(config, init));
    register_module("layers." + std::to_string(i), *layers.back());
  }
  register_module("norm_f", norm_f);
  register_module("head", head);
}

Var MambaDetector::forward(const Tensor& clips) const {
  Var hidden = patch_embed.forward(Var(patchify(clips, patch)));    // (b, L, d_model)
  for (const auto& layer : layers) hidden = layer->forward(hidden); // (b, L, d_model)
  return pool_and_score(norm_f.forward(hidden), head);              // (b)
}

S4Detector::S4Detector(const ModelOptions& o, nn::Init init)
    : patch(o.patch),
      patch_embed(o.channels * o.patch, o.d_model, true, init),
      norm_f(Shape{o.d_model}, 1e-5, true, init),
      head(o.d_model, 1, true, init) {
  o.validate();
  const s4::S4Config config = s4_config(o);
  register_module("patch_embed", patch_embed);
  for (int64_t i = 0; i < o.n_layer; ++i) {
    layers.push_back(std::make_unique<s4::S4Block>(config, init));
    register_module("layers." + std::to_string(i), *layers.back());
  }
  register_module("norm_f", norm_f);
  register_module("head", head);
}

Var S4Detector::forward(const Tensor& clips) const {
  Var hidden = patch_embed.forward(Var(patchify(clips, patch)));    // (b, L, d_model)
  for (const auto& layer : layers) hidden = layer->forward(hidden); // (b, L, d_model)
  return pool_and_score(norm_f.forward(hidden), head);              // (b)
}

BandPowerBaseline::BandPowerBaseline(const ModelOptions& o, nn::Init init)
    : rate_hz(o.rate_hz), linear(o.channels * kBands, 1, true, init) {
  o.validate();
  register_module("linear", linear);
}

Var BandPowerBaseline::forward(const Tensor& clips) const {
  const Device device = linear.weight.device();
  const Tensor features = band_power_features(clips, rate_hz).to(device); // (b, C kBands)
  return squeeze(linear.forward(Var(features)), 1);                       // (b)
}

std::unique_ptr<Detector> make_detector(const ModelOptions& o, nn::Init init) {
  o.validate();
  if (o.kind == "mamba") return std::make_unique<MambaDetector>(o, init);
  if (o.kind == "s4") return std::make_unique<S4Detector>(o, init);
  return std::make_unique<BandPowerBaseline>(o, init);
}

std::vector<std::string> attach_detector_lora(Detector& model, const nn::LoraOptions& options) {
  std::vector<std::string> adapted;
  if (auto* m = dynamic_cast<MambaDetector*>(&model)) {
    nn::attach_lora(m->patch_embed, options);
    adapted.push_back("patch_embed");
    for (size_t i = 0; i < m->layers.size(); ++i) {
      MambaMixer& mixer = m->layers[i]->mixer;
      const std::string prefix = "layers." + std::to_string(i) + ".mixer.";
      for (auto [name, linear] : {std::pair<const char*, nn::Linear*>{"in_proj", &mixer.in_proj},
                                  {"x_proj", &mixer.x_proj},
                                  {"dt_proj", &mixer.dt_proj},
                                  {"out_proj", &mixer.out_proj}}) {
        nn::attach_lora(*linear, options);
        adapted.push_back(prefix + name);
      }
      nn::attach_lora(mixer.conv1d, options);
      adapted.push_back(prefix + "conv1d");
    }
  } else if (auto* s4 = dynamic_cast<S4Detector*>(&model)) {
    nn::attach_lora(s4->patch_embed, options);
    adapted.push_back("patch_embed");
    for (size_t i = 0; i < s4->layers.size(); ++i) {
      nn::attach_lora(s4->layers[i]->layer.output, options);
      adapted.push_back("layers." + std::to_string(i) + ".layer.output");
    }
  } else {
    throw std::invalid_argument(
        "LoRA adaptation needs a mamba or s4 detector; the baseline has "
        "96 numbers: train it again on the new recordings instead");
  }
  // Everything but the adapters and the head is frozen.
  for (auto& [name, p] : model.named_parameters())
    if (name.find(".lora_") == std::string::npos && name.rfind("head.", 0) != 0)
      p.set_requires_grad(false);
  return adapted;
}

Var weighted_bce_with_logits(const Var& logits, const Tensor& labels, double pos_weight) {
  if (!(pos_weight > 0))
    throw std::invalid_argument("weighted_bce_with_logits: pos_weight must be positive");
  const Tensor y = labels.to(logits.dtype()).to(logits.device());           // (b) of 0 and 1
  const Var positive = mul(softplus(neg(logits)), Var(mul(y, pos_weight))); // w+ y softplus(-x)
  const Var negative = mul(softplus(logits), Var(add(mul(y, -1.0), 1.0)));  // (1-y) softplus(x)
  return mean(add(positive, negative));
}

} // namespace ssm::eegtask
