// CSV reader and gzip loading.
#include "data/csv.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace cg {

std::string read_maybe_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  CG_CHECK(f != nullptr, "cannot open '{}' ({}): check the setting that names this file", path,
           path.empty() ? "the path is empty" : std::strerror(errno));
  gzbuffer(f, 1 << 20);
  std::string out;
  std::vector<char> buf(1 << 20);
  while (true) {
    int n = gzread(f, buf.data(), unsigned(buf.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      CG_FAIL("error reading '{}': {} (is the file truncated?)", path, msg);
    }
    if (n == 0) break;
    out.append(buf.data(), size_t(n));
  }
  // gzread reports a gzip stream cut short ("unexpected end of file") by returning 0 with Z_BUF_ERROR, not -1.
  int err = Z_OK;
  const std::string msg = gzerror(f, &err);
  const int close_rc = gzclose(f);
  CG_CHECK(err == Z_OK && close_rc == Z_OK, "error reading '{}': {} (the gzip file is truncated or damaged: copy it "
           "again)", path, err != Z_OK ? msg : "gzclose failed");
  return out;
}

bool CsvReader::next(std::vector<std::string>* cells) {
  cells->clear();
  // Skip a trailing empty line at end of text.
  if (pos_ >= text_.size()) return false;
  record_line_ = line_;
  std::string cell;
  bool quoted = false;      // inside a quoted cell
  bool was_quoted = false;  // current cell began with a quote
  while (pos_ < text_.size()) {
    char ch = text_[pos_++];
    if (quoted) {
      if (ch == '"') {
        if (pos_ < text_.size() && text_[pos_] == '"') {
          cell.push_back('"');
          ++pos_;
        } else {
          quoted = false;
        }
      } else {
        if (ch == '\n') ++line_;
        cell.push_back(ch);
      }
      continue;
    }
    if (ch == '"' && cell.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else if (ch == ',') {
      cells->push_back(std::move(cell));
      cell.clear();
      was_quoted = false;
    } else if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
      ++line_;
      cells->push_back(std::move(cell));
      return true;
    } else {
      cell.push_back(ch);
    }
  }
  CG_CHECK(!quoted, "CSV line {}: quoted cell is never closed (truncated or corrupt file)", record_line_);
  cells->push_back(std::move(cell));
  return true;
}

int64_t CsvTable::find(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return int64_t(i);
  return -1;
}

std::string CsvTable::quoted_header() const {
  std::string cols;
  for (auto& h : header) cols += (cols.empty() ? "" : ", ") + ("'" + h + "'");
  return cols;
}

size_t CsvTable::column(const std::string& name) const {
  if (const int64_t i = find(name); i >= 0) return size_t(i);
  CG_FAIL("CSV has no column '{}'; its columns are {}", name, quoted_header());
}

std::vector<std::string> read_csv_header(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  CG_CHECK(f != nullptr, "cannot open '{}' ({}): check the setting that names this file", path,
           path.empty() ? "the path is empty" : std::strerror(errno));
  // Up to the first line end outside quotes (a quoted header cell may hold one), in 64 KiB steps.
  std::string text;
  std::vector<char> buf(1 << 16);
  bool quoted = false, ended = false;
  for (int n; !ended && (n = gzread(f, buf.data(), unsigned(buf.size()))) > 0;) {
    for (int i = 0; i < n && !ended; ++i) {
      if (buf[size_t(i)] == '"') quoted = !quoted;
      ended = !quoted && (buf[size_t(i)] == '\n' || buf[size_t(i)] == '\r');
    }
    text.append(buf.data(), size_t(n));
  }
  gzclose(f);
  std::string_view view = text;
  if (view.substr(0, 3) == "\xEF\xBB\xBF") view.remove_prefix(3);
  std::vector<std::string> header;
  try {
    CsvReader(view).next(&header);
  } catch (const Error& e) {
    CG_FAIL("{} (in {})", e.what(), path);
  }
  CG_CHECK(!header.empty() && !(header.size() == 1 && header[0].empty()), "{} is empty: expected a CSV with a header "
           "row", path);
  return header;
}

CsvTable parse_csv(std::string_view text) {
  // A UTF-8 byte order mark (spreadsheet exports) is not part of the first column's name, as for pandas.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  CsvTable t;
  CsvReader r(text);
  CG_CHECK(r.next(&t.header), "CSV is empty: expected a header row");
  std::vector<std::string> cells;
  while (r.next(&cells)) {
    if (cells.size() == 1 && cells[0].empty()) continue;  // blank line
    t.rows.push_back(cells);
    t.row_lines.push_back(r.record_line());
  }
  return t;
}

}  // namespace cg
