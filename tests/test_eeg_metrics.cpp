// test_eeg_metrics.cpp: the seizure-detection metrics of train/eeg_metrics.h against values
// computed by hand (in the comments), against brute-force forms of the same definitions, and
// their errors on bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "train/eeg_metrics.h"

using namespace ssm::eeg;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Runs f, which must throw std::invalid_argument whose message contains every fragment.
template <typename F>
void expect_invalid(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    FAIL("expected std::invalid_argument");
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    for (const std::string& fragment : fragments)
      CHECK_MESSAGE(message.find(fragment) != std::string::npos,
                    "expected '" << fragment << "' in: " << message);
  }
}

// Trapezoidal area under the ROC curve's points.
double trapezoid_area(const std::vector<RocPoint>& curve) {
  double area = 0;
  for (size_t k = 1; k < curve.size(); ++k)
    area += (curve[k].fpr - curve[k - 1].fpr) * 0.5 * (curve[k].tpr + curve[k - 1].tpr);
  return area;
}

// The small case of the brief. Positives {0.35, 0.8}, negatives {0.1, 0.4}.
//   Pairs: 0.8 beats both negatives (2), 0.35 beats 0.1 only (1): AUROC = 3 / 4 = 0.75.
//   Descending thresholds and (TP, FP): 0.8 (1, 0), 0.4 (1, 1), 0.35 (2, 1), 0.1 (2, 2).
//   Recall / precision: 0.5 / 1, 0.5 / 0.5, 1 / (2/3), 1 / 0.5.
//   AP = (0.5 - 0) * 1 + 0 * 0.5 + (1 - 0.5) * 2/3 + 0 * 0.5 = 0.5 + 1/3 = 0.8333...
const std::vector<double> kScores{0.1, 0.4, 0.35, 0.8};
const std::vector<int> kLabels{0, 0, 1, 1};

} // namespace

TEST_CASE("eeg_metrics: AUROC and AP of the hand-computed small case") {
  CHECK(auroc(kScores, kLabels) == doctest::Approx(0.75).epsilon(1e-15));
  CHECK(average_precision(kScores, kLabels) == doctest::Approx(5.0 / 6.0).epsilon(1e-15));

  const std::vector<RocPoint> roc = roc_curve(kScores, kLabels);
  const std::vector<RocPoint> expected_roc{
      {0, 0, kInf}, {0, 0.5, 0.8}, {0.5, 0.5, 0.4}, {0.5, 1, 0.35}, {1, 1, 0.1}};
  REQUIRE(roc.size() == expected_roc.size());
  for (size_t k = 0; k < roc.size(); ++k) {
    INFO("ROC point " << k);
    CHECK(roc[k].fpr == expected_roc[k].fpr);
    CHECK(roc[k].tpr == expected_roc[k].tpr);
    CHECK(roc[k].threshold == expected_roc[k].threshold);
  }
  CHECK(trapezoid_area(roc) == doctest::Approx(0.75).epsilon(1e-15));

  const std::vector<PrPoint> pr = pr_curve(kScores, kLabels);
  const std::vector<PrPoint> expected_pr{
      {0, 1, kInf}, {0.5, 1, 0.8}, {0.5, 0.5, 0.4}, {1, 2.0 / 3.0, 0.35}, {1, 0.5, 0.1}};
  REQUIRE(pr.size() == expected_pr.size());
  for (size_t k = 0; k < pr.size(); ++k) {
    INFO("PR point " << k);
    CHECK(pr[k].recall == expected_pr[k].recall);
    CHECK(pr[k].precision == doctest::Approx(expected_pr[k].precision).epsilon(1e-15));
    CHECK(pr[k].threshold == expected_pr[k].threshold);
  }
}

TEST_CASE("eeg_metrics: perfect and reversed rankings") {
  const std::vector<double> scores{0.1, 0.2, 0.9, 0.8};
  // Perfect: both positives above both negatives.
  CHECK(auroc(scores, {0, 0, 1, 1}) == 1.0);
  CHECK(average_precision(scores, {0, 0, 1, 1}) == 1.0);
  // Reversed: AUROC 0. Descending 0.9 (neg), 0.8 (neg), 0.2 (pos: R 1/2, P 1/3),
  // 0.1 (pos: R 1, P 2/4): AP = 1/2 * 1/3 + 1/2 * 1/2 = 5/12.
  CHECK(auroc(scores, {1, 1, 0, 0}) == 0.0);
  CHECK(average_precision(scores, {1, 1, 0, 0}) == doctest::Approx(5.0 / 12.0).epsilon(1e-15));
}

TEST_CASE("eeg_metrics: ties count one half") {
  // All scores tied: every pair is a tie, AUROC = 1/2; one threshold with R 1, P 2/4: AP 1/2.
  CHECK(auroc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}) == 0.5);
  CHECK(average_precision({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}) == 0.5);
  CHECK(roc_curve({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}).size() == 2); // (0,0,inf), (1,1,0.5)

  // Positives {0.6, 0.9}, negatives {0.2, 0.6, 0.3}. Pairs: 0.9 beats all three (3); 0.6
  // beats 0.2 and 0.3 (2) and ties 0.6 (1/2): AUROC = 5.5 / 6. Descending: 0.9 (TP 1, FP 0:
  // R 1/2, P 1), tie block 0.6 (TP 2, FP 1: R 1, P 2/3), then R stays 1: AP = 1/2 + 1/2 * 2/3.
  const std::vector<double> scores{0.2, 0.6, 0.6, 0.9, 0.3};
  const std::vector<int> labels{0, 1, 0, 1, 0};
  CHECK(auroc(scores, labels) == doctest::Approx(5.5 / 6.0).epsilon(1e-15));
  CHECK(trapezoid_area(roc_curve(scores, labels)) == doctest::Approx(5.5 / 6.0).epsilon(1e-15));
  CHECK(average_precision(scores, labels) == doctest::Approx(5.0 / 6.0).epsilon(1e-15));
}

TEST_CASE("eeg_metrics: AUROC and AP equal brute-force forms on random data with ties") {
  std::mt19937_64 rng(20261129);
  for (int trial = 0; trial < 20; ++trial) {
    const size_t n = 5 + rng() % 60;
    std::vector<double> scores(n), distinct_scores(n);
    std::vector<int> labels(n);
    for (size_t i = 0; i < n; ++i) {
      scores[i] = static_cast<double>(rng() % 9) / 9.0; // few values: many ties
      distinct_scores[i] = static_cast<double>(i) + 0.5 * static_cast<double>(rng() % 2) / n;
      labels[i] = static_cast<int>(rng() % 2);
    }
    labels[0] = 0; // both classes present
    labels[1] = 1;
    INFO("trial " << trial << ", n " << n);

    // AUROC by the pair count of the definition; and the ROC trapezoid.
    double wins = 0, positives = 0, negatives = 0;
    for (size_t i = 0; i < n; ++i) {
      (labels[i] == 1 ? positives : negatives) += 1;
      if (labels[i] != 1) continue;
      for (size_t j = 0; j < n; ++j)
        if (labels[j] == 0) wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0;
    }
    const double pairwise = wins / (positives * negatives);
    CHECK(auroc(scores, labels) == doctest::Approx(pairwise).epsilon(1e-12));
    CHECK(trapezoid_area(roc_curve(scores, labels)) == doctest::Approx(pairwise).epsilon(1e-12));

    // Without ties AP is the mean, over the positives, of the precision at each positive's
    // rank: (1/P) sum_{positive i} #{positives scoring >= s_i} / #{clips scoring >= s_i}.
    double precision_sum = 0;
    for (size_t i = 0; i < n; ++i) {
      if (labels[i] != 1) continue;
      double above = 0, positives_above = 0;
      for (size_t j = 0; j < n; ++j)
        if (distinct_scores[j] >= distinct_scores[i]) {
          above += 1;
          positives_above += labels[j];
        }
      precision_sum += positives_above / above;
    }
    CHECK(average_precision(distinct_scores, labels) ==
          doctest::Approx(precision_sum / positives).epsilon(1e-12));
  }
}

TEST_CASE("eeg_metrics: sensitivity, specificity, precision and F1 at thresholds") {
  // Threshold 0.35: predicted {0.4, 0.35, 0.8}: TP 2, FP 1, TN 1, FN 0.
  ThresholdMetrics m = metrics_at_threshold(kScores, kLabels, 0.35);
  CHECK(m.tp == 2);
  CHECK(m.fp == 1);
  CHECK(m.tn == 1);
  CHECK(m.fn == 0);
  CHECK(m.sensitivity == 1.0);
  CHECK(m.specificity == 0.5);
  CHECK(m.precision == doctest::Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(m.f1 == doctest::Approx(0.8).epsilon(1e-15)); // 2*2 / (2*2 + 1 + 0)

  // Threshold 0.5: predicted {0.8}: TP 1, FP 0, TN 2, FN 1; F1 = 2 / (2 + 0 + 1).
  m = metrics_at_threshold(kScores, kLabels, 0.5);
  CHECK(m.sensitivity == 0.5);
  CHECK(m.specificity == 1.0);
  CHECK(m.precision == 1.0);
  CHECK(m.f1 == doctest::Approx(2.0 / 3.0).epsilon(1e-15));

  // Above every score: nothing predicted, precision 0/0 is NaN, F1 = 0 / (0 + 0 + 2) = 0.
  m = metrics_at_threshold(kScores, kLabels, 0.9);
  CHECK(m.sensitivity == 0.0);
  CHECK(m.specificity == 1.0);
  CHECK(std::isnan(m.precision));
  CHECK(m.f1 == 0.0);

  // No positives: sensitivity 0/0 is NaN, specificity defined.
  m = metrics_at_threshold({0.2, 0.7}, {0, 0}, 0.5);
  CHECK(std::isnan(m.sensitivity));
  CHECK(m.specificity == 0.5);
}

TEST_CASE("eeg_metrics: threshold choosers") {
  // J = TPR - FPR at 0.8: 0.5 - 0 = 0.5; 0.4: 0; 0.35: 1 - 0.5 = 0.5; 0.1: 0. Tie: highest.
  CHECK(threshold_max_youden(kScores, kLabels) == 0.8);
  // J at 0.9: 1/2 - 0 = 1/2; at the tie block 0.6: 1 - 1/3 = 2/3 (the maximum); 0.3: 1 - 2/3.
  CHECK(threshold_max_youden({0.2, 0.6, 0.6, 0.9, 0.3}, {0, 1, 0, 1, 0}) == 0.6);
  // TPR 0.5 at 0.8 and 1 from 0.35 down.
  CHECK(threshold_for_sensitivity(kScores, kLabels, 0.5) == 0.8);
  CHECK(threshold_for_sensitivity(kScores, kLabels, 0.6) == 0.35);
  CHECK(threshold_for_sensitivity(kScores, kLabels, 1.0) == 0.35);
  // The chosen threshold reproduces the operating point.
  CHECK(metrics_at_threshold(kScores, kLabels, 0.35).sensitivity == 1.0);
}

TEST_CASE("eeg_metrics: clip-level bad inputs") {
  expect_invalid([] { auroc({0.1, 0.2}, {0, 1, 1}); }, {"auroc", "2 scores and 3 labels"});
  expect_invalid([] { auroc({0.1, 0.2}, {0, 2}); }, {"auroc", "labels 0 or 1", "found 2"});
  expect_invalid([] { auroc({0.1, 0.2}, {1, 1}); }, {"auroc", "2 positives and 0 negatives"});
  expect_invalid(
      [] {
        average_precision({0.1, 0.2}, {0, 0});
      },
      {"average_precision", "0 positives"});
  expect_invalid([] { roc_curve({}, {}); }, {"roc_curve", "at least one score"});
  expect_invalid([] { pr_curve({0.1, std::nan("")}, {0, 1}); }, {"pr_curve", "NaN at index 1"});
  expect_invalid([] { metrics_at_threshold({0.1}, {-1}, 0.5); },
                 {"metrics_at_threshold", "found -1"});
  expect_invalid([] { threshold_max_youden({0.1}, {1}); }, {"threshold_max_youden", "negatives"});
  expect_invalid([] { threshold_for_sensitivity(kScores, kLabels, 0); },
                 {"threshold_for_sensitivity", "(0, 1]", "found 0"});
  expect_invalid([] { threshold_for_sensitivity(kScores, kLabels, 1.5); }, {"found 1.5"});
}

namespace {

// Clips of 10 s every 10 s from 0 with the given probabilities; a recording of 1800 s.
RecordingScores recording_of(const std::vector<double>& probability,
                             const std::vector<Interval>& seizures, double duration_s = 1800,
                             double stride_s = 10, double clip_length_s = 10) {
  RecordingScores r;
  for (size_t c = 0; c < probability.size(); ++c)
    r.clip_start_s.push_back(stride_s * static_cast<double>(c));
  r.probability = probability;
  r.clip_length_s = clip_length_s;
  r.duration_s = duration_s;
  r.seizures = seizures;
  return r;
}

} // namespace

TEST_CASE("eeg_metrics: events, a detection, false alarms, smoothing, per-hour rate") {
  // 18 clips of 10 s; a seizure [50, 80) s; half an hour of recording.
  //   clips 5, 6, 7 (50-80 s) positive: an event [50, 80) on the seizure;
  //   clip 12 alone positive: an event [120, 130), a false alarm;
  //   clips 15, 16 positive: an event [150, 170), a false alarm.
  std::vector<double> p(18, 0.1);
  p[5] = p[6] = p[7] = 0.9;
  p[12] = 0.6;
  p[15] = p[16] = 0.7;
  const RecordingScores r = recording_of(p, {{50, 80}});

  EventOptions options; // threshold 0.5, k = 1
  const std::vector<Interval> events = detect_events(r, options);
  REQUIRE(events.size() == 3);
  CHECK(events[0].start_s == 50);
  CHECK(events[0].end_s == 80);
  CHECK(events[1].start_s == 120);
  CHECK(events[2].end_s == 170);
  EventMetrics m = event_metrics(r, options);
  CHECK(m.seizures == 1);
  CHECK(m.detected_seizures == 1);
  CHECK(m.events == 3);
  CHECK(m.false_alarms == 2);
  CHECK(m.hours == 0.5);
  CHECK(m.sensitivity == 1.0);
  CHECK(m.false_alarms_per_hour == 4.0); // 2 / 0.5 h

  options.min_consecutive = 2; // the lone clip 12 raises no alarm
  m = event_metrics(r, options);
  CHECK(m.false_alarms == 1);
  CHECK(m.false_alarms_per_hour == 2.0);
  options.min_consecutive = 3; // only the seizure run is long enough
  m = event_metrics(r, options);
  CHECK(m.events == 1);
  CHECK(m.false_alarms == 0);
  CHECK(m.sensitivity == 1.0);
  options.min_consecutive = 4; // nothing
  m = event_metrics(r, options);
  CHECK(m.events == 0);
  CHECK(m.sensitivity == 0.0);

  options = EventOptions{0.65, 1}; // threshold 0.65 drops clip 12 (0.6)
  CHECK(event_metrics(r, options).false_alarms == 1);
  options.threshold = 0.6; // >= : clip 12 at exactly 0.6 counts
  CHECK(event_metrics(r, options).false_alarms == 2);
}

TEST_CASE("eeg_metrics: overlapping clips merge, gaps split, touching is no overlap") {
  // 10 s clips every 5 s. Positive clips start at 20, 25 (run [20, 35)) and 35 ([35, 45));
  // the clip at 30 is negative, but the runs touch at 35 and merge into [20, 45).
  std::vector<double> p(12, 0.0);
  p[4] = p[5] = p[7] = 1.0;
  const RecordingScores overlapping = recording_of(p, {}, 1800, 5, 10);
  std::vector<Interval> events = detect_events(overlapping, EventOptions{});
  REQUIRE(events.size() == 1);
  CHECK(events[0].start_s == 20);
  CHECK(events[0].end_s == 45);

  // Clips at 0, 10 and 30 (no clip covers [20, 30)): positives at 10 and 30 are two runs.
  RecordingScores gap = recording_of({0.0, 1.0, 1.0}, {}, 3600);
  gap.clip_start_s = {0, 10, 30};
  events = detect_events(gap, EventOptions{});
  REQUIRE(events.size() == 2);
  CHECK(events[0].end_s == 20);
  CHECK(events[1].start_s == 30);
  CHECK(detect_events(gap, EventOptions{0.5, 2}).empty()); // the gap breaks the run of two

  // A seizure recording with no seizures: sensitivity NaN, false alarms per hour 2 / 1 h.
  const EventMetrics m = event_metrics(gap, EventOptions{});
  CHECK(std::isnan(m.sensitivity));
  CHECK(m.false_alarms_per_hour == 2.0);

  // An event [70, 80) touching the seizure [80, 90) does not overlap it (OVLP needs a
  // positive overlap): a miss and a false alarm.
  std::vector<double> q(10, 0.0);
  q[7] = 1.0;
  const EventMetrics touching = event_metrics(recording_of(q, {{80, 90}}), EventOptions{});
  CHECK(touching.detected_seizures == 0);
  CHECK(touching.false_alarms == 1);
}

TEST_CASE("eeg_metrics: one event over two seizures, two events in one seizure, pooling") {
  // An event [10, 60) overlaps seizures [0, 20) and [40, 50): both detected, no false alarm.
  std::vector<double> p(8, 0.0);
  for (int c = 1; c <= 5; ++c) p[c] = 1.0;
  EventMetrics m = event_metrics(recording_of(p, {{0, 20}, {40, 50}}), EventOptions{});
  CHECK(m.detected_seizures == 2);
  CHECK(m.events == 1);
  CHECK(m.false_alarms == 0);

  // Events [10, 20) and [30, 40) inside the seizure [5, 45): detected once, no false alarm.
  std::vector<double> q(8, 0.0);
  q[1] = q[3] = 1.0;
  m = event_metrics(recording_of(q, {{5, 45}}), EventOptions{});
  CHECK(m.seizures == 1);
  CHECK(m.detected_seizures == 1);
  CHECK(m.events == 2);
  CHECK(m.false_alarms == 0);

  // Pooled: A (0.5 h, seizures [50, 80) detected and [150, 160) missed, 1 false alarm) and
  // B (1.5 h, no seizure, 2 false alarms): sensitivity 1/2, 3 false alarms / 2 h = 1.5 / h.
  std::vector<double> a(20, 0.0);
  a[5] = a[6] = a[10] = 1.0;
  std::vector<double> b(20, 0.0);
  b[2] = b[8] = 1.0;
  const std::vector<RecordingScores> recordings{recording_of(a, {{50, 80}, {150, 160}}),
                                                recording_of(b, {}, 5400)};
  m = event_metrics(recordings, EventOptions{});
  CHECK(m.seizures == 2);
  CHECK(m.detected_seizures == 1);
  CHECK(m.false_alarms == 3);
  CHECK(m.hours == 2.0);
  CHECK(m.sensitivity == 0.5);
  CHECK(m.false_alarms_per_hour == 1.5);
}

TEST_CASE("eeg_metrics: event-level bad inputs") {
  const RecordingScores good = recording_of({0.1, 0.9}, {{0, 10}});
  RecordingScores r = good;
  r.probability.push_back(0.5);
  expect_invalid([&] { event_metrics(r, EventOptions{}); },
                 {"event_metrics", "2 clip starts and 3 probabilities"});
  r = good;
  r.clip_length_s = 0;
  expect_invalid([&] { detect_events(r, EventOptions{}); }, {"detect_events", "clip_length_s"});
  r = good;
  r.duration_s = 0;
  expect_invalid([&] { event_metrics(r, EventOptions{}); }, {"duration_s", "found 0"});
  r = good;
  r.clip_start_s = {10, 0};
  expect_invalid([&] { event_metrics(r, EventOptions{}); }, {"non-decreasing", "at clip 1"});
  r = good;
  r.seizures = {{30, 20}};
  expect_invalid([&] { event_metrics(r, EventOptions{}); }, {"end_s > start_s", "[30, 20)"});
  expect_invalid([&] { event_metrics(good, EventOptions{0.5, 0}); }, {"min_consecutive >= 1"});
  expect_invalid([&] { event_metrics(std::vector<RecordingScores>{}, EventOptions{}); },
                 {"at least one recording"});
  r = good;
  r.probability[1] = std::nan("");
  expect_invalid(
      [&] {
        event_metrics(std::vector<RecordingScores>{good, r}, EventOptions{});
      },
      {"event_metrics (recording 1)", "at clip 1"});
}
