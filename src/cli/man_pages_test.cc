// The manual pages (docs/cli/<command>.md) against the built cppdiag's
// --help: every command has a page linked from the index, every option of
// every subcommand is in its command's page's Options section, and every
// option that section names exists. A new option without its documentation, or
// documentation of an option that went, fails here.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

const std::string kDocs = std::string(CPPDIAG_SOURCE_DIR) + "/docs/cli/";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// `cppdiag <args> --help`, with its exit status.
std::string Help(const std::string& args, int* status) {
  std::string cmd = std::string(CPPDIAG_CLI_BINARY) + " " + args + " --help 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (f != nullptr && (n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *status = f != nullptr ? ::pclose(f) : -1;
  return out;
}

// One command as --help describes it.
struct HelpPage {
  std::set<std::string> long_options;  // "--output"
  std::vector<std::string> subcommands;
};

HelpPage ParseHelp(const std::string& help) {
  HelpPage page;
  std::istringstream in(help);
  std::string line, section;
  static const std::regex kLong("(?:^|,)(--[A-Za-z0-9][A-Za-z0-9-]*)");
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == ':' && line[0] != ' ') {
      section = line;
      continue;
    }
    // Entries start with two spaces; their descriptions, when wrapped, with more.
    if (line.size() < 3 || line.compare(0, 2, "  ") != 0 || line[2] == ' ') continue;
    std::string first = line.substr(2, line.find(' ', 2) - 2);
    if (section == "Options:") {
      for (std::sregex_iterator m(first.begin(), first.end(), kLong), end; m != end; ++m) {
        page.long_options.insert((*m)[1]);
      }
    } else if (section == "Subcommands:") {
      page.subcommands.push_back(first);
    }
  }
  return page;
}

// Every command path under `path` ("heap" -> "heap", "heap snapshot", ...)
// with its help.
void Walk(const std::string& path, std::map<std::string, HelpPage>* out) {
  int status = 0;
  std::string help = Help(path, &status);
  ASSERT_EQ(status, 0) << path << ": " << help;
  HelpPage page = ParseHelp(help);
  ASSERT_FALSE(page.long_options.empty()) << path << ": no options parsed from\n" << help;
  for (const auto& sub : page.subcommands) Walk(path + " " + sub, out);
  (*out)[path] = std::move(page);
}

// The long options a page's "## Options" section names (in backquotes).
std::set<std::string> DocumentedOptions(const std::string& page) {
  std::set<std::string> out;
  size_t start = page.find("\n## Options");
  if (start == std::string::npos) return out;
  size_t end = page.find("\n## ", start + 1);
  std::string section = page.substr(start, end == std::string::npos ? end : end - start);
  static const std::regex kLong("`(--[A-Za-z0-9][A-Za-z0-9-]*)");
  for (std::sregex_iterator m(section.begin(), section.end(), kLong), e; m != e; ++m) {
    out.insert((*m)[1]);
  }
  return out;
}

std::vector<std::string> Commands() {
  int status = 0;
  std::string help = Help("", &status);
  EXPECT_EQ(status, 0) << help;
  return ParseHelp(help).subcommands;
}

TEST(ManPages, EveryCommandHasAPageLinkedFromTheIndex) {
  std::vector<std::string> commands = Commands();
  ASSERT_GE(commands.size(), 5u);
  std::string index = ReadFile(kDocs + "README.md");
  ASSERT_FALSE(index.empty()) << kDocs << "README.md";
  for (const auto& c : commands) {
    EXPECT_FALSE(ReadFile(kDocs + c + ".md").empty()) << "no docs/cli/" << c << ".md";
    EXPECT_NE(index.find("(" + c + ".md)"), std::string::npos) << "the index lacks " << c;
  }
  // The top-level options.
  int status = 0;
  for (const auto& opt : ParseHelp(Help("", &status)).long_options) {
    EXPECT_NE(index.find("`" + opt), std::string::npos) << opt << " not in docs/cli/README.md";
  }
}

TEST(ManPages, EveryOptionOfEverySubcommandIsOnItsPage) {
  for (const auto& c : Commands()) {
    std::string page = ReadFile(kDocs + c + ".md");
    std::set<std::string> documented = DocumentedOptions(page);
    std::map<std::string, HelpPage> paths;
    Walk(c, &paths);
    std::set<std::string> all;
    for (const auto& [path, help] : paths) {
      EXPECT_NE(page.find("cppdiag " + path), std::string::npos)
          << "docs/cli/" << c << ".md never shows `cppdiag " << path << "`";
      for (const auto& opt : help.long_options) {
        all.insert(opt);
        EXPECT_TRUE(documented.count(opt)) << "cppdiag " << path << " " << opt
                                           << " is not in the Options of docs/cli/" << c << ".md";
      }
    }
    for (const auto& opt : documented) {
      EXPECT_TRUE(all.count(opt)) << "docs/cli/" << c << ".md documents " << opt
                                  << ", which no cppdiag " << c << " command has";
    }
  }
}

}  // namespace
