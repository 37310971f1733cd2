// make_eeg.cpp: writes a set of synthetic EEG recordings (data/synthetic_eeg.h) as EDF+ files,
// each with its clinical-style note, and an index of the set.
//
//   build/make_eeg --out DIR --recordings N --seed S [--duration-min 10 --rate 200 ...]
//   build/make_eeg --help
//
// Recording i (0-based) is generated from seed synthetic_recording_seed(S, i), so it does not
// depend on N or on which other recordings were made, and writes
//   DIR/rec_000.edf   EDF+C: 19 referential 10-20 channels, annotations "seizure",
//                     "post-ictal slowing" and (unless --no-annotate-artifacts) the artifacts
//   DIR/rec_000.txt   the note ("Seizure 1: focal seizure at 01:32 arising from ...")
// and, when all are written, DIR/index.jsonl with one JSON object per recording, in order:
//   {"recording": "rec_000", "edf": "rec_000.edf", "note_file": "rec_000.txt",
//    "set_seed": S, "index": 0, "seed": "<decimal uint64, a string: JSON numbers are doubles>",
//    "rate_hz": 200, "duration_s": 600, "channels": 19, "alpha_hz": 9.7,
//    "seizures": [{"onset_s", "duration_s", "postictal_s", "region", "onset_channels",
//                  "pattern", "start_hz", "end_hz", "peak_uv", "spread_channels", "spread_s"}],
//    "artifacts": {"eye blink": 58, ...}, "note": "..."}
// Recordings are generated in parallel (SSM_NUM_THREADS threads, default all cores); every
// file is the same whatever the thread count. Files are written atomically (data/atomic_file.h).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/atomic_file.h"
#include "data/edf.h"
#include "data/json.h"
#include "data/synthetic_eeg.h"
#include "tensor/cpu/parallel.h"
#include "train/flags.h"

using namespace ssm;

namespace {

Json string_array(const std::vector<std::string>& items) {
  Json array = Json::array();
  for (const std::string& item : items) array.push_back(item);
  return array;
}

// The index line of one recording.
Json index_entry(const eeg::SyntheticEeg& eeg, const std::string& name, int64_t set_seed,
                 int64_t index, uint64_t seed) {
  Json seizures = Json::array();
  for (const eeg::SeizureEvent& s : eeg.seizures)
    seizures.push_back(Json(Json::Object{{"onset_s", s.onset_s},
                                         {"duration_s", s.duration_s},
                                         {"postictal_s", s.postictal_s},
                                         {"region", s.region},
                                         {"onset_channels", string_array(s.onset_channels)},
                                         {"pattern", s.pattern},
                                         {"start_hz", s.start_hz},
                                         {"end_hz", s.end_hz},
                                         {"peak_uv", s.peak_uv},
                                         {"spread_channels", string_array(s.spread_channels)},
                                         {"spread_s", s.spread_s}}));
  std::map<std::string, int64_t> artifact_counts;
  for (const eeg::ArtifactEvent& a : eeg.artifacts) ++artifact_counts[a.kind];
  Json artifacts = Json::object();
  for (const auto& [kind, count] : artifact_counts) artifacts.set(kind, count);
  const eeg::Recording& r = eeg.recording;
  return Json(Json::Object{{"recording", name},
                           {"edf", name + ".edf"},
                           {"note_file", name + ".txt"},
                           {"set_seed", set_seed},
                           {"index", index},
                           {"seed", std::to_string(seed)},
                           {"rate_hz", r.channels.front().rate_hz},
                           {"duration_s", r.duration_s},
                           {"channels", static_cast<int64_t>(r.channels.size())},
                           {"alpha_hz", eeg.alpha_hz},
                           {"seizures", seizures},
                           {"artifacts", artifacts},
                           {"note", eeg.note}});
}

// "1 seizure at 01:32 (left anterior temporal, 48 s)", "no seizures", "2 seizures at ...".
std::string seizure_summary(const eeg::SyntheticEeg& eeg) {
  if (eeg.seizures.empty()) return "no seizures";
  std::string text = std::to_string(eeg.seizures.size()) +
                     (eeg.seizures.size() == 1 ? " seizure at " : " seizures at ");
  for (size_t k = 0; k < eeg.seizures.size(); ++k) {
    const eeg::SeizureEvent& s = eeg.seizures[k];
    char detail[160];
    std::snprintf(detail, sizeof(detail), "%s%s (%s, %.0f s)", k ? ", " : "",
                  eeg::format_clock(s.onset_s).c_str(), s.region.c_str(), s.duration_s);
    text += detail;
  }
  return text;
}

int run(int argc, char** argv) {
  eeg::SyntheticEegOptions o;
  std::string out_dir = "runs/synthetic_eeg";
  int64_t recordings = 10, seed = 0, seizures = o.seizures;
  double duration_min = o.duration_s / 60;
  bool annotate_artifacts = o.annotate_artifacts;
  train::Flags flags("make_eeg",
                     "Writes synthetic 19-channel EEG recordings with seizures and artifacts as "
                     "EDF+ files (rec_NNN.edf), their clinical-style notes (rec_NNN.txt) and "
                     "index.jsonl. Recording i uses seed synthetic_recording_seed(--seed, i). "
                     "Threads: SSM_NUM_THREADS (default: all cores); the output is the same for "
                     "any thread count.");
  flags.add("out", &out_dir, "output directory (created if missing)");
  flags.add("recordings", &recordings, "number of recordings");
  flags.add("seed", &seed, "seed of the set (>= 0)");
  flags.add("duration-min", &duration_min, "length of each recording in minutes");
  flags.add("rate", &o.rate_hz, "sampling rate in Hz (>= 64; EDF needs whole samples per record)");
  flags.add("seizures", &seizures,
            "seizures per recording; -1: Poisson with mean --seizures-per-hour x duration, "
            "capped at what fits");
  flags.add("seizures-per-hour", &o.seizures_per_hour, "mean seizure rate when --seizures is -1");
  flags.add("min-seizure-s", &o.min_seizure_s, "shortest seizure in seconds (>= 4)");
  flags.add("max-seizure-s", &o.max_seizure_s, "longest seizure in seconds");
  flags.add("background-uv", &o.background_uv, "RMS of the 1/f background in uV");
  flags.add("alpha-uv", &o.alpha_uv, "posterior alpha amplitude at O1/O2 in uV");
  flags.add("line-hz", &o.line_noise_hz, "line-noise frequency (50 or 60 Hz)");
  flags.add("line-uv", &o.line_noise_uv, "mean line-noise amplitude in uV (0: none)");
  flags.add("blinks-per-min", &o.blinks_per_minute, "eye blinks per minute");
  flags.add("muscle-per-min", &o.muscle_bursts_per_minute, "muscle bursts per minute");
  flags.add("pops-per-min", &o.electrode_pops_per_minute, "electrode pops per minute");
  flags.add("chewing-per-hour", &o.chewing_per_hour, "rhythmic chewing artifacts per hour");
  flags.add("flutter-per-hour", &o.eye_flutter_per_hour, "eye flutter episodes per hour");
  flags.add("theta-bursts-per-hour", &o.theta_bursts_per_hour,
            "non-ictal rhythmic theta bursts per hour");
  flags.add("annotate-artifacts", &annotate_artifacts,
            "write artifact annotations into the EDF files (seizures are always annotated)");
  if (!flags.parse(argc, argv)) return 0;
  if (recordings <= 0) throw std::invalid_argument("make_eeg: --recordings must be positive");
  if (seed < 0) throw std::invalid_argument("make_eeg: --seed must be >= 0");
  if (!(duration_min > 0)) throw std::invalid_argument("make_eeg: --duration-min must be positive");
  o.duration_s = duration_min * 60;
  o.seizures = seizures;
  o.annotate_artifacts = annotate_artifacts;
  eeg::check_synthetic_eeg_options(o); // before any file is written

  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error)
    throw std::runtime_error("make_eeg: cannot create --out directory " + out_dir + ": " +
                             error.message());
  const int digits = std::max<int>(3, static_cast<int>(std::to_string(recordings - 1).size()));
  std::printf("make_eeg: %lld recordings of %s at %g Hz, seed %lld -> %s/\n",
              static_cast<long long>(recordings), eeg::format_clock(o.duration_s).c_str(),
              o.rate_hz, static_cast<long long>(seed), out_dir.c_str());
  std::fflush(stdout);

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> lines(static_cast<size_t>(recordings));
  std::vector<int64_t> seizure_counts(static_cast<size_t>(recordings));
  std::atomic<int64_t> done{0};
  std::mutex print_mutex;
  cpu::parallel_for(0, recordings, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      eeg::SyntheticEegOptions options = o;
      options.seed = eeg::synthetic_recording_seed(static_cast<uint64_t>(seed), i);
      const eeg::SyntheticEeg eeg = eeg::generate_synthetic_eeg(options);
      char name[32];
      std::snprintf(name, sizeof(name), "rec_%0*lld", digits, static_cast<long long>(i));
      eeg::write_edf(out_dir + "/" + name + ".edf", eeg.recording);
      write_file_atomic(out_dir + "/" + name + ".txt", eeg.note + "\n");
      lines[i] = index_entry(eeg, name, seed, i, options.seed).dump();
      seizure_counts[i] = static_cast<int64_t>(eeg.seizures.size());
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const std::lock_guard<std::mutex> lock(print_mutex);
      std::printf("[%*lld/%lld] %s.edf  %s  (%.2f s)\n", digits, static_cast<long long>(++done),
                  static_cast<long long>(recordings), name, seizure_summary(eeg).c_str(), seconds);
      std::fflush(stdout);
    }
  });
  std::string index;
  for (const std::string& line : lines) index += line + "\n";
  write_file_atomic(out_dir + "/index.jsonl", index);

  int64_t total_seizures = 0;
  for (int64_t count : seizure_counts) total_seizures += count;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "wrote %lld recordings (%.1f h, %lld seizures) to %s/: rec_*.edf, rec_*.txt, "
      "index.jsonl in %.1f s\n",
      static_cast<long long>(recordings), recordings * o.duration_s / 3600,
      static_cast<long long>(total_seizures), out_dir.c_str(), seconds);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::invalid_argument& e) { // bad flags or options
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
