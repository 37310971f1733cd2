// synthetic_eeg.cpp: the synthetic EEG generator (interface and overview in synthetic_eeg.h).
//
// A recording is x[c][t] (c < 19 electrodes, t < T = round(duration * rate) samples), in uV:
//
//   x[c][t] = gain_c(t) background_c(t) + alpha_gain(t) alpha_c(t)
//             + sum over seizures (ictal_c(t) + postictal_delta_c(t))
//             + sum over artifacts artifact_c(t) + line_c(t)
//
// Every component is described below, beside the function that adds it. Times are in seconds,
// positions in map units (below), amplitudes in uV. "U(a, b)" is a uniform draw, "N" a standard
// normal draw, "smoothstep(u)" = 3u^2 - 2u^3 for u in [0, 1] (0 below, 1 above).
//
// ---- Electrode map ---------------------------------------------------------------------------
// The head is a sphere with Cz at the vertex. A 10-20 electrode sits at polar angle theta from
// Cz and azimuth phi (0 = right ear T4, 90 degrees = nose): the outer ring (Fp1, Fp2, F7, F8,
// T3, T4, T5, T6, O1, O2) at theta = 72 degrees (10% of the nasion-inion arc above the nasion /
// inion / preauricular points, i.e. 0.4 * 180 degrees from Cz) every 36 degrees of azimuth from
// Fp2 at 72 degrees; Fz, C3, C4, Pz at theta = 36 degrees; F3, F4, P3, P4 midway along the great
// circle between F7 and Fz (F8 and Fz, T5 and Pz, T6 and Pz). The map is the azimuthal
// equidistant projection about Cz, r = theta / 90 degrees: x = r cos phi (towards the right
// ear), y = r sin phi (towards the nose). Neighbours on the chains are 0.30-0.49 apart, Fp1-O2
// is 1.54. (Jasper 1958, "The ten-twenty electrode system of the International Federation".)
//
// ---- Randomness ------------------------------------------------------------------------------
// RandomStream(seed, s) yields the words of philox4x32(seed, (s << 40) + i), i = 0, 1, ...
// (tensor/random.h): each component (the event plan, the background, the alpha rhythm, seizure
// k, artifact k) has its own stream s, so no component's draws depend on how many another made.
// Normals: Box-Muller on two 32-bit words, r = sqrt(-2 ln u1), (r cos 2 pi u2, r sin 2 pi u2).
#include "data/synthetic_eeg.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tensor/random.h"

namespace ssm::eeg {

namespace {

constexpr int kC = kTenTwentyChannels;
constexpr double kTwoPi = 6.283185307179586;

// Channel indices in kElectrodes order.
namespace ch {
enum : int { Fp1, Fp2, F7, F3, Fz, F4, F8, T3, C3, Cz, C4, T4, T5, P3, Pz, P4, T6, O1, O2 };
}

const Electrode kElectrodes[kC] = {
    {"Fp1", "EEG FP1-REF", -0.247, 0.761}, {"Fp2", "EEG FP2-REF", 0.247, 0.761},
    {"F7", "EEG F7-REF", -0.647, 0.470},   {"F3", "EEG F3-REF", -0.316, 0.471},
    {"Fz", "EEG FZ-REF", 0.000, 0.400},    {"F4", "EEG F4-REF", 0.316, 0.471},
    {"F8", "EEG F8-REF", 0.647, 0.470},    {"T3", "EEG T3-REF", -0.800, 0.000},
    {"C3", "EEG C3-REF", -0.400, 0.000},   {"Cz", "EEG CZ-REF", 0.000, 0.000},
    {"C4", "EEG C4-REF", 0.400, 0.000},    {"T4", "EEG T4-REF", 0.800, 0.000},
    {"T5", "EEG T5-REF", -0.647, -0.470},  {"P3", "EEG P3-REF", -0.316, -0.471},
    {"Pz", "EEG PZ-REF", 0.000, -0.400},   {"P4", "EEG P4-REF", 0.316, -0.471},
    {"T6", "EEG T6-REF", 0.647, -0.470},   {"O1", "EEG O1-REF", -0.247, -0.761},
    {"O2", "EEG O2-REF", 0.247, -0.761},
};

using Signals = std::vector<std::vector<double>>; // [kC][T] uV
using Field = std::array<double, kC>;             // one weight per electrode

double squared_distance_to(int c, double x, double y) {
  const double dx = kElectrodes[c].x - x, dy = kElectrodes[c].y - y;
  return dx * dx + dy * dy;
}
double distance(int a, int b) {
  return std::sqrt(squared_distance_to(a, kElectrodes[b].x, kElectrodes[b].y));
}
double smoothstep(double u) {
  u = std::clamp(u, 0.0, 1.0);
  return u * u * (3 - 2 * u);
}
// 1 inside [0, duration], rising and falling over `edge` seconds at both ends.
double burst_envelope(double t, double duration, double edge) {
  return smoothstep(t / edge) * smoothstep((duration - t) / edge);
}

// ---- randomness ------------------------------------------------------------------------------

constexpr int kStreamShift = 40; // 2^40 Philox blocks (2^42 words) per stream

// Stream ids; seizure k uses kSeizureStream + k, artifact k uses kArtifactStream + k.
constexpr uint64_t kPlanStream = 1, kBackgroundStream = 2, kAlphaStream = 3;
constexpr uint64_t kSeizureStream = uint64_t(1) << 10, kArtifactStream = uint64_t(1) << 20;

class RandomStream {
 public:
  RandomStream(uint64_t seed, uint64_t stream) : seed_(seed), base_(stream << kStreamShift) {}

  uint32_t word() {
    if (next_word_ == 4) {
      words_ = philox4x32(seed_, base_ + block_++);
      next_word_ = 0;
    }
    return words_[next_word_++];
  }
  double uniform() { // [0, 1), 53 bits
    const uint32_t hi = word(), lo = word();
    return uniform_double(hi, lo);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double log_uniform(double lo, double hi) { return std::exp(uniform(std::log(lo), std::log(hi))); }
  double exponential(double mean) { return -mean * std::log1p(-uniform()); }
  bool chance(double p) { return uniform() < p; }
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (word() + 0.5) * (1.0 / 4294967296.0); // (0, 1)
    const double u2 = word() * (1.0 / 4294967296.0);         // [0, 1)
    const double r = std::sqrt(-2 * std::log(u1));
    spare_ = r * std::sin(kTwoPi * u2);
    has_spare_ = true;
    return r * std::cos(kTwoPi * u2);
  }
  // An index in [0, weights.size()) drawn with probability proportional to its weight.
  int choose(const std::vector<double>& weights) {
    double total = 0;
    for (double w : weights) total += w;
    double target = uniform() * total;
    for (size_t i = 0; i + 1 < weights.size(); ++i) {
      if (target < weights[i]) return static_cast<int>(i);
      target -= weights[i];
    }
    return static_cast<int>(weights.size()) - 1;
  }
  int index(int n) { return std::min(n - 1, static_cast<int>(uniform() * n)); }

 private:
  uint64_t seed_, base_, block_ = 0;
  std::array<uint32_t, 4> words_{};
  int next_word_ = 4;
  bool has_spare_ = false;
  double spare_ = 0;
};

// An Ornstein-Uhlenbeck process sampled every dt with correlation time tau, unit stationary
// variance, exactly discretised: z_t = rho z_{t-1} + sqrt(1 - rho^2) N, rho = exp(-dt / tau).
// Starts from its stationary distribution.
class SlowNoise {
 public:
  SlowNoise(double tau_s, double rate_hz, RandomStream& random)
      : rho_(std::exp(-1 / (tau_s * rate_hz))),
        innovation_(std::sqrt(1 - rho_ * rho_)),
        value_(random.normal()) {}
  double next(RandomStream& random) {
    value_ = rho_ * value_ + innovation_ * random.normal();
    return value_;
  }

 private:
  double rho_, innovation_, value_;
};

// A one-pole low-pass y_t = a y_{t-1} + (1 - a) x_t, a = exp(-2 pi f_c / rate): unit gain at
// DC, -3 dB near f_c (for f_c well below the rate).
struct OnePole {
  double a, state = 0;
  OnePole(double corner_hz, double rate_hz) : a(std::exp(-kTwoPi * corner_hz / rate_hz)) {}
  double step(double x) {
    state = a * state + (1 - a) * x;
    return state;
  }
};

// ---- spatial fields ----------------------------------------------------------------------------

// sum over the centres p of exp(-|p_c - p|^2 / (2 sigma^2)), scaled so that its largest value
// is 1.
Field gaussian_field(const std::vector<std::array<double, 2>>& centres, double sigma) {
  Field field{};
  double largest = 0;
  for (int c = 0; c < kC; ++c) {
    for (const auto& p : centres)
      field[c] += std::exp(-squared_distance_to(c, p[0], p[1]) / (2 * sigma * sigma));
    largest = std::max(largest, field[c]);
  }
  for (double& w : field) w /= largest;
  return field;
}

// Alpha: centred on Oz (0, -0.8), sigma 0.35: O1/O2 1, Pz 0.67, P3/P4 0.55, T5/T6 0.15,
// Cz 0.09, frontal < 0.01.
Field alpha_field() { return gaussian_field({{0.0, -0.8}}, 0.35); }
// Eyes: two dipole ends in front of Fp1 and Fp2, at (-0.3, 1.0) and (0.3, 1.0), sigma 0.35:
// Fp1/Fp2 1, F3/F4 0.38, Fz 0.31, F7/F8 0.20, central < 0.02.
Field eye_field() { return gaussian_field({{-0.3, 1.0}, {0.3, 1.0}}, 0.35); }

// ---- the plan: every random choice about events, drawn from the plan stream ------------------

// Seizure onset regions (electrodes and relative frequency; temporal onsets are the most common
// focal seizures in adults).
struct Region {
  const char* name;
  std::vector<int> onset;
  double weight;
};
const std::vector<Region>& regions() {
  static const std::vector<Region> table = {
      {"left anterior temporal", {ch::F7, ch::T3}, 2},
      {"left posterior temporal", {ch::T3, ch::T5}, 2},
      {"right anterior temporal", {ch::F8, ch::T4}, 2},
      {"right posterior temporal", {ch::T4, ch::T6}, 2},
      {"left frontal", {ch::Fp1, ch::F3}, 1},
      {"right frontal", {ch::Fp2, ch::F4}, 1},
      {"left central", {ch::C3}, 0.5},
      {"right central", {ch::C4}, 0.5},
      {"left parieto-occipital", {ch::P3, ch::O1}, 0.5},
      {"right parieto-occipital", {ch::P4, ch::O2}, 0.5},
      {"midline frontocentral", {ch::Fz, ch::Cz}, 0.5},
  };
  return table;
}

// Groups used to describe spread in the note.
struct ChannelGroup {
  const char* name;
  std::vector<int> channels;
};
const std::vector<ChannelGroup>& channel_groups() {
  static const std::vector<ChannelGroup> table = {
      {"left frontopolar region", {ch::Fp1}},
      {"left temporal chain", {ch::F7, ch::T3, ch::T5}},
      {"left parasagittal chain", {ch::F3, ch::C3, ch::P3}},
      {"left occipital region", {ch::O1}},
      {"midline", {ch::Fz, ch::Cz, ch::Pz}},
      {"right frontopolar region", {ch::Fp2}},
      {"right temporal chain", {ch::F8, ch::T4, ch::T6}},
      {"right parasagittal chain", {ch::F4, ch::C4, ch::P4}},
      {"right occipital region", {ch::O2}},
  };
  return table;
}

enum class Pattern { RhythmicTheta, SpikeAndWave, FastThenTheta };

constexpr double kLeadIn_s = 10;     // no seizure starts in the first 10 s
constexpr double kSeizureGap_s = 30; // between a post-ictal period and the next seizure
constexpr double kPostictalMin_s = 20, kPostictalMax_s = 90;
constexpr double kRecruitRamp_s = 2;      // a recruited channel's field grows over 2 s
constexpr double kInvolvementFloor = 0.1; // weaker fields are set to zero
constexpr double kNamedInvolvement = 0.3; // channels named as "spread" in the note

struct SeizurePlan {
  SeizureEvent event;
  Pattern pattern = Pattern::RhythmicTheta;
  double fast_hz = 0, fast_s = 0;                // low-voltage fast onset (FastThenTheta only)
  double sharpness_start = 0, sharpness_end = 0; // 0 sinusoid .. 1 spike-and-wave
  double suppression = 1;                        // background gain at the depth of attenuation
  double delta_uv = 0;                           // post-ictal delta amplitude
  Field involvement{}, delay_s{}, lag_s{};       // per channel
};

enum class ArtifactKind { Blink, Muscle, Pop, Chewing, Flutter, ThetaBurst };

struct ArtifactPlan {
  ArtifactEvent event;
  ArtifactKind kind = ArtifactKind::Blink;
  Field field{};              // per-channel weight
  double amplitude = 0;       // uV (RMS for muscle noise)
  double amplitude2 = 0;      // chewing: amplitude of the jaw-movement waveform
  double time_constant_s = 0; // blink peak time, pop decay
  uint64_t stream = 0;
};

struct Plan {
  double alpha_hz = 10;
  std::vector<SeizurePlan> seizures;
  std::vector<ArtifactPlan> artifacts;
  Field line_amplitude{}, line_phase{};
};

std::string number_text(double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}
std::string hz_text(double hz) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f Hz", hz);
  return text;
}

// The largest number of seizures that fit: n (min seizure + min post-ictal) + (n - 1) gaps
// after the lead-in.
int64_t max_seizures_that_fit(const SyntheticEegOptions& o) {
  const double per_seizure = o.min_seizure_s + kPostictalMin_s;
  const double room = o.duration_s - kLeadIn_s + kSeizureGap_s;
  return room <= 0 ? 0 : static_cast<int64_t>(std::floor(room / (per_seizure + kSeizureGap_s)));
}

void plan_seizure(RandomStream& random, SeizurePlan& s) {
  SeizureEvent& e = s.event;
  std::vector<double> region_weights;
  for (const Region& r : regions()) region_weights.push_back(r.weight);
  const Region& region = regions()[random.choose(region_weights)];
  e.region = region.name;
  for (int c : region.onset) e.onset_channels.push_back(kElectrodes[c].name);

  s.pattern = static_cast<Pattern>(random.choose({0.45, 0.3, 0.25}));
  switch (s.pattern) {
    case Pattern::RhythmicTheta:
      e.pattern = "rhythmic theta";
      e.start_hz = random.uniform(5, 7);
      e.end_hz = random.uniform(2.5, 4);
      s.sharpness_start = 0.1;
      s.sharpness_end = 0.8;
      break;
    case Pattern::SpikeAndWave:
      e.pattern = "spike-and-wave";
      e.start_hz = random.uniform(3, 4);
      e.end_hz = random.uniform(2, e.start_hz - 0.5);
      s.sharpness_start = 0.85;
      s.sharpness_end = 0.95;
      break;
    case Pattern::FastThenTheta:
      e.pattern = "low-voltage fast activity";
      s.fast_hz = random.uniform(14, 22);
      s.fast_s = std::min(8.0, random.uniform(0.15, 0.3) * e.duration_s);
      e.start_hz = random.uniform(5, 7);
      e.end_hz = random.uniform(2.5, 4);
      s.sharpness_start = 0.1;
      s.sharpness_end = 0.8;
      break;
  }
  e.peak_uv = random.uniform(70, 180);
  s.suppression = random.uniform(0.3, 0.6);
  s.delta_uv = random.uniform(25, 50);

  // Spread: involvement m_c = exp(-d_c^2 / (2 sigma^2)) with d_c the distance to the nearest
  // onset electrode, recruited at delay d_c / speed and lagging the onset waveform by
  // 0.15 s per map unit (a propagation phase lag of tens of ms between neighbours).
  const double sigma = random.uniform(0.2, 0.6), speed = random.uniform(0.04, 0.15);
  for (int c = 0; c < kC; ++c) {
    double d = 1e9;
    for (int onset : region.onset) d = std::min(d, distance(c, onset));
    const double m = std::exp(-d * d / (2 * sigma * sigma));
    s.involvement[c] = m < kInvolvementFloor ? 0 : m;
    s.delay_s[c] = d / speed;
    s.lag_s[c] = 0.15 * d;
  }
  for (int c = 0; c < kC; ++c) {
    const bool onset = std::find(region.onset.begin(), region.onset.end(), c) != region.onset.end();
    if (onset || s.involvement[c] < kNamedInvolvement ||
        s.delay_s[c] + 0.5 * kRecruitRamp_s > e.duration_s)
      continue;
    e.spread_channels.push_back(kElectrodes[c].name);
    e.spread_s = std::max(e.spread_s, s.delay_s[c]);
  }
}

std::vector<SeizurePlan> plan_seizures(const SyntheticEegOptions& o, RandomStream& random) {
  const int64_t fit = max_seizures_that_fit(o);
  int64_t count = o.seizures;
  if (count < 0) {
    // Poisson(mean) by counting unit exponential gaps in [0, mean), capped at what fits.
    const double mean = o.seizures_per_hour * o.duration_s / 3600;
    count = 0;
    for (double t = random.exponential(1); t < mean && count < fit; t += random.exponential(1))
      ++count;
  }
  std::vector<SeizurePlan> plans(static_cast<size_t>(count));
  if (count == 0) return plans;
  // Each seizure gets an equal budget; its post-ictal period and duration are drawn inside it,
  // and the time left over (slack) is split at random between the gaps.
  const double n = static_cast<double>(count);
  const double budget = (o.duration_s - kLeadIn_s - (n - 1) * kSeizureGap_s) / n;
  double used = 0;
  for (SeizurePlan& s : plans) {
    s.event.postictal_s =
        random.uniform(kPostictalMin_s, std::min(kPostictalMax_s, budget - o.min_seizure_s));
    s.event.duration_s = random.log_uniform(
        o.min_seizure_s, std::min(o.max_seizure_s, budget - s.event.postictal_s));
    used += s.event.duration_s + s.event.postictal_s;
  }
  const double slack = std::max(0.0, o.duration_s - kLeadIn_s - (n - 1) * kSeizureGap_s - used);
  std::vector<double> shares(static_cast<size_t>(count) + 1);
  double share_total = 0;
  for (double& w : shares) share_total += (w = random.exponential(1));
  double t = kLeadIn_s;
  for (size_t k = 0; k < plans.size(); ++k) {
    t += slack * shares[k] / share_total;
    plans[k].event.onset_s = t;
    t += plans[k].event.duration_s + plans[k].event.postictal_s + kSeizureGap_s;
  }
  for (SeizurePlan& s : plans) plan_seizure(random, s);
  return plans;
}

// Poisson event times in [0, duration) with `per_second` events per second.
std::vector<double> poisson_times(double per_second, double duration_s, RandomStream& random) {
  std::vector<double> times;
  if (per_second <= 0) return times;
  for (double t = random.exponential(1 / per_second); t < duration_s;
       t += random.exponential(1 / per_second))
    times.push_back(t);
  return times;
}

std::vector<std::string> named_channels(const Field& field, double threshold) {
  std::vector<std::string> names;
  for (int c = 0; c < kC; ++c)
    if (field[c] >= threshold) names.push_back(kElectrodes[c].name);
  return names;
}

std::vector<ArtifactPlan> plan_artifacts(const SyntheticEegOptions& o, RandomStream& random) {
  std::vector<ArtifactPlan> plans;
  auto add = [&](ArtifactKind kind, const char* text, double onset, double duration) {
    ArtifactPlan a;
    a.kind = kind;
    a.event.kind = text;
    a.event.onset_s = onset;
    a.event.duration_s = std::min(duration, o.duration_s - onset);
    plans.push_back(a);
    return &plans.back();
  };
  const Field eyes = eye_field();
  // Temporal muscle fields: the temporal chain and F7/F8 at 1, Fp 0.4, the parasagittal
  // frontal/central electrodes 0.3.
  auto temporal_field = [](bool left, bool right) {
    Field f{};
    if (left) {
      f[ch::F7] = f[ch::T3] = f[ch::T5] = 1;
      f[ch::Fp1] = 0.4;
      f[ch::F3] = f[ch::C3] = 0.3;
    }
    if (right) {
      f[ch::F8] = f[ch::T4] = f[ch::T6] = 1;
      f[ch::Fp2] = 0.4;
      f[ch::F4] = f[ch::C4] = 0.3;
    }
    return f;
  };

  // Eye blinks: a gamma-shaped deflection A (t/tau)^2 exp(2 (1 - t/tau)), peak A at tau.
  for (double t : poisson_times(o.blinks_per_minute / 60, o.duration_s, random)) {
    const double tau = random.uniform(0.08, 0.15);
    ArtifactPlan* a = add(ArtifactKind::Blink, "eye blink", t, 4 * tau);
    a->time_constant_s = tau;
    a->amplitude = random.uniform(60, 180);
    a->field = eyes;
  }
  // Muscle bursts: broadband 20-70 Hz noise on one temporal side (both, one time in five).
  for (double t : poisson_times(o.muscle_bursts_per_minute / 60, o.duration_s, random)) {
    ArtifactPlan* a = add(ArtifactKind::Muscle, "muscle artifact", t, random.uniform(0.5, 4));
    const int side = random.choose({0.4, 0.4, 0.2}); // left, right, both
    a->field = temporal_field(side != 1, side != 0);
    a->amplitude = random.uniform(10, 40);
  }
  // Electrode pops on one channel: A (1 - exp(-t / 5 ms)) exp(-t / tau), A of either sign.
  for (double t : poisson_times(o.electrode_pops_per_minute / 60, o.duration_s, random)) {
    const double tau = random.uniform(0.15, 0.6);
    ArtifactPlan* a = add(ArtifactKind::Pop, "electrode pop", t, 3 * tau);
    a->field[random.index(kC)] = 1;
    a->amplitude = random.uniform(80, 300) * (random.chance(0.5) ? 1 : -1);
    a->time_constant_s = tau;
  }
  // Chewing: bilateral temporal muscle bursts gated at 4-6 Hz, plus the jaw movement's own
  // 4-6 Hz waveform: rhythmic, in the seizure band, but bilateral, symmetric, short and
  // without evolution.
  for (double t : poisson_times(o.chewing_per_hour / 3600, o.duration_s, random)) {
    ArtifactPlan* a = add(ArtifactKind::Chewing, "chewing artifact", t, random.uniform(3, 15));
    a->field = temporal_field(true, true);
    a->event.frequency_hz = random.uniform(4, 6);
    a->amplitude = random.uniform(20, 50);
    a->amplitude2 = random.uniform(15, 40);
  }
  // Eye flutter: blink-like half waves at 3-6 Hz on the frontopolar channels.
  for (double t : poisson_times(o.eye_flutter_per_hour / 3600, o.duration_s, random)) {
    ArtifactPlan* a = add(ArtifactKind::Flutter, "eye flutter", t, random.uniform(2, 8));
    a->field = eyes;
    a->event.frequency_hz = random.uniform(3, 6);
    a->amplitude = random.uniform(25, 70);
  }
  // Non-ictal rhythmic theta: a 5-7 Hz burst with a sin^2 envelope and a fixed frequency, over
  // one temporal region or the frontal midline (sigma 0.25 around its centre electrode).
  for (double t : poisson_times(o.theta_bursts_per_hour / 3600, o.duration_s, random)) {
    ArtifactPlan* a =
        add(ArtifactKind::ThetaBurst, "rhythmic theta (non-ictal)", t, random.uniform(1.5, 8));
    const int centre = std::array<int, 3>{ch::T3, ch::T4, ch::Fz}[random.index(3)];
    a->field = gaussian_field({{kElectrodes[centre].x, kElectrodes[centre].y}}, 0.25);
    a->event.frequency_hz = random.uniform(5, 7);
    a->amplitude = random.uniform(25, 70);
  }
  for (size_t k = 0; k < plans.size(); ++k) {
    plans[k].stream = kArtifactStream + k;
    plans[k].event.channels = named_channels(plans[k].field, 0.5);
  }
  std::stable_sort(plans.begin(), plans.end(), [](const ArtifactPlan& a, const ArtifactPlan& b) {
    return a.event.onset_s < b.event.onset_s;
  });
  return plans;
}

Plan make_plan(const SyntheticEegOptions& o) {
  RandomStream random(o.seed, kPlanStream);
  Plan plan;
  plan.alpha_hz = random.uniform(8.5, 11.5);
  plan.seizures = plan_seizures(o, random);
  // Line noise: log-normal amplitude per channel (electrode impedances differ), one phase for
  // the mains plus up to +-0.3 rad per channel.
  const double mains_phase = random.uniform(0, kTwoPi);
  for (int c = 0; c < kC; ++c) {
    plan.line_amplitude[c] = o.line_noise_uv * std::exp(0.5 * random.normal() - 0.125);
    plan.line_phase[c] = mains_phase + random.uniform(-0.3, 0.3);
  }
  plan.artifacts = plan_artifacts(o, random);
  return plan;
}

// ---- background -------------------------------------------------------------------------------
// w_t = M z_t: z_t ~ N(0, I) are 19 white sources, one under each electrode, and
//   M_cj = exp(-|p_c - p_j|^2 / (2 sigma^2)) / sqrt(sum_j' exp(-|p_c - p_j'|^2 / sigma^2)),
// rows of unit norm, so every w_c is a unit-variance white noise and corr(w_c, w_d) = M_c . M_d
// falls with the distance between c and d (sigma = spatial_sigma).
// Each w_c then drives a bank of one-pole low-passes with corners f_k = 0.5 * 2^k Hz (below
// 0.4 rate: 0.5 ... 64 Hz at 200 Hz):
//   s_{c,k,t} = a_k s_{c,k,t-1} + (1 - a_k) w_{c,t},   a_k = exp(-2 pi f_k / rate)
//   b_{c,t}   = (background_uv / sd) sum_k g_k s_{c,k,t},   g_k = f_k^(-exponent / 2)
// A sum of Lorentzian spectra g_k^2 / (1 + (f / f_k)^2) with corners evenly spaced in log f has
// the power spectrum f^-exponent between its extreme corners (Keshner 1982, "1/f noise",
// Proc. IEEE 70(3); the continuum version: substitute u = f_k / f in the integral over
// ln f_k). Here the filters share their input, which adds cross terms and flattens the slope
// somewhat: computed from the filters' responses at 200 Hz, the local slope of the power is
// -1.3 to -1.5 between 2 and 30 Hz at the default exponent 2 (-0.9 to -1.1 at exponent 1),
// flattening below 1 Hz. Scalp EEG's aperiodic exponent is typically 1-2 (Donoghue et al.
// 2020, "Parameterizing neural power spectra into periodic and aperiodic components", Nature
// Neuroscience); exponent 1 gives a visibly fuzzier trace.
// The variance of sum_k g_k s_k for unit white input, from the impulse responses
// (1 - a_k) a_k^n:  sd^2 = sum_{k,l} g_k g_l (1 - a_k)(1 - a_l) / (1 - a_k a_l).
// The filters start 4 s before t = 0 (10 time constants of the slowest), so the recording
// starts in the stationary state.
void add_background(const SyntheticEegOptions& o, int64_t samples, Signals& x) {
  std::vector<double> mix(kC * kC); // (kC, kC) row-major M
  for (int c = 0; c < kC; ++c) {
    double norm = 0;
    for (int j = 0; j < kC; ++j) {
      const double d = distance(c, j);
      mix[c * kC + j] = std::exp(-d * d / (2 * o.spatial_sigma * o.spatial_sigma));
      norm += mix[c * kC + j] * mix[c * kC + j];
    }
    for (int j = 0; j < kC; ++j) mix[c * kC + j] /= std::sqrt(norm);
  }
  std::vector<double> a, g; // (K) filter poles and weights
  for (double f = 0.5; f < 0.4 * o.rate_hz; f *= 2) {
    a.push_back(std::exp(-kTwoPi * f / o.rate_hz));
    g.push_back(std::pow(f, -o.background_exponent / 2));
  }
  const size_t K = a.size();
  double variance = 0;
  for (size_t k = 0; k < K; ++k)
    for (size_t l = 0; l < K; ++l)
      variance += g[k] * g[l] * (1 - a[k]) * (1 - a[l]) / (1 - a[k] * a[l]);
  const double scale = o.background_uv / std::sqrt(variance);

  RandomStream random(o.seed, kBackgroundStream);
  std::vector<double> sources(kC), state(kC * K, 0.0); // (kC), (kC, K)
  const int64_t warmup = static_cast<int64_t>(std::ceil(4 * o.rate_hz));
  for (int64_t t = -warmup; t < samples; ++t) {
    for (double& z : sources) z = random.normal();
    for (int c = 0; c < kC; ++c) {
      double w = 0;
      for (int j = 0; j < kC; ++j) w += mix[c * kC + j] * sources[j];
      double y = 0;
      double* s = &state[c * K];
      for (size_t k = 0; k < K; ++k) {
        s[k] = a[k] * s[k] + (1 - a[k]) * w;
        y += g[k] * s[k];
      }
      if (t >= 0) x[c][t] = scale * y;
    }
  }
}

// ---- alpha ------------------------------------------------------------------------------------
// alpha_c(t) = alpha_uv F_c env(t) sin(phi(t)), F = alpha_field() (O1/O2 1, Pz 0.67, P3/P4
// 0.55), phi' = 2 pi (alpha_hz + 0.15 z_f(t)), env = exp(0.5 z_e(t) - 0.125) (mean 1, waxing and
// waning), z_f and z_e Ornstein-Uhlenbeck with correlation times 1 s and 1.5 s. The rhythm is
// attenuated to 30% from 3 s into each seizure until the middle of its post-ictal period and
// returns by its end (alpha_gain).
double alpha_gain(const std::vector<SeizurePlan>& seizures, double t) {
  double gain = 1;
  for (const SeizurePlan& s : seizures) {
    const double start = s.event.onset_s, end = start + s.event.duration_s;
    const double back = end + s.event.postictal_s;
    const double block =
        smoothstep((t - start) / 3) * smoothstep((back - t) / (0.5 * (back - end)));
    gain = std::min(gain, 1 - 0.7 * block);
  }
  return gain;
}

void add_alpha(const SyntheticEegOptions& o, const Plan& plan, int64_t samples, Signals& x) {
  if (o.alpha_uv <= 0) return;
  RandomStream random(o.seed, kAlphaStream);
  SlowNoise frequency_noise(1.0, o.rate_hz, random), envelope_noise(1.5, o.rate_hz, random);
  const Field field = alpha_field();
  double phase = random.uniform(0, 1); // in cycles
  for (int64_t t = 0; t < samples; ++t) {
    phase += (plan.alpha_hz + 0.15 * frequency_noise.next(random)) / o.rate_hz;
    phase -= std::floor(phase);
    const double envelope = std::exp(0.5 * envelope_noise.next(random) - 0.125);
    const double value =
        o.alpha_uv * envelope * alpha_gain(plan.seizures, t / o.rate_hz) * std::sin(kTwoPi * phase);
    for (int c = 0; c < kC; ++c)
      if (field[c] > 1e-3) x[c][t] += field[c] * value;
  }
}

// ---- seizures ---------------------------------------------------------------------------------
// One source waveform S(t), t in [0, D) seconds from onset, drives every involved channel:
//   ictal_c(t) = m_c smoothstep((t - delay_c) / 2 s) A(t) S(t - lag_c)
// with m_c, delay_c, lag_c from plan_seizure. Amplitude, growing then ending within 1 s:
//   A(t) = peak_uv (0.25 + 0.75 smoothstep(t / 0.6 D)) smoothstep(t / 0.5) smoothstep(D - t)
// The discharge: a phase phi advancing at f(t) = (start_hz + (end_hz - start_hz) u)(1 + 0.03 z(t)),
// u = t / D (z: Ornstein-Uhlenbeck, 2 s), each cycle scaled by its own exp(0.15 N), and a
// waveform that morphs from a sinusoid into spike-and-wave as the sharpness s(u) grows:
//   S = (1 - s) sin(2 pi phi) + s sw(phi)
//   sw(phi) = -1.8 G(phi - 0.12; sigma_sp) + 0.5 G(phi - 0.22; 2 sigma_sp) - G(phi - 0.5; 0.13)
//             - mean,   G(d; sigma) = exp(-d^2 / (2 sigma^2)), d wrapped to [-0.5, 0.5),
// a surface-negative spike of sigma 12 ms (sigma_sp = 0.012 s * f in cycles), a positive
// transient and a negative slow wave; mean = sqrt(2 pi)(-1.8 sigma_sp + sigma_sp - 0.13), the
// Gaussians' integrals, so that sw averages to about zero over a cycle.
// FastThenTheta starts with fast_hz activity at 0.15 peak_uv ("low-voltage fast") for fast_s,
// cross-fading over 2 s into the rhythmic discharge, whose u then runs from fast_s to D.
double wrapped(double d) { return d - std::floor(d + 0.5); }
double spike_and_wave(double phase, double hz) {
  const double sigma_spike = 0.012 * hz;
  auto bump = [](double d, double sigma) { return std::exp(-d * d / (2 * sigma * sigma)); };
  const double mean = std::sqrt(kTwoPi) * (-1.8 * sigma_spike + sigma_spike - 0.13);
  return -1.8 * bump(wrapped(phase - 0.12), sigma_spike) +
         0.5 * bump(wrapped(phase - 0.22), 2 * sigma_spike) - bump(wrapped(phase - 0.5), 0.13) -
         mean;
}

void add_seizure(const SyntheticEegOptions& o, const SeizurePlan& s, uint64_t stream,
                 int64_t samples, Signals& x) {
  RandomStream random(o.seed, stream);
  const SeizureEvent& e = s.event;
  const double D = e.duration_s;
  const int64_t n_samples = static_cast<int64_t>(std::ceil(D * o.rate_hz));
  std::vector<double> source(n_samples); // S(t) at t = n / rate
  std::vector<double> amplitude(n_samples);
  SlowNoise jitter(2.0, o.rate_hz, random);
  double phase = 0, fast_phase = 0, cycle_gain = 1;
  const bool fast = s.pattern == Pattern::FastThenTheta;
  const double rhythmic_from = fast ? s.fast_s : 0;
  for (int64_t n = 0; n < n_samples; ++n) {
    const double t = n / o.rate_hz;
    const double u = std::clamp((t - rhythmic_from) / (D - rhythmic_from), 0.0, 1.0);
    const double hz = (e.start_hz + (e.end_hz - e.start_hz) * u) * (1 + 0.03 * jitter.next(random));
    phase += hz / o.rate_hz;
    if (phase >= 1) {
      phase -= 1;
      cycle_gain = std::exp(0.15 * random.normal());
    }
    const double sharpness = s.sharpness_start + (s.sharpness_end - s.sharpness_start) * u;
    double value = cycle_gain * ((1 - sharpness) * std::sin(kTwoPi * phase) +
                                 sharpness * spike_and_wave(phase, hz));
    if (fast) {
      fast_phase += s.fast_hz / o.rate_hz;
      fast_phase -= std::floor(fast_phase);
      const double fast_weight = 1 - smoothstep((t - s.fast_s) / 2);
      value = fast_weight * 0.15 * std::sin(kTwoPi * fast_phase) + (1 - fast_weight) * value;
    }
    source[n] = value;
    amplitude[n] = e.peak_uv * (0.25 + 0.75 * smoothstep(t / (0.6 * D))) * smoothstep(t / 0.5) *
                   smoothstep((D - t) / 1.0);
  }
  const int64_t onset = static_cast<int64_t>(std::llround(e.onset_s * o.rate_hz));
  for (int c = 0; c < kC; ++c) {
    if (s.involvement[c] == 0) continue;
    const int64_t lag = static_cast<int64_t>(std::llround(s.lag_s[c] * o.rate_hz));
    for (int64_t n = std::max<int64_t>(lag, 0); n < n_samples && onset + n < samples; ++n) {
      const double recruited = smoothstep((n / o.rate_hz - s.delay_s[c]) / kRecruitRamp_s);
      x[c][onset + n] += s.involvement[c] * recruited * amplitude[n] * source[n - lag];
    }
  }
}

// ---- post-ictal -------------------------------------------------------------------------------
// For t' in [0, P) after the seizure's end, with m_c the channel's involvement at the end
// (m_c times its recruitment):
//   background gain_c(t') = 1 - m_c (1 - suppression) smoothstep(t' / 1 s) exp(-3 t' / P)
//   delta_c(t')           = m_c delta_uv smoothstep(t' / 2 s) (1 - t' / P)^2 d(t')
// d is one band-passed noise per seizure (two one-pole low-passes at 2 Hz, minus a one-pole
// low-pass at 0.4 Hz of the result: mostly 0.4-2 Hz), scaled to unit RMS over the period.
Field involvement_at_end(const SeizurePlan& s) {
  Field m{};
  for (int c = 0; c < kC; ++c)
    m[c] = s.involvement[c] * smoothstep((s.event.duration_s - s.delay_s[c]) / kRecruitRamp_s);
  return m;
}

void attenuate_background(const SyntheticEegOptions& o, const SeizurePlan& s, int64_t samples,
                          Signals& x) {
  const Field m = involvement_at_end(s);
  const double P = s.event.postictal_s;
  const int64_t end = std::llround((s.event.onset_s + s.event.duration_s) * o.rate_hz);
  const int64_t n_samples = static_cast<int64_t>(std::ceil(P * o.rate_hz));
  for (int64_t n = 0; n < n_samples && end + n < samples; ++n) {
    const double t = n / o.rate_hz;
    const double depth = (1 - s.suppression) * smoothstep(t / 1.0) * std::exp(-3 * t / P);
    for (int c = 0; c < kC; ++c) x[c][end + n] *= 1 - m[c] * depth;
  }
}

void add_postictal_delta(const SyntheticEegOptions& o, const SeizurePlan& s, uint64_t stream,
                         int64_t samples, Signals& x) {
  RandomStream random(o.seed, stream);
  const Field m = involvement_at_end(s);
  const double P = s.event.postictal_s;
  const int64_t end = std::llround((s.event.onset_s + s.event.duration_s) * o.rate_hz);
  const int64_t n_samples = static_cast<int64_t>(std::ceil(P * o.rate_hz));
  const int64_t warmup = static_cast<int64_t>(std::ceil(5 * o.rate_hz));
  OnePole low1(2, o.rate_hz), low2(2, o.rate_hz), drift(0.4, o.rate_hz);
  std::vector<double> d(n_samples);
  double energy = 0;
  for (int64_t n = -warmup; n < n_samples; ++n) {
    const double y = low2.step(low1.step(random.normal()));
    const double band = y - drift.step(y);
    if (n < 0) continue;
    d[n] = band;
    energy += band * band;
  }
  const double rms = std::sqrt(energy / std::max<int64_t>(n_samples, 1));
  for (int64_t n = 0; n < n_samples && end + n < samples; ++n) {
    const double t = n / o.rate_hz;
    const double envelope = s.delta_uv * smoothstep(t / 2.0) * (1 - t / P) * (1 - t / P);
    for (int c = 0; c < kC; ++c)
      if (m[c] > 0) x[c][end + n] += m[c] * envelope * d[n] / rms;
  }
}

// ---- artifacts --------------------------------------------------------------------------------
// Muscle noise: white noise high-passed at 20 Hz (minus its one-pole low-pass) then low-passed
// at min(70 Hz, 0.4 rate), scaled to unit RMS over the event; independent per channel.
std::vector<double> muscle_noise(int64_t n_samples, double rate_hz, RandomStream& random) {
  OnePole high_cut(std::min(70.0, 0.4 * rate_hz), rate_hz), low_cut(20, rate_hz);
  std::vector<double> noise(n_samples);
  double energy = 0;
  for (int64_t n = 0; n < n_samples; ++n) {
    const double w = random.normal();
    noise[n] = high_cut.step(w - low_cut.step(w));
    energy += noise[n] * noise[n];
  }
  const double rms = std::sqrt(energy / std::max<int64_t>(n_samples, 1));
  for (double& v : noise) v /= rms > 0 ? rms : 1;
  return noise;
}

// Adds one artifact. The waveform, for t in seconds from its onset:
//   blink    A (t / tau)^2 exp(2 (1 - t / tau)) over [0, 10 tau)
//   muscle   A burst_envelope(t; 0.1 s) noise_c(t)
//   pop      A (1 - exp(-t / 5 ms)) exp(-t / tau) over [0, 10 tau)
//   chewing  burst_envelope(t; 0.5 s) (A max(0, sin 2 pi phi)^2 1.6 noise_c(t)
//                                      + A2 (sin 2 pi phi + 0.3 sin 4 pi phi))
//   flutter  A burst_envelope(t; 0.5 s) (1 - cos 2 pi phi) / 2
//   theta    A sin^2(pi t / L) sin 2 pi phi
// each times the channel's field weight; phi advances at the event's frequency (x (1 + 0.03 z),
// z Ornstein-Uhlenbeck with 1 s correlation, for chewing and flutter).
void add_artifact(const SyntheticEegOptions& o, const ArtifactPlan& a, int64_t samples,
                  Signals& x) {
  RandomStream random(o.seed, a.stream);
  const double rate = o.rate_hz;
  const int64_t onset = std::llround(a.event.onset_s * rate);
  double length_s = a.event.duration_s;
  if (a.kind == ArtifactKind::Blink || a.kind == ArtifactKind::Pop)
    length_s = 10 * a.time_constant_s;
  const int64_t n_samples =
      std::min<int64_t>(static_cast<int64_t>(std::ceil(length_s * rate)), samples - onset);
  if (n_samples <= 0) return;
  const double L = a.event.duration_s;

  std::vector<double> common(n_samples, 0.0); // (n_samples) the part shared by every channel
  std::vector<double> chew_gate;              // (n_samples) chewing: muscle gate x amplitude
  if (a.kind == ArtifactKind::Chewing) chew_gate.resize(n_samples);
  SlowNoise jitter(1.0, rate, random);
  double phase = 0;
  for (int64_t n = 0; n < n_samples; ++n) {
    const double t = n / rate;
    const double tau = a.time_constant_s;
    switch (a.kind) {
      case ArtifactKind::Blink:
        common[n] = a.amplitude * (t / tau) * (t / tau) * std::exp(2 * (1 - t / tau));
        break;
      case ArtifactKind::Pop:
        common[n] = a.amplitude * (1 - std::exp(-t / 0.005)) * std::exp(-t / tau);
        break;
      case ArtifactKind::Muscle: common[n] = a.amplitude * burst_envelope(t, L, 0.1); break;
      case ArtifactKind::Chewing:
      case ArtifactKind::Flutter:
      case ArtifactKind::ThetaBurst: {
        const double hz = a.event.frequency_hz *
                          (a.kind == ArtifactKind::ThetaBurst ? 1 : 1 + 0.03 * jitter.next(random));
        phase += hz / rate;
        phase -= std::floor(phase);
        const double sine = std::sin(kTwoPi * phase);
        if (a.kind == ArtifactKind::Flutter) {
          common[n] =
              a.amplitude * burst_envelope(t, L, 0.5) * 0.5 * (1 - std::cos(kTwoPi * phase));
        } else if (a.kind == ArtifactKind::ThetaBurst) {
          const double rise = std::sin(0.5 * kTwoPi * t / L);
          common[n] = a.amplitude * rise * rise * sine;
        } else {
          const double envelope = burst_envelope(t, L, 0.5), gate = std::max(0.0, sine);
          common[n] = envelope * a.amplitude2 * (sine + 0.3 * std::sin(2 * kTwoPi * phase));
          chew_gate[n] = 1.6 * a.amplitude * envelope * gate * gate;
        }
        break;
      }
    }
  }
  for (int c = 0; c < kC; ++c) {
    if (a.field[c] < 1e-3) continue;
    double* out = &x[c][onset];
    if (a.kind == ArtifactKind::Muscle) {
      const std::vector<double> noise = muscle_noise(n_samples, rate, random);
      for (int64_t n = 0; n < n_samples; ++n) out[n] += a.field[c] * common[n] * noise[n];
    } else if (a.kind == ArtifactKind::Chewing) {
      const std::vector<double> noise = muscle_noise(n_samples, rate, random);
      for (int64_t n = 0; n < n_samples; ++n)
        out[n] += a.field[c] * (common[n] + chew_gate[n] * noise[n]);
    } else {
      for (int64_t n = 0; n < n_samples; ++n) out[n] += a.field[c] * common[n];
    }
  }
}

// Line noise: line_c(t) = a_c sin(2 pi f_line t + phase_c), computed from one sine and cosine per
// sample: a_c (cos phase_c sin w t + sin phase_c cos w t).
void add_line_noise(const SyntheticEegOptions& o, const Plan& plan, int64_t samples, Signals& x) {
  if (o.line_noise_uv <= 0) return;
  Field sin_weight{}, cos_weight{};
  for (int c = 0; c < kC; ++c) {
    sin_weight[c] = plan.line_amplitude[c] * std::cos(plan.line_phase[c]);
    cos_weight[c] = plan.line_amplitude[c] * std::sin(plan.line_phase[c]);
  }
  const double omega = kTwoPi * o.line_noise_hz / o.rate_hz;
  for (int64_t t = 0; t < samples; ++t) {
    const double s = std::sin(omega * t), k = std::cos(omega * t);
    for (int c = 0; c < kC; ++c) x[c][t] += sin_weight[c] * s + cos_weight[c] * k;
  }
}

// ---- the note ---------------------------------------------------------------------------------

// items joined by `separator`, the last two by `last_separator`: "a, b and c".
std::string join(const std::vector<std::string>& items, const std::string& separator,
                 const std::string& last_separator) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += i + 1 == items.size() ? last_separator : separator;
    text += items[i];
  }
  return text;
}

std::string seconds_text(double seconds) {
  return std::to_string(static_cast<long long>(std::llround(seconds))) + " s";
}

std::string describe_pattern(const SeizurePlan& s) {
  const SeizureEvent& e = s.event;
  switch (s.pattern) {
    case Pattern::RhythmicTheta:
      return "rhythmic " + hz_text(e.start_hz) + " theta evolving to " + hz_text(e.end_hz) +
             " spike-and-wave with increasing amplitude";
    case Pattern::SpikeAndWave:
      return hz_text(e.start_hz) + " spike-and-wave slowing to " + hz_text(e.end_hz) +
             " with increasing amplitude";
    case Pattern::FastThenTheta:
      return "low-voltage fast activity at " + hz_text(s.fast_hz) + " for " +
             seconds_text(s.fast_s) + ", then rhythmic " + hz_text(e.start_hz) +
             " theta evolving to " + hz_text(e.end_hz) +
             " spike-and-wave with increasing amplitude";
  }
  return "";
}

std::string describe_spread(const SeizureEvent& e) {
  if (e.spread_channels.empty()) return "remaining focal";
  std::vector<std::string> parts;
  for (const ChannelGroup& group : channel_groups()) {
    std::vector<std::string> reached;
    for (int c : group.channels)
      if (std::find(e.spread_channels.begin(), e.spread_channels.end(), kElectrodes[c].name) !=
          e.spread_channels.end())
        reached.push_back(kElectrodes[c].name);
    if (!reached.empty())
      parts.push_back(std::string("the ") + group.name + " (" + join(reached, ", ", ", ") + ")");
  }
  return "with spread to " + join(parts, ", ", " and ") + " within " + seconds_text(e.spread_s);
}

std::string make_note(const SyntheticEegOptions& o, const Plan& plan) {
  std::string note = "Synthetic scalp EEG (seed " + std::to_string(o.seed) +
                     "): 19 channels of the 10-20 system, referential montage, " +
                     number_text(o.rate_hz) + " Hz, duration " + format_clock(o.duration_s) +
                     ". Background: a " + hz_text(plan.alpha_hz) +
                     " posterior dominant rhythm, waxing and waning, maximal over O1/O2, on "
                     "low-voltage mixed-frequency activity.";
  if (plan.seizures.empty()) note += "\nNo seizures.";
  for (size_t k = 0; k < plan.seizures.size(); ++k) {
    const SeizurePlan& s = plan.seizures[k];
    const SeizureEvent& e = s.event;
    note += "\nSeizure " + std::to_string(k + 1) + ": focal seizure at " + format_clock(e.onset_s) +
            " arising from the " + e.region + " region (" + join(e.onset_channels, ", ", ", ") +
            "), " + describe_pattern(s) + ", " + describe_spread(e) + "; duration " +
            seconds_text(e.duration_s) + "; followed by " + seconds_text(e.postictal_s) +
            " of post-ictal delta slowing and attenuation, maximal over the " + e.region +
            " region.";
  }
  // Artifacts: counts for the frequent kinds, times for the rhythmic ones.
  int blinks = 0, muscle = 0;
  std::vector<std::string> pops, chewing, flutter, theta;
  for (const ArtifactPlan& a : plan.artifacts) {
    const ArtifactEvent& e = a.event;
    const std::string when = format_clock(e.onset_s);
    const std::string rhythm = hz_text(e.frequency_hz) + ", " + seconds_text(e.duration_s);
    switch (a.kind) {
      case ArtifactKind::Blink: ++blinks; break;
      case ArtifactKind::Muscle: ++muscle; break;
      case ArtifactKind::Pop: pops.push_back(when + " (" + e.channels.front() + ")"); break;
      case ArtifactKind::Chewing: chewing.push_back(when + " (" + rhythm + ")"); break;
      case ArtifactKind::Flutter: flutter.push_back(when + " (" + rhythm + ")"); break;
      case ArtifactKind::ThetaBurst:
        theta.push_back("at " + when + " (" + rhythm + ", " + join(e.channels, ", ", ", ") + ")");
        break;
    }
  }
  std::vector<std::string> parts;
  if (blinks > 0) parts.push_back(std::to_string(blinks) + " eye blink" + (blinks > 1 ? "s" : ""));
  if (muscle > 0)
    parts.push_back(std::to_string(muscle) + " muscle burst" + (muscle > 1 ? "s" : "") +
                    " over the temporal regions");
  if (!chewing.empty())
    parts.push_back("rhythmic chewing artifact at " + join(chewing, ", ", ", "));
  if (!flutter.empty()) parts.push_back("eye flutter at " + join(flutter, ", ", ", "));
  if (!pops.empty())
    parts.push_back((pops.size() > 1 ? "electrode pops at " : "an electrode pop at ") +
                    join(pops, ", ", ", "));
  if (o.line_noise_uv > 0) parts.push_back(number_text(o.line_noise_hz) + " Hz line noise");
  note += "\nArtifacts: " + (parts.empty() ? std::string("none") : join(parts, "; ", "; ")) + ".";
  if (!theta.empty())
    note += "\nNon-epileptiform rhythmic theta without evolution " + join(theta, "; ", "; ") + ".";
  return note;
}

// ---- checks -----------------------------------------------------------------------------------

} // namespace

void check_synthetic_eeg_options(const SyntheticEegOptions& o) {
  auto fail = [](const std::string& name, double value, const std::string& expected) {
    throw std::invalid_argument("generate_synthetic_eeg: " + name + " = " + number_text(value) +
                                ", expected " + expected);
  };
  auto finite = [](double v) { return std::isfinite(v); };
  if (!(finite(o.rate_hz) && o.rate_hz >= 64)) fail("rate_hz", o.rate_hz, "a rate >= 64 Hz");
  if (!(finite(o.duration_s) && o.duration_s > 0)) fail("duration_s", o.duration_s, "> 0");
  if (o.duration_s * o.rate_hz > 2147483647.0)
    fail("duration_s * rate_hz", o.duration_s * o.rate_hz, "at most 2^31 - 1 samples");
  if (o.seizures < -1) fail("seizures", static_cast<double>(o.seizures), ">= 0, or -1 (Poisson)");
  if (!(finite(o.min_seizure_s) && o.min_seizure_s >= 4))
    fail("min_seizure_s", o.min_seizure_s, ">= 4 s");
  if (!(finite(o.max_seizure_s) && o.max_seizure_s >= o.min_seizure_s))
    fail("max_seizure_s", o.max_seizure_s, ">= min_seizure_s");
  if (!(finite(o.background_exponent) && o.background_exponent >= 0 && o.background_exponent <= 3))
    fail("background_exponent", o.background_exponent, "a value in [0, 3]");
  if (!(finite(o.spatial_sigma) && o.spatial_sigma > 0))
    fail("spatial_sigma", o.spatial_sigma, "> 0");
  const std::pair<const char*, double> non_negative[] = {
      {"seizures_per_hour", o.seizures_per_hour},
      {"background_uv", o.background_uv},
      {"alpha_uv", o.alpha_uv},
      {"line_noise_uv", o.line_noise_uv},
      {"blinks_per_minute", o.blinks_per_minute},
      {"muscle_bursts_per_minute", o.muscle_bursts_per_minute},
      {"electrode_pops_per_minute", o.electrode_pops_per_minute},
      {"chewing_per_hour", o.chewing_per_hour},
      {"eye_flutter_per_hour", o.eye_flutter_per_hour},
      {"theta_bursts_per_hour", o.theta_bursts_per_hour},
  };
  for (const auto& [name, value] : non_negative)
    if (!(finite(value) && value >= 0)) fail(name, value, "a finite value >= 0");
  if (o.line_noise_uv > 0 &&
      !(finite(o.line_noise_hz) && o.line_noise_hz > 0 && o.line_noise_hz < o.rate_hz / 2))
    fail("line_noise_hz", o.line_noise_hz, "a frequency in (0, rate_hz / 2)");
  if (const int64_t fit = max_seizures_that_fit(o); o.seizures > fit)
    throw std::invalid_argument(
        "generate_synthetic_eeg: " + std::to_string(o.seizures) + " seizures do not fit in " +
        number_text(o.duration_s) + " s (each needs min_seizure_s " + number_text(o.min_seizure_s) +
        " s + " + number_text(kPostictalMin_s) + " s post-ictal, with " +
        number_text(kSeizureGap_s) + " s between them after a " + number_text(kLeadIn_s) +
        " s lead-in); at most " + std::to_string(fit) + " fit");
}

// ---- public -----------------------------------------------------------------------------------

const Electrode& ten_twenty_electrode(int index) {
  if (index < 0 || index >= kC)
    throw std::invalid_argument("ten_twenty_electrode: index " + std::to_string(index) +
                                " out of range [0, 19)");
  return kElectrodes[index];
}

int ten_twenty_index(const std::string& name) {
  for (int c = 0; c < kC; ++c) {
    const std::string electrode = kElectrodes[c].name;
    if (electrode.size() == name.size() &&
        std::equal(name.begin(), name.end(), electrode.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        }))
      return c;
  }
  return -1;
}

uint64_t synthetic_recording_seed(uint64_t set_seed, int64_t index) {
  const std::array<uint32_t, 4> words = philox4x32(set_seed, static_cast<uint64_t>(index));
  return static_cast<uint64_t>(words[0]) << 32 | words[1];
}

std::string format_clock(double seconds) {
  const long long total = std::llround(std::max(0.0, seconds));
  char text[32];
  if (total >= 3600)
    std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", total / 3600, total / 60 % 60,
                  total % 60);
  else
    std::snprintf(text, sizeof(text), "%02lld:%02lld", total / 60, total % 60);
  return text;
}

SyntheticEeg generate_synthetic_eeg(const SyntheticEegOptions& options) {
  check_synthetic_eeg_options(options);
  const SyntheticEegOptions& o = options;
  const int64_t samples = std::max<int64_t>(1, std::llround(o.duration_s * o.rate_hz));
  const Plan plan = make_plan(o);

  Signals x(kC, std::vector<double>(samples, 0.0)); // (kC, samples) uV
  add_background(o, samples, x);
  for (const SeizurePlan& s : plan.seizures) attenuate_background(o, s, samples, x);
  add_alpha(o, plan, samples, x);
  for (size_t k = 0; k < plan.seizures.size(); ++k) {
    add_seizure(o, plan.seizures[k], kSeizureStream + 2 * k, samples, x);
    add_postictal_delta(o, plan.seizures[k], kSeizureStream + 2 * k + 1, samples, x);
  }
  for (const ArtifactPlan& a : plan.artifacts) add_artifact(o, a, samples, x);
  add_line_noise(o, plan, samples, x);

  SyntheticEeg out;
  Recording& r = out.recording;
  r.duration_s = samples / o.rate_hz;
  r.patient = "SYN-" + std::to_string(o.seed) + " X X Synthetic";
  r.recording_id = "Startdate 01-JAN-2000 X X synthetic_eeg";
  r.source_format = "synthetic";
  for (int c = 0; c < kC; ++c) {
    Channel channel;
    channel.label = kElectrodes[c].label;
    channel.rate_hz = o.rate_hz;
    channel.samples = std::move(x[c]);
    channel.transducer = "synthetic";
    r.channels.push_back(std::move(channel));
  }
  for (const SeizurePlan& s : plan.seizures) {
    out.seizures.push_back(s.event);
    r.annotations.push_back({s.event.onset_s, s.event.duration_s, "seizure"});
    r.annotations.push_back(
        {s.event.onset_s + s.event.duration_s, s.event.postictal_s, "post-ictal slowing"});
  }
  for (const ArtifactPlan& a : plan.artifacts) {
    out.artifacts.push_back(a.event);
    if (o.annotate_artifacts)
      r.annotations.push_back({a.event.onset_s, a.event.duration_s, a.event.kind});
  }
  std::stable_sort(r.annotations.begin(), r.annotations.end(),
                   [](const Annotation& a, const Annotation& b) { return a.onset_s < b.onset_s; });
  out.alpha_hz = plan.alpha_hz;
  out.note = make_note(o, plan);
  return out;
}

} // namespace ssm::eeg
