// test_annotations.cpp: annotation tables beside a recording (data/annotations.h): a plain
// CSV, a BIDS events.tsv, a TUH .csv_bi file, and the errors, each naming the file and line.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "data/annotations.h"
#include "data/eeg_preprocess.h"
#include "tests/helpers.h"

namespace ssm::eeg {
namespace {

void check_annotation(const Annotation& a, double onset, double duration, const std::string& text) {
  CHECK(a.onset_s == doctest::Approx(onset).epsilon(1e-12));
  CHECK(a.duration_s == doctest::Approx(duration).epsilon(1e-12));
  CHECK(a.text == text);
}

TEST_CASE("annotation tables: plain CSV, BIDS TSV and TUH csv_bi") {
  // Plain CSV, out of order, Windows line ends, a quoted-free text with spaces.
  const auto plain = parse_annotation_table(
      "Onset, Duration, Description\r\n92.5, 48, seizure\r\n\r\n10,0.4,eye blink\r\n", "a.csv");
  REQUIRE(plain.size() == 2);
  check_annotation(plain[0], 10, 0.4, "eye blink");
  check_annotation(plain[1], 92.5, 48, "seizure");

  // BIDS events.tsv: extra columns, n/a duration.
  const auto bids = parse_annotation_table(
      "onset\tduration\tsample\ttrial_type\n3.0\tn/a\t600\tspike\n120.25\t30.5\t24050\tsz\n",
      "sub-01_events.tsv");
  REQUIRE(bids.size() == 2);
  check_annotation(bids[0], 3, 0, "spike");
  check_annotation(bids[1], 120.25, 30.5, "sz");

  // TUH EEG Seizure Corpus .csv_bi: '#' comments, start/stop times, labels seiz/bckg.
  const auto tuh = parse_annotation_table(
      "# version = csv_v1.0.0\n# bname = aaaaaaac_s001_t000\n# duration = 301.00 secs\n#\n"
      "channel,start_time,stop_time,label,confidence\n"
      "TERM,0.0000,36.8868,bckg,1.0000\nTERM,36.8868,183.3055,seiz,1.0000\n"
      "TERM,183.3055,301.0000,bckg,1.0000\n",
      "aaaaaaac_s001_t000.csv_bi");
  REQUIRE(tuh.size() == 3);
  check_annotation(tuh[1], 36.8868, 183.3055 - 36.8868, "seiz");
  // Only the "seiz" row counts as a seizure for the clips (data/eeg_preprocess.h).
  CHECK(is_seizure_annotation(tuh[1].text));
  CHECK(!is_seizure_annotation(tuh[0].text));
}

TEST_CASE("annotation tables: quoted fields, a byte-order mark, n/a on a seizure") {
  // A quoted text with the delimiter and a doubled quote inside; a BOM before the header.
  const auto quoted = parse_annotation_table(
      "\xEF\xBB\xBFonset,duration,description\n10,5,\"Spike, then \"\"seizure\"\" onset\"\n"
      "\"20.5\" , 1 ,eye blink\n",
      "q.csv");
  REQUIRE(quoted.size() == 2);
  check_annotation(quoted[0], 10, 5, "Spike, then \"seizure\" onset");
  CHECK(is_seizure_annotation(quoted[0].text));
  check_annotation(quoted[1], 20.5, 1, "eye blink");
  test::check_error<std::invalid_argument>(
      [] { parse_annotation_table("onset,duration,description\n1,2,\"open\n", "u.csv"); },
      {"u.csv: line 2", "not closed"});
  test::check_error<std::invalid_argument>(
      [] { parse_annotation_table("onset\tduration\ttrial_type\n3\tn/a\tseizure\n", "e.tsv"); },
      {"e.tsv: line 2", "'seizure' has duration n/a"});
}

TEST_CASE("annotation tables: errors name the file, the line and what was expected") {
  test::check_error<std::invalid_argument>([] { parse_annotation_table("# only\n\n", "x.csv"); },
                                           {"x.csv", "no header row"});
  test::check_error<std::invalid_argument>(
      [] { parse_annotation_table("time,what\n1,seizure\n", "y.csv"); },
      {"y.csv: line 1 has the columns [time, what]", "expected a start column (onset"});
  test::check_error<std::invalid_argument>(
      [] { parse_annotation_table("onset,duration,label\n1,2,a\nx1,2,b\n", "z.csv"); },
      {"z.csv: line 3: onset 'x1' is not a finite number"});
  test::check_error<std::invalid_argument>(
      [] { parse_annotation_table("onset,duration,label\n1,2\n", "w.csv"); },
      {"w.csv: line 2 has 2 fields; the header has 3"});
  test::check_error<std::invalid_argument>(
      [] { parse_annotation_table("start_time,stop_time,label\n10,5,seiz\n", "v.csv"); },
      {"v.csv: line 2: expected onset >= 0 and an end not before it"});
  test::check_error<std::invalid_argument>([] { read_annotation_file("/nonexistent/dir/rec.csv"); },
                                           {"/nonexistent/dir/rec.csv", "cannot open"});
}

TEST_CASE("annotation tables: read from a file") {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("test_annotations_" + std::to_string(::getpid()) + ".tsv");
  {
    std::ofstream out(path);
    out << "onset\tduration\tvalue\n5\t1\tseizure\n";
  }
  const auto annotations = read_annotation_file(path.string());
  std::filesystem::remove(path);
  REQUIRE(annotations.size() == 1);
  check_annotation(annotations[0], 5, 1, "seizure");
}

} // namespace
} // namespace ssm::eeg
