// eeg_metrics.cpp: the metrics of eeg_metrics.h (the math and its sources are there).
//
// The clip-level metrics share one pass: the scores sorted descending and grouped into tie
// blocks, with the cumulative (TP, FP) after each block. A block is one threshold t (its
// score): TP(t) and FP(t) count the clips with score >= t.
#include "train/eeg_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ssm::eeg {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

[[noreturn]] void fail(const std::string& op, const std::string& what) {
  throw std::invalid_argument(op + ": " + what);
}

// a / b, NaN when b is 0 (the ratio is undefined, not 0).
double ratio(double a, double b) { return b == 0 ? kNaN : a / b; }

struct Counts {
  int64_t positives = 0, negatives = 0;
};

// Checks scores and labels: same nonzero size, labels 0 or 1, no NaN score; returns P and N.
Counts check_inputs(const char* op, const std::vector<double>& scores,
                    const std::vector<int>& labels) {
  if (scores.size() != labels.size()) {
    std::ostringstream msg;
    msg << "expected as many labels as scores, found " << scores.size() << " scores and "
        << labels.size() << " labels";
    fail(op, msg.str());
  }
  if (scores.empty()) fail(op, "expected at least one score, found none");
  Counts counts;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1) {
      std::ostringstream msg;
      msg << "expected labels 0 or 1, found " << labels[i] << " at index " << i;
      fail(op, msg.str());
    }
    if (std::isnan(scores[i])) {
      std::ostringstream msg;
      msg << "expected scores that are numbers, found NaN at index " << i;
      fail(op, msg.str());
    }
    if (labels[i] == 1)
      ++counts.positives;
    else
      ++counts.negatives;
  }
  return counts;
}

// As check_inputs, and also requires both classes (rankings are undefined otherwise).
Counts check_both_classes(const char* op, const std::vector<double>& scores,
                          const std::vector<int>& labels) {
  Counts counts = check_inputs(op, scores, labels);
  if (counts.positives == 0 || counts.negatives == 0) {
    std::ostringstream msg;
    msg << "expected at least one positive and one negative label, found " << counts.positives
        << " positives and " << counts.negatives << " negatives";
    fail(op, msg.str());
  }
  return counts;
}

// One tie block of the descending scores: its score and the cumulative counts through it.
struct Block {
  double threshold = 0;
  int64_t tp = 0, fp = 0;
};

// The tie blocks in descending score order (blocks.size() = number of distinct scores).
std::vector<Block> tie_blocks(const std::vector<double>& scores, const std::vector<int>& labels) {
  std::vector<size_t> order(scores.size()); // (n) indices by descending score
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<Block> blocks;
  int64_t tp = 0, fp = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    if (labels[order[k]] == 1)
      ++tp;
    else
      ++fp;
    const bool block_ends = k + 1 == order.size() || scores[order[k + 1]] != scores[order[k]];
    if (block_ends) blocks.push_back({scores[order[k]], tp, fp});
  }
  return blocks;
}

} // namespace

// ---- Clip level ------------------------------------------------------------------------------

double auroc(const std::vector<double>& scores, const std::vector<int>& labels) {
  const Counts counts = check_both_classes("auroc", scores, labels);
  const size_t n = scores.size();
  std::vector<size_t> order(n); // (n) indices by ascending score
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Midranks: the tie block at sorted positions [begin, end) has 1-based ranks begin+1 .. end,
  // whose mean (begin + 1 + end) / 2 every member gets.
  double positive_rank_sum = 0;
  for (size_t begin = 0; begin < n;) {
    size_t end = begin + 1;
    while (end < n && scores[order[end]] == scores[order[begin]]) ++end;
    const double midrank = 0.5 * static_cast<double>(begin + 1 + end);
    for (size_t k = begin; k < end; ++k)
      if (labels[order[k]] == 1) positive_rank_sum += midrank;
    begin = end;
  }
  const double P = static_cast<double>(counts.positives);
  const double N = static_cast<double>(counts.negatives);
  return (positive_rank_sum - P * (P + 1) / 2) / (P * N);
}

std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<int>& labels) {
  const Counts counts = check_both_classes("roc_curve", scores, labels);
  const double P = static_cast<double>(counts.positives);
  const double N = static_cast<double>(counts.negatives);
  std::vector<RocPoint> curve{{0, 0, kInf}};
  for (const Block& b : tie_blocks(scores, labels))
    curve.push_back({static_cast<double>(b.fp) / N, static_cast<double>(b.tp) / P, b.threshold});
  return curve;
}

double average_precision(const std::vector<double>& scores, const std::vector<int>& labels) {
  const Counts counts = check_both_classes("average_precision", scores, labels);
  const double P = static_cast<double>(counts.positives);
  double ap = 0, previous_recall = 0;
  for (const Block& b : tie_blocks(scores, labels)) {
    const double recall = static_cast<double>(b.tp) / P;
    const double precision = static_cast<double>(b.tp) / static_cast<double>(b.tp + b.fp);
    ap += (recall - previous_recall) * precision;
    previous_recall = recall;
  }
  return ap;
}

std::vector<PrPoint> pr_curve(const std::vector<double>& scores, const std::vector<int>& labels) {
  const Counts counts = check_both_classes("pr_curve", scores, labels);
  const double P = static_cast<double>(counts.positives);
  std::vector<PrPoint> curve{{0, 1, kInf}};
  for (const Block& b : tie_blocks(scores, labels))
    curve.push_back({static_cast<double>(b.tp) / P,
                     static_cast<double>(b.tp) / static_cast<double>(b.tp + b.fp), b.threshold});
  return curve;
}

ThresholdMetrics metrics_at_threshold(const std::vector<double>& scores,
                                      const std::vector<int>& labels, double threshold) {
  check_inputs("metrics_at_threshold", scores, labels);
  if (std::isnan(threshold)) fail("metrics_at_threshold", "expected a threshold, found NaN");
  ThresholdMetrics m;
  m.threshold = threshold;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool predicted = scores[i] >= threshold;
    if (labels[i] == 1)
      ++(predicted ? m.tp : m.fn);
    else
      ++(predicted ? m.fp : m.tn);
  }
  const double tp = static_cast<double>(m.tp), fp = static_cast<double>(m.fp);
  const double tn = static_cast<double>(m.tn), fn = static_cast<double>(m.fn);
  m.sensitivity = ratio(tp, tp + fn);
  m.specificity = ratio(tn, tn + fp);
  m.precision = ratio(tp, tp + fp);
  m.f1 = ratio(2 * tp, 2 * tp + fp + fn);
  return m;
}

double threshold_max_youden(const std::vector<double>& scores, const std::vector<int>& labels) {
  const Counts counts = check_both_classes("threshold_max_youden", scores, labels);
  const double P = static_cast<double>(counts.positives);
  const double N = static_cast<double>(counts.negatives);
  double best_j = -kInf, best_threshold = 0;
  for (const Block& b : tie_blocks(scores, labels)) { // descending: strict > keeps the highest
    const double j = static_cast<double>(b.tp) / P - static_cast<double>(b.fp) / N;
    if (j > best_j) {
      best_j = j;
      best_threshold = b.threshold;
    }
  }
  return best_threshold;
}

double threshold_for_sensitivity(const std::vector<double>& scores, const std::vector<int>& labels,
                                 double target_sensitivity) {
  const char* op = "threshold_for_sensitivity";
  const Counts counts = check_both_classes(op, scores, labels);
  if (!(target_sensitivity > 0 && target_sensitivity <= 1)) {
    std::ostringstream msg;
    msg << "expected a target sensitivity in (0, 1], found " << target_sensitivity;
    fail(op, msg.str());
  }
  const double P = static_cast<double>(counts.positives);
  const std::vector<Block> blocks = tie_blocks(scores, labels);
  for (const Block& b : blocks) // descending: the first one reaching the target is the highest
    if (static_cast<double>(b.tp) / P >= target_sensitivity) return b.threshold;
  return blocks.back().threshold; // not reached: the last block has TPR = P / P = 1 >= target
}

// ---- Event level -----------------------------------------------------------------------------

namespace {

void check_recording(const std::string& op, const RecordingScores& r, const EventOptions& options) {
  std::ostringstream msg;
  if (r.clip_start_s.size() != r.probability.size())
    msg << "expected one probability per clip start, found " << r.clip_start_s.size()
        << " clip starts and " << r.probability.size() << " probabilities";
  else if (!(r.clip_length_s > 0))
    msg << "expected clip_length_s > 0, found " << r.clip_length_s;
  else if (!(r.duration_s > 0) || !std::isfinite(r.duration_s))
    msg << "expected a finite duration_s > 0, found " << r.duration_s;
  else if (options.min_consecutive < 1)
    msg << "expected min_consecutive >= 1, found " << options.min_consecutive;
  else if (std::isnan(options.threshold))
    msg << "expected a threshold, found NaN";
  if (!msg.str().empty()) fail(op, msg.str());
  for (size_t c = 0; c < r.clip_start_s.size(); ++c) {
    if (!std::isfinite(r.clip_start_s[c]) || std::isnan(r.probability[c]))
      msg << "expected finite clip starts and probabilities, found start " << r.clip_start_s[c]
          << " and probability " << r.probability[c] << " at clip " << c;
    else if (c > 0 && r.clip_start_s[c] < r.clip_start_s[c - 1])
      msg << "expected non-decreasing clip starts, found " << r.clip_start_s[c - 1] << " then "
          << r.clip_start_s[c] << " at clip " << c;
    if (!msg.str().empty()) fail(op, msg.str());
  }
  for (size_t s = 0; s < r.seizures.size(); ++s)
    if (!(r.seizures[s].end_s > r.seizures[s].start_s)) {
      msg << "expected seizure intervals with end_s > start_s, found [" << r.seizures[s].start_s
          << ", " << r.seizures[s].end_s << ") at seizure " << s;
      fail(op, msg.str());
    }
}

// Positive overlap of [a.start, a.end) and [b.start, b.end) (touching is not overlapping).
bool overlaps(const Interval& a, const Interval& b) {
  return a.start_s < b.end_s && b.start_s < a.end_s;
}

std::vector<Interval> detect_checked(const RecordingScores& r, const EventOptions& options) {
  const size_t clips = r.clip_start_s.size();
  const double L = r.clip_length_s;
  std::vector<Interval> events;                   // merged, in time order
  auto add_run = [&](size_t first, size_t last) { // clips [first, last], all positive
    if (static_cast<int64_t>(last - first + 1) < options.min_consecutive) return;
    const Interval run{r.clip_start_s[first], r.clip_start_s[last] + L};
    if (!events.empty() && run.start_s <= events.back().end_s) // overlaps or touches
      events.back().end_s = std::max(events.back().end_s, run.end_s);
    else
      events.push_back(run);
  };
  size_t run_first = 0;
  bool in_run = false;
  for (size_t c = 0; c < clips; ++c) {
    const bool positive = r.probability[c] >= options.threshold;
    // A gap (this clip starts after the previous one ended) breaks a run.
    const bool gap = c > 0 && r.clip_start_s[c] > r.clip_start_s[c - 1] + L;
    if (in_run && (!positive || gap)) {
      add_run(run_first, c - 1);
      in_run = false;
    }
    if (positive && !in_run) {
      run_first = c;
      in_run = true;
    }
  }
  if (in_run) add_run(run_first, clips - 1);
  return events;
}

// Counts of one recording (sensitivity and rate are filled by finish).
EventMetrics count_events(const RecordingScores& r, const EventOptions& options) {
  const std::vector<Interval> events = detect_checked(r, options);
  EventMetrics m;
  m.seizures = static_cast<int64_t>(r.seizures.size());
  m.events = static_cast<int64_t>(events.size());
  m.hours = r.duration_s / 3600.0;
  for (const Interval& seizure : r.seizures)
    if (std::any_of(events.begin(), events.end(),
                    [&](const Interval& e) { return overlaps(e, seizure); }))
      ++m.detected_seizures;
  for (const Interval& e : events)
    if (std::none_of(r.seizures.begin(), r.seizures.end(),
                     [&](const Interval& seizure) { return overlaps(e, seizure); }))
      ++m.false_alarms;
  return m;
}

EventMetrics finish(EventMetrics m) {
  m.sensitivity = ratio(static_cast<double>(m.detected_seizures), static_cast<double>(m.seizures));
  m.false_alarms_per_hour = ratio(static_cast<double>(m.false_alarms), m.hours);
  return m;
}

} // namespace

std::vector<Interval> detect_events(const RecordingScores& recording, const EventOptions& options) {
  check_recording("detect_events", recording, options);
  return detect_checked(recording, options);
}

EventMetrics event_metrics(const RecordingScores& recording, const EventOptions& options) {
  check_recording("event_metrics", recording, options);
  return finish(count_events(recording, options));
}

EventMetrics event_metrics(const std::vector<RecordingScores>& recordings,
                           const EventOptions& options) {
  if (recordings.empty()) fail("event_metrics", "expected at least one recording, found none");
  EventMetrics total;
  for (size_t i = 0; i < recordings.size(); ++i) {
    check_recording("event_metrics (recording " + std::to_string(i) + ")", recordings[i], options);
    const EventMetrics m = count_events(recordings[i], options);
    total.seizures += m.seizures;
    total.detected_seizures += m.detected_seizures;
    total.events += m.events;
    total.false_alarms += m.false_alarms;
    total.hours += m.hours;
  }
  return finish(total);
}

} // namespace ssm::eeg
