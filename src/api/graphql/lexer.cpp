#include "api/graphql/lexer.h"

#include <cstdio>
#include <vector>

namespace tally::graphql {

namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsNameContinue(char c) {
  return IsNameStart(c) || (c >= '0' && c <= '9');
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// How graphql-js quotes a character in messages: "x" when printable, U+0007 otherwise.
std::string QuoteChar(std::string_view src, size_t pos) {
  if (pos >= src.size()) return "<EOF>";
  const auto c = static_cast<unsigned char>(src[pos]);
  if (c >= 0x20 && c < 0x7f) {
    if (c == '"') return "'\"'";
    return "\"" + std::string(1, static_cast<char>(c)) + "\"";
  }
  if (c < 0x80) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", c);
    return buf;
  }
  // A multi-byte character: quote it whole.
  size_t n = 1;
  while (pos + n < src.size() && (static_cast<unsigned char>(src[pos + n]) & 0xC0) == 0x80) ++n;
  return "\"" + std::string(src.substr(pos, n)) + "\"";
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t') return false;
  }
  return true;
}

}  // namespace

std::string_view Describe(TokenKind kind) {
  switch (kind) {
    case TokenKind::kEof:
      return "<EOF>";
    case TokenKind::kBang:
      return "!";
    case TokenKind::kDollar:
      return "$";
    case TokenKind::kAmp:
      return "&";
    case TokenKind::kParenL:
      return "(";
    case TokenKind::kParenR:
      return ")";
    case TokenKind::kSpread:
      return "...";
    case TokenKind::kColon:
      return ":";
    case TokenKind::kEquals:
      return "=";
    case TokenKind::kAt:
      return "@";
    case TokenKind::kBracketL:
      return "[";
    case TokenKind::kBracketR:
      return "]";
    case TokenKind::kBraceL:
      return "{";
    case TokenKind::kPipe:
      return "|";
    case TokenKind::kBraceR:
      return "}";
    case TokenKind::kName:
      return "Name";
    case TokenKind::kInt:
      return "Int";
    case TokenKind::kFloat:
      return "Float";
    case TokenKind::kString:
      return "String";
    case TokenKind::kBlockString:
      return "BlockString";
    case TokenKind::kError:
      return "<error>";
  }
  return "?";
}

std::string Describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::kEof:
      return "<EOF>";
    case TokenKind::kName:
    case TokenKind::kInt:
    case TokenKind::kFloat:
      return std::string(Describe(token.kind)) + " \"" + token.value + "\"";
    case TokenKind::kString:
    case TokenKind::kBlockString:
      return std::string(Describe(token.kind));
    default:
      return "\"" + std::string(Describe(token.kind)) + "\"";
  }
}

size_t Lexer::CodePointsSince(size_t from) const {
  size_t n = 0;
  for (size_t i = from; i < pos_ && i < src_.size(); ++i) {
    if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) ++n;
  }
  return n;
}

Token Lexer::Fail(Location at, std::string message) {
  error_ = "Syntax Error: " + std::move(message);
  error_loc_ = at;
  Token t;
  t.kind = TokenKind::kError;
  t.loc = at;
  return t;
}

Token Lexer::Next() {
  // Skip ignored tokens: whitespace, line terminators, commas, comments and the BOM.
  while (pos_ < src_.size()) {
    const char c = src_[pos_];
    if (c == ' ' || c == '\t' || c == ',') {
      ++pos_;
    } else if (c == '\n') {
      NewLine(++pos_);
    } else if (c == '\r') {
      ++pos_;
      if (pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
      NewLine(pos_);
    } else if (src_.substr(pos_, 3) == "\xEF\xBB\xBF") {
      pos_ += 3;
    } else if (c == '#') {
      while (pos_ < src_.size() && src_[pos_] != '\n' && src_[pos_] != '\r') ++pos_;
    } else {
      break;
    }
  }
  Token t;
  t.loc = Here();
  if (pos_ >= src_.size()) return t;
  const char c = src_[pos_];
  auto punct = [&](TokenKind k, size_t n) {
    pos_ += n;
    t.kind = k;
    return t;
  };
  switch (c) {
    case '!':
      return punct(TokenKind::kBang, 1);
    case '$':
      return punct(TokenKind::kDollar, 1);
    case '&':
      return punct(TokenKind::kAmp, 1);
    case '(':
      return punct(TokenKind::kParenL, 1);
    case ')':
      return punct(TokenKind::kParenR, 1);
    case ':':
      return punct(TokenKind::kColon, 1);
    case '=':
      return punct(TokenKind::kEquals, 1);
    case '@':
      return punct(TokenKind::kAt, 1);
    case '[':
      return punct(TokenKind::kBracketL, 1);
    case ']':
      return punct(TokenKind::kBracketR, 1);
    case '{':
      return punct(TokenKind::kBraceL, 1);
    case '|':
      return punct(TokenKind::kPipe, 1);
    case '}':
      return punct(TokenKind::kBraceR, 1);
    case '.':
      if (src_.substr(pos_, 3) == "...") return punct(TokenKind::kSpread, 3);
      return Fail(t.loc, "Unexpected character: \".\".");
    case '"':
      if (src_.substr(pos_, 3) == "\"\"\"") return ReadBlockString(t.loc);
      return ReadString(t.loc);
    default:
      break;
  }
  if (IsNameStart(c)) {
    const size_t start = pos_;
    while (pos_ < src_.size() && IsNameContinue(src_[pos_])) ++pos_;
    t.kind = TokenKind::kName;
    t.value = std::string(src_.substr(start, pos_ - start));
    return t;
  }
  if (c == '-' || IsDigit(c)) return ReadNumber(t.loc);
  return Fail(t.loc, "Unexpected character: " + QuoteChar(src_, pos_) + ".");
}

Token Lexer::ReadNumber(Location at) {
  const size_t start = pos_;
  bool is_float = false;
  auto digits = [&]() -> bool {
    if (pos_ >= src_.size() || !IsDigit(src_[pos_])) return false;
    while (pos_ < src_.size() && IsDigit(src_[pos_])) ++pos_;
    return true;
  };
  auto expected_digit = [&]() {
    Location here = Here();
    return Fail(here, "Invalid number, expected digit but got: " + QuoteChar(src_, pos_) + ".");
  };
  if (src_[pos_] == '-') ++pos_;
  if (pos_ < src_.size() && src_[pos_] == '0') {
    ++pos_;
    if (pos_ < src_.size() && IsDigit(src_[pos_])) {
      Location here = Here();
      return Fail(here, "Invalid number, unexpected digit after 0: " + QuoteChar(src_, pos_) + ".");
    }
  } else if (!digits()) {
    return expected_digit();
  }
  if (pos_ < src_.size() && src_[pos_] == '.') {
    is_float = true;
    ++pos_;
    if (!digits()) return expected_digit();
  }
  if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
    is_float = true;
    ++pos_;
    if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
    if (!digits()) return expected_digit();
  }
  if (pos_ < src_.size() && (src_[pos_] == '.' || IsNameStart(src_[pos_]))) {
    return expected_digit();
  }
  Token t;
  t.kind = is_float ? TokenKind::kFloat : TokenKind::kInt;
  t.value = std::string(src_.substr(start, pos_ - start));
  t.loc = at;
  return t;
}

Token Lexer::ReadString(Location at) {
  ++pos_;  // the opening quote
  std::string out;
  while (pos_ < src_.size()) {
    const char c = src_[pos_];
    if (c == '"') {
      ++pos_;
      Token t;
      t.kind = TokenKind::kString;
      t.value = std::move(out);
      t.loc = at;
      return t;
    }
    if (c == '\n' || c == '\r') break;
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t') {
      Location here = Here();
      return Fail(here, "Invalid character within String: " + QuoteChar(src_, pos_) + ".");
    }
    if (c != '\\') {
      out += c;
      ++pos_;
      continue;
    }
    const Location esc = Here();
    if (pos_ + 1 >= src_.size()) break;
    const char e = src_[pos_ + 1];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        pos_ += 2;
        continue;
      case 'b':
        out += '\b';
        pos_ += 2;
        continue;
      case 'f':
        out += '\f';
        pos_ += 2;
        continue;
      case 'n':
        out += '\n';
        pos_ += 2;
        continue;
      case 'r':
        out += '\r';
        pos_ += 2;
        continue;
      case 't':
        out += '\t';
        pos_ += 2;
        continue;
      case 'u':
        break;
      default:
        return Fail(esc, "Invalid character escape sequence: \"" +
                             std::string(src_.substr(pos_, 2)) + "\".");
    }
    // \uXXXX, a surrogate pair of them, or \u{X...}.
    auto bad_unicode = [&](size_t len) {
      return Fail(esc, "Invalid Unicode escape sequence: \"" +
                           std::string(src_.substr(pos_, std::min(len, src_.size() - pos_))) +
                           "\".");
    };
    uint32_t cp = 0;
    size_t len = 0;
    if (pos_ + 2 < src_.size() && src_[pos_ + 2] == '{') {
      size_t i = pos_ + 3;
      while (i < src_.size() && src_[i] != '}' && HexDigit(src_[i]) >= 0 && cp <= 0x10FFFF) {
        cp = cp * 16 + static_cast<uint32_t>(HexDigit(src_[i]));
        ++i;
      }
      if (i >= src_.size() || src_[i] != '}' || i == pos_ + 3 || cp > 0x10FFFF ||
          (cp >= 0xD800 && cp <= 0xDFFF)) {
        return bad_unicode(i + 1 - pos_);
      }
      len = i + 1 - pos_;
    } else {
      auto hex4 = [&](size_t from) -> int {
        if (from + 4 > src_.size()) return -1;
        int v = 0;
        for (size_t i = from; i < from + 4; ++i) {
          const int d = HexDigit(src_[i]);
          if (d < 0) return -1;
          v = v * 16 + d;
        }
        return v;
      };
      const int hi = hex4(pos_ + 2);
      if (hi < 0) return bad_unicode(6);
      cp = static_cast<uint32_t>(hi);
      len = 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        const int lo = src_.substr(pos_ + 6, 2) == "\\u" ? hex4(pos_ + 8) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return bad_unicode(6);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<uint32_t>(lo) - 0xDC00);
        len = 12;
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return bad_unicode(6);
      }
    }
    AppendUtf8(out, cp);
    pos_ += len;
  }
  return Fail(Here(), "Unterminated string.");
}

Token Lexer::ReadBlockString(Location at) {
  pos_ += 3;
  std::string raw;
  while (pos_ < src_.size()) {
    if (src_.substr(pos_, 3) == "\"\"\"") {
      pos_ += 3;
      Token t;
      t.kind = TokenKind::kBlockString;
      t.value = BlockStringValue(raw);
      t.loc = at;
      return t;
    }
    if (src_.substr(pos_, 4) == "\\\"\"\"") {
      raw += "\"\"\"";
      pos_ += 4;
      continue;
    }
    const char c = src_[pos_];
    if (c == '\n') {
      raw += c;
      NewLine(++pos_);
      continue;
    }
    if (c == '\r') {
      raw += '\n';
      ++pos_;
      if (pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
      NewLine(pos_);
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      Location here = Here();
      return Fail(here, "Invalid character within String: " + QuoteChar(src_, pos_) + ".");
    }
    raw += c;
    ++pos_;
  }
  return Fail(Here(), "Unterminated string.");
}

std::string BlockStringValue(std::string_view raw) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i <= raw.size(); ++i) {
    if (i == raw.size() || raw[i] == '\n') {
      lines.push_back(raw.substr(start, i - start));
      start = i + 1;
    }
  }
  size_t common = std::string_view::npos;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t indent = 0;
    while (indent < lines[i].size() && (lines[i][indent] == ' ' || lines[i][indent] == '\t')) {
      ++indent;
    }
    if (indent < lines[i].size() && indent < common) common = indent;
  }
  if (common != std::string_view::npos && common > 0) {
    for (size_t i = 1; i < lines.size(); ++i) {
      lines[i] = lines[i].size() >= common ? lines[i].substr(common) : std::string_view();
    }
  }
  size_t first = 0, last = lines.size();
  while (first < last && IsBlank(lines[first])) ++first;
  while (last > first && IsBlank(lines[last - 1])) --last;
  std::string out;
  for (size_t i = first; i < last; ++i) {
    if (i > first) out += '\n';
    out += lines[i];
  }
  return out;
}

}  // namespace tally::graphql
