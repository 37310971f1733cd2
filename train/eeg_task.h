// eeg_task.h: the seizure-detection task that build/train_eeg trains, in pieces a test can
// reach: where the recordings come from, how they are split and cut into clips, the features of
// the baseline, and the three detectors.
//
// The pipeline, for one recording:
//   file (EDF/EDF+ or HDF5)  --read-->  Recording (any channels, any rates, annotations)
//     --preprocess_recording-->  19 referential 10-20 channels at 200 Hz, band-passed 0.5-70 Hz,
//                                 notched at 50 and 60 Hz, z-scored per channel
//     --make_clips-->  clips (clips, 19, 2400) float32, label 1 when a clip overlaps a seizure
//                      annotation by at least 1 s (data/eeg_preprocess.h)
// A detector maps a batch of clips (batch, channels, samples) to one logit per clip; the
// seizure probability is sigmoid(logit).
//
// The three detectors, all ending in one logit:
//   mamba:    patches of `patch` samples on every channel -> Linear(channels*patch, d_model)
//             -> n_layer x MambaLayer (RMSNorm -> Mamba mixer -> residual, mamba/mamba_lm.h)
//             -> RMSNorm -> max over time -> Linear(d_model, 1)
//   s4:       the same, with S4Block (LayerNorm -> S4 layer -> GLU -> residual, s4/s4_block.h)
//             and a final LayerNorm
//   baseline: logistic regression on log band powers: for each channel, log of the mean power
//             in the delta, theta, alpha, beta and gamma bands (0.5-4, 4-8, 8-13, 13-30, 30-70
//             Hz) from the clip's FFT: 19 x 5 = 95 numbers -> Linear(95, 1). It never sees the
//             order of events inside a clip, only its spectrum: what a sequence model must beat.
//
// Why patches: a 12 s clip at 200 Hz is 2400 samples; cutting it into 0.2 s patches (40
// samples) gives 60 tokens of 19 x 40 = 760 numbers each, a sequence short enough to train on
// two CPU cores in minutes, with every sample still seen by the (learned, linear) embedding.
// Why max over time: a clip is a seizure clip when any part of it overlaps a seizure (1 s of
// 12 is enough), so the clip's score is its most seizure-like moment, not the average one.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "autograd/lora.h"
#include "autograd/nn.h"
#include "data/eeg_preprocess.h"
#include "data/hdf5.h"
#include "mamba/mamba_lm.h"
#include "s4/s4_block.h"

namespace ssm::eegtask {

// ---- where the recordings come from ---------------------------------------------------------

struct SourceOptions {
  // "" : synthetic recordings (data/synthetic_eeg.h), generated on first use into cache_dir;
  // a directory: every .edf, .h5 and .hdf5 file in it (not recursive), in name order;
  // a file: that one recording (then it cannot be split: an error).
  std::string data;
  std::string cache_dir = "runs/eeg-cache";
  int64_t synthetic_recordings = 192;
  double synthetic_minutes = 10;
  int64_t synthetic_seed = 0;
  int64_t synthetic_seizures = -1; // per recording; -1: Poisson, 6 an hour on average
  eeg::Hdf5Options hdf5;           // how HDF5 files are read (dataset, axis order, attributes)
  // When set (e.g. ".csv_bi", "_events.tsv"): every recording has an annotation table beside
  // it, its path with the extension replaced by this suffix (rec_001.edf -> rec_001.csv_bi),
  // whose events (data/annotations.h) are added to the file's own annotations.
  std::string annotations_suffix;
};

// "edf" or "hdf5", from the extension (.edf; .h5, .hdf5), else from the file's first 8 bytes.
std::string detect_eeg_format(const std::string& path);
// Reads an EDF/EDF+ or HDF5 file (format from detect_eeg_format), plus its annotation table
// when annotations_suffix is set (a missing table is an error).
eeg::Recording read_recording(const std::string& path, const eeg::Hdf5Options& hdf5,
                              const std::string& annotations_suffix = "");
// The annotation table's path for a recording: rec_001.edf + ".csv_bi" -> rec_001.csv_bi; for a
// suffix starting with '_', also the BIDS form: sub-01_task-rest_eeg.edf + "_events.tsv" ->
// sub-01_task-rest_events.tsv (used when it exists and the direct one does not).
std::string annotation_path(const std::string& recording_path, const std::string& suffix);

// The recording files of the source, sorted by name. For synthetic data the set is written
// into cache_dir/synthetic-s<seed>-n<count>-<minutes>min[-z<seizures>]/ first, unless an
// index.jsonl there says the set is complete. The .edf and .txt files are those make_eeg writes
// with the same seed, count, length and seizures (its index.jsonl has more fields than this
// one); progress goes to `log`.
std::vector<std::string> recording_files(const SourceOptions& options, std::ostream& log);

// ---- splitting by recording -----------------------------------------------------------------

struct Split {
  std::vector<int64_t> train, val, test; // indices into the recordings, ascending
};

// Splits whole recordings, never clips, so no recording feeds both training and testing.
// Recordings with and without seizures are shuffled separately (seeded) and dealt out in the
// proportions asked for, so that validation and test get seizures whenever there are at least
// three recordings with some. Needs at least 3 recordings; fractions in (0, 1), sum < 1.
Split split_recordings(const std::vector<bool>& has_seizure, double val_fraction,
                       double test_fraction, uint64_t seed);

// ---- the baseline's features ----------------------------------------------------------------

constexpr int kBands = 5;
extern const double kBandEdgesHz[kBands + 1]; // 0.5, 4, 8, 13, 30, 70

// clips (n, channels, samples) on the CPU, sampled at rate_hz -> (n, channels * kBands) float32:
// log(mean |X_f|^2 / samples + 1e-6) over the FFT bins f inside each band, channel-major.
Tensor band_power_features(const Tensor& clips, double rate_hz);

// ---- the detectors --------------------------------------------------------------------------

struct ModelOptions {
  std::string kind = "mamba"; // mamba | s4 | baseline
  int64_t channels = 19;
  int64_t samples = 2400; // per clip
  double rate_hz = 200;
  int64_t patch = 40; // samples per token (mamba, s4); must divide `samples`
  int64_t d_model = 32;
  int64_t n_layer = 2;
  int64_t d_state = 16; // mamba: state size n; s4: N (N / 2 complex states)
  int64_t expand = 2;   // mamba: d_inner = expand * d_model
  int64_t d_conv = 4;   // mamba: depthwise conv width
  std::string s4_kernel = "s4d-legs";
  double dropout = 0.0;  // s4 blocks
  void validate() const; // clear errors for impossible settings
};

class Detector : public nn::Module {
 public:
  // clips (batch, channels, samples) float32 on the model's device -> logits (batch).
  virtual Var forward(const Tensor& clips) const = 0;
};

// Patches: (b, C, T) -> (b, T / P, C * P), token t holding samples [t P, (t + 1) P) of every
// channel, channel-major.
Tensor patchify(const Tensor& clips, int64_t patch);

class MambaDetector : public Detector {
 public:
  MambaDetector(const ModelOptions& options, nn::Init init);
  Var forward(const Tensor& clips) const override;
  int64_t patch;
  nn::Linear patch_embed; // C * P -> d_model
  std::vector<std::unique_ptr<MambaLayer>> layers;
  nn::RMSNorm norm_f;
  nn::Linear head; // d_model -> 1
};

class S4Detector : public Detector {
 public:
  S4Detector(const ModelOptions& options, nn::Init init);
  Var forward(const Tensor& clips) const override;
  int64_t patch;
  nn::Linear patch_embed;
  std::vector<std::unique_ptr<s4::S4Block>> layers;
  nn::LayerNorm norm_f;
  nn::Linear head;
};

class BandPowerBaseline : public Detector {
 public:
  BandPowerBaseline(const ModelOptions& options, nn::Init init);
  Var forward(const Tensor& clips) const override; // features on the CPU, then the Linear
  double rate_hz;
  nn::Linear linear; // channels * kBands -> 1
};

std::unique_ptr<Detector> make_detector(const ModelOptions& options, nn::Init init);

// Adapting a trained detector to new recordings with LoRA (autograd/lora.h): adapters on the
// patch embedding and on every projection of the blocks (Mamba: in_proj, conv1d, x_proj,
// dt_proj, out_proj; S4: the GLU's output Linear), the head trained in full (d_model + 1
// numbers), everything else frozen. Returns the names of the adapted layers. The baseline (96
// numbers) has nothing to adapt: an error.
std::vector<std::string> attach_detector_lora(Detector& model, const nn::LoraOptions& options);

// Weighted binary cross-entropy on logits, mean over the batch:
//   loss = mean_i [ w+ y_i softplus(-x_i) + (1 - y_i) softplus(x_i) ]
// (softplus(-x) = -log sigmoid(x)). w+ = pos_weight > 0 scales the rare seizure clips up.
Var weighted_bce_with_logits(const Var& logits, const Tensor& labels, double pos_weight);

} // namespace ssm::eegtask
