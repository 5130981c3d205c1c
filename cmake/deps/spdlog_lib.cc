// spdlog compiled once (SPDLOG_COMPILED_LIB), for cppdiag::logging. Debian
// ships spdlog's headers and a shared library only, which -static cannot
// link; used header-only, every translation unit that logs compiled all of
// spdlog again (~11 s each, a sixth of the release build's compile time).
// This is what spdlog's own src/*.cpp build: the implementation headers
// (*-inl.h) and the templates the headers declare.
#ifndef SPDLOG_COMPILED_LIB
#error cppdiag::logging builds this file with SPDLOG_COMPILED_LIB
#endif

#include <spdlog/cfg/helpers-inl.h>
#include <spdlog/common-inl.h>
#include <spdlog/details/backtracer-inl.h>
#include <spdlog/details/log_msg-inl.h>
#include <spdlog/details/log_msg_buffer-inl.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/details/os-inl.h>
#include <spdlog/details/periodic_worker-inl.h>
#include <spdlog/details/registry-inl.h>
#include <spdlog/logger-inl.h>
#include <spdlog/pattern_formatter-inl.h>
#include <spdlog/sinks/ansicolor_sink-inl.h>
#include <spdlog/sinks/base_sink-inl.h>
#include <spdlog/sinks/sink-inl.h>
#include <spdlog/sinks/stdout_color_sinks-inl.h>
#include <spdlog/sinks/stdout_sinks-inl.h>
#include <spdlog/spdlog-inl.h>

#include <mutex>

// The logger's constructor from a list of sinks, and the sinks that exist:
// leakapp's (logging.cc: stdout_sink_mt, ringbuffer_sink_mt) and the default
// logger's (registry-inl.h: ansicolor_stdout_sink_mt). Another sink or a
// single-threaded (_st) one fails to link until it is added here.
template spdlog::logger::logger(std::string name, sinks_init_list::iterator begin,
                                sinks_init_list::iterator end);
template class spdlog::sinks::base_sink<std::mutex>;
template class spdlog::sinks::stdout_sink_base<spdlog::details::console_mutex>;
template class spdlog::sinks::stdout_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::ansicolor_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::ansicolor_stdout_sink<spdlog::details::console_mutex>;
