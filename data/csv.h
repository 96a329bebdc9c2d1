// CSV reading (RFC 4180 as pandas writes it): quoted cells may hold commas, doubled quotes and newlines
// (MP-20's CIF column). Files may be gzip'd; plain files are read as they are.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cg {

// Whole file as bytes, gunzipped when it is gzip'd (zlib reads plain files unchanged).
std::string read_maybe_gz(const std::string& path);

// Iterates the records of CSV text held in memory. Cells are returned unquoted; an empty cell is "".
class CsvReader {
 public:
  explicit CsvReader(std::string_view text) : text_(text) {}
  // Next record into *cells; false at end of text. Throws cg::Error on an unterminated quote (names the line).
  bool next(std::vector<std::string>* cells);
  // 1-based line on which the record last returned by next() starts.
  int64_t record_line() const { return record_line_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int64_t line_ = 1;
  int64_t record_line_ = 0;
};

// A CSV with a header row: column lookup by name.
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> row_lines;  // 1-based line where each row starts
  // Index of column `name`; throws naming the file's columns when it is missing.
  size_t column(const std::string& name) const;
  // Index of column `name`, or -1 when the header lacks it.
  int64_t find(const std::string& name) const;
  // The header's names quoted, for messages: 'material_id', 'cif' (pandas' unnamed index column shows as '').
  std::string quoted_header() const;
};

// The header row of the CSV file `path` (gz or plain), read up to its end only; a UTF-8 byte order mark dropped, as
// parse_csv does. Throws naming the file when it cannot be read or is empty.
std::vector<std::string> read_csv_header(const std::string& path);

// Parses all of `text`; rows with a different cell count than the header are kept (the caller reports them).
CsvTable parse_csv(std::string_view text);

}  // namespace cg
