#include "leakapp/http_message.h"

namespace leakapp {

void ReplyJson(HttpResponse& res, int status, const nlohmann::ordered_json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", kJsonContentType);
}

}  // namespace leakapp
