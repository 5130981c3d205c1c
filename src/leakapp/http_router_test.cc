// The route table without sockets: which handler answers, and the JSON
// errors of http_router.h.
#include "leakapp/http_router.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace leakapp {
namespace {

HttpRequest Request(std::string method, std::string path) {
  HttpRequest req;
  req.method = std::move(method);
  req.target = req.path = std::move(path);
  return req;
}

class HttpRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/get", [](const HttpRequest&, HttpResponse& res) {
      res.set_content("got\n", "text/plain");
    });
    router_.Add("POST", "/post", [](const HttpRequest&, HttpResponse& res) { res.status = 202; });
    router_.Add(
        "GET", "/throws",
        [](const HttpRequest&, HttpResponse& res) {
          res.set_content("half", "text/plain");
          res.allow = "GET";
          throw std::runtime_error("broken");
        },
        HttpRouter::Logging::kDebug);
  }

  HttpResponse Dispatch(const std::string& method, const std::string& path) {
    HttpResponse res;
    router_.Dispatch(Request(method, path), res);
    return res;
  }

  HttpRouter router_;
};

TEST_F(HttpRouterTest, RunsTheHandlerOfThePathAndMethod) {
  HttpResponse res = Dispatch("GET", "/get");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "got\n");
  EXPECT_EQ(Dispatch("POST", "/post").status, 202);
}

TEST_F(HttpRouterTest, HeadIsAnsweredByTheGetHandlerOnly) {
  EXPECT_EQ(Dispatch("HEAD", "/get").body, "got\n");
  HttpResponse res = Dispatch("HEAD", "/post");
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.allow, "POST");
}

TEST_F(HttpRouterTest, AnotherMethodGets405WithAllow) {
  HttpResponse res = Dispatch("POST", "/get");
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.allow, "GET");
  EXPECT_EQ(res.content_type, kJsonContentType);
  EXPECT_EQ(res.body, "{\"error\":\"POST not allowed; use GET\"}\n");
}

TEST_F(HttpRouterTest, AnUnknownPathGets404NamingIt) {
  HttpResponse res = Dispatch("GET", "/nope");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.content_type, kJsonContentType);
  EXPECT_EQ(res.body, "{\"error\":\"no such endpoint: /nope\"}\n");
}

TEST_F(HttpRouterTest, AHandlerThatThrowsGets500AndNothingItHadSet) {
  HttpResponse res = Dispatch("GET", "/throws");
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.allow, "");
  EXPECT_EQ(res.body, "{\"error\":\"broken\"}\n");
}

}  // namespace
}  // namespace leakapp
