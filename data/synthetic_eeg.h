// synthetic_eeg.h: a generator of synthetic scalp EEG with seizures, artifacts and a clinical-style
// note, so that the seizure-detection pipeline runs on a fresh machine without patient data.
//
// A recording has the 19 channels of the international 10-20 system in a referential montage,
// labelled as the Temple University Hospital corpus labels them ("EEG FP1-REF", ..., old
// nomenclature T3/T4/T5/T6), sampled at `rate_hz` (default 200 Hz: the rate the seizure trainer
// works at, so its clips need no resampling). Every sample is a sum of components (the formulas,
// the parameter ranges and the sources are in data/synthetic_eeg.cpp):
//
//   background   1/f-like noise (a bank of one-pole filters, Keshner 1982) driven by 19
//                white sources placed at the electrodes and mixed with a Gaussian kernel of the
//                electrode distance, so that neighbouring electrodes correlate more than
//                distant ones; about 20 uV RMS
//   alpha        an 8.5-11.5 Hz posterior dominant rhythm, strongest at O1/O2, then Pz/P3/P4,
//                whose amplitude waxes and wanes (a log-normal envelope)
//   seizures     focal rhythmic discharges (rhythmic theta, spike-and-wave near 3 Hz, or a
//                low-voltage fast onset) at an onset region, slowing in frequency and growing in
//                amplitude, spreading to neighbouring electrodes with delays; 10-120 s long;
//                followed by 20-90 s of post-ictal delta slowing and attenuation
//   artifacts    eye blinks (Fp1/Fp2, F7/F8), muscle bursts (temporal), line noise (50/60 Hz),
//                electrode pops (step, then exponential decay, on one channel), and rhythmic
//                mimics of seizures: chewing (4-6 Hz, bilateral temporal), eye flutter
//                (3-6 Hz, frontopolar) and non-ictal rhythmic theta bursts (5-7 Hz, no evolution)
//
// Annotations (EDF+ TALs): "seizure" (onset, duration) for each seizure, "post-ictal slowing"
// after it, and, when annotate_artifacts is set, "eye blink", "muscle artifact", "electrode pop",
// "chewing artifact", "eye flutter", "rhythmic theta (non-ictal)". Only the seizure annotations
// contain the word "seizure".
//
// Determinism: every random number is a pure function of (seed, component, index) through
// Philox4x32-10 (tensor/random.h), and generation runs on one thread, so a seed gives the same
// bits on every machine with IEEE doubles and the same libm. A 10-minute, 19-channel, 200 Hz
// recording takes 0.1-0.2 s on one core (tests/test_synthetic_eeg.cpp prints the time).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/eeg.h"

namespace ssm::eeg {

// ---- the montage ---------------------------------------------------------------------------

constexpr int kTenTwentyChannels = 19;

struct Electrode {
  const char* name;  // "Fp1", "T3", ...
  const char* label; // "EEG FP1-REF"
  double x, y;       // 2-D position on the scalp map (data/synthetic_eeg.cpp says how)
};

// Fp1, Fp2, F7, F3, Fz, F4, F8, T3, C3, Cz, C4, T4, T5, P3, Pz, P4, T6, O1, O2 (this order is
// the channel order of every synthetic recording).
const Electrode& ten_twenty_electrode(int index);
// The index of the electrode named `name` ("Fp1", case-insensitive), or -1.
int ten_twenty_index(const std::string& name);

// ---- options -------------------------------------------------------------------------------

struct SyntheticEegOptions {
  uint64_t seed = 0;
  double rate_hz = 200;    // samples per second, >= 64
  double duration_s = 600; // length of the recording, > 0
  int64_t seizures = -1;   // number of seizures; -1: Poisson with mean seizures_per_hour *
                           // duration, capped at what fits
  double seizures_per_hour = 6;
  double min_seizure_s = 10, max_seizure_s = 120; // seizure durations (log-uniform)
  double background_uv = 20;                      // RMS of the background per channel
  double background_exponent = 2; // filter weights f_k^(-exponent/2); the power spectrum
                                  // then falls as about f^-1.4 (see the .cpp)
  double spatial_sigma = 0.3;     // width of the spatial mixing kernel (map units, see .cpp)
  double alpha_uv = 25;           // alpha amplitude at O1/O2 (peak of the mean envelope)
  double line_noise_hz = 60;      // 50 or 60 (must be below rate_hz / 2)
  double line_noise_uv = 1.5;     // mean amplitude; 0 disables line noise
  // Artifact rates (events per minute or per hour, Poisson); 0 disables a kind.
  double blinks_per_minute = 6;
  double muscle_bursts_per_minute = 1;
  double electrode_pops_per_minute = 0.3;
  double chewing_per_hour = 6;
  double eye_flutter_per_hour = 6;
  double theta_bursts_per_hour = 12;
  bool annotate_artifacts = true;
};

// ---- what was generated --------------------------------------------------------------------

struct SeizureEvent {
  double onset_s = 0, duration_s = 0, postictal_s = 0;
  std::string region;                       // "left anterior temporal", ...
  std::vector<std::string> onset_channels;  // electrode names ("T3", "T5")
  std::string pattern;                      // "rhythmic theta", "spike-and-wave",
                                            // "low-voltage fast activity"
  double start_hz = 0, end_hz = 0;          // discharge frequency at onset and at the end
  double peak_uv = 0;                       // amplitude scale at the onset channels
  std::vector<std::string> spread_channels; // channels recruited during the seizure
  double spread_s = 0;                      // time from onset until the last one is recruited
};

struct ArtifactEvent {
  double onset_s = 0, duration_s = 0;
  std::string kind;                  // the annotation text ("eye blink", ...)
  std::vector<std::string> channels; // electrode names where it is largest
  double frequency_hz = 0;           // for the rhythmic ones, else 0
};

struct SyntheticEeg {
  Recording recording;                  // channels in ten_twenty order, annotations sorted by onset
  std::vector<SeizureEvent> seizures;   // in time order
  std::vector<ArtifactEvent> artifacts; // in time order
  double alpha_hz = 0;                  // the posterior dominant rhythm's frequency
  std::string note;                     // clinical-style description
};

// Generates one recording. Throws std::invalid_argument naming the option and the value when
// an option is out of range, or when the requested number of seizures (with their post-ictal
// periods) cannot fit in the duration.
SyntheticEeg generate_synthetic_eeg(const SyntheticEegOptions& options);
// The checks generate_synthetic_eeg makes before it draws anything (the seed is not used).
void check_synthetic_eeg_options(const SyntheticEegOptions& options);

// The seed of recording `index` of a set generated from `set_seed`: the first two words of
// philox4x32(set_seed, index). build/make_eeg and the trainer's cache use it, so recording i
// of a set can be regenerated alone.
uint64_t synthetic_recording_seed(uint64_t set_seed, int64_t index);

// "01:32" (or "1:02:03" past an hour), rounding to the nearest second: the note's time format.
std::string format_clock(double seconds);

} // namespace ssm::eeg
