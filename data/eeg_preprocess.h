// eeg_preprocess.h: from a raw EEG recording (data/eeg.h) to labelled, model-ready clips.
// Channel selection by 10-20 name, bipolar montages, resampling with an anti-aliasing filter,
// zero-phase band-pass and notch filters, per-channel normalisation, clips with seizure labels,
// and preprocess(), which runs them all. CPU, double precision; each step also works on a
// plain std::vector<double> signal. Derivations and the reasons for each choice are in
// data/eeg_preprocess.cpp.
//
// ---- The pipeline (preprocess, PreprocessOptions) -----------------------------------------
//
//   select 19 electrodes -> resample to 200 Hz -> [bipolar montage] -> band-pass 0.5-70 Hz
//   -> notch 50 and 60 Hz -> z-score per channel -> 12 s clips, stride 12 s, labelled
//
// Resampling comes before the montage: both are linear and act on each channel alike, so for
// channels of one rate the order does not change the result, and resampling first also
// handles recordings whose channels have different rates (apply_bipolar_montage on its own
// rejects those).
//
// ---- Channel names ---------------------------------------------------------------------------
// canonical_electrode("EEG FP1-REF") = "Fp1". Accepted forms: an optional "EEG" prefix
// (separated by a space, ':' or '_'), the electrode in any case, an optional reference suffix
// after '-' that names a reference rather than another electrode (REF, LE, AR, AVG, AV, CAR,
// A1, A2, M1, M2, A1A2, M1M2, LM), and trailing dots ("Fp1." in PhysioNet files). Electrode
// names are the 10-10 system's (Chatrian, Lettich & Nelson 1985; ACNS Guideline 5, 2006):
// a prefix Fp, AF, F, FT, FC, T, TP, C, CP, P, PO, O, I, A (earlobe) or M (mastoid), then z or
// a number 1..10 (Fp only 1, 2, z; A and M only 1, 2). Anything else gives "": "ECG",
// "EEG EKG1-REF", "EDF Annotations", "Photic", "EEG LOC-REF", and bipolar derivations such as
// "FP1-F7" (the part after '-' is an electrode, not a reference).
//
// Old and new temporal names. The 10-10 system renamed four positions of the original 10-20
// system: T3 = T7, T4 = T8, T5 = P7, T6 = P8. canonical_electrode returns the classic names
// (T3, T4, T5, T6), the ones the TUH corpus and the montage tables below use; modern_electrode
// gives the 10-10 names. Selection compares canonical names, so asking for "T7" finds a
// channel labelled "EEG T3-REF" and asking for "T3" finds one labelled "T7".
//
// ---- Montages --------------------------------------------------------------------------------
// A bipolar channel "Fp1-F7" is the referential Fp1 minus the referential F7 (the common
// reference cancels). Two tables:
//   double_banana_montage(): the 18 derivations of the longitudinal bipolar ("double banana")
//     montage of ACNS Guideline 3 (Acharya et al. 2016, J Clin Neurophysiol 33:312), chain by
//     chain: left temporal Fp1-F7, F7-T3, T3-T5, T5-O1; right temporal Fp2-F8, F8-T4, T4-T6,
//     T6-O2; left parasagittal Fp1-F3, F3-C3, C3-P3, P3-O1; right parasagittal Fp2-F4, F4-C4,
//     C4-P4, P4-O2; midline Fz-Cz, Cz-Pz. Needs the 19 electrodes of the 10-20 system.
//   tuh_tcp_montage(): the 22-channel temporal central parasagittal (TCP) montage of the TUH
//     EEG corpus (Ferrell et al. 2020, "The Temple University Hospital EEG Corpus: Electrode
//     Location and Channel Labels"; Shah et al. 2018, Front. Neuroinform. 12:83): the two
//     temporal chains, the transverse chain A1-T3, T3-C3, C3-Cz, Cz-C4, C4-T4, T4-A2, then the
//     two parasagittal chains. Uses 19 electrodes: A1 and A2, and the 10-20 set but Fz and
//     Pz (so it needs ear electrodes, which the synthetic data does not have).
//
// ---- Resampling ------------------------------------------------------------------------------
// Polyphase rational resampling (Crochiere & Rabiner 1983, "Multirate Digital Signal
// Processing"): with from/to reduced to q/p (256 -> 200 Hz: p = 25, q = 32), the signal is
// upsampled by p (p - 1 zeros between samples), low-pass filtered at rate p * from, and every
// q-th sample kept; only the products with non-zero inputs at kept outputs are computed.
// Output sample k sits at time k / to_hz, aligned with input sample 0; the output has
// ceil(n p / q) samples. Rates with up to 6 decimals are accepted (173.61 Hz), as long as
// max(p, q) <= max_factor.
// The filter: a Kaiser-windowed sinc (Kaiser 1974, "Nonrecursive digital filter design using
// the I0-sinh window function"; Oppenheim & Schafer, "Discrete-Time Signal Processing"). With
// f_N = min(from, to) / 2, the lower Nyquist frequency: passband up to
// (1 - transition_fraction) f_N, stopband from f_N (nothing that would alias survives), -6 dB
// cutoff at (1 - transition_fraction / 2) f_N. At 200 Hz with the default 0.2: passband
// 0-80 Hz, stopband from 100 Hz, cutoff 90 Hz. Stopband attenuation A = 80 dB (passband ripple
// ~1e-4), window beta = 0.1102 (A - 8.7) = 7.86, length (A - 8) / (2.285 dw) + 1 taps at the
// upsampled rate with dw the transition width in rad/sample there: about 50 max(p, q) taps
// (256 -> 200 Hz: 1607 taps, 64 per output sample). Ends: the signal is extended by odd
// reflection (2 x[0] - x[i]), which continues value and slope. The signal's mean is subtracted
// before filtering and added back after, so a DC offset passes exactly.
//
// ---- Filters ---------------------------------------------------------------------------------
// Butterworth low- and high-pass filters as cascades of biquads, each the bilinear transform
// (frequency prewarped at the cutoff) of one pole pair of the analog prototype: the low- and
// high-pass formulas of R. Bristow-Johnson's "Cookbook formulae for audio EQ biquad filter
// coefficients" with Q_k = 1 / (2 sin((2k+1) pi / (2 order))), plus a first-order section for
// odd orders. A band-pass is the high-pass at low_hz times the low-pass at high_hz. The notch
// is the cookbook's: zeros on the unit circle at f0, poles at radius ~1 - pi f0 / (Q fs), so
// the -3 dB bandwidth is f0 / Q. One pass has magnitude
//   |H_lp(f)|^2 = 1 / (1 + (tan(pi f / fs) / tan(pi fc / fs))^(2 order))
// (high-pass: the ratio inverted). filtfilt runs the cascade forward, then backward over the
// reversed output (Kormylo & Jain 1974, "Two-pass recursive digital filter with zero phase
// shift"; Gustafsson 1996 on its initial states): the phase cancels (zero-phase) and the magnitude
// is squared, so a Butterworth cutoff is at -6 dB rather than -3 dB. Ends: even (mirror) reflection
// padding, long enough for the slowest pole to decay by 1e-6 (capped at the signal length - 1), and
// each section starts in its steady state for the first padded value (as scipy's filtfilt does;
// scipy pads with the odd reflection, which makes a high-pass ring at the ends: see the .cpp).
//
// ---- Normalisation ---------------------------------------------------------------------------
// Per channel over the whole recording: z-score (x - mean) / std (population std), or robust
// (x - median) / (IQR / 1.349) (1.349 is the IQR of a standard normal, so a Gaussian channel
// gets the same scale either way; quartiles interpolate linearly, numpy's default). A flat
// channel (scale 0) becomes zeros rather than NaN.
//
// ---- Clips and labels ------------------------------------------------------------------------
// Clips of clip_s seconds every stride_s seconds from the start; a tail shorter than a clip is
// dropped. A clip is a seizure clip when the seizure time inside it (the union of the seizure
// annotations, so overlapping annotations count once) is at least min_seizure_overlap_s
// (default 1 s; 0 means any overlap; compared with a 1e-9 s tolerance so that exact boundaries
// count). Annotations with duration 0 have no extent and never label a clip. An annotation is a
// seizure when its text, lowercased, contains one of seizure_patterns (default: "seiz" and the TUH
// seizure-type codes fnsz, gnsz, spsz, cpsz, absz, tnsz, cnsz, tcsz, atsz, mysz) and none of
// non_seizure_patterns (default: "no seiz", "non-seiz", "nonseiz", "not seiz", "seizure-free",
// "seizure free").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/eeg.h"
#include "tensor/tensor.h"

namespace ssm::eeg {

// ---- channel names -------------------------------------------------------------------------

// The electrode a channel label names, in canonical spelling with the classic temporal names
// ("EEG FP1-REF" -> "Fp1", "T7" -> "T3"), or "" when the label is not a referential EEG
// electrode.
std::string canonical_electrode(const std::string& label);
// The 10-10 name of an electrode: T3 -> T7, T4 -> T8, T5 -> P7, T6 -> P8; any other canonical
// name unchanged. "" for a label that is not an electrode.
std::string modern_electrode(const std::string& label);
// The 19 electrodes of the 10-20 system, front to back, left to right: Fp1 Fp2 F7 F3 Fz F4 F8
// T3 C3 Cz C4 T4 T5 P3 Pz P4 T6 O1 O2.
const std::vector<std::string>& standard_10_20_electrodes();

// The channels of `recording` for `electrodes` (any accepted form, e.g. "FP1" or "T7"), in
// that order, labelled with the requested names in canonical spelling (old or new temporal
// name as asked: "t7" -> "T7"). Annotations and header fields are copied. Throws
// std::invalid_argument listing the missing electrodes and every channel of the recording
// with what it was read as; also when a requested name is not an electrode, when it is asked
// twice, or when two channels of the recording are the same electrode.
Recording select_channels(const Recording& recording, const std::vector<std::string>& electrodes);

// ---- bipolar montages ----------------------------------------------------------------------

struct BipolarPair {
  std::string anode, cathode; // channel = anode - cathode, labelled "anode-cathode"
};
const std::vector<BipolarPair>& double_banana_montage(); // 18 pairs (ACNS Guideline 3)
const std::vector<BipolarPair>& tuh_tcp_montage();       // 22 pairs (TUH EEG TCP)
// The electrodes a montage uses, in order of first appearance.
std::vector<std::string> montage_electrodes(const std::vector<BipolarPair>& montage);

// One channel per pair, the anode's samples minus the cathode's, from a referential recording
// (channels found by canonical_electrode of their labels). Throws std::invalid_argument when
// an electrode is missing (listing the channels), or when the two channels of a pair differ
// in rate (resample first) or in length. The unit is the anode's; the physical range is
// widened to hold any difference of values in the two channels' ranges.
Recording apply_bipolar_montage(const Recording& recording,
                                const std::vector<BipolarPair>& montage);

// ---- resampling ----------------------------------------------------------------------------

struct ResampleOptions {
  double stopband_db = 80;          // Kaiser design attenuation A, in [21, 200] dB
  double transition_fraction = 0.2; // transition band width / f_N, in (0, 1)
  int64_t max_factor = 50000;       // largest p or q accepted (the filter has ~50 max(p,q) taps)
};

// The designed filter: taps h[0 .. 2 half_length] at the upsampled rate p * from_hz, centred
// on half_length, with gain p (so that zero-stuffing keeps the amplitude).
struct ResampleFilter {
  int64_t up = 1, down = 1; // p, q: to / from = p / q, reduced
  int64_t half_length = 0;
  double cutoff_hz = 0;     // -6 dB point, in Hz at either rate
  double beta = 0;          // Kaiser window parameter
  std::vector<double> taps; // (2 half_length + 1)
};
ResampleFilter design_resample_filter(double from_hz, double to_hz,
                                      const ResampleOptions& options = {});

// x sampled at from_hz -> the same signal at to_hz (a copy when the rates are equal).
std::vector<double> resample(const std::vector<double>& x, double from_hz, double to_hz,
                             const ResampleOptions& options = {});
// Every channel of `recording` to rate_hz (channels already at rate_hz are copied).
Recording resample(const Recording& recording, double rate_hz, const ResampleOptions& options = {});

// ---- band-pass and notch filters -----------------------------------------------------------

// y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2] (a0 normalised to 1; a
// first-order section has b2 = a2 = 0).
struct Biquad {
  double b0 = 1, b1 = 0, b2 = 0, a1 = 0, a2 = 0;
};
using BiquadCascade = std::vector<Biquad>;

// Butterworth filters of `order` (1..8) with the cutoff at -3 dB for one pass, 0 < cutoff_hz
// < rate_hz / 2.
BiquadCascade butterworth_lowpass(double cutoff_hz, double rate_hz, int order);
BiquadCascade butterworth_highpass(double cutoff_hz, double rate_hz, int order);
// High-pass at low_hz followed by low-pass at high_hz; low_hz = 0 leaves out the high-pass,
// high_hz = 0 the low-pass (not both). Requires low_hz < high_hz < rate_hz / 2.
BiquadCascade butterworth_bandpass(double low_hz, double high_hz, double rate_hz, int order);
// Notch at f0_hz (0 < f0_hz < rate_hz / 2) with quality factor q > 0 (bandwidth f0 / q).
Biquad notch_biquad(double f0_hz, double rate_hz, double q);
// |H(e^{2 pi i f / fs})| of one forward pass of the cascade.
double cascade_magnitude(const BiquadCascade& cascade, double freq_hz, double rate_hz);

// Zero-phase filtering: forward and backward, with reflection padding (see the top).
std::vector<double> filtfilt(const BiquadCascade& cascade, const std::vector<double>& x);
std::vector<double> bandpass_filter(const std::vector<double>& x, double rate_hz, double low_hz,
                                    double high_hz, int order = 4);
std::vector<double> notch_filter(const std::vector<double>& x, double rate_hz, double f0_hz,
                                 double q = 30);

// ---- normalisation -------------------------------------------------------------------------

enum class Normalization { None, ZScore, Robust };
struct ChannelStats {
  double center = 0, scale = 1; // mean and std, or median and IQR / 1.349
};
ChannelStats channel_stats(const std::vector<double>& x, Normalization mode);
// x <- (x - center) / scale, in place; returns the statistics used.
ChannelStats normalize(std::vector<double>& x, Normalization mode);

// ---- clips ---------------------------------------------------------------------------------

std::vector<std::string> default_seizure_patterns();
std::vector<std::string> default_non_seizure_patterns();

struct ClipOptions {
  double clip_s = 12;
  double stride_s = 12;
  double min_seizure_overlap_s = 1;
  std::vector<std::string> seizure_patterns = default_seizure_patterns();
  std::vector<std::string> non_seizure_patterns = default_non_seizure_patterns();
  DType dtype = DType::Float32; // of Clips::data
};

bool is_seizure_annotation(const std::string& text, const ClipOptions& options = {});
// The seizure annotations of `recording` as sorted, merged [start, end) intervals in seconds.
std::vector<std::pair<double, double>> seizure_intervals(const Recording& recording,
                                                         const ClipOptions& options = {});

struct Clips {
  Tensor data;                           // (clips, channels, samples) of options.dtype
  std::vector<int64_t> labels;           // (clips): 1 seizure, 0 not
  std::vector<double> start_s;           // (clips): start time of each clip
  std::vector<double> seizure_overlap_s; // (clips): seizure seconds inside each clip
  std::vector<std::string> channels;     // (channels): labels
  double rate_hz = 0;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};
// Cuts a recording whose channels share one rate and one length into labelled clips. Throws
// std::invalid_argument when the rates or lengths differ, when clip_s or stride_s is not
// positive or not a whole number of samples, or when the recording is shorter than a clip.
Clips make_clips(const Recording& recording, const ClipOptions& options = {});

// ---- the pipeline --------------------------------------------------------------------------

struct PreprocessOptions {
  std::vector<std::string> electrodes = standard_10_20_electrodes(); // referential channels
  // Empty: keep the referential channels. Otherwise the bipolar pairs to build (e.g.
  // double_banana_montage()); the electrodes selected are then the montage's, and
  // `electrodes` is not used.
  std::vector<BipolarPair> montage;
  double rate_hz = 200; // 0: keep the recording's rate (all channels must share it)
  ResampleOptions resampling;
  double bandpass_low_hz = 0.5; // 0: no high-pass
  double bandpass_high_hz = 70; // 0: no low-pass (both 0: no band-pass)
  int filter_order = 4;         // per pass; filtfilt doubles it
  // Line noise of unknown origin (Europe 50 Hz, Americas 60 Hz): both notched by default, each
  // removing a band of about f0 / notch_q Hz. Empty: no notch.
  std::vector<double> notch_hz = {50, 60};
  double notch_q = 30;
  Normalization normalization = Normalization::ZScore;
  ClipOptions clips;
};

// select -> resample -> montage -> band-pass -> notch -> normalise: the processed recording
// (annotations kept), e.g. for plotting traces. Throws std::invalid_argument naming the step
// on bad input (a channel with a non-finite sample, a band above the Nyquist frequency, ...).
Recording preprocess_recording(const Recording& recording, const PreprocessOptions& options = {});
// preprocess_recording, then make_clips.
Clips preprocess(const Recording& recording, const PreprocessOptions& options = {});

} // namespace ssm::eeg
