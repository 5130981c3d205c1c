// Boost.URL's compiled part: it is header-only when exactly one translation
// unit of the program includes src.hpp. This is the one for leakapp (no
// libboost_url, so leakapp-static links it like the rest).
#include <boost/url/src.hpp>
