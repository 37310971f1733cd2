// annotations.cpp: see annotations.h for the accepted tables.
#include "data/annotations.h"

#include "data/atomic_file.h"
#include "data/eeg_preprocess.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ssm::eeg {

namespace {

std::string trim(const std::string& text) {
  size_t a = 0, b = text.size();
  while (a < b && std::isspace(static_cast<unsigned char>(text[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
  return text.substr(a, b - a);
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The fields of one line, RFC 4180 style: a field may be quoted ("a, b"), with "" standing
// for a quote inside it; spaces around a field are trimmed. An unclosed quote is an error.
void sort_by_onset(std::vector<Annotation>& annotations) {
  std::stable_sort(annotations.begin(), annotations.end(),
                   [](const Annotation& x, const Annotation& y) { return x.onset_s < y.onset_s; });
}

std::vector<std::string> split(const std::string& line, char delimiter, const std::string& where) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"' && trim(field).empty()) {
      quoted = was_quoted = true;
      field.clear();
    } else if (c == delimiter) {
      fields.push_back(was_quoted ? field : trim(field));
      field.clear();
      was_quoted = false;
    } else if (!(was_quoted && std::isspace(static_cast<unsigned char>(c)))) {
      field += c;
    }
  }
  if (quoted) throw std::invalid_argument(where + ": a quoted field is not closed");
  fields.push_back(was_quoted ? field : trim(field));
  return fields;
}

// The index of the first header column whose name is one of `names`, or -1.
int find_column(const std::vector<std::string>& header, const std::vector<std::string>& names) {
  for (const std::string& name : names)
    for (size_t i = 0; i < header.size(); ++i)
      if (lower(header[i]) == name) return static_cast<int>(i);
  return -1;
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

} // namespace

std::vector<Annotation> parse_annotation_table(const std::string& text, const std::string& name) {
  // A UTF-8 byte-order mark (spreadsheet exports write one) is not part of the first column's name.
  const bool bom = text.compare(0, 3, "\xEF\xBB\xBF") == 0;
  std::istringstream in(bom ? text.substr(3) : text);
  std::string line;
  std::vector<std::string> header;
  char delimiter = ',';
  int line_number = 0;
  while (header.empty() && std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    delimiter = line.find('\t') != std::string::npos ? '\t' : ',';
    header = split(line, delimiter, name + ": line " + std::to_string(line_number));
  }
  if (header.empty())
    throw std::invalid_argument(name +
                                ": no header row; expected a line naming the columns, "
                                "e.g. 'onset,duration,description'");
  const std::vector<std::string> start_names = {"onset", "start_time", "start"};
  const std::vector<std::string> duration_names = {"duration"};
  const std::vector<std::string> stop_names = {"stop_time", "end", "stop"};
  const std::vector<std::string> text_names = {"description", "label", "trial_type", "event",
                                               "annotation",  "text",  "value"};
  const int start = find_column(header, start_names);
  const int duration = find_column(header, duration_names);
  const int stop = find_column(header, stop_names);
  const int label = find_column(header, text_names);
  if (start < 0 || (duration < 0 && stop < 0) || label < 0)
    throw std::invalid_argument(
        name + ": line " + std::to_string(line_number) + " has the columns [" + joined(header) +
        "]; expected a start column (" + joined(start_names) + "), a duration or end column (" +
        joined(duration_names) + ", " + joined(stop_names) + ") and a text column (" +
        joined(text_names) + ")");

  auto number = [&](const std::string& field, const std::string& column, bool allow_na) {
    if (allow_na && lower(field) == "n/a") return 0.0;
    char* end = nullptr;
    const double value = std::strtod(field.c_str(), &end);
    if (field.empty() || end != field.c_str() + field.size() || !std::isfinite(value))
      throw std::invalid_argument(name + ": line " + std::to_string(line_number) + ": " + column +
                                  " '" + field + "' is not a finite number");
    return value;
  };
  std::vector<Annotation> annotations;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    const std::vector<std::string> fields =
        split(line, delimiter, name + ": line " + std::to_string(line_number));
    const int needed = std::max({start, duration, stop, label}) + 1;
    if (static_cast<int>(fields.size()) < needed)
      throw std::invalid_argument(name + ": line " + std::to_string(line_number) + " has " +
                                  std::to_string(fields.size()) + " fields; the header has " +
                                  std::to_string(header.size()));
    Annotation a;
    a.onset_s = number(fields[start], header[start], false);
    if (duration >= 0) {
      // BIDS writes n/a for events without a duration; a seizure without one would label no
      // clip, so that is an error rather than a silent 0.
      if (lower(fields[duration]) == "n/a" && is_seizure_annotation(fields[label]))
        throw std::invalid_argument(name + ": line " + std::to_string(line_number) +
                                    ": the "
                                    "seizure event '" +
                                    fields[label] +
                                    "' has duration n/a; a "
                                    "seizure needs a duration (or an end column)");
      a.duration_s = number(fields[duration], header[duration], true);
    } else {
      const double end = number(fields[stop], header[stop], false);
      a.duration_s = end - a.onset_s;
    }
    if (a.onset_s < 0 || a.duration_s < 0)
      throw std::invalid_argument(name + ": line " + std::to_string(line_number) +
                                  ": expected onset >= 0 and an end not before it, got onset " +
                                  fields[start] + " and duration " + std::to_string(a.duration_s));
    a.text = fields[label];
    annotations.push_back(a);
  }
  sort_by_onset(annotations);
  return annotations;
}

std::vector<Annotation> read_annotation_file(const std::string& path) {
  if (!std::ifstream(path)) throw std::invalid_argument(path + ": cannot open the annotation file");
  return parse_annotation_table(read_file(path), path);
}

void add_annotation_file(Recording& recording, const std::string& path) {
  const std::vector<Annotation> events = read_annotation_file(path);
  recording.annotations.insert(recording.annotations.end(), events.begin(), events.end());
  sort_by_onset(recording.annotations);
}

} // namespace ssm::eeg
