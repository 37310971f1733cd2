// train_eeg.cpp: seizure detection on EEG clips with a Mamba, an S4 or a band-power baseline.
//
//   make run                                  # = build/train_eeg with the defaults below
//   build/train_eeg --model s4                # the same task with S4 blocks
//   build/train_eeg --model baseline          # logistic regression on band powers
//   build/train_eeg --data /path/to/edfs      # your own EDF+ (or HDF5) recordings
//   build/train_eeg --resume                  # continue an interrupted run in --out
//   build/train_eeg --help
//
// What it does, in order (train/eeg_task.h has the pipeline and the models in detail):
//  1. Recordings. By default 192 synthetic 10-minute recordings, 32 hours in all
//     (data/synthetic_eeg.h: 19 channels, seizures with focal onset, evolution and spread,
//     rhythmic artifacts that resemble them), written as EDF+ into --cache on first use and
//     read back from there like any user's files. Otherwise every .edf/.h5/.hdf5 file of --data.
//  2. Split by recording, never by clip: the clips of one recording land in one of train,
//     validation or test (split_recordings: recordings with and without seizures are dealt
//     out separately, so each part gets seizures).
//  3. Preprocessing (data/eeg_preprocess.h): 19 referential 10-20 channels, 200 Hz, 0.5-70 Hz
//     zero-phase band-pass, 50 and 60 Hz notches, z-score per channel and recording; clips of
//     12 s labelled seizure when they overlap a seizure annotation by >= 1 s. Training clips
//     start every --train-stride-s seconds (6: overlapping, twice the examples); validation
//     and test clips tile each recording (stride = clip length), so they also give the
//     whole-recording probability trace that event-level scoring needs.
//  4. Class imbalance: seizure clips are rare (about 1 in 10 here). The loss weights them by
//     pos_weight = (non-seizure clips) / (seizure clips) of the training set, so both classes
//     carry equal total weight; the run prints the counts and the weight.
//  5. Training: AdamW (no weight decay on biases, norms and the SSM parameters A_log, D, dt,
//     A), linear warmup then cosine decay, gradient clipping; one validation pass per epoch.
//     The weights with the best validation AUROC are kept as the result.
//  6. Evaluation with those weights. The decision threshold is chosen on validation (max
//     Youden's J = sensitivity + specificity - 1) and applied unchanged to test. Clip level:
//     AUROC, AUPRC (average precision), sensitivity and specificity at the threshold. Event
//     level, on whole recordings: runs of >= --min-consecutive positive clips are merged into
//     detected events; a seizure counts as detected when an event overlaps it (OVLP scoring),
//     an event that overlaps no seizure is a false alarm (train/eeg_metrics.h).
//
// Output in --out (default runs/eeg-<model>):
//   model.safetensors, config.json   the best weights; the model, preprocessing and threshold
//   metrics.jsonl                    one line per step ({"step","epoch","loss","lr",
//                                    "grad_norm"}) and per epoch ({"epoch","val_loss",
//                                    "val_auroc","val_auprc","epoch_s"})
//   results.json                     every final figure, validation and test
//   test_predictions.csv             recording, clip start, label, probability
//   loss.svg, roc.svg, trace.svg     loss curves; ROC curves; one test recording's EEG with
//                                    the probability under it and the true seizure shaded
//   checkpoint/                      model.safetensors, optimizer.safetensors (AdamW m and v),
//                                    best.safetensors, state.json: written at the end of every
//                                    epoch, atomically (into checkpoint.tmp/, then renamed);
//                                    model.safetensors above is copied from best.safetensors
//
// Exact resume: --resume loads checkpoint/ and continues with the next epoch. Everything that
// decides the rest of the run is in it or derived from the seed: the weights, AdamW's moments
// and step count, the epoch (the order of the clips in epoch e is drawn from seed and e alone),
// the best-so-far. So a run stopped after any epoch and resumed ends with the same bits as one
// that never stopped (on the CPU; tests/test_train_eeg.cpp checks it). The settings must match
// the checkpoint's; a difference is an error naming the setting.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "autograd/functions.h"
#include "autograd/optim.h"
#include "data/atomic_file.h"
#include "data/checkpoint.h"
#include "data/json.h"
#include "data/safetensors.h"
#include "train/eeg_metrics.h"
#include "train/eeg_task.h"
#include "train/flags.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/progress.h"

using namespace ssm;
namespace fs = std::filesystem;

namespace {

// ---- settings -------------------------------------------------------------------------------

struct Settings {
  eegtask::SourceOptions source;
  eegtask::ModelOptions model;
  double clip_s = 12, train_stride_s = 6, min_overlap_s = 1, rate_hz = 200;
  double val_fraction = 0.15, test_fraction = 0.15;
  int64_t epochs = 5, batch = 32, eval_batch = 64, seed = 0, min_consecutive = 1;
  std::string adapt_from; // a train_eeg --out folder whose detector is adapted with LoRA
  int64_t lora_r = 8;
  double lora_alpha = 16;
  double lr = 2e-3, weight_decay = 0.1, warmup = 0.05, clip = 1.0;

  // What decides the run's numbers: compared with a checkpoint's before resuming.
  Json to_json() const {
    return Json(Json::Object{{"data", source.data.empty() ? std::string("synthetic") : source.data},
                             {"synthetic_recordings", source.synthetic_recordings},
                             {"synthetic_minutes", source.synthetic_minutes},
                             {"synthetic_seed", source.synthetic_seed},
                             {"synthetic_seizures", source.synthetic_seizures},
                             {"hdf5_dataset", source.hdf5.dataset},
                             {"hdf5_channels_first", source.hdf5.channels_first},
                             {"hdf5_rate_hz", source.hdf5.rate_hz},
                             {"hdf5_labels", source.hdf5.labels_dataset},
                             {"annotations_suffix", source.annotations_suffix},
                             {"model", model.kind},
                             {"patch", model.patch},
                             {"d_model", model.d_model},
                             {"layers", model.n_layer},
                             {"d_state", model.d_state},
                             {"expand", model.expand},
                             {"d_conv", model.d_conv},
                             {"s4_kernel", model.s4_kernel},
                             {"dropout", model.dropout},
                             {"clip_s", clip_s},
                             {"train_stride_s", train_stride_s},
                             {"min_overlap_s", min_overlap_s},
                             {"rate_hz", rate_hz},
                             {"val_fraction", val_fraction},
                             {"test_fraction", test_fraction},
                             {"epochs", epochs},
                             {"batch", batch},
                             {"seed", seed},
                             {"lr", lr},
                             {"weight_decay", weight_decay},
                             {"warmup", warmup},
                             {"clip", clip},
                             {"adapt_from", adapt_from},
                             {"lora_r", lora_r},
                             {"lora_alpha", lora_alpha}});
  }
};

// ---- the data -------------------------------------------------------------------------------

struct RecordingInfo {
  std::string path, name;
  double duration_s = 0;
  std::vector<eeg::Interval> seizures; // from the annotations
};

// Clips of several recordings, stacked.
struct ClipSet {
  Tensor data;                    // (clips, channels, samples) float32, CPU
  std::vector<int> labels;        // (clips) 1 seizure, 0 not
  std::vector<int64_t> recording; // (clips) index into the RecordingInfo list
  std::vector<double> start_s;    // (clips)
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t positives() const {
    int64_t n = 0;
    for (int y : labels) n += y;
    return n;
  }
};

eeg::PreprocessOptions preprocess_options(const Settings& s, double stride_s) {
  eeg::PreprocessOptions o;
  o.rate_hz = s.rate_hz;
  o.clips.clip_s = s.clip_s;
  o.clips.stride_s = stride_s;
  o.clips.min_seizure_overlap_s = s.min_overlap_s;
  return o;
}

std::string stem(const std::string& path) { return fs::path(path).stem().string(); }

// Pass 1: each file's annotations and length, so the split can be made before clips are cut.
// A recording shorter than one clip is left out, with a note.
std::vector<RecordingInfo> read_infos(const std::vector<std::string>& files, const Settings& s) {
  std::vector<RecordingInfo> infos;
  const eeg::ClipOptions clip_options = preprocess_options(s, s.clip_s).clips;
  for (const std::string& path : files) {
    eeg::Recording recording;
    try {
      recording = eegtask::read_recording(path, s.source.hdf5, s.source.annotations_suffix);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
    if (recording.duration_s < s.clip_s) {
      std::printf("note: leaving out %s: %.1f s long, shorter than one %g s clip\n", path.c_str(),
                  recording.duration_s, s.clip_s);
      continue;
    }
    RecordingInfo info{path, stem(path), recording.duration_s, {}};
    for (const auto& [start, end] : eeg::seizure_intervals(recording, clip_options)) {
      if (start >= recording.duration_s) {
        std::printf(
            "note: %s: a seizure annotated at %.1f s starts after the recording's end "
            "(%.1f s) and labels nothing: is its table in seconds?\n",
            path.c_str(), start, recording.duration_s);
        continue;
      }
      info.seizures.push_back({start, end});
    }
    infos.push_back(std::move(info));
  }
  return infos;
}

// Pass 2: the clips of the listed recordings, at `stride_s`.
ClipSet load_clips(const std::vector<RecordingInfo>& infos, const std::vector<int64_t>& which,
                   const Settings& s, double stride_s) {
  ClipSet set;
  std::vector<Tensor> pieces;
  const eeg::PreprocessOptions options = preprocess_options(s, stride_s);
  for (int64_t index : which) {
    const RecordingInfo& info = infos[index];
    eeg::Clips clips;
    try {
      clips = eeg::preprocess(
          eegtask::read_recording(info.path, s.source.hdf5, s.source.annotations_suffix), options);
    } catch (const std::exception& e) {
      throw std::runtime_error(info.path + ": " + e.what());
    }
    if (!pieces.empty() && clips.data.size(1) != pieces.front().size(1))
      throw std::runtime_error(info.path + ": " + std::to_string(clips.data.size(1)) +
                               " channels after preprocessing, the others have " +
                               std::to_string(pieces.front().size(1)));
    pieces.push_back(clips.data);
    for (int64_t i = 0; i < clips.size(); ++i) {
      set.labels.push_back(static_cast<int>(clips.labels[i]));
      set.recording.push_back(index);
      set.start_s.push_back(clips.start_s[i]);
    }
  }
  set.data = concat(pieces, 0); // which is never empty: split_recordings gives every part one

  return set;
}

// Rows `index` of the set as a batch on `device`: clips (b, channels, samples), labels (b).
std::pair<Tensor, Tensor> gather(const ClipSet& set, const std::vector<int64_t>& index,
                                 Device device) {
  const Tensor rows = Tensor::from_vector(index, {static_cast<int64_t>(index.size())});
  std::vector<float> labels;
  for (int64_t i : index) labels.push_back(static_cast<float>(set.labels[i]));
  return {index_select(set.data, 0, rows).to(device),
          Tensor::from_vector(labels, {static_cast<int64_t>(labels.size())}).to(device)};
}

// Seizure probability of every clip of the set, in order.
std::vector<double> predict(const eegtask::Detector& model, const ClipSet& set, int64_t batch,
                            Device device) {
  NoGradGuard no_grad;
  std::vector<double> probability;
  for (int64_t begin = 0; begin < set.size(); begin += batch) {
    std::vector<int64_t> index;
    for (int64_t i = begin; i < std::min(set.size(), begin + batch); ++i) index.push_back(i);
    const Tensor logits = model.forward(gather(set, index, device).first).value();
    const Tensor p = sigmoid(logits).to(Device::cpu()).to(DType::Float64);
    for (int64_t i = 0; i < p.numel(); ++i) probability.push_back(p.data<double>()[i]);
  }
  return probability;
}

// The weighted BCE of probabilities (the training loss, for validation curves).
double weighted_bce(const std::vector<double>& p, const std::vector<int>& y, double pos_weight) {
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double q = std::clamp(p[i], 1e-12, 1 - 1e-12);
    total += y[i] ? -pos_weight * std::log(q) : -std::log(1 - q);
  }
  return p.empty() ? 0 : total / static_cast<double>(p.size());
}

// ---- evaluation -----------------------------------------------------------------------------

struct Evaluation {
  double auroc = 0, auprc = 0;
  eeg::ThresholdMetrics at_threshold;
  eeg::EventMetrics events;
  int64_t clips = 0, positives = 0, recordings = 0;
};

std::vector<eeg::RecordingScores> recording_scores(const ClipSet& set,
                                                   const std::vector<double>& probability,
                                                   const std::vector<RecordingInfo>& infos,
                                                   double clip_s) {
  std::vector<eeg::RecordingScores> out;
  for (int64_t i = 0; i < set.size(); ++i) {
    if (i == 0 || set.recording[i] != set.recording[i - 1]) {
      const RecordingInfo& info = infos[set.recording[i]];
      out.push_back({{}, {}, clip_s, info.duration_s, info.seizures});
    }
    out.back().clip_start_s.push_back(set.start_s[i]);
    out.back().probability.push_back(probability[i]);
  }
  return out;
}

Evaluation evaluate(const ClipSet& set, const std::vector<double>& probability,
                    const std::vector<RecordingInfo>& infos, const Settings& s, double threshold) {
  Evaluation e;
  e.clips = set.size();
  e.positives = set.positives();
  const bool both_classes = e.positives > 0 && e.positives < e.clips;
  e.auroc = both_classes ? eeg::auroc(probability, set.labels) : NAN;
  e.auprc = e.positives > 0 ? eeg::average_precision(probability, set.labels) : NAN;
  e.at_threshold = eeg::metrics_at_threshold(probability, set.labels, threshold);
  const auto scores = recording_scores(set, probability, infos, s.clip_s);
  e.recordings = static_cast<int64_t>(scores.size());
  e.events = eeg::event_metrics(scores, {threshold, s.min_consecutive});
  return e;
}

Json evaluation_json(const Evaluation& e) {
  using train::finite_or_null; // NaN (a ratio over an empty class) becomes null
  return Json(
      Json::Object{{"clips", e.clips},
                   {"seizure_clips", e.positives},
                   {"recordings", e.recordings},
                   {"auroc", finite_or_null(e.auroc)},
                   {"auprc", finite_or_null(e.auprc)},
                   {"threshold", e.at_threshold.threshold},
                   {"sensitivity", finite_or_null(e.at_threshold.sensitivity)},
                   {"specificity", finite_or_null(e.at_threshold.specificity)},
                   {"tp", e.at_threshold.tp},
                   {"fp", e.at_threshold.fp},
                   {"tn", e.at_threshold.tn},
                   {"fn", e.at_threshold.fn},
                   {"seizures", e.events.seizures},
                   {"detected_seizures", e.events.detected_seizures},
                   {"event_sensitivity", finite_or_null(e.events.sensitivity)},
                   {"false_alarms", e.events.false_alarms},
                   {"hours", e.events.hours},
                   {"false_alarms_per_hour", finite_or_null(e.events.false_alarms_per_hour)}});
}

// ---- checkpoints ----------------------------------------------------------------------------

struct RunState {
  int64_t epochs_done = 0, step = 0, best_epoch = -1;
  double best_val_auroc = -1;
  std::vector<double> train_loss;                     // per step
  std::vector<double> val_loss, val_auroc, val_auprc; // per epoch
};

Json doubles(const std::vector<double>& values) {
  Json array = Json::array();
  for (double v : values) array.push_back(train::finite_or_null(v));
  return array;
}

std::vector<double> doubles_of(const Json& json, const std::string& key) {
  std::vector<double> out;
  for (const Json& v : json.at(key).as_array()) out.push_back(v.is_null() ? NAN : v.as_double());
  return out;
}

// checkpoint.tmp/ is written completely, then takes checkpoint/'s place; a crash at any moment
// leaves checkpoint/ or checkpoint.old/ whole. The best weights so far travel inside it
// (best.safetensors: the model when `is_best`, else the previous checkpoint's copy), and only
// then are copied to out/model.safetensors, so the two never disagree after a crash.
void save_checkpoint(const std::string& out, const eegtask::Detector& model,
                     const optim::AdamW& optimizer, const RunState& state, const Settings& settings,
                     bool is_best) {
  const std::string tmp = out + "/checkpoint.tmp", dir = out + "/checkpoint",
                    old = out + "/checkpoint.old";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_module(model, tmp + "/model.safetensors");
  if (is_best)
    save_module(model, tmp + "/best.safetensors");
  else
    fs::copy_file(dir + "/best.safetensors", tmp + "/best.safetensors");
  std::vector<NamedTensor> moments;
  for (const auto& [name, tensor] : optimizer.state_tensors()) moments.push_back({name, tensor});
  save_safetensors(tmp + "/optimizer.safetensors", moments,
                   {{"steps_taken", std::to_string(optimizer.steps_taken())}});
  const Json json(Json::Object{{"epochs_done", state.epochs_done},
                               {"step", state.step},
                               {"best_epoch", state.best_epoch},
                               {"best_val_auroc", state.best_val_auroc},
                               {"settings", settings.to_json()},
                               {"train_loss", doubles(state.train_loss)},
                               {"val_loss", doubles(state.val_loss)},
                               {"val_auroc", doubles(state.val_auroc)},
                               {"val_auprc", doubles(state.val_auprc)}});
  write_file_atomic(tmp + "/state.json", json.dump(1) + "\n");
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
  write_file_atomic(out + "/model.safetensors", read_file(dir + "/best.safetensors"));
}

RunState load_checkpoint(const std::string& out, eegtask::Detector& model, optim::AdamW& optimizer,
                         const Settings& settings) {
  std::string dir = out + "/checkpoint";
  if (!fs::exists(dir + "/state.json") && fs::exists(out + "/checkpoint.old/state.json"))
    dir = out + "/checkpoint.old"; // stopped between the two renames
  if (!fs::exists(dir + "/state.json"))
    throw train::UsageError("--resume: no checkpoint in " + out + " (expected " + dir +
                            "/state.json)");
  const Json json = load_json_file(dir + "/state.json");
  const Json saved = json.at("settings"), now = settings.to_json();
  for (const auto& [key, value] : now.as_object()) {
    const Json* before = saved.find(key);
    if (!before || *before != value)
      throw train::UsageError("--resume: setting '" + key + "' is " + value.dump() + " now but " +
                              (before ? before->dump() : "absent") + " in the checkpoint " + dir +
                              "; resume with the same flags");
  }
  load_module(model, dir + "/model.safetensors");
  const SafetensorsFile moments = load_safetensors(dir + "/optimizer.safetensors");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const SafetensorsTensor& t : moments.tensors) tensors.emplace_back(t.name, t.tensor);
  optimizer.load_state_tensors(tensors, std::stoll(moments.metadata.at("steps_taken")));
  RunState state;
  state.epochs_done = json.get_int("epochs_done");
  state.step = json.get_int("step");
  state.best_epoch = json.get_int("best_epoch");
  state.best_val_auroc = json.get_double("best_val_auroc");
  state.train_loss = doubles_of(json, "train_loss");
  state.val_loss = doubles_of(json, "val_loss");
  state.val_auroc = doubles_of(json, "val_auroc");
  state.val_auprc = doubles_of(json, "val_auprc");
  return state;
}

// A resumed run keeps the lines logged up to the checkpoint and drops any logged after it
// (by a run stopped in the middle of an epoch).
void truncate_metrics_log(const std::string& path, int64_t epochs_done, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    Json record;
    try {
      record = Json::parse(line, path);
    } catch (const std::exception&) {
      if (i + 1 == lines.size()) break; // cut short by the stop: dropped
      throw;
    }
    const bool is_epoch_line = !record.contains("step");
    if (is_epoch_line ? record.get_int("epoch") <= epochs_done : record.get_int("step") <= step)
      kept += line + "\n";
  }
  in.close();
  write_file_atomic(path, kept);
}

// ---- plots ----------------------------------------------------------------------------------

void write_plots(const std::string& out, const Settings& s, const RunState& state,
                 int64_t steps_per_epoch,
                 const std::vector<std::pair<std::string, std::vector<eeg::RocPoint>>>& rocs) {
  // Training loss per step (a running mean over an epoch's tenth, for readability) and the
  // validation loss at each epoch's end, on the same step axis.
  train::Series train_curve{"training loss (running mean)", {}, {}};
  const int64_t window = std::max<int64_t>(1, steps_per_epoch / 10);
  double running = 0;
  for (size_t i = 0; i < state.train_loss.size(); ++i) {
    running += state.train_loss[i];
    if (i >= static_cast<size_t>(window)) running -= state.train_loss[i - window];
    const double count = static_cast<double>(std::min<size_t>(i + 1, window));
    train_curve.x.push_back(static_cast<double>(i + 1));
    train_curve.y.push_back(running / count);
  }
  train::Series val_curve{"validation loss", {}, {}};
  for (size_t e = 0; e < state.val_loss.size(); ++e) {
    val_curve.x.push_back(static_cast<double>((e + 1) * steps_per_epoch));
    val_curve.y.push_back(state.val_loss[e]);
  }
  train::write_line_plot(out + "/loss.svg", {train_curve, val_curve},
                         {"train_eeg (" + s.model.kind + "): weighted BCE", "step", "loss"});
  std::vector<train::Series> roc_series;
  for (const auto& [name, points] : rocs) {
    train::Series series{name, {}, {}};
    for (const eeg::RocPoint& p : points) {
      series.x.push_back(p.fpr);
      series.y.push_back(p.tpr);
    }
    roc_series.push_back(series);
  }
  roc_series.push_back({"chance", {0, 1}, {0, 1}});
  train::write_line_plot(out + "/roc.svg", roc_series,
                         {"ROC, clip level (" + s.model.kind + ")", "false positive rate",
                          "true positive rate", false, 520, 480});
}

// One test recording with a seizure: its EEG around the first seizure (60 s either side), the
// model's probability per clip under it, the annotated seizure shaded.
void write_trace(const std::string& path, const RecordingInfo& info, const ClipSet& set,
                 const std::vector<double>& probability, int64_t recording_index, double threshold,
                 const Settings& s) {
  eeg::PreprocessOptions options = preprocess_options(s, s.clip_s);
  const eeg::Recording r = eeg::preprocess_recording(
      eegtask::read_recording(info.path, s.source.hdf5, s.source.annotations_suffix), options);
  const eeg::Interval seizure = info.seizures.front();
  const double rate = r.channels.front().rate_hz;
  const double from = std::clamp(seizure.start_s - 60, 0.0, r.duration_s);
  const double to = std::clamp(seizure.end_s + 60, from, r.duration_s);
  train::TracePlot plot;
  char title[256];
  std::snprintf(title, sizeof title,
                "%s (test): preprocessed EEG and the %s model's seizure probability per %g s clip",
                info.name.c_str(), s.model.kind.c_str(), s.clip_s);
  plot.title = title;
  plot.start_s = from;
  plot.rate_hz = rate;
  for (const eeg::Channel& c : r.channels) {
    const size_t a = std::min(static_cast<size_t>(from * rate), c.samples.size());
    const size_t b = std::max(a, static_cast<size_t>(to * rate));
    plot.names.push_back(c.label);
    plot.traces.emplace_back(
        c.samples.begin() + static_cast<std::ptrdiff_t>(a),
        c.samples.begin() + static_cast<std::ptrdiff_t>(std::min(b, c.samples.size())));
  }
  plot.trace_scale = 8; // z-scored channels: +-8 standard deviations fill a trace's band
  for (int64_t i = 0; i < set.size(); ++i) {
    if (set.recording[i] != recording_index) continue;
    plot.curve_x.push_back(set.start_s[i]);
    plot.curve_y.push_back(probability[i]);
    plot.curve_x.push_back(set.start_s[i] + s.clip_s);
    plot.curve_y.push_back(probability[i]);
  }
  plot.threshold = threshold;
  for (const eeg::Interval& iv : info.seizures) plot.marked.push_back({iv.start_s, iv.end_s});
  train::write_trace_plot(path, plot);
}

// ---- adapting a trained detector -------------------------------------------------------------

// --adapt-from DIR: the detector of DIR (its config.json must describe the same model and
// clips), its best weights loaded, then LoRA attached (train/eeg_task.h).
void adapt_detector(eegtask::Detector& model, const Settings& s, Generator& gen) {
  const std::string config_path = s.adapt_from + "/config.json";
  const Json config = load_json_file(config_path);
  const Json now = s.to_json();
  for (const char* key : {"model", "patch", "d_model", "layers", "d_state", "expand", "d_conv",
                          "s4_kernel", "clip_s", "rate_hz"}) {
    const Json* before = config.find(key);
    if (!before || *before != now.at(key))
      throw train::UsageError("--adapt-from " + s.adapt_from + ": its detector has " + key + " = " +
                              (before ? before->dump() : "nothing") + ", this run " +
                              now.at(key).dump() + "; give the same model flags");
  }
  load_module(model, s.adapt_from + "/model.safetensors");
  nn::LoraOptions options;
  options.r = s.lora_r;
  options.alpha = s.lora_alpha;
  options.gen = &gen;
  const std::vector<std::string> adapted = eegtask::attach_detector_lora(model, options);
  int64_t trainable = 0, total = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  std::printf(
      "adapting %s/model.safetensors with LoRA (r %lld, alpha %g) on %zu layers: %lld of "
      "%lld parameters train (the adapters and the head)\n",
      s.adapt_from.c_str(), static_cast<long long>(s.lora_r), s.lora_alpha, adapted.size(),
      static_cast<long long>(trainable), static_cast<long long>(total));
}

// ---- main -----------------------------------------------------------------------------------

std::string format_metric(double v, const char* format = "%.3f") {
  if (!std::isfinite(v)) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, format, v);
  return text;
}

int run(int argc, char** argv) {
  Settings s;
  std::string out, device = cuda_available() ? "cuda" : "cpu";
  bool resume = false, hdf5_channels_last = false;
  int64_t stop_after = 0;
  train::Flags flags(
      "train_eeg",
      "Trains a seizure detector on 12-second EEG clips: --model mamba (default), s4, or "
      "baseline (logistic regression on band powers). Data: a folder of EDF/EDF+ or HDF5 "
      "recordings (--data), or by default synthetic recordings generated into --cache on first "
      "use. Splits by recording, weights the rare seizure clips, reports clip-level AUROC, "
      "AUPRC, sensitivity and specificity and event-level sensitivity and false alarms per "
      "hour on validation and test, and writes checkpoints, metrics.jsonl and SVG plots to "
      "--out.");
  flags.add("model", &s.model.kind, "mamba, s4 or baseline");
  flags.add("data", &s.source.data,
            "a folder of .edf/.h5/.hdf5 recordings; empty: synthetic recordings in --cache");
  flags.add("cache", &s.source.cache_dir, "folder for the generated synthetic recordings");
  flags.add("synthetic-recordings", &s.source.synthetic_recordings,
            "number of synthetic recordings (when --data is empty)");
  flags.add("synthetic-minutes", &s.source.synthetic_minutes, "length of each, in minutes");
  flags.add("synthetic-seed", &s.source.synthetic_seed, "seed of the synthetic set");
  flags.add("synthetic-seizures", &s.source.synthetic_seizures,
            "seizures per synthetic recording; -1: a random number, 6 an hour on average");
  flags.add("hdf5-dataset", &s.source.hdf5.dataset, "HDF5: path of the 2-D samples dataset");
  flags.add("hdf5-channels-last", &hdf5_channels_last,
            "HDF5: the dataset is (samples, channels) instead of (channels, samples)");
  flags.add("hdf5-rate", &s.source.hdf5.rate_hz,
            "HDF5: sampling rate in Hz when the file has no rate attribute (0: required there)");
  flags.add("hdf5-labels", &s.source.hdf5.labels_dataset,
            "HDF5: optional 1-D dataset of per-sample 0/1 seizure labels");
  flags.add("annotations-suffix", &s.source.annotations_suffix,
            "read each recording's events also from the table beside it with this suffix in "
            "place of its extension, e.g. .csv_bi (TUH) or _events.tsv (BIDS); see "
            "data/annotations.h");
  flags.add("rate", &s.rate_hz, "sampling rate after resampling, Hz");
  flags.add("clip-s", &s.clip_s, "clip length in seconds");
  flags.add("train-stride-s", &s.train_stride_s, "seconds between training clip starts");
  flags.add("min-overlap-s", &s.min_overlap_s,
            "seizure seconds a clip must contain to be labelled a seizure clip");
  flags.add("val-fraction", &s.val_fraction, "fraction of recordings for validation");
  flags.add("test-fraction", &s.test_fraction, "fraction of recordings for test");
  flags.add("patch", &s.model.patch, "samples per token (mamba, s4); must divide a clip");
  flags.add("d-model", &s.model.d_model, "model width (mamba, s4)");
  flags.add("layers", &s.model.n_layer, "Mamba or S4 blocks");
  flags.add("d-state", &s.model.d_state, "state size: Mamba's n, S4's N");
  flags.add("expand", &s.model.expand, "Mamba: d_inner = expand x d-model");
  flags.add("d-conv", &s.model.d_conv, "Mamba: depthwise convolution width");
  flags.add("s4-kernel", &s.model.s4_kernel,
            "S4: s4d-legs, s4d-lin, s4d-inv, s4d-real or dplr-legs");
  flags.add("dropout", &s.model.dropout, "S4 blocks' dropout");
  flags.add("epochs", &s.epochs, "passes over the training clips");
  flags.add("batch", &s.batch, "clips per step");
  flags.add("lr", &s.lr, "peak learning rate (AdamW)");
  flags.add("weight-decay", &s.weight_decay,
            "AdamW weight decay (not on biases, norms, SSM "
            "parameters)");
  flags.add("warmup", &s.warmup, "fraction of the steps spent warming up");
  flags.add("clip", &s.clip, "global gradient-norm clip");
  flags.add("min-consecutive", &s.min_consecutive,
            "event level: positive clips in a row needed to raise an alarm");
  flags.add("seed", &s.seed, "seed of the split, the initialisation and the clip order");
  flags.add("out", &out, "output folder (default runs/eeg-<model>)");
  flags.add("adapt-from", &s.adapt_from,
            "a train_eeg output folder: adapt its trained detector to --data with LoRA "
            "(adapters on the patch embedding and every block projection, the head trained, the "
            "rest frozen) instead of training from scratch");
  flags.add("lora-r", &s.lora_r, "--adapt-from: LoRA rank");
  flags.add("lora-alpha", &s.lora_alpha, "--adapt-from: LoRA alpha (scale alpha / r)");
  flags.add("resume", &resume, "continue the run in --out from its last checkpoint");
  flags.add("stop-after", &stop_after,
            "stop after this many epochs of this invocation, as a time-limited job would "
            "(0: run to --epochs); --resume continues");
  flags.add("device", &device, "cpu, cuda or cuda:N; the default is cuda when a GPU is present");
  if (!flags.parse(argc, argv)) return 0;
  s.source.hdf5.channels_first = !hdf5_channels_last;
  if (out.empty()) out = "runs/eeg-" + s.model.kind;
  if (s.epochs < 1 || s.batch < 1 || s.eval_batch < 1 || s.min_consecutive < 1)
    throw train::UsageError("train_eeg: --epochs, --batch and --min-consecutive must be >= 1");
  if (!(s.lr > 0) || !(s.clip > 0) || !(s.weight_decay >= 0) || !(s.warmup >= 0 && s.warmup < 1))
    throw train::UsageError(
        "train_eeg: --lr and --clip must be positive, --weight-decay >= 0, "
        "--warmup in [0, 1)");
  if (!(s.clip_s > 0) || !(s.train_stride_s > 0) || !(s.min_overlap_s >= 0) || !(s.rate_hz > 0))
    throw train::UsageError(
        "train_eeg: --clip-s, --train-stride-s and --rate must be positive, "
        "--min-overlap-s >= 0");
  if (s.seed < 0 || stop_after < 0)
    throw train::UsageError("train_eeg: --seed and --stop-after must be >= 0");
  const double samples_per_clip = s.clip_s * s.rate_hz;
  if (std::fabs(samples_per_clip - std::round(samples_per_clip)) > 1e-9)
    throw train::UsageError("train_eeg: --clip-s x --rate must be a whole number of samples");
  s.model.samples = static_cast<int64_t>(std::llround(samples_per_clip));
  s.model.rate_hz = s.rate_hz;
  try {
    s.model.validate();
  } catch (const std::invalid_argument& e) {
    throw train::UsageError(std::string("train_eeg: ") + e.what());
  }
  const Device dev = train::parse_device_flag("train_eeg", device);
  fs::create_directories(out);
  const auto t_start = std::chrono::steady_clock::now();

  // 1-2. Recordings, split by recording.
  const std::vector<std::string> files = eegtask::recording_files(s.source, std::cout);
  const std::vector<RecordingInfo> infos = read_infos(files, s);
  std::vector<bool> has_seizure;
  for (const RecordingInfo& info : infos) has_seizure.push_back(!info.seizures.empty());
  const eegtask::Split split = eegtask::split_recordings(
      has_seizure, s.val_fraction, s.test_fraction, static_cast<uint64_t>(s.seed));
  auto count_seizures = [&](const std::vector<int64_t>& part) {
    size_t n = 0;
    for (int64_t i : part) n += infos[i].seizures.size();
    return n;
  };
  std::printf(
      "recordings: %zu (train %zu with %zu seizures, validation %zu with %zu, test %zu "
      "with %zu), split by recording (seed %lld)\n",
      infos.size(), split.train.size(), count_seizures(split.train), split.val.size(),
      count_seizures(split.val), split.test.size(), count_seizures(split.test),
      static_cast<long long>(s.seed));
  std::fflush(stdout);

  // 3. Preprocessed clips.
  const ClipSet train_set = load_clips(infos, split.train, s, s.train_stride_s);
  const ClipSet val_set = load_clips(infos, split.val, s, s.clip_s);
  const ClipSet test_set = load_clips(infos, split.test, s, s.clip_s);
  if (train_set.positives() == 0)
    throw std::runtime_error(
        "the training recordings have no seizure clips: nothing to learn "
        "from (are the seizures annotated? see data/eeg_preprocess.h "
        "for the annotation texts that count)");
  s.model.channels = train_set.data.size(1);
  // 4. Class imbalance.
  const double n_pos = static_cast<double>(train_set.positives());
  const double n_neg = static_cast<double>(train_set.size()) - n_pos;
  const double pos_weight = n_neg / n_pos;
  const double data_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::printf(
      "clips of %g s at %g Hz, %lld channels: train %lld (%lld seizure, stride %g s), "
      "validation %lld (%lld), test %lld (%lld); prepared in %.1f s\n",
      s.clip_s, s.rate_hz, static_cast<long long>(s.model.channels),
      static_cast<long long>(train_set.size()), static_cast<long long>(n_pos), s.train_stride_s,
      static_cast<long long>(val_set.size()), static_cast<long long>(val_set.positives()),
      static_cast<long long>(test_set.size()), static_cast<long long>(test_set.positives()),
      data_s);
  std::printf(
      "class imbalance: %.1f%% of training clips are seizure clips; their loss is "
      "weighted by pos_weight = %lld / %lld = %.2f\n",
      100 * n_pos / static_cast<double>(train_set.size()), static_cast<long long>(n_neg),
      static_cast<long long>(n_pos), pos_weight);

  // 5. Model, optimizer, schedule.
  Generator init_gen(static_cast<uint64_t>(s.seed));
  std::unique_ptr<eegtask::Detector> model =
      eegtask::make_detector(s.model, {DType::Float32, &init_gen}); // same init on any device
  if (!s.adapt_from.empty()) adapt_detector(*model, s, init_gen);
  model->to(dev);
  // Every parameter, or with --adapt-from the adapters and the head only.
  optim::NamedParameters trainable;
  for (const auto& [name, p] : model->named_parameters())
    if (p.requires_grad()) trainable.emplace_back(name, p);
  std::vector<Var> trainable_vars;
  for (const auto& [name, p] : trainable) trainable_vars.push_back(p);
  optim::AdamW optimizer(trainable, {s.lr,
                                     0.9,
                                     0.999,
                                     1e-8,
                                     s.weight_decay,
                                     {"bias", "norm", "A_log", ".D", "log_dt", "log_A_real",
                                      "A_imag", "log_Lambda_real", "Lambda_imag"}});
  const int64_t steps_per_epoch = (train_set.size() + s.batch - 1) / s.batch;
  const int64_t total_steps = s.epochs * steps_per_epoch;
  const optim::WarmupCosineLR schedule(s.lr, static_cast<int64_t>(s.warmup * total_steps),
                                       total_steps, s.lr * 0.05);
  RunState state;
  if (resume) {
    state = load_checkpoint(out, *model, optimizer, s);
    truncate_metrics_log(out + "/metrics.jsonl", state.epochs_done, state.step);
    std::printf("resumed from %s/checkpoint after epoch %lld (step %lld)\n", out.c_str(),
                static_cast<long long>(state.epochs_done), static_cast<long long>(state.step));
  }
  std::printf("train_eeg: %s, %lld parameters on %s; %lld epochs of %lld steps (batch %lld)\n",
              s.model.kind.c_str(), static_cast<long long>(model->num_parameters()),
              dev.str().c_str(), static_cast<long long>(s.epochs),
              static_cast<long long>(steps_per_epoch), static_cast<long long>(s.batch));
  std::fflush(stdout);

  train::MetricsLog log(out + "/metrics.jsonl", /*truncate=*/!resume);
  const int64_t last_epoch =
      stop_after > 0 ? std::min(s.epochs, state.epochs_done + stop_after) : s.epochs;
  for (int64_t epoch = state.epochs_done; epoch < last_epoch; ++epoch) {
    const auto t_epoch = std::chrono::steady_clock::now();
    // The clip order of this epoch depends only on the seed and the epoch: resumable.
    std::vector<int64_t> order(static_cast<size_t>(train_set.size()));
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    std::mt19937_64 rng(static_cast<uint64_t>(s.seed) * 1000003u + static_cast<uint64_t>(epoch));
    // Dropout (S4 blocks) draws from init_gen; reseeding it here makes its masks depend on the
    // seed, the epoch and the step only, as the resume promise needs.
    init_gen.manual_seed(static_cast<uint64_t>(s.seed) * 1000003u + static_cast<uint64_t>(epoch) +
                         0x9e3779b97f4a7c15ull);
    for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i)
      std::swap(order[i], order[rng() % static_cast<uint64_t>(i + 1)]);

    model->train();
    std::printf("epoch %lld/%lld\n", static_cast<long long>(epoch + 1),
                static_cast<long long>(s.epochs));
    train::Progress progress(steps_per_epoch, "clips", 50);
    double epoch_loss = 0;
    for (int64_t b = 0; b < steps_per_epoch; ++b) {
      const auto first = order.begin() + b * s.batch;
      const std::vector<int64_t> index(
          first, first + std::min<int64_t>(s.batch, train_set.size() - b * s.batch));
      const auto [clips, labels] = gather(train_set, index, dev); // (b, C, T), (b)
      optimizer.lr = schedule.lr_at(state.step);
      optimizer.zero_grad();
      const Var logits = model->forward(clips); // (b)
      Var loss = eegtask::weighted_bce_with_logits(logits, labels, pos_weight);
      loss.backward();
      const double grad_norm = optim::clip_grad_norm(trainable_vars, s.clip);
      optimizer.step();
      const double loss_value = loss.item();
      ++state.step;
      epoch_loss += loss_value;
      state.train_loss.push_back(loss_value);
      log.write(state.step, {{"epoch", static_cast<double>(epoch + 1)},
                             {"loss", loss_value},
                             {"lr", optimizer.lr},
                             {"grad_norm", grad_norm}});
      progress.update(b + 1, {{"loss", epoch_loss / static_cast<double>(b + 1)}},
                      b * s.batch + static_cast<int64_t>(index.size()));
    }
    progress.finish();

    model->eval();
    const std::vector<double> p_val = predict(*model, val_set, s.eval_batch, dev);
    const double val_loss = weighted_bce(p_val, val_set.labels, pos_weight);
    const bool val_has_both = val_set.positives() > 0 && val_set.positives() < val_set.size();
    const double val_auroc = val_has_both ? eeg::auroc(p_val, val_set.labels) : NAN;
    const double val_auprc =
        val_set.positives() > 0 ? eeg::average_precision(p_val, val_set.labels) : NAN;
    const double epoch_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    state.val_loss.push_back(val_loss);
    state.val_auroc.push_back(val_auroc);
    state.val_auprc.push_back(val_auprc);
    state.epochs_done = epoch + 1;
    // The best weights so far (by validation AUROC; by loss when validation has one class).
    if (!std::isfinite(val_loss))
      throw std::runtime_error(
          "training diverged in epoch " + std::to_string(epoch + 1) +
          ": the validation loss is not a number (the checkpoint of the previous epoch is kept); "
          "try a lower --lr or a smaller --clip");
    const double score = std::isfinite(val_auroc) ? val_auroc : -val_loss;
    const bool best = state.best_epoch < 0 || score > state.best_val_auroc;
    if (best) {
      state.best_val_auroc = score;
      state.best_epoch = epoch + 1;
    }
    log.write(Json(Json::Object{{"epoch", epoch + 1},
                                {"val_loss", val_loss},
                                {"val_auroc", train::finite_or_null(val_auroc)},
                                {"val_auprc", train::finite_or_null(val_auprc)},
                                {"epoch_s", epoch_s}}));
    std::printf(
        "epoch %lld: train loss %.4f, validation loss %.4f, AUROC %s, AUPRC %s "
        "(%.1f s)%s\n",
        static_cast<long long>(epoch + 1), epoch_loss / static_cast<double>(steps_per_epoch),
        val_loss, format_metric(val_auroc).c_str(), format_metric(val_auprc).c_str(), epoch_s,
        best ? "  best so far: saved" : "");
    std::fflush(stdout);
    save_checkpoint(out, *model, optimizer, state, s, best);
  }

  if (state.epochs_done < s.epochs) {
    std::printf(
        "stopped after epoch %lld of %lld (--stop-after %lld); continue with the same "
        "flags and --resume\n",
        static_cast<long long>(state.epochs_done), static_cast<long long>(s.epochs),
        static_cast<long long>(stop_after));
    return 0;
  }

  // 6. Evaluation with the best weights.
  load_module(*model, out + "/model.safetensors");
  model->eval();
  const std::vector<double> p_val = predict(*model, val_set, s.eval_batch, dev);
  const std::vector<double> p_test = predict(*model, test_set, s.eval_batch, dev);
  const double threshold = val_set.positives() > 0 && val_set.positives() < val_set.size()
                               ? eeg::threshold_max_youden(p_val, val_set.labels)
                               : 0.5;
  const Evaluation val_eval = evaluate(val_set, p_val, infos, s, threshold);
  const Evaluation test_eval = evaluate(test_set, p_test, infos, s, threshold);

  Json config = s.to_json();
  config.set("channels", s.model.channels);
  config.set("samples", s.model.samples);
  config.set("threshold", threshold);
  config.set("pos_weight", pos_weight);
  config.set("best_epoch", state.best_epoch);
  write_file_atomic(out + "/config.json", config.dump(1) + "\n");
  write_file_atomic(out + "/results.json",
                    Json(Json::Object{{"model", s.model.kind},
                                      {"best_epoch", state.best_epoch},
                                      {"threshold", threshold},
                                      {"validation", evaluation_json(val_eval)},
                                      {"test", evaluation_json(test_eval)}})
                            .dump(1) +
                        "\n");
  std::string csv = "recording,start_s,label,probability\n";
  for (int64_t i = 0; i < test_set.size(); ++i) {
    char line[256];
    std::snprintf(line, sizeof line, "%s,%.3f,%d,%.6f\n", infos[test_set.recording[i]].name.c_str(),
                  test_set.start_s[i], test_set.labels[i], p_test[i]);
    csv += line;
  }
  write_file_atomic(out + "/test_predictions.csv", csv);
  write_plots(out, s, state, steps_per_epoch,
              {{"validation (AUROC " + format_metric(val_eval.auroc) + ")",
                eeg::roc_curve(p_val, val_set.labels)},
               {"test (AUROC " + format_metric(test_eval.auroc) + ")",
                eeg::roc_curve(p_test, test_set.labels)}});
  std::string trace_note = "no test recording has a seizure: no trace.svg";
  for (int64_t index : split.test)
    if (!infos[index].seizures.empty()) {
      write_trace(out + "/trace.svg", infos[index], test_set, p_test, index, threshold, s);
      trace_note = out + "/trace.svg (" + infos[index].name + ")";
      break;
    }

  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  // best_val_auroc holds -loss when validation has one class (see the epoch loop).
  const bool by_auroc = std::isfinite(val_eval.auroc);
  std::printf(
      "\nbest epoch %lld (validation %s %s); threshold %.3f chosen on validation "
      "(max sensitivity + specificity)\n\n",
      static_cast<long long>(state.best_epoch), by_auroc ? "AUROC" : "loss",
      format_metric(by_auroc ? state.best_val_auroc : -state.best_val_auroc).c_str(), threshold);
  std::printf(
      "| model | split | AUROC | AUPRC | sensitivity | specificity | seizures detected | "
      "event sensitivity | false alarms / h |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& [name, e] :
       {std::pair<const char*, const Evaluation&>{"validation", val_eval}, {"test", test_eval}})
    std::printf("| %s | %s | %s | %s | %s | %s | %lld / %lld | %s | %s |\n", s.model.kind.c_str(),
                name, format_metric(e.auroc).c_str(), format_metric(e.auprc).c_str(),
                format_metric(e.at_threshold.sensitivity).c_str(),
                format_metric(e.at_threshold.specificity).c_str(),
                static_cast<long long>(e.events.detected_seizures),
                static_cast<long long>(e.events.seizures),
                format_metric(e.events.sensitivity).c_str(),
                format_metric(e.events.false_alarms_per_hour, "%.2f").c_str());
  std::printf("\nplots: %s/loss.svg, %s/roc.svg, %s\n", out.c_str(), out.c_str(),
              trace_note.c_str());
  std::printf(
      "wrote %s/{model.safetensors,config.json,results.json,metrics.jsonl,"
      "test_predictions.csv,checkpoint/} in %s\n",
      out.c_str(), train::format_duration(total_s).c_str());
  return 0;
}

} // namespace

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
