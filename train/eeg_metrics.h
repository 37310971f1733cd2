// eeg_metrics.h: the detection metrics of the seizure trainer (train/train_eeg.cpp): clip-level
// ranking metrics (AUROC, AUPRC), confusion-matrix metrics at a threshold, two threshold
// choosers, and event-level metrics on whole recordings. Everything is double precision on
// plain vectors; nothing here touches tensors or devices.
//
// ---- Clip level -----------------------------------------------------------------------------
// Inputs: scores s_i (any real, higher = more likely a seizure) and labels y_i in {0, 1} for
// i = 1 .. n; P = #{y_i = 1} positives, N = #{y_i = 0} negatives. A clip is predicted positive
// at threshold t iff s_i >= t.
//
// AUROC (Hanley & McNeil 1982, "The meaning and use of the area under a receiver operating
// characteristic (ROC) curve"): the Mann-Whitney U statistic normalised by P N,
//
//   AUROC = (1 / (P N)) sum_{i: y_i=1} sum_{j: y_j=0} ( [s_i > s_j] + 1/2 [s_i = s_j] ),
//
// the probability that a random positive outscores a random negative, ties counted as 1/2.
// It equals the trapezoidal area under the ROC curve below (a tie block of the scores is one
// diagonal segment, whose trapezoid contributes exactly the 1/2 per tied pair). Computed in
// O(n log n) from midranks: with r_i the rank of s_i among all n scores (1 = smallest, tied
// scores get the mean of their ranks), AUROC = (sum_{y_i=1} r_i - P (P + 1) / 2) / (P N).
//
// ROC curve (Fawcett 2006, "An introduction to ROC analysis"): one point per distinct score
// t, descending, (FPR(t), TPR(t), t) with TPR = TP / P and FPR = FP / N at threshold t,
// preceded by (0, 0, +inf); the last point is (1, 1, min score). No point is dropped (unlike
// scikit-learn's drop_intermediate), so every distinct score is a threshold.
//
// AUPRC as average precision, the definition of scikit-learn's average_precision_score
// (no interpolation): over the distinct scores t_1 > t_2 > ... > t_K,
//
//   AP = sum_k (R_k - R_{k-1}) P_k,   R_0 = 0,
//
// with R_k = TP(t_k) / P the recall and P_k = TP(t_k) / (TP(t_k) + FP(t_k)) the precision at
// t_k. Tied scores enter together (one step), as in scikit-learn. It is a step-function area
// under the PR curve; it is not the trapezoidal area, which overestimates (Davis & Goadrich
// 2006, "The relationship between precision-recall and ROC curves").
//
// PR curve: (recall, precision, threshold) per distinct score descending, preceded by
// (0, 1, +inf) as scikit-learn's precision_recall_curve appends (recall 0, precision 1).
//
// At a threshold t: sensitivity (recall, TPR) = TP / (TP + FN), specificity (TNR) =
// TN / (TN + FP), precision (PPV) = TP / (TP + FP), F1 = 2 TP / (2 TP + FP + FN). A ratio
// whose denominator is 0 (no positives, no negatives, nothing predicted positive) is NaN:
// undefined, not 0.
//
// Threshold choosers, both over the distinct scores as candidates (so the chosen threshold is
// a score value and reproduces the validation operating point exactly):
//   - Youden's J (Youden 1950, "Index for rating diagnostic tests"): the t maximising
//     J(t) = TPR(t) - FPR(t) = sensitivity + specificity - 1; ties go to the highest t.
//   - Target sensitivity: the highest t with TPR(t) >= target, i.e. the most specific
//     operating point that still catches the target fraction of seizure clips.
//
// Errors (std::invalid_argument naming the function, expected vs found): sizes differ, no
// scores, a label not 0 or 1, a score that is NaN; AUROC, the ROC and PR curves, AP and the
// threshold choosers also throw when there are no positives or no negatives (the rankings
// are undefined then; a NaN could silently land in a metrics table).
//
// ---- Event level (whole recordings) ---------------------------------------------------------
// A recording is scored clip by clip: clip c covers [start_c, start_c + L) seconds (L the
// clip length; clips may overlap when the stride is below L) and has probability p_c. Start
// times must be non-decreasing. Detection, at threshold t with smoothing k >= 1:
//   1. clip c is above threshold iff p_c >= t;
//   2. a run is a maximal sequence of consecutive clips (in time order) all above threshold,
//      broken also where the next clip starts after the previous one ends (a gap with no
//      clip); runs of fewer than k clips are dropped (k consecutive positive clips are needed
//      to raise an alarm, which suppresses isolated false positives);
//   3. a detected event is the union [first start, last start + L) of a run's clips; events
//      that overlap or touch are merged into one.
// Scoring is OVLP, the any-overlap method of the TUH EEG seizure scoring (Ziyabari, Shah,
// Golmohammadi, Obeid, Picone 2017, "Objective evaluation metrics for automatic
// classification of EEG events"): a true seizure [a, b) is detected iff some detected event
// [c, d) overlaps it by a positive amount (c < b and a < d); a detected event overlapping no
// true seizure is one false alarm. Then
//
//   event sensitivity     = (true seizures overlapped by >= 1 event) / (true seizures),
//   false alarms per hour = (events overlapping no seizure) / (recording duration / 3600 s).
//
// An event overlapping two seizures detects both and is no false alarm; two events inside
// one seizure detect it once and neither is a false alarm. A recording with no seizures has
// event sensitivity NaN (undefined) and its false alarms still count. Over many recordings
// the counts are pooled (micro-average, as the TUH scoring reports a whole evaluation set):
// sensitivity = sum detected / sum seizures, false alarms per hour = sum false alarms /
// sum hours.
#pragma once

#include <cstdint>
#include <vector>

namespace ssm::eeg {

// ---- Clip level ------------------------------------------------------------------------------

struct RocPoint {
  double fpr = 0, tpr = 0, threshold = 0; // threshold +inf for the (0, 0) point
};

struct PrPoint {
  double recall = 0, precision = 0, threshold = 0; // threshold +inf for the (0, 1) point
};

// scores (n) and labels (n, each 0 or 1).
double auroc(const std::vector<double>& scores, const std::vector<int>& labels);
std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<int>& labels);
double average_precision(const std::vector<double>& scores, const std::vector<int>& labels);
std::vector<PrPoint> pr_curve(const std::vector<double>& scores, const std::vector<int>& labels);

// The confusion matrix at `threshold` (positive iff score >= threshold) and the ratios from
// it; a ratio with a zero denominator is NaN.
struct ThresholdMetrics {
  double threshold = 0;
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  double sensitivity = 0, specificity = 0, precision = 0, f1 = 0;
};
ThresholdMetrics metrics_at_threshold(const std::vector<double>& scores,
                                      const std::vector<int>& labels, double threshold);

// The score value maximising Youden's J = TPR - FPR (ties: the highest).
double threshold_max_youden(const std::vector<double>& scores, const std::vector<int>& labels);
// The highest score value whose TPR is >= target_sensitivity, which must be in (0, 1].
double threshold_for_sensitivity(const std::vector<double>& scores, const std::vector<int>& labels,
                                 double target_sensitivity);

// ---- Event level -----------------------------------------------------------------------------

// [start_s, end_s) in seconds from the start of the recording.
struct Interval {
  double start_s = 0, end_s = 0;
};

// One recording's clip probabilities and its true seizures.
struct RecordingScores {
  std::vector<double> clip_start_s; // (clips) non-decreasing
  std::vector<double> probability;  // (clips) seizure probability of each clip
  double clip_length_s = 0;         // > 0
  double duration_s = 0;            // > 0, the whole recording (the false-alarm denominator)
  std::vector<Interval> seizures;   // true seizure intervals (end > start)
};

struct EventOptions {
  double threshold = 0.5;      // a clip is positive iff probability >= threshold
  int64_t min_consecutive = 1; // k: runs of fewer positive clips raise no alarm
};

struct EventMetrics {
  int64_t seizures = 0;          // true seizures
  int64_t detected_seizures = 0; // true seizures overlapped by >= 1 detected event
  int64_t events = 0;            // detected events (after merging)
  int64_t false_alarms = 0;      // detected events overlapping no true seizure
  double hours = 0;              // recording time scored
  double sensitivity = 0;        // detected_seizures / seizures; NaN when seizures == 0
  double false_alarms_per_hour = 0;
};

// The detected events of one recording, in time order, merged.
std::vector<Interval> detect_events(const RecordingScores& recording, const EventOptions& options);
// OVLP scoring of one recording, and of many pooled.
EventMetrics event_metrics(const RecordingScores& recording, const EventOptions& options);
EventMetrics event_metrics(const std::vector<RecordingScores>& recordings,
                           const EventOptions& options);

} // namespace ssm::eeg
