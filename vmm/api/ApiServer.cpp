// The API socket's HTTP/1.1 server: Boost.Beast's parser and serializer over asio's local stream
// sockets, one io_context on one thread, every connection bounded in size and time (ApiServer.h).
#include "vmm/api/ApiServer.h"

#include <sys/stat.h>
#include <sys/un.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "kvm/Log.h"

namespace ember::vmm::api {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = net::local::stream_protocol;

using Parser = http::request_parser<http::string_body>;

void configure(Parser& parser, const ApiServerLimits& limits) {
  parser.header_limit(static_cast<uint32_t>(limits.header_bytes));
  parser.body_limit(limits.body_bytes);
}

ApiRequest toApiRequest(http::request<http::string_body>& req) {
  ApiRequest request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  request.body = std::move(req.body());
  return request;
}

// What a client is told when its request cannot be parsed.
std::string parseFailure(beast::error_code ec, const ApiServerLimits& limits) {
  if (ec == http::error::body_limit) {
    return "the request body is over " + std::to_string(limits.body_bytes >> 10) + " KiB";
  }
  if (ec == http::error::header_limit) {
    return "the request header is over " + std::to_string(limits.header_bytes >> 10) + " KiB";
  }
  return "malformed HTTP request: " + ec.message();
}

}  // namespace

Result<ApiRequest> parseHttpRequest(std::string_view bytes, const ApiServerLimits& limits) {
  Parser parser;
  configure(parser, limits);
  parser.eager(true);
  beast::error_code ec;
  net::const_buffer buffer(bytes.data(), bytes.size());
  while (buffer.size() > 0 && !parser.is_done()) {
    size_t used = parser.put(buffer, ec);
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec) break;
    buffer += used;
    if (used == 0) break;
  }
  if (!ec && !parser.is_done()) {
    parser.put_eof(ec);
    if (!ec && !parser.is_done()) ec = http::error::partial_message;
  }
  if (ec) return makeError(Errc::InvalidArgument, "{}", parseFailure(ec, limits));
  return toApiRequest(parser.get());
}

struct ApiServer::Impl {
  Impl(ApiRouter& r, ApiServerLimits l) : router(r), limits(l), acceptor(ioc) {}
  void accept();

  ApiRouter& router;
  const ApiServerLimits limits;
  size_t open = 0;  // connections open now (before ioc: sessions count down as ioc drops them)
  net::io_context ioc;
  Local::acceptor acceptor;
};

namespace {

// One client connection: requests read and answered one after the other (HTTP/1.1 keep-alive).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Local::socket socket, ApiServer::Impl& server)
      : socket_(std::move(socket)), timer_(server.ioc), server_(server) {
    ++server_.open;
  }
  ~Session() { --server_.open; }

  void start() { awaitRequest(); }

 private:
  // Idle until the next request's first byte (60 s at most), then 5 s for the whole request.
  void awaitRequest() {
    parser_.emplace();
    configure(*parser_, server_.limits);
    timed_out_ = false;
    if (buffer_.size() > 0) {  // a pipelined request is here already
      readRequest();
      return;
    }
    arm(server_.limits.idle_ms);
    socket_.async_wait(Local::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      if (ec || self->timed_out_) {
        self->close();  // idle too long, or the client went away: nothing to answer
        return;
      }
      self->readRequest();
    });
  }

  void readRequest() {
    arm(server_.limits.request_ms);
    http::async_read(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    timer_.cancel();
    ++armed_;
    if (timed_out_) {
      answer(400,
             fmt::format("the request did not arrive whole within {:g} s",
                         server_.limits.request_ms / 1000.0),
             false);
      return;
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted) {
      close();  // the client went away (mid-request or not): nothing changed
      return;
    }
    if (ec) {
      answer(400, parseFailure(ec, server_.limits), false);
      return;
    }
    ApiRequest request = toApiRequest(parser_->get());
    bool keep_alive = parser_->get().keep_alive();
    unsigned version = parser_->get().version();
    ApiResponse response = server_.router.handle(request);
    log::debug("api: {} {} -> {}", request.method, request.target, response.status);
    reply(response.status, std::move(response.body), keep_alive, version);
  }

  // An error of the connection itself (not of a request the router saw): 400 and close.
  void answer(int status, const std::string& message, bool keep_alive) {
    log::warn("api: {}; closing the connection", message);
    reply(status,
          nlohmann::json{{"fault_message", message}}.dump(-1, ' ', false,
                                                          nlohmann::json::error_handler_t::replace),
          keep_alive, 11);
  }

  void reply(int status, std::string body, bool keep_alive, unsigned version) {
    response_.emplace(static_cast<http::status>(status), version);
    response_->set(http::field::server, "ember");
    if (!body.empty()) response_->set(http::field::content_type, "application/json");
    response_->body() = std::move(body);
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    timed_out_ = false;
    arm(server_.limits.request_ms);  // a client that does not read its answer is dropped
    http::async_write(socket_, *response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        self->timer_.cancel();
                        ++self->armed_;
                        if (ec || self->timed_out_ || !keep_alive) {
                          self->close();
                          return;
                        }
                        self->awaitRequest();
                      });
  }

  // A deadline for the operation about to start. Each arming has its own number, so that an
  // expiry already queued when the operation finished cannot cut the next one short.
  void arm(int ms) {
    uint64_t armed = ++armed_;
    timer_.expires_after(std::chrono::milliseconds(ms));
    timer_.async_wait([weak = weak_from_this(), armed](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->armed_ != armed) return;  // the operation finished in time
      self->timed_out_ = true;
      beast::error_code ignored;
      self->socket_.cancel(ignored);
    });
  }

  void close() {
    beast::error_code ignored;
    timer_.cancel();
    socket_.shutdown(Local::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  Local::socket socket_;
  net::steady_timer timer_;
  ApiServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::optional<http::response<http::string_body>> response_;
  bool timed_out_ = false;
  uint64_t armed_ = 0;
};

}  // namespace

void ApiServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, Local::socket socket) {
    if (ec == net::error::operation_aborted) return;  // the server is stopping
    if (!ec) {
      if (open >= limits.connections) {
        log::warn("api: {} connections are open already; refusing another", open);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(std::move(socket), *this)->start();
      }
    }
    accept();
  });
}

ApiServer::ApiServer(std::string path) : path_(std::move(path)) {}

Result<std::unique_ptr<ApiServer>> ApiServer::start(const std::string& path, ApiRouter& router,
                                                    ApiServerLimits limits) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return makeError(Errc::InvalidArgument, "--api-sock '{}': a socket path is 1 to {} bytes", path,
                     sizeof(sockaddr_un::sun_path) - 1);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    return makeError(Errc::Busy,
                     "--api-sock {}: the path exists; remove it if no ember serves it any more",
                     path);
  }
  std::unique_ptr<ApiServer> server(new ApiServer(path));
  server->impl_ = std::make_unique<Impl>(router, limits);
  Impl& impl = *server->impl_;
  beast::error_code ec;
  impl.acceptor.open(Local(), ec);
  if (!ec) {
    // Mode 0600 from the start: no moment in which another user could connect.
    mode_t old = ::umask(0177);
    impl.acceptor.bind(Local::endpoint(path), ec);
    ::umask(old);
  }
  if (!ec) impl.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return makeError(Errc::Io, "--api-sock {}: {}", path, ec.message());
  }
  impl.accept();
  server->thread_ = std::jthread([&impl] { impl.ioc.run(); });
  log::info("api: serving Firecracker's API on {}", path);
  return server;
}

ApiServer::~ApiServer() {
  if (impl_) {
    impl_->ioc.stop();
    if (thread_.joinable()) thread_.join();
    impl_.reset();  // every connection closes with its session
    ::unlink(path_.c_str());
  }
}

}  // namespace ember::vmm::api
