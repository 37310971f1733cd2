// eeg_preprocess.cpp: channel names, montages, resampling, filters, normalisation and clips
// (the interface and the choices are summarised in data/eeg_preprocess.h).
//
// ---- Polyphase resampling, the sum actually computed ---------------------------------------
// With p/q = to/from reduced, the upsampled signal is u[j] = x[j / p] when p divides j, else 0,
// at rate p * from. The low-pass h (2 H + 1 taps, centred on tap H, so zero delay) gives
//   v[j] = sum_i h[i + H] u[j - i],   i = -H .. H
// and the output keeps every q-th sample, y[k] = v[k q]. Only the u[j - i] with j - i = n p
// are non-zero, so
//   y[k] = sum_n x[n] h[k q - n p + H],   ceil((k q - H) / p) <= n <= floor((k q + H) / p)
// about (2 H + 1) / p products per output, cycling through p phases of h (the polyphase
// decomposition of Crochiere & Rabiner 1983). Output k is at time k q / (p from) = k / to:
// sample 0 of both coincide. h is the ideal low-pass of cutoff omega_c (rad/sample at rate
// p * from), scaled by p because zero-stuffing divides the average level by p, under a Kaiser
// window w:
//   h[i + H] = p (omega_c / pi) sinc(omega_c i / pi) w[i],   sinc(t) = sin(pi t) / (pi t)
//   w[i] = I0(beta sqrt(1 - (i / H)^2)) / I0(beta)
// with Kaiser's design rules for stopband attenuation A dB and transition width dw rad/sample
// (Kaiser 1974; Oppenheim & Schafer, "Discrete-Time Signal Processing", Kaiser window method):
//   beta = 0.1102 (A - 8.7)                              for A > 50
//        = 0.5842 (A - 21)^0.4 + 0.07886 (A - 21)        for 21 <= A <= 50
//   2 H  = ceil((A - 8) / (2.285 dw)), rounded up to even.
// The lower Nyquist frequency is pi / max(p, q) in these units; the transition band is its
// last transition_fraction, so omega_c = (1 - transition_fraction / 2) pi / max(p, q) and
// dw = transition_fraction pi / max(p, q).
//
// ---- Biquads, filtfilt and the edges -------------------------------------------------------
// Each section runs in transposed direct form II:
//   y[n] = b0 x[n] + z1,   z1 <- b1 x[n] - a1 y[n] + z2,   z2 <- b2 x[n] - a2 y[n]
// For a constant input x the steady state has y = g x with g = (b0 + b1 + b2) / (1 + a1 + a2)
// (the gain at f = 0), and then z2 = (b2 - a2 g) x, z1 = (b1 + b2 - (a1 + a2) g) x: a section
// started there produces no transient for a signal that begins at level x. filtfilt pads the
// signal at each end with its even (mirror) reflection, x_pad[-i] = x[i], starts every section
// in the steady state of the first padded value, filters forward, reverses, filters again,
// reverses and drops the padding. The padding is long enough for the slowest pole (radius r)
// to decay by 1e-6: ceil(ln 1e-6 / ln r) samples, at least 3 (2 sections + 1), at most the
// signal length - 1 (a reflection cannot be longer).
// Why even and not odd (2 x[0] - x[i], scipy's default, which also continues the slope): the
// odd reflection's mean is 2 x[0] - mean(x), so where an oscillation ends away from zero the
// padding sits on a step of 2 (x[0] - mean), and a 0.5 Hz high-pass rings on that step for
// seconds. Measured on 60 s of a unit 10 Hz sine of phase 0.7 through the default 0.5-70 Hz
// band-pass at 200 Hz, max |y - x| in the first and last second: odd 0.64, even 0.070; from 1
// to 5 s: odd 0.088, even 0.0040. The resampler keeps the odd reflection: its filter is a
// low-pass with no long memory, and there continuing the slope matters more.
//
// Butterworth sections: an order-n analog Butterworth low-pass 1 / B_n(s) factors into
// 1 / (s^2 + s / Q_k + 1) for the pole pairs at angle psi_k = (2k+1) pi / (2n) from the
// imaginary axis, Q_k = 1 / (2 sin psi_k), k = 0 .. floor(n/2) - 1, and 1 / (s + 1) for odd n.
// The bilinear transform s = (1 - z^-1) / (K (1 + z^-1)), K = tan(w0 / 2), w0 = 2 pi fc / fs,
// maps the analog cutoff 1 to fc exactly; for a pair the result is the cookbook's
//   low-pass:  b = ((1 - cos w0) / 2, 1 - cos w0, (1 - cos w0) / 2) / a0
//   high-pass: b = ((1 + cos w0) / 2, -(1 + cos w0), (1 + cos w0) / 2) / a0
//   a = (1, -2 cos w0 / a0, (1 - alpha) / a0),  a0 = 1 + alpha,  alpha = sin w0 / (2 Q)
// and for the first-order factor
//   low-pass:  b = (K, K) / (K + 1),   high-pass: b = (1, -1) / (K + 1),   a1 = (K - 1) / (K + 1)
// The notch (cookbook): b = (1, -2 cos w0, 1) / a0, a as above with alpha = sin w0 / (2 q).
#include "data/eeg_preprocess.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <complex>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "tensor/cpu/parallel.h"

namespace ssm::eeg {

namespace {

constexpr double kPi = 3.14159265358979323846;

// A number for an error message: up to 10 significant digits, no trailing zeros.
std::string fmt(double value) {
  std::ostringstream out;
  out.precision(10);
  out << value;
  return out.str();
}

std::string trim(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return s.substr(begin, end - begin);
}

std::string to_upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string to_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ---- channel names -------------------------------------------------------------------------

// The 10-10 prefixes: upper-case form, canonical spelling, the largest number, and whether a
// midline "z" electrode exists.
struct ElectrodePrefix {
  const char* upper;
  const char* spelled;
  int max_number;
  bool has_midline;
};
constexpr ElectrodePrefix kPrefixes[] = {
    {"FP", "Fp", 2, true},   {"AF", "AF", 10, true}, {"F", "F", 10, true},
    {"FT", "FT", 10, false}, {"FC", "FC", 10, true}, {"T", "T", 10, false},
    {"TP", "TP", 10, false}, {"C", "C", 10, true},   {"CP", "CP", 10, true},
    {"P", "P", 10, true},    {"PO", "PO", 10, true}, {"O", "O", 10, true},
    {"I", "I", 10, true},    {"A", "A", 2, false},   {"M", "M", 2, false},
};

// Upper-case forms after '-' that name a reference rather than a second electrode.
constexpr const char* kReferences[] = {"REF", "LE", "AR", "AVG",  "AV",   "CAR", "A1",
                                       "A2",  "M1", "M2", "A1A2", "M1M2", "LM"};

// The four positions the 10-10 system renamed: classic (10-20) name, 10-10 name.
constexpr std::pair<const char*, const char*> kTemporalRenames[] = {
    {"T3", "T7"}, {"T4", "T8"}, {"T5", "P7"}, {"T6", "P8"}};

// "FP1" -> "Fp1", "CZ" -> "Cz", "T7" -> "T7" (spelling only, no renaming); "" if the upper-case
// token is not a 10-10 electrode.
std::string spell_electrode_token(const std::string& token) {
  size_t letters = 0;
  while (letters < token.size() && std::isalpha(static_cast<unsigned char>(token[letters])))
    ++letters;
  std::string prefix = token.substr(0, letters);
  const std::string number = token.substr(letters);
  const bool midline = number.empty() && prefix.size() >= 2 && prefix.back() == 'Z';
  if (midline) prefix.pop_back();
  for (const ElectrodePrefix& p : kPrefixes) {
    if (prefix != p.upper) continue;
    if (midline) return p.has_midline ? std::string(p.spelled) + "z" : "";
    if (number.empty() || number.size() > 2 || number[0] == '0') return "";
    for (char c : number)
      if (!std::isdigit(static_cast<unsigned char>(c))) return "";
    const int value = std::stoi(number);
    return value <= p.max_number ? std::string(p.spelled) + number : "";
  }
  return "";
}

// A channel label -> the electrode in canonical spelling, without temporal renaming.
std::string spell_electrode(const std::string& label) {
  std::string s = to_upper(trim(label));
  if (s.compare(0, 3, "EEG") == 0) {
    size_t rest = 3;
    while (rest < s.size() && (s[rest] == ' ' || s[rest] == ':' || s[rest] == '_')) ++rest;
    if (rest == 3) return ""; // "EEG" alone, or "EEGX...": not the prefix form
    s = s.substr(rest);
  }
  while (!s.empty() && s.back() == '.') s.pop_back();
  const size_t dash = s.find('-');
  if (dash != std::string::npos) {
    const std::string reference = trim(s.substr(dash + 1));
    const bool known = std::any_of(std::begin(kReferences), std::end(kReferences),
                                   [&](const char* r) { return reference == r; });
    if (!known) return "";
  }
  return spell_electrode_token(trim(s.substr(0, dash)));
}

std::string classic_name(const std::string& spelled) {
  for (const auto& [classic, modern] : kTemporalRenames)
    if (spelled == modern) return classic;
  return spelled;
}

// '"EEG FP1-REF" (Fp1), "ECG" (not an EEG electrode)', for error messages.
std::string describe_channels(const Recording& recording) {
  if (recording.channels.empty()) return "(no channels)";
  std::string text;
  for (const Channel& channel : recording.channels) {
    const std::string electrode = canonical_electrode(channel.label);
    if (!text.empty()) text += ", ";
    text += "\"" + channel.label + "\" (" +
            (electrode.empty() ? std::string("not an EEG electrode") : electrode) + ")";
  }
  return text;
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// Everything of a recording but its channels.
Recording header_of(const Recording& recording) {
  Recording out;
  out.annotations = recording.annotations;
  out.duration_s = recording.duration_s;
  out.patient = recording.patient;
  out.recording_id = recording.recording_id;
  out.start_date = recording.start_date;
  out.start_time = recording.start_time;
  out.source_format = recording.source_format;
  return out;
}

// The index of the single channel whose canonical electrode is `electrode`; -1 if none; throws
// when several channels are that electrode.
int64_t find_electrode(const Recording& recording, const std::string& electrode, const char* op) {
  std::vector<int64_t> found;
  for (size_t i = 0; i < recording.channels.size(); ++i)
    if (canonical_electrode(recording.channels[i].label) == electrode)
      found.push_back(static_cast<int64_t>(i));
  if (found.size() > 1) {
    std::string labels;
    for (int64_t i : found)
      labels += (labels.empty() ? "\"" : ", \"") + recording.channels[i].label + "\"";
    throw std::invalid_argument(std::string(op) + ": electrode " + electrode +
                                " is ambiguous: the recording has " + std::to_string(found.size()) +
                                " channels for it (" + labels + ")");
  }
  return found.empty() ? -1 : found[0];
}

// ---- resampling ----------------------------------------------------------------------------

void check_rate(const char* op, const char* what, double rate_hz) {
  if (!(std::isfinite(rate_hz) && rate_hz > 0))
    throw std::invalid_argument(std::string(op) + ": expected " + what +
                                " to be a positive number of Hz, got " + fmt(rate_hz));
}

// to/from as a reduced fraction p/q, reading both rates as decimals of up to 6 places.
std::pair<int64_t, int64_t> rational_ratio(double from_hz, double to_hz, int64_t max_factor) {
  for (int decimals = 0; decimals <= 6; ++decimals) {
    const double scale = std::pow(10.0, decimals);
    const double from_scaled = from_hz * scale, to_scaled = to_hz * scale;
    if (from_scaled > 1e15 || to_scaled > 1e15) break;
    const auto whole = [](double v) { return std::fabs(v - std::round(v)) <= 1e-9 * v; };
    if (!whole(from_scaled) || !whole(to_scaled)) continue;
    const int64_t from_int = std::llround(from_scaled), to_int = std::llround(to_scaled);
    const int64_t divisor = std::gcd(from_int, to_int);
    const int64_t up = to_int / divisor, down = from_int / divisor;
    if (std::max(up, down) > max_factor)
      throw std::invalid_argument("resample: " + fmt(from_hz) + " Hz -> " + fmt(to_hz) +
                                  " Hz is the ratio " + std::to_string(up) + "/" +
                                  std::to_string(down) + ", whose larger term exceeds max_factor " +
                                  std::to_string(max_factor) + " (the filter would need about " +
                                  std::to_string(50 * std::max(up, down)) + " taps)");
    return {up, down};
  }
  throw std::invalid_argument("resample: expected rates with at most 6 decimals, got " +
                              fmt(from_hz) + " Hz -> " + fmt(to_hz) + " Hz");
}

// The modified Bessel function of the first kind, order 0: sum_k ((x/2)^k / k!)^2.
double bessel_i0(double x) {
  const double half = x / 2;
  double term = 1, sum = 1;
  for (int k = 1; k < 1000; ++k) {
    term *= (half / k) * (half / k);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

double kaiser_beta(double attenuation_db) {
  if (attenuation_db > 50) return 0.1102 * (attenuation_db - 8.7);
  if (attenuation_db >= 21)
    return 0.5842 * std::pow(attenuation_db - 21, 0.4) + 0.07886 * (attenuation_db - 21);
  return 0;
}

// x extended by `pad` samples at each end, element pad + i being x[i]: the odd reflection
// 2 x[0] - x[i] (x[-i] continues value and slope) or the even reflection x[i] (continues the
// value and the local mean). When x is shorter than the padding, the reflection stops at the
// far end (constant beyond it).
enum class Reflection { Odd, Even };
std::vector<double> reflect_pad(const std::vector<double>& x, int64_t pad, Reflection kind) {
  const int64_t length = static_cast<int64_t>(x.size());
  std::vector<double> out(length + 2 * pad);
  std::copy(x.begin(), x.end(), out.begin() + pad);
  for (int64_t j = 1; j <= pad; ++j) {
    const double mirror_left = x[std::min(j, length - 1)];
    const double mirror_right = x[std::max(length - 1 - j, int64_t{0})];
    if (kind == Reflection::Odd) {
      out[pad - j] = 2 * x[0] - mirror_left;
      out[pad + length - 1 + j] = 2 * x[length - 1] - mirror_right;
    } else {
      out[pad - j] = mirror_left;
      out[pad + length - 1 + j] = mirror_right;
    }
  }
  return out;
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// ---- biquads -------------------------------------------------------------------------------

void check_order(const char* op, int order) {
  if (order < 1 || order > 8)
    throw std::invalid_argument(std::string(op) + ": expected an order in 1..8, got " +
                                std::to_string(order));
}

void check_below_nyquist(const char* op, const char* what, double freq_hz, double rate_hz) {
  check_rate(op, "rate_hz", rate_hz);
  if (!(std::isfinite(freq_hz) && freq_hz > 0 && freq_hz < rate_hz / 2))
    throw std::invalid_argument(std::string(op) + ": expected 0 < " + what + " < rate_hz / 2 = " +
                                fmt(rate_hz / 2) + " Hz, got " + fmt(freq_hz) + " Hz");
}

BiquadCascade butterworth(double cutoff_hz, double rate_hz, int order, bool highpass,
                          const char* op) {
  check_below_nyquist(op, "cutoff_hz", cutoff_hz, rate_hz);
  check_order(op, order);
  const double w0 = 2 * kPi * cutoff_hz / rate_hz;
  const double cos_w0 = std::cos(w0), sin_w0 = std::sin(w0);
  BiquadCascade cascade;
  for (int k = 0; k < order / 2; ++k) {
    const double q = 1 / (2 * std::sin((2 * k + 1) * kPi / (2 * order)));
    const double alpha = sin_w0 / (2 * q), a0 = 1 + alpha;
    Biquad s;
    if (highpass) {
      s.b0 = (1 + cos_w0) / 2 / a0;
      s.b1 = -(1 + cos_w0) / a0;
    } else {
      s.b0 = (1 - cos_w0) / 2 / a0;
      s.b1 = (1 - cos_w0) / a0;
    }
    s.b2 = s.b0;
    s.a1 = -2 * cos_w0 / a0;
    s.a2 = (1 - alpha) / a0;
    cascade.push_back(s);
  }
  if (order % 2 == 1) {
    const double k = std::tan(w0 / 2);
    Biquad s;
    s.b0 = (highpass ? 1 : k) / (k + 1);
    s.b1 = highpass ? -s.b0 : s.b0;
    s.a1 = (k - 1) / (k + 1);
    cascade.push_back(s);
  }
  return cascade;
}

// The largest pole radius of a section: roots of z^2 + a1 z + a2.
double pole_radius(const Biquad& s) {
  const double discriminant = s.a1 * s.a1 - 4 * s.a2;
  if (discriminant < 0) return std::sqrt(s.a2);
  const double root = std::sqrt(discriminant);
  return std::max(std::fabs((-s.a1 + root) / 2), std::fabs((-s.a1 - root) / 2));
}

// Runs the cascade over x in place, each section started in its steady state for x[0].
void run_cascade(const BiquadCascade& cascade, std::vector<double>& x) {
  for (const Biquad& s : cascade) {
    const double level = x[0];
    const double gain = (s.b0 + s.b1 + s.b2) / (1 + s.a1 + s.a2);
    double z2 = (s.b2 - s.a2 * gain) * level;
    double z1 = (s.b1 + s.b2 - (s.a1 + s.a2) * gain) * level;
    for (double& v : x) {
      const double in = v;
      const double out = s.b0 * in + z1;
      z1 = s.b1 * in - s.a1 * out + z2;
      z2 = s.b2 * in - s.a2 * out;
      v = out;
    }
  }
}

// ---- normalisation -------------------------------------------------------------------------

// The p-quantile of sorted values, interpolating linearly between order statistics.
double quantile_sorted(const std::vector<double>& sorted, double p) {
  const double position = p * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

// ---- clips ---------------------------------------------------------------------------------

// A time in seconds as a whole number of samples at rate_hz, or throw.
int64_t whole_samples(const char* op, const char* what, double seconds, double rate_hz) {
  if (!(std::isfinite(seconds) && seconds > 0))
    throw std::invalid_argument(std::string(op) + ": expected " + what +
                                " to be a positive number of seconds, got " + fmt(seconds));
  const double samples = seconds * rate_hz;
  const double rounded = std::round(samples);
  if (rounded < 1 || std::fabs(samples - rounded) > 1e-6 * std::max(1.0, samples))
    throw std::invalid_argument(std::string(op) + ": " + what + " = " + fmt(seconds) + " s is " +
                                fmt(samples) + " samples at " + fmt(rate_hz) +
                                " Hz; expected a whole number of samples");
  return static_cast<int64_t>(rounded);
}

} // namespace

// ---- channel names -------------------------------------------------------------------------

std::string canonical_electrode(const std::string& label) {
  return classic_name(spell_electrode(label));
}

std::string modern_electrode(const std::string& label) {
  const std::string classic = canonical_electrode(label);
  for (const auto& [old_name, new_name] : kTemporalRenames)
    if (classic == old_name) return new_name;
  return classic;
}

const std::vector<std::string>& standard_10_20_electrodes() {
  static const std::vector<std::string> electrodes = {"Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8",
                                                      "T3",  "C3",  "Cz", "C4", "T4", "T5", "P3",
                                                      "Pz",  "P4",  "T6", "O1", "O2"};
  return electrodes;
}

Recording select_channels(const Recording& recording, const std::vector<std::string>& electrodes) {
  const char* op = "select_channels";
  if (electrodes.empty()) throw std::invalid_argument("select_channels: no electrodes requested");
  Recording out = header_of(recording);
  std::vector<std::string> seen, missing;
  for (const std::string& request : electrodes) {
    const std::string spelled = spell_electrode(request);
    if (spelled.empty())
      throw std::invalid_argument("select_channels: \"" + request +
                                  "\" is not a 10-20 (10-10) electrode name");
    const std::string electrode = classic_name(spelled);
    if (std::find(seen.begin(), seen.end(), electrode) != seen.end())
      throw std::invalid_argument("select_channels: electrode " + electrode +
                                  " is requested twice (as \"" + request + "\" the second time)");
    seen.push_back(electrode);
    const int64_t index = find_electrode(recording, electrode, op);
    if (index < 0) {
      missing.push_back(spelled);
      continue;
    }
    out.channels.push_back(recording.channels[index]);
    out.channels.back().label = spelled;
  }
  if (!missing.empty())
    throw std::invalid_argument(
        "select_channels: the recording has no channel for " + join(missing) + " (" +
        std::to_string(missing.size()) + " of " + std::to_string(electrodes.size()) +
        " requested electrodes); its channels are: " + describe_channels(recording));
  return out;
}

// ---- bipolar montages ----------------------------------------------------------------------

const std::vector<BipolarPair>& double_banana_montage() {
  static const std::vector<BipolarPair> montage = {
      {"Fp1", "F7"}, {"F7", "T3"}, {"T3", "T5"}, {"T5", "O1"}, // left temporal
      {"Fp2", "F8"}, {"F8", "T4"}, {"T4", "T6"}, {"T6", "O2"}, // right temporal
      {"Fp1", "F3"}, {"F3", "C3"}, {"C3", "P3"}, {"P3", "O1"}, // left parasagittal
      {"Fp2", "F4"}, {"F4", "C4"}, {"C4", "P4"}, {"P4", "O2"}, // right parasagittal
      {"Fz", "Cz"},  {"Cz", "Pz"},                             // midline
  };
  return montage;
}

const std::vector<BipolarPair>& tuh_tcp_montage() {
  static const std::vector<BipolarPair> montage = {
      {"Fp1", "F7"}, {"F7", "T3"}, {"T3", "T5"}, {"T5", "O1"}, // left temporal
      {"Fp2", "F8"}, {"F8", "T4"}, {"T4", "T6"}, {"T6", "O2"}, // right temporal
      {"A1", "T3"},  {"T3", "C3"}, {"C3", "Cz"}, {"Cz", "C4"}, // transverse
      {"C4", "T4"},  {"T4", "A2"},                             //
      {"Fp1", "F3"}, {"F3", "C3"}, {"C3", "P3"}, {"P3", "O1"}, // left parasagittal
      {"Fp2", "F4"}, {"F4", "C4"}, {"C4", "P4"}, {"P4", "O2"}, // right parasagittal
  };
  return montage;
}

std::vector<std::string> montage_electrodes(const std::vector<BipolarPair>& montage) {
  std::vector<std::string> electrodes, canonical;
  for (const BipolarPair& pair : montage) {
    for (const std::string& name : {pair.anode, pair.cathode}) {
      const std::string electrode = canonical_electrode(name);
      if (electrode.empty())
        throw std::invalid_argument("montage_electrodes: \"" + name + "\" in pair " + pair.anode +
                                    "-" + pair.cathode + " is not a 10-20 electrode name");
      if (std::find(canonical.begin(), canonical.end(), electrode) != canonical.end()) continue;
      canonical.push_back(electrode);
      electrodes.push_back(name);
    }
  }
  return electrodes;
}

Recording apply_bipolar_montage(const Recording& recording,
                                const std::vector<BipolarPair>& montage) {
  const char* op = "apply_bipolar_montage";
  if (montage.empty()) throw std::invalid_argument("apply_bipolar_montage: empty montage");
  // Electrode -> channel index, for every electrode of the montage.
  std::map<std::string, int64_t> index_of;
  std::vector<std::string> missing;
  for (const std::string& name : montage_electrodes(montage)) {
    const std::string electrode = canonical_electrode(name);
    const int64_t index = find_electrode(recording, electrode, op);
    if (index < 0) missing.push_back(name);
    index_of[electrode] = index;
  }
  if (!missing.empty())
    throw std::invalid_argument("apply_bipolar_montage: the recording has no channel for " +
                                join(missing) +
                                "; its channels are: " + describe_channels(recording));
  Recording out = header_of(recording);
  for (const BipolarPair& pair : montage) {
    const std::string name = pair.anode + "-" + pair.cathode;
    const std::string anode_electrode = canonical_electrode(pair.anode);
    const std::string cathode_electrode = canonical_electrode(pair.cathode);
    if (anode_electrode == cathode_electrode)
      throw std::invalid_argument("apply_bipolar_montage: pair " + name +
                                  " subtracts an electrode from itself");
    const Channel& anode = recording.channels[index_of[anode_electrode]];
    const Channel& cathode = recording.channels[index_of[cathode_electrode]];
    if (anode.rate_hz != cathode.rate_hz)
      throw std::invalid_argument("apply_bipolar_montage: pair " + name + ": \"" + anode.label +
                                  "\" is sampled at " + fmt(anode.rate_hz) + " Hz and \"" +
                                  cathode.label + "\" at " + fmt(cathode.rate_hz) +
                                  " Hz; resample the recording to one rate first (resample)");
    if (anode.samples.size() != cathode.samples.size())
      throw std::invalid_argument("apply_bipolar_montage: pair " + name + ": \"" + anode.label +
                                  "\" has " + std::to_string(anode.samples.size()) +
                                  " samples and \"" + cathode.label + "\" " +
                                  std::to_string(cathode.samples.size()));
    Channel channel;
    channel.label = name;
    channel.unit = anode.unit;
    channel.rate_hz = anode.rate_hz;
    channel.samples.resize(anode.samples.size());
    for (size_t i = 0; i < anode.samples.size(); ++i)
      channel.samples[i] = anode.samples[i] - cathode.samples[i];
    // anode in [a_min, a_max], cathode in [c_min, c_max] -> difference in
    // [a_min - c_max, a_max - c_min].
    channel.physical_min = anode.physical_min - cathode.physical_max;
    channel.physical_max = anode.physical_max - cathode.physical_min;
    channel.digital_min = anode.digital_min;
    channel.digital_max = anode.digital_max;
    channel.transducer = anode.transducer;
    channel.prefilter = anode.prefilter;
    out.channels.push_back(std::move(channel));
  }
  return out;
}

// ---- resampling ----------------------------------------------------------------------------

ResampleFilter design_resample_filter(double from_hz, double to_hz,
                                      const ResampleOptions& options) {
  check_rate("resample", "the input rate", from_hz);
  check_rate("resample", "the output rate", to_hz);
  if (!(options.stopband_db >= 21 && options.stopband_db <= 200))
    throw std::invalid_argument("resample: expected stopband_db in [21, 200], got " +
                                fmt(options.stopband_db));
  if (!(options.transition_fraction > 0 && options.transition_fraction < 1))
    throw std::invalid_argument("resample: expected transition_fraction in (0, 1), got " +
                                fmt(options.transition_fraction));
  if (options.max_factor < 1)
    throw std::invalid_argument("resample: expected max_factor >= 1, got " +
                                std::to_string(options.max_factor));
  ResampleFilter filter;
  std::tie(filter.up, filter.down) = rational_ratio(from_hz, to_hz, options.max_factor);
  const double lower_nyquist_hz = std::min(from_hz, to_hz) / 2;
  filter.cutoff_hz = (1 - options.transition_fraction / 2) * lower_nyquist_hz;
  if (filter.up == filter.down) { // equal rates: the identity
    filter.taps = {1};
    return filter;
  }
  // Frequencies in rad/sample at the upsampled rate p * from_hz, where the lower Nyquist
  // frequency is pi / max(p, q).
  const double lower_nyquist = kPi / static_cast<double>(std::max(filter.up, filter.down));
  const double cutoff = (1 - options.transition_fraction / 2) * lower_nyquist;
  const double transition = options.transition_fraction * lower_nyquist;
  int64_t order = static_cast<int64_t>(std::ceil((options.stopband_db - 8) / (2.285 * transition)));
  order += order % 2;
  filter.half_length = std::max<int64_t>(order / 2, 1);
  filter.beta = kaiser_beta(options.stopband_db);
  const double window_norm = bessel_i0(filter.beta);
  filter.taps.resize(2 * filter.half_length + 1);
  for (int64_t n = 0; n <= 2 * filter.half_length; ++n) {
    const double t = static_cast<double>(n - filter.half_length);
    const double r = t / static_cast<double>(filter.half_length);
    const double window =
        bessel_i0(filter.beta * std::sqrt(std::max(0.0, 1 - r * r))) / window_norm;
    const double x = cutoff / kPi * t;
    const double sinc = x == 0 ? 1 : std::sin(kPi * x) / (kPi * x);
    filter.taps[n] = static_cast<double>(filter.up) * (cutoff / kPi) * sinc * window;
  }
  return filter;
}

std::vector<double> resample(const std::vector<double>& x, double from_hz, double to_hz,
                             const ResampleOptions& options) {
  const ResampleFilter filter = design_resample_filter(from_hz, to_hz, options);
  if (filter.up == filter.down || x.empty()) return x;
  const int64_t up = filter.up, down = filter.down, half = filter.half_length;
  const int64_t length = static_cast<int64_t>(x.size());
  const int64_t out_length = ceil_div(length * up, down);
  // Input samples reached outside [0, length): at most half / up + 1 on either side.
  const int64_t pad = half / up + 2;
  // The mean goes around the filter rather than through it: the p branches' DC gains (sums of
  // every p-th tap) differ by the stopband ripple, which would turn a DC offset into tones at
  // multiples of to_hz / p (measured: 300 uV at 256 -> 200 Hz gave 3e-3 uV at 56 Hz).
  double mean = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(length);
  std::vector<double> centred(x.size());
  for (size_t i = 0; i < x.size(); ++i) centred[i] = x[i] - mean;
  const std::vector<double> padded = reflect_pad(centred, pad, Reflection::Odd); // (length+2pad)
  const double* h = filter.taps.data();
  std::vector<double> y(out_length);
  cpu::parallel_for(0, out_length, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t centre = k * down; // position of output k at the upsampled rate
      const int64_t n_first = ceil_div(centre - half, up), n_last = floor_div(centre + half, up);
      double sum = 0;
      for (int64_t n = n_first; n <= n_last; ++n)
        sum += padded[n + pad] * h[centre - n * up + half];
      y[k] = sum + mean;
    }
  });
  return y;
}

Recording resample(const Recording& recording, double rate_hz, const ResampleOptions& options) {
  check_rate("resample", "the target rate", rate_hz);
  Recording out = header_of(recording);
  out.channels.resize(recording.channels.size());
  for (size_t c = 0; c < recording.channels.size(); ++c) {
    const Channel& channel = recording.channels[c];
    if (!(std::isfinite(channel.rate_hz) && channel.rate_hz > 0))
      throw std::invalid_argument("resample: channel \"" + channel.label + "\" has rate " +
                                  fmt(channel.rate_hz) + " Hz; expected a positive rate");
    design_resample_filter(channel.rate_hz, rate_hz, options); // validates before any work
  }
  cpu::parallel_for(
      0, static_cast<int64_t>(recording.channels.size()), 1, [&](int64_t lo, int64_t hi) {
        for (int64_t c = lo; c < hi; ++c) {
          const Channel& channel = recording.channels[c];
          Channel& resampled = out.channels[c];
          resampled = channel;
          resampled.samples = resample(channel.samples, channel.rate_hz, rate_hz, options);
          resampled.rate_hz = rate_hz;
        }
      });
  return out;
}

// ---- band-pass and notch filters -----------------------------------------------------------

BiquadCascade butterworth_lowpass(double cutoff_hz, double rate_hz, int order) {
  return butterworth(cutoff_hz, rate_hz, order, false, "butterworth_lowpass");
}

BiquadCascade butterworth_highpass(double cutoff_hz, double rate_hz, int order) {
  return butterworth(cutoff_hz, rate_hz, order, true, "butterworth_highpass");
}

BiquadCascade butterworth_bandpass(double low_hz, double high_hz, double rate_hz, int order) {
  const char* op = "butterworth_bandpass";
  check_rate(op, "rate_hz", rate_hz);
  const bool has_low = low_hz != 0, has_high = high_hz != 0;
  if (!has_low && !has_high)
    throw std::invalid_argument("butterworth_bandpass: low_hz and high_hz are both 0 (no band)");
  if (has_low) check_below_nyquist(op, "low_hz", low_hz, rate_hz);
  if (has_high) check_below_nyquist(op, "high_hz", high_hz, rate_hz);
  if (has_low && has_high && !(low_hz < high_hz))
    throw std::invalid_argument("butterworth_bandpass: expected low_hz < high_hz, got " +
                                fmt(low_hz) + " Hz and " + fmt(high_hz) + " Hz");
  BiquadCascade cascade;
  if (has_low) cascade = butterworth(low_hz, rate_hz, order, true, op);
  if (has_high) {
    const BiquadCascade lowpass = butterworth(high_hz, rate_hz, order, false, op);
    cascade.insert(cascade.end(), lowpass.begin(), lowpass.end());
  }
  return cascade;
}

Biquad notch_biquad(double f0_hz, double rate_hz, double q) {
  check_below_nyquist("notch_biquad", "f0_hz", f0_hz, rate_hz);
  if (!(std::isfinite(q) && q > 0))
    throw std::invalid_argument("notch_biquad: expected a quality factor q > 0, got " + fmt(q));
  const double w0 = 2 * kPi * f0_hz / rate_hz;
  const double alpha = std::sin(w0) / (2 * q), a0 = 1 + alpha;
  Biquad s;
  s.b0 = 1 / a0;
  s.b1 = -2 * std::cos(w0) / a0;
  s.b2 = 1 / a0;
  s.a1 = s.b1;
  s.a2 = (1 - alpha) / a0;
  return s;
}

double cascade_magnitude(const BiquadCascade& cascade, double freq_hz, double rate_hz) {
  const std::complex<double> z1 = std::polar(1.0, -2 * kPi * freq_hz / rate_hz); // z^-1
  const std::complex<double> z2 = z1 * z1;
  std::complex<double> response = 1;
  for (const Biquad& s : cascade)
    response *= (s.b0 + s.b1 * z1 + s.b2 * z2) / (1.0 + s.a1 * z1 + s.a2 * z2);
  return std::abs(response);
}

std::vector<double> filtfilt(const BiquadCascade& cascade, const std::vector<double>& x) {
  for (size_t i = 0; i < cascade.size(); ++i) {
    const Biquad& s = cascade[i];
    for (double v : {s.b0, s.b1, s.b2, s.a1, s.a2})
      if (!std::isfinite(v))
        throw std::invalid_argument("filtfilt: section " + std::to_string(i) +
                                    " has a non-finite coefficient");
    // Both poles inside the unit circle (the stability triangle of z^2 + a1 z + a2).
    if (!(std::fabs(s.a2) < 1 && std::fabs(s.a1) < 1 + s.a2))
      throw std::invalid_argument("filtfilt: section " + std::to_string(i) +
                                  " is unstable (a1 = " + fmt(s.a1) + ", a2 = " + fmt(s.a2) + ")");
  }
  if (x.empty() || cascade.empty()) return x;
  const int64_t length = static_cast<int64_t>(x.size());
  double slowest = 0;
  for (const Biquad& s : cascade) slowest = std::max(slowest, pole_radius(s));
  int64_t pad = 3 * (2 * static_cast<int64_t>(cascade.size()) + 1);
  if (slowest > 0) {
    const double decay = std::ceil(std::log(1e-6) / std::log(slowest));
    pad = std::max(pad, static_cast<int64_t>(std::min(decay, 1e15)));
  }
  pad = std::min(pad, length - 1);
  std::vector<double> work = reflect_pad(x, pad, Reflection::Even); // (length + 2 pad)
  run_cascade(cascade, work);
  std::reverse(work.begin(), work.end());
  run_cascade(cascade, work);
  std::reverse(work.begin(), work.end());
  return std::vector<double>(work.begin() + pad, work.begin() + pad + length);
}

std::vector<double> bandpass_filter(const std::vector<double>& x, double rate_hz, double low_hz,
                                    double high_hz, int order) {
  return filtfilt(butterworth_bandpass(low_hz, high_hz, rate_hz, order), x);
}

std::vector<double> notch_filter(const std::vector<double>& x, double rate_hz, double f0_hz,
                                 double q) {
  return filtfilt({notch_biquad(f0_hz, rate_hz, q)}, x);
}

// ---- normalisation -------------------------------------------------------------------------

ChannelStats channel_stats(const std::vector<double>& x, Normalization mode) {
  ChannelStats stats;
  if (mode == Normalization::None) return stats;
  if (x.empty()) throw std::invalid_argument("normalize: empty channel");
  const double n = static_cast<double>(x.size());
  if (mode == Normalization::ZScore) {
    double sum = 0;
    for (double v : x) sum += v;
    stats.center = sum / n;
    double squares = 0;
    for (double v : x) squares += (v - stats.center) * (v - stats.center);
    stats.scale = std::sqrt(squares / n);
  } else {
    std::vector<double> sorted = x;
    std::sort(sorted.begin(), sorted.end());
    stats.center = quantile_sorted(sorted, 0.5);
    // 2 Phi^-1(3/4): the interquartile range of a standard normal.
    constexpr double kNormalIqr = 1.3489795003921634;
    stats.scale = (quantile_sorted(sorted, 0.75) - quantile_sorted(sorted, 0.25)) / kNormalIqr;
  }
  if (!std::isfinite(stats.center) || !std::isfinite(stats.scale))
    throw std::invalid_argument("normalize: the channel has non-finite values (center " +
                                fmt(stats.center) + ", scale " + fmt(stats.scale) + ")");
  if (stats.scale == 0) stats.scale = 1; // a flat channel becomes zeros, not NaN
  return stats;
}

ChannelStats normalize(std::vector<double>& x, Normalization mode) {
  const ChannelStats stats = channel_stats(x, mode);
  if (mode == Normalization::None) return stats;
  for (double& v : x) v = (v - stats.center) / stats.scale;
  return stats;
}

// ---- clips ---------------------------------------------------------------------------------

std::vector<std::string> default_seizure_patterns() {
  return {"seiz", "fnsz", "gnsz", "spsz", "cpsz", "absz", "tnsz", "cnsz", "tcsz", "atsz", "mysz"};
}

std::vector<std::string> default_non_seizure_patterns() {
  return {"no seiz", "non-seiz", "nonseiz", "not seiz", "seizure-free", "seizure free"};
}

bool is_seizure_annotation(const std::string& text, const ClipOptions& options) {
  const std::string lowered = to_lower(text);
  const auto contains = [&](const std::string& pattern) {
    return !pattern.empty() && lowered.find(to_lower(pattern)) != std::string::npos;
  };
  if (std::any_of(options.non_seizure_patterns.begin(), options.non_seizure_patterns.end(),
                  contains))
    return false;
  return std::any_of(options.seizure_patterns.begin(), options.seizure_patterns.end(), contains);
}

std::vector<std::pair<double, double>> seizure_intervals(const Recording& recording,
                                                         const ClipOptions& options) {
  std::vector<std::pair<double, double>> intervals;
  for (const Annotation& a : recording.annotations)
    if (std::isfinite(a.onset_s) && std::isfinite(a.duration_s) && a.duration_s > 0 &&
        is_seizure_annotation(a.text, options))
      intervals.emplace_back(a.onset_s, a.onset_s + a.duration_s);
  std::sort(intervals.begin(), intervals.end());
  std::vector<std::pair<double, double>> merged;
  for (const auto& interval : intervals) {
    if (!merged.empty() && interval.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, interval.second);
    else
      merged.push_back(interval);
  }
  return merged;
}

Clips make_clips(const Recording& recording, const ClipOptions& options) {
  const char* op = "make_clips";
  if (recording.channels.empty()) throw std::invalid_argument("make_clips: no channels");
  const Channel& first = recording.channels[0];
  check_rate(op, "the channel rate", first.rate_hz);
  for (const Channel& channel : recording.channels) {
    if (channel.rate_hz != first.rate_hz)
      throw std::invalid_argument("make_clips: channel \"" + channel.label + "\" is at " +
                                  fmt(channel.rate_hz) + " Hz and \"" + first.label + "\" at " +
                                  fmt(first.rate_hz) + " Hz; resample to one rate first");
    if (channel.samples.size() != first.samples.size())
      throw std::invalid_argument("make_clips: channel \"" + channel.label + "\" has " +
                                  std::to_string(channel.samples.size()) + " samples and \"" +
                                  first.label + "\" " + std::to_string(first.samples.size()));
  }
  if (!(std::isfinite(options.min_seizure_overlap_s) && options.min_seizure_overlap_s >= 0))
    throw std::invalid_argument("make_clips: expected min_seizure_overlap_s >= 0, got " +
                                fmt(options.min_seizure_overlap_s));
  if (options.dtype == DType::Int64)
    throw std::invalid_argument("make_clips: expected a floating dtype for the clips, got int64");
  const double rate = first.rate_hz;
  const int64_t clip_length = whole_samples(op, "clip_s", options.clip_s, rate);
  const int64_t stride = whole_samples(op, "stride_s", options.stride_s, rate);
  const int64_t length = static_cast<int64_t>(first.samples.size());
  if (length < clip_length)
    throw std::invalid_argument(
        "make_clips: a clip (" + fmt(options.clip_s) + " s = " + std::to_string(clip_length) +
        " samples at " + fmt(rate) + " Hz) is longer than the recording (" +
        fmt(static_cast<double>(length) / rate) + " s = " + std::to_string(length) + " samples)");
  const int64_t count = (length - clip_length) / stride + 1;
  const int64_t channels = static_cast<int64_t>(recording.channels.size());

  Clips clips;
  clips.rate_hz = rate;
  for (const Channel& channel : recording.channels) clips.channels.push_back(channel.label);
  clips.data = Tensor::empty({count, channels, clip_length}, options.dtype);
  dispatch_dtype(options.dtype, [&](auto zero) {
    using T = decltype(zero);
    T* data = clips.data.data<T>(); // (count, channels, clip_length)
    for (int64_t k = 0; k < count; ++k)
      for (int64_t c = 0; c < channels; ++c) {
        const double* from = recording.channels[c].samples.data() + k * stride;
        T* to = data + (k * channels + c) * clip_length;
        for (int64_t s = 0; s < clip_length; ++s) to[s] = static_cast<T>(from[s]);
      }
  });
  const std::vector<std::pair<double, double>> seizures = seizure_intervals(recording, options);
  // Boundaries computed in floating point (12 s * k) may miss an exact overlap by an ulp.
  constexpr double kTimeTolerance = 1e-9;
  for (int64_t k = 0; k < count; ++k) {
    const double begin = static_cast<double>(k * stride) / rate;
    const double end = static_cast<double>(k * stride + clip_length) / rate;
    double overlap = 0;
    for (const auto& [seizure_begin, seizure_end] : seizures)
      overlap += std::max(0.0, std::min(end, seizure_end) - std::max(begin, seizure_begin));
    clips.start_s.push_back(begin);
    clips.seizure_overlap_s.push_back(overlap);
    const bool seizure =
        overlap > kTimeTolerance && overlap >= options.min_seizure_overlap_s - kTimeTolerance;
    clips.labels.push_back(seizure ? 1 : 0);
  }
  return clips;
}

// ---- the pipeline --------------------------------------------------------------------------

Recording preprocess_recording(const Recording& recording, const PreprocessOptions& options) {
  const std::vector<std::string> electrodes =
      options.montage.empty() ? options.electrodes : montage_electrodes(options.montage);
  Recording current = select_channels(recording, electrodes);
  for (const Channel& channel : current.channels) {
    if (channel.samples.empty())
      throw std::invalid_argument("preprocess: channel \"" + channel.label + "\" has no samples");
    for (size_t i = 0; i < channel.samples.size(); ++i)
      if (!std::isfinite(channel.samples[i]))
        throw std::invalid_argument("preprocess: channel \"" + channel.label +
                                    "\" has a non-finite sample (" + fmt(channel.samples[i]) +
                                    ") at index " + std::to_string(i));
  }

  if (options.rate_hz != 0) current = resample(current, options.rate_hz, options.resampling);
  const double rate = current.channels[0].rate_hz;
  size_t shortest = current.channels[0].samples.size(), longest = shortest;
  for (const Channel& channel : current.channels) {
    if (channel.rate_hz != rate)
      throw std::invalid_argument("preprocess: channels \"" + current.channels[0].label + "\" (" +
                                  fmt(rate) + " Hz) and \"" + channel.label + "\" (" +
                                  fmt(channel.rate_hz) +
                                  " Hz) differ in rate; set rate_hz to resample them to one");
    shortest = std::min(shortest, channel.samples.size());
    longest = std::max(longest, channel.samples.size());
  }
  // Channels of one recording at different rates resample to lengths that can differ by the
  // rounding of ceil(n p / q): one sample. More than that means channels of different
  // durations, which the steps below cannot align.
  if (longest - shortest > 1)
    throw std::invalid_argument("preprocess: after resampling, channel lengths range from " +
                                std::to_string(shortest) + " to " + std::to_string(longest) +
                                " samples; expected channels of one duration");
  for (Channel& channel : current.channels) channel.samples.resize(shortest);

  if (!options.montage.empty()) current = apply_bipolar_montage(current, options.montage);

  // Band-pass and notches as one cascade: the filters are linear and time-invariant, so
  // running them together or one after another gives the same response.
  BiquadCascade cascade;
  if (options.bandpass_low_hz != 0 || options.bandpass_high_hz != 0)
    cascade = butterworth_bandpass(options.bandpass_low_hz, options.bandpass_high_hz, rate,
                                   options.filter_order);
  for (double f0 : options.notch_hz) cascade.push_back(notch_biquad(f0, rate, options.notch_q));

  cpu::parallel_for(0, static_cast<int64_t>(current.channels.size()), 1,
                    [&](int64_t lo, int64_t hi) {
                      for (int64_t c = lo; c < hi; ++c) {
                        Channel& channel = current.channels[c];
                        if (!cascade.empty()) channel.samples = filtfilt(cascade, channel.samples);
                        normalize(channel.samples, options.normalization);
                      }
                    });
  if (options.normalization != Normalization::None)
    for (Channel& channel : current.channels) channel.unit = "";
  return current;
}

Clips preprocess(const Recording& recording, const PreprocessOptions& options) {
  return make_clips(preprocess_recording(recording, options), options.clips);
}

} // namespace ssm::eeg
